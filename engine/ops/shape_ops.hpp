#pragma once
// Shape ops. They copy (see the note in engine/tensor.hpp), except reshape, which
// only relabels the same contiguous buffer.
#include <vector>

#include "engine/tensor.hpp"

namespace symgrad {

Tensor reshape(const Tensor& x, const Shape& shape);  // one -1 entry is inferred
Tensor flatten(const Tensor& x, std::int64_t start_axis = 0, std::int64_t end_axis = -1);
Tensor squeeze(const Tensor& x, std::int64_t axis);
Tensor unsqueeze(const Tensor& x, std::int64_t axis);
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order);
Tensor transpose(const Tensor& x, std::int64_t axis0 = -2, std::int64_t axis1 = -1);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast to `shape`

// Elements [start, start + length) along axis.
Tensor narrow(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t length);
// Python-style slice along one axis: start/end may be negative and are clamped; step > 0.
Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t end,
             std::int64_t step = 1);

Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis = 0);
Tensor stack(const std::vector<Tensor>& xs, std::int64_t axis = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t axis = 0);
std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t axis = 0);

// Integer indices are passed as tensors holding whole numbers (any dtype) or as
// vectors. index_select picks whole slices along axis; gather picks, for every
// position of `index` (same rank as x), x at that position with the axis
// coordinate replaced by the index value (torch.gather).
Tensor index_select(const Tensor& x, std::int64_t axis, const std::vector<std::int64_t>& index);
Tensor gather(const Tensor& x, std::int64_t axis, const Tensor& index);
// The adjoints of the two above: zeros of `shape` with src added at the indices.
Tensor index_add(const Shape& shape, std::int64_t axis, const std::vector<std::int64_t>& index,
                 const Tensor& src);
Tensor scatter_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& src);

enum class PadMode { zeros, reflect, replicate, circular };
const char* pad_mode_name(PadMode m);
// Pads the last len(pads)/2 axes; pads = {before_last, after_last, before_2nd_last, ...}
// like torch.nn.functional.pad.
Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, PadMode mode = PadMode::zeros,
           double value = 0.0);

}  // namespace symgrad
