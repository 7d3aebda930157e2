#include "nn/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <utility>

#include "nn/optim/optimizer.hpp"

namespace symgrad::nn {

namespace {

void check_rate(const char* where, const char* name, double value) {
  if (!(value >= 0.0) || !std::isfinite(value))
    throw std::invalid_argument(std::string(where) + ": " + name + " must be finite and >= 0, got " +
                                optim_detail::number_text(value));
}

void check_step(const char* where, std::int64_t step) {
  if (step < 0)
    throw std::invalid_argument(std::string(where) + ".lr_at: step must be >= 0, got " + std::to_string(step));
}

// From `start` at pct = 0 to `end` at pct = 1 along half a cosine period.
double cosine_between(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
}

}  // namespace

ConstantLR::ConstantLR(double lr) : lr_(lr) { check_rate("ConstantLR", "lr", lr); }

double ConstantLR::lr_at(std::int64_t step) const {
  check_step("ConstantLR", step);
  return lr_;
}

StepLR::StepLR(double base_lr, std::int64_t step_size, double gamma)
    : base_lr_(base_lr), gamma_(gamma), step_size_(step_size) {
  check_rate("StepLR", "base_lr", base_lr);
  check_rate("StepLR", "gamma", gamma);
  if (step_size < 1)
    throw std::invalid_argument("StepLR: step_size must be >= 1, got " + std::to_string(step_size));
}

double StepLR::lr_at(std::int64_t step) const {
  check_step("StepLR", step);
  return base_lr_ * std::pow(gamma_, static_cast<double>(step / step_size_));
}

CosineLR::CosineLR(double base_lr, std::int64_t total_steps, double min_lr)
    : base_lr_(base_lr), min_lr_(min_lr), total_steps_(total_steps) {
  check_rate("CosineLR", "base_lr", base_lr);
  check_rate("CosineLR", "min_lr", min_lr);
  if (total_steps < 1)
    throw std::invalid_argument("CosineLR: total_steps must be >= 1, got " + std::to_string(total_steps));
}

double CosineLR::lr_at(std::int64_t step) const {
  check_step("CosineLR", step);
  const double pct = static_cast<double>(std::min(step, total_steps_)) / static_cast<double>(total_steps_);
  return cosine_between(base_lr_, min_lr_, pct);
}

LinearWarmup::LinearWarmup(std::unique_ptr<LRSchedule> inner, std::int64_t warmup_steps, double start_factor)
    : inner_(std::move(inner)), warmup_steps_(warmup_steps), start_factor_(start_factor) {
  if (!inner_) throw std::invalid_argument("LinearWarmup: the inner schedule is null");
  if (warmup_steps < 0)
    throw std::invalid_argument("LinearWarmup: warmup_steps must be >= 0, got " + std::to_string(warmup_steps));
  if (!(start_factor >= 0.0 && start_factor <= 1.0))
    throw std::invalid_argument("LinearWarmup: start_factor must be in [0, 1], got " + optim_detail::number_text(start_factor));
}

double LinearWarmup::lr_at(std::int64_t step) const {
  check_step("LinearWarmup", step);
  if (step >= warmup_steps_) return inner_->lr_at(step - warmup_steps_);
  const double factor = start_factor_ + (1.0 - start_factor_) * static_cast<double>(step) /
                                            static_cast<double>(warmup_steps_);
  return inner_->lr_at(0) * factor;
}

OneCycleLR::OneCycleLR(double max_lr, std::int64_t total_steps, double pct_start, double div_factor,
                       double final_div_factor)
    : max_lr_(max_lr),
      initial_lr_(max_lr / div_factor),
      final_lr_(max_lr / div_factor / final_div_factor),
      warmup_end_(pct_start * static_cast<double>(total_steps) - 1.0),
      total_steps_(total_steps) {
  check_rate("OneCycleLR", "max_lr", max_lr);
  if (!(div_factor > 0.0) || !std::isfinite(div_factor))
    throw std::invalid_argument("OneCycleLR: div_factor must be finite and > 0, got " + optim_detail::number_text(div_factor));
  if (!(final_div_factor > 0.0) || !std::isfinite(final_div_factor))
    throw std::invalid_argument("OneCycleLR: final_div_factor must be finite and > 0, got " +
                                optim_detail::number_text(final_div_factor));
  if (!(pct_start > 0.0 && pct_start < 1.0))
    throw std::invalid_argument("OneCycleLR: pct_start must be in (0, 1), got " + optim_detail::number_text(pct_start));
  // Both phases need a length > 0, or their fraction is 0 / 0.
  if (!(warmup_end_ > 0.0))
    throw std::invalid_argument("OneCycleLR: pct_start * total_steps must exceed 1 (got " +
                                optim_detail::number_text(pct_start) + " * " + std::to_string(total_steps) +
                                "): the rise needs at least two steps");
}

double OneCycleLR::lr_at(std::int64_t step) const {
  check_step("OneCycleLR", step);
  const auto s = static_cast<double>(std::min(step, total_steps_ - 1));
  if (s <= warmup_end_) return cosine_between(initial_lr_, max_lr_, s / warmup_end_);
  const double last = static_cast<double>(total_steps_ - 1);
  return cosine_between(max_lr_, final_lr_, (s - warmup_end_) / (last - warmup_end_));
}

}  // namespace symgrad::nn
