// The kernels that walk broadcast strides: binary, where and copy_strided.
//
// Each call first builds a StridedPlan: size-1 dimensions are dropped and
// neighbouring dimensions that are contiguous for every operand are merged, so
// "same shape" becomes one flat run and [N, C, H, W] + [1, C, 1, 1] becomes runs of
// H * W against a scalar. The output is then visited as runs along the innermost
// merged dimension; binary and where compute each run with Highway SIMD (one loop
// for contiguous operands, one for a contiguous operand against a scalar, and a
// general loop for anything else), copy_strided with memcpy when the run is
// contiguous and in cache-sized tiles when it is a transpose. The output range is split over the thread pool; every element is
// computed the same way whatever the split, so results do not depend on it.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/binary_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/cache_control.h"
#include "engine/kernels/simd_common-inl.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/kernels/elementwise.hpp"
#include "engine/kernels/threads.hpp"

#ifndef SYMGRAD_KERNELS_BINARY_SIMD_PLAN
#define SYMGRAD_KERNELS_BINARY_SIMD_PLAN
namespace symgrad::kernels {

// A broadcast walk over K input operands and a contiguous output, with dimension 0
// the innermost (after merging). Fixed-size arrays: building a plan allocates nothing.
// Only the first `rank` entries are ever written or read: the arrays are left
// uninitialised because zeroing them cost more than a tiny op's arithmetic.
template <int K>
struct StridedPlan {
  static constexpr int kMaxRank = 16;
  int rank = 0;
  std::int64_t numel = 0;
  std::int64_t shape[kMaxRank];
  std::int64_t strides[K][kMaxRank];
};

// Returns false when more than kMaxRank dimensions remain after merging (the caller
// then uses the reference loop).
template <int K>
bool make_plan(const Shape& shape, const Shape* const (&strides)[K], StridedPlan<K>& plan) {
  plan.rank = 0;
  plan.numel = shape_numel(shape);
  for (std::size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1) continue;  // its stride never matters
    const int inner = plan.rank - 1;
    bool mergeable = inner >= 0;
    for (int k = 0; k < K && mergeable; ++k)
      mergeable = (*strides[k])[d] == plan.strides[k][inner] * plan.shape[inner];
    if (mergeable) {
      plan.shape[inner] *= shape[d];
      continue;
    }
    if (plan.rank == StridedPlan<K>::kMaxRank) return false;
    plan.shape[plan.rank] = shape[d];
    for (int k = 0; k < K; ++k) plan.strides[k][plan.rank] = (*strides[k])[d];
    ++plan.rank;
  }
  if (plan.rank == 0) {  // a single element
    plan.rank = 1;
    plan.shape[0] = 1;
    for (int k = 0; k < K; ++k) plan.strides[k][0] = 0;
  }
  return true;
}

// Calls run(offsets, out_index, length) for each run of the innermost dimension
// that overlaps the output range [begin, end); offsets[k] is operand k's element
// offset at the run's first element.
template <int K, class Run>
void for_each_run(const StridedPlan<K>& plan, std::int64_t begin, std::int64_t end, Run&& run) {
  if (begin >= end) return;  // also keeps an empty shape's zero extent out of the division
  const std::int64_t inner = plan.shape[0];
  std::int64_t index[StridedPlan<K>::kMaxRank];  // index[d] for 1 <= d < rank
  std::int64_t offsets[K] = {};
  std::int64_t row = begin / inner;
  std::int64_t col = begin % inner;
  for (int d = 1; d < plan.rank; ++d) {
    index[d] = row % plan.shape[d];
    row /= plan.shape[d];
    for (int k = 0; k < K; ++k) offsets[k] += index[d] * plan.strides[k][d];
  }
  for (int k = 0; k < K; ++k) offsets[k] += col * plan.strides[k][0];
  std::int64_t pos = begin;
  while (pos < end) {
    const std::int64_t length = std::min(inner - col, end - pos);
    run(offsets, pos, length);
    pos += length;
    if (pos >= end) break;
    for (int k = 0; k < K; ++k) offsets[k] -= col * plan.strides[k][0];
    col = 0;
    for (int d = 1; d < plan.rank; ++d) {  // odometer step to the next row
      for (int k = 0; k < K; ++k) offsets[k] += plan.strides[k][d];
      if (++index[d] < plan.shape[d]) break;
      for (int k = 0; k < K; ++k) offsets[k] -= plan.strides[k][d] * plan.shape[d];
      index[d] = 0;
    }
  }
}

}  // namespace symgrad::kernels
#endif  // SYMGRAD_KERNELS_BINARY_SIMD_PLAN

