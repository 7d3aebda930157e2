#include "pde/conv_bn.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/init.hpp"

namespace symgrad::pde {
namespace {

// "ConvBN(16 -> 32, kernel 1x1, ...)": how errors name a unit.
std::string describe(const ConvBN& unit) { return "ConvBN(" + unit.extra_repr() + ")"; }

bool same_geometry(const nn::Conv2dConfig& a, const nn::Conv2dConfig& b) {
  return a.in_channels == b.in_channels && a.out_channels == b.out_channels && a.kernel_h == b.kernel_h &&
         a.kernel_w == b.kernel_w && a.stride_h == b.stride_h && a.stride_w == b.stride_w &&
         a.padding_h == b.padding_h && a.padding_w == b.padding_w && a.dilation_h == b.dilation_h &&
         a.dilation_w == b.dilation_w && a.groups == b.groups && a.padding_mode == b.padding_mode;
}

}  // namespace

ConvBN::ConvBN(nn::Conv2dConfig conv_config, bool folded, nn::BatchNormOptions bn_options) {
  // The BN's shift makes a bias before it redundant; folding puts one back.
  conv_config.bias = folded;
  conv = register_module("conv", std::make_shared<nn::Conv2d>(conv_config));
  if (folded) {
    // What a fresh BatchNorm (weight 1, bias 0, running mean 0) folds into: no shift.
    nn::zeros_(conv->bias);
    return;
  }
  bn_options.dtype = conv_config.dtype;
  bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(conv_config.out_channels, bn_options));
}

Tensor ConvBN::forward(const Tensor& x) {
  Tensor y = conv->forward(x);
  return folded() ? y : bn->forward(y);
}

std::string ConvBN::extra_repr() const {
  std::string s = conv->extra_repr();
  if (folded()) s += ", folded";
  return s;
}

// Eval-mode BN is y = gamma (z - mean) / sqrt(var + eps) + beta, an affine map per output
// channel o of z = conv(x); with s = gamma / sqrt(var + eps) it is conv with weight s w[o]
// and bias beta - s mean. Computed in float64 so that a float64 model folds to 1e-12.
void ConvBN::fold_from(const ConvBN& source) {
  const std::string who = "ConvBN::fold_from: ";
  if (folded() == false)
    throw std::invalid_argument(who + "the target " + describe(*this) + " is not folded");
  if (source.folded())
    throw std::invalid_argument(who + "the source " + describe(source) + " is already folded");
  if (!same_geometry(conv->config(), source.conv->config()))
    throw std::invalid_argument(who + "the source " + describe(source) + " and the target " + describe(*this) +
                                " have different convolutions");
  const nn::BatchNorm2d& norm = *source.bn;
  if (!norm.running_mean.defined())
    throw std::invalid_argument(who + "the source " + describe(source) +
                                " keeps no running statistics (track_running_stats off), so its eval mode "
                                "normalises with batch statistics and is not an affine map");

  const std::int64_t channels = source.conv->config().out_channels;
  const std::vector<double> mean = norm.running_mean.to_vector();
  const std::vector<double> var = norm.running_var.to_vector();
  const std::vector<double> gamma = norm.weight.defined() ? norm.weight.to_vector() : std::vector<double>(channels, 1.0);
  const std::vector<double> beta = norm.bias.defined() ? norm.bias.to_vector() : std::vector<double>(channels, 0.0);
  std::vector<double> weight = source.conv->weight.to_vector();
  std::vector<double> bias(static_cast<std::size_t>(channels));

  const std::size_t per_channel = weight.size() / static_cast<std::size_t>(channels);
  const double eps = norm.options().eps;
  for (std::size_t o = 0; o < static_cast<std::size_t>(channels); ++o) {
    const double scale = gamma[o] / std::sqrt(var[o] + eps);
    for (std::size_t i = 0; i < per_channel; ++i) weight[o * per_channel + i] *= scale;
    bias[o] = beta[o] - scale * mean[o];
  }

  NoGradGuard no_grad;
  copy_(conv->weight, from_vector(weight, conv->weight.shape(), DType::f64));
  copy_(conv->bias, from_vector(bias, conv->bias.shape(), DType::f64));
}

void ConvBN::kaiming_fan_out_() {
  nn::kaiming_normal_(conv->weight, 0.0, nn::FanMode::fan_out, nn::Nonlinearity::relu);
}

void ConvBN::zero_output_scale_() { nn::zeros_(folded() ? conv->weight : bn->weight); }

std::shared_ptr<ConvBN> square_conv_bn(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel,
                                       std::int64_t stride, std::int64_t groups, PadMode padding_mode, bool folded,
                                       const nn::BatchNormOptions& bn, DType dtype) {
  const nn::Conv2dConfig conv{.in_channels = in_channels,
                              .out_channels = out_channels,
                              .kernel_h = kernel,
                              .kernel_w = kernel,
                              .stride_h = stride,
                              .stride_w = stride,
                              .padding_h = kernel / 2,
                              .padding_w = kernel / 2,
                              .groups = groups,
                              .padding_mode = padding_mode,
                              .dtype = dtype};
  return std::make_shared<ConvBN>(conv, folded, bn);
}

}  // namespace symgrad::pde
