#pragma once
// Linear: y = x W^T + b, applied to the last axis of x.
#include <cstdint>

#include "nn/module.hpp"

namespace symgrad::nn {

class Linear : public Module {
 public:
  // weight [out, in] and bias [out] start as PyTorch's: kaiming_uniform_ with
  // negative_slope sqrt 5 (uniform on +-1/sqrt(in)) and bias uniform on +-1/sqrt(in),
  // drawn from default_generator().
  Linear(std::int64_t in, std::int64_t out, bool bias = true, DType dtype = DType::f32);

  // x [..., in] -> [..., out]; any number of leading axes, including none.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;  // "784 -> 256, bias"

  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }

  Tensor weight, bias;  // bias is undefined when off

 private:
  std::int64_t in_, out_;
};

}  // namespace symgrad::nn
