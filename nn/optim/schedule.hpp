#pragma once
// Learning-rate schedules: lr_at(step) is the rate for optimizer step `step`,
// counting from 0 (lr_at(0) is the rate of the first step). It is a pure function of
// the step, so resuming from a checkpoint needs only the step count, and the values
// equal what the matching PyTorch 1.13 scheduler sets after `step` calls of
// scheduler.step() (PyTorch computes most of them recursively; these are the closed
// forms, equal to within rounding). The training loop applies them:
//   optimizer.set_lr(schedule.lr_at(optimizer.step_count())); optimizer.step();
#include <cstdint>
#include <memory>

namespace symgrad::nn {

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  // Throws std::invalid_argument for step < 0.
  virtual double lr_at(std::int64_t step) const = 0;
};

// lr at every step.
class ConstantLR : public LRSchedule {
 public:
  explicit ConstantLR(double lr);
  double lr_at(std::int64_t step) const override;

 private:
  double lr_;
};

// base_lr * gamma^floor(step / step_size)  (torch.optim.lr_scheduler.StepLR).
class StepLR : public LRSchedule {
 public:
  StepLR(double base_lr, std::int64_t step_size, double gamma = 0.1);
  double lr_at(std::int64_t step) const override;

 private:
  double base_lr_, gamma_;
  std::int64_t step_size_;
};

// Cosine annealing from base_lr at step 0 to min_lr at total_steps, where it stays:
// min_lr + (base_lr - min_lr) (1 + cos(pi step / total_steps)) / 2 (CosineAnnealingLR
// with T_max = total_steps, eta_min = min_lr, which would rise again after T_max).
class CosineLR : public LRSchedule {
 public:
  CosineLR(double base_lr, std::int64_t total_steps, double min_lr = 0.0);
  double lr_at(std::int64_t step) const override;

 private:
  double base_lr_, min_lr_;
  std::int64_t total_steps_;
};

// A linear ramp before another schedule: for step < warmup_steps the rate is
// inner.lr_at(0) * (start_factor + (1 - start_factor) step / warmup_steps), then
// inner.lr_at(step - warmup_steps): the inner schedule starts when the warm-up ends
// (PyTorch: SequentialLR of LinearLR(start_factor, total_iters = warmup_steps) and
// the inner scheduler, milestone warmup_steps).
class LinearWarmup : public LRSchedule {
 public:
  // start_factor in [0, 1]; 1/3 is LinearLR's default.
  LinearWarmup(std::unique_ptr<LRSchedule> inner, std::int64_t warmup_steps,
               double start_factor = 1.0 / 3.0);
  double lr_at(std::int64_t step) const override;

 private:
  std::unique_ptr<LRSchedule> inner_;
  std::int64_t warmup_steps_;
  double start_factor_;
};

// The 1cycle policy (Smith & Topin, 2017) as PyTorch's OneCycleLR with cosine
// annealing, for the learning rate only (no momentum cycling): from
// max_lr / div_factor up to max_lr over the first pct_start of the steps, then down to
// max_lr / (div_factor * final_div_factor) at step total_steps - 1, where it stays.
class OneCycleLR : public LRSchedule {
 public:
  OneCycleLR(double max_lr, std::int64_t total_steps, double pct_start = 0.3,
             double div_factor = 25.0, double final_div_factor = 1e4);
  double lr_at(std::int64_t step) const override;

 private:
  double max_lr_, initial_lr_, final_lr_;
  double warmup_end_;  // the step where the rise ends, pct_start * total_steps - 1
  std::int64_t total_steps_;
};

}  // namespace symgrad::nn
