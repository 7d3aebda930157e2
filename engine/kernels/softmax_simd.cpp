// Softmax, log_softmax and logsumexp over the middle axis of [outer, n, inner],
// with Highway SIMD (dynamic dispatch) split over the thread pool, rows (inner == 1)
// or column tiles (inner > 1) at a time, so results do not depend on the split.
//
// The stable form: m = max, e = exp(x - m), then e / sum(e). The rounding error of
// x - m is recovered exactly (TwoSum) and applied as e * (1 + err), so float32
// softmax stays within a few ulps even when |x - m| is large (it would otherwise
// lose |x - m| * 2^-24 relative). Sums of e accumulate in double as in reduce_simd,
// and inner > 1 is walked row by row as there.
// The max ignores NaN like the reference's std::max; a NaN then spreads through
// the sum to the whole row, as in the reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/softmax_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/aligned_allocator.h"
#include "engine/kernels/simd_common-inl.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "engine/kernels/elementwise.hpp"
#include "engine/kernels/threads.hpp"

#ifndef SYMGRAD_KERNELS_SOFTMAX_SIMD_ONCE
#define SYMGRAD_KERNELS_SOFTMAX_SIMD_ONCE
namespace symgrad::kernels {
// What a softmax pass writes: y = softmax, y = log_softmax, or one logsumexp per slice.
enum SoftmaxOutput : int { kSoftmax, kLogSoftmax, kLogsumexp };
}  // namespace symgrad::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace symgrad::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x - m rounded, and its rounding error (TwoSum); the error is 0 where x - m is not finite.
template <class D>
hn::Vec<D> difference_with_error(D, hn::Vec<D> x, hn::Vec<D> m, hn::Vec<D>& error) {
  const auto diff = hn::Sub(x, m);
  const auto back = hn::Sub(diff, x);
  error = hn::Add(hn::Sub(x, hn::Sub(diff, back)), hn::Sub(hn::Neg(m), back));
  error = hn::IfThenElseZero(hn::IsFinite(diff), error);
  return diff;
}

// e^(x - m), with the rounding of x - m corrected to first order.
template <class D>
hn::Vec<D> exp_of_difference(D d, hn::Vec<D> x, hn::Vec<D> m) {
  hn::Vec<D> error;
  const auto e = exp_everywhere(d, difference_with_error(d, x, m, error));
  return hn::MulAdd(e, error, e);
}

// The softmax max: like std::max(m, x), a NaN x never replaces m.
template <class D>
hn::Vec<D> max_ignoring_nan(hn::Vec<D> m, hn::Vec<D> x) { return hn::IfThenElse(hn::Lt(m, x), x, m); }

// `rows` contiguous rows of length n: max, then exp and sum, then scale (or log).
template <class T>
void softmax_rows(const T* x, T* y, std::int64_t rows, std::int64_t n, int what) {
  const hn::ScalableTag<T> d;
  const DDouble dd;
  using V = hn::Vec<decltype(d)>;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const V neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    // The partial last vector is read through a buffer padded with -inf, which adds
    // nothing to the max and e^-inf = 0 to the sum.
    HWY_ALIGN T tail[hn::MaxLanes(d)];
    const std::int64_t full = n - n % lanes;
    const auto load = [&](std::int64_t i) {
      if (i < full) return hn::LoadU(d, xr + i);
      hn::Store(neg_inf, d, tail);
      std::memcpy(tail, xr + i, static_cast<std::size_t>(n - i) * sizeof(T));
      return hn::Load(d, tail);
    };
    V mv = neg_inf;
    for (std::int64_t i = 0; i < n; i += lanes) mv = max_ignoring_nan<decltype(d)>(mv, load(i));
    HWY_ALIGN T lanes_of_m[hn::MaxLanes(d)];
    hn::Store(mv, d, lanes_of_m);
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t j = 0; j < lanes; ++j) m = lanes_of_m[j] > m ? lanes_of_m[j] : m;
    if (what == kLogsumexp && std::isinf(m)) {  // all -inf (or empty), or a +inf: the answer is m
      y[r] = m;
      continue;
    }
    const V m_vec = hn::Set(d, m);
    // Summed like reduce's sum: double lanes, blocks of kSumBlock combined pairwise.
    PairwiseSum sum;
    auto s0 = hn::Zero(dd), s1 = hn::Zero(dd);
    T* yr = y + r * n;
    for (std::int64_t i = 0; i < n; i += lanes) {
      if (i % kSumBlock == 0 && i > 0) {
        sum.add(sum_lanes(hn::Add(s0, s1)));
        s0 = s1 = hn::Zero(dd);
      }
      const V e = exp_of_difference(d, load(i), m_vec);
      accumulate_wide(d, e, s0, s1);
      if (what == kSoftmax) {
        if (i < full) hn::StoreU(e, d, yr + i);
        else {
          hn::Store(e, d, tail);
          std::memcpy(yr + i, tail, static_cast<std::size_t>(n - i) * sizeof(T));
        }
      }
    }
    sum.add(sum_lanes(hn::Add(s0, s1)));
    const double s = sum.total();
    if (what == kLogsumexp) {
      y[r] = static_cast<T>(static_cast<double>(m) + std::log(s));
    } else if (what == kSoftmax) {
      const V s_vec = hn::Set(d, static_cast<T>(s));
      std::int64_t i = 0;
      for (; i < full; i += lanes) hn::StoreU(hn::Div(hn::LoadU(d, yr + i), s_vec), d, yr + i);
      for (; i < n; ++i) yr[i] = yr[i] / static_cast<T>(s);
    } else {
      const V log_s = hn::Set(d, static_cast<T>(std::log(s)));
      for (std::int64_t i = 0; i < n; i += lanes) {
        V error;
        const V diff = difference_with_error(d, load(i), m_vec, error);
        const V out = hn::Add(hn::Sub(diff, log_s), error);
        if (i < full) hn::StoreU(out, d, yr + i);
        else {
          hn::Store(out, d, tail);
          std::memcpy(yr + i, tail, static_cast<std::size_t>(n - i) * sizeof(T));
        }
      }
    }
  }
}

