// Dense (grouped) convolution as im2col + gemm, its two adjoints, and the choice
// between this strategy and the direct depthwise kernels (conv_depthwise.cpp).
#include "engine/kernels/conv.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/kernels/gemm.hpp"
#include "engine/kernels/threads.hpp"

namespace symgrad::kernels {
namespace {

// Roughly this many elements of work per parallel_for chunk: below it, threads cost more than they save.
constexpr std::int64_t kElementsPerChunk = 32768;

std::int64_t grain_for(std::int64_t elements_per_item) {
  return std::max<std::int64_t>(1, kElementsPerChunk / std::max<std::int64_t>(1, elements_per_item));
}

// [lo, hi): the output positions o in [0, out_len) that read an input position
// o * stride + offset inside [0, in_len). Outside it the padded input is zero.
struct Span {
  std::int64_t lo, hi;
};
Span valid_outputs(std::int64_t out_len, std::int64_t in_len, std::int64_t stride, std::int64_t offset) {
  const std::int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const std::int64_t hi = in_len - offset <= 0 ? 0 : std::min(out_len, (in_len - offset + stride - 1) / stride);
  return {std::min(lo, hi), hi};
}

// A 1x1 kernel with unit stride and no padding reads x exactly as im2col would lay it out.
bool col_is_input(const ConvGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
         g.pad_w == 0;
}

// One row of col: tap (p, q) of one input channel. Output (i, j) reads that channel at
// (i * stride_h + row_offset, j * stride_w + col_offset); rows and cols are the output
// spans whose reads land inside x (elsewhere the read is zero padding).
struct TapView {
  std::int64_t row_offset, col_offset;
  Span rows, cols;
};

TapView tap_view(const ConvGeometry& g, std::int64_t col_row) {
  const std::int64_t q = col_row % g.kernel_w, p = (col_row / g.kernel_w) % g.kernel_h;
  TapView v;
  v.row_offset = p * g.dilation_h - g.pad_h;
  v.col_offset = q * g.dilation_w - g.pad_w;
  v.rows = valid_outputs(g.out_h, g.in_h, g.stride_h, v.row_offset);
  v.cols = valid_outputs(g.out_w, g.in_w, g.stride_w, v.col_offset);
  return v;
}

// Fills one row of col (an out_h x out_w plane) from its input channel.
template <class T>
void im2col_row(const ConvGeometry& g, const TapView& v, const T* x_channel, T* dst) {
  const std::int64_t out_w = g.out_w, out_plane = g.out_h * g.out_w;
  std::fill(dst, dst + v.rows.lo * out_w, T(0));
  std::fill(dst + v.rows.hi * out_w, dst + out_plane, T(0));
  if (g.stride_h == 1 && g.stride_w == 1 && g.out_w == g.in_w) {
    // Unit stride, output as wide as the input ("same" padding): the valid rows are one
    // shifted copy of the plane; only the columns that wrapped around need zeroing.
    const std::int64_t shift = v.row_offset * g.in_w + v.col_offset;
    const std::int64_t from = std::max(v.rows.lo * out_w, -shift);
    const std::int64_t to = std::min(v.rows.hi * out_w, g.in_h * g.in_w - shift);
    if (from < to) std::memcpy(dst + from, x_channel + from + shift, sizeof(T) * (to - from));
    // Column-major on purpose: a few elements per row, where per-row fills would each be a call.
    for (std::int64_t j = 0; j < v.cols.lo; ++j)
      for (std::int64_t i = v.rows.lo; i < v.rows.hi; ++i) dst[i * out_w + j] = T(0);
    for (std::int64_t j = v.cols.hi; j < out_w; ++j)
      for (std::int64_t i = v.rows.lo; i < v.rows.hi; ++i) dst[i * out_w + j] = T(0);
    return;
  }
  for (std::int64_t i = v.rows.lo; i < v.rows.hi; ++i) {
    const T* src = x_channel + (i * g.stride_h + v.row_offset) * g.in_w;
    T* out = dst + i * out_w;
    for (std::int64_t j = 0; j < v.cols.lo; ++j) out[j] = T(0);
    for (std::int64_t j = v.cols.lo; j < v.cols.hi; ++j) out[j] = src[j * g.stride_w + v.col_offset];
    for (std::int64_t j = v.cols.hi; j < out_w; ++j) out[j] = T(0);
  }
}

template <class T>
void im2col_typed(const ConvGeometry& g, std::int64_t channels, const T* x, T* col) {
  const std::int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  parallel_for(channels * g.taps(), grain_for(out_plane), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r)
      im2col_row(g, tap_view(g, r), x + (r / g.taps()) * in_plane, col + r * out_plane);
  });
}

