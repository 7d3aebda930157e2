#pragma once
// Elementwise functions of one tensor. Each is differentiable to any order.
#include "engine/tensor.hpp"

namespace symgrad {

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact: x * Phi(x) = x/2 (1 + erf(x / sqrt 2))
Tensor softplus(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor reciprocal(const Tensor& x);
// Piecewise-constant helpers: their derivative is zero, and they say so.
Tensor sign(const Tensor& x);
Tensor step(const Tensor& x);  // 1 where x > 0

// float32 <-> float64 (differentiable: the gradient is converted back).
Tensor to_dtype(const Tensor& x, DType dtype);

}  // namespace symgrad
