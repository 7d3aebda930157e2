// Sum, max and min over the middle axis of [outer, n, inner], with Highway SIMD
// (dynamic dispatch) split over the thread pool.
//
// inner == 1 reduces contiguous rows (vector accumulators, then a horizontal step);
// inner > 1 vectorises across the inner columns, reading the slab row by row into
// per-column accumulators for a chunk of at most kColumnChunk columns.
//
// Sums accumulate in double lanes for both dtypes (float values widen exactly):
// rows in blocks of kSumBlock elements whose sums are combined pairwise, columns
// in blocks of kColumnBlock rows. A float32 sum is therefore the double sum rounded
// once, and a float64 sum has an error bound of ~(kSumBlock / lanes + log2 blocks)
// ulps instead of n ulps. Work is split only along whole rows, column tiles or
// whole blocks, and partial results are combined in a fixed order, so results do
// not depend on the number of threads. max and min propagate NaN like the reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/reduce_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/aligned_allocator.h"
#include "engine/kernels/simd_common-inl.h"

#include <vector>

#include "engine/kernels/elementwise.hpp"
#include "engine/kernels/threads.hpp"

HWY_BEFORE_NAMESPACE();
namespace symgrad::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of x[0, n) for n <= kSumBlock, in double.
template <class T>
double block_sum(const T* HWY_RESTRICT x, std::size_t n) {
  const DDouble dd;
  const DNarrow<T> dn;
  const std::size_t lanes = hn::Lanes(dd);
  auto a0 = hn::Zero(dd), a1 = hn::Zero(dd), a2 = hn::Zero(dd), a3 = hn::Zero(dd);
  std::size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    a0 = hn::Add(a0, widen<T>(hn::LoadU(dn, x + i)));
    a1 = hn::Add(a1, widen<T>(hn::LoadU(dn, x + i + lanes)));
    a2 = hn::Add(a2, widen<T>(hn::LoadU(dn, x + i + 2 * lanes)));
    a3 = hn::Add(a3, widen<T>(hn::LoadU(dn, x + i + 3 * lanes)));
  }
  for (; i + lanes <= n; i += lanes) a0 = hn::Add(a0, widen<T>(hn::LoadU(dn, x + i)));
  double sum = sum_lanes(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)));
  for (; i < n; ++i) sum += static_cast<double>(x[i]);
  return sum;
}

// max or min (NaN-propagating) of x[0, n), as a T.
template <class T>
T row_extremum(Reduce op, const T* HWY_RESTRICT x, std::size_t n) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const bool is_max = op == Reduce::max;
  const T identity = (is_max ? -1 : 1) * std::numeric_limits<T>::infinity();
  const auto step = [is_max](V acc, V v) {
    return hn::IfThenElse(hn::Or(hn::IsNaN(v), is_max ? hn::Gt(v, acc) : hn::Lt(v, acc)), v, acc);
  };
  const std::size_t lanes = hn::Lanes(d);
  V a0 = hn::Set(d, identity), a1 = a0;
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    a0 = step(a0, hn::LoadU(d, x + i));
    a1 = step(a1, hn::LoadU(d, x + i + lanes));
  }
  for (; i + lanes <= n; i += lanes) a0 = step(a0, hn::LoadU(d, x + i));
  HWY_ALIGN T lanes_of[2][hn::MaxLanes(d)];
  hn::Store(a0, d, lanes_of[0]);
  hn::Store(a1, d, lanes_of[1]);
  T result = identity;
  for (const auto& acc : lanes_of)
    for (std::size_t j = 0; j < lanes; ++j)
      result = is_max ? max_nan(result, acc[j]) : min_nan(result, acc[j]);
  for (; i < n; ++i) result = is_max ? max_nan(result, x[i]) : min_nan(result, x[i]);
  return result;
}

