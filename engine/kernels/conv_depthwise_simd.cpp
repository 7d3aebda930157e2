// The SIMD inner loops of the depthwise convolution (declared in conv_depthwise_simd.hpp),
// compiled once per target by Highway and picked at run time.
//
// The planes of the networks this serves are small (28 x 28 down to 7 x 7), so the
// kernels are written for short rows: the vectors of a plane are taken in a flat
// sequence, several at a time for independent sums, and a row's last, partial vector is
// stored whole when the lanes past the row fall on later rows of the same plane (which
// are written afterwards). Masked stores, slow on some x86 cores, are never used.
#include <algorithm>

#include "engine/kernels/conv_depthwise_simd.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/conv_depthwise_simd.cpp"
#include <hwy/foreach_target.h>  // re-includes this file once per SIMD target
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace symgrad::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The first n (< Lanes) elements at p and zeros above them, never reading at or past
// `end`. (MaskedLoad is no substitute: some targets implement it with an aligned load.)
template <class D, class T>
HWY_INLINE hn::Vec<D> LoadTail(D d, const T* p, std::int64_t n, const T* end) {
  if (p + hn::Lanes(d) <= end) return hn::IfThenElseZero(hn::FirstN(d, static_cast<std::size_t>(n)), hn::LoadU(d, p));
  HWY_ALIGN T lanes[HWY_MAX_BYTES / sizeof(T)] = {};
  for (std::int64_t i = 0; i < n; ++i) lanes[i] = p[i];
  return hn::Load(d, lanes);
}

// The vectors of a rows x cols block, taken row by row: the current one covers columns
// [col, col + valid) of row `row`. (Stepping, not dividing a flat index: a 64-bit
// division per vector cost more than the vector's arithmetic.)
struct VectorSlot {
  std::int64_t row = 0, col = 0, valid = 0;
};

class SlotWalk {
 public:
  SlotWalk(std::int64_t lanes, std::int64_t cols) : lanes_(lanes), cols_(cols) { slot_.valid = std::min(lanes, cols); }
  const VectorSlot& next() {
    current_ = slot_;
    slot_.col += lanes_;
    if (slot_.col >= cols_) slot_.col = 0, ++slot_.row;
    slot_.valid = std::min(lanes_, cols_ - slot_.col);
    return current_;
  }

 private:
  std::int64_t lanes_, cols_;
  VectorSlot slot_, current_;
};

// Stores the first slot.valid lanes of v into a plane of rows x cols with row stride
// `stride`. A partial vector is stored whole when the plane is contiguous and the extra
// lanes stay inside it: they land on later rows, which are stored after this one.
template <class D, class T>
HWY_INLINE void StoreSlot(D d, hn::Vec<D> v, const VectorSlot& s, std::int64_t rows, std::int64_t cols,
                          T* HWY_RESTRICT plane, std::int64_t stride) {
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  T* out = plane + s.row * stride + s.col;
  if (s.valid == lanes || (stride == cols && s.row * cols + s.col + lanes <= rows * cols)) {
    hn::StoreU(v, d, out);
    return;
  }
  HWY_ALIGN T buffer[HWY_MAX_BYTES / sizeof(T)] = {};
  hn::Store(v, d, buffer);
  for (std::int64_t i = 0; i < s.valid; ++i) out[i] = buffer[i];
}

