// kernels::unary with Highway SIMD, compiled once per instruction set and picked at
// run time (foreach_target + HWY_DYNAMIC_DISPATCH), split over the thread pool.
//
// Transcendentals come from hwy/contrib/math (Exp 1 ulp, Log 4, Log1p 2, Sin/Cos 3,
// Tanh 4, per its documentation), with masks that fix the inputs it does not cover
// (NaN, infinities, overflow) so special values match the reference loop; float exp
// takes a shorter formula when a whole vector is in its range (simd_common-inl.h),
// and float tanh a rational approximation (tanh_float below).
// sin/cos recompute a vector holding a huge, infinite or NaN argument with the
// reference loop, a rare path that keeps the usual one branch-free.
//
// erf and gelu have no Highway version. float32 uses erf_parts below (our own
// polynomial fits, within 2 ulp for erf and 7 ulp / 4e-7 relative for erfc and gelu,
// measured over all floats); gelu is computed as 0.5 x erfc(-x / sqrt 2) for x < 0,
// which keeps its relative accuracy where 1 + erf(x / sqrt 2) cancels. float64 uses
// the reference loop (std::erf). pow_scalar is SIMD for the exponents 0, 1, 2, -1
// and 0.5 and std::pow otherwise.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/unary_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/cache_control.h"
#include "engine/kernels/simd_common-inl.h"

#include <cmath>
#include <cstdint>
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

// Computes f on `count` < Lanes elements at x through a padded buffer, so that a
// partial vector gets the same formula as a full one.
template <class D, class F>
void map_partial(D d, const hn::TFromD<D>* x, hn::TFromD<D>* y, std::size_t count, const F& f) {
  using T = hn::TFromD<D>;
  HWY_ALIGN T lanes[hn::MaxLanes(d)] = {};
  std::memcpy(lanes, x, count * sizeof(T));
  hn::Store(f(hn::Load(d, lanes)), d, lanes);
  std::memcpy(y, lanes, count * sizeof(T));
}

// y[i] = f(x[i]) for i < n. With `stream`, full vectors are written with
// non-temporal stores (after a partial vector that aligns y): for outputs much
// larger than the cache this skips reading each destination line before writing
// it, a third of the memory traffic of y = f(x).
template <class D, class F>
void map(D d, const hn::TFromD<D>* HWY_RESTRICT x, hn::TFromD<D>* HWY_RESTRICT y, std::size_t n,
         bool stream, const F& f) {
  using T = hn::TFromD<D>;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  const auto address = reinterpret_cast<std::uintptr_t>(y);
  if (stream && address % sizeof(T) == 0) {
    const std::size_t misalignment = address % (lanes * sizeof(T)) / sizeof(T);
    if (misalignment != 0) {
      i = std::min(n, lanes - misalignment);
      map_partial(d, x, y, i, f);
    }
    for (; i + lanes <= n; i += lanes) hn::Stream(f(hn::LoadU(d, x + i)), d, y + i);
    hwy::FlushStream();
  }
  for (; i + lanes <= n; i += lanes) hn::StoreU(f(hn::LoadU(d, x + i)), d, y + i);
  if (i < n) map_partial(d, x + i, y + i, n - i, f);
}

// Ops without a vector formula: the reference loop.
template <class T>
void unary_scalar_path(Unary op, const T* x, T* y, std::size_t n, double param) {
  unary_reference(op, dtype_of<T>(), x, y, static_cast<std::int64_t>(n), param);
}

