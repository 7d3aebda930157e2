// The optimizer kernels of optim_update.hpp with Highway SIMD, compiled once per
// instruction set and picked at run time (foreach_target + HWY_DYNAMIC_DISPATCH).
//
// The updates are the reference loops (optim_update_reference.cpp) written with
// vector operations, one vector operation per scalar one and in the same order.
// Add, Sub, Mul, Div and Sqrt round exactly like their scalar counterparts, and no
// multiply-add is fused: g++ would otherwise contract Mul then Add into one FMA on
// targets that have it (its default for C++, even with -std=c++20), which rounds
// once instead of twice and would make the result depend on the CPU. So every lane
// holds the reference's bits on every target; the tail shorter than a vector runs
// the reference loop itself. Elements are independent: the thread split changes nothing.
//
// sum_of_squares squares and adds in double lanes, chunk by chunk (kSquaresChunk
// elements); the chunk sums are combined pairwise, in chunk order, after every
// thread has finished, so the result does not depend on the thread count. It differs
// from the reference's sequential sum only by summation order.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/optim_update_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "engine/kernels/simd_common-inl.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/kernels/optim_update.hpp"
#include "engine/kernels/threads.hpp"

HWY_BEFORE_NAMESPACE();
namespace symgrad::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class T>
void sgd_range(T* HWY_RESTRICT param, const T* HWY_RESTRICT grad, T* HWY_RESTRICT buffer,
               std::size_t n, const SgdStep& s) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const V lr = hn::Set(d, static_cast<T>(s.lr));
  const V momentum = hn::Set(d, static_cast<T>(s.momentum));
  const V weight_decay = hn::Set(d, static_cast<T>(s.weight_decay));
  const V undampened = hn::Set(d, static_cast<T>(1.0 - s.dampening));
  const bool decay = s.weight_decay != 0.0;
  const bool with_momentum = s.momentum != 0.0;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const V p = hn::LoadU(d, param + i);
    V g = hn::LoadU(d, grad + i);
    if (decay) g = hn::Add(g, hn::Mul(weight_decay, p));
    if (with_momentum) {
      const V b = s.first_step
                      ? g
                      : hn::Add(hn::Mul(hn::LoadU(d, buffer + i), momentum), hn::Mul(undampened, g));
      hn::StoreU(b, d, buffer + i);
      g = s.nesterov ? hn::Add(g, hn::Mul(momentum, b)) : b;
    }
    hn::StoreU(hn::Sub(p, hn::Mul(lr, g)), d, param + i);
  }
  if (i < n)
    sgd_update_reference(dtype_of<T>(), param + i, grad + i, buffer == nullptr ? nullptr : buffer + i,
                         static_cast<std::int64_t>(n - i), s);
}

template <class T>
void adam_range(T* HWY_RESTRICT param, const T* HWY_RESTRICT grad, T* HWY_RESTRICT exp_avg,
                T* HWY_RESTRICT exp_avg_sq, std::size_t n, const AdamStep& s) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const V beta1 = hn::Set(d, static_cast<T>(s.beta1));
  const V beta2 = hn::Set(d, static_cast<T>(s.beta2));
  const V one_minus_beta1 = hn::Set(d, static_cast<T>(1.0 - s.beta1));
  const V one_minus_beta2 = hn::Set(d, static_cast<T>(1.0 - s.beta2));
  const V eps = hn::Set(d, static_cast<T>(s.eps));
  const V weight_decay = hn::Set(d, static_cast<T>(s.weight_decay));
  const V decay_factor = hn::Set(d, static_cast<T>(1.0 - s.lr * s.weight_decay));
  const V step_size = hn::Set(d, static_cast<T>(s.lr / s.bias_correction1));
  const V bias_correction2_sqrt = hn::Set(d, static_cast<T>(s.bias_correction2_sqrt));
  const bool coupled_decay = !s.decoupled_weight_decay && s.weight_decay != 0.0;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    V p = hn::LoadU(d, param + i);
    V g = hn::LoadU(d, grad + i);
    if (coupled_decay) g = hn::Add(g, hn::Mul(weight_decay, p));
    if (s.decoupled_weight_decay) p = hn::Mul(p, decay_factor);
    const V m = hn::Add(hn::Mul(hn::LoadU(d, exp_avg + i), beta1), hn::Mul(one_minus_beta1, g));
    const V v = hn::Add(hn::Mul(hn::LoadU(d, exp_avg_sq + i), beta2),
                        hn::Mul(hn::Mul(one_minus_beta2, g), g));
    hn::StoreU(m, d, exp_avg + i);
    hn::StoreU(v, d, exp_avg_sq + i);
    const V denom = hn::Add(hn::Div(hn::Sqrt(v), bias_correction2_sqrt), eps);
    hn::StoreU(hn::Sub(p, hn::Div(hn::Mul(step_size, m), denom)), d, param + i);
  }
  if (i < n)
    adam_update_reference(dtype_of<T>(), param + i, grad + i, exp_avg + i, exp_avg_sq + i,
                          static_cast<std::int64_t>(n - i), s);
}

