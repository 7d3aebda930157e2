#include "pde/basic_block.hpp"

#include <stdexcept>
#include <string>

#include "nn/init.hpp"

namespace symgrad::pde {
namespace {

void check_config(const BasicBlockConfig& c) {
  auto fail = [](const std::string& message) { throw std::invalid_argument("BasicBlock: " + message); };
  if (c.in_channels <= 0) fail("in_channels " + std::to_string(c.in_channels) + " must be positive");
  if (c.out_channels < 0) fail("out_channels " + std::to_string(c.out_channels) + " must be positive (or 0: in_channels)");
  if (c.stride <= 0) fail("stride " + std::to_string(c.stride) + " must be positive");
}

// A square ConvBN of the block, He-initialised as soon as it is built.
std::shared_ptr<ConvBN> make_conv_bn(const BasicBlockConfig& c, std::int64_t in, std::int64_t out,
                                     std::int64_t kernel, std::int64_t stride) {
  auto unit = square_conv_bn(in, out, kernel, stride, 1, c.padding_mode, c.folded, c.batch_norm, c.dtype);
  unit->kaiming_fan_out_();
  return unit;
}

}  // namespace

BasicBlock::BasicBlock(const BasicBlockConfig& config) : config_(config) {
  check_config(config);
  const std::int64_t in = config.in_channels;
  const std::int64_t out = config.out_channels > 0 ? config.out_channels : in;
  config_.out_channels = out;
  conv1 = register_module("conv1", make_conv_bn(config, in, out, 3, config.stride));
  conv2 = register_module("conv2", make_conv_bn(config, out, out, 3, 1));
  if (config.stride > 1 || out != in) skip = register_module("skip", make_conv_bn(config, in, out, 1, config.stride));
  // The residual branch starts at 0, so a fresh block is relu(x0) (Goyal et al. 2017).
  if (config.zero_init_last_bn) conv2->zero_output_scale_();
}

Tensor BasicBlock::forward(const Tensor& x) {
  auto fail = [&](const std::string& problem) {
    throw std::invalid_argument("BasicBlock(" + extra_repr() + "): " + problem);
  };
  if (!x.defined()) fail("the input is undefined");
  if (x.dim() != 4)
    fail("input " + shape_str(x.shape()) + " must be 4-D [N, " + std::to_string(config_.in_channels) + ", H, W]");
  if (x.size(1) != config_.in_channels)
    fail("input " + shape_str(x.shape()) + " has " + std::to_string(x.size(1)) + " channels, expected " +
         std::to_string(config_.in_channels));
  const DType dtype = conv1->conv->weight.dtype();
  if (x.dtype() != dtype)
    fail("input " + shape_str(x.shape()) + " is " + dtype_name(x.dtype()) + " but the block is " +
         dtype_name(dtype) + "; convert one with to_dtype or Module::to");

  const Tensor y = conv2->forward(relu(conv1->forward(x)));
  return relu(add(skip ? skip->forward(x) : x, y));
}

std::string BasicBlock::extra_repr() const {
  std::string s = std::to_string(config_.in_channels) + " -> " + std::to_string(config_.out_channels) +
                  ", stride " + std::to_string(config_.stride);
  if (config_.padding_mode != PadMode::zeros) s += ", padding " + std::string(pad_mode_name(config_.padding_mode));
  if (conv1->folded()) s += ", folded";
  return s;
}

}  // namespace symgrad::pde
