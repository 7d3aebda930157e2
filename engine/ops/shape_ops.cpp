// Shape ops: forward next to backward. All copy into a fresh contiguous tensor except
// reshape (see engine/tensor.hpp for why). The gather-style copies (expand, permute,
// narrow, slice) are one kernels::copy_strided call each; the scatter-style ones
// (concat, and the adjoint of slice) copy whole rows with memcpy.
#include "engine/ops/shape_ops.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/creation.hpp"
#include "engine/kernels/elementwise.hpp"
#include "engine/kernels/threads.hpp"
#include "engine/ops/reduce.hpp"

namespace symgrad {
namespace {

void require_defined(const char* op, const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
}

// Normalises a possibly negative axis of `shape`. `extra` = 1 allows the position one
// past the last axis (where unsqueeze and stack insert a new axis).
std::int64_t axis_of(const char* op, const Shape& shape, std::int64_t axis, std::int64_t extra = 0) {
  const auto rank = static_cast<std::int64_t>(shape.size()) + extra;
  const std::int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for " +
                                (extra ? "inserting an axis into " : "") + "a tensor of shape " + shape_str(shape));
  return a;
}

Tensor embed_strided(const Tensor& g, const Shape& shape, std::int64_t axis, std::int64_t start, std::int64_t step);

// The forward of narrow and slice: `count` elements along axis from `start` in steps of
// `step` (already validated). Saves the input shape; the backward places the gradient
// back into zeros of that shape.
Tensor take_strided(const char* op, const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t count,
                    std::int64_t step) {
  Shape out_shape = x.shape();
  out_shape[axis] = count;
  Tensor out = Tensor::empty(out_shape, x.dtype());
  Shape strides = contiguous_strides(x.shape());
  const std::int64_t offset = count > 0 ? start * strides[axis] : 0;
  strides[axis] *= step;
  kernels::copy_strided(x.dtype(), x.raw_data(), offset, strides, out.raw_data(), out_shape);
  if (auto node = record(op, out, {x}))
    node->backward = [x_shape = x.shape(), axis, start, step](const Tensor& g, const Node&) {
      return TensorList{embed_strided(g, x_shape, axis, start, step)};
    };
  return out;
}

// The adjoint of take_strided: zeros of `shape` with g written at start, start + step, ...
// along axis. Saves nothing; its backward takes those positions again, so a gradient
// of a gradient through slice works. Every row of the output is written once, either
// copied from g or zeroed (the backward of narrow runs on every training step, and a
// zero fill of the whole output first would write the copied half twice).
Tensor embed_strided(const Tensor& g, const Shape& shape, std::int64_t axis, std::int64_t start, std::int64_t step) {
  Tensor out = Tensor::empty(shape, g.dtype());
  const AxisLayout dst = layout_around(shape, axis);
  const std::int64_t count = g.shape()[static_cast<std::size_t>(axis)];
  const std::size_t elem = dtype_size(g.dtype());
  const std::size_t row_bytes = static_cast<std::size_t>(dst.inner) * elem;
  const char* src = static_cast<const char*>(g.raw_data());
  char* out_bytes = static_cast<char*>(out.raw_data());
  const std::int64_t grain =
      std::max<std::int64_t>(1, (std::int64_t{1} << 18) / std::max<std::int64_t>(1, dst.n * dst.inner));
  kernels::parallel_for(dst.outer, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t o = begin; o < end; ++o)
      for (std::int64_t k = 0; k < dst.n; ++k) {
        char* row = out_bytes + static_cast<std::size_t>((o * dst.n + k) * dst.inner) * elem;
        const std::int64_t from_start = k - start;
        if (from_start >= 0 && from_start % step == 0 && from_start / step < count)
          std::memcpy(row, src + static_cast<std::size_t>((o * count + from_start / step) * dst.inner) * elem,
                      row_bytes);
        else
          std::memset(row, 0, row_bytes);
      }
  });
  if (auto node = record("slice_backward", out, {g}))
    node->backward = [axis, start, count, step](const Tensor& gg, const Node&) {
      return TensorList{take_strided("slice", gg, axis, start, count, step)};
    };
  return out;
}

