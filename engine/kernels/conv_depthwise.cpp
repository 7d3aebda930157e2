// Direct depthwise convolution (every output channel reads one input channel) and its
// two adjoints, SIMD across the output width with Highway's dynamic dispatch.
//
// Each image plane is first copied into a zero-bordered scratch plane, so the inner loops
// have no bounds checks: an output row is a sum of shifted input rows, one per tap.
//
// Strides are undone by the scratch layout, not by gathers: with column stride s each
// padded row is stored as s "phases" (columns b, b + s, b + 2s, ... one after another),
// so output column j of tap q (q * dilation = a * s + b) reads phase b at j + a -- a
// contiguous vector again. Stride 1 is the special case of one phase.
//
// The input gradient is the same correlation again, with the taps flipped, applied to the
// output gradient spread onto the input grid (zeros between samples when strided).
//
// The SIMD inner loops are in conv_depthwise_simd.cpp; this file lays the planes out and
// spreads them over the thread pool.
#include <algorithm>
#include <vector>

#include "engine/kernels/conv.hpp"
#include "engine/kernels/conv_depthwise_simd.hpp"
#include "engine/kernels/threads.hpp"

namespace symgrad::kernels {
namespace {

// Scratch planes end with this many spare zeros, so a vector may run past the last element.
constexpr std::int64_t kSlack = 64;
constexpr std::int64_t kElementsPerChunk = 32768;

// The zero-padded input plane in phases (see the top of the file): padded row i holds,
// for b = 0 .. phases - 1, the padded columns b, b + phases, b + 2 phases, ... in a run of
// phase_length values, so a row is phases * phase_length long.
struct PhasedPlane {
  std::int64_t rows = 0, phases = 1, phase_length = 0;
  std::int64_t top = 0, left = 0;  // where input (0, 0) sits in the padded plane

  PhasedPlane(const ConvGeometry& g)
      : rows(g.in_h + 2 * g.pad_h), phases(g.stride_w),
        phase_length((g.in_w + 2 * g.pad_w + g.stride_w - 1) / g.stride_w), top(g.pad_h), left(g.pad_w) {}
  std::int64_t row_length() const { return phases * phase_length; }
  std::int64_t size() const { return rows * row_length() + kSlack; }

  // Where tap (p, q) of output (0, 0) reads, relative to the plane's start; output (i, j)
  // reads that plus i * stride_h rows plus j.
  std::vector<std::int64_t> tap_offsets(const ConvGeometry& g) const {
    std::vector<std::int64_t> offsets(g.taps());
    for (std::int64_t p = 0; p < g.kernel_h; ++p)
      for (std::int64_t q = 0; q < g.kernel_w; ++q) {
        const std::int64_t column = q * g.dilation_w;
        offsets[p * g.kernel_w + q] =
            p * g.dilation_h * row_length() + (column % phases) * phase_length + column / phases;
      }
    return offsets;
  }

  // Copies one input plane [h, w] in. Only data positions are written, so the border
  // (and every gap) of a scratch plane zeroed once stays zero for good.
  template <class T>
  void place(const T* x, std::int64_t h, std::int64_t w, T* plane) const {
    if (phases == 1) return copy_rows(x, w, h, w, plane + top * row_length() + left, row_length());
    if (phases == 2)
      return split_rows_in_two_phases(x, h, w, left, phase_length, plane + top * row_length(), row_length());
    for (std::int64_t i = 0; i < h; ++i) {
      const T* in = x + i * w;
      T* out = plane + (top + i) * row_length();
      for (std::int64_t b = 0; b < phases; ++b) {
        const std::int64_t first = ((b - left) % phases + phases) % phases;  // first column landing in phase b
        T* phase = out + b * phase_length;
        for (std::int64_t j = first; j < w; j += phases) phase[(j + left) / phases] = in[j];
      }
    }
  }
};

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
  const std::int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  const PhasedPlane layout(g);
  const std::vector<std::int64_t> offsets = layout.tap_offsets(g);
  const std::int64_t src_stride = g.stride_h * layout.row_length();
  const std::int64_t grain = std::max<std::int64_t>(1, kElementsPerChunk / (multiplier * out_plane * taps + 1));
  parallel_for(g.batch * g.in_channels, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<T> padded(layout.size());
    for (std::int64_t plane = begin; plane < end; ++plane) {
      layout.place(x + plane * in_plane, g.in_h, g.in_w, padded.data());
      const std::int64_t first = (plane % g.in_channels) * multiplier;  // the channel's first output
      T* out = y + plane * multiplier * out_plane;                       // (n * C_out + first) * out_plane
      std::int64_t m = 0;
      for (; m + 2 <= multiplier; m += 2)
        correlate_plane_pair(padded.data(), src_stride, offsets.data(), w + (first + m) * taps,
                             w + (first + m + 1) * taps, taps, g.out_h, g.out_w, bias ? bias[first + m] : T(0),
                             bias ? bias[first + m + 1] : T(0), out + m * out_plane, out + (m + 1) * out_plane,
                             g.out_w);
      if (m < multiplier)
        correlate_plane(padded.data(), src_stride, offsets.data(), w + (first + m) * taps, taps, g.out_h, g.out_w,
                        bias ? bias[first + m] : T(0), out + m * out_plane, g.out_w);
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
// Parallel over input channels, so each task owns its multiplier rows of grad_w. A task
// places a batch block of its channel's planes in scratch, then sums over the whole block
// per output channel in one kernel call (one horizontal reduction per block, not per plane).
// The sums are kept in double and rounded once at the end.
template <class T>
void weight_grad_typed(const ConvGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  const std::int64_t multiplier = g.out_per_group(), taps = g.taps();
  const std::int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  const PhasedPlane layout(g);
  const std::vector<std::int64_t> offsets = layout.tap_offsets(g);
  // Planes per block: about 256 KiB of scratch, so the block stays in L2 while every
  // output channel of the input channel reads it.
  const std::int64_t block =
      std::clamp<std::int64_t>((std::int64_t{256} << 10) / (layout.size() * sizeof(T)), 1, 64);
  const std::int64_t grain =
      std::max<std::int64_t>(1, kElementsPerChunk / (g.batch * multiplier * out_plane * taps + 1));
  parallel_for(g.in_channels, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<T> padded(std::min(block, std::max<std::int64_t>(g.batch, 1)) * layout.size());
    std::vector<double> sums((end - begin) * multiplier * taps, 0.0);
    for (std::int64_t c = begin; c < end; ++c)
      for (std::int64_t n0 = 0; n0 < g.batch; n0 += block) {
        const std::int64_t planes = std::min(block, g.batch - n0);
        for (std::int64_t k = 0; k < planes; ++k)
          layout.place(x + ((n0 + k) * g.in_channels + c) * in_plane, g.in_h, g.in_w,
                       padded.data() + k * layout.size());
        const PlaneStack stack{.planes = planes,
                               .rows = g.out_h,
                               .cols = g.out_w,
                               .src_plane = layout.size(),
                               .src_stride = g.stride_h * layout.row_length(),
                               .g_plane = g.out_channels * out_plane,
                               .g_stride = g.out_w};
        for (std::int64_t m = 0; m < multiplier; ++m) {
          const std::int64_t o = c * multiplier + m;
          tap_dots_stack(padded.data(), offsets.data(), taps, grad_y + (n0 * g.out_channels + o) * out_plane,
                         stack, sums.data() + (o - begin * multiplier) * taps);
        }
      }
    std::transform(sums.begin(), sums.end(), grad_w + begin * multiplier * taps,
                   [](double s) { return static_cast<T>(s); });
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
