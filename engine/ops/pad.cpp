// Padding the last axes: with a constant (PadMode::zeros), by reflection, by
// replicating the edge, or circularly. Every mode is described the same way: for each
// axis, which input coordinate each output coordinate reads (or none, for the fill
// value). pad reads through that map; its adjoint, pad_backward, adds the gradient
// back through the same map. Each is the other's backward, so gradients of any order
// work in every mode.
#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/creation.hpp"
#include "engine/ops/shape_ops.hpp"

namespace symgrad {

const char* pad_mode_name(PadMode m) {
  switch (m) {
    case PadMode::zeros: return "zeros";
    case PadMode::reflect: return "reflect";
    case PadMode::replicate: return "replicate";
    case PadMode::circular: return "circular";
  }
  return "unknown";
}

namespace {

constexpr std::int64_t kFill = -1;  // "this output coordinate holds the fill value"

// For each axis, the input coordinate every output coordinate reads, or kFill.
// Unpadded axes map to themselves. Shared (read-only) by pad and its adjoint.
struct PadPlan {
  Shape in_shape, out_shape;
  std::vector<std::vector<std::int64_t>> source;
};

// Where padded coordinate i (in [-before, n + after), 0 = first input element) reads.
std::int64_t source_coordinate(PadMode mode, std::int64_t i, std::int64_t n) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::zeros: return kFill;
    case PadMode::reflect: return i < 0 ? -i : 2 * (n - 1) - i;  // mirrors about the edge element, not repeating it
    case PadMode::replicate: return i < 0 ? 0 : n - 1;
    case PadMode::circular: return ((i % n) + n) % n;
  }
  return kFill;
}

// Validates pads against the input shape and mode, and builds the coordinate maps.
PadPlan make_plan(const Shape& in_shape, const std::vector<std::int64_t>& pads, PadMode mode) {
  const auto rank = static_cast<std::int64_t>(in_shape.size());
  const auto padded_axes = static_cast<std::int64_t>(pads.size() / 2);
  if (pads.size() % 2 != 0 || padded_axes > rank)
    throw std::invalid_argument("pad: pads " + shape_str(pads) + " must hold a (before, after) pair for each of the "
                                "last axes, at most " + std::to_string(rank) + " pairs for input " +
                                shape_str(in_shape));
  PadPlan plan{in_shape, in_shape, {}};
  for (std::int64_t axis = 0; axis < rank; ++axis) {
    const std::int64_t n = in_shape[static_cast<std::size_t>(axis)];
    const std::int64_t pair = rank - 1 - axis;  // pads lists the last axis first
    const std::int64_t before = pair < padded_axes ? pads[static_cast<std::size_t>(2 * pair)] : 0;
    const std::int64_t after = pair < padded_axes ? pads[static_cast<std::size_t>(2 * pair + 1)] : 0;
    const std::string what = std::string("pad: ") + pad_mode_name(mode) + " padding (" + std::to_string(before) +
                             ", " + std::to_string(after) + ") of axis " + std::to_string(axis);
    const std::string input = " (input " + shape_str(in_shape) + ")";
    if (before < 0 || after < 0) throw std::invalid_argument(what + " is negative" + input);
    const bool padded = before > 0 || after > 0;
    if (mode == PadMode::reflect && padded && (before >= n || after >= n))
      throw std::invalid_argument(what + " must be smaller than its size " + std::to_string(n) + input);
    if (mode == PadMode::replicate && padded && n == 0)
      throw std::invalid_argument(what + " needs a non-empty axis" + input);
    if (mode == PadMode::circular && padded && (before > n || after > n))
      throw std::invalid_argument(what + " must not exceed its size " + std::to_string(n) + input);
    std::vector<std::int64_t> source(static_cast<std::size_t>(before + n + after));
    for (std::int64_t o = 0; o < before + n + after; ++o)
      source[static_cast<std::size_t>(o)] = source_coordinate(mode, o - before, n);
    plan.out_shape[static_cast<std::size_t>(axis)] = before + n + after;
    plan.source.push_back(std::move(source));
  }
  return plan;
}

