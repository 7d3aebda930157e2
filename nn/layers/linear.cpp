#include "nn/layers/linear.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "nn/init.hpp"

namespace symgrad::nn {

Linear::Linear(std::int64_t in, std::int64_t out, bool with_bias, DType dtype) : in_(in), out_(out) {
  if (in <= 0 || out <= 0)
    throw std::invalid_argument("Linear(" + std::to_string(in) + " -> " + std::to_string(out) +
                                "): the feature counts must be positive");
  weight = Tensor::empty({out, in}, dtype);
  // slope sqrt 5 makes the bound gain sqrt(3 / fan_in) = 1 / sqrt(fan_in): PyTorch's
  // long-standing default, kept so that models start where PyTorch users expect.
  kaiming_uniform_(weight, std::sqrt(5.0));
  weight = register_parameter("weight", weight);
  if (with_bias) {
    bias = Tensor::empty({out}, dtype);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    uniform_(bias, -bound, bound);
    bias = register_parameter("bias", bias);
  }
}

std::string Linear::extra_repr() const {
  return std::to_string(in_) + " -> " + std::to_string(out_) + (bias.defined() ? ", bias" : ", no bias");
}

Tensor Linear::forward(const Tensor& x) {
  const std::string layer = "Linear(" + std::to_string(in_) + " -> " + std::to_string(out_) + ")";
  if (!x.defined()) throw std::invalid_argument(layer + ": the input is undefined");
  if (x.dim() == 0)
    throw std::invalid_argument(layer + ": input " + shape_str(x.shape()) + " is a scalar; expected [..., " +
                                std::to_string(in_) + "]");
  if (x.size(-1) != in_)
    throw std::invalid_argument(layer + ": input " + shape_str(x.shape()) + " has " + std::to_string(x.size(-1)) +
                                " features, expected " + std::to_string(in_));
  if (x.dtype() != weight.dtype())
    throw std::invalid_argument(layer + ": input " + shape_str(x.shape()) + " is " + dtype_name(x.dtype()) +
                                " but the layer is " + dtype_name(weight.dtype()) +
                                "; convert one with to_dtype or Module::to");
  // matmul wants 2-D operands: fold every leading axis into one row axis and back.
  const bool two_d = x.dim() == 2;
  const Tensor rows = two_d ? x : reshape(x, {x.numel() / in_, in_});
  Tensor y = matmul(rows, weight, false, true);  // x W^T, the transpose handed to BLAS
  if (bias.defined()) y = y + bias;
  if (two_d) return y;
  Shape out_shape = x.shape();
  out_shape.back() = out_;
  return reshape(y, out_shape);
}

}  // namespace symgrad::nn