// The two float pieces erf and erfc are made of, for z >= 0 with z^2 = h + l
// exactly (l from square_rounding_error):
//   small = z P(z^2), erf for z < 1 (P: Chebyshev fit of erf(z)/z on [0, 1], 1.5e-9);
//   large = e^(-z^2) t Q(t) with t = 2 / (2 + z), erfc for z >= 0.5 (Q: Chebyshev fit
//           of e^(z^2) erfc(z) / t on z in [0.5, 10], 4e-9). Coefficients fitted with
//           mpmath.chebyfit; e^(-z^2) = e^(-h) (1 - l) keeps z^2's rounding out of it.
// erf = small or 1 - large, erfc = 1 - small or large, each where no cancellation hurts.
template <class D>
void erf_parts(D d, hn::Vec<D> z, hn::Vec<D> h, hn::Vec<D> l, hn::Vec<D>& small, hn::Vec<D>& large) {
  using V = hn::Vec<D>;
  const V one = hn::Set(d, 1.0f);
  V p = hn::Set(d, 7.87587506269e-5f);
  for (float c : {-0.000801686428717f, 0.00518908742343f, -0.0268542120106f, 0.112835947152f,
                  -0.376126266667f, 1.12837916585f})
    p = hn::MulAdd(p, h, hn::Set(d, c));
  small = hn::Mul(z, p);
  const V huge = hn::Set(d, 10.5f);  // erfc(10.5) is below the smallest float
  const V t = hn::Div(hn::Set(d, 2.0f), hn::Add(hn::Set(d, 2.0f), hn::Min(z, huge)));
  V q = hn::Set(d, -0.0254844929796f);
  for (float c : {0.045852221725f, 0.102083187786f, -0.31308351597f, 0.179220646867f,
                  0.00709926265541f, 0.19613102521f, 0.243703259478f, 0.282371037767f,
                  0.282084361893f})
    q = hn::MulAdd(q, t, hn::Set(d, c));
  large = hn::Mul(hn::Mul(hn::Mul(exp_everywhere(d, hn::Neg(h)), hn::Sub(one, l)), t), q);
  large = hn::IfThenZeroElse(hn::Gt(z, huge), large);  // also the NaN of l at z = inf
}

// float tanh(x) = x P(x^2) / Q(x^2) on |x| <= 9 (beyond, tanh rounds to 1), with
// P of degree 6 and Q of degree 3: our own minimax fit of relative error (linearised
// least squares with Lawson weights, in mpmath), 6.6e-9 in exact arithmetic; with
// float rounding at most 5 ulp (3e-7 relative) over all floats. About twice as fast
// as Highway's Tanh, which goes through Expm1 and a division.
template <class D>
hn::Vec<D> tanh_float(D d, hn::Vec<D> x) {
  using V = hn::Vec<D>;
  const V a = hn::Min(hn::Abs(x), hn::Set(d, 9.0f));
  const V s = hn::Mul(a, a);
  V p = hn::Set(d, -8.48900221910543e-14f);
  for (float c : {5.27807313612901e-11f, -2.02255093182198e-8f, 1.11543837321168e-5f,
                  0.00310396379633168f, 0.130840170146936f, 0.999999993417916f})
    p = hn::MulAdd(p, s, hn::Set(d, c));
  V q = hn::Set(d, 0.000254615603407506f);
  for (float c : {0.0244952089753658f, 0.464173441251345f, 1.0f}) q = hn::MulAdd(q, s, hn::Set(d, c));
  const V magnitude = hn::Min(hn::Div(hn::Mul(a, p), q), hn::Set(d, 1.0f));
  return hn::IfThenElse(hn::IsNaN(x), x, hn::CopySign(magnitude, x));
}

// The rounding error l of h = x * x, so that x^2 = h + l exactly: one FMA where the
// target has one, else Dekker's exact product (Veltkamp's split of x into 12-bit
// halves whose products are exact). erfc(z) ~ e^(-z^2) needs it: without l, z^2's
// rounding alone costs 2e-6 relative at z = 6.
template <class D>
hn::Vec<D> square_rounding_error(D d, hn::Vec<D> x, hn::Vec<D> h) {
#if HWY_NATIVE_FMA
  (void)d;
  return hn::MulSub(x, x, h);
#else
  const auto scaled = hn::Mul(x, hn::Set(d, 4097.0f));  // 2^12 + 1
  const auto hi = hn::Sub(scaled, hn::Sub(scaled, x));
  const auto lo = hn::Sub(x, hi);
  const auto high_part = hn::Add(hn::Sub(hn::Mul(hi, hi), h), hn::Mul(hn::Add(hi, hi), lo));
  return hn::Add(high_part, hn::Mul(lo, lo));
#endif
}