// Visits the rows (last axis) of the padded shape: visit(row_start, input_row_start),
// where input_row_start is the input offset the row's leading coordinates map to, or
// kFill when one of them is padding.
template <class Visit>
void for_each_padded_row(const PadPlan& plan, Visit visit) {
  const std::size_t leading = plan.out_shape.size() - 1;
  const Shape in_strides = contiguous_strides(plan.in_shape);
  const std::int64_t row_length = plan.out_shape.back();
  const std::int64_t rows = row_length == 0 ? 0 : shape_numel(plan.out_shape) / row_length;
  std::vector<std::int64_t> coord(leading, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int64_t input_row = 0;
    for (std::size_t d = 0; d < leading && input_row != kFill; ++d) {
      const std::int64_t s = plan.source[d][static_cast<std::size_t>(coord[d])];
      input_row = s == kFill ? kFill : input_row + s * in_strides[d];
    }
    visit(r * row_length, input_row);
    for (std::size_t d = leading; d-- > 0;) {
      if (++coord[d] < plan.out_shape[d]) break;
      coord[d] = 0;
    }
  }
}

Tensor pad_backward(const Tensor& g, const std::shared_ptr<const PadPlan>& plan);

// The forward of pad. Saves the plan; the backward adds the gradient back through it.
Tensor pad_with_plan(const Tensor& x, const std::shared_ptr<const PadPlan>& plan, double value) {
  Tensor out = Tensor::empty(plan->out_shape, x.dtype());
  const std::vector<std::int64_t>& last = plan->source.back();
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* in = x.data<T>();
    T* dst = out.data<T>();
    const T fill = static_cast<T>(value);
    for_each_padded_row(*plan, [&](std::int64_t row, std::int64_t input_row) {
      for (std::size_t j = 0; j < last.size(); ++j)
        dst[row + static_cast<std::int64_t>(j)] =
            input_row == kFill || last[j] == kFill ? fill : in[input_row + last[j]];
    });
  });
  if (auto node = record("pad", out, {x}))
    node->backward = [plan](const Tensor& g, const Node&) { return TensorList{pad_backward(g, plan)}; };
  return out;
}

// The adjoint of pad: every input element receives the sum of the gradient over the
// output positions that read it (the fill value reads nothing). Saves the plan; its
// backward is pad again, with fill 0 since the fill value is a constant.
Tensor pad_backward(const Tensor& g, const std::shared_ptr<const PadPlan>& plan) {
  Tensor out = zeros(plan->in_shape, g.dtype());
  const std::vector<std::int64_t>& last = plan->source.back();
  dispatch_dtype(g.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* grad_out = g.data<T>();
    T* grad_in = out.data<T>();
    for_each_padded_row(*plan, [&](std::int64_t row, std::int64_t input_row) {
      if (input_row == kFill) return;
      for (std::size_t j = 0; j < last.size(); ++j)
        if (last[j] != kFill) grad_in[input_row + last[j]] += grad_out[row + static_cast<std::int64_t>(j)];
    });
  });
  if (auto node = record("pad_backward", out, {g}))
    node->backward = [plan](const Tensor& gg, const Node&) { return TensorList{pad_with_plan(gg, plan, 0.0)}; };
  return out;
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, PadMode mode, double value) {
  if (!x.defined()) throw std::invalid_argument("pad: the input is undefined");
  if (mode != PadMode::zeros && value != 0.0)
    throw std::invalid_argument("pad: a fill value (" + std::to_string(value) + ") only applies to PadMode::zeros, not " +
                                pad_mode_name(mode) + " (input " + shape_str(x.shape()) + ")");
  auto plan = std::make_shared<const PadPlan>(make_plan(x.shape(), pads, mode));
  if (pads.empty()) return x;  // nothing to pad (checked above that pads fits x)
  return pad_with_plan(x, plan, value);
}

}  // namespace symgrad
