// kernels::unary with Highway SIMD, compiled once per instruction set and picked at
// run time (foreach_target + HWY_DYNAMIC_DISPATCH), split over the thread pool.
//
// Transcendentals come from hwy/contrib/math (Exp 1 ulp, Log 4, Log1p 2, Expm1 4,
// Sin/Cos 3, Tanh 4, per its documentation), with masks that fix the inputs it does
// not cover (NaN, infinities, overflow) so special values match the reference loop.
// A vector with a lane outside a function's valid range is recomputed lane by lane
// by the reference loop; that path is rare and keeps the fast path branch-free.
//
// erf and gelu have no Highway version: both dtypes evaluate them with std::erf in
// double (float inputs are widened, then rounded once), so float32 results are
// correctly rounded values of the double formula. pow_scalar is SIMD for the
// exponents 0, 1, 2, -1 and 0.5 and std::pow otherwise.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/unary_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "engine/kernels/simd_common-inl.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "engine/kernels/elementwise.hpp"
#include "engine/kernels/threads.hpp"

HWY_BEFORE_NAMESPACE();
namespace symgrad::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Recomputes every lane of `x` with the reference loop: the slow, exact path for
// vectors holding a lane the SIMD formula does not cover.
template <class D>
hn::Vec<D> lanes_by_reference(D d, Unary op, hn::Vec<D> x, double param) {
  using T = hn::TFromD<D>;
  HWY_ALIGN T lanes[hn::MaxLanes(d)];
  hn::Store(x, d, lanes);
  unary_reference(op, dtype_of<T>(), lanes, lanes, static_cast<std::int64_t>(hn::Lanes(d)), param);
  return hn::Load(d, lanes);
}

template <class D>
hn::Vec<D> log_everywhere(D d, hn::Vec<D> x) {
  using T = hn::TFromD<D>;
  const auto zero = hn::Zero(d);
  const auto inf = hn::Set(d, std::numeric_limits<T>::infinity());
  auto y = hn::Log(d, x);
  y = hn::IfThenElse(hn::Eq(x, zero), hn::Neg(inf), y);
  y = hn::IfThenElse(hn::Eq(x, inf), inf, y);
  // NaN in, or x < 0: NaN out (0 * inf is a quiet NaN).
  const auto invalid = hn::Or(hn::IsNaN(x), hn::Lt(x, zero));
  return hn::IfThenElse(invalid, hn::Mul(zero, inf), y);
}

// y[i] = f(x[i]) for i < n. The last partial vector goes through a padded buffer so
// that every element is computed by the same vector formula.
template <class D, class F>
void map(D d, const hn::TFromD<D>* HWY_RESTRICT x, hn::TFromD<D>* HWY_RESTRICT y, std::size_t n,
         const F& f) {
  using T = hn::TFromD<D>;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(f(hn::LoadU(d, x + i)), d, y + i);
  if (i == n) return;
  HWY_ALIGN T tail[hn::MaxLanes(d)] = {};
  std::memcpy(tail, x + i, (n - i) * sizeof(T));
  hn::Store(f(hn::Load(d, tail)), d, tail);
  std::memcpy(y + i, tail, (n - i) * sizeof(T));
}

// Ops without a vector formula: the reference loop, in double for erf and gelu.
template <class T>
void unary_scalar_path(Unary op, const T* x, T* y, std::size_t n, double param) {
  const bool widen = (op == Unary::erf || op == Unary::gelu) && sizeof(T) == 4;
  if (!widen) {
    unary_reference(op, dtype_of<T>(), x, y, static_cast<std::int64_t>(n), param);
    return;
  }
  constexpr std::size_t kBlock = 256;
  double wide[kBlock];
  for (std::size_t start = 0; start < n; start += kBlock) {
    const std::size_t count = std::min(kBlock, n - start);
    for (std::size_t k = 0; k < count; ++k) wide[k] = x[start + k];
    unary_reference(op, DType::f64, wide, wide, static_cast<std::int64_t>(count), param);
    for (std::size_t k = 0; k < count; ++k) y[start + k] = static_cast<T>(wide[k]);
  }
}

