#pragma once
// The training loop for classifiers: fit() runs epochs of minibatch steps (forward,
// cross-entropy, backward, optional gradient clipping, optimizer step), evaluates on a
// test set after each epoch, and leaves behind what a person wants to look at: a
// progress line while it runs, metrics.jsonl, a chart of the curves and a checkpoint
// it can resume from.
//
// Reproducibility: a step depends only on the model and optimizer state, the batch
// (DataLoader::batch is a pure function of seed, epoch and index) and the learning
// rate (LRSchedule::lr_at is a pure function of the step). The checkpoint holds all of
// that state, so a run resumed from the checkpoint of epoch k continues exactly as
// the uninterrupted run did: same weights, same metrics (timings aside), given the
// same thread count. (Dropout keeps its position in its random stream as a buffer,
// so its masks continue too.)
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/data/loader.hpp"
#include "nn/loss.hpp"
#include "nn/module.hpp"
#include "nn/optim/optimizer.hpp"
#include "nn/optim/schedule.hpp"
#include "nn/train/metrics.hpp"
#include "nn/train/plot.hpp"
#include "nn/train/progress.hpp"

namespace symgrad::nn {

struct EvalResult {
  double loss = 0.0;      // mean cross-entropy per example
  double accuracy = 0.0;  // fraction in [0, 1]
  std::int64_t examples = 0;
};

// Mean cross-entropy and accuracy of `model` over every batch of `loader` (its epoch
// `epoch` order, which does not matter for the means), in eval mode and without
// recording a graph. The model's train/eval mode is restored afterwards.
EvalResult evaluate(Module& model, const DataLoader& loader, std::int64_t epoch = 0);
// Predicted classes (argmax of the logits) for every example of the loader's epoch
// `epoch`, with the labels, in batch order: for confusion matrices.
struct Predictions {
  std::vector<std::int64_t> predicted, labels;
};
Predictions predict(Module& model, const DataLoader& loader, std::int64_t epoch = 0);

struct FitOptions {
  std::int64_t epochs = 1;
  std::string log_path;         // metrics.jsonl; "" writes none
  std::int64_t log_every_steps = 0;  // also log a "step" line every N steps (0: no)
  std::string svg_path;         // training curves, redrawn after every epoch; "" for none
  bool progress = true;         // the status line (ProgressReporter::Mode::automatic)
  ProgressReporter::Options progress_options;  // mode/stream/clock (tests use these)
  std::string checkpoint_path;  // written after every epoch; "" for none
  bool resume = false;          // continue from checkpoint_path if that file exists
  std::optional<double> clip_grad_norm;  // max L2 norm of all gradients together
  CrossEntropyOptions loss;     // the training loss (evaluation uses plain cross-entropy)
  nlohmann::json checkpoint_metadata;  // stored under "user" in the checkpoint (e.g. the config)
  // Called after each epoch, once its metrics are logged and its checkpoint written.
  std::function<void(const EpochMetrics&)> on_epoch_end;
};

// Trains `model` with `optimizer` for options.epochs epochs over `train` and returns
// the history: one EpochMetrics per epoch, including those done before a resume.
// `schedule` (may be null: the optimizer's rate stays) sets the learning rate before
// every step: optimizer.set_lr(schedule->lr_at(global_step)), global_step counting
// from 0 over all epochs. `test` may be null (test metrics are then NaN). Throws
// std::runtime_error naming the epoch and step if the loss stops being finite.
std::vector<EpochMetrics> fit(Module& model, Optimizer& optimizer, const LRSchedule* schedule,
                              const DataLoader& train, const DataLoader* test, const FitOptions& options);

// ---- checkpoints ---------------------------------------------------------------------
// One archive (nn/serialize.hpp) with the model's named_state() under "model.<name>",
// the optimizer's state tensors under "optimizer.<name>", and metadata
//   {"kind": "symgrad.checkpoint", "epoch": completed epochs, "global_step": steps done,
//    "optimizer": the optimizer's scalars, "history": [EpochMetrics...], "user": ...}.
struct Checkpoint {
  std::int64_t epoch = 0, global_step = 0;
  std::vector<EpochMetrics> history;
  nlohmann::json user;
};
void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                     const Checkpoint& checkpoint);
// Restores model and optimizer from the file, all or nothing (every tensor is checked
// against the model before any is copied), and returns the rest.
Checkpoint load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer);

// The charts fit() draws: loss and accuracy (in %) against epoch, train and test;
// `steps` (may be empty) adds the per-step training loss, at fractional epochs.
std::vector<Chart> training_charts(const std::vector<EpochMetrics>& history,
                                   const std::vector<StepMetrics>& steps = {},
                                   std::int64_t steps_per_epoch = 0);

}  // namespace symgrad::nn
