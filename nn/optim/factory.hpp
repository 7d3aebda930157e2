#pragma once
// Optimizers and schedules from JSON, for training configs. Unknown keys and types
// are errors that name them; a missing key takes the default below.
//
// Optimizer specs:
//   {"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0, "nesterov": false,
//    "weight_decay": 0}                                              ("lr" required)
//   {"type": "adam" | "adamw", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
//    "weight_decay": 0 (adam) | 1e-2 (adamw)}
//
// Schedule specs (null means {"type": "constant"}), for a run of total_steps steps
// starting at base_lr (normally the optimizer's lr):
//   {"type": "constant"}
//   {"type": "step", "step_size": 1000, "gamma": 0.1}                 (step_size required)
//   {"type": "cosine", "min_lr": 0}                  (annealed over the steps after warm-up)
//   {"type": "onecycle", "max_lr": base_lr, "pct_start": 0.3, "div_factor": 25,
//    "final_div_factor": 1e4}                        (has its own rise: no warm-up keys)
// Every type but onecycle also takes "warmup_steps" (default 0) and
// "warmup_start_factor" (default 1/3): a LinearWarmup before the schedule.
#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/optim/optimizer.hpp"
#include "nn/optim/schedule.hpp"

namespace symgrad::nn {

std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& spec, std::vector<Tensor> params);

std::unique_ptr<LRSchedule> make_schedule(const nlohmann::json& spec, double base_lr,
                                          std::int64_t total_steps);

}  // namespace symgrad::nn