// erf(x) and gelu(x) = 0.5 x (1 + erf(x / sqrt 2)) for float.
template <class D>
hn::Vec<D> erf_float(D d, hn::Vec<D> x) {
  using V = hn::Vec<D>;
  const V one = hn::Set(d, 1.0f);
  const V h = hn::Mul(x, x);
  V small, large;
  const V z = hn::Abs(x);
  erf_parts(d, z, h, square_rounding_error(d, x, h), small, large);
  const V erf_abs = hn::IfThenElse(hn::Lt(z, one), small, hn::Sub(one, large));
  return hn::IfThenElse(hn::IsNaN(x), x, hn::CopySign(erf_abs, x));
}
template <class D>
hn::Vec<D> gelu_float(D d, hn::Vec<D> x) {
  using V = hn::Vec<D>;
  const V one = hn::Set(d, 1.0f);
  const V half = hn::Set(d, 0.5f);
  const V h = hn::Mul(x, x);
  const V z = hn::Mul(hn::Abs(x), hn::Set(d, 0.707106781186547524f));
  V small, large;  // z^2 = x^2 / 2 exactly: halve both parts
  erf_parts(d, z, hn::Mul(h, half), hn::Mul(square_rounding_error(d, x, h), half), small, large);
  const V one_plus_erf = hn::IfThenElse(hn::Lt(z, one), hn::Add(one, small), hn::Sub(hn::Set(d, 2.0f), large));
  const V erfc = hn::IfThenElse(hn::Lt(z, half), hn::Sub(one, small), large);
  const V cdf_times_2 = hn::IfThenElse(hn::Ge(x, hn::Zero(d)), one_plus_erf, erfc);
  return hn::IfThenElse(hn::IsNaN(x), x, hn::Mul(hn::Mul(half, x), cdf_times_2));
}

