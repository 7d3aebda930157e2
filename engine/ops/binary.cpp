// Binary elementwise ops with broadcasting: each forward next to its backward rule.
// Backward rules return gradients in the output's (broadcast) shape; autograd sums
// them back to each input's shape in one place (sum_to in engine/autograd.cpp).
#include "engine/ops/binary.hpp"

#include <stdexcept>

#include "engine/autograd.hpp"
#include "engine/creation.hpp"
#include "engine/kernels/elementwise.hpp"
#include "engine/ops/unary.hpp"

namespace symgrad {
namespace {

void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined())
    throw std::invalid_argument(std::string(op) + ": an operand is an undefined tensor");
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(std::string(op) + ": lhs " + shape_str(a.shape()) + " " +
                                dtype_name(a.dtype()) + " and rhs " + shape_str(b.shape()) + " " +
                                dtype_name(b.dtype()) + " have different dtypes; convert one with to_dtype");
}

// The forward half shared by every binary op: broadcast, then one kernel call.
Tensor binary_forward(kernels::Binary kind, const char* op, const Tensor& a, const Tensor& b) {
  check_pair(op, a, b);
  if (a.shape() == b.shape()) {
    // The common case: no broadcasting, so both operands are read as one flat run and
    // no stride vectors are built (a tiny op should cost little more than its node).
    Tensor out = Tensor::empty(a.shape(), a.dtype());
    kernels::binary_same_shape(kind, a.dtype(), a.raw_data(), b.raw_data(), out.raw_data(), a.numel());
    return out;
  }
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  kernels::binary(kind, a.dtype(), a.raw_data(), broadcast_strides(a.shape(), out_shape), b.raw_data(),
                  broadcast_strides(b.shape(), out_shape), out.raw_data(), out_shape);
  return out;
}

}  // namespace

// add: saves nothing.
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::Binary::add, "add", a, b);
  if (auto node = record("add", out, {a, b}))
    node->backward = [](const Tensor& g, const Node&) { return TensorList{g, g}; };
  return out;
}

// sub: saves nothing.
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::Binary::sub, "sub", a, b);
  if (auto node = record("sub", out, {a, b}))
    node->backward = [](const Tensor& g, const Node& n) {
      return TensorList{g, n.needs_grad(1) ? neg(g) : Tensor()};
    };
  return out;
}

// mul: saves both operands (each one's gradient is the other).
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::Binary::mul, "mul", a, b);
  if (auto node = record("mul", out, {a, b}))
    node->backward = [a, b](const Tensor& g, const Node& n) {
      return TensorList{n.needs_grad(0) ? mul(g, b) : Tensor(), n.needs_grad(1) ? mul(g, a) : Tensor()};
    };
  return out;
}

// div: saves both operands. d(a/b) = da / b - a db / b^2.
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::Binary::div, "div", a, b);
  if (auto node = record("div", out, {a, b}))
    node->backward = [a, b](const Tensor& g, const Node& n) {
      Tensor g_over_b = div(g, b);
      return TensorList{n.needs_grad(0) ? g_over_b : Tensor(),
                        n.needs_grad(1) ? neg(div(mul(g_over_b, a), b)) : Tensor()};
    };
  return out;
}

// pow: saves both operands and the output. d(a^b) = b a^(b-1) da + a^b log(a) db.
Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::Binary::pow, "pow", a, b);
  if (auto node = record("pow", out, {a, b}))
    node->backward = [a, b, y = SavedTensor::output(out, node)](const Tensor& g, const Node& n) {
      Tensor ga, gb;
      if (n.needs_grad(0)) ga = mul(g, mul(b, pow(a, sub(b, ones_like(b)))));
      if (n.needs_grad(1)) gb = mul(g, mul(y.unpack(), log(a)));
      return TensorList{ga, gb};
    };
  return out;
}

// maximum / minimum: save both operands; the gradient goes to the chosen operand and
// is split evenly on ties (the masks are constants: comparisons are not differentiable).
namespace {
Tensor extremum(kernels::Binary kind, const char* op, const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kind, op, a, b);
  if (auto node = record(op, out, {a, b}))
    node->backward = [a, b, kind](const Tensor& g, const Node&) {
      Tensor wins = kind == kernels::Binary::maximum ? gt(a, b) : lt(a, b);
      Tensor share_a = add(wins, mul(eq(a, b), scalar(0.5, a.dtype())));
      return TensorList{mul(g, share_a), mul(g, sub(ones_like(share_a), share_a))};
    };
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(kernels::Binary::maximum, "maximum", a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(kernels::Binary::minimum, "minimum", a, b); }

// where: saves cond. The gradient flows to the branch that was picked.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_pair("where", a, b);
  if (!cond.defined()) throw std::invalid_argument("where: cond is an undefined tensor");
  if (cond.dtype() != a.dtype())
    throw std::invalid_argument("where: cond " + shape_str(cond.shape()) + " " + dtype_name(cond.dtype()) +
                                " must have the branches' dtype " + dtype_name(a.dtype()) + " (a " +
                                shape_str(a.shape()) + ", b " + shape_str(b.shape()) + ")");
  const Shape out_shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(out_shape, a.dtype());
  kernels::where(a.dtype(), cond.raw_data(), broadcast_strides(cond.shape(), out_shape), a.raw_data(),
                 broadcast_strides(a.shape(), out_shape), b.raw_data(),
                 broadcast_strides(b.shape(), out_shape), out.raw_data(), out_shape);
  if (auto node = record("where", out, {cond.detach(), a, b}))
    node->backward = [c = cond.detach()](const Tensor& g, const Node& n) {
      Tensor zero = scalar(0.0, g.dtype());
      return TensorList{Tensor(), n.needs_grad(1) ? where(c, g, zero) : Tensor(),
                        n.needs_grad(2) ? where(c, zero, g) : Tensor()};
    };
  return out;
}

// Comparisons: no node is recorded, so their outputs are constants.
Tensor eq(const Tensor& a, const Tensor& b) { return binary_forward(kernels::Binary::eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_forward(kernels::Binary::ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_forward(kernels::Binary::lt, "lt", a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_forward(kernels::Binary::le, "le", a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_forward(kernels::Binary::gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_forward(kernels::Binary::ge, "ge", a, b); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add(a, scalar(s, a.dtype())); }
Tensor operator+(double s, const Tensor& a) { return add(scalar(s, a.dtype()), a); }
Tensor operator-(const Tensor& a, double s) { return sub(a, scalar(s, a.dtype())); }
Tensor operator-(double s, const Tensor& a) { return sub(scalar(s, a.dtype()), a); }
Tensor operator*(const Tensor& a, double s) { return mul(a, scalar(s, a.dtype())); }
Tensor operator*(double s, const Tensor& a) { return mul(scalar(s, a.dtype()), a); }
Tensor operator/(const Tensor& a, double s) { return div(a, scalar(s, a.dtype())); }
Tensor operator/(double s, const Tensor& a) { return div(scalar(s, a.dtype()), a); }

}  // namespace symgrad