// partial[j] = the reduction of block j (kSumBlock elements, the last one shorter)
// of x[0, n), in double; the caller combines blocks in a fixed order.
template <class T>
void reduce_blocks(Reduce op, const T* x, std::int64_t n, double* partial) {
  for (std::int64_t start = 0, j = 0; start < n; start += kSumBlock, ++j) {
    const auto count = static_cast<std::size_t>(std::min(kSumBlock, n - start));
    partial[j] = op == Reduce::sum ? block_sum(x + start, count)
                                   : static_cast<double>(row_extremum(op, x + start, count));
  }
}

template <class T>
T row_sum(const T* x, std::int64_t n) {
  if (n <= kSumBlock) return static_cast<T>(block_sum(x, static_cast<std::size_t>(n)));
  PairwiseSum sum;
  for (std::int64_t start = 0; start < n; start += kSumBlock)
    sum.add(block_sum(x + start, static_cast<std::size_t>(std::min(kSumBlock, n - start))));
  return static_cast<T>(sum.total());
}

template <class T>
void reduce_rows(Reduce op, const T* x, T* out, std::int64_t rows, std::int64_t n) {
  for (std::int64_t r = 0; r < rows; ++r)
    out[r] = op == Reduce::sum ? row_sum(x + r * n, n)
                               : row_extremum(op, x + r * n, static_cast<std::size_t>(n));
}

// out[c] for c in [c_begin, c_end) (at most kColumnChunk columns) of one [n, inner]
// slab. Walks the slab row by row, so every read is contiguous, keeping one
// accumulator per column in a small buffer. Sums have two levels: a block of
// kColumnBlock rows, then the running total, so the error grows with
// kColumnBlock + n / kColumnBlock rather than with n.
template <class T>
void reduce_columns(Reduce op, const T* x, T* out, std::int64_t n, std::int64_t inner,
                    std::int64_t c_begin, std::int64_t c_end) {
  const DDouble dd;
  const DNarrow<T> dn;
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(dn));
  const std::int64_t width = c_end - c_begin;
  const std::int64_t full = width - width % lanes;
  x += c_begin;
  out += c_begin;
  if (op == Reduce::sum) {
    const auto buffers = hwy::AllocateAligned<double>(2 * kColumnChunk);
    double* total = buffers.get();
    double* block = total + kColumnChunk;
    std::fill_n(total, width, 0.0);
    for (std::int64_t k0 = 0; k0 < n; k0 += kColumnBlock) {
      std::fill_n(block, width, 0.0);
      for (std::int64_t k = k0; k < std::min(n, k0 + kColumnBlock); ++k) {
        const T* row = x + k * inner;
        std::int64_t j = 0;
        for (; j < full; j += lanes)
          hn::Store(hn::Add(hn::Load(dd, block + j), widen<T>(hn::LoadU(dn, row + j))), dd, block + j);
        for (; j < width; ++j) block[j] += static_cast<double>(row[j]);
      }
      for (std::int64_t j = 0; j < width; ++j) total[j] += block[j];
    }
    for (std::int64_t j = 0; j < width; ++j) out[j] = static_cast<T>(total[j]);
    return;
  }
  const bool is_max = op == Reduce::max;
  const T identity = (is_max ? -1 : 1) * std::numeric_limits<T>::infinity();
  const auto buffer = hwy::AllocateAligned<T>(kColumnChunk);
  T* acc = buffer.get();
  std::fill_n(acc, width, identity);
  for (std::int64_t k = 0; k < n; ++k) {
    const T* row = x + k * inner;
    std::int64_t j = 0;
    for (; j < full; j += lanes) {
      const auto v = hn::LoadU(dn, row + j);
      const auto a = hn::Load(dn, acc + j);
      const auto take = hn::Or(hn::IsNaN(v), is_max ? hn::Gt(v, a) : hn::Lt(v, a));
      hn::Store(hn::IfThenElse(take, v, a), dn, acc + j);
    }
    for (; j < width; ++j) acc[j] = is_max ? max_nan(acc[j], row[j]) : min_nan(acc[j], row[j]);
  }
  std::copy_n(acc, width, out);
}

