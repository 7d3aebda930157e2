#include "nn/optim/sgd.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "engine/kernels/optim_update.hpp"
#include "nn/optim/optimizer.hpp"

namespace symgrad::nn {

namespace {

void check_options(const std::string& where, const SGDOptions& o) {
  optim_detail::check_nonnegative(where, "lr", o.lr);
  optim_detail::check_nonnegative(where, "momentum", o.momentum);
  optim_detail::check_nonnegative(where, "dampening", o.dampening);
  optim_detail::check_nonnegative(where, "weight_decay", o.weight_decay);
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    throw std::invalid_argument(where + ": Nesterov momentum needs momentum > 0 and dampening 0, got momentum " +
                                optim_detail::number_text(o.momentum) + " and dampening " +
                                optim_detail::number_text(o.dampening));
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : Optimizer("SGD", std::move(params), options.lr), options_(options) {
  check_options("SGD", options_);
  momentum_buffers_.resize(this->params().size());
}

void SGD::step() {
  NoGradGuard no_grad;  // parameters are written in place, never recorded
  const std::vector<Tensor>& params = this->params();
  std::vector<Tensor> grads(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {  // every check before any write
    grads[i] = checked_grad(i);
    if (grads[i].defined()) check_buffer(i, momentum_buffers_[i], "momentum_buffer");
  }
  kernels::SgdStep s;
  s.lr = lr();
  s.momentum = options_.momentum;
  s.dampening = options_.dampening;
  s.weight_decay = options_.weight_decay;
  s.nesterov = options_.nesterov;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor param = params[i];
    void* buffer = nullptr;
    s.first_step = false;
    if (options_.momentum != 0.0) {
      if (!momentum_buffers_[i].defined()) {  // the kernel sets it to the gradient
        momentum_buffers_[i] = Tensor::empty(param.shape(), param.dtype());
        s.first_step = true;
      }
      buffer = momentum_buffers_[i].raw_data();
    }
    kernels::sgd_update(param.dtype(), param.raw_data(), grads[i].raw_data(), buffer, param.numel(), s);
    mark_updated(i);
  }
  count_step();
}

void SGD::save_state(OptimizerState& state) const {
  state.scalars["momentum"] = options_.momentum;
  state.scalars["dampening"] = options_.dampening;
  state.scalars["weight_decay"] = options_.weight_decay;
  state.scalars["nesterov"] = options_.nesterov;
  add_buffers(state, "momentum_buffer", momentum_buffers_);
}

void SGD::restore_state(const OptimizerState& state) {
  const std::string where = "SGD.load_state_dict";
  SGDOptions o;
  o.lr = state_number(state, "lr");
  o.momentum = state_number(state, "momentum");
  o.dampening = state_number(state, "dampening");
  o.weight_decay = state_number(state, "weight_decay");
  if (!state.scalars.contains("nesterov") || !state.scalars.at("nesterov").is_boolean())
    throw std::invalid_argument(where + ": 'nesterov' must be true or false");
  o.nesterov = state.scalars.at("nesterov").get<bool>();
  check_options(where, o);
  std::vector<Tensor> buffers = state_buffers(state, "momentum_buffer");
  if (o.momentum == 0.0)
    for (std::size_t i = 0; i < buffers.size(); ++i)
      if (buffers[i].defined())
        throw std::invalid_argument(where + ": momentum is 0 but the state has 'momentum_buffer." +
                                    std::to_string(i) + "'");
  options_ = o;
  momentum_buffers_ = std::move(buffers);
}

std::vector<std::string> SGD::scalar_keys() const {
  return {"momentum", "dampening", "weight_decay", "nesterov"};
}

std::vector<std::string> SGD::buffer_names() const { return {"momentum_buffer"}; }

}  // namespace symgrad::nn
