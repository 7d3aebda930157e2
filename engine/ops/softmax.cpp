// Softmax family along one axis: each forward is one kernel call over an
// [outer, n, inner] view of the axis; each backward is written with ops, so the
// second derivative comes from differentiating the backward.
#include "engine/ops/softmax.hpp"

#include <limits>
#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/kernels/elementwise.hpp"
#include "engine/ops/binary.hpp"
#include "engine/ops/reduce.hpp"
#include "engine/ops/shape_ops.hpp"
#include "engine/ops/unary.hpp"

namespace symgrad {
namespace {

// x seen as [outer, n, inner] with n the extent of the (normalised) axis.
struct AxisView {
  std::int64_t axis = 0, outer = 1, n = 1, inner = 1;
};

AxisView axis_view(const char* op, const Tensor& x, std::int64_t axis_in) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
  AxisView v;
  if (x.dim() == 0 || axis_in < -x.dim() || axis_in >= x.dim())
    throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(axis_in) +
                                " is out of range for input shape " + shape_str(x.shape()));
  v.axis = axis_in < 0 ? axis_in + x.dim() : axis_in;
  const AxisLayout l = layout_around(x.shape(), v.axis);
  v.outer = l.outer;
  v.n = l.n;
  v.inner = l.inner;
  return v;
}

Tensor softmax_forward(const Tensor& x, const AxisView& v, bool log) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  if (y.numel() > 0) kernels::softmax(x.dtype(), x.raw_data(), y.raw_data(), v.outer, v.n, v.inner, log);
  return y;
}

}  // namespace

// softmax: saves y. dx = y * (g - sum(g * y)) along the axis.
Tensor softmax(const Tensor& x, std::int64_t axis) {
  const AxisView v = axis_view("softmax", x, axis);
  Tensor y = softmax_forward(x, v, false);
  if (auto node = record("softmax", y, {x}))
    node->backward = [saved = SavedTensor::output(y, node), a = v.axis](const Tensor& g, const Node&) {
      Tensor probs = saved.unpack();
      return TensorList{probs * (g - sum(g * probs, {a}, true))};
    };
  return y;
}

// log_softmax: saves y. dx = g - exp(y) * sum(g) along the axis (exp(y) is the softmax).
Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  const AxisView v = axis_view("log_softmax", x, axis);
  Tensor y = softmax_forward(x, v, true);
  if (auto node = record("log_softmax", y, {x}))
    node->backward = [saved = SavedTensor::output(y, node), a = v.axis](const Tensor& g, const Node&) {
      return TensorList{g - exp(saved.unpack()) * sum(g, {a}, true)};
    };
  return y;
}

// logsumexp: saves x and the output. dx = g * exp(x - out), i.e. g * softmax(x).
// Over an empty axis the sum is empty, so the result is log 0 = -inf (as sum gives 0).
Tensor logsumexp(const Tensor& x, std::int64_t axis, bool keepdim) {
  const AxisView v = axis_view("logsumexp", x, axis);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), {v.axis}, keepdim), x.dtype());
  if (out.numel() > 0) {
    if (v.n == 0)
      kernels::fill(x.dtype(), out.raw_data(), out.numel(), -std::numeric_limits<double>::infinity());
    else
      kernels::logsumexp(x.dtype(), x.raw_data(), out.raw_data(), v.outer, v.n, v.inner);
  }
  if (auto node = record("logsumexp", out, {x}))
    node->backward = [x, saved = SavedTensor::output(out, node),
                      keep_shape = reduced_shape(x.shape(), {v.axis}, true)](const Tensor& g, const Node&) {
      Tensor out_kept = reshape(saved.unpack(), keep_shape);
      return TensorList{reshape(g, keep_shape) * exp(x - out_kept)};
    };
  return out;
}

}  // namespace symgrad