// permute and transpose: out axis i is input axis order[i] (order already validated).
// Saves the order; the backward applies the inverse permutation.
Tensor permute_as(const char* op, const Tensor& x, const std::vector<std::int64_t>& order) {
  const Shape in_strides = contiguous_strides(x.shape());
  Shape out_shape(order.size()), strides(order.size());
  std::vector<std::int64_t> inverse(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    const auto from = static_cast<std::size_t>(order[i]);
    out_shape[i] = x.shape()[from];
    strides[i] = in_strides[from];
    inverse[from] = static_cast<std::int64_t>(i);
  }
  Tensor out = Tensor::empty(out_shape, x.dtype());
  kernels::copy_strided(x.dtype(), x.raw_data(), 0, strides, out.raw_data(), out_shape);
  if (auto node = record(op, out, {x}))
    node->backward = [inverse, op](const Tensor& g, const Node&) { return TensorList{permute_as(op, g, inverse)}; };
  return out;
}

}  // namespace

// reshape: shares the buffer (row-major order is unchanged); saves the input shape.
Tensor reshape(const Tensor& x, const Shape& shape_in) {
  if (!x.defined()) throw std::invalid_argument("reshape: the input is undefined");
  Shape shape = shape_in;
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw std::invalid_argument("reshape: more than one -1 in " + shape_str(shape_in));
      infer = static_cast<std::int64_t>(i);
    } else if (shape[i] < 0) {
      throw std::invalid_argument("reshape: negative dimension in " + shape_str(shape_in));
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw std::invalid_argument("reshape: cannot infer -1 reshaping " + shape_str(x.shape()) + " to " +
                                  shape_str(shape_in));
    shape[infer] = x.numel() / known;
  }
  if (shape_numel(shape) != x.numel())
    throw std::invalid_argument("reshape: " + shape_str(x.shape()) + " (" + std::to_string(x.numel()) +
                                " elements) cannot become " + shape_str(shape_in));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.impl()->storage;
  impl->shape = shape;
  impl->dtype = x.dtype();
  Tensor out(std::move(impl));
  if (auto node = record("reshape", out, {x}))
    node->backward = [x_shape = x.shape()](const Tensor& g, const Node&) { return TensorList{reshape(g, x_shape)}; };
  return out;
}

// flatten, squeeze, unsqueeze: reshapes with a computed shape (so their backward is
// reshape's). A scalar flattens to [1], as in PyTorch.
Tensor flatten(const Tensor& x, std::int64_t start_axis, std::int64_t end_axis) {
  require_defined("flatten", x);
  if (x.dim() == 0) return reshape(x, {1});
  const std::int64_t start = axis_of("flatten", x.shape(), start_axis);
  const std::int64_t end = axis_of("flatten", x.shape(), end_axis);
  if (start > end)
    throw std::invalid_argument("flatten: start_axis " + std::to_string(start_axis) + " comes after end_axis " +
                                std::to_string(end_axis) + " for a tensor of shape " + shape_str(x.shape()));
  Shape shape;
  std::int64_t merged = 1;
  for (std::int64_t i = 0; i < x.dim(); ++i) {
    if (i < start || i > end) shape.push_back(x.size(i));
    else merged *= x.size(i);
    if (i == end) shape.push_back(merged);
  }
  return reshape(x, shape);
}

// Unlike torch.squeeze(dim), squeezing an axis whose size is not 1 is an error rather
// than a silent no-op (as in NumPy): it almost always means the wrong axis.
Tensor squeeze(const Tensor& x, std::int64_t axis) {
  require_defined("squeeze", x);
  const std::int64_t a = axis_of("squeeze", x.shape(), axis);
  if (x.size(a) != 1)
    throw std::invalid_argument("squeeze: axis " + std::to_string(axis) + " of shape " + shape_str(x.shape()) +
                                " has size " + std::to_string(x.size(a)) + ", not 1");
  Shape shape = x.shape();
  shape.erase(shape.begin() + a);
  return reshape(x, shape);
}

Tensor unsqueeze(const Tensor& x, std::int64_t axis) {
  require_defined("unsqueeze", x);
  const std::int64_t a = axis_of("unsqueeze", x.shape(), axis, 1);
  Shape shape = x.shape();
  shape.insert(shape.begin() + a, 1);
  return reshape(x, shape);
}

// permute: saves the order (the backward permutes back).
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order_in) {
  require_defined("permute", x);
  const auto bad_order = [&] {
    return std::invalid_argument("permute: order " + shape_str(order_in) +
                                 " is not a permutation of the axes of a tensor of shape " + shape_str(x.shape()));
  };
  if (static_cast<std::int64_t>(order_in.size()) != x.dim()) throw bad_order();
  std::vector<std::int64_t> order;
  std::vector<bool> seen(order_in.size(), false);
  for (std::int64_t a : order_in) {
    const std::int64_t axis = a < 0 ? a + x.dim() : a;
    if (axis < 0 || axis >= x.dim() || seen[static_cast<std::size_t>(axis)]) throw bad_order();
    seen[static_cast<std::size_t>(axis)] = true;
    order.push_back(axis);
  }
  return permute_as("permute", x, order);
}

