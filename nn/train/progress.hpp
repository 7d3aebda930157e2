#pragma once
// Training progress that a person can watch.
//
// On a terminal one status line is redrawn in place ('\r'):
//   epoch 2/5  step 312/938  loss 0.4123  acc 85.2%  1843 img/s  ETA 0:41
// When stderr is a file or a pipe (a CI log, `| tee`), redrawing would leave hundreds
// of '\r'-joined fragments, so the same line is instead written as a plain log line
// every tenth of an epoch. Either way each epoch ends with one summary line.
//
// The text is built by pure functions (format_duration, progress_line) so tests can
// check it without a clock or a terminal; ProgressReporter only adds timing and I/O.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

namespace symgrad::nn {

// 41 -> "0:41", 3723 -> "1:02:03"; negative, NaN or infinite -> "--:--" (not known yet).
std::string format_duration(double seconds);

// What one status line shows. Fields that are not known yet are NaN (or negative for
// the ETAs) and are left out of the line.
struct ProgressSnapshot {
  std::int64_t epoch = 1, epochs = 1;  // 1-based
  std::int64_t step = 0, steps = 0;    // steps done in this epoch, of `steps`
  double loss = 0.0;                   // running mean over the epoch so far
  double accuracy = 0.0;               // fraction in [0, 1]
  double images_per_second = 0.0;
  double epoch_eta_seconds = -1.0;     // time left in this epoch
  double run_eta_seconds = -1.0;       // time left in the whole run (shown when other epochs follow)
};

// "epoch 2/5  step 312/938  loss 0.4123  acc 85.2%  1843 img/s  ETA 0:41 (run 3:05)"
std::string progress_line(const ProgressSnapshot& s);

// Exponential moving average that starts at its first sample (no bias towards 0).
class SmoothedValue {
 public:
  explicit SmoothedValue(double weight_of_new = 0.1) : weight_(weight_of_new) {}
  void add(double sample);
  bool empty() const { return !has_value_; }
  double value() const { return value_; }

 private:
  double weight_;
  double value_ = 0.0;
  bool has_value_ = false;
};

class ProgressReporter {
 public:
  enum class Mode {
    automatic,  // terminal if the stream is std::cerr/std::clog and stderr is a tty, else log
    terminal,   // one line redrawn with '\r'
    log,        // a plain line every `log_fraction` of an epoch
    off,        // nothing at all
  };
  struct Options {
    Mode mode = Mode::automatic;
    std::ostream* out = nullptr;       // nullptr -> std::cerr
    double log_fraction = 0.1;         // log mode: one line per this fraction of an epoch
    double redraw_seconds = 0.1;       // terminal mode: at most ~10 redraws per second
    std::function<double()> clock;     // seconds from any origin; default steady_clock
  };

  ProgressReporter(std::int64_t epochs, std::int64_t steps_per_epoch, Options opts);
  ProgressReporter(std::int64_t epochs, std::int64_t steps_per_epoch);

  // Starts timing epoch `epoch` (1-based). `steps` overrides steps_per_epoch (0 keeps it).
  void start_epoch(std::int64_t epoch, std::int64_t steps = 0);
  // After step `step` (1-based) of the current epoch, which saw `images` examples;
  // loss and accuracy are the epoch's running means so far.
  void update(std::int64_t step, std::int64_t images, double loss, double accuracy);
  // Ends the epoch: clears the status line and writes `summary` as its own line.
  void end_epoch(const std::string& summary);
  // Writes a line of text between status lines (clearing the status line first).
  void message(const std::string& text);

  Mode mode() const { return mode_; }
  // Smoothed throughput so far in the current epoch (0 before the first step).
  double images_per_second() const;

 private:
  double now() const;
  ProgressSnapshot snapshot(std::int64_t step, double loss, double accuracy) const;
  void draw(const std::string& line);
  void clear_line();

  Options opts_;
  Mode mode_;
  std::ostream* out_;
  std::int64_t epochs_, steps_per_epoch_, steps_ = 0, epoch_ = 1;
  double epoch_start_ = 0.0, last_step_time_ = 0.0, last_draw_time_ = -1e300;
  std::int64_t last_logged_tick_ = 0;
  SmoothedValue seconds_per_step_{0.1}, images_per_step_{0.1};
  double finished_epoch_seconds_ = 0.0;  // sum over earlier epochs, for the run ETA
  std::int64_t finished_epochs_ = 0;
  std::size_t drawn_width_ = 0;          // length of the status line now on screen
};

}  // namespace symgrad::nn
