#include "nn/layers/flatten.hpp"

#include <stdexcept>
#include <string>

namespace symgrad::nn {

Flatten::Flatten(std::int64_t start_axis) : start_axis_(start_axis) {}

std::string Flatten::extra_repr() const { return "start_axis " + std::to_string(start_axis_); }

Tensor Flatten::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("Flatten(" + extra_repr() + "): the input is undefined");
  const std::int64_t axis = start_axis_ < 0 ? start_axis_ + x.dim() : start_axis_;
  if (axis < 0 || axis >= x.dim())
    throw std::invalid_argument("Flatten(" + extra_repr() + "): input " + shape_str(x.shape()) + " has " +
                                std::to_string(x.dim()) + " axes, so it has no axis " + std::to_string(start_axis_) +
                                " to flatten from");
  return flatten(x, axis, -1);
}

}  // namespace symgrad::nn