// Columns [c_begin, c_end) (at most kColumnChunk) of one [n, inner] slab, walked row
// by row so every read is contiguous, with per-column max and sum buffers. Vectors
// have DNarrow<T> lanes so that each widens to one double vector for the sums; a
// row's partial last vector goes through a buffer padded with -inf. Sums have two
// levels (blocks of kColumnBlock rows) as in reduce_columns.
template <class T>
void softmax_columns(const T* x, T* y, std::int64_t n, std::int64_t inner, std::int64_t c_begin,
                     std::int64_t c_end, int what) {
  const DNarrow<T> dn;
  const DDouble dd;
  using V = hn::Vec<decltype(dn)>;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(dn));
  const std::int64_t width = c_end - c_begin;
  const V neg_inf = hn::Set(dn, -std::numeric_limits<T>::infinity());
  x += c_begin;
  y += c_begin;
  HWY_ALIGN T pad[hn::MaxLanes(dn)];
  const auto load = [&](const T* row, std::int64_t j) {
    if (j + lanes <= width) return hn::LoadU(dn, row + j);
    hn::Store(neg_inf, dn, pad);
    std::copy(row + j, row + width, pad);
    return hn::Load(dn, pad);
  };
  const auto store = [&](T* row, std::int64_t j, V v) {
    if (j + lanes <= width) return hn::StoreU(v, dn, row + j);
    hn::Store(v, dn, pad);
    std::copy(pad, pad + (width - j), row + j);
  };

  // Per-column state, on the heap (a chunk's worth is too big for a stack frame).
  const auto column_state = hwy::AllocateAligned<T>(2 * kColumnChunk);
  const auto column_sums = hwy::AllocateAligned<double>(2 * kColumnChunk);
  T* m = column_state.get();  // whole vectors past `width` stay readable
  T* scale = m + kColumnChunk;  // the sum (softmax) or its log (log_softmax)
  double* total = column_sums.get();
  double* block = total + kColumnChunk;
  std::fill_n(m, kColumnChunk, -std::numeric_limits<T>::infinity());
  for (std::int64_t k = 0; k < n; ++k)
    for (std::int64_t j = 0; j < width; j += lanes)
      hn::Store(max_ignoring_nan<decltype(dn)>(hn::Load(dn, m + j), load(x + k * inner, j)), dn, m + j);

  std::fill_n(total, kColumnChunk, 0.0);
  for (std::int64_t k0 = 0; k0 < n; k0 += kColumnBlock) {
    std::fill_n(block, kColumnChunk, 0.0);
    for (std::int64_t k = k0; k < std::min(n, k0 + kColumnBlock); ++k)
      for (std::int64_t j = 0; j < width; j += lanes) {
        const V e = exp_of_difference(dn, load(x + k * inner, j), hn::Load(dn, m + j));
        if (what == kSoftmax) store(y + k * inner, j, e);
        hn::Store(hn::Add(hn::Load(dd, block + j), widen<T>(e)), dd, block + j);
      }
    for (std::int64_t j = 0; j < width; ++j) total[j] += block[j];
  }

  if (what == kLogsumexp) {
    for (std::int64_t j = 0; j < width; ++j)
      y[j] = std::isinf(m[j]) ? m[j] : static_cast<T>(static_cast<double>(m[j]) + std::log(total[j]));
    return;
  }
  std::fill_n(scale, kColumnChunk, T(1));
  for (std::int64_t j = 0; j < width; ++j)
    scale[j] = static_cast<T>(what == kSoftmax ? total[j] : std::log(total[j]));
  for (std::int64_t k = 0; k < n; ++k)
    for (std::int64_t j = 0; j < width; j += lanes) {
      const V s = hn::Load(dn, scale + j);
      if (what == kSoftmax) {
        store(y + k * inner, j, hn::Div(load(y + k * inner, j), s));
      } else {
        V error;
        const V diff = difference_with_error(dn, load(x + k * inner, j), hn::Load(dn, m + j), error);
        store(y + k * inner, j, hn::Add(hn::Sub(diff, s), error));
      }
    }
}