// x (+)= col2im(col). Parallel over channels: the taps of one channel all add into its plane.
template <class T>
void col2im_typed(const ConvGeometry& g, std::int64_t channels, const T* col, T* x, bool accumulate) {
  const std::int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  parallel_for(channels, grain_for(g.taps() * out_plane), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t c = begin; c < end; ++c) {
      T* x_channel = x + c * in_plane;
      if (!accumulate) std::fill(x_channel, x_channel + in_plane, T(0));
      for (std::int64_t r = c * g.taps(); r < (c + 1) * g.taps(); ++r) {
        const TapView v = tap_view(g, r);
        for (std::int64_t i = v.rows.lo; i < v.rows.hi; ++i) {
          T* dst = x_channel + (i * g.stride_h + v.row_offset) * g.in_w;
          const T* in = col + r * out_plane + i * g.out_w;
          if (g.stride_w == 1)
            for (std::int64_t j = v.cols.lo; j < v.cols.hi; ++j) dst[j + v.col_offset] += in[j];
          else
            for (std::int64_t j = v.cols.lo; j < v.cols.hi; ++j) dst[j * g.stride_w + v.col_offset] += in[j];
        }
      }
    }
  });
}

// The pointwise strategy (conv.hpp) applies to a 1x1 convolution that widens: rows (the
// channels written) at least twice depth (the channels summed over), as in the first conv
// of a quasi-linear block (in -> 8 in) and the input gradient of its last. There the
// output dominates the traffic, and writing it once beats BLAS by up to 40%. Where depth
// is the larger, BLAS's packed, sequential reads of x win (by 10-25% measured), and
// depth is capped so that a block of two pixel vectors over the whole depth stays in L1.
constexpr std::int64_t kPointwiseMaxDepth = 512;

bool pointwise_applies(DType dt, const ConvGeometry& g, std::int64_t rows, std::int64_t depth) {
  return col_is_input(g) && g.groups == 1 && 2 * depth <= rows && depth <= kPointwiseMaxDepth &&
         pointwise_product_fits(dt, g.out_h * g.out_w);
}

// Per sample n: y_n [rows, P] = bias + a [rows, depth] @ x_n [depth, P] (a strided by a_row, a_col),
// the samples spread over the thread pool.
template <class T>
void pointwise_per_sample(const ConvGeometry& g, const T* a, std::int64_t a_row, std::int64_t a_col, const T* bias,
                          std::int64_t rows, std::int64_t depth, const T* x, T* y) {
  const std::int64_t plane = g.out_h * g.out_w;
  parallel_for(g.batch, grain_for(rows * depth * plane / 16), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; ++n)
      pointwise_product(dtype_of<T>(), a, a_row, a_col, bias, rows, depth, x + n * depth * plane, plane,
                        y + n * rows * plane);
  });
}

// Per (sample, group): y_g [C_out/G, P] = w_g [C_out/G, K] @ col [K, P], K = C_in/G * kH * kW.
template <class T>
void dense_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  if (pointwise_applies(dtype_of<T>(), g, g.out_channels, g.in_channels))
    return pointwise_per_sample(g, w, g.in_channels, 1, bias, g.out_channels, g.in_channels, x, y);
  const std::int64_t cin_g = g.in_per_group(), cout_g = g.out_per_group(), k = cin_g * g.taps();
  const std::int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  const bool direct = col_is_input(g);
  auto col_buffer = direct ? nullptr : std::make_unique_for_overwrite<T[]>(k * out_plane);
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t grp = 0; grp < g.groups; ++grp) {
      const T* x_group = x + (n * g.in_channels + grp * cin_g) * in_plane;
      const T* col = x_group;
      if (!direct) {
        im2col_typed(g, cin_g, x_group, col_buffer.get());
        col = col_buffer.get();
      }
      T* y_group = y + (n * g.out_channels + grp * cout_g) * out_plane;
      gemm(dtype_of<T>(), false, false, cout_g, out_plane, k, 1.0, w + grp * cout_g * k, k, col, out_plane, 0.0,
           y_group, out_plane);
      if (!bias) continue;
      for (std::int64_t o = 0; o < cout_g; ++o) {
        T* row = y_group + o * out_plane;
        const T b = bias[grp * cout_g + o];
        for (std::int64_t i = 0; i < out_plane; ++i) row[i] += b;
      }
    }
}

// With unit stride the input gradient is itself a convolution: of grad_y, padded by
// (k - 1) d - pad, with each kernel flipped in space and, per group, its two channel axes
// swapped. That writes grad_x once, where col2im would scatter every tap into it.
bool input_grad_is_convolution(const ConvGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.pad_h <= (g.kernel_h - 1) * g.dilation_h &&
         g.pad_w <= (g.kernel_w - 1) * g.dilation_w;
}

template <class T>
void input_grad_as_convolution(const ConvGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  ConvGeometry t = g;
  t.in_channels = g.out_channels, t.in_h = g.out_h, t.in_w = g.out_w;
  t.out_channels = g.in_channels, t.out_h = g.in_h, t.out_w = g.in_w;
  t.pad_h = (g.kernel_h - 1) * g.dilation_h - g.pad_h;
  t.pad_w = (g.kernel_w - 1) * g.dilation_w - g.pad_w;
  const std::int64_t cin_g = g.in_per_group(), cout_g = g.out_per_group(), taps = g.taps();
  std::vector<T> flipped(static_cast<std::size_t>(g.out_channels * cin_g * taps));
  for (std::int64_t grp = 0; grp < g.groups; ++grp)
    for (std::int64_t o = 0; o < cout_g; ++o)
      for (std::int64_t c = 0; c < cin_g; ++c) {
        const T* kernel = w + ((grp * cout_g + o) * cin_g + c) * taps;
        std::reverse_copy(kernel, kernel + taps, flipped.data() + ((grp * cin_g + c) * cout_g + o) * taps);
      }
  dense_forward(t, grad_y, flipped.data(), static_cast<const T*>(nullptr), grad_x);
}