// sum x[i]^2 over one chunk (at most kSquaresChunk elements), in double lanes.
template <class T>
double chunk_squares(const T* HWY_RESTRICT x, std::size_t n) {
  const DDouble dd;
  const DNarrow<T> dn;
  const std::size_t lanes = hn::Lanes(dd);
  auto a0 = hn::Zero(dd), a1 = hn::Zero(dd), a2 = hn::Zero(dd), a3 = hn::Zero(dd);
  const auto add_square = [&](hn::Vec<DDouble>& acc, std::size_t at) {
    const auto v = widen<T>(hn::LoadU(dn, x + at));
    acc = hn::Add(acc, hn::Mul(v, v));
  };
  std::size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    add_square(a0, i);
    add_square(a1, i + lanes);
    add_square(a2, i + 2 * lanes);
    add_square(a3, i + 3 * lanes);
  }
  for (; i + lanes <= n; i += lanes) add_square(a0, i);
  double sum = sum_lanes(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)));
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    sum += v * v;
  }
  return sum;
}

template <class T>
void scale_range(T* HWY_RESTRICT x, std::size_t n, double factor) {
  const hn::ScalableTag<T> d;
  const auto f = hn::Set(d, static_cast<T>(factor));
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), f), d, x + i);
  if (i < n) scale_inplace_reference(dtype_of<T>(), x + i, static_cast<std::int64_t>(n - i), factor);
}

// The exported entry points, one per dtype (HWY_EXPORT takes plain functions).
#define SYMGRAD_EXPORTED_FOR(T, SUFFIX)                                                         \
  void SgdUpdate##SUFFIX(T* param, const T* grad, T* buffer, std::int64_t n, const SgdStep& s) { \
    sgd_range(param, grad, buffer, static_cast<std::size_t>(n), s);                             \
  }                                                                                             \
  void AdamUpdate##SUFFIX(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, std::int64_t n,   \
                          const AdamStep& s) {                                                  \
    adam_range(param, grad, exp_avg, exp_avg_sq, static_cast<std::size_t>(n), s);               \
  }                                                                                             \
  /* partial[j] = the sum of squares of chunk j of x[0, n). */                                  \
  void SquaresChunks##SUFFIX(const T* x, std::int64_t n, double* partial) {                     \
    for (std::int64_t start = 0, j = 0; start < n; start += kSquaresChunk, ++j)                  \
      partial[j] = chunk_squares(x + start, static_cast<std::size_t>(std::min(kSquaresChunk, n - start))); \
  }                                                                                             \
  void ScaleInplace##SUFFIX(T* x, std::int64_t n, double factor) {                              \
    scale_range(x, static_cast<std::size_t>(n), factor);                                        \
  }
