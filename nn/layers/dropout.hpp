#pragma once
// Dropout (Srivastava et al. 2014): in training mode each value is zeroed with
// probability p and the kept ones are scaled by 1 / (1 - p), so the expected output
// equals the input; in eval mode the layer is the identity.
#include <cstdint>

#include "nn/module.hpp"

namespace symgrad::nn {

class Dropout : public Module {
 public:
  // p in [0, 1). The layer owns its generator: a model's masks depend only on its seeds
  // and the order of its forward calls, not on anything else drawing random numbers.
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0);

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;  // "p 0.5"
  double p() const { return p_; }

 private:
  double p_;
  Generator gen_;
};

}  // namespace symgrad::nn