#define SYMGRAD_EXPORTED_FOR(T, SUFFIX)                                                        \
  void ReduceBlocks##SUFFIX(Reduce op, const T* x, std::int64_t n, double* partial) {          \
    reduce_blocks(op, x, n, partial);                                                          \
  }                                                                                            \
  void ReduceRows##SUFFIX(Reduce op, const T* x, T* out, std::int64_t rows, std::int64_t n) {  \
    reduce_rows(op, x, out, rows, n);                                                          \
  }                                                                                            \
  void ReduceColumns##SUFFIX(Reduce op, const T* x, T* out, std::int64_t n, std::int64_t inner, \
                             std::int64_t c_begin, std::int64_t c_end) {                       \
    reduce_columns(op, x, out, n, inner, c_begin, c_end);                                      \
  }
SYMGRAD_EXPORTED_FOR(float, F32)
SYMGRAD_EXPORTED_FOR(double, F64)
#undef SYMGRAD_EXPORTED_FOR

}  // namespace HWY_NAMESPACE
}  // namespace symgrad::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace symgrad::kernels {
HWY_EXPORT(ReduceBlocksF32);
HWY_EXPORT(ReduceBlocksF64);
HWY_EXPORT(ReduceRowsF32);
HWY_EXPORT(ReduceRowsF64);
HWY_EXPORT(ReduceColumnsF32);
HWY_EXPORT(ReduceColumnsF64);

namespace {
constexpr std::int64_t kReduceGrain = 1 << 16;  // elements read per thread chunk
}  // namespace

void reduce(Reduce op, DType dt, const void* x, void* out, std::int64_t outer, std::int64_t n,
            std::int64_t inner) {
  if (outer <= 0 || inner <= 0) return;
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* xs = static_cast<const T*>(x);
    T* ys = static_cast<T*>(out);
    if (inner > 1) {
      for_column_items(outer, n, inner, kReduceGrain, [&](std::int64_t o, std::int64_t c0, std::int64_t c1) {
        const T* slab = xs + o * n * inner;
        if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(ReduceColumnsF32)(op, slab, ys + o * inner, n, inner, c0, c1);
        else HWY_DYNAMIC_DISPATCH(ReduceColumnsF64)(op, slab, ys + o * inner, n, inner, c0, c1);
      });
      return;
    }
    const bool few_long_rows = outer < get_num_threads() && n >= 4 * kReduceGrain;
    if (!few_long_rows) {
      split_items(outer, n, kReduceGrain, [&](std::int64_t begin, std::int64_t end) {
        if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(ReduceRowsF32)(op, xs + begin * n, ys + begin, end - begin, n);
        else HWY_DYNAMIC_DISPATCH(ReduceRowsF64)(op, xs + begin * n, ys + begin, end - begin, n);
      });
      return;
    }
    // Few long rows: split each row into fixed blocks, combined in order below, so the
    // result equals the single-threaded one (which sums the same blocks in the same tree).
    const std::int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
    std::vector<double> partial(static_cast<std::size_t>(blocks));
    for (std::int64_t o = 0; o < outer; ++o) {
      const T* row = xs + o * n;
      split_items(blocks, kSumBlock, kReduceGrain, [&](std::int64_t begin, std::int64_t end) {
        const std::int64_t first = begin * kSumBlock;
        const std::int64_t count = std::min(n, end * kSumBlock) - first;
        if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(ReduceBlocksF32)(op, row + first, count, partial.data() + begin);
        else HWY_DYNAMIC_DISPATCH(ReduceBlocksF64)(op, row + first, count, partial.data() + begin);
      });
      if (op == Reduce::sum) {
        PairwiseSum sum;
        for (double p : partial) sum.add(p);
        ys[o] = static_cast<T>(sum.total());
      } else {
        double acc = partial[0];
        for (double p : partial) acc = op == Reduce::max ? max_nan(acc, p) : min_nan(acc, p);
        ys[o] = static_cast<T>(acc);
      }
    }
  });
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
