// conv2d and its two adjoints, each a differentiable op. The three are bilinear maps
// tied together by <conv2d(x, w), g> = <x, input_grad(g, w)> = <w, weight_grad(x, g)>,
// so every backward rule here is one of the other two ops, and derivatives of any
// order follow. Boundary conditions other than zeros are pad() followed by a conv
// with no padding, so their backward goes through pad's.
#include "engine/ops/conv.hpp"

#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "engine/creation.hpp"
#include "engine/kernels/conv.hpp"
#include "engine/ops/reduce.hpp"

namespace symgrad {
namespace {

std::string pair_str(std::int64_t h, std::int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

[[noreturn]] void fail(const char* op, const std::string& message) {
  throw std::invalid_argument(std::string(op) + ": " + message);
}

// Checks conv2d's shapes and options and returns the kernels' geometry.
kernels::ConvGeometry conv_geometry(const char* op, const Shape& x, const Shape& w, const Conv2dOptions& o) {
  if (x.size() != 4) fail(op, "input " + shape_str(x) + " must be 4-D [N, C_in, H, W]");
  if (w.size() != 4) fail(op, "weight " + shape_str(w) + " must be 4-D [C_out, C_in / groups, kH, kW]");
  if (o.stride_h <= 0 || o.stride_w <= 0) fail(op, "stride " + pair_str(o.stride_h, o.stride_w) + " must be positive");
  if (o.dilation_h <= 0 || o.dilation_w <= 0)
    fail(op, "dilation " + pair_str(o.dilation_h, o.dilation_w) + " must be positive");
  if (o.padding_h < 0 || o.padding_w < 0)
    fail(op, "padding " + pair_str(o.padding_h, o.padding_w) + " must be non-negative");
  if (o.groups <= 0) fail(op, "groups " + std::to_string(o.groups) + " must be positive");
  if (x[1] % o.groups != 0)
    fail(op, "input " + shape_str(x) + " has " + std::to_string(x[1]) + " channels, not divisible by groups " +
                 std::to_string(o.groups));
  if (w[0] % o.groups != 0)
    fail(op, "weight " + shape_str(w) + " has " + std::to_string(w[0]) +
                 " output channels, not divisible by groups " + std::to_string(o.groups));
  if (w[1] != x[1] / o.groups)
    fail(op, "weight " + shape_str(w) + " expects " + std::to_string(w[1]) + " input channels per group, but input " +
                 shape_str(x) + " with groups " + std::to_string(o.groups) + " has " + std::to_string(x[1] / o.groups));
  if (w[2] <= 0 || w[3] <= 0) fail(op, "weight " + shape_str(w) + " has an empty kernel");
  kernels::ConvGeometry g;
  g.batch = x[0];
  g.in_channels = x[1];
  g.in_h = x[2];
  g.in_w = x[3];
  g.out_channels = w[0];
  g.kernel_h = w[2];
  g.kernel_w = w[3];
  g.stride_h = o.stride_h;
  g.stride_w = o.stride_w;
  g.pad_h = o.padding_h;
  g.pad_w = o.padding_w;
  g.dilation_h = o.dilation_h;
  g.dilation_w = o.dilation_w;
  g.groups = o.groups;
  const std::int64_t extent_h = (g.kernel_h - 1) * g.dilation_h + 1, extent_w = (g.kernel_w - 1) * g.dilation_w + 1;
  const std::int64_t padded_h = g.in_h + 2 * g.pad_h, padded_w = g.in_w + 2 * g.pad_w;
  if (extent_h > padded_h || extent_w > padded_w)
    fail(op, "kernel of weight " + shape_str(w) + " spans " + pair_str(extent_h, extent_w) + " (dilation " +
                 pair_str(g.dilation_h, g.dilation_w) + "), larger than input " + shape_str(x) + " padded to " +
                 pair_str(padded_h, padded_w));
  g.out_h = (padded_h - extent_h) / g.stride_h + 1;
  g.out_w = (padded_w - extent_w) / g.stride_w + 1;
  return g;
}

Shape output_shape(const kernels::ConvGeometry& g) { return {g.batch, g.out_channels, g.out_h, g.out_w}; }

void require_defined(const char* op, const char* name, const Tensor& t) {
  if (!t.defined()) fail(op, std::string(name) + " is undefined");
}

void require_dtype(const char* op, const char* name, const Tensor& t, DType dtype) {
  require_defined(op, name, t);
  if (t.dtype() != dtype)
    fail(op, std::string(name) + " " + shape_str(t.shape()) + " is " + dtype_name(t.dtype()) + " but expected " +
                 dtype_name(dtype) + "; convert one with to_dtype");
}

void check_grad_out(const char* op, const Tensor& grad_out, const kernels::ConvGeometry& g, const Shape& x,
                    const Shape& w) {
  if (grad_out.shape() != output_shape(g))
    fail(op, "grad_out " + shape_str(grad_out.shape()) + " is not conv2d's output shape " +
                 shape_str(output_shape(g)) + " for input " + shape_str(x) + " and weight " + shape_str(w));
}

bool pads_by_copy(const Conv2dOptions& o) {
  return o.padding_mode != PadMode::zeros && (o.padding_h > 0 || o.padding_w > 0);
}

// The options for the convolution that follows pad(x, mode): no padding left to do.
Conv2dOptions without_padding(Conv2dOptions o) {
  o.padding_h = o.padding_w = 0;
  o.padding_mode = PadMode::zeros;
  return o;
}

// pad(x) by the boundary condition; its complaints (e.g. reflecting more than the input
// holds) are reported as the convolution's.
Tensor pad_input(const char* op, const Tensor& x, const Conv2dOptions& o) {
  try {
    return pad(x, {o.padding_w, o.padding_w, o.padding_h, o.padding_h}, o.padding_mode);
  } catch (const std::invalid_argument& e) {
    fail(op, std::string("padding_mode ") + pad_mode_name(o.padding_mode) + " on input " + shape_str(x.shape()) +
                 ": " + e.what());
  }
}

}  // namespace

// conv2d: saves x and weight. dx = conv2d_input_grad(g, w), dw = conv2d_weight_grad(x, g),
// dbias = g summed over batch and space.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opts) {
  require_defined("conv2d", "input", x);
  require_dtype("conv2d", "weight", weight, x.dtype());
  const kernels::ConvGeometry g = conv_geometry("conv2d", x.shape(), weight.shape(), opts);
  if (bias.defined()) {
    require_dtype("conv2d", "bias", bias, x.dtype());
    if (bias.shape() != Shape{g.out_channels})
      fail("conv2d", "bias " + shape_str(bias.shape()) + " must be [" + std::to_string(g.out_channels) +
                         "] for weight " + shape_str(weight.shape()));
  }
  if (pads_by_copy(opts)) return conv2d(pad_input("conv2d", x, opts), weight, bias, without_padding(opts));

