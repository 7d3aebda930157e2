#pragma once
// ConvBN: a convolution followed by BatchNorm2d, the unit every block of a ResNet is
// made of, in one of two forms:
//   unfolded (training): conv without bias, then BatchNorm2d;
//   folded (inference):  one conv with a bias that computes what the unfolded pair
//                        computes in eval mode (BatchNorm's running statistics, weight
//                        and bias merged into the conv's weight and bias).
// Folding removes the per-channel normalisation that stands between a conv and what it
// writes, so a folded model is a chain of plain linear maps and the block's products;
// that is the form in which a residual stream's GL(n) symmetry holds exactly.
//
// Parameter names: "conv.weight" (and "conv.bias" when folded), "bn.weight", "bn.bias",
// "bn.running_mean", "bn.running_var" (unfolded only).
#include <memory>

#include "nn/layers/batchnorm.hpp"
#include "nn/layers/conv2d.hpp"

namespace symgrad::pde {

class ConvBN : public nn::Module {
 public:
  // conv.bias is ignored: unfolded convs have no bias, folded ones always have one.
  // conv.dtype and bn.dtype: the BatchNorm takes conv.dtype.
  ConvBN(nn::Conv2dConfig conv, bool folded, nn::BatchNormOptions bn = {});

  Tensor forward(const Tensor& x) override;  // folded ? conv(x) : bn(conv(x))
  std::string type_name() const override { return "ConvBN"; }
  std::string extra_repr() const override;  // the conv's, then "folded" when it is

  bool folded() const { return bn == nullptr; }

  // He et al. 2015 with fan_out and the ReLU gain, as torchvision's ResNets initialise
  // their convs; drawn from nn::default_generator().
  void kaiming_fan_out_();
  // Zeroes the scale the unit ends with (BN's weight, or the folded conv's weight), so
  // its output is 0: how a residual branch starts as nothing (Goyal et al. 2017).
  void zero_output_scale_();

  // Makes this (folded) unit compute what `source` (unfolded, same conv geometry)
  // computes in eval mode: with s = gamma / sqrt(running_var + eps),
  //   weight' = s[o] * weight[o, ...],   bias' = beta - s * running_mean.
  // The arithmetic is done in float64 whatever the dtype. Throws (naming both units)
  // when this unit is not folded, source is folded, or the geometries differ.
  void fold_from(const ConvBN& source);

  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;  // null when folded
};

// A square kernel x kernel unit with padding kernel / 2 (the output keeps the input's size
// at stride 1): the shape of every conv in the ResNets of pde/. Weights as Conv2d's
// constructor draws them; call kaiming_fan_out_() for the ResNet initialisation.
std::shared_ptr<ConvBN> square_conv_bn(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel,
                                       std::int64_t stride, std::int64_t groups, PadMode padding_mode, bool folded,
                                       const nn::BatchNormOptions& bn, DType dtype);

}  // namespace symgrad::pde