HWY_BEFORE_NAMESPACE();
namespace symgrad::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Operand readers for one run. Contiguous and Splat are the fast cases; Strided
// handles any stride (including 0 and 1) at a per-vector branch.
template <class D>
struct Contiguous {
  const hn::TFromD<D>* p;
  hn::Vec<D> vec(D d, std::size_t i) const { return hn::LoadU(d, p + i); }
  hn::TFromD<D> at(std::size_t i) const { return p[i]; }
};
template <class D>
struct Splat {
  hn::TFromD<D> value;
  hn::Vec<D> vec(D d, std::size_t) const { return hn::Set(d, value); }
  hn::TFromD<D> at(std::size_t) const { return value; }
};
template <class D>
struct Strided {
  const hn::TFromD<D>* p;
  std::int64_t stride;
  hn::Vec<D> vec(D d, std::size_t i) const {
    if (stride == 1) return hn::LoadU(d, p + i);
    if (stride == 0) return hn::Set(d, *p);
    HWY_ALIGN hn::TFromD<D> lanes[hn::MaxLanes(d)];
    for (std::size_t j = 0; j < hn::Lanes(d); ++j) lanes[j] = at(i + j);
    return hn::Load(d, lanes);
  }
  hn::TFromD<D> at(std::size_t i) const { return p[static_cast<std::int64_t>(i) * stride]; }
};

// out[i] = f(inputs[i]...) for i in [first, first + count), count < Lanes, through
// padded buffers so that a partial vector uses the same vector formula.
template <class D, class F, class... In>
void zip_partial(D d, hn::TFromD<D>* out, std::size_t first, std::size_t count, const F& f,
                 const In&... in) {
  using T = hn::TFromD<D>;
  auto padded = [&](const auto& operand) {
    HWY_ALIGN T lanes[hn::MaxLanes(d)] = {};
    for (std::size_t j = 0; j < count; ++j) lanes[j] = operand.at(first + j);
    return hn::Load(d, lanes);
  };
  HWY_ALIGN T result[hn::MaxLanes(d)];
  hn::Store(f(padded(in)...), d, result);
  std::memcpy(out + first, result, count * sizeof(T));
}

// out[i] = f(inputs[i]...) for i < n. With `stream`, full vectors are written with
// non-temporal stores after a partial vector that aligns out (see unary_simd.cpp's map).
template <class D, class F, class... In>
void zip(D d, hn::TFromD<D>* HWY_RESTRICT out, std::size_t n, bool stream, const F& f,
         const In&... in) {
  using T = hn::TFromD<D>;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  const auto address = reinterpret_cast<std::uintptr_t>(out);
  if (stream && n >= 4 * lanes && address % sizeof(T) == 0) {
    const std::size_t misalignment = address % (lanes * sizeof(T)) / sizeof(T);
    if (misalignment != 0) {
      i = lanes - misalignment;
      zip_partial(d, out, 0, i, f, in...);
    }
    for (; i + lanes <= n; i += lanes) hn::Stream(f(in.vec(d, i)...), d, out + i);
    hwy::FlushStream();
  }
  for (; i + lanes <= n; i += lanes) hn::StoreU(f(in.vec(d, i)...), d, out + i);
  if (i < n) zip_partial(d, out, i, n - i, f, in...);
}

