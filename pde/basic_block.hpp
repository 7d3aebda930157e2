#pragma once
// The ResNet BasicBlock (He et al. 2016), the ReLU baseline the quasi-linear block is
// compared with:  out = relu(x0 + BN(conv3x3(relu(BN(conv3x3 stride s (x)))))),
// x0 = x or a projection BN(conv1x1 stride s (x)) when the shape changes. The second BN's
// weight starts at 0 (as for the quasi-linear block), so a fresh block is relu(x0).
//
// Children: "conv1", "conv2", "skip" (only with a projection), all ConvBN units.
#include <cstdint>
#include <memory>

#include "pde/conv_bn.hpp"

namespace symgrad::pde {

struct BasicBlockConfig {
  std::int64_t in_channels = 0;
  std::int64_t out_channels = 0;  // 0: equal to in_channels
  std::int64_t stride = 1;
  PadMode padding_mode = PadMode::zeros;
  bool zero_init_last_bn = true;
  bool folded = false;
  nn::BatchNormOptions batch_norm;
  DType dtype = DType::f32;
};

class BasicBlock : public nn::Module {
 public:
  explicit BasicBlock(const BasicBlockConfig& config);  // kaiming_normal_ fan_out convs
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }
  std::string extra_repr() const override;

  const BasicBlockConfig& config() const { return config_; }

  std::shared_ptr<ConvBN> conv1, conv2, skip;  // skip null for identity skips

 private:
  BasicBlockConfig config_;
};

}  // namespace symgrad::pde