// dst[r * dst_stride + c] = init + sum_t taps[t] * src[r * src_stride + c + offsets[t]]
// for r < rows, c < cols. src must stay readable one vector past the last element read.
// Four vectors at a time: four independent sums hide the latency of the FMA chain.
template <class T>
void CorrelatePlane(const T* HWY_RESTRICT src, std::int64_t src_stride, const std::int64_t* HWY_RESTRICT offsets,
                    const T* HWY_RESTRICT taps, std::int64_t ntaps, std::int64_t rows, std::int64_t cols, T init,
                    T* HWY_RESTRICT dst, std::int64_t dst_stride) {
  const hn::ScalableTag<T> d;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const std::int64_t per_row = (cols + lanes - 1) / lanes, count = rows * per_row;
  auto source = [&](const VectorSlot& s) { return src + s.row * src_stride + s.col; };
  SlotWalk walk(lanes, cols);
  std::int64_t k = 0;
  for (; k + 4 <= count; k += 4) {
    const VectorSlot s0 = walk.next(), s1 = walk.next(), s2 = walk.next(), s3 = walk.next();
    const T *p0 = source(s0), *p1 = source(s1), *p2 = source(s2), *p3 = source(s3);
    auto acc0 = hn::Set(d, init), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (std::int64_t t = 0; t < ntaps; ++t) {
      const auto w = hn::Set(d, taps[t]);
      const std::int64_t o = offsets[t];
      acc0 = hn::MulAdd(w, hn::LoadU(d, p0 + o), acc0);
      acc1 = hn::MulAdd(w, hn::LoadU(d, p1 + o), acc1);
      acc2 = hn::MulAdd(w, hn::LoadU(d, p2 + o), acc2);
      acc3 = hn::MulAdd(w, hn::LoadU(d, p3 + o), acc3);
    }
    StoreSlot(d, acc0, s0, rows, cols, dst, dst_stride);
    StoreSlot(d, acc1, s1, rows, cols, dst, dst_stride);
    StoreSlot(d, acc2, s2, rows, cols, dst, dst_stride);
    StoreSlot(d, acc3, s3, rows, cols, dst, dst_stride);
  }
  for (; k < count; ++k) {
    const VectorSlot s = walk.next();
    const T* p = source(s);
    auto acc = hn::Set(d, init);
    for (std::int64_t t = 0; t < ntaps; ++t) acc = hn::MulAdd(hn::Set(d, taps[t]), hn::LoadU(d, p + offsets[t]), acc);
    StoreSlot(d, acc, s, rows, cols, dst, dst_stride);
  }
}

// CorrelatePlane for two output planes from the same source (a channel multiplier of
// 2): each loaded vector feeds both, so the loads are shared.
template <class T>
void CorrelatePlanePair(const T* HWY_RESTRICT src, std::int64_t src_stride, const std::int64_t* HWY_RESTRICT offsets,
                        const T* HWY_RESTRICT taps0, const T* HWY_RESTRICT taps1, std::int64_t ntaps,
                        std::int64_t rows, std::int64_t cols, T init0, T init1, T* HWY_RESTRICT dst0,
                        T* HWY_RESTRICT dst1, std::int64_t dst_stride) {
  const hn::ScalableTag<T> d;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const std::int64_t per_row = (cols + lanes - 1) / lanes, count = rows * per_row;
  auto source = [&](const VectorSlot& s) { return src + s.row * src_stride + s.col; };
  SlotWalk walk(lanes, cols);
  std::int64_t k = 0;
  for (; k + 2 <= count; k += 2) {
    const VectorSlot s0 = walk.next(), s1 = walk.next();
    const T *p0 = source(s0), *p1 = source(s1);
    auto a00 = hn::Set(d, init0), a01 = a00, a10 = hn::Set(d, init1), a11 = a10;
    for (std::int64_t t = 0; t < ntaps; ++t) {
      const auto w0 = hn::Set(d, taps0[t]), w1 = hn::Set(d, taps1[t]);
      const auto v0 = hn::LoadU(d, p0 + offsets[t]), v1 = hn::LoadU(d, p1 + offsets[t]);
      a00 = hn::MulAdd(w0, v0, a00);
      a01 = hn::MulAdd(w0, v1, a01);
      a10 = hn::MulAdd(w1, v0, a10);
      a11 = hn::MulAdd(w1, v1, a11);
    }
    StoreSlot(d, a00, s0, rows, cols, dst0, dst_stride);
    StoreSlot(d, a01, s1, rows, cols, dst0, dst_stride);
    StoreSlot(d, a10, s0, rows, cols, dst1, dst_stride);
    StoreSlot(d, a11, s1, rows, cols, dst1, dst_stride);
  }
  if (k < count) {
    const VectorSlot s = walk.next();
    const T* p = source(s);
    auto a0 = hn::Set(d, init0), a1 = hn::Set(d, init1);
    for (std::int64_t t = 0; t < ntaps; ++t) {
      const auto v = hn::LoadU(d, p + offsets[t]);
      a0 = hn::MulAdd(hn::Set(d, taps0[t]), v, a0);
      a1 = hn::MulAdd(hn::Set(d, taps1[t]), v, a1);
    }
    StoreSlot(d, a0, s, rows, cols, dst0, dst_stride);
    StoreSlot(d, a1, s, rows, cols, dst1, dst_stride);
  }
}

// Calls body(g_at, src_at, valid) for every vector of every row of the stack: `valid`
// columns from g_at and src_at (the last vector of a row may be partial).
template <class T, class Body>
HWY_INLINE void ForEachRowVector(const PlaneStack& s, std::int64_t lanes, const T* src, const T* g, const Body& body) {
  for (std::int64_t k = 0; k < s.planes; ++k)
    for (std::int64_t r = 0; r < s.rows; ++r) {
      const T* g_row = g + k * s.g_plane + r * s.g_stride;
      const T* src_row = src + k * s.src_plane + r * s.src_stride;
      std::int64_t c = 0;
      for (; c + lanes <= s.cols; c += lanes) body(g_row + c, src_row + c, lanes);
      if (c < s.cols) body(g_row + c, src_row + c, s.cols - c);
    }
}