template <class T>
void unary_range(Unary op, const T* HWY_RESTRICT x, T* HWY_RESTRICT y, std::size_t n,
                 double param) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const V zero = hn::Zero(d);
  const V one = hn::Set(d, T(1));
  const V p = hn::Set(d, static_cast<T>(param));
  // Highway's Sin/Cos reduce the argument accurately only for |x| <= 39000.
  const V trig_limit = hn::Set(d, T(39000));
  switch (op) {
    case Unary::neg: return map(d, x, y, n, [&](V v) { return hn::Neg(v); });
    case Unary::abs: return map(d, x, y, n, [&](V v) { return hn::Abs(v); });
    case Unary::sqrt: return map(d, x, y, n, [&](V v) { return hn::Sqrt(v); });
    case Unary::square: return map(d, x, y, n, [&](V v) { return hn::Mul(v, v); });
    case Unary::reciprocal: return map(d, x, y, n, [&](V v) { return hn::Div(one, v); });
    case Unary::add_scalar: return map(d, x, y, n, [&](V v) { return hn::Add(v, p); });
    case Unary::mul_scalar: return map(d, x, y, n, [&](V v) { return hn::Mul(v, p); });
    case Unary::relu:  // NaN > 0 is false, so NaN gives 0 as in the reference
      return map(d, x, y, n, [&](V v) { return hn::IfThenElseZero(hn::Gt(v, zero), v); });
    case Unary::step:
      return map(d, x, y, n, [&](V v) { return hn::IfThenElseZero(hn::Gt(v, zero), one); });
    case Unary::sign:
      return map(d, x, y, n, [&](V v) {
        return hn::Sub(hn::IfThenElseZero(hn::Gt(v, zero), one),
                       hn::IfThenElseZero(hn::Lt(v, zero), one));
      });
    case Unary::exp: return map(d, x, y, n, [&](V v) { return exp_everywhere(d, v); });
    case Unary::log: return map(d, x, y, n, [&](V v) { return log_everywhere(d, v); });
    case Unary::tanh:  // Tanh saturates to +-1 itself and passes NaN and -0 through
      return map(d, x, y, n, [&](V v) { return hn::Tanh(d, v); });
    case Unary::sin:
    case Unary::cos:
      return map(d, x, y, n, [&](V v) {
        const V r = op == Unary::sin ? hn::Sin(d, v) : hn::Cos(d, v);
        if (HWY_LIKELY(hn::AllTrue(d, hn::Le(hn::Abs(v), trig_limit)))) return r;
        return lanes_by_reference(d, op, v, param);  // NaN, inf or a huge argument
      });
    // With e = e^-|x| <= 1 nothing overflows: sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e).
    case Unary::sigmoid:
      return map(d, x, y, n, [&](V v) {
        const V e = exp_everywhere(d, hn::Neg(hn::Abs(v)));
        return hn::Div(hn::IfThenElse(hn::Ge(v, zero), one, e), hn::Add(one, e));
      });
    case Unary::silu:  // x * sigmoid(x), same form
      return map(d, x, y, n, [&](V v) {
        const V e = exp_everywhere(d, hn::Neg(hn::Abs(v)));
        return hn::Div(hn::IfThenElse(hn::Ge(v, zero), v, hn::Mul(v, e)), hn::Add(one, e));
      });
    case Unary::softplus:  // max(x, 0) + log1p(e^-|x|): no overflow for large |x|
      return map(d, x, y, n, [&](V v) {
        const V positive_part = hn::IfThenElseZero(hn::Gt(v, zero), v);
        const V e = exp_everywhere(d, hn::Neg(hn::Abs(v)));
        return hn::Add(positive_part, hn::Log1p(d, e));
      });
    case Unary::pow_scalar:
      if (param == 0.0) return map(d, x, y, n, [&](V) { return one; });
      if (param == 1.0) return map(d, x, y, n, [&](V v) { return v; });
      if (param == 2.0) return map(d, x, y, n, [&](V v) { return hn::Mul(v, v); });
      if (param == -1.0) return map(d, x, y, n, [&](V v) { return hn::Div(one, v); });
      if (param == 0.5)  // pow(-0, 0.5) = +0 and pow(-inf, 0.5) = +inf, unlike sqrt
        return map(d, x, y, n, [&](V v) {
          const V inf = hn::Set(d, std::numeric_limits<T>::infinity());
          const V r = hn::Add(hn::Sqrt(v), zero);  // -0 + 0 = +0
          return hn::IfThenElse(hn::Eq(v, hn::Neg(inf)), inf, r);
        });
      return unary_scalar_path(op, x, y, n, param);
    case Unary::gelu:
    case Unary::erf:
      return unary_scalar_path(op, x, y, n, param);
  }
}

void UnaryF32(Unary op, const float* x, float* y, std::int64_t n, double param) {
  unary_range(op, x, y, static_cast<std::size_t>(n), param);
}
void UnaryF64(Unary op, const double* x, double* y, std::int64_t n, double param) {
  unary_range(op, x, y, static_cast<std::size_t>(n), param);
}

}  // namespace HWY_NAMESPACE
}  // namespace symgrad::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace symgrad::kernels {
HWY_EXPORT(UnaryF32);
HWY_EXPORT(UnaryF64);

namespace {
// Elements per thread chunk. Below two chunks' worth, the op runs on the calling
// thread with no pool wake-up: waking a worker costs microseconds, more than a
// cheap op on a few thousand elements. Transcendentals are ~10x dearer per element.
std::int64_t grain_for(Unary op) {
  switch (op) {
    case Unary::neg: case Unary::abs: case Unary::sqrt: case Unary::square:
    case Unary::reciprocal: case Unary::add_scalar: case Unary::mul_scalar:
    case Unary::relu: case Unary::step: case Unary::sign:
      return 1 << 16;
    case Unary::gelu: case Unary::erf: case Unary::pow_scalar:
      return 1 << 11;
    default:
      return 1 << 13;
  }
}
}  // namespace

void unary(Unary op, DType dt, const void* x, void* y, std::int64_t n, double param) {
  if (n <= 0) return;
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* xs = static_cast<const T*>(x);
    T* ys = static_cast<T*>(y);
    const auto run = [&](std::int64_t begin, std::int64_t end) {
      if constexpr (sizeof(T) == 4)
        HWY_DYNAMIC_DISPATCH(UnaryF32)(op, xs + begin, ys + begin, end - begin, param);
      else
        HWY_DYNAMIC_DISPATCH(UnaryF64)(op, xs + begin, ys + begin, end - begin, param);
    };
    const std::int64_t grain = grain_for(op);
    if (n < 2 * grain) run(0, n);  // no std::function, no pool: the tiny-tensor path
    else parallel_for(n, grain, run);
  });
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
