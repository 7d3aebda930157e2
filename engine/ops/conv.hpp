#pragma once
// 2-D convolution (cross-correlation, as in every deep-learning library) and pooling,
// NCHW layout.
#include <optional>

#include "engine/ops/shape_ops.hpp"
#include "engine/tensor.hpp"

namespace symgrad {

struct Conv2dOptions {
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t padding_h = 0, padding_w = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t groups = 1;
  PadMode padding_mode = PadMode::zeros;  // the boundary condition
};

// x [N, C_in, H, W], weight [C_out, C_in / groups, kH, kW], bias [C_out] or undefined.
// groups == C_in with C_out == k * C_in is a depthwise conv with channel multiplier k.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dOptions& opts = {});

// The two adjoints of conv2d, themselves differentiable ops (conv2d's backward uses them).
// conv2d_input_grad: dL/dx given dL/dy (a transposed convolution), for input shape x_shape.
Tensor conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape,
                         const Conv2dOptions& opts);
// conv2d_weight_grad: dL/dweight given x and dL/dy.
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Shape& weight_shape,
                          const Conv2dOptions& opts);

struct Pool2dOptions {
  std::int64_t kernel_h = 2, kernel_w = 2;
  std::int64_t stride_h = 0, stride_w = 0;  // 0: equal to the kernel size
  std::int64_t padding_h = 0, padding_w = 0;
};
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts = {});
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts = {});  // padding counts as zeros

}  // namespace symgrad
