#pragma once
// What a training run measures, and the JSON Lines file it leaves behind.
//
// metrics.jsonl holds one JSON object per line: per epoch
//   {"kind": "epoch", "epoch": 3, "train_loss": .., "train_acc": .., "test_loss": ..,
//    "test_acc": .., "lr": .., "seconds": .., "images_per_s": ..}
// and, if asked for, every N steps
//   {"kind": "step", "epoch": 3, "step": 200, "global_step": 2076, "loss": .., "acc": .., "lr": ..}
// One object per line means a crashed run still leaves a readable prefix, and tools
// (jq, pandas.read_json(lines=True)) read it without a custom parser.
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tensor.hpp"

namespace symgrad::nn {

// Mean of values weighted by counts: add(batch_mean_loss, batch_size) per batch gives
// the per-example mean over the epoch, whatever the size of the last batch.
class RunningMean {
 public:
  void add(double value, std::int64_t count = 1);
  double mean() const;  // NaN before the first add
  std::int64_t count() const { return count_; }
  void reset() { *this = RunningMean(); }

 private:
  double sum_ = 0.0;
  std::int64_t count_ = 0;
};

// Rows of logits [N, C] whose argmax equals labels[i]. Ties go to the first maximum;
// a NaN counts as the maximum (as torch.argmax does), so a diverged row is never
// silently right. Throws on a shape mismatch or a label outside [0, C).
std::int64_t count_correct(const Tensor& logits, const std::vector<std::int64_t>& labels);
// The argmax of each row of logits [N, C], with the tie and NaN rules above.
std::vector<std::int64_t> argmax_rows(const Tensor& logits);

struct EpochMetrics {
  std::int64_t epoch = 0;  // 1-based
  double train_loss = 0.0, train_acc = 0.0;
  double test_loss = 0.0, test_acc = 0.0;  // NaN when there is no test set
  double lr = 0.0;                         // the learning rate at the epoch's last step
  double seconds = 0.0;                    // wall time of the epoch, evaluation included
  double images_per_s = 0.0;               // training throughput
};

nlohmann::json to_json(const EpochMetrics& m);
// Reads the object to_json wrote; throws naming the missing key.
EpochMetrics epoch_metrics_from_json(const nlohmann::json& j);

struct StepMetrics {
  std::int64_t epoch = 0, step = 0, global_step = 0;  // step is 1-based within the epoch
  double loss = 0.0, acc = 0.0, lr = 0.0;             // running means over the epoch so far
};
nlohmann::json to_json(const StepMetrics& m);

// Appends JSON Lines to a file, flushing after each line.
class MetricsLog {
 public:
  // Starts a new log (truncating any old file).
  explicit MetricsLog(const std::string& path);
  // Continues the log of a run resumed after `completed_epochs` epochs: keeps the lines
  // that belong to those epochs and drops any written later (a run interrupted between
  // logging an epoch and checkpointing it would otherwise log that epoch twice).
  static MetricsLog resume(const std::string& path, std::int64_t completed_epochs);

  void write(const nlohmann::json& object);
  void write(const EpochMetrics& m) { write(to_json(m)); }
  void write(const StepMetrics& m) { write(to_json(m)); }
  const std::string& path() const { return path_; }

 private:
  MetricsLog(const std::string& path, std::ios::openmode mode);
  std::string path_;
  std::ofstream out_;
};

// Every object in a JSON Lines file (blank lines skipped); throws naming the line.
std::vector<nlohmann::json> read_json_lines(const std::string& path);

}  // namespace symgrad::nn