// sums[t] += sum over the stack's planes k, rows r < rows and columns c < cols of
// g[k, r, c] * src[k, r, c + offsets[t]] (src addressed as above, plus offsets[t]).
// src must stay readable one vector past the last element read. Partial vectors are
// zeroed on both operands, so nothing outside the planes enters a sum (not even 0 * inf).
// Each sum runs in its own vector register across the whole stack and is added to the
// double `sums` once: nine registers for a 3x3 kernel, else three taps per pass.
template <class T>
void TapDotsStack(const T* HWY_RESTRICT src, const std::int64_t* HWY_RESTRICT offsets, std::int64_t ntaps,
                  const T* HWY_RESTRICT g, const PlaneStack& s, double* HWY_RESTRICT sums) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  if (s.planes == 0 || s.rows == 0 || s.cols == 0) return;
  const T* g_end = g + (s.planes - 1) * s.g_plane + (s.rows - 1) * s.g_stride + s.cols;
  auto total = [&](V acc) { return static_cast<double>(hn::GetLane(hn::SumOfLanes(d, acc))); };
  // The g vector and a loader of the src vectors, partial ones zeroed above `valid`.
  auto operands = [&](const T* g_at, std::int64_t valid, auto&& with) {
    if (valid == lanes) return with(hn::LoadU(d, g_at), [&](const T* p) { return hn::LoadU(d, p); });
    const auto keep = hn::FirstN(d, static_cast<std::size_t>(valid));
    return with(LoadTail(d, g_at, valid, g_end),
                [&](const T* p) { return hn::IfThenElseZero(keep, hn::LoadU(d, p)); });
  };
  if (ntaps == 9) {
    V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0;
    const std::int64_t o0 = offsets[0], o1 = offsets[1], o2 = offsets[2], o3 = offsets[3], o4 = offsets[4];
    const std::int64_t o5 = offsets[5], o6 = offsets[6], o7 = offsets[7], o8 = offsets[8];
    ForEachRowVector(s, lanes, src, g, [&](const T* g_at, const T* p, std::int64_t valid) {
      operands(g_at, valid, [&](V gv, auto load) {
        a0 = hn::MulAdd(gv, load(p + o0), a0);
        a1 = hn::MulAdd(gv, load(p + o1), a1);
        a2 = hn::MulAdd(gv, load(p + o2), a2);
        a3 = hn::MulAdd(gv, load(p + o3), a3);
        a4 = hn::MulAdd(gv, load(p + o4), a4);
        a5 = hn::MulAdd(gv, load(p + o5), a5);
        a6 = hn::MulAdd(gv, load(p + o6), a6);
        a7 = hn::MulAdd(gv, load(p + o7), a7);
        a8 = hn::MulAdd(gv, load(p + o8), a8);
      });
    });
    // (No array of vectors: sizeless SIMD types, as on SVE, cannot form one.)
    sums[0] += total(a0), sums[1] += total(a1), sums[2] += total(a2);
    sums[3] += total(a3), sums[4] += total(a4), sums[5] += total(a5);
    sums[6] += total(a6), sums[7] += total(a7), sums[8] += total(a8);
    return;
  }
  for (std::int64_t t = 0; t < ntaps; t += 3) {
    // Taps past the last repeat it; their sums are dropped.
    const std::int64_t o0 = offsets[t], o1 = offsets[std::min(t + 1, ntaps - 1)];
    const std::int64_t o2 = offsets[std::min(t + 2, ntaps - 1)];
    V a0 = hn::Zero(d), a1 = a0, a2 = a0;
    ForEachRowVector(s, lanes, src, g, [&](const T* g_at, const T* p, std::int64_t valid) {
      operands(g_at, valid, [&](V gv, auto load) {
        a0 = hn::MulAdd(gv, load(p + o0), a0);
        a1 = hn::MulAdd(gv, load(p + o1), a1);
        a2 = hn::MulAdd(gv, load(p + o2), a2);
      });
    });
    sums[t] += total(a0);
    if (t + 1 < ntaps) sums[t + 1] += total(a1);
    if (t + 2 < ntaps) sums[t + 2] += total(a2);
  }
}

// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols. dst is private
// scratch whose row ends (and the slack after its last row) hold zeros: a row's last
// vector is loaded with zeros above its tail and stored whole, so it writes zeros there,
// or onto the next row, which is copied afterwards.
template <class T>
void CopyRows(const T* HWY_RESTRICT src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols,
              T* HWY_RESTRICT dst, std::int64_t dst_stride) {
  const hn::ScalableTag<T> d;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const std::int64_t full = cols - cols % lanes;
  const T* src_end = src + (rows - 1) * src_stride + cols;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* in = src + r * src_stride;
    T* out = dst + r * dst_stride;
    for (std::int64_t c = 0; c < full; c += lanes) hn::StoreU(hn::LoadU(d, in + c), d, out + c);
    if (full < cols) hn::StoreU(LoadTail(d, in + full, cols - full, src_end), d, out + full);
  }
}

// Column stride 2: copies rows x cols of src into a phased scratch plane (the layout of
// conv_depthwise.cpp) whose row r starts at dst + r * dst_stride: source column j goes to
// padded column j + left, that is to phase (j + left) % 2 at index (j + left) / 2.
template <class T>
void SplitRowsInTwoPhases(const T* HWY_RESTRICT src, std::int64_t rows, std::int64_t cols, std::int64_t left,
                          std::int64_t phase_length, T* HWY_RESTRICT dst, std::int64_t dst_stride) {
  const hn::ScalableTag<T> d;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  // Even source columns 2k land at index k + left / 2 of phase left % 2; odd ones at
  // index k + (left + 1) / 2 of the other phase.
  const std::int64_t even_at = (left % 2) * phase_length + left / 2;
  const std::int64_t odd_at = ((left + 1) % 2) * phase_length + (left + 1) / 2;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* in = src + r * cols;
    T* out = dst + r * dst_stride;
    std::int64_t k = 0;
    for (; 2 * (k + lanes) <= cols; k += lanes) {
      hn::Vec<decltype(d)> even, odd;
      hn::LoadInterleaved2(d, in + 2 * k, even, odd);
      hn::StoreU(even, d, out + even_at + k);
      hn::StoreU(odd, d, out + odd_at + k);
    }
    for (; 2 * k < cols; ++k) {
      out[even_at + k] = in[2 * k];
      if (2 * k + 1 < cols) out[odd_at + k] = in[2 * k + 1];
    }
  }
}

// Non-template entry points, one per dtype, for HWY_EXPORT.
void CorrelatePlaneF32(const float* src, std::int64_t src_stride, const std::int64_t* offsets, const float* taps,
                       std::int64_t ntaps, std::int64_t rows, std::int64_t cols, float init, float* dst,
                       std::int64_t dst_stride) {
  CorrelatePlane(src, src_stride, offsets, taps, ntaps, rows, cols, init, dst, dst_stride);
}
void CorrelatePlaneF64(const double* src, std::int64_t src_stride, const std::int64_t* offsets, const double* taps,
                       std::int64_t ntaps, std::int64_t rows, std::int64_t cols, double init, double* dst,
                       std::int64_t dst_stride) {
  CorrelatePlane(src, src_stride, offsets, taps, ntaps, rows, cols, init, dst, dst_stride);
}
void CorrelatePlanePairF32(const float* src, std::int64_t src_stride, const std::int64_t* offsets, const float* taps0,
                           const float* taps1, std::int64_t ntaps, std::int64_t rows, std::int64_t cols, float init0,
                           float init1, float* dst0, float* dst1, std::int64_t dst_stride) {
  CorrelatePlanePair(src, src_stride, offsets, taps0, taps1, ntaps, rows, cols, init0, init1, dst0, dst1,
                     dst_stride);
}
void CorrelatePlanePairF64(const double* src, std::int64_t src_stride, const std::int64_t* offsets,
                           const double* taps0, const double* taps1, std::int64_t ntaps, std::int64_t rows,
                           std::int64_t cols, double init0, double init1, double* dst0, double* dst1,
                           std::int64_t dst_stride) {
  CorrelatePlanePair(src, src_stride, offsets, taps0, taps1, ntaps, rows, cols, init0, init1, dst0, dst1,
                     dst_stride);
}
void TapDotsStackF32(const float* src, const std::int64_t* offsets, std::int64_t ntaps, const float* g,
                     const PlaneStack& s, double* sums) {
  TapDotsStack(src, offsets, ntaps, g, s, sums);
}
void TapDotsStackF64(const double* src, const std::int64_t* offsets, std::int64_t ntaps, const double* g,
                     const PlaneStack& s, double* sums) {
  TapDotsStack(src, offsets, ntaps, g, s, sums);
}
void CopyRowsF32(const float* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, float* dst,
                 std::int64_t dst_stride) {
  CopyRows(src, src_stride, rows, cols, dst, dst_stride);
}
void CopyRowsF64(const double* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, double* dst,
                 std::int64_t dst_stride) {
  CopyRows(src, src_stride, rows, cols, dst, dst_stride);
}