// Calls body(f) with the vector formula of `op`, so each formula is written once.
template <class D, class Body>
void with_binary_formula(D d, Binary op, const Body& body) {
  using T = hn::TFromD<D>;
  using V = hn::Vec<D>;
  const V one = hn::Set(d, T(1));
  switch (op) {
    case Binary::add: return body([](V a, V b) { return hn::Add(a, b); });
    case Binary::sub: return body([](V a, V b) { return hn::Sub(a, b); });
    case Binary::mul: return body([](V a, V b) { return hn::Mul(a, b); });
    case Binary::div: return body([](V a, V b) { return hn::Div(a, b); });
    case Binary::pow:  // no vector pow accurate enough: std::pow lane by lane
      return body([d](V a, V b) {
        HWY_ALIGN T base[hn::MaxLanes(d)];
        HWY_ALIGN T exponent[hn::MaxLanes(d)];
        hn::Store(a, d, base);
        hn::Store(b, d, exponent);
        for (std::size_t j = 0; j < hn::Lanes(d); ++j) base[j] = std::pow(base[j], exponent[j]);
        return hn::Load(d, base);
      });
    // NaN propagates from either side, as in the reference (x86 max/min do not).
    case Binary::maximum:
      return body([](V a, V b) { return hn::IfThenElse(hn::Or(hn::IsNaN(a), hn::Gt(a, b)), a, b); });
    case Binary::minimum:
      return body([](V a, V b) { return hn::IfThenElse(hn::Or(hn::IsNaN(a), hn::Lt(a, b)), a, b); });
    // Ne is "not Eq" so that NaN != NaN is 1, as in C++ (Highway's Ne is ordered).
    case Binary::eq: return body([one](V a, V b) { return hn::IfThenElseZero(hn::Eq(a, b), one); });
    case Binary::ne: return body([one](V a, V b) { return hn::IfThenZeroElse(hn::Eq(a, b), one); });
    case Binary::lt: return body([one](V a, V b) { return hn::IfThenElseZero(hn::Lt(a, b), one); });
    case Binary::le: return body([one](V a, V b) { return hn::IfThenElseZero(hn::Le(a, b), one); });
    case Binary::gt: return body([one](V a, V b) { return hn::IfThenElseZero(hn::Gt(a, b), one); });
    case Binary::ge: return body([one](V a, V b) { return hn::IfThenElseZero(hn::Ge(a, b), one); });
  }
}

template <class T>
void binary_range(Binary op, const StridedPlan<2>& plan, const T* a, const T* b, T* out,
                  std::int64_t begin, std::int64_t end, bool stream) {
  const hn::ScalableTag<T> d;
  using D = decltype(d);
  with_binary_formula(d, op, [&](const auto& f) {
    for_each_run(plan, begin, end, [&](const std::int64_t* offsets, std::int64_t at, std::int64_t n) {
      const T* pa = a + offsets[0];
      const T* pb = b + offsets[1];
      const std::int64_t sa = plan.strides[0][0];
      const std::int64_t sb = plan.strides[1][0];
      const auto count = static_cast<std::size_t>(n);
      if (sa == 1 && sb == 1) zip(d, out + at, count, stream, f, Contiguous<D>{pa}, Contiguous<D>{pb});
      else if (sa == 1 && sb == 0) zip(d, out + at, count, stream, f, Contiguous<D>{pa}, Splat<D>{*pb});
      else if (sa == 0 && sb == 1) zip(d, out + at, count, stream, f, Splat<D>{*pa}, Contiguous<D>{pb});
      else zip(d, out + at, count, stream, f, Strided<D>{pa, sa}, Strided<D>{pb, sb});
    });
  });
}