// transpose: a permutation that swaps two axes (its own inverse).
Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1) {
  require_defined("transpose", x);
  const std::int64_t a = axis_of("transpose", x.shape(), axis0);
  const std::int64_t b = axis_of("transpose", x.shape(), axis1);
  std::vector<std::int64_t> order(static_cast<std::size_t>(x.dim()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  std::swap(order[static_cast<std::size_t>(a)], order[static_cast<std::size_t>(b)]);
  return permute_as("transpose", x, order);
}

// expand: materialises the broadcast; the backward is the identity because autograd
// sums the gradient back to the input's shape.
Tensor expand(const Tensor& x, const Shape& shape) {
  if (!x.defined()) throw std::invalid_argument("expand: the input is undefined");
  if (!can_broadcast_to(x.shape(), shape))
    throw std::invalid_argument("expand: shape " + shape_str(x.shape()) + " cannot be broadcast to " + shape_str(shape));
  if (x.shape() == shape) return x;
  Tensor out = Tensor::empty(shape, x.dtype());
  kernels::copy_strided(x.dtype(), x.raw_data(), 0, broadcast_strides(x.shape(), shape), out.raw_data(), shape);
  if (auto node = record("expand", out, {x}))
    node->backward = [](const Tensor& g, const Node&) { return TensorList{g}; };
  return out;
}

// narrow: a slice with step 1 whose bounds must lie inside the axis (a negative start
// counts from the end, as in PyTorch). Saves the input shape, via take_strided.
Tensor narrow(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t length) {
  require_defined("narrow", x);
  const std::int64_t a = axis_of("narrow", x.shape(), axis);
  const std::int64_t n = x.size(a);
  const std::int64_t first = start < 0 ? start + n : start;
  if (length < 0 || first < 0 || first + length > n)
    throw std::invalid_argument("narrow: start " + std::to_string(start) + " and length " + std::to_string(length) +
                                " do not fit in axis " + std::to_string(axis) + " of size " + std::to_string(n) +
                                " (input " + shape_str(x.shape()) + ")");
  return take_strided("narrow", x, a, first, length, 1);
}

// slice: Python's x[start:end:step] along one axis. Negative bounds count from the end;
// out-of-range bounds are clamped, so an empty range gives a size-0 axis.
Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step) {
  require_defined("slice", x);
  const std::int64_t a = axis_of("slice", x.shape(), axis);
  if (step <= 0)
    throw std::invalid_argument("slice: step " + std::to_string(step) + " must be positive (input " +
                                shape_str(x.shape()) + ", axis " + std::to_string(axis) + ")");
  const std::int64_t n = x.size(a);
  const auto clamp_bound = [n](std::int64_t i) {
    if (i < 0) i += n;
    return i < 0 ? 0 : (i > n ? n : i);
  };
  const std::int64_t first = clamp_bound(start), last = clamp_bound(end);
  const std::int64_t count = last > first ? (last - first + step - 1) / step : 0;
  return take_strided("slice", x, a, count > 0 ? first : 0, count, step);
}

// concat: saves each input's extent along axis; the backward narrows the gradient
// back into the pieces.
Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis) {
  if (xs.empty()) throw std::invalid_argument("concat: needs at least one tensor");
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined()) throw std::invalid_argument("concat: tensor " + std::to_string(i) + " is undefined");
  const Tensor& first = xs[0];
  if (first.dim() == 0)
    throw std::invalid_argument("concat: tensor 0 is a scalar (shape []); use stack to join scalars");
  const std::int64_t a = axis_of("concat", first.shape(), axis);
  Shape out_shape = first.shape();
  out_shape[static_cast<std::size_t>(a)] = 0;
  std::vector<std::int64_t> extents;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    const std::string which = "concat: tensor " + std::to_string(i) + " " + shape_str(x.shape()) + " ";
    if (x.dtype() != first.dtype())
      throw std::invalid_argument(which + dtype_name(x.dtype()) + " and tensor 0 " + shape_str(first.shape()) + " " +
                                  dtype_name(first.dtype()) + " have different dtypes");
    bool fits = x.dim() == first.dim();
    for (std::int64_t d = 0; fits && d < x.dim(); ++d) fits = d == a || x.size(d) == first.size(d);
    if (!fits)
      throw std::invalid_argument(which + "does not match tensor 0 " + shape_str(first.shape()) +
                                  " outside axis " + std::to_string(axis));
    extents.push_back(x.size(a));
    out_shape[static_cast<std::size_t>(a)] += x.size(a);
  }
  Tensor out = Tensor::empty(out_shape, first.dtype());
  const AxisLayout dst = layout_around(out_shape, a);
  const std::size_t elem = dtype_size(first.dtype());
  char* out_bytes = static_cast<char*>(out.raw_data());
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const char* src = static_cast<const char*>(xs[i].raw_data());
    const std::size_t block = static_cast<std::size_t>(extents[i] * dst.inner) * elem;
    for (std::int64_t o = 0; o < dst.outer; ++o)
      std::memcpy(out_bytes + static_cast<std::size_t>((o * dst.n + offset) * dst.inner) * elem,
                  src + static_cast<std::size_t>(o) * block, block);
    offset += extents[i];
  }
  if (auto node = record("concat", out, xs))
    node->backward = [a, extents](const Tensor& g, const Node& n) {
      TensorList grads;
      std::int64_t start = 0;
      for (std::size_t i = 0; i < extents.size(); ++i) {
        grads.push_back(n.needs_grad(i) ? narrow(g, a, start, extents[i]) : Tensor());
        start += extents[i];
      }
      return grads;
    };
  return out;
}