void SplitRowsInTwoPhasesF32(const float* src, std::int64_t rows, std::int64_t cols, std::int64_t left,
                             std::int64_t phase_length, float* dst, std::int64_t dst_stride) {
  SplitRowsInTwoPhases(src, rows, cols, left, phase_length, dst, dst_stride);
}
void SplitRowsInTwoPhasesF64(const double* src, std::int64_t rows, std::int64_t cols, std::int64_t left,
                             std::int64_t phase_length, double* dst, std::int64_t dst_stride) {
  SplitRowsInTwoPhases(src, rows, cols, left, phase_length, dst, dst_stride);
}

}  // namespace symgrad::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace symgrad::kernels {

HWY_EXPORT(CorrelatePlaneF32);
HWY_EXPORT(CorrelatePlaneF64);
HWY_EXPORT(CorrelatePlanePairF32);
HWY_EXPORT(CorrelatePlanePairF64);
HWY_EXPORT(TapDotsStackF32);
HWY_EXPORT(TapDotsStackF64);
HWY_EXPORT(CopyRowsF32);
HWY_EXPORT(CopyRowsF64);
HWY_EXPORT(SplitRowsInTwoPhasesF32);
HWY_EXPORT(SplitRowsInTwoPhasesF64);

void correlate_plane(const float* src, std::int64_t src_stride, const std::int64_t* offsets, const float* taps,
                     std::int64_t ntaps, std::int64_t rows, std::int64_t cols, float init, float* dst,
                     std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(CorrelatePlaneF32)(src, src_stride, offsets, taps, ntaps, rows, cols, init, dst, dst_stride);
}
void correlate_plane(const double* src, std::int64_t src_stride, const std::int64_t* offsets, const double* taps,
                     std::int64_t ntaps, std::int64_t rows, std::int64_t cols, double init, double* dst,
                     std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(CorrelatePlaneF64)(src, src_stride, offsets, taps, ntaps, rows, cols, init, dst, dst_stride);
}
void correlate_plane_pair(const float* src, std::int64_t src_stride, const std::int64_t* offsets, const float* taps0,
                          const float* taps1, std::int64_t ntaps, std::int64_t rows, std::int64_t cols, float init0,
                          float init1, float* dst0, float* dst1, std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(CorrelatePlanePairF32)(src, src_stride, offsets, taps0, taps1, ntaps, rows, cols, init0, init1,
                                              dst0, dst1, dst_stride);
}
void correlate_plane_pair(const double* src, std::int64_t src_stride, const std::int64_t* offsets, const double* taps0,
                          const double* taps1, std::int64_t ntaps, std::int64_t rows, std::int64_t cols, double init0,
                          double init1, double* dst0, double* dst1, std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(CorrelatePlanePairF64)(src, src_stride, offsets, taps0, taps1, ntaps, rows, cols, init0, init1,
                                              dst0, dst1, dst_stride);
}
void tap_dots_stack(const float* src, const std::int64_t* offsets, std::int64_t ntaps, const float* g,
                    const PlaneStack& s, double* sums) {
  HWY_DYNAMIC_DISPATCH(TapDotsStackF32)(src, offsets, ntaps, g, s, sums);
}
void tap_dots_stack(const double* src, const std::int64_t* offsets, std::int64_t ntaps, const double* g,
                    const PlaneStack& s, double* sums) {
  HWY_DYNAMIC_DISPATCH(TapDotsStackF64)(src, offsets, ntaps, g, s, sums);
}
void copy_rows(const float* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, float* dst,
               std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(CopyRowsF32)(src, src_stride, rows, cols, dst, dst_stride);
}
void copy_rows(const double* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, double* dst,
               std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(CopyRowsF64)(src, src_stride, rows, cols, dst, dst_stride);
}

void split_rows_in_two_phases(const float* src, std::int64_t rows, std::int64_t cols, std::int64_t left,
                              std::int64_t phase_length, float* dst, std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(SplitRowsInTwoPhasesF32)(src, rows, cols, left, phase_length, dst, dst_stride);
}
void split_rows_in_two_phases(const double* src, std::int64_t rows, std::int64_t cols, std::int64_t left,
                              std::int64_t phase_length, double* dst, std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(SplitRowsInTwoPhasesF64)(src, rows, cols, left, phase_length, dst, dst_stride);
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
