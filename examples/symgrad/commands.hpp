#pragma once
// The four things the `symgrad` command does. Each returns the process exit code and
// throws (std::exception) on errors, which main() prints.
#include <cstdint>
#include <string>

namespace symgrad::cli {

struct TrainArgs {
  std::string config_path;
  std::string out_dir;       // overrides the config's out_dir when not empty
  std::int64_t epochs = 0;   // overrides when > 0
  int threads = 0;           // overrides when > 0
  bool resume = false;       // continue from <out>/checkpoint.cbor if it exists
  bool quiet = false;        // no progress line
};

int run_train(const TrainArgs& args);
int run_eval(const std::string& model_path, const std::string& config_path, int threads);
int run_summary(const std::string& config_path);

struct AuditArgs {
  std::string model_path, config_path;
  std::string json_path;        // "" -> audit.json next to the model file
  bool float64 = true;          // audit in float64 (tolerance 1e-12) or float32 (1e-4)
  std::int64_t batch = 64;      // test images the loss is taken over
  double condition_number = 10; // of the random group elements
  bool fold = true;             // fold a PDEResNet's BatchNorms first (its streams need it)
  int threads = 0;
};
int run_audit(const AuditArgs& args);

}  // namespace symgrad::cli
