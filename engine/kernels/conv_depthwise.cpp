// Direct depthwise convolution (every output channel reads one input channel) and its
// two adjoints, SIMD across the output width with Highway's dynamic dispatch.
//
// Each image plane is first copied into a zero-bordered scratch plane, so the inner loops
// have no bounds checks: an output row is a sum of shifted input rows, one per tap. The
// input gradient is the same correlation again, with the taps flipped, applied to the
// output gradient spread onto the input grid (zeros between samples when strided).
#include <algorithm>
#include <vector>

#include "engine/kernels/conv.hpp"
#include "engine/kernels/threads.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/conv_depthwise.cpp"
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

// dst[r * dst_stride + c] = init + sum_t taps[t] * src[r * src_stride + c + offsets[t]]
// for r < rows, c < cols. src must stay readable one vector past the last element read;
// dst's rows are one plane owned by the caller's thread.
template <class T>
void CorrelatePlane(const T* HWY_RESTRICT src, std::int64_t src_stride, const std::int64_t* HWY_RESTRICT offsets,
                    const T* HWY_RESTRICT taps, std::int64_t ntaps, std::int64_t rows, std::int64_t cols, T init,
                    T* HWY_RESTRICT dst, std::int64_t dst_stride) {
  const hn::ScalableTag<T> d;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* row = src + r * src_stride;
    T* out = dst + r * dst_stride;
    std::int64_t c = 0;
    for (; c + 2 * lanes <= cols; c += 2 * lanes) {  // two independent sums hide FMA latency
      auto acc0 = hn::Set(d, init), acc1 = hn::Set(d, init);
      for (std::int64_t t = 0; t < ntaps; ++t) {
        const auto w = hn::Set(d, taps[t]);
        const T* p = row + c + offsets[t];
        acc0 = hn::MulAdd(w, hn::LoadU(d, p), acc0);
        acc1 = hn::MulAdd(w, hn::LoadU(d, p + lanes), acc1);
      }
      hn::StoreU(acc0, d, out + c);
      hn::StoreU(acc1, d, out + c + lanes);
    }
    for (; c < cols; c += lanes) {
      auto acc = hn::Set(d, init);
      for (std::int64_t t = 0; t < ntaps; ++t)
        acc = hn::MulAdd(hn::Set(d, taps[t]), hn::LoadU(d, row + c + offsets[t]), acc);
      if (c + lanes <= cols) {
        hn::StoreU(acc, d, out + c);
      } else if (r + 1 < rows) {
        hn::BlendedStore(acc, hn::FirstN(d, static_cast<std::size_t>(cols - c)), d, out + c);
      } else {  // the plane's last tail: some targets emulate BlendedStore by rewriting the
                // whole vector, which could race with the thread writing the next plane
        HWY_ALIGN T last[HWY_MAX_BYTES / sizeof(T)];
        hn::Store(acc, d, last);
        for (std::int64_t i = 0; i < cols - c; ++i) out[c + i] = last[i];
      }
    }
  }
}

// sums[t] += sum_{r < rows, c < cols} g[r * g_stride + c] * src[r * src_stride + c + offsets[t]].
// src must stay readable one vector past the last element read. Row tails are zeroed on
// both operands, so nothing outside the plane enters a sum (not even 0 * inf).
template <class T>
void TapDotsPlane(const T* HWY_RESTRICT src, std::int64_t src_stride, const std::int64_t* HWY_RESTRICT offsets,
                  std::int64_t ntaps, const T* HWY_RESTRICT g, std::int64_t g_stride, std::int64_t rows,
                  std::int64_t cols, T* HWY_RESTRICT sums) {
  const hn::ScalableTag<T> d;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const std::int64_t full = cols - cols % lanes;
  const auto tail = hn::FirstN(d, static_cast<std::size_t>(cols - full));
  const T* g_end = g + (rows - 1) * g_stride + cols;
  for (std::int64_t t = 0; t < ntaps; ++t) {
    auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* g_row = g + r * g_stride;
      const T* row = src + r * src_stride + offsets[t];
      std::int64_t c = 0;
      for (; c + 2 * lanes <= full; c += 2 * lanes) {
        acc0 = hn::MulAdd(hn::LoadU(d, g_row + c), hn::LoadU(d, row + c), acc0);
        acc1 = hn::MulAdd(hn::LoadU(d, g_row + c + lanes), hn::LoadU(d, row + c + lanes), acc1);
      }
      if (c < full) acc0 = hn::MulAdd(hn::LoadU(d, g_row + c), hn::LoadU(d, row + c), acc0);
      if (full < cols)
        acc1 = hn::MulAdd(LoadTail(d, g_row + full, cols - full, g_end),
                          hn::IfThenElseZero(tail, hn::LoadU(d, row + full)), acc1);
    }
    sums[t] += hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  }
}

// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols. dst is private
// scratch, and row tails are blended in, so what lies beyond `cols` (zero padding) stays.
template <class T>
void CopyRows(const T* HWY_RESTRICT src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols,
              T* HWY_RESTRICT dst, std::int64_t dst_stride) {
  const hn::ScalableTag<T> d;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  const std::int64_t full = cols - cols % lanes;
  const auto tail = hn::FirstN(d, static_cast<std::size_t>(cols - full));
  const T* src_end = src + (rows - 1) * src_stride + cols;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* in = src + r * src_stride;
    T* out = dst + r * dst_stride;
    for (std::int64_t c = 0; c < full; c += lanes) hn::StoreU(hn::LoadU(d, in + c), d, out + c);
    if (full < cols) hn::BlendedStore(LoadTail(d, in + full, cols - full, src_end), tail, d, out + full);
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
void TapDotsPlaneF32(const float* src, std::int64_t src_stride, const std::int64_t* offsets, std::int64_t ntaps,
                     const float* g, std::int64_t g_stride, std::int64_t rows, std::int64_t cols, float* sums) {
  TapDotsPlane(src, src_stride, offsets, ntaps, g, g_stride, rows, cols, sums);
}
void TapDotsPlaneF64(const double* src, std::int64_t src_stride, const std::int64_t* offsets, std::int64_t ntaps,
                     const double* g, std::int64_t g_stride, std::int64_t rows, std::int64_t cols, double* sums) {
  TapDotsPlane(src, src_stride, offsets, ntaps, g, g_stride, rows, cols, sums);
}

void CopyRowsF32(const float* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, float* dst,
                 std::int64_t dst_stride) {
  CopyRows(src, src_stride, rows, cols, dst, dst_stride);
}
void CopyRowsF64(const double* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, double* dst,
                 std::int64_t dst_stride) {
  CopyRows(src, src_stride, rows, cols, dst, dst_stride);
}

}  // namespace symgrad::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace symgrad::kernels {

HWY_EXPORT(CorrelatePlaneF32);
HWY_EXPORT(CorrelatePlaneF64);
HWY_EXPORT(TapDotsPlaneF32);
HWY_EXPORT(TapDotsPlaneF64);
HWY_EXPORT(CopyRowsF32);
HWY_EXPORT(CopyRowsF64);

namespace {

// Scratch planes end with this many spare zeros, so a vector may run past the last element.
constexpr std::int64_t kSlack = 64;
constexpr std::int64_t kElementsPerChunk = 32768;

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
void tap_dots_plane(const float* src, std::int64_t src_stride, const std::int64_t* offsets, std::int64_t ntaps,
                    const float* g, std::int64_t g_stride, std::int64_t rows, std::int64_t cols, float* sums) {
  HWY_DYNAMIC_DISPATCH(TapDotsPlaneF32)(src, src_stride, offsets, ntaps, g, g_stride, rows, cols, sums);
}
void tap_dots_plane(const double* src, std::int64_t src_stride, const std::int64_t* offsets, std::int64_t ntaps,
                    const double* g, std::int64_t g_stride, std::int64_t rows, std::int64_t cols, double* sums) {
  HWY_DYNAMIC_DISPATCH(TapDotsPlaneF64)(src, src_stride, offsets, ntaps, g, g_stride, rows, cols, sums);
}

void copy_rows(const float* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, float* dst,
               std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(CopyRowsF32)(src, src_stride, rows, cols, dst, dst_stride);
}
void copy_rows(const double* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, double* dst,
               std::int64_t dst_stride) {
  HWY_DYNAMIC_DISPATCH(CopyRowsF64)(src, src_stride, rows, cols, dst, dst_stride);
}

// Writes src [rows, cols] into dst [dst_rows, dst_cols] at (top + r * row_step, left + c * col_step),
// dropping what falls outside. Every plane writes the same positions, so a scratch buffer
// zeroed once keeps its zero border (and the zeros between strided samples) for good.
template <class T>
void place_plane(const T* src, std::int64_t rows, std::int64_t cols, std::int64_t row_step, std::int64_t col_step,
                 std::int64_t top, std::int64_t left, T* dst, std::int64_t dst_rows, std::int64_t dst_cols) {
  // The source rows r with 0 <= top + r * row_step < dst_rows.
  const std::int64_t r_lo = top >= 0 ? 0 : (-top + row_step - 1) / row_step;
  const std::int64_t r_hi = std::min(rows, dst_rows - top <= 0 ? 0 : (dst_rows - top + row_step - 1) / row_step);
  if (r_lo >= r_hi) return;
  if (col_step == 1) {
    const std::int64_t c_lo = std::max<std::int64_t>(0, -left), c_hi = std::min(cols, dst_cols - left);
    if (c_lo < c_hi)
      copy_rows(src + r_lo * cols + c_lo, cols, r_hi - r_lo, c_hi - c_lo,
                dst + (top + r_lo * row_step) * dst_cols + left + c_lo, row_step * dst_cols);
    return;
  }
  for (std::int64_t r = r_lo; r < r_hi; ++r) {
    T* out = dst + (top + r * row_step) * dst_cols;
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::int64_t dst_col = left + c * col_step;
      if (dst_col >= 0 && dst_col < dst_cols) out[dst_col] = src[r * cols + c];
    }
  }
}