template <class T>
void where_range(const StridedPlan<3>& plan, const T* cond, const T* a, const T* b, T* out,
                 std::int64_t begin, std::int64_t end, bool stream) {
  const hn::ScalableTag<T> d;
  using D = decltype(d);
  using V = hn::Vec<D>;
  const V zero = hn::Zero(d);
  // cond != 0 as "not (cond == 0)", so a NaN condition picks a, as in C++.
  const auto pick = [zero](V c, V x, V y) { return hn::IfThenElse(hn::Eq(c, zero), y, x); };
  for_each_run(plan, begin, end, [&](const std::int64_t* offsets, std::int64_t at, std::int64_t n) {
    const Strided<D> c{cond + offsets[0], plan.strides[0][0]};
    const Strided<D> x{a + offsets[1], plan.strides[1][0]};
    const Strided<D> y{b + offsets[2], plan.strides[2][0]};
    const auto count = static_cast<std::size_t>(n);
    if (c.stride == 1 && x.stride == 1 && y.stride == 1)
      zip(d, out + at, count, stream, pick, Contiguous<D>{c.p}, Contiguous<D>{x.p}, Contiguous<D>{y.p});
    else
      zip(d, out + at, count, stream, pick, c, x, y);
  });
}

void BinaryF32(Binary op, const StridedPlan<2>& plan, const float* a, const float* b, float* out,
               std::int64_t begin, std::int64_t end, bool stream) {
  binary_range(op, plan, a, b, out, begin, end, stream);
}
void BinaryF64(Binary op, const StridedPlan<2>& plan, const double* a, const double* b,
               double* out, std::int64_t begin, std::int64_t end, bool stream) {
  binary_range(op, plan, a, b, out, begin, end, stream);
}
void WhereF32(const StridedPlan<3>& plan, const float* cond, const float* a, const float* b,
              float* out, std::int64_t begin, std::int64_t end, bool stream) {
  where_range(plan, cond, a, b, out, begin, end, stream);
}
void WhereF64(const StridedPlan<3>& plan, const double* cond, const double* a, const double* b,
              double* out, std::int64_t begin, std::int64_t end, bool stream) {
  where_range(plan, cond, a, b, out, begin, end, stream);
}

}  // namespace HWY_NAMESPACE
}  // namespace symgrad::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace symgrad::kernels {
HWY_EXPORT(BinaryF32);
HWY_EXPORT(BinaryF64);
HWY_EXPORT(WhereF32);
HWY_EXPORT(WhereF64);

namespace {
// Output elements per thread chunk; smaller outputs run on the calling thread with
// no pool wake-up (which costs microseconds, more than a cheap op on 100K elements).
constexpr std::int64_t kCheapGrain = 1 << 16;
constexpr std::int64_t kPowGrain = 1 << 11;

template <class Run>
void split_over_pool(std::int64_t n, std::int64_t grain, const Run& run) {
  if (n < 2 * grain) run(0, n);  // the tiny-tensor path: no std::function, no pool
  else parallel_for(n, grain, run);
}
}  // namespace

void binary(Binary op, DType dt, const void* a, const Shape& a_strides, const void* b,
            const Shape& b_strides, void* out, const Shape& out_shape) {
  StridedPlan<2> plan;
  const Shape* strides[2] = {&a_strides, &b_strides};
  if (!make_plan(out_shape, strides, plan)) {
    binary_reference(op, dt, a, a_strides, b, b_strides, out, out_shape);
    return;
  }
  const std::int64_t grain = op == Binary::pow ? kPowGrain : kCheapGrain;
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    const bool stream = static_cast<std::size_t>(plan.numel) * sizeof(T) >= kStreamBytes;
    split_over_pool(plan.numel, grain, [&](std::int64_t begin, std::int64_t end) {
      if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(BinaryF32)(op, plan, pa, pb, po, begin, end, stream);
      else HWY_DYNAMIC_DISPATCH(BinaryF64)(op, plan, pa, pb, po, begin, end, stream);
    });
  });
}

