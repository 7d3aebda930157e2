#pragma once
// The training config of the `symgrad` command, read from JSON:
//
//   {"model": <build_model spec>, "optimizer": <make_optimizer spec>,
//    "schedule": <make_schedule spec, optional>,
//    "data": {"dataset": "fashion-mnist", "dir": "", "batch_size": 64,
//             "test_batch_size": 1000, "mean": 0.0, "std": 1.0, "crop_padding": 0,
//             "horizontal_flip": false},
//    "epochs": 5, "seed": 0, "threads": 0, "dtype": "float32", "out_dir": "",
//    "label_smoothing": 0.0, "clip_grad_norm": null, "log_every_steps": 0}
//
// Every key but "model" and "optimizer" may be left out (the defaults above; threads 0
// means the library's default, out_dir "" means runs/<config file name>). Unknown keys
// are errors, so a typo cannot silently fall back to a default; every error names the
// key, e.g.  config examples/configs/cnn.json: data.batch_size must be an integer >= 1, got "64"
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/dtype.hpp"

namespace symgrad::cli {

struct DataConfig {
  std::string dataset = "fashion-mnist";
  std::string dir;  // "" -> the dataset's default location
  std::int64_t batch_size = 64, test_batch_size = 1000;
  double mean = 0.0, std = 1.0;
  std::int64_t crop_padding = 0;
  bool horizontal_flip = false;
};

struct RunConfig {
  nlohmann::json model, optimizer, schedule;  // schedule null -> constant rate
  DataConfig data;
  std::int64_t epochs = 5;
  std::uint64_t seed = 0;
  int threads = 0;  // 0: leave the library's default
  DType dtype = DType::f32;
  std::string out_dir;
  double label_smoothing = 0.0;
  double clip_grad_norm = 0.0;  // 0: off
  std::int64_t log_every_steps = 0;
};

// Parses and checks a config document. `source` names it in error messages.
RunConfig parse_config(const nlohmann::json& j, const std::string& source);
// Reads the file and parses it; out_dir defaults to runs/<file name without .json>.
RunConfig load_config(const std::string& path);
// The config with every default filled in: what config.json in the output directory holds.
nlohmann::json to_json(const RunConfig& c);

}  // namespace symgrad::cli
