#pragma once
// Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as PyTorch 1.13's
// torch.optim.Adam and AdamW (amsgrad off). Per parameter, at its t-th step:
//   Adam:  g = grad + weight_decay * p        AdamW:  g = grad, p = p * (1 - lr * weight_decay)
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// t counts the steps at which that parameter had a gradient (PyTorch's state['step']).
// State: "exp_avg.<i>", "exp_avg_sq.<i>". Scalars: "beta1", "beta2", "eps",
// "weight_decay", "param_steps" (t for every parameter, 0 before its first step).
#include <cstdint>
#include <string>
#include <vector>

#include "nn/optim/optimizer.hpp"

namespace symgrad::nn {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // AdamW's default is 1e-2: see AdamW::default_options()
};

class Adam : public Optimizer {
 public:
  explicit Adam(std::vector<Tensor> params, AdamOptions options = {});

  void step() override;
  // The hyper-parameters it was built (or last loaded) with; lr() is the current rate.
  const AdamOptions& options() const { return options_; }
  // How many steps parameter i has taken (its bias-correction exponent).
  std::int64_t param_step(std::size_t i) const { return steps_.at(i); }

 protected:
  Adam(std::string name, bool decoupled_weight_decay, std::vector<Tensor> params, AdamOptions options);

  void save_state(OptimizerState& state) const override;
  void restore_state(const OptimizerState& state) override;
  std::vector<std::string> scalar_keys() const override;
  std::vector<std::string> buffer_names() const override;

 private:
  AdamOptions options_;
  bool decoupled_weight_decay_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // undefined until the parameter's first step
  std::vector<std::int64_t> steps_;
};

// Adam with decoupled weight decay: the decay shrinks the parameters directly instead
// of joining the gradient, so the adaptive scaling does not weaken it.
class AdamW : public Adam {
 public:
  // AdamOptions{} with weight_decay = 1e-2 (PyTorch's default). Options built from
  // AdamOptions{} have weight_decay 0: set it when passing your own.
  static AdamOptions default_options();
  explicit AdamW(std::vector<Tensor> params, AdamOptions options = default_options());
};

}  // namespace symgrad::nn
