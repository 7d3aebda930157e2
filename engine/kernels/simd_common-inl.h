// Helpers shared by the Highway kernel files (unary_simd.cpp, binary_simd.cpp,
// reduce_simd.cpp, softmax_simd.cpp). The first half is plain C++ (constants, the
// pairwise sum, how work is cut into items), compiled once per file; the second is
// per-target SIMD code, re-included for every target by foreach_target (hence the
// toggling include guard, as in Highway's own -inl.h headers).
#ifndef SYMGRAD_KERNELS_SIMD_COMMON_ONCE
#define SYMGRAD_KERNELS_SIMD_COMMON_ONCE
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "engine/kernels/threads.hpp"

namespace symgrad::kernels {

// Outputs at least this large are written with non-temporal stores: half the L3
// of the machines we measure on, so an output that large would not stay cached.
constexpr std::size_t kStreamBytes = std::size_t{16} << 20;

constexpr std::int64_t kSumBlock = 4096;     // elements per pairwise-summed block (rows)
constexpr std::int64_t kColumnBlock = 256;   // rows per block when summing down columns

// Pairwise sum of a stream of values, O(log n) state: level l holds the sum of 2^l
// consecutive values, like the digits of a binary counter.
class PairwiseSum {
 public:
  void add(double value) {
    int level = 0;
    for (; (count_ >> level) & 1; ++level) value = partial_[level] + value;
    partial_[level] = value;
    ++count_;
  }
  double total() const {
    double sum = 0;
    for (int level = 0; level < 64; ++level)
      if ((count_ >> level) & 1) sum = partial_[level] + sum;
    return sum;
  }

 private:
  double partial_[64] = {};
  std::uint64_t count_ = 0;
};

// max/min that propagate NaN: once NaN, always NaN (as in reduce_reference).
template <class T>
T max_nan(T acc, T v) { return (v != v || v > acc) ? v : acc; }
template <class T>
T min_nan(T acc, T v) { return (v != v || v < acc) ? v : acc; }

// Columns per work item when reducing across rows (inner > 1): a multiple of any
// vector length; its per-column double accumulators (128 KiB) stay in L2, and rows
// are read in long contiguous runs (shorter runs defeat the hardware prefetcher).
constexpr std::int64_t kColumnChunk = 8192;

// Runs item(begin, end) over [0, count) work items of `cost` elements each, on the
// calling thread when the total is small.
template <class Item>
void split_items(std::int64_t count, std::int64_t cost, std::int64_t grain_elements, const Item& item) {
  if (count <= 0) return;
  const std::int64_t grain = std::max<std::int64_t>(1, grain_elements / std::max<std::int64_t>(cost, 1));
  if (count < 2 * grain) item(0, count);
  else parallel_for(count, grain, item);
}

// Work items over [outer, inner] outputs: (slab o, columns [c0, c1)).
template <class Fn>
void for_column_items(std::int64_t outer, std::int64_t n, std::int64_t inner, std::int64_t grain,
                      const Fn& fn) {
  const std::int64_t chunks = (inner + kColumnChunk - 1) / kColumnChunk;
  split_items(outer * chunks, n * std::min(inner, kColumnChunk), grain,
              [&](std::int64_t begin, std::int64_t end) {
                for (std::int64_t item = begin; item < end; ++item) {
                  const std::int64_t o = item / chunks;
                  const std::int64_t c0 = (item % chunks) * kColumnChunk;
                  fn(o, c0, std::min(inner, c0 + kColumnChunk));
                }
              });
}

}  // namespace symgrad::kernels
#endif  // SYMGRAD_KERNELS_SIMD_COMMON_ONCE

#if defined(SYMGRAD_KERNELS_SIMD_COMMON_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SYMGRAD_KERNELS_SIMD_COMMON_INL_H_
#undef SYMGRAD_KERNELS_SIMD_COMMON_INL_H_
#else
#define SYMGRAD_KERNELS_SIMD_COMMON_INL_H_
#endif

