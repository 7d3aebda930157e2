#pragma once
// The three things the `symgrad` command does. Each returns the process exit code and
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

}  // namespace symgrad::cli
