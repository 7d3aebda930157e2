#pragma once
// Flatten: merges the axes from start_axis to the last into one, e.g. the [N, C, H, W]
// output of a convolution into the [N, C * H * W] rows a Linear takes.
#include <cstdint>

#include "nn/module.hpp"

namespace symgrad::nn {

class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_axis = 1);  // negative counts from the end
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;  // "start_axis 1"
  std::int64_t start_axis() const { return start_axis_; }

 private:
  std::int64_t start_axis_;
};

}  // namespace symgrad::nn