  Tensor y = Tensor::empty(output_shape(g), x.dtype());
  kernels::conv2d_forward(x.dtype(), g, x.raw_data(), weight.raw_data(), bias.defined() ? bias.raw_data() : nullptr,
                          y.raw_data());
  const TensorList inputs = bias.defined() ? TensorList{x, weight, bias} : TensorList{x, weight};
  if (auto node = record("conv2d", y, inputs))
    node->backward = [x, weight, opts](const Tensor& g_out, const Node& n) {
      TensorList grads(n.edges.size());
      if (n.needs_grad(0)) grads[0] = conv2d_input_grad(g_out, weight, x.shape(), opts);
      if (n.needs_grad(1)) grads[1] = conv2d_weight_grad(x, g_out, weight.shape(), opts);
      if (n.needs_grad(2)) grads[2] = sum(g_out, {0, 2, 3});
      return grads;
    };
  return y;
}

// conv2d_input_grad: saves grad_out and weight. It is linear in each: d/d(grad_out) is
// conv2d(., weight), d/dweight is conv2d_weight_grad(., grad_out).
Tensor conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape,
                         const Conv2dOptions& opts) {
  const char* op = "conv2d_input_grad";
  require_defined(op, "grad_out", grad_out);
  require_dtype(op, "weight", weight, grad_out.dtype());
  const kernels::ConvGeometry g = conv_geometry(op, x_shape, weight.shape(), opts);
  check_grad_out(op, grad_out, g, x_shape, weight.shape());
  if (pads_by_copy(opts)) {
    // The adjoint of pad-then-convolve is the adjoint of the convolution on the padded
    // shape, then pad's adjoint: pad's own backward, taken here as a vector-Jacobian product.
    const Shape padded_shape{x_shape[0], x_shape[1], x_shape[2] + 2 * opts.padding_h, x_shape[3] + 2 * opts.padding_w};
    const Tensor padded_grad = conv2d_input_grad(grad_out, weight, padded_shape, without_padding(opts));
    const bool keep_graph = grad_enabled() && padded_grad.requires_grad();
    GradModeGuard recording(true);
    const Tensor probe = zeros(x_shape, grad_out.dtype()).requires_grad_();  // pad is linear: values do not matter
    return grad({pad_input(op, probe, opts)}, {probe}, {padded_grad}, {.create_graph = keep_graph})[0];
  }

  Tensor grad_x = Tensor::empty(x_shape, grad_out.dtype());
  kernels::conv2d_input_grad(grad_out.dtype(), g, grad_out.raw_data(), weight.raw_data(), grad_x.raw_data());
  if (auto node = record(op, grad_x, {grad_out, weight}))
    node->backward = [grad_out, weight, opts](const Tensor& gg, const Node& n) {
      return TensorList{n.needs_grad(0) ? conv2d(gg, weight, Tensor(), opts) : Tensor(),
                        n.needs_grad(1) ? conv2d_weight_grad(gg, grad_out, weight.shape(), opts) : Tensor()};
    };
  return grad_x;
}

// conv2d_weight_grad: saves x and grad_out. d/dx is conv2d_input_grad(grad_out, .),
// d/d(grad_out) is conv2d(x, .).
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, const Shape& weight_shape,
                          const Conv2dOptions& opts) {
  const char* op = "conv2d_weight_grad";
  require_defined(op, "input", x);
  require_dtype(op, "grad_out", grad_out, x.dtype());
  const kernels::ConvGeometry g = conv_geometry(op, x.shape(), weight_shape, opts);
  check_grad_out(op, grad_out, g, x.shape(), weight_shape);
  if (pads_by_copy(opts))
    return conv2d_weight_grad(pad_input(op, x, opts), grad_out, weight_shape, without_padding(opts));

  Tensor grad_w = Tensor::empty(weight_shape, x.dtype());
  kernels::conv2d_weight_grad(x.dtype(), g, x.raw_data(), grad_out.raw_data(), grad_w.raw_data());
  if (auto node = record(op, grad_w, {x, grad_out}))
    node->backward = [x, grad_out, opts](const Tensor& gg, const Node& n) {
      return TensorList{n.needs_grad(0) ? conv2d_input_grad(grad_out, gg, x.shape(), opts) : Tensor(),
                        n.needs_grad(1) ? conv2d(x, gg, Tensor(), opts) : Tensor()};
    };
  return grad_w;
}

}  // namespace symgrad
