#pragma once
// Conv2d: 2-D convolution over [N, C, H, W] images, with the boundary condition of
// PyTorch's padding_mode, dilation and groups (groups == in_channels with
// out_channels == k * in_channels is a depthwise convolution with channel multiplier k).
#include <cstdint>

#include "nn/module.hpp"

namespace symgrad::nn {

// Designated initialisers read well here:
//   Conv2d({.in_channels = 1, .out_channels = 32, .kernel_h = 3, .kernel_w = 3,
//           .padding_h = 1, .padding_w = 1})
struct Conv2dConfig {
  std::int64_t in_channels = 0, out_channels = 0;
  std::int64_t kernel_h = 0, kernel_w = 0;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t padding_h = 0, padding_w = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t groups = 1;
  bool bias = true;
  PadMode padding_mode = PadMode::zeros;
  DType dtype = DType::f32;  // of the parameters as built (Module::to may change it later)
};

class Conv2d : public Module {
 public:
  // weight [out, in / groups, kh, kw] and bias [out] start as PyTorch's: kaiming_uniform_
  // with negative_slope sqrt 5 and bias uniform on +-1/sqrt(fan_in), fan_in =
  // in / groups * kh * kw, drawn from default_generator().
  explicit Conv2d(const Conv2dConfig& config);

  // x [N, in_channels, H, W] -> [N, out_channels, H_out, W_out].
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  // "1 -> 32, kernel 3x3, stride 1, padding 1 (zeros)", then dilation, groups and
  // "no bias" when they differ from the defaults.
  std::string extra_repr() const override;

  const Conv2dConfig& config() const { return config_; }
  Conv2dOptions options() const;  // what forward hands to conv2d

  Tensor weight, bias;  // bias is undefined when off

 private:
  Conv2dConfig config_;
};

}  // namespace symgrad::nn
