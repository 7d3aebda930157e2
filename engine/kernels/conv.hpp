#pragma once
// 2-D convolution kernels on dense NCHW buffers. No autograd and no validation here:
// engine/ops/conv.cpp checks the shapes, then calls these.
//
// Three strategies, picked by conv2d_forward / conv2d_input_grad / conv2d_weight_grad:
//   dense groups  -- im2col + one gemm per (sample, group); the adjoint scatters back with col2im
//   pointwise     -- 1x1, unit stride, no padding, one group, widening (twice as many
//                    channels written as summed over): the input already is the im2col
//                    matrix, and a direct SIMD product per sample (threaded over the batch)
//                    beats a small BLAS call per sample
//   depthwise     -- every output channel reads one input channel (in_channels == groups), so
//                    there is no reduction over channels to hand to BLAS; a direct SIMD loop
//                    over each image plane is memory-bound and far cheaper than im2col.
// The *_reference functions are plain loops over the definition, for the tests.
#include <cstdint>

#include "engine/dtype.hpp"

namespace symgrad::kernels {

// Sizes of one convolution, output sizes included (the op layer computes them).
struct ConvGeometry {
  std::int64_t batch = 0, in_channels = 0, in_h = 0, in_w = 0;
  std::int64_t out_channels = 0, out_h = 0, out_w = 0;
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;  // zero padding on each side
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t groups = 1;

  std::int64_t in_per_group() const { return in_channels / groups; }
  std::int64_t out_per_group() const { return out_channels / groups; }
  std::int64_t taps() const { return kernel_h * kernel_w; }
  bool depthwise() const { return in_per_group() == 1; }
};

// y [N, C_out, out_h, out_w] = conv(x [N, C_in, in_h, in_w], w [C_out, C_in / groups, kH, kW])
// + bias [C_out] (bias may be null). y is overwritten.
void conv2d_forward(DType dt, const ConvGeometry& g, const void* x, const void* w, const void* bias, void* y);
// grad_x [N, C_in, in_h, in_w] = the adjoint of conv2d_forward in x, applied to grad_y. Overwritten.
void conv2d_input_grad(DType dt, const ConvGeometry& g, const void* grad_y, const void* w, void* grad_x);
// grad_w [C_out, C_in / groups, kH, kW] = the adjoint in w, summed over the batch. Overwritten.
void conv2d_weight_grad(DType dt, const ConvGeometry& g, const void* x, const void* grad_y, void* grad_w);

// The two halves of the dense strategy, for one sample and `channels` input channels:
// col [channels * kH * kW, out_h * out_w] holds, in each row, one tap's view of the
// (zero padded) input; col2im adds such a matrix back into x (its adjoint).
void im2col(DType dt, const ConvGeometry& g, std::int64_t channels, const void* x, void* col);
void col2im(DType dt, const ConvGeometry& g, std::int64_t channels, const void* col, void* x);

// The direct depthwise kernels (g.depthwise() must hold); same contracts as above.
void depthwise_forward(DType dt, const ConvGeometry& g, const void* x, const void* w, const void* bias, void* y);
void depthwise_input_grad(DType dt, const ConvGeometry& g, const void* grad_y, const void* w, void* grad_x);
void depthwise_weight_grad(DType dt, const ConvGeometry& g, const void* x, const void* grad_y, void* grad_w);

// The 1x1 convolution of one sample without BLAS (conv_pointwise.cpp): y [rows, cols] =
// bias + a [rows, depth] x [depth, cols], a read as a[m * a_row + k * a_col] (so a
// transposed weight needs no copy); bias may be null. Only where
// pointwise_product_fits(dt, cols), i.e. a row spans at least two SIMD vectors.
bool pointwise_product_fits(DType dt, std::int64_t cols);
void pointwise_product(DType dt, const void* a, std::int64_t a_row, std::int64_t a_col, const void* bias,
                       std::int64_t rows, std::int64_t depth, const void* x, std::int64_t cols, void* y);

// Plain loops over the definition y[n,o,i,j] = b[o] + sum w[o,c,p,q] x[n, c', i*s - pad + p*d, ...].
void conv2d_reference(DType dt, const ConvGeometry& g, const void* x, const void* w, const void* bias, void* y);
void conv2d_input_grad_reference(DType dt, const ConvGeometry& g, const void* grad_y, const void* w, void* grad_x);
void conv2d_weight_grad_reference(DType dt, const ConvGeometry& g, const void* x, const void* grad_y,
                                  void* grad_w);

}  // namespace symgrad::kernels
