// Integer indexing: index_select and gather, and their adjoints index_add and
// scatter_add. Each op of a pair is the other's backward, so gradients of any order
// are made of these four ops.
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/creation.hpp"
#include "engine/ops/shape_ops.hpp"

namespace symgrad {
namespace {

void require_defined(const char* op, const char* what, const Tensor& t) {
  if (!t.defined()) throw std::invalid_argument(std::string(op) + ": " + what + " is undefined");
}

std::int64_t axis_of(const char* op, const Shape& shape, std::int64_t axis) {
  const auto rank = static_cast<std::int64_t>(shape.size());
  const std::int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(axis) +
                                " is out of range for a tensor of shape " + shape_str(shape));
  return a;
}

void require_valid_shape(const char* op, const Shape& shape) {
  for (std::int64_t d : shape)
    if (d < 0) throw std::invalid_argument(std::string(op) + ": negative dimension in shape " + shape_str(shape));
}

// The coordinates of flat position `flat` in a row-major `shape`, for error messages.
std::string position_str(std::int64_t flat, const Shape& shape) {
  Shape coord(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    coord[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(coord);
}

[[noreturn]] void throw_out_of_range(const char* op, const std::string& value, const std::string& where,
                                     std::int64_t axis, std::int64_t bound, const std::string& target) {
  throw std::invalid_argument(std::string(op) + ": index " + value + where +
                              " is out of range for axis " + std::to_string(axis) + " of size " +
                              std::to_string(bound) + " (" + target + ")");
}

// Checks every entry of an index list lies in [0, bound).
void check_index_list(const char* op, const std::vector<std::int64_t>& index, std::int64_t axis, std::int64_t bound,
                      const std::string& target) {
  for (std::size_t i = 0; i < index.size(); ++i)
    if (index[i] < 0 || index[i] >= bound)
      throw_out_of_range(op, std::to_string(index[i]), " at position " + std::to_string(i), axis, bound, target);
}

// Index tensors hold whole numbers in a float dtype. Returns them as integers after
// checking that each is a whole number in [0, bound).
std::vector<std::int64_t> read_index_tensor(const char* op, const Tensor& index, std::int64_t axis,
                                            std::int64_t bound, const std::string& target) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(index.numel()));
  std::size_t bad = out.size();  // the first invalid entry, if any
  dispatch_dtype(index.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* values = index.data<T>();
    const auto limit = static_cast<double>(bound);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const auto v = static_cast<double>(values[i]);
      const bool in_range = v >= 0 && v < limit;  // false for nan
      out[i] = in_range ? static_cast<std::int64_t>(v) : 0;
      if (!in_range || static_cast<double>(out[i]) != v) {
        bad = i;
        break;
      }
    }
  });
  if (bad == out.size()) return out;
  const double v = index.to_vector()[bad];
  std::ostringstream shown;
  shown << v;
  const std::string where = " at position " + position_str(static_cast<std::int64_t>(bad), index.shape());
  if (std::isfinite(v) && v == std::floor(v)) throw_out_of_range(op, shown.str(), where, axis, bound, target);
  throw std::invalid_argument(std::string(op) + ": index " + shown.str() + where + " of index " +
                              shape_str(index.shape()) + " is not a whole number");
}

// gather / scatter_add pair a tensor of shape `target` with an index of the same rank
// that fits inside it on every axis but `axis` (torch.gather's rule).
void check_gather_shapes(const char* op, const Shape& target, const std::string& target_name, std::int64_t axis,
                         const Tensor& index) {
  bool fits = index.shape().size() == target.size();
  for (std::size_t d = 0; fits && d < target.size(); ++d)
    fits = static_cast<std::int64_t>(d) == axis || index.shape()[d] <= target[d];
  if (!fits)
    throw std::invalid_argument(std::string(op) + ": index " + shape_str(index.shape()) + " does not fit " +
                                target_name + " " + shape_str(target) + " (same rank, and no larger outside axis " +
                                std::to_string(axis) + ")");
}

