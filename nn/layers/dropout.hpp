#pragma once
// Dropout (Srivastava et al. 2014): in training mode each value is zeroed with
// probability p and the kept ones are scaled by 1 / (1 - p), so the expected output
// equals the input; in eval mode the layer is the identity.
#include <cstdint>

#include "nn/module.hpp"

namespace symgrad::nn {

class Dropout : public Module {
 public:
  // p in [0, 1). The layer owns its random stream: the mask of the k-th training-mode
  // call is drawn from Generator(seed, k), so masks depend only on the seed and the
  // number of calls, not on anything else drawing random numbers. k is kept in the
  // buffer "calls", which is saved with the model: a resumed run continues the same
  // mask sequence. (Exact up to 2^24 calls if the model is converted to float32.)
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0);

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;  // "p 0.5"
  double p() const { return p_; }

 private:
  double p_;
  std::uint64_t seed_;
  Tensor calls_;  // buffer: training-mode forward calls so far
};

}  // namespace symgrad::nn
