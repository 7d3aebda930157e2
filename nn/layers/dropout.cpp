#include "nn/layers/dropout.hpp"

#include <sstream>
#include <stdexcept>
#include <string>

namespace symgrad::nn {

Dropout::Dropout(double p, std::uint64_t seed) : p_(p), seed_(seed) {
  // p = 1 would divide by zero when scaling; a layer that drops everything is a bug.
  if (!(p >= 0.0 && p < 1.0))
    throw std::invalid_argument("Dropout: p " + std::to_string(p) + " must be in [0, 1)");
  calls_ = register_buffer("calls", zeros({1}, DType::f64));
}

std::string Dropout::extra_repr() const {
  std::ostringstream os;
  os << "p " << p_;
  return os.str();
}

// The mask is a constant (kept / (1 - p), or 0), so y = x * mask differentiates to
// g * mask at any order.
Tensor Dropout::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Dropout(" + extra_repr() + "): the input is undefined");
  if (!is_training() || p_ == 0.0) return x;
  const double call = calls_.item();
  Generator gen(seed_, static_cast<std::uint64_t>(call));
  {
    NoGradGuard no_grad;
    fill_(calls_, call + 1.0);
  }
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  const double keep_scale = 1.0 / (1.0 - p_);
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* m = mask.data<T>();
    for (std::int64_t i = 0; i < mask.numel(); ++i) m[i] = gen.uniform() >= p_ ? static_cast<T>(keep_scale) : T(0);
  });
  return x * mask;
}

}  // namespace symgrad::nn
