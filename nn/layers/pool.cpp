#include "nn/layers/pool.hpp"

#include <stdexcept>
#include <string>

namespace symgrad::nn {
namespace {

void require_image(const Tensor& x, const std::string& layer) {
  if (!x.defined()) throw std::invalid_argument(layer + ": the input is undefined");
  if (x.dim() != 4)
    throw std::invalid_argument(layer + ": input " + shape_str(x.shape()) + " must be 4-D [N, C, H, W]");
}

}  // namespace

Pool2dBase::Pool2dBase(const char* name, std::int64_t kernel, std::optional<std::int64_t> stride,
                       std::int64_t padding)
    : kernel_(kernel), stride_(stride.value_or(kernel)), padding_(padding) {
  auto fail = [&](const std::string& message) { throw std::invalid_argument(std::string(name) + ": " + message); };
  if (kernel <= 0) fail("kernel " + std::to_string(kernel) + " must be positive");
  if (stride_ <= 0) fail("stride " + std::to_string(stride_) + " must be positive");
  // A window made only of padding would have no value to pool.
  if (padding < 0 || 2 * padding > kernel)
    fail("padding " + std::to_string(padding) + " must be between 0 and half the kernel " + std::to_string(kernel));
}

std::string Pool2dBase::extra_repr() const {
  return "kernel " + std::to_string(kernel_) + ", stride " + std::to_string(stride_) + ", padding " +
         std::to_string(padding_);
}

Tensor Pool2dBase::apply(const Tensor& x, Tensor (*pool)(const Tensor&, const Pool2dOptions&)) const {
  const std::string layer = type_name() + "(" + extra_repr() + ")";
  require_image(x, layer);
  Pool2dOptions o;
  o.kernel_h = o.kernel_w = kernel_;
  o.stride_h = o.stride_w = stride_;
  o.padding_h = o.padding_w = padding_;
  // Left for the op to find: an image smaller than the window.
  try {
    return pool(x, o);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(layer + ": " + e.what());
  }
}

MaxPool2d::MaxPool2d(std::int64_t kernel, std::optional<std::int64_t> stride, std::int64_t padding)
    : Pool2dBase("MaxPool2d", kernel, stride, padding) {}
Tensor MaxPool2d::forward(const Tensor& x) { return apply(x, max_pool2d); }

AvgPool2d::AvgPool2d(std::int64_t kernel, std::optional<std::int64_t> stride, std::int64_t padding)
    : Pool2dBase("AvgPool2d", kernel, stride, padding) {}
Tensor AvgPool2d::forward(const Tensor& x) { return apply(x, avg_pool2d); }

Tensor GlobalAvgPool2d::forward(const Tensor& x) {
  require_image(x, "GlobalAvgPool2d");
  if (x.size(2) == 0 || x.size(3) == 0)
    throw std::invalid_argument("GlobalAvgPool2d: input " + shape_str(x.shape()) + " has no pixels to average");
  return mean(x, {2, 3});
}

}  // namespace symgrad::nn