// Offsets of the taps in a plane with row length `row_length`: tap (p, q) reads (p * dh, q * dw).
std::vector<std::int64_t> tap_offsets(const ConvGeometry& g, std::int64_t row_length) {
  std::vector<std::int64_t> offsets(g.taps());
  for (std::int64_t p = 0; p < g.kernel_h; ++p)
    for (std::int64_t q = 0; q < g.kernel_w; ++q)
      offsets[p * g.kernel_w + q] = p * g.dilation_h * row_length + q * g.dilation_w;
  return offsets;
}

template <class T>
void forward_typed(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const std::int64_t multiplier = g.out_per_group(), taps = g.taps();
  const std::int64_t padded_h = g.in_h + 2 * g.pad_h, padded_w = g.in_w + 2 * g.pad_w;
  const std::int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  const std::vector<std::int64_t> offsets = tap_offsets(g, padded_w);
  const std::int64_t grain = std::max<std::int64_t>(1, kElementsPerChunk / (multiplier * out_plane * taps + 1));
  parallel_for(g.batch * g.in_channels, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<T> padded(padded_h * padded_w + kSlack);
    for (std::int64_t plane = begin; plane < end; ++plane) {
      place_plane(x + plane * in_plane, g.in_h, g.in_w, 1, 1, g.pad_h, g.pad_w, padded.data(), padded_h, padded_w);
      for (std::int64_t m = 0; m < multiplier; ++m) {
        const std::int64_t o = (plane % g.in_channels) * multiplier + m;
        const T* o_taps = w + o * taps;
        const T init = bias ? bias[o] : T(0);
        T* out = y + (plane * multiplier + m) * out_plane;  // (n * C_out + o) * out_plane
        if (g.stride_w == 1) {
          correlate_plane(padded.data(), g.stride_h * padded_w, offsets.data(), o_taps, taps, g.out_h, g.out_w,
                          init, out, g.out_w);
          continue;
        }
        for (std::int64_t i = 0; i < g.out_h; ++i)  // strided columns: a scalar loop
          for (std::int64_t j = 0; j < g.out_w; ++j) {
            const T* at = padded.data() + i * g.stride_h * padded_w + j * g.stride_w;
            T acc = init;
            for (std::int64_t t = 0; t < taps; ++t) acc += o_taps[t] * at[offsets[t]];
            out[i * g.out_w + j] = acc;
          }
      }
    }
  });
}

