#include "nn/layers/activation.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace symgrad::nn {
namespace {

const Tensor& checked(const Tensor& x, const char* layer) {
  if (!x.defined()) throw std::invalid_argument(std::string(layer) + ": the input is undefined");
  return x;
}

}  // namespace

Tensor ReLU::forward(const Tensor& x) { return relu(checked(x, "ReLU")); }
Tensor GELU::forward(const Tensor& x) { return gelu(checked(x, "GELU")); }
Tensor Tanh::forward(const Tensor& x) { return tanh(checked(x, "Tanh")); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(checked(x, "Sigmoid")); }
Tensor SiLU::forward(const Tensor& x) { return silu(checked(x, "SiLU")); }

Softplus::Softplus(double beta, double threshold) : beta_(beta), threshold_(threshold) {
  if (!(beta > 0) || !std::isfinite(beta))
    throw std::invalid_argument("Softplus: beta " + std::to_string(beta) + " must be positive and finite");
  if (std::isnan(threshold)) throw std::invalid_argument("Softplus: threshold must not be NaN");
}

std::string Softplus::extra_repr() const {
  std::ostringstream os;
  os << "beta " << beta_ << ", threshold " << threshold_;
  return os.str();
}

Tensor Softplus::forward(const Tensor& x) {
  checked(x, "Softplus");
  const Tensor scaled = beta_ == 1.0 ? x : x * beta_;
  const Tensor smooth = beta_ == 1.0 ? softplus(scaled) : softplus(scaled) / beta_;
  // where() differentiates both branches with the mask, so the gradient is 1 above the
  // threshold and sigmoid(beta x) below it, as PyTorch's.
  return where(gt(scaled, scalar(threshold_, x.dtype())), x, smooth);
}

}  // namespace symgrad::nn