// Visits every position of `index_shape` in row-major order, passing its flat number
// and the offset of the same coordinates in a tensor with `strides`, leaving out
// `axis` (the caller adds index value * strides[axis]). Walks row by row so the
// innermost loop is a plain stride.
template <class Visit>
void for_each_index_position(const Shape& index_shape, const Shape& strides, std::int64_t axis, Visit visit) {
  const std::int64_t total = shape_numel(index_shape);
  if (total == 0) return;
  const std::size_t last = index_shape.size() - 1;
  const std::int64_t row_length = index_shape[last];
  const std::int64_t step = static_cast<std::int64_t>(last) == axis ? 0 : strides[last];
  std::vector<std::int64_t> coord(last, 0);  // the leading coordinates of the row
  std::int64_t row_offset = 0;
  for (std::int64_t row_start = 0; row_start < total; row_start += row_length) {
    for (std::int64_t j = 0; j < row_length; ++j) visit(row_start + j, row_offset + j * step);
    for (std::size_t d = last; d-- > 0;) {
      const std::int64_t s_d = static_cast<std::int64_t>(d) == axis ? 0 : strides[d];
      if (++coord[d] < index_shape[d]) {
        row_offset += s_d;
        break;
      }
      row_offset -= s_d * (index_shape[d] - 1);
      coord[d] = 0;
    }
  }
}

}  // namespace

// index_select: out[..., k, ...] = x[..., index[k], ...]. Saves the index list and the
// input shape; the backward adds the gradient's slices back (index_add).
Tensor index_select(const Tensor& x, std::int64_t axis, const std::vector<std::int64_t>& index) {
  require_defined("index_select", "the input", x);
  const std::int64_t a = axis_of("index_select", x.shape(), axis);
  check_index_list("index_select", index, axis, x.size(a), "input " + shape_str(x.shape()));
  Shape out_shape = x.shape();
  out_shape[static_cast<std::size_t>(a)] = static_cast<std::int64_t>(index.size());
  Tensor out = Tensor::empty(out_shape, x.dtype());
  const AxisLayout src = layout_around(x.shape(), a);
  const std::size_t elem = dtype_size(x.dtype());
  const std::size_t row_bytes = static_cast<std::size_t>(src.inner) * elem;
  const char* in = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  const auto count = static_cast<std::int64_t>(index.size());
  for (std::int64_t o = 0; o < src.outer; ++o)
    for (std::int64_t k = 0; k < count; ++k)
      std::memcpy(dst + static_cast<std::size_t>((o * count + k) * src.inner) * elem,
                  in + static_cast<std::size_t>((o * src.n + index[static_cast<std::size_t>(k)]) * src.inner) * elem,
                  row_bytes);
  if (auto node = record("index_select", out, {x}))
    node->backward = [x_shape = x.shape(), a, index](const Tensor& g, const Node&) {
      return TensorList{index_add(x_shape, a, index, g)};
    };
  return out;
}

