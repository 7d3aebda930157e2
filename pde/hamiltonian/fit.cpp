#include "pde/hamiltonian/fit.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <string>

#include "nn/optim/adam.hpp"
#include "nn/train/progress.hpp"

namespace symgrad::pde::hamiltonian {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

// The status of a run after `done` of `total` steps:
//   "hnn spring  step 700/2000  loss 0.03721  test 0.03654  812 steps/s  ETA 0:02"
std::string status_line(const std::string& label, std::int64_t done, std::int64_t total, double loss,
                        double test, double steps_per_second) {
  std::string line = label.empty() ? "" : label + "  ";
  line += "step " + std::to_string(done) + "/" + std::to_string(total) + "  loss " + number(loss);
  if (!std::isnan(test)) line += "  test " + number(test);
  if (steps_per_second > 0) {
    line += "  " + number(steps_per_second) + " steps/s";
    line += "  ETA " + nn::format_duration(static_cast<double>(total - done) / steps_per_second);
  }
  return line;
}

// Where the progress goes. On a terminal one line is redrawn in place at most ten times a
// second; in a log (CI, a pipe) a redrawn line would become hundreds of '\r'-joined
// fragments, so a plain line is written at most ten times per run, at history points.
class FitProgress {
 public:
  FitProgress(const FitOptions& options)
      : enabled_(options.progress), terminal_(options.progress && isatty(STDERR_FILENO)),
        label_(options.label), total_(options.steps) {}

  void after_step(std::int64_t done, double loss, double test, bool is_history_point, double elapsed) {
    if (!enabled_) return;
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    if (terminal_) {
      if (done < total_ && elapsed - last_draw_ < 0.1) return;
      last_draw_ = elapsed;
      const std::string line = status_line(label_, done, total_, loss, test, rate);
      const std::size_t width = line.size();
      std::cerr << '\r' << line << std::string(drawn_width_ > width ? drawn_width_ - width : 0, ' ') << std::flush;
      drawn_width_ = width;
      return;
    }
    // One line per tenth of the run (and the last), chosen among the history points.
    const std::int64_t tick = total_ > 0 ? done * 10 / total_ : 10;
    if (!is_history_point || (tick == last_tick_ && done < total_)) return;
    last_tick_ = tick;
    std::cerr << status_line(label_, done, total_, loss, test, rate) << '\n';
  }

  // Ends the redrawn line so later output starts on a clean line.
  void finish() {
    if (enabled_ && terminal_ && drawn_width_ > 0) std::cerr << '\n' << std::flush;
    drawn_width_ = 0;
  }

 private:
  bool enabled_, terminal_;
  std::string label_;
  std::int64_t total_;
  double last_draw_ = -1e300;
  std::int64_t last_tick_ = 0;
  std::size_t drawn_width_ = 0;
};

void check_options(const FitOptions& options) {
  auto fail = [](const std::string& problem) { throw std::invalid_argument("fit_adam: " + problem); };
  if (options.steps < 1) fail("steps " + std::to_string(options.steps) + " must be >= 1");
  if (options.log_every < 1) fail("log_every " + std::to_string(options.log_every) + " must be >= 1");
  if (!options.lr_at && !(std::isfinite(options.lr) && options.lr >= 0))
    fail("lr " + number(options.lr) + " must be finite and >= 0");
}

}  // namespace

double FitHistory::final_train_loss() const { return train_loss.empty() ? kNaN : train_loss.back(); }

double FitHistory::final_test_loss() const { return test_loss.empty() ? kNaN : test_loss.back(); }

nlohmann::json FitHistory::to_json() const {
  // JSON has no NaN: a missing test metric is written as null.
  auto with_nulls = [](const std::vector<double>& values) {
    nlohmann::json list = nlohmann::json::array();
    for (double v : values) list.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
    return list;
  };
  return {{"step", step}, {"train_loss", with_nulls(train_loss)}, {"test_loss", with_nulls(test_loss)},
          {"seconds", seconds}};
}

FitHistory fit_adam(nn::Module& model, const std::function<Tensor(std::int64_t step)>& train_loss,
                    const std::function<double()>& test_loss, const FitOptions& options) {
  check_options(options);
  if (!train_loss) throw std::invalid_argument("fit_adam: train_loss is empty");
  nn::AdamOptions adam_options;
  adam_options.lr = options.lr_at ? options.lr_at(0) : options.lr;
  adam_options.weight_decay = options.weight_decay;
  nn::Adam optimizer(model.parameters(), adam_options);

  FitHistory history;
  FitProgress progress(options);
  const auto start = std::chrono::steady_clock::now();
  try {
    for (std::int64_t step = 0; step < options.steps; ++step) {
      if (options.lr_at) optimizer.set_lr(options.lr_at(step));
      optimizer.zero_grad();
      const Tensor loss = train_loss(step);
      if (!loss.defined() || loss.numel() != 1)
        throw std::invalid_argument("fit_adam: train_loss(" + std::to_string(step) + ") must return a scalar, got " +
                                    (loss.defined() ? shape_str(loss.shape()) : std::string("an undefined tensor")));
      const double value = loss.item();
      if (!std::isfinite(value))
        throw std::runtime_error("fit_adam" + (options.label.empty() ? "" : " (" + options.label + ")") +
                                 ": the training loss is " + number(value) + " at step " + std::to_string(step) +
                                 " of " + std::to_string(options.steps));
      backward(loss);
      optimizer.step();

      const std::int64_t done = step + 1;
      const bool is_history_point = done % options.log_every == 0 || done == options.steps;
      double test = kNaN;
      if (is_history_point) {
        test = test_loss ? test_loss() : kNaN;
        history.step.push_back(done);
        history.train_loss.push_back(value);
        history.test_loss.push_back(test);
      }
      progress.after_step(done, value, is_history_point ? test : history.final_test_loss(), is_history_point,
                          seconds_since(start));
    }
  } catch (...) {
    progress.finish();
    throw;
  }
  progress.finish();
  history.seconds = seconds_since(start);
  return history;
}

}  // namespace symgrad::pde::hamiltonian
