// Reductions over sets of axes. Each forward reduces runs of adjacent axes with one
// kernel call over an [outer, n, inner] view; each backward broadcasts the gradient
// back over the reduced axes.
#include "engine/ops/reduce.hpp"

#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/creation.hpp"
#include "engine/kernels/elementwise.hpp"
#include "engine/ops/binary.hpp"
#include "engine/ops/shape_ops.hpp"
#include "engine/ops/unary.hpp"

namespace symgrad {
namespace {

// Reduces the (sorted, normalised) axes of x, keeping them as size-1 dimensions.
Tensor reduce_keepdim(kernels::Reduce kind, const Tensor& x, const std::vector<std::int64_t>& axes) {
  Tensor cur = x;
  Shape shape = x.shape();
  // Walk runs of adjacent axes from the last one backwards; each run is one kernel call.
  std::size_t i = axes.size();
  while (i > 0) {
    std::size_t j = i - 1;
    while (j > 0 && axes[j - 1] == axes[j] - 1) --j;
    const std::int64_t first = axes[j], last = axes[i - 1];
    std::int64_t outer = 1, n = 1, inner = 1;
    for (std::int64_t d = 0; d < first; ++d) outer *= shape[d];
    for (std::int64_t d = first; d <= last; ++d) n *= shape[d];
    for (std::int64_t d = last + 1; d < static_cast<std::int64_t>(shape.size()); ++d) inner *= shape[d];
    for (std::int64_t d = first; d <= last; ++d) shape[d] = 1;
    Tensor next = Tensor::empty(shape, x.dtype());
    kernels::reduce(kind, x.dtype(), cur.raw_data(), next.raw_data(), outer, n, inner);
    cur = next;
    i = j;
  }
  return cur.impl() == x.impl() ? x.detach() : cur;
}

std::vector<std::int64_t> checked_axes(const char* op, const Tensor& x, const Axes& axes) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
  try {
    return normalize_axes(axes, x.dim(), op);
  } catch (const std::invalid_argument& e) {
    // normalize_axes only knows the rank; the reader also wants the shape.
    throw std::invalid_argument(std::string(e.what()) + " (input shape " + shape_str(x.shape()) + ")");
  }
}

std::int64_t count_over(const Shape& s, const std::vector<std::int64_t>& axes) {
  std::int64_t n = 1;
  for (auto a : axes) n *= s[a];
  return n;
}

// The gradient of a reduction, brought back to x's shape by broadcasting.
Tensor expand_back(const Tensor& g, const Shape& keep_shape, const Shape& x_shape) {
  return expand(reshape(g, keep_shape), x_shape);
}

}  // namespace

// sum: saves nothing but shapes.
Tensor sum(const Tensor& x, const Axes& axes_in, bool keepdim) {
  const auto axes = checked_axes("sum", x, axes_in);
  Tensor kept = reduce_keepdim(kernels::Reduce::sum, x, axes);
  const Shape keep_shape = kept.shape();
  Tensor out = keepdim ? kept : reshape(kept.detach(), reduced_shape(x.shape(), axes, false));
  if (auto node = record("sum", out, {x}))
    node->backward = [keep_shape, x_shape = x.shape()](const Tensor& g, const Node&) {
      return TensorList{expand_back(g, keep_shape, x_shape)};
    };
  return out;
}

// mean: a sum scaled by 1/count (composite, so its backward comes for free).
Tensor mean(const Tensor& x, const Axes& axes_in, bool keepdim) {
  const auto axes = checked_axes("mean", x, axes_in);
  const std::int64_t n = count_over(x.shape(), axes);
  if (n == 0)
    throw std::invalid_argument("mean: reducing over zero elements (shape " + shape_str(x.shape()) + ")");
  return sum(x, axes, keepdim) * (1.0 / static_cast<double>(n));
}

// max / min: save x and the result; the gradient is shared among the elements that
// attain the extremum (the mask is a constant).
namespace {
Tensor extremum(kernels::Reduce kind, const char* op, const Tensor& x, const Axes& axes_in, bool keepdim) {
  const auto axes = checked_axes(op, x, axes_in);
  for (auto a : axes)
    if (x.shape()[a] == 0)
      throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(a) + " of shape " +
                                  shape_str(x.shape()) + " is empty; the " + op + " of nothing is undefined");
  Tensor kept = reduce_keepdim(kind, x, axes);
  const Shape keep_shape = kept.shape();
  Tensor out = keepdim ? kept : reshape(kept.detach(), reduced_shape(x.shape(), axes, false));
  if (auto node = record(op, out, {x}))
    node->backward = [x, kept = kept.detach(), axes, keep_shape](const Tensor& g, const Node&) {
      Tensor mask = eq(x.detach(), kept);
      Tensor share = mask / sum(mask, axes, true);
      return TensorList{expand_back(g, keep_shape, x.shape()) * share};
    };
  return out;
}
}  // namespace

Tensor max(const Tensor& x, const Axes& axes, bool keepdim) { return extremum(kernels::Reduce::max, "max", x, axes, keepdim); }
Tensor min(const Tensor& x, const Axes& axes, bool keepdim) { return extremum(kernels::Reduce::min, "min", x, axes, keepdim); }

// var: composite, sum((x - mean)^2) / (n - correction).
Tensor var(const Tensor& x, const Axes& axes_in, std::int64_t correction, bool keepdim) {
  const auto axes = checked_axes("var", x, axes_in);
  const std::int64_t n = count_over(x.shape(), axes);
  if (n - correction <= 0)
    throw std::invalid_argument("var: " + std::to_string(n) + " elements with correction " +
                                std::to_string(correction) + " leave no degrees of freedom (shape " +
                                shape_str(x.shape()) + ")");
  Tensor centered = x - mean(x, axes, true);
  return sum(square(centered), axes, keepdim) * (1.0 / static_cast<double>(n - correction));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (!can_broadcast_to(shape, x.shape()))
    throw std::invalid_argument("sum_to: shape " + shape_str(x.shape()) + " cannot be summed to " + shape_str(shape));
  const std::size_t lead = x.shape().size() - shape.size();
  Axes axes;
  for (std::size_t i = 0; i < x.shape().size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && x.shape()[i] != 1)) axes.push_back(static_cast<std::int64_t>(i));
  return reshape(sum(x, axes, true), shape);
}

}  // namespace symgrad
