#include "nn/optim/adam.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/kernels/optim_update.hpp"

namespace symgrad::nn {

namespace {

void check_options(const std::string& where, const AdamOptions& o) {
  optim_detail::check_nonnegative(where, "lr", o.lr);
  optim_detail::check_unit_interval(where, "beta1", o.beta1);
  optim_detail::check_unit_interval(where, "beta2", o.beta2);
  optim_detail::check_nonnegative(where, "eps", o.eps);
  optim_detail::check_nonnegative(where, "weight_decay", o.weight_decay);
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam("Adam", false, std::move(params), options) {}

Adam::Adam(std::string name, bool decoupled_weight_decay, std::vector<Tensor> params, AdamOptions options)
    : Optimizer(std::move(name), std::move(params), options.lr),
      options_(options),
      decoupled_weight_decay_(decoupled_weight_decay) {
  check_options(type_name(), options_);
  exp_avg_.resize(this->params().size());
  exp_avg_sq_.resize(this->params().size());
  steps_.assign(this->params().size(), 0);
}

void Adam::step() {
  NoGradGuard no_grad;  // parameters are written in place, never recorded
  const std::vector<Tensor>& params = this->params();
  std::vector<Tensor> grads(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {  // every check before any write
    grads[i] = checked_grad(i);
    if (!grads[i].defined()) continue;
    check_buffer(i, exp_avg_[i], "exp_avg");
    check_buffer(i, exp_avg_sq_[i], "exp_avg_sq");
  }
  kernels::AdamStep s;
  s.lr = lr();
  s.beta1 = options_.beta1;
  s.beta2 = options_.beta2;
  s.eps = options_.eps;
  s.weight_decay = options_.weight_decay;
  s.decoupled_weight_decay = decoupled_weight_decay_;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor param = params[i];
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = zeros(param.shape(), param.dtype());
      exp_avg_sq_[i] = zeros(param.shape(), param.dtype());
    }
    const auto t = static_cast<double>(++steps_[i]);
    s.bias_correction1 = 1.0 - std::pow(options_.beta1, t);
    s.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(options_.beta2, t));
    kernels::adam_update(param.dtype(), param.raw_data(), grads[i].raw_data(), exp_avg_[i].raw_data(),
                         exp_avg_sq_[i].raw_data(), param.numel(), s);
    mark_updated(i);
  }
  count_step();
}

void Adam::save_state(OptimizerState& state) const {
  state.scalars["beta1"] = options_.beta1;
  state.scalars["beta2"] = options_.beta2;
  state.scalars["eps"] = options_.eps;
  state.scalars["weight_decay"] = options_.weight_decay;
  state.scalars["param_steps"] = steps_;
  add_buffers(state, "exp_avg", exp_avg_);
  add_buffers(state, "exp_avg_sq", exp_avg_sq_);
}

void Adam::restore_state(const OptimizerState& state) {
  const std::string where = type_name() + ".load_state_dict";
  AdamOptions o;
  o.lr = state_number(state, "lr");
  o.beta1 = state_number(state, "beta1");
  o.beta2 = state_number(state, "beta2");
  o.eps = state_number(state, "eps");
  o.weight_decay = state_number(state, "weight_decay");
  check_options(where, o);

  const std::size_t count = params().size();
  const nlohmann::json* steps_json = state.scalars.contains("param_steps") ? &state.scalars.at("param_steps") : nullptr;
  if (steps_json == nullptr || !steps_json->is_array() || steps_json->size() != count)
    throw std::invalid_argument(where + ": 'param_steps' must be a list of " + std::to_string(count) +
                                " step counts");
  std::vector<std::int64_t> steps(count);
  for (std::size_t i = 0; i < count; ++i) {
    const nlohmann::json& v = (*steps_json)[i];
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
      throw std::invalid_argument(where + ": 'param_steps'[" + std::to_string(i) +
                                  "] must be an integer >= 0, got " + v.dump());
    steps[i] = v.get<std::int64_t>();
  }
  std::vector<Tensor> exp_avg = state_buffers(state, "exp_avg");
  std::vector<Tensor> exp_avg_sq = state_buffers(state, "exp_avg_sq");
  // A parameter that has stepped has both moments; one that has not has neither.
  for (std::size_t i = 0; i < count; ++i) {
    const std::string index = std::to_string(i);
    const bool stepped = steps[i] > 0;
    if (exp_avg[i].defined() != stepped || exp_avg_sq[i].defined() != stepped)
      throw std::invalid_argument(where + ": 'param_steps'[" + index + "] is " + std::to_string(steps[i]) +
                                  (stepped ? " but 'exp_avg." + index + "' or 'exp_avg_sq." + index + "' is missing"
                                           : " but the state has 'exp_avg." + index + "' or 'exp_avg_sq." + index + "'"));
  }
  options_ = o;
  steps_ = std::move(steps);
  exp_avg_ = std::move(exp_avg);
  exp_avg_sq_ = std::move(exp_avg_sq);
}

std::vector<std::string> Adam::scalar_keys() const {
  return {"beta1", "beta2", "eps", "weight_decay", "param_steps"};
}

std::vector<std::string> Adam::buffer_names() const { return {"exp_avg", "exp_avg_sq"}; }

AdamOptions AdamW::default_options() {
  AdamOptions o;
  o.weight_decay = 1e-2;
  return o;
}

AdamW::AdamW(std::vector<Tensor> params, AdamOptions options)
    : Adam("AdamW", true, std::move(params), options) {}

}  // namespace symgrad::nn