void where(DType dt, const void* cond, const Shape& cond_strides, const void* a,
           const Shape& a_strides, const void* b, const Shape& b_strides, void* out,
           const Shape& out_shape) {
  StridedPlan<3> plan;
  const Shape* strides[3] = {&cond_strides, &a_strides, &b_strides};
  if (!make_plan(out_shape, strides, plan)) {
    where_reference(dt, cond, cond_strides, a, a_strides, b, b_strides, out, out_shape);
    return;
  }
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* pc = static_cast<const T*>(cond);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    const bool stream = static_cast<std::size_t>(plan.numel) * sizeof(T) >= kStreamBytes;
    split_over_pool(plan.numel, kCheapGrain, [&](std::int64_t begin, std::int64_t end) {
      if constexpr (sizeof(T) == 4) HWY_DYNAMIC_DISPATCH(WhereF32)(plan, pc, pa, pb, po, begin, end, stream);
      else HWY_DYNAMIC_DISPATCH(WhereF64)(plan, pc, pa, pb, po, begin, end, stream);
    });
  });
}

namespace {
// Transpose-like views (the innermost output dimension strided in the source) are
// copied in kTile x kTile tiles of the two innermost dimensions, so that the
// strided reads of a tile share cache lines instead of touching a new line per element.
constexpr std::int64_t kTile = 32;

template <class T>
void copy_in_tiles(const StridedPlan<1>& plan, const T* from, T* to) {
  const std::int64_t cols = plan.shape[0], rows = plan.shape[1];
  const std::int64_t col_stride = plan.strides[0][0], row_stride = plan.strides[0][1];
  const std::int64_t strips_per_matrix = (rows + kTile - 1) / kTile;
  const std::int64_t matrices = plan.numel / (rows * cols);
  split_over_pool(matrices * strips_per_matrix, std::max<std::int64_t>(1, kCheapGrain / (kTile * cols)),
                  [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t item = begin; item < end; ++item) {
      std::int64_t matrix = item / strips_per_matrix, base = 0;
      for (int d = 2; d < plan.rank; ++d) {  // the matrix's offset in the source
        base += (matrix % plan.shape[d]) * plan.strides[0][d];
        matrix /= plan.shape[d];
      }
      const std::int64_t r0 = (item % strips_per_matrix) * kTile;
      const std::int64_t r1 = std::min(rows, r0 + kTile);
      T* out = to + (item / strips_per_matrix) * rows * cols;
      for (std::int64_t c0 = 0; c0 < cols; c0 += kTile)
        for (std::int64_t r = r0; r < r1; ++r) {
          const T* src_row = from + base + r * row_stride;
          for (std::int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) out[r * cols + c] = src_row[c * col_stride];
        }
    }
  });
}
}  // namespace

void copy_strided(DType dt, const void* src, std::int64_t src_offset, const Shape& src_strides,
                  void* dst, const Shape& shape) {
  StridedPlan<1> plan;
  const Shape* strides[1] = {&src_strides};
  if (!make_plan(shape, strides, plan)) {
    copy_strided_reference(dt, src, src_offset, src_strides, dst, shape);
    return;
  }
  if (plan.numel == 0) return;
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* from = static_cast<const T*>(src) + src_offset;
    T* to = static_cast<T*>(dst);
    const std::int64_t stride = plan.strides[0][0];
    if (stride != 0 && stride != 1 && plan.rank >= 2) return copy_in_tiles(plan, from, to);
    split_over_pool(plan.numel, kCheapGrain, [&](std::int64_t begin, std::int64_t end) {
      for_each_run(plan, begin, end, [&](const std::int64_t* offsets, std::int64_t at, std::int64_t n) {
        const T* row = from + offsets[0];
        if (stride == 1) std::memcpy(to + at, row, static_cast<std::size_t>(n) * sizeof(T));
        else if (stride == 0) std::fill_n(to + at, n, *row);
        else
          for (std::int64_t i = 0; i < n; ++i) to[at + i] = row[i * stride];
      });
    });
  });
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