template <class T>
void unary_range(Unary op, const T* HWY_RESTRICT x, T* HWY_RESTRICT y, std::size_t n,
                 double param, bool stream) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const V zero = hn::Zero(d);
  const V one = hn::Set(d, T(1));
  const V p = hn::Set(d, static_cast<T>(param));
  // Highway's Sin/Cos reduce the argument accurately only for |x| <= 39000.
  const V trig_limit = hn::Set(d, T(39000));
  switch (op) {
    case Unary::neg: return map(d, x, y, n, stream, [&](V v) { return hn::Neg(v); });
    case Unary::abs: return map(d, x, y, n, stream, [&](V v) { return hn::Abs(v); });
    case Unary::sqrt: return map(d, x, y, n, stream, [&](V v) { return hn::Sqrt(v); });
    case Unary::square: return map(d, x, y, n, stream, [&](V v) { return hn::Mul(v, v); });
    case Unary::reciprocal: return map(d, x, y, n, stream, [&](V v) { return hn::Div(one, v); });
    case Unary::add_scalar: return map(d, x, y, n, stream, [&](V v) { return hn::Add(v, p); });
    case Unary::mul_scalar: return map(d, x, y, n, stream, [&](V v) { return hn::Mul(v, p); });
    case Unary::relu:  // NaN > 0 is false, so NaN gives 0 as in the reference
      return map(d, x, y, n, stream, [&](V v) { return hn::IfThenElseZero(hn::Gt(v, zero), v); });
    case Unary::step:
      return map(d, x, y, n, stream, [&](V v) { return hn::IfThenElseZero(hn::Gt(v, zero), one); });
    case Unary::sign:
      return map(d, x, y, n, stream, [&](V v) {
        return hn::Sub(hn::IfThenElseZero(hn::Gt(v, zero), one),
                       hn::IfThenElseZero(hn::Lt(v, zero), one));
      });
    case Unary::exp: return map(d, x, y, n, stream, [&](V v) { return exp_everywhere(d, v); });
    case Unary::log: return map(d, x, y, n, stream, [&](V v) { return log_everywhere(d, v); });
    case Unary::tanh:  // Highway's Tanh saturates to +-1 and passes NaN and -0 through
      if constexpr (sizeof(T) == 4) return map(d, x, y, n, stream, [&](V v) { return tanh_float(d, v); });
      return map(d, x, y, n, stream, [&](V v) { return hn::Tanh(d, v); });
    case Unary::sin:
    case Unary::cos:
      return map(d, x, y, n, stream, [&](V v) {
        const V r = op == Unary::sin ? hn::Sin(d, v) : hn::Cos(d, v);
        if (HWY_LIKELY(hn::AllTrue(d, hn::Le(hn::Abs(v), trig_limit)))) return r;
        return lanes_by_reference(d, op, v, param);  // NaN, inf or a huge argument
      });
    // With e = e^-|x| <= 1 nothing overflows: sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e).
    case Unary::sigmoid:
      return map(d, x, y, n, stream, [&](V v) {
        const V e = exp_everywhere(d, hn::Neg(hn::Abs(v)));
        return hn::Div(hn::IfThenElse(hn::Ge(v, zero), one, e), hn::Add(one, e));
      });
    case Unary::silu:  // x * sigmoid(x), same form
      return map(d, x, y, n, stream, [&](V v) {
        const V e = exp_everywhere(d, hn::Neg(hn::Abs(v)));
        return hn::Div(hn::IfThenElse(hn::Ge(v, zero), v, hn::Mul(v, e)), hn::Add(one, e));
      });
    case Unary::softplus:  // max(x, 0) + log1p(e^-|x|): no overflow for large |x|
      return map(d, x, y, n, stream, [&](V v) {
        const V positive_part = hn::IfThenElseZero(hn::Gt(v, zero), v);
        const V e = exp_everywhere(d, hn::Neg(hn::Abs(v)));
        return hn::Add(positive_part, hn::Log1p(d, e));
      });
    case Unary::pow_scalar:
      if (param == 0.0) return map(d, x, y, n, stream, [&](V) { return one; });
      if (param == 1.0) return map(d, x, y, n, stream, [&](V v) { return v; });
      if (param == 2.0) return map(d, x, y, n, stream, [&](V v) { return hn::Mul(v, v); });
      if (param == -1.0) return map(d, x, y, n, stream, [&](V v) { return hn::Div(one, v); });
      if (param == 0.5)  // pow(-0, 0.5) = +0 and pow(-inf, 0.5) = +inf, unlike sqrt
        return map(d, x, y, n, stream, [&](V v) {
          const V inf = hn::Set(d, std::numeric_limits<T>::infinity());
          const V r = hn::Add(hn::Sqrt(v), zero);  // -0 + 0 = +0
          return hn::IfThenElse(hn::Eq(v, hn::Neg(inf)), inf, r);
        });
      return unary_scalar_path(op, x, y, n, param);
    case Unary::gelu:
    case Unary::erf:
      if constexpr (sizeof(T) == 4) {
        if (op == Unary::erf) return map(d, x, y, n, stream, [&](V v) { return erf_float(d, v); });
        return map(d, x, y, n, stream, [&](V v) { return gelu_float(d, v); });
      }
      return unary_scalar_path(op, x, y, n, param);
  }
}

void UnaryF32(Unary op, const float* x, float* y, std::int64_t n, double param, bool stream) {
  unary_range(op, x, y, static_cast<std::size_t>(n), param, stream);
}
void UnaryF64(Unary op, const double* x, double* y, std::int64_t n, double param, bool stream) {
  unary_range(op, x, y, static_cast<std::size_t>(n), param, stream);
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
    case Unary::pow_scalar:  // std::pow, and erf / gelu in float64
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
    const bool stream = static_cast<std::size_t>(n) * sizeof(T) >= kStreamBytes;
    const auto run = [&](std::int64_t begin, std::int64_t end) {
      if constexpr (sizeof(T) == 4)
        HWY_DYNAMIC_DISPATCH(UnaryF32)(op, xs + begin, ys + begin, end - begin, param, stream);
      else
        HWY_DYNAMIC_DISPATCH(UnaryF64)(op, xs + begin, ys + begin, end - begin, param, stream);
    };
    const std::int64_t grain = grain_for(op);
    if (n < 2 * grain) run(0, n);  // no std::function, no pool: the tiny-tensor path
    else parallel_for(n, grain, run);
  });
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