// Per (sample, group): col = w_g^T @ grad_y_g, then grad_x_g = col2im(col).
template <class T>
void dense_input_grad(const ConvGeometry& g, const T* grad_y, const T* w, T* grad_x) {
  // grad_x_n [C_in, P] = w^T [C_in, C_out] @ grad_y_n: w read transposed in place.
  if (pointwise_applies(dtype_of<T>(), g, g.in_channels, g.out_channels))
    return pointwise_per_sample(g, w, 1, g.in_channels, static_cast<const T*>(nullptr), g.in_channels,
                                g.out_channels, grad_y, grad_x);
  const bool direct = col_is_input(g);
  if (!direct && input_grad_is_convolution(g)) return input_grad_as_convolution(g, grad_y, w, grad_x);
  const std::int64_t cin_g = g.in_per_group(), cout_g = g.out_per_group(), k = cin_g * g.taps();
  const std::int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  auto col_buffer = direct ? nullptr : std::make_unique_for_overwrite<T[]>(k * out_plane);
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t grp = 0; grp < g.groups; ++grp) {
      T* grad_x_group = grad_x + (n * g.in_channels + grp * cin_g) * in_plane;
      T* col = direct ? grad_x_group : col_buffer.get();
      gemm(dtype_of<T>(), true, false, k, out_plane, cout_g, 1.0, w + grp * cout_g * k, k,
           grad_y + (n * g.out_channels + grp * cout_g) * out_plane, out_plane, 0.0, col, out_plane);
      if (!direct) col2im_typed(g, cin_g, col, grad_x_group, /*accumulate=*/false);
    }
}

// grad_w_g [C_out/G, K] = sum_n grad_y_g [C_out/G, P] @ col_n^T: one gemm per sample, accumulating.
template <class T>
void dense_weight_grad(const ConvGeometry& g, const T* x, const T* grad_y, T* grad_w) {
  const std::int64_t cin_g = g.in_per_group(), cout_g = g.out_per_group(), k = cin_g * g.taps();
  const std::int64_t out_plane = g.out_h * g.out_w, in_plane = g.in_h * g.in_w;
  if (g.batch == 0) {
    std::fill_n(grad_w, g.out_channels * k, T(0));
    return;
  }
  const bool direct = col_is_input(g);
  auto col_buffer = direct ? nullptr : std::make_unique_for_overwrite<T[]>(k * out_plane);
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t grp = 0; grp < g.groups; ++grp) {
      const T* x_group = x + (n * g.in_channels + grp * cin_g) * in_plane;
      const T* col = x_group;
      if (!direct) {
        im2col_typed(g, cin_g, x_group, col_buffer.get());
        col = col_buffer.get();
      }
      gemm(dtype_of<T>(), false, true, cout_g, k, out_plane, 1.0,
           grad_y + (n * g.out_channels + grp * cout_g) * out_plane, out_plane, col, out_plane,
           n == 0 ? 0.0 : 1.0, grad_w + grp * cout_g * k, k);
    }
}

}  // namespace

void im2col(DType dt, const ConvGeometry& g, std::int64_t channels, const void* x, void* col) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    im2col_typed(g, channels, static_cast<const T*>(x), static_cast<T*>(col));
  });
}

void col2im(DType dt, const ConvGeometry& g, std::int64_t channels, const void* col, void* x) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    col2im_typed(g, channels, static_cast<const T*>(col), static_cast<T*>(x), /*accumulate=*/true);
  });
}

void conv2d_forward(DType dt, const ConvGeometry& g, const void* x, const void* w, const void* bias, void* y) {
  if (g.depthwise()) return depthwise_forward(dt, g, x, w, bias, y);
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    dense_forward(g, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
                  static_cast<T*>(y));
  });
}

void conv2d_input_grad(DType dt, const ConvGeometry& g, const void* grad_y, const void* w, void* grad_x) {
  if (g.depthwise()) return depthwise_input_grad(dt, g, grad_y, w, grad_x);
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    dense_input_grad(g, static_cast<const T*>(grad_y), static_cast<const T*>(w), static_cast<T*>(grad_x));
  });
}

void conv2d_weight_grad(DType dt, const ConvGeometry& g, const void* x, const void* grad_y, void* grad_w) {
  if (g.depthwise()) return depthwise_weight_grad(dt, g, x, grad_y, grad_w);
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    dense_weight_grad(g, static_cast<const T*>(x), static_cast<const T*>(grad_y), static_cast<T*>(grad_w));
  });
}

}  // namespace symgrad::kernels
