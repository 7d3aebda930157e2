#pragma once
// What pde_resnet_fashion leaves behind once a model has trained: the table it prints,
// the chart of both models' curves (curves.svg) and the JSON file of the same numbers.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/train/metrics.hpp"

namespace symgrad::example {

// Saved weights loaded into a freshly built model, compared with the trained one on the
// test set: the check that the file holds everything the model's predictions depend on.
struct ReloadCheck {
  std::string weights_path;
  std::int64_t examples = 0;
  std::int64_t differing_predictions = 0;  // test images whose predicted class changed
  double max_abs_logit_difference = 0.0;
  bool identical() const { return examples > 0 && differing_predictions == 0; }
};

struct TrainedModel {
  std::string name;   // "pde" or "baseline": the run's subdirectory
  std::string label;  // "PDEResNet-B", "ReLU ResNet-B": what the table and chart call it
  std::string block;  // "quasi_linear" or "basic"
  std::int64_t parameters = 0;
  std::int64_t macs_per_image = 0;  // forward multiply-accumulates, one 28x28 image
  std::vector<nn::EpochMetrics> history;
  std::vector<nn::StepMetrics> steps;  // running training loss every few steps
  std::int64_t steps_per_epoch = 0;
  ReloadCheck reload;
};

// The step lines ({"kind": "step", ...}) of a metrics.jsonl that fit() wrote.
std::vector<nn::StepMetrics> read_step_metrics(const std::string& metrics_path);

// Two panels with every model in each: test accuracy per epoch, and training loss (the
// epoch means, plus the running mean every few steps when it was logged).
void write_curves(const std::string& svg_path, const std::vector<TrainedModel>& models);

// model | parameters | MACs | test accuracy after each epoch | seconds per epoch.
std::string results_table(const std::vector<TrainedModel>& models);

// The numbers of the table and more (every epoch's metrics, the reload check), with
// `run` (the flags and the training recipe) alongside.
nlohmann::json results_json(const nlohmann::json& run, const std::vector<TrainedModel>& models);
void write_json(const std::string& path, const nlohmann::json& document);

}  // namespace symgrad::example
