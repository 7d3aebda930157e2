#pragma once
// Layer normalisation (Ba, Kiros and Hinton 2016): each example is normalised over its
// trailing `normalized_shape` axes to zero mean and unit (biased) variance, then scaled
// and shifted elementwise by learned weight and bias of that shape. Unlike BatchNorm it
// uses no batch statistics, so train and eval mode compute the same thing.
#include <cstdint>

#include "nn/module.hpp"

namespace symgrad::nn {

// y = (x - mean) / sqrt(var + eps) * weight + bias over the trailing axes that
// normalized_shape names; weight and bias (of normalized_shape) may be undefined.
// Composite of engine ops, differentiable to any order.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps = 1e-5);

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     DType dtype = DType::f32);

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;

  const Shape& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }

  Tensor weight;  // normalized_shape, ones at first; undefined without elementwise_affine
  Tensor bias;    // normalized_shape, zeros at first; undefined without elementwise_affine

 private:
  Shape normalized_shape_;
  double eps_;
};

}  // namespace symgrad::nn