#define SYMGRAD_EXPORTED_FOR(T, SUFFIX)                                                      \
  void SoftmaxRows##SUFFIX(const T* x, T* y, std::int64_t rows, std::int64_t n, int what) {  \
    softmax_rows(x, y, rows, n, what);                                                       \
  }                                                                                          \
  void SoftmaxColumns##SUFFIX(const T* x, T* y, std::int64_t n, std::int64_t inner,          \
                              std::int64_t c_begin, std::int64_t c_end, int what) {          \
    softmax_columns(x, y, n, inner, c_begin, c_end, what);                                   \
  }
SYMGRAD_EXPORTED_FOR(float, F32)
SYMGRAD_EXPORTED_FOR(double, F64)
#undef SYMGRAD_EXPORTED_FOR

}  // namespace HWY_NAMESPACE
}  // namespace symgrad::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace symgrad::kernels {
HWY_EXPORT(SoftmaxRowsF32);
HWY_EXPORT(SoftmaxRowsF64);
HWY_EXPORT(SoftmaxColumnsF32);
HWY_EXPORT(SoftmaxColumnsF64);

namespace {
constexpr std::int64_t kSoftmaxGrain = 1 << 14;  // exp makes softmax ~10x dearer per element than a sum

void softmax_family(DType dt, const void* x, void* y, std::int64_t outer, std::int64_t n,
                    std::int64_t inner, int what) {
  if (outer <= 0 || inner <= 0) return;
  if (what != kLogsumexp && n <= 0) return;
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* xs = static_cast<const T*>(x);
    T* ys = static_cast<T*>(y);
    const std::int64_t out_per_slab = what == kLogsumexp ? inner : n * inner;
    if (inner > 1) {
      for_column_items(outer, n, inner, kSoftmaxGrain, [&](std::int64_t o, std::int64_t c0, std::int64_t c1) {
        const T* slab = xs + o * n * inner;
        T* out = ys + o * out_per_slab;
        if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(SoftmaxColumnsF32)(slab, out, n, inner, c0, c1, what);
        else HWY_DYNAMIC_DISPATCH(SoftmaxColumnsF64)(slab, out, n, inner, c0, c1, what);
      });
      return;
    }
    split_items(outer, n, kSoftmaxGrain, [&](std::int64_t begin, std::int64_t end) {
      T* out = ys + begin * out_per_slab;
      if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(SoftmaxRowsF32)(xs + begin * n, out, end - begin, n, what);
      else HWY_DYNAMIC_DISPATCH(SoftmaxRowsF64)(xs + begin * n, out, end - begin, n, what);
    });
  });
}
}  // namespace

void softmax(DType dt, const void* x, void* y, std::int64_t outer, std::int64_t n,
             std::int64_t inner, bool log) {
  softmax_family(dt, x, y, outer, n, inner, log ? kLogSoftmax : kSoftmax);
}

void logsumexp(DType dt, const void* x, void* out, std::int64_t outer, std::int64_t n,
               std::int64_t inner) {
  softmax_family(dt, x, out, outer, n, inner, kLogsumexp);
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
