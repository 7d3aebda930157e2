#pragma once
// Pooling layers over [N, C, H, W] images, with square windows.
#include <cstdint>
#include <optional>

#include "nn/module.hpp"

namespace symgrad::nn {

// Shared by the two windowed pools: the window, its stride (the window size unless
// given, as PyTorch) and the padding on every side (at most half the window).
class Pool2dBase : public Module {
 public:
  std::string extra_repr() const override;  // "kernel 2, stride 2, padding 0"
  std::int64_t kernel() const { return kernel_; }
  std::int64_t stride() const { return stride_; }
  std::int64_t padding() const { return padding_; }

 protected:
  Pool2dBase(const char* name, std::int64_t kernel, std::optional<std::int64_t> stride, std::int64_t padding);
  // Checks x and calls pool(x, options), naming the layer in any complaint.
  Tensor apply(const Tensor& x, Tensor (*pool)(const Tensor&, const Pool2dOptions&)) const;

 private:
  std::int64_t kernel_, stride_, padding_;
};

// The largest value of each window; padding never wins (as PyTorch's -inf padding).
class MaxPool2d : public Pool2dBase {
 public:
  explicit MaxPool2d(std::int64_t kernel, std::optional<std::int64_t> stride = std::nullopt,
                     std::int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
};

// The mean of each window, padding counted as zeros (PyTorch's count_include_pad=True).
class AvgPool2d : public Pool2dBase {
 public:
  explicit AvgPool2d(std::int64_t kernel, std::optional<std::int64_t> stride = std::nullopt,
                     std::int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
};

// [N, C, H, W] -> [N, C]: the mean of each channel's image, ready for a Linear
// (PyTorch's AdaptiveAvgPool2d(1) followed by a flatten).
class GlobalAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GlobalAvgPool2d"; }
};

}  // namespace symgrad::nn
