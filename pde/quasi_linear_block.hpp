#pragma once
// The quasi-linear hyperbolic block of Liu, Shao & Bai (2023, arXiv 2308.01621): one
// forward-Euler step of u_t = sum_i A_i(u) d_i u with A_i linear in u. With x [N, in, H, W]
// and w = k * in the working width:
//
//   a  = BN(conv1x1(x))                    in -> 2w, no bias
//   p  = a[:, :w] * a[:, w:]               the quadratic coupling: channel c times c + w,
//                                          the "A(u) d u" term (product rule)
//   d  = BN(depthwise3x3(p))               w -> 2w, groups w (channel multiplier 2),
//                                          stride s, padding 1 in padding_mode
//   d  = d * C(coordinates)                only with variable coefficients (below)
//   y  = BN(conv1x1(d))                    2w -> out, no bias; its BN weight starts at 0,
//                                          so the block starts as the identity
//   x0 = x, or BN(conv1x1 stride s (x))    projection skip when s > 1 or out != in
//   out = x0 + y, then hardball(out, r)    hardball only on blocks that change shape
//                                          (r = sqrt(out) unless given)
//
// No elementwise activation touches the stream (the residual path is x0 + y), which is
// what gives the network its continuous symmetry (docs/pde.md).
//
// Variable coefficients (from the paper's repository): the coordinate maps
// X = 2j/(W-1) - 1, Y = 2i/(H-1) - 1 of the depthwise output's grid, stacked as
// [X, Y, X^2, XY, Y^2], go through a 1x1 conv with bias (5 -> 2w) and multiply d
// channel by channel. That lets the stencils express rotation (-y d_x + x d_y) and
// dilation (x d_x + y d_y). The coefficient conv starts with weight 0 and bias 1, so a
// fresh block computes what the constant-coefficient block computes. It multiplies after
// the depthwise conv's BN, so folding that BN into the depthwise conv stays exact.
//
// Children (and so parameter names): "conv1", "depthwise", "conv3" (ConvBN units),
// "coefficients" (Conv2d, only with variable coefficients), "skip" (ConvBN, only with a
// projection skip), "ball" (Hardball, only when present).
#include <cstdint>
#include <memory>

#include "nn/layers/batchnorm.hpp"
#include "nn/layers/conv2d.hpp"
#include "pde/conv_bn.hpp"
#include "pde/hardball.hpp"

namespace symgrad::pde {

struct QuasiLinearBlockConfig {
  std::int64_t in_channels = 0;
  std::int64_t out_channels = 0;  // 0: equal to in_channels
  std::int64_t stride = 1;        // of the depthwise conv and the projection skip
  std::int64_t width_factor = 0;  // k in w = k * in; 0: the paper's rule, 4 if in <= 128 else 2
  PadMode padding_mode = PadMode::zeros;  // the boundary condition of the depthwise stencil
  bool variable_coefficients = false;
  bool hardball = true;         // on blocks that change shape (stride > 1 or out != in)
  double hardball_radius = 0;   // 0: sqrt(out_channels)
  bool zero_init_last_bn = true;
  bool folded = false;          // ConvBN units in folded form (fold_bn.hpp makes them)
  nn::BatchNormOptions batch_norm;  // eps and momentum; the dtype comes from `dtype`
  DType dtype = DType::f32;
};

// The paper's width rule: k = 4 if in_channels <= 128 else 2.
std::int64_t default_width_factor(std::int64_t in_channels);

// [1, 5, H, W]: the channels X, Y, X^2, XY, Y^2 on an H x W grid (X = 0 when W = 1,
// Y = 0 when H = 1).
Tensor coordinate_field(std::int64_t height, std::int64_t width, DType dtype);

class QuasiLinearBlock : public nn::Module {
 public:
  // Convolutions start as kaiming_normal_ with mode fan_out (gain for ReLU), drawn from
  // nn::default_generator() in the order conv1, depthwise, conv3, skip.
  explicit QuasiLinearBlock(const QuasiLinearBlockConfig& config);

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "QuasiLinearBlock"; }
  std::string extra_repr() const override;  // "16 -> 32, w 64, stride 2, hardball r 5.657, ..."

  const QuasiLinearBlockConfig& config() const { return config_; }
  std::int64_t in_channels() const { return config_.in_channels; }
  std::int64_t out_channels() const { return out_; }
  std::int64_t width() const { return width_; }  // w
  bool has_projection() const { return skip != nullptr; }
  bool has_hardball() const { return ball != nullptr; }

  std::shared_ptr<ConvBN> conv1, depthwise, conv3, skip;  // skip null for identity skips
  std::shared_ptr<nn::Conv2d> coefficients;               // null without variable coefficients
  std::shared_ptr<Hardball> ball;                         // null without a hardball

 private:
  QuasiLinearBlockConfig config_;
  std::int64_t out_ = 0;
  std::int64_t width_ = 0;
};

}  // namespace symgrad::pde
