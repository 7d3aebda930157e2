#include "pde/quasi_linear_block.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/init.hpp"

namespace symgrad::pde {
namespace {

void check_config(const QuasiLinearBlockConfig& c) {
  auto fail = [](const std::string& message) { throw std::invalid_argument("QuasiLinearBlock: " + message); };
  if (c.in_channels <= 0) fail("in_channels " + std::to_string(c.in_channels) + " must be positive");
  if (c.out_channels < 0) fail("out_channels " + std::to_string(c.out_channels) + " must be positive (or 0: in_channels)");
  if (c.stride <= 0) fail("stride " + std::to_string(c.stride) + " must be positive");
  if (c.width_factor < 0)
    fail("width_factor " + std::to_string(c.width_factor) + " must be positive (or 0: the paper's rule)");
  if (!(c.hardball_radius >= 0) || !std::isfinite(c.hardball_radius))
    fail("hardball_radius " + std::to_string(c.hardball_radius) + " must be positive (or 0: sqrt(out_channels))");
}

// A 1x1 or 3x3 ConvBN of the block; every conv of the block is square with unit dilation.
std::shared_ptr<ConvBN> make_conv_bn(const QuasiLinearBlockConfig& c, std::int64_t in, std::int64_t out,
                                     std::int64_t kernel, std::int64_t stride, std::int64_t groups) {
  return square_conv_bn(in, out, kernel, stride, groups, c.padding_mode, c.folded, c.batch_norm, c.dtype);
}

}  // namespace

std::int64_t default_width_factor(std::int64_t in_channels) {
  if (in_channels <= 0)
    throw std::invalid_argument("default_width_factor: in_channels " + std::to_string(in_channels) +
                                " must be positive");
  return in_channels <= 128 ? 4 : 2;
}

Tensor coordinate_field(std::int64_t height, std::int64_t width, DType dtype) {
  if (height <= 0 || width <= 0)
    throw std::invalid_argument("coordinate_field: the grid " + std::to_string(height) + "x" + std::to_string(width) +
                                " must have positive sizes");
  // Maps index 0 .. size-1 onto [-1, 1]; a single row or column sits at 0.
  auto unit_coordinate = [](std::int64_t index, std::int64_t size) {
    return size == 1 ? 0.0 : 2.0 * static_cast<double>(index) / static_cast<double>(size - 1) - 1.0;
  };
  const std::int64_t plane = height * width;
  std::vector<double> values(static_cast<std::size_t>(5 * plane));
  for (std::int64_t i = 0; i < height; ++i) {
    const double y = unit_coordinate(i, height);
    for (std::int64_t j = 0; j < width; ++j) {
      const double x = unit_coordinate(j, width);
      const std::int64_t at = i * width + j;
      const double channels[5] = {x, y, x * x, x * y, y * y};
      for (std::int64_t c = 0; c < 5; ++c) values[static_cast<std::size_t>(c * plane + at)] = channels[c];
    }
  }
  return from_vector(values, {1, 5, height, width}, dtype);
}

QuasiLinearBlock::QuasiLinearBlock(const QuasiLinearBlockConfig& config) : config_(config) {
  check_config(config);
  const std::int64_t in = config.in_channels;
  const std::int64_t k = config.width_factor > 0 ? config.width_factor : default_width_factor(in);
  out_ = config.out_channels > 0 ? config.out_channels : in;
  width_ = k * in;
  const std::int64_t w = width_;
  const bool projection = config.stride > 1 || out_ != in;

  conv1 = register_module("conv1", make_conv_bn(config, in, 2 * w, 1, 1, 1));
  depthwise = register_module("depthwise", make_conv_bn(config, w, 2 * w, 3, config.stride, w));
  if (config.variable_coefficients) {
    coefficients = register_module(
        "coefficients", std::make_shared<nn::Conv2d>(nn::Conv2dConfig{
                            .in_channels = 5, .out_channels = 2 * w, .kernel_h = 1, .kernel_w = 1, .dtype = config.dtype}));
    // Constant coefficients 1 at first: a fresh block computes the constant-coefficient step.
    nn::zeros_(coefficients->weight);
    nn::ones_(coefficients->bias);
  }
  conv3 = register_module("conv3", make_conv_bn(config, 2 * w, out_, 1, 1, 1));
  if (projection) skip = register_module("skip", make_conv_bn(config, in, out_, 1, config.stride, 1));
  if (projection && config.hardball) {
    const double radius =
        config.hardball_radius > 0 ? config.hardball_radius : std::sqrt(static_cast<double>(out_));
    ball = register_module("ball", std::make_shared<Hardball>(radius));
  }

  conv1->kaiming_fan_out_();
  depthwise->kaiming_fan_out_();
  conv3->kaiming_fan_out_();
  if (skip) skip->kaiming_fan_out_();
  // y = 0 at first, so the block starts as x0 (Goyal et al. 2017's zero-init residual).
  if (config.zero_init_last_bn) conv3->zero_output_scale_();
}

Tensor QuasiLinearBlock::forward(const Tensor& x) {
  // The message is built only on failure: forward runs every training step.
  auto fail = [&](const std::string& problem) {
    throw std::invalid_argument("QuasiLinearBlock(" + extra_repr() + "): " + problem);
  };
  if (!x.defined()) fail("the input is undefined");
  if (x.dim() != 4)
    fail("input " + shape_str(x.shape()) + " must be 4-D [N, " + std::to_string(in_channels()) + ", H, W]");
  if (x.size(1) != in_channels())
    fail("input " + shape_str(x.shape()) + " has " + std::to_string(x.size(1)) + " channels, expected " +
         std::to_string(in_channels()));
  const DType dtype = conv1->conv->weight.dtype();
  if (x.dtype() != dtype)
    fail("input " + shape_str(x.shape()) + " is " + dtype_name(x.dtype()) + " but the block is " +
         dtype_name(dtype) + "; convert one with to_dtype or Module::to");

  const std::int64_t w = width_;
  const Tensor a = conv1->forward(x);
  // The quasi-linear coupling A(u) du: channel c times channel c + w.
  const Tensor p = mul(narrow(a, 1, 0, w), narrow(a, 1, w, w));
  Tensor d = depthwise->forward(p);
  if (coefficients) d = mul(d, coefficients->forward(coordinate_field(d.size(2), d.size(3), dtype)));
  const Tensor y = conv3->forward(d);
  Tensor out = add(skip ? skip->forward(x) : x, y);
  if (ball) out = ball->forward(out);
  return out;
}

std::string QuasiLinearBlock::extra_repr() const {
  std::ostringstream s;
  s.precision(4);
  s << in_channels() << " -> " << out_ << ", w " << width_ << ", stride " << config_.stride;
  if (ball) s << ", hardball r " << ball->radius();
  if (coefficients) s << ", variable coefficients";
  if (config_.padding_mode != PadMode::zeros) s << ", padding " << pad_mode_name(config_.padding_mode);
  if (conv1->folded()) s << ", folded";
  return s.str();
}

}  // namespace symgrad::pde