// stack: unsqueeze every input at axis, then concat (so the backward is theirs).
Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis) {
  if (xs.empty()) throw std::invalid_argument("stack: needs at least one tensor");
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined()) throw std::invalid_argument("stack: tensor " + std::to_string(i) + " is undefined");
    if (xs[i].shape() != xs[0].shape() || xs[i].dtype() != xs[0].dtype())
      throw std::invalid_argument("stack: tensor " + std::to_string(i) + " " + shape_str(xs[i].shape()) + " " +
                                  dtype_name(xs[i].dtype()) + " differs from tensor 0 " + shape_str(xs[0].shape()) +
                                  " " + dtype_name(xs[0].dtype()));
  }
  const std::int64_t a = axis_of("stack", xs[0].shape(), axis, 1);
  std::vector<Tensor> expanded;
  for (const Tensor& x : xs) expanded.push_back(unsqueeze(x, a));
  return concat(expanded, a);
}

// split: consecutive narrows of the given sizes (each piece records its own narrow).
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t axis) {
  require_defined("split", x);
  const std::int64_t a = axis_of("split", x.shape(), axis);
  std::int64_t total = 0;
  for (std::int64_t s : sizes) {
    if (s < 0)
      throw std::invalid_argument("split: negative size in " + shape_str(sizes) + " (input " +
                                  shape_str(x.shape()) + ")");
    total += s;
  }
  if (total != x.size(a))
    throw std::invalid_argument("split: sizes " + shape_str(sizes) + " add up to " + std::to_string(total) +
                                ", but axis " + std::to_string(axis) + " of " + shape_str(x.shape()) + " has " +
                                std::to_string(x.size(a)));
  std::vector<Tensor> pieces;
  std::int64_t start = 0;
  for (std::int64_t s : sizes) {
    pieces.push_back(narrow(x, a, start, s));
    start += s;
  }
  return pieces;
}

// chunk: torch.chunk's sizes -- ceil(n / chunks) each, the last one smaller, and fewer
// than `chunks` pieces when the sizes run out first. A size-0 axis gives `chunks`
// empty pieces.
std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t axis) {
  require_defined("chunk", x);
  const std::int64_t a = axis_of("chunk", x.shape(), axis);
  if (chunks <= 0)
    throw std::invalid_argument("chunk: chunks must be positive, got " + std::to_string(chunks) + " (input " +
                                shape_str(x.shape()) + ")");
  const std::int64_t n = x.size(a);
  std::vector<std::int64_t> sizes;
  if (n == 0) {
    sizes.assign(static_cast<std::size_t>(chunks), 0);
  } else {
    const std::int64_t per_chunk = (n + chunks - 1) / chunks;
    for (std::int64_t start = 0; start < n; start += per_chunk) sizes.push_back(std::min(per_chunk, n - start));
  }
  return split(x, sizes, a);
}

}  // namespace symgrad
