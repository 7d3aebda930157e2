// Shape ops: forward next to backward. All copy into a fresh contiguous tensor except
// reshape (see engine/tensor.hpp for why).
#include "engine/ops/shape_ops.hpp"

#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/kernels/elementwise.hpp"
#include "engine/ops/reduce.hpp"

namespace symgrad {

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

}  // namespace symgrad
