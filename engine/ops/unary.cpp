// Unary elementwise ops: each forward next to its backward rule, the backward
// written with ops so that it can itself be differentiated.
#include "engine/ops/unary.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/creation.hpp"
#include "engine/kernels/elementwise.hpp"
#include "engine/ops/binary.hpp"

namespace symgrad {
namespace {

Tensor unary_forward(kernels::Unary kind, const char* op, const Tensor& x, double param = 0.0) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  kernels::unary(kind, x.dtype(), x.raw_data(), y.raw_data(), x.numel(), param);
  return y;
}

// Records `op` with a backward that only needs the saved input x.
template <class Rule>
Tensor with_input_rule(kernels::Unary kind, const char* op, const Tensor& x, Rule rule, double param = 0.0) {
  Tensor y = unary_forward(kind, op, x, param);
  if (auto node = record(op, y, {x}))
    node->backward = [x, rule](const Tensor& g, const Node&) { return TensorList{rule(g, x)}; };
  return y;
}

// Records `op` with a backward that only needs the saved output y.
template <class Rule>
Tensor with_output_rule(kernels::Unary kind, const char* op, const Tensor& x, Rule rule) {
  Tensor y = unary_forward(kind, op, x);
  if (auto node = record(op, y, {x}))
    node->backward = [saved = SavedTensor::output(y, node), rule](const Tensor& g, const Node&) {
      return TensorList{rule(g, saved.unpack())};
    };
  return y;
}

}  // namespace

// neg: saves nothing.
Tensor neg(const Tensor& x) {
  Tensor y = unary_forward(kernels::Unary::neg, "neg", x);
  if (auto node = record("neg", y, {x}))
    node->backward = [](const Tensor& g, const Node&) { return TensorList{neg(g)}; };
  return y;
}

// abs: saves x. d|x| = sign(x) dx (0 at 0, as in PyTorch).
Tensor abs(const Tensor& x) {
  return with_input_rule(kernels::Unary::abs, "abs", x, [](const Tensor& g, const Tensor& x) { return g * sign(x); });
}

// exp: saves y = e^x. d e^x = e^x dx.
Tensor exp(const Tensor& x) {
  return with_output_rule(kernels::Unary::exp, "exp", x, [](const Tensor& g, const Tensor& y) { return g * y; });
}

// log: saves x. d log x = dx / x.
Tensor log(const Tensor& x) {
  return with_input_rule(kernels::Unary::log, "log", x, [](const Tensor& g, const Tensor& x) { return g / x; });
}

// sqrt: saves y. d sqrt(x) = dx / (2 y).
Tensor sqrt(const Tensor& x) {
  return with_output_rule(kernels::Unary::sqrt, "sqrt", x,
                          [](const Tensor& g, const Tensor& y) { return g / (2.0 * y); });
}

// square: saves x. d x^2 = 2 x dx.
Tensor square(const Tensor& x) {
  return with_input_rule(kernels::Unary::square, "square", x,
                         [](const Tensor& g, const Tensor& x) { return g * (2.0 * x); });
}

// pow (scalar exponent): saves x. d x^p = p x^(p-1) dx.
Tensor pow(const Tensor& x, double p) {
  return with_input_rule(
      kernels::Unary::pow_scalar, "pow", x,
      [p](const Tensor& g, const Tensor& x) { return p == 0.0 ? zeros_like(g) : g * (p * pow(x, p - 1.0)); }, p);
}

// sin / cos: save x.
Tensor sin(const Tensor& x) {
  return with_input_rule(kernels::Unary::sin, "sin", x, [](const Tensor& g, const Tensor& x) { return g * cos(x); });
}
Tensor cos(const Tensor& x) {
  return with_input_rule(kernels::Unary::cos, "cos", x, [](const Tensor& g, const Tensor& x) { return -(g * sin(x)); });
}

// tanh: saves y. d tanh x = (1 - y^2) dx.
Tensor tanh(const Tensor& x) {
  return with_output_rule(kernels::Unary::tanh, "tanh", x,
                          [](const Tensor& g, const Tensor& y) { return g * (1.0 - square(y)); });
}

// sigmoid: saves y. d s(x) = s (1 - s) dx.
Tensor sigmoid(const Tensor& x) {
  return with_output_rule(kernels::Unary::sigmoid, "sigmoid", x,
                          [](const Tensor& g, const Tensor& y) { return g * (y * (1.0 - y)); });
}

// relu: saves x. The derivative is the step function (0 at 0, as in PyTorch).
Tensor relu(const Tensor& x) {
  return with_input_rule(kernels::Unary::relu, "relu", x, [](const Tensor& g, const Tensor& x) { return g * step(x); });
}

// gelu (exact): saves x. d [x Phi(x)] = Phi(x) + x phi(x), phi the normal density.
Tensor gelu(const Tensor& x) {
  return with_input_rule(kernels::Unary::gelu, "gelu", x, [](const Tensor& g, const Tensor& x) {
    const double inv_sqrt2 = 1.0 / std::numbers::sqrt2;
    const double inv_sqrt_2pi = 0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;
    Tensor cdf = 0.5 * (1.0 + erf(x * inv_sqrt2));
    Tensor pdf = inv_sqrt_2pi * exp(-0.5 * square(x));
    return g * (cdf + x * pdf);
  });
}

// softplus: saves x. d log(1 + e^x) = sigmoid(x) dx.
Tensor softplus(const Tensor& x) {
  return with_input_rule(kernels::Unary::softplus, "softplus", x,
                         [](const Tensor& g, const Tensor& x) { return g * sigmoid(x); });
}

// silu: saves x. d [x s(x)] = s (1 + x (1 - s)).
Tensor silu(const Tensor& x) {
  return with_input_rule(kernels::Unary::silu, "silu", x, [](const Tensor& g, const Tensor& x) {
    Tensor s = sigmoid(x);
    return g * (s * (1.0 + x * (1.0 - s)));
  });
}

// erf: saves x. d erf(x) = 2 / sqrt(pi) e^(-x^2).
Tensor erf(const Tensor& x) {
  return with_input_rule(kernels::Unary::erf, "erf", x, [](const Tensor& g, const Tensor& x) {
    return g * ((2.0 * std::numbers::inv_sqrtpi) * exp(-square(x)));
  });
}

// reciprocal: saves y = 1/x. d (1/x) = -y^2 dx.
Tensor reciprocal(const Tensor& x) {
  return with_output_rule(kernels::Unary::reciprocal, "reciprocal", x,
                          [](const Tensor& g, const Tensor& y) { return -(g * square(y)); });
}

// sign and step are piecewise constant: derivative zero almost everywhere, so no
// node is recorded and their outputs are constants.
Tensor sign(const Tensor& x) { return unary_forward(kernels::Unary::sign, "sign", x); }
Tensor step(const Tensor& x) { return unary_forward(kernels::Unary::step, "step", x); }

// to_dtype: saves nothing; the gradient is converted back to the input's dtype.
Tensor to_dtype(const Tensor& x, DType dtype) {
  if (!x.defined()) throw std::invalid_argument("to_dtype: the input is undefined");
  if (x.dtype() == dtype) return x;
  Tensor y = Tensor::empty(x.shape(), dtype);
  kernels::convert(x.dtype(), x.raw_data(), dtype, y.raw_data(), x.numel());
  if (auto node = record("to_dtype", y, {x}))
    node->backward = [from = x.dtype()](const Tensor& g, const Node&) { return TensorList{to_dtype(g, from)}; };
  return y;
}

}  // namespace symgrad
