#include "nn/layers/conv2d.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "nn/init.hpp"

namespace symgrad::nn {
namespace {

// "3" for a square pair, "3x1" otherwise.
std::string pair_str(std::int64_t h, std::int64_t w) {
  return h == w ? std::to_string(h) : std::to_string(h) + "x" + std::to_string(w);
}

void check_config(const Conv2dConfig& c, const std::string& layer) {
  auto fail = [&](const std::string& message) { throw std::invalid_argument(layer + ": " + message); };
  if (c.in_channels <= 0 || c.out_channels <= 0) fail("the channel counts must be positive");
  if (c.kernel_h <= 0 || c.kernel_w <= 0)
    fail("kernel " + std::to_string(c.kernel_h) + "x" + std::to_string(c.kernel_w) + " must be positive");
  if (c.stride_h <= 0 || c.stride_w <= 0) fail("stride " + pair_str(c.stride_h, c.stride_w) + " must be positive");
  if (c.padding_h < 0 || c.padding_w < 0)
    fail("padding " + pair_str(c.padding_h, c.padding_w) + " must be non-negative");
  if (c.dilation_h <= 0 || c.dilation_w <= 0)
    fail("dilation " + pair_str(c.dilation_h, c.dilation_w) + " must be positive");
  if (c.groups <= 0) fail("groups " + std::to_string(c.groups) + " must be positive");
  if (c.in_channels % c.groups != 0 || c.out_channels % c.groups != 0)
    fail("groups " + std::to_string(c.groups) + " must divide both in_channels " + std::to_string(c.in_channels) +
         " and out_channels " + std::to_string(c.out_channels));
}

}  // namespace

Conv2d::Conv2d(const Conv2dConfig& config) : config_(config) {
  const std::string layer = "Conv2d(" + std::to_string(config.in_channels) + " -> " +
                            std::to_string(config.out_channels) + ")";
  check_config(config, layer);
  weight = Tensor::empty({config.out_channels, config.in_channels / config.groups, config.kernel_h, config.kernel_w},
                         config.dtype);
  // As in Linear: slope sqrt 5 gives the bound 1 / sqrt(fan_in), PyTorch's default.
  kaiming_uniform_(weight, std::sqrt(5.0));
  weight = register_parameter("weight", weight);
  if (config.bias) {
    bias = Tensor::empty({config.out_channels}, config.dtype);
    const double bound = 1.0 / std::sqrt(static_cast<double>(calculate_fans(weight).fan_in));
    uniform_(bias, -bound, bound);
    bias = register_parameter("bias", bias);
  }
}

Conv2dOptions Conv2d::options() const {
  Conv2dOptions o;
  o.stride_h = config_.stride_h;
  o.stride_w = config_.stride_w;
  o.padding_h = config_.padding_h;
  o.padding_w = config_.padding_w;
  o.dilation_h = config_.dilation_h;
  o.dilation_w = config_.dilation_w;
  o.groups = config_.groups;
  o.padding_mode = config_.padding_mode;
  return o;
}

std::string Conv2d::extra_repr() const {
  const Conv2dConfig& c = config_;
  std::string s = std::to_string(c.in_channels) + " -> " + std::to_string(c.out_channels) + ", kernel " +
                  std::to_string(c.kernel_h) + "x" + std::to_string(c.kernel_w) + ", stride " +
                  pair_str(c.stride_h, c.stride_w) + ", padding " + pair_str(c.padding_h, c.padding_w) + " (" +
                  pad_mode_name(c.padding_mode) + ")";
  if (c.dilation_h != 1 || c.dilation_w != 1) s += ", dilation " + pair_str(c.dilation_h, c.dilation_w);
  if (c.groups != 1) s += ", groups " + std::to_string(c.groups);
  if (!c.bias) s += ", no bias";
  return s;
}

Tensor Conv2d::forward(const Tensor& x) {
  const std::string layer = "Conv2d(" + extra_repr() + ")";
  if (!x.defined()) throw std::invalid_argument(layer + ": the input is undefined");
  if (x.dim() != 4)
    throw std::invalid_argument(layer + ": input " + shape_str(x.shape()) + " must be 4-D [N, " +
                                std::to_string(config_.in_channels) + ", H, W]");
  if (x.size(1) != config_.in_channels)
    throw std::invalid_argument(layer + ": input " + shape_str(x.shape()) + " has " + std::to_string(x.size(1)) +
                                " channels, expected " + std::to_string(config_.in_channels));
  if (x.dtype() != weight.dtype())
    throw std::invalid_argument(layer + ": input " + shape_str(x.shape()) + " is " + dtype_name(x.dtype()) +
                                " but the layer is " + dtype_name(weight.dtype()) +
                                "; convert one with to_dtype or Module::to");
  // What is left to go wrong is the image size (too small for the kernel, or for a
  // reflect padding); conv2d says which, and the layer says whose.
  try {
    return conv2d(x, weight, bias, options());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(layer + ": " + e.what());
  }
}

}  // namespace symgrad::nn