// grad_x[n, c] = sum_m correlate(spread(grad_y[n, c * multiplier + m]), flipped taps of that channel).
template <class T>
void input_grad_typed(const ConvGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  const std::int64_t multiplier = g.out_per_group(), taps = g.taps();
  // grad_y sample (i, j) lands at (i * stride + top, j * stride + left) of a grid one kernel
  // extent larger than x; the flipped kernel then slides over it with stride 1.
  const std::int64_t top = (g.kernel_h - 1) * g.dilation_h - g.pad_h;
  const std::int64_t left = (g.kernel_w - 1) * g.dilation_w - g.pad_w;
  const std::int64_t spread_h = g.in_h + (g.kernel_h - 1) * g.dilation_h;
  const std::int64_t spread_w = g.in_w + (g.kernel_w - 1) * g.dilation_w;
  const std::int64_t spread_plane = spread_h * spread_w, in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  // All multiplier planes are summed in one pass: their taps and offsets are concatenated.
  std::vector<std::int64_t> offsets;
  const std::vector<std::int64_t> plane_offsets = tap_offsets(g, spread_w);
  for (std::int64_t m = 0; m < multiplier; ++m)
    for (std::int64_t t = 0; t < taps; ++t) offsets.push_back(m * spread_plane + plane_offsets[t]);
  const std::int64_t grain = std::max<std::int64_t>(1, kElementsPerChunk / (multiplier * in_plane * taps + 1));
  parallel_for(g.batch * g.in_channels, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<T> spread(multiplier * spread_plane + kSlack);
    std::vector<T> flipped(multiplier * taps);
    for (std::int64_t plane = begin; plane < end; ++plane) {
      for (std::int64_t m = 0; m < multiplier; ++m) {
        place_plane(grad_y + (plane * multiplier + m) * out_plane, g.out_h, g.out_w, g.stride_h, g.stride_w, top,
                    left, spread.data() + m * spread_plane, spread_h, spread_w);
        const T* o_taps = w + ((plane % g.in_channels) * multiplier + m) * taps;
        std::reverse_copy(o_taps, o_taps + taps, flipped.data() + m * taps);  // (p, q) -> (kH-1-p, kW-1-q)
      }
      correlate_plane(spread.data(), spread_w, offsets.data(), flipped.data(), multiplier * taps, g.in_h, g.in_w,
                      T(0), grad_x + plane * in_plane, g.in_w);
    }
  });
}

// grad_w[o, t] = sum_n sum_(i,j) grad_y[n, o, i, j] * padded x[n, c(o)] at (i, j) shifted by tap t.
// Parallel over input channels, so each task owns its multiplier rows of grad_w; within a
// task the batch is the outer loop, so the planes it reads are neighbours in memory.
template <class T>
void weight_grad_typed(const ConvGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  const std::int64_t multiplier = g.out_per_group(), taps = g.taps();
  const std::int64_t padded_h = g.in_h + 2 * g.pad_h, padded_w = g.in_w + 2 * g.pad_w;
  const std::int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  const std::vector<std::int64_t> offsets = tap_offsets(g, padded_w);
  const std::int64_t grain =
      std::max<std::int64_t>(1, kElementsPerChunk / (g.batch * multiplier * out_plane * taps + 1));
  parallel_for(g.in_channels, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<T> padded(padded_h * padded_w + kSlack);
    std::fill(grad_w + begin * multiplier * taps, grad_w + end * multiplier * taps, T(0));
    for (std::int64_t n = 0; n < g.batch; ++n)
      for (std::int64_t c = begin; c < end; ++c) {
        place_plane(x + (n * g.in_channels + c) * in_plane, g.in_h, g.in_w, 1, 1, g.pad_h, g.pad_w, padded.data(),
                    padded_h, padded_w);
        for (std::int64_t m = 0; m < multiplier; ++m) {
          const std::int64_t o = c * multiplier + m;
          const T* g_plane = grad_y + (n * g.out_channels + o) * out_plane;
          T* sums = grad_w + o * taps;
          if (g.stride_w == 1) {
            tap_dots_plane(padded.data(), g.stride_h * padded_w, offsets.data(), taps, g_plane, g.out_w, g.out_h,
                           g.out_w, sums);
            continue;
          }
          for (std::int64_t i = 0; i < g.out_h; ++i)  // strided columns: a scalar loop
            for (std::int64_t j = 0; j < g.out_w; ++j) {
              const T* at = padded.data() + i * g.stride_h * padded_w + j * g.stride_w;
              const T go = g_plane[i * g.out_w + j];
              for (std::int64_t t = 0; t < taps; ++t) sums[t] += go * at[offsets[t]];
            }
        }
      }
  });
}

}  // namespace

void depthwise_forward(DType dt, const ConvGeometry& g, const void* x, const void* w, const void* bias, void* y) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    forward_typed(g, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
                  static_cast<T*>(y));
  });
}

void depthwise_input_grad(DType dt, const ConvGeometry& g, const void* grad_y, const void* w, void* grad_x) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    input_grad_typed(g, static_cast<const T*>(grad_y), static_cast<const T*>(w), static_cast<T*>(grad_x));
  });
}

void depthwise_weight_grad(DType dt, const ConvGeometry& g, const void* x, const void* grad_y, void* grad_w) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    weight_grad_typed(g, static_cast<const T*>(x), static_cast<const T*>(grad_y), static_cast<T*>(grad_w));
  });
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
