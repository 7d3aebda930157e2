#include "nn/train/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace symgrad::nn {

void RunningMean::add(double value, std::int64_t count) {
  if (count < 0) throw std::invalid_argument("RunningMean::add: count " + std::to_string(count) + " < 0");
  sum_ += value * static_cast<double>(count);
  count_ += count;
}

double RunningMean::mean() const {
  return count_ == 0 ? std::numeric_limits<double>::quiet_NaN() : sum_ / static_cast<double>(count_);
}

namespace {
std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

template <class T>
std::vector<std::int64_t> argmax_rows_typed(const T* data, std::int64_t rows, std::int64_t cols) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* row = data + r * cols;
    std::int64_t best = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      if (std::isnan(row[c])) {
        best = c;
        break;
      }
      if (row[c] > row[best]) best = c;
    }
    out[static_cast<std::size_t>(r)] = best;
  }
  return out;
}
}  // namespace

std::vector<std::int64_t> argmax_rows(const Tensor& logits) {
  if (!logits.defined() || logits.dim() != 2 || logits.size(1) < 1)
    throw std::invalid_argument("argmax_rows: logits must be [N, C] with C >= 1, got " +
                                (logits.defined() ? shape_text(logits.shape()) : std::string("undefined")));
  const std::int64_t rows = logits.size(0), cols = logits.size(1);
  return dispatch_dtype(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    return argmax_rows_typed(logits.data<T>(), rows, cols);
  });
}

std::int64_t count_correct(const Tensor& logits, const std::vector<std::int64_t>& labels) {
  const std::vector<std::int64_t> predicted = argmax_rows(logits);
  if (predicted.size() != labels.size())
    throw std::invalid_argument("count_correct: logits " + shape_text(logits.shape()) + " has " +
                                std::to_string(predicted.size()) + " rows but there are " +
                                std::to_string(labels.size()) + " labels");
  const std::int64_t classes = logits.size(1);
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes)
      throw std::invalid_argument("count_correct: label " + std::to_string(labels[i]) + " at index " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(classes) + ")");
    correct += predicted[i] == labels[i];
  }
  return correct;
}

// ---- JSON ---------------------------------------------------------------------------

namespace {
// nlohmann writes NaN and inf as null (JSON has no NaN); read null back as NaN.
double number_at(const nlohmann::json& j, const char* key, const char* what) {
  if (!j.is_object() || !j.contains(key))
    throw std::invalid_argument(std::string(what) + ": missing key '" + key + "'");
  const nlohmann::json& v = j.at(key);
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!v.is_number())
    throw std::invalid_argument(std::string(what) + ": key '" + key + "' must be a number, got " + v.dump());
  return v.get<double>();
}
}  // namespace

nlohmann::json to_json(const EpochMetrics& m) {
  return {{"kind", "epoch"},         {"epoch", m.epoch},       {"train_loss", m.train_loss},
          {"train_acc", m.train_acc}, {"test_loss", m.test_loss}, {"test_acc", m.test_acc},
          {"lr", m.lr},               {"seconds", m.seconds},   {"images_per_s", m.images_per_s}};
}

EpochMetrics epoch_metrics_from_json(const nlohmann::json& j) {
  const char* what = "epoch_metrics_from_json";
  EpochMetrics m;
  m.epoch = static_cast<std::int64_t>(number_at(j, "epoch", what));
  m.train_loss = number_at(j, "train_loss", what);
  m.train_acc = number_at(j, "train_acc", what);
  m.test_loss = number_at(j, "test_loss", what);
  m.test_acc = number_at(j, "test_acc", what);
  m.lr = number_at(j, "lr", what);
  m.seconds = number_at(j, "seconds", what);
  m.images_per_s = number_at(j, "images_per_s", what);
  return m;
}

nlohmann::json to_json(const StepMetrics& m) {
  return {{"kind", "step"}, {"epoch", m.epoch}, {"step", m.step}, {"global_step", m.global_step},
          {"loss", m.loss}, {"acc", m.acc},     {"lr", m.lr}};
}

// ---- the log file -----------------------------------------------------------------

MetricsLog::MetricsLog(const std::string& path) : MetricsLog(path, std::ios::out | std::ios::trunc) {}

MetricsLog::MetricsLog(const std::string& path, std::ios::openmode mode) : path_(path), out_(path, mode) {
  if (!out_) throw std::runtime_error("MetricsLog: cannot open '" + path + "' for writing");
}

std::vector<nlohmann::json> read_json_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("read_json_lines: cannot open '" + path + "'");
  std::vector<nlohmann::json> out;
  std::string line;
  for (std::int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error("read_json_lines: '" + path + "' line " + std::to_string(number) +
                               " is not JSON: " + e.what());
    }
  }
  return out;
}

MetricsLog MetricsLog::resume(const std::string& path, std::int64_t completed_epochs) {
  std::string kept;
  {
    std::ifstream in(path);
    std::string line;
    while (in && std::getline(in, line)) {
      // A torn last line (the process died mid-write) is dropped like a later epoch.
      const nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!object.is_object() || !object.contains("epoch") || !object["epoch"].is_number()) continue;
      if (object["epoch"].get<std::int64_t>() <= completed_epochs) kept += line + '\n';
    }
  }
  // Rewritten through a temporary file so a crash here cannot lose the kept lines.
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::out | std::ios::trunc);
    out << kept;
    if (!out.flush()) throw std::runtime_error("MetricsLog::resume: cannot write '" + temp + "'");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("MetricsLog::resume: cannot replace '" + path + "'");
  return MetricsLog(path, std::ios::out | std::ios::app);
}

void MetricsLog::write(const nlohmann::json& object) {
  out_ << object.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error("MetricsLog: writing '" + path_ + "' failed");
}

}  // namespace symgrad::nn