#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace symgrad::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// e^x for every x. Highway's Exp overflows correctly up to x = 104 (float) and
// 1000 (double) but gives garbage beyond and 0 for NaN: past the overflow point
// the result is set to +inf, and NaN passes through.
template <class D>
hn::Vec<D> highway_exp_everywhere(D d, hn::Vec<D> x) {
  using T = hn::TFromD<D>;
  const auto overflows = hn::Gt(x, hn::Set(d, T(sizeof(T) == 4 ? 100.0 : 709.8)));
  auto y = hn::IfThenElse(overflows, hn::Set(d, std::numeric_limits<T>::infinity()), hn::Exp(d, x));
  return hn::IfThenElse(hn::IsNaN(x), x, y);
}

// float e^x for |x| <= 87 (results and 2^n both normal), within 1 ulp, in about 20
// instructions per vector against Highway Exp's 28. x = n ln2 + r with |r| <= ln2/2;
// n is rounded by adding 1.5 * 2^23, which also leaves n's bits in the sum, so 2^n
// is one integer add and shift away. ln2 is split (Cody-Waite; the high part has 9
// significant bits, so n * hi is exact), and e^r is its Taylor polynomial of degree
// 7, whose truncation error (ln2/2)^8 / 8! = 5e-9 is below float's half ulp.
template <class D>
hn::Vec<D> exp_float_normal_range(D d, hn::Vec<D> x) {
  const hn::RebindToSigned<D> di;
  const auto shift = hn::Set(d, 12582912.0f);  // 1.5 * 2^23
  const auto shifted = hn::MulAdd(x, hn::Set(d, 1.44269504088896341f), shift);
  const auto n = hn::Sub(shifted, shift);
  auto r = hn::NegMulAdd(n, hn::Set(d, 0.693359375f), x);
  r = hn::NegMulAdd(n, hn::Set(d, -2.12194440e-4f), r);
  auto p = hn::Set(d, 1.0f / 5040);
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 720));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 120));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 24));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 6));
  p = hn::MulAdd(p, r, hn::Set(d, 0.5f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  // The sum's bits are 0x4B400000 + n; adding 127 and shifting drops the 0x4B4 part.
  const auto two_to_n = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(hn::BitCast(di, shifted), hn::Set(di, 127))));
  return hn::Mul(p, two_to_n);
}

// e^x for every x: the short float path when every lane is in its range (the usual
// case), Highway's Exp otherwise (doubles, -inf from masking, overflow, NaN).
template <class D>
hn::Vec<D> exp_everywhere(D d, hn::Vec<D> x) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 4) {
    if (HWY_LIKELY(hn::AllTrue(d, hn::Le(hn::Abs(x), hn::Set(d, 87.0f))))) return exp_float_normal_range(d, x);
  }
  return highway_exp_everywhere(d, x);
}

using DDouble = hn::ScalableTag<double>;
// T lanes, as many as a double vector has: the unit that widens to one double vector.
template <class T>
using DNarrow = hn::Rebind<T, DDouble>;

template <class T>
hn::Vec<DDouble> widen(hn::Vec<DNarrow<T>> v) {
  if constexpr (sizeof(T) == 4) return hn::PromoteTo(DDouble(), v);
  else return v;
}
template <class T>
hn::Vec<DNarrow<T>> narrow(hn::Vec<DDouble> v) {
  if constexpr (sizeof(T) == 4) return hn::DemoteTo(DNarrow<T>(), v);
  else return v;
}

// Adds the lanes of a full T vector into two double accumulators.
template <class D>
void accumulate_wide(D d, hn::Vec<D> v, hn::Vec<DDouble>& acc0, hn::Vec<DDouble>& acc1) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 8) {
    acc0 = hn::Add(acc0, v);
  } else {
    const DNarrow<T> dn;
    HWY_ALIGN T lanes[hn::MaxLanes(d)];
    hn::Store(v, d, lanes);
    const std::size_t step = hn::Lanes(dn);
    for (std::size_t j = 0; j < hn::Lanes(d); j += 2 * step) {
      acc0 = hn::Add(acc0, widen<T>(hn::Load(dn, lanes + j)));
      if (j + step < hn::Lanes(d)) acc1 = hn::Add(acc1, widen<T>(hn::Load(dn, lanes + j + step)));
    }
  }
}

HWY_INLINE double sum_lanes(hn::Vec<DDouble> v) { return hn::GetLane(hn::SumOfLanes(DDouble(), v)); }

}  // namespace HWY_NAMESPACE
}  // namespace symgrad::kernels
HWY_AFTER_NAMESPACE();

#endif  // SYMGRAD_KERNELS_SIMD_COMMON_INL_H_
