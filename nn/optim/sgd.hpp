#pragma once
// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum
// and L2 weight decay, as PyTorch 1.13's torch.optim.SGD. Per parameter, with
// d = grad + weight_decay * p:
//   b = d at the parameter's first step, then b = momentum * b + (1 - dampening) * d
//   d = d + momentum * b (Nesterov) or d = b (momentum != 0)
//   p = p - lr * d
// State: "momentum_buffer.<i>" (only with momentum). Scalars: "momentum",
// "dampening", "weight_decay", "nesterov".
#include <vector>

#include "nn/optim/optimizer.hpp"

namespace symgrad::nn {

struct SGDOptions {
  double lr = 0.0;  // required: there is no sensible default
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);

  void step() override;
  // The hyper-parameters it was built (or last loaded) with; lr() is the current rate.
  const SGDOptions& options() const { return options_; }

 protected:
  void save_state(OptimizerState& state) const override;
  void restore_state(const OptimizerState& state) override;
  std::vector<std::string> scalar_keys() const override;
  std::vector<std::string> buffer_names() const override;

 private:
  SGDOptions options_;
  std::vector<Tensor> momentum_buffers_;  // undefined until the parameter's first step
};

}  // namespace symgrad::nn
