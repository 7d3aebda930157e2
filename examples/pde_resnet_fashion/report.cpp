#include "report.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "nn/train/plot.hpp"

namespace symgrad::example {

namespace {
using nlohmann::json;

double mean_seconds(const std::vector<nn::EpochMetrics>& history) {
  double total = 0.0;
  for (const nn::EpochMetrics& m : history) total += m.seconds;
  return history.empty() ? 0.0 : total / static_cast<double>(history.size());
}

// 143162 -> "143,162"
std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}
}  // namespace

std::vector<nn::StepMetrics> read_step_metrics(const std::string& metrics_path) {
  std::vector<nn::StepMetrics> steps;
  for (const json& line : nn::read_json_lines(metrics_path))
    if (line.value("kind", "") == "step")
      steps.push_back({line.at("epoch").get<std::int64_t>(), line.at("step").get<std::int64_t>(),
                       line.at("global_step").get<std::int64_t>(), line.at("loss").get<double>(),
                       line.at("acc").get<double>(), line.at("lr").get<double>()});
  return steps;
}

void write_curves(const std::string& svg_path, const std::vector<TrainedModel>& models) {
  nn::Chart accuracy{"Test accuracy", "epoch", "accuracy (%)", {}, false};
  nn::Chart loss{"Training loss", "epoch", "cross-entropy", {}, false};
  for (const TrainedModel& model : models) {
    nn::Series test_acc{model.label, {}, {}}, train_loss{model.label + ", epoch mean", {}, {}};
    for (const nn::EpochMetrics& m : model.history) {
      test_acc.x.push_back(static_cast<double>(m.epoch));
      test_acc.y.push_back(100.0 * m.test_acc);
      train_loss.x.push_back(static_cast<double>(m.epoch));
      train_loss.y.push_back(m.train_loss);
    }
    accuracy.series.push_back(test_acc);
    loss.series.push_back(train_loss);
    // The running mean restarts every epoch, so it is drawn at fractional epochs:
    // step s of epoch e sits at e - 1 + s / steps_per_epoch.
    if (!model.steps.empty() && model.steps_per_epoch > 0) {
      nn::Series running{model.label + ", running mean per step", {}, {}};
      for (const nn::StepMetrics& s : model.steps) {
        running.x.push_back(static_cast<double>(s.epoch - 1) +
                            static_cast<double>(s.step) / static_cast<double>(model.steps_per_epoch));
        running.y.push_back(s.loss);
      }
      loss.series.push_back(running);
    }
  }
  nn::write_svg(svg_path, {accuracy, loss});
}

std::string results_table(const std::vector<TrainedModel>& models) {
  std::size_t epochs = 0, label_width = 5;
  for (const TrainedModel& model : models) {
    epochs = std::max(epochs, model.history.size());
    label_width = std::max(label_width, model.label.size());
  }
  const auto pad = [](std::string text, std::size_t width) {
    return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
  };
  std::string header = "model" + std::string(label_width - 5, ' ') + pad("parameters", 12) + pad("MACs/image", 12);
  for (std::size_t e = 1; e <= epochs; ++e) header += pad("epoch " + std::to_string(e), 10);
  header += pad("s/epoch", 10);
  std::string table = "test accuracy after each epoch:\n" + header + "\n" + std::string(header.size(), '-') + "\n";
  for (const TrainedModel& model : models) {
    std::string row = model.label + std::string(label_width - model.label.size(), ' ');
    row += pad(with_commas(model.parameters), 12);
    row += pad(format("%.1fM", static_cast<double>(model.macs_per_image) / 1e6), 12);
    for (std::size_t e = 0; e < epochs; ++e)
      row += pad(e < model.history.size() ? format("%.2f%%", 100.0 * model.history[e].test_acc) : "", 10);
    row += pad(format("%.1f", mean_seconds(model.history)), 10);
    table += row + "\n";
  }
  return table;
}

json results_json(const json& run, const std::vector<TrainedModel>& models) {
  json list = json::array();
  for (const TrainedModel& model : models) {
    json test_acc = json::array(), train_loss = json::array(), seconds = json::array(), epochs = json::array();
    for (const nn::EpochMetrics& m : model.history) {
      test_acc.push_back(m.test_acc);
      train_loss.push_back(m.train_loss);
      seconds.push_back(m.seconds);
      epochs.push_back(nn::to_json(m));
    }
    list.push_back({{"name", model.name},
                    {"label", model.label},
                    {"block", model.block},
                    {"parameters", model.parameters},
                    {"macs_per_image", model.macs_per_image},
                    {"test_acc", test_acc},
                    {"train_loss", train_loss},
                    {"seconds_per_epoch", seconds},
                    {"mean_seconds_per_epoch", mean_seconds(model.history)},
                    {"final_test_acc", model.history.empty() ? json() : json(model.history.back().test_acc)},
                    {"epochs", epochs},
                    {"reload",
                     {{"weights", model.reload.weights_path},
                      {"examples", model.reload.examples},
                      {"differing_predictions", model.reload.differing_predictions},
                      {"max_abs_logit_difference", model.reload.max_abs_logit_difference},
                      {"identical_predictions", model.reload.identical()}}}});
  }
  return {{"example", "pde_resnet_fashion"}, {"run", run}, {"models", list}};
}

void write_json(const std::string& path, const json& document) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::out | std::ios::trunc);
  out << document.dump(2) << "\n";
  if (!out.flush()) throw std::runtime_error("pde_resnet_fashion: cannot write --json file '" + path + "'");
}

}  // namespace symgrad::example