// index_add: zeros of `shape`, then out[..., index[k], ...] += src[..., k, ...]
// (repeated indices accumulate). Saves the index list; the backward is index_select.
Tensor index_add(const Shape& shape, std::int64_t axis, const std::vector<std::int64_t>& index, const Tensor& src) {
  require_defined("index_add", "src", src);
  require_valid_shape("index_add", shape);
  const std::int64_t a = axis_of("index_add", shape, axis);
  Shape expected = shape;
  expected[static_cast<std::size_t>(a)] = static_cast<std::int64_t>(index.size());
  if (src.shape() != expected)
    throw std::invalid_argument("index_add: src " + shape_str(src.shape()) + " should be " + shape_str(expected) +
                                " (shape " + shape_str(shape) + " with axis " + std::to_string(axis) + " of size " +
                                std::to_string(index.size()) + ", the number of indices)");
  check_index_list("index_add", index, axis, shape[static_cast<std::size_t>(a)], "output shape " + shape_str(shape));
  Tensor out = zeros(shape, src.dtype());
  const AxisLayout dst = layout_around(shape, a);
  const auto count = static_cast<std::int64_t>(index.size());
  dispatch_dtype(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* in = src.data<T>();
    T* acc = out.data<T>();
    for (std::int64_t o = 0; o < dst.outer; ++o)
      for (std::int64_t k = 0; k < count; ++k) {
        const T* row = in + (o * count + k) * dst.inner;
        T* target = acc + (o * dst.n + index[static_cast<std::size_t>(k)]) * dst.inner;
        for (std::int64_t i = 0; i < dst.inner; ++i) target[i] += row[i];
      }
  });
  if (auto node = record("index_add", out, {src}))
    node->backward = [a, index](const Tensor& g, const Node&) { return TensorList{index_select(g, a, index)}; };
  return out;
}

// gather: out[p] = x[p with coordinate `axis` replaced by index[p]]. Saves the index and
// the input shape; the backward scatters the gradient back (scatter_add).
Tensor gather(const Tensor& x, std::int64_t axis, const Tensor& index) {
  require_defined("gather", "the input", x);
  require_defined("gather", "the index", index);
  const std::int64_t a = axis_of("gather", x.shape(), axis);
  check_gather_shapes("gather", x.shape(), "input", a, index);
  const std::vector<std::int64_t> idx =
      read_index_tensor("gather", index, axis, x.size(a), "input " + shape_str(x.shape()));
  Tensor out = Tensor::empty(index.shape(), x.dtype());
  const Shape strides = contiguous_strides(x.shape());
  const std::int64_t axis_stride = strides[static_cast<std::size_t>(a)];
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* in = x.data<T>();
    T* dst = out.data<T>();
    for_each_index_position(index.shape(), strides, a, [&](std::int64_t p, std::int64_t offset) {
      dst[p] = in[offset + idx[static_cast<std::size_t>(p)] * axis_stride];
    });
  });
  if (auto node = record("gather", out, {x}))
    node->backward = [x_shape = x.shape(), a, index = index.detach()](const Tensor& g, const Node&) {
      return TensorList{scatter_add(x_shape, a, index, g)};
    };
  return out;
}

// scatter_add: zeros of `shape`, then out[p with coordinate `axis` = index[p]] += src[p]
// for every position p of index (src has index's shape). Saves the index; the backward
// is gather.
Tensor scatter_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& src) {
  require_defined("scatter_add", "src", src);
  require_defined("scatter_add", "the index", index);
  require_valid_shape("scatter_add", shape);
  const std::int64_t a = axis_of("scatter_add", shape, axis);
  if (src.shape() != index.shape())
    throw std::invalid_argument("scatter_add: src " + shape_str(src.shape()) + " and index " +
                                shape_str(index.shape()) + " must have the same shape");
  check_gather_shapes("scatter_add", shape, "output shape", a, index);
  const std::vector<std::int64_t> idx = read_index_tensor("scatter_add", index, axis, shape[static_cast<std::size_t>(a)],
                                                          "output shape " + shape_str(shape));
  Tensor out = zeros(shape, src.dtype());
  const Shape strides = contiguous_strides(shape);
  const std::int64_t axis_stride = strides[static_cast<std::size_t>(a)];
  dispatch_dtype(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* in = src.data<T>();
    T* acc = out.data<T>();
    for_each_index_position(index.shape(), strides, a, [&](std::int64_t p, std::int64_t offset) {
      acc[offset + idx[static_cast<std::size_t>(p)] * axis_stride] += in[p];
    });
  });
  if (auto node = record("scatter_add", out, {src}))
    node->backward = [a, index = index.detach()](const Tensor& g, const Node&) {
      return TensorList{gather(g, a, index)};
    };
  return out;
}

}  // namespace symgrad