SYMGRAD_EXPORTED_FOR(float, F32)
SYMGRAD_EXPORTED_FOR(double, F64)
#undef SYMGRAD_EXPORTED_FOR

}  // namespace HWY_NAMESPACE
}  // namespace symgrad::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace symgrad::kernels {
HWY_EXPORT(SgdUpdateF32);
HWY_EXPORT(SgdUpdateF64);
HWY_EXPORT(AdamUpdateF32);
HWY_EXPORT(AdamUpdateF64);
HWY_EXPORT(SquaresChunksF32);
HWY_EXPORT(SquaresChunksF64);
HWY_EXPORT(ScaleInplaceF32);
HWY_EXPORT(ScaleInplaceF64);

namespace {
// Elements per thread chunk: an update reads and writes a few streams per element,
// so below ~64K elements waking a worker costs more than it saves.
constexpr std::int64_t kUpdateGrain = 1 << 15;
constexpr std::int64_t kSquaresGrain = 1 << 16;
}  // namespace

void sgd_update(DType dt, void* param, const void* grad, void* momentum_buffer, std::int64_t n,
                const SgdStep& s) {
  if (n <= 0) return;
  if (s.momentum != 0.0 && momentum_buffer == nullptr)
    throw std::invalid_argument("sgd_update: momentum " + std::to_string(s.momentum) +
                                " needs a momentum buffer, got none");
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* b = static_cast<T*>(momentum_buffer);
    split_items(n, 1, kUpdateGrain, [&](std::int64_t begin, std::int64_t end) {
      T* b_range = b == nullptr ? nullptr : b + begin;
      if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(SgdUpdateF32)(p + begin, g + begin, b_range, end - begin, s);
      else HWY_DYNAMIC_DISPATCH(SgdUpdateF64)(p + begin, g + begin, b_range, end - begin, s);
    });
  });
}

void adam_update(DType dt, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                 std::int64_t n, const AdamStep& s) {
  if (n <= 0) return;
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* m = static_cast<T*>(exp_avg);
    T* v = static_cast<T*>(exp_avg_sq);
    split_items(n, 1, kUpdateGrain, [&](std::int64_t begin, std::int64_t end) {
      if constexpr (sizeof(T) == 4)
        HWY_DYNAMIC_DISPATCH(AdamUpdateF32)(p + begin, g + begin, m + begin, v + begin, end - begin, s);
      else HWY_DYNAMIC_DISPATCH(AdamUpdateF64)(p + begin, g + begin, m + begin, v + begin, end - begin, s);
    });
  });
}

double sum_of_squares(DType dt, const void* x, std::int64_t n) {
  if (n <= 0) return 0.0;
  return dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* xs = static_cast<const T*>(x);
    const auto run = [&](std::int64_t first, std::int64_t count, double* partial) {
      if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(SquaresChunksF32)(xs + first, count, partial);
      else HWY_DYNAMIC_DISPATCH(SquaresChunksF64)(xs + first, count, partial);
    };
    if (n <= kSquaresChunk) {  // one chunk: no buffer, no pool
      double sum = 0.0;
      run(0, n, &sum);
      return sum;
    }
    const std::int64_t chunks = (n + kSquaresChunk - 1) / kSquaresChunk;
    std::vector<double> partial(static_cast<std::size_t>(chunks));
    split_items(chunks, kSquaresChunk, kSquaresGrain, [&](std::int64_t begin, std::int64_t end) {
      const std::int64_t first = begin * kSquaresChunk;
      run(first, std::min(n, end * kSquaresChunk) - first, partial.data() + begin);
    });
    PairwiseSum total;
    for (const double chunk_sum : partial) total.add(chunk_sum);
    return total.total();
  });
}

void scale_inplace(DType dt, void* x, std::int64_t n, double factor) {
  if (n <= 0) return;
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    T* xs = static_cast<T*>(x);
    split_items(n, 1, kUpdateGrain, [&](std::int64_t begin, std::int64_t end) {
      if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(ScaleInplaceF32)(xs + begin, end - begin, factor);
      else HWY_DYNAMIC_DISPATCH(ScaleInplaceF64)(xs + begin, end - begin, factor);
    });
  });
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
