#include "nn/train/progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <stdexcept>

namespace symgrad::nn {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0) return "--:--";
  // Rounded to whole seconds; a run longer than ~300 years is "--:--" too rather than
  // an overflowing integer.
  if (seconds > 1e10) return "--:--";
  const auto total = static_cast<std::int64_t>(std::llround(seconds));
  const std::int64_t hours = total / 3600, minutes = total / 60 % 60, secs = total % 60;
  char text[48];
  if (hours > 0)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(hours),
                  static_cast<long long>(minutes), static_cast<long long>(secs));
  else
    std::snprintf(text, sizeof text, "%lld:%02lld", static_cast<long long>(minutes),
                  static_cast<long long>(secs));
  return text;
}

std::string progress_line(const ProgressSnapshot& s) {
  char part[96];
  std::string line;
  std::snprintf(part, sizeof part, "epoch %lld/%lld  step %lld/%lld", static_cast<long long>(s.epoch),
                static_cast<long long>(s.epochs), static_cast<long long>(s.step),
                static_cast<long long>(s.steps));
  line += part;
  if (std::isfinite(s.loss)) {
    std::snprintf(part, sizeof part, "  loss %.4f", s.loss);
    line += part;
  } else {
    line += std::isnan(s.loss) ? "  loss nan" : "  loss inf";  // a diverging run should say so
  }
  if (std::isfinite(s.accuracy)) {
    std::snprintf(part, sizeof part, "  acc %.1f%%", 100.0 * s.accuracy);
    line += part;
  }
  if (std::isfinite(s.images_per_second) && s.images_per_second > 0.0) {
    std::snprintf(part, sizeof part, "  %.0f img/s", s.images_per_second);
    line += part;
  }
  if (s.epoch_eta_seconds >= 0.0) {
    line += "  ETA " + format_duration(s.epoch_eta_seconds);
    if (s.epoch < s.epochs && s.run_eta_seconds >= 0.0)
      line += " (run " + format_duration(s.run_eta_seconds) + ")";
  }
  return line;
}

void SmoothedValue::add(double sample) {
  if (!std::isfinite(sample)) return;
  value_ = has_value_ ? value_ + weight_ * (sample - value_) : sample;
  has_value_ = true;
}

namespace {
double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

ProgressReporter::ProgressReporter(std::int64_t epochs, std::int64_t steps_per_epoch)
    : ProgressReporter(epochs, steps_per_epoch, Options{}) {}

ProgressReporter::ProgressReporter(std::int64_t epochs, std::int64_t steps_per_epoch, Options opts)
    : opts_(std::move(opts)), mode_(opts_.mode), epochs_(epochs), steps_per_epoch_(steps_per_epoch) {
  if (epochs < 1 || steps_per_epoch < 0)
    throw std::invalid_argument("ProgressReporter: epochs (" + std::to_string(epochs) +
                                ") must be >= 1 and steps_per_epoch (" +
                                std::to_string(steps_per_epoch) + ") >= 0");
  if (!(opts_.log_fraction > 0.0 && opts_.log_fraction <= 1.0))
    throw std::invalid_argument("ProgressReporter: log_fraction must be in (0, 1], got " +
                                std::to_string(opts_.log_fraction));
  out_ = opts_.out ? opts_.out : &std::cerr;
  if (mode_ == Mode::automatic) {
    // Only the process's own stderr can be asked whether it is a terminal.
    const bool is_stderr = out_ == &std::cerr || out_ == &std::clog;
    mode_ = is_stderr && isatty(STDERR_FILENO) ? Mode::terminal : Mode::log;
  }
  steps_ = steps_per_epoch_;
}

double ProgressReporter::now() const { return opts_.clock ? opts_.clock() : steady_seconds(); }

void ProgressReporter::start_epoch(std::int64_t epoch, std::int64_t steps) {
  epoch_ = epoch;
  steps_ = steps > 0 ? steps : steps_per_epoch_;
  epoch_start_ = last_step_time_ = now();
  last_draw_time_ = -1e300;
  last_logged_tick_ = 0;
  // Throughput is re-learned each epoch: the first epoch's warm-up should not linger,
  // and an evaluation pass between epochs must not count as a slow step.
  seconds_per_step_ = SmoothedValue(0.1);
  images_per_step_ = SmoothedValue(0.1);
}

double ProgressReporter::images_per_second() const {
  if (seconds_per_step_.empty() || seconds_per_step_.value() <= 0.0) return 0.0;
  return images_per_step_.value() / seconds_per_step_.value();
}

ProgressSnapshot ProgressReporter::snapshot(std::int64_t step, double loss, double accuracy) const {
  ProgressSnapshot s;
  s.epoch = epoch_;
  s.epochs = epochs_;
  s.step = step;
  s.steps = steps_;
  s.loss = loss;
  s.accuracy = accuracy;
  s.images_per_second = images_per_second();
  if (!seconds_per_step_.empty()) {
    const double per_step = seconds_per_step_.value();
    s.epoch_eta_seconds = static_cast<double>(steps_ - step) * per_step;
    // Later epochs are assumed to take as long as the finished ones did on average, or,
    // before any finished, as long as this one is projected to.
    const double epoch_seconds = finished_epochs_ > 0
                                     ? finished_epoch_seconds_ / static_cast<double>(finished_epochs_)
                                     : static_cast<double>(steps_) * per_step;
    s.run_eta_seconds = s.epoch_eta_seconds + static_cast<double>(epochs_ - epoch_) * epoch_seconds;
  }
  return s;
}

void ProgressReporter::update(std::int64_t step, std::int64_t images, double loss, double accuracy) {
  if (mode_ == Mode::off) return;
  const double t = now();
  seconds_per_step_.add(t - last_step_time_);
  images_per_step_.add(static_cast<double>(images));
  last_step_time_ = t;

  if (mode_ == Mode::terminal) {
    if (t - last_draw_time_ < opts_.redraw_seconds && step < steps_) return;
    last_draw_time_ = t;
    draw(progress_line(snapshot(step, loss, accuracy)));
    return;
  }
  // Log mode: one line each time the epoch passes another log_fraction of its steps.
  // The last step is left to end_epoch's summary.
  if (steps_ <= 0 || step >= steps_) return;
  const auto ticks = static_cast<std::int64_t>(std::llround(1.0 / opts_.log_fraction));
  const std::int64_t tick = step * ticks / steps_;
  if (tick > last_logged_tick_) {
    last_logged_tick_ = tick;
    *out_ << progress_line(snapshot(step, loss, accuracy)) << '\n' << std::flush;
  }
}

void ProgressReporter::draw(const std::string& line) {
  std::string text = "\r" + line;
  // Blank out the tail of a longer previous line instead of relying on an escape code.
  if (line.size() < drawn_width_) text += std::string(drawn_width_ - line.size(), ' ');
  drawn_width_ = line.size();
  *out_ << text << std::flush;
}

void ProgressReporter::clear_line() {
  if (mode_ != Mode::terminal || drawn_width_ == 0) return;
  *out_ << '\r' << std::string(drawn_width_, ' ') << '\r';
  drawn_width_ = 0;
}

void ProgressReporter::end_epoch(const std::string& summary) {
  finished_epoch_seconds_ += now() - epoch_start_;
  finished_epochs_ += 1;
  message(summary);
}

void ProgressReporter::message(const std::string& text) {
  if (mode_ == Mode::off) return;
  clear_line();
  *out_ << text << '\n' << std::flush;
}

}  // namespace symgrad::nn
