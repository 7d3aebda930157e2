#pragma once
// Shapes, axes and NumPy broadcasting rules. No tensors here: only integers.
#include <cstdint>
#include <string>
#include <vector>

namespace symgrad {

using Shape = std::vector<std::int64_t>;

std::string shape_str(const Shape& s);  // "[2, 3]"
std::int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);  // row-major, in elements

// Result shape of broadcasting a against b (NumPy rules); throws naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
bool can_broadcast_to(const Shape& from, const Shape& to);
// Strides (in elements) that read a contiguous tensor of shape `in` as if it had the
// broadcast shape `out`: aligned to out's rank, 0 on broadcast dimensions.
Shape broadcast_strides(const Shape& in, const Shape& out);

// Normalises a possibly negative axis into [0, rank); throws naming `op`.
std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const char* op);
// Sorted, unique, non-negative axes; an empty list means "all axes".
std::vector<std::int64_t> normalize_axes(const std::vector<std::int64_t>& axes, std::int64_t rank,
                                         const char* op);

// A shape seen as [outer, n, inner] around one (normalised) axis: the view every
// kernel that works along a single axis takes (reductions, softmax, concat, gather).
struct AxisLayout {
  std::int64_t outer = 1, n = 1, inner = 1;
};
AxisLayout layout_around(const Shape& s, std::int64_t axis);

// Shape after reducing `axes` (normalised); keepdim keeps them as size 1.
Shape reduced_shape(const Shape& s, const std::vector<std::int64_t>& axes, bool keepdim);

}  // namespace symgrad
