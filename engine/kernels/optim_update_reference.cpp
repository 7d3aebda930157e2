// The scalar specification of the optimizer kernels (optim_update.hpp). Each line
// mirrors one tensor operation of PyTorch 1.13's single-tensor SGD / Adam / AdamW
// (torch/optim/sgd.py, adam.py, adamw.py), in the same order, so a float64 run
// reproduces PyTorch's to the last bit or two; the SIMD kernels mirror these lines.
// Each * and + rounds on its own: contracting them into fused multiply-adds (g++'s
// default for C++ when the target has FMA, e.g. with -march=native) would change
// the bits and break the SIMD kernels' exact agreement with this loop.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "engine/kernels/optim_update.hpp"

namespace symgrad::kernels {

namespace {

template <class T>
void sgd_loop(T* param, const T* grad, T* buffer, std::int64_t n, const SgdStep& s) {
  const T lr = static_cast<T>(s.lr);
  const T momentum = static_cast<T>(s.momentum);
  const T weight_decay = static_cast<T>(s.weight_decay);
  const T undampened = static_cast<T>(1.0 - s.dampening);
  const bool decay = s.weight_decay != 0.0;
  const bool with_momentum = s.momentum != 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T p = param[i];
    T g = grad[i];
    if (decay) g = g + weight_decay * p;  // d_p.add(param, alpha=weight_decay)
    if (with_momentum) {
      // First step: buf = clone(d_p); then buf.mul_(momentum).add_(d_p, alpha=1-dampening).
      const T b = s.first_step ? g : buffer[i] * momentum + undampened * g;
      buffer[i] = b;
      g = s.nesterov ? g + momentum * b : b;
    }
    param[i] = p - lr * g;  // param.add_(d_p, alpha=-lr)
  }
}

template <class T>
void adam_loop(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, std::int64_t n,
               const AdamStep& s) {
  const T beta1 = static_cast<T>(s.beta1);
  const T beta2 = static_cast<T>(s.beta2);
  const T one_minus_beta1 = static_cast<T>(1.0 - s.beta1);
  const T one_minus_beta2 = static_cast<T>(1.0 - s.beta2);
  const T eps = static_cast<T>(s.eps);
  const T weight_decay = static_cast<T>(s.weight_decay);
  const T decay_factor = static_cast<T>(1.0 - s.lr * s.weight_decay);
  const T step_size = static_cast<T>(s.lr / s.bias_correction1);
  const T bias_correction2_sqrt = static_cast<T>(s.bias_correction2_sqrt);
  const bool coupled_decay = !s.decoupled_weight_decay && s.weight_decay != 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    T p = param[i];
    T g = grad[i];
    if (coupled_decay) g = g + weight_decay * p;       // Adam: grad.add(param, alpha=wd)
    if (s.decoupled_weight_decay) p = p * decay_factor;  // AdamW: param.mul_(1 - lr * wd)
    const T m = exp_avg[i] * beta1 + one_minus_beta1 * g;
    const T v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g;  // addcmul: (value * g) * g
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const T denom = std::sqrt(v) / bias_correction2_sqrt + eps;
    param[i] = p - step_size * m / denom;  // addcdiv_(m, denom, value=-step_size)
  }
}

template <class T>
double squares_loop(const T* x, std::int64_t n) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    sum += v * v;
  }
  return sum;
}

template <class T>
void scale_loop(T* x, std::int64_t n, double factor) {
  const T f = static_cast<T>(factor);
  for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] * f;
}

}  // namespace

void sgd_update_reference(DType dt, void* param, const void* grad, void* momentum_buffer,
                          std::int64_t n, const SgdStep& s) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    sgd_loop(static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(momentum_buffer),
             n, s);
  });
}

void adam_update_reference(DType dt, void* param, const void* grad, void* exp_avg,
                           void* exp_avg_sq, std::int64_t n, const AdamStep& s) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    adam_loop(static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(exp_avg),
              static_cast<T*>(exp_avg_sq), n, s);
  });
}

double sum_of_squares_reference(DType dt, const void* x, std::int64_t n) {
  return dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    return squares_loop(static_cast<const T*>(x), n);
  });
}

void scale_inplace_reference(DType dt, void* x, std::int64_t n, double factor) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    scale_loop(static_cast<T*>(x), n, factor);
  });
}

}  // namespace symgrad::kernels
