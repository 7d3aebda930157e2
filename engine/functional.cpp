// Jacobians, Hessians, HVPs and JVPs, all assembled from reverse-mode grad().
#include "engine/functional.hpp"

#include <stdexcept>

#include "engine/creation.hpp"
#include "engine/ops/binary.hpp"
#include "engine/ops/reduce.hpp"
#include "engine/ops/shape_ops.hpp"

namespace symgrad {
namespace {

// x itself when it already takes part in a graph, else a fresh leaf that requires grad.
Tensor as_differentiable(const Tensor& x, const char* op) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": x is undefined");
  return x.requires_grad() ? x : x.detach().requires_grad_();
}

void check_like(const char* op, const char* what, const Tensor& v, const Tensor& like) {
  if (!v.defined() || v.shape() != like.shape() || v.dtype() != like.dtype())
    throw std::invalid_argument(std::string(op) + ": " + what + " " +
                                (v.defined() ? shape_str(v.shape()) + " " + dtype_name(v.dtype()) : "undefined") +
                                " must match " + shape_str(like.shape()) + " " + dtype_name(like.dtype()));
}

Shape concat_shapes(const Shape& a, const Shape& b) {
  Shape s = a;
  s.insert(s.end(), b.begin(), b.end());
  return s;
}

}  // namespace

Tensor jacobian(const TensorFn& f, const Tensor& x_in, bool create_graph) {
  Tensor x = as_differentiable(x_in, "jacobian");
  Tensor y = f(x);
  const Shape j_shape = concat_shapes(y.shape(), x.shape());
  if (y.numel() == 0 || x.numel() == 0 || !y.requires_grad()) return zeros(j_shape, y.dtype());
  TensorList rows;
  rows.reserve(static_cast<std::size_t>(y.numel()));
  for (std::int64_t k = 0; k < y.numel(); ++k) {
    Tensor seed = zeros(y.shape(), y.dtype());
    dispatch_dtype(y.dtype(), [&](auto zero) { seed.data<decltype(zero)>()[k] = 1; });
    Tensor g = grad({y}, {x}, {seed}, {.create_graph = create_graph, .retain_graph = true, .allow_unused = true})[0];
    rows.push_back(g.defined() ? reshape(g, {x.numel()}) : zeros({x.numel()}, x.dtype()));
  }
  return reshape(stack(rows, 0), j_shape);
}

Tensor hvp(const TensorFn& f, const Tensor& x_in, const Tensor& v, bool create_graph) {
  Tensor x = as_differentiable(x_in, "hvp");
  check_like("hvp", "v", v, x);
  Tensor y = f(x);
  if (y.numel() != 1)
    throw std::invalid_argument("hvp: f must return a scalar, got shape " + shape_str(y.shape()));
  if (!y.requires_grad()) return zeros_like(x);
  Tensor g = grad({y}, {x}, {}, {.create_graph = true, .allow_unused = true})[0];
  if (!g.defined() || !g.requires_grad()) return zeros_like(x);  // f is at most linear in x
  Tensor hv = grad({g}, {x}, {v}, {.create_graph = create_graph, .allow_unused = true})[0];
  return hv.defined() ? hv : zeros_like(x);
}

Tensor hessian(const TensorFn& f, const Tensor& x, bool create_graph) {
  auto gradient = [&f](const Tensor& z) {
    Tensor y = f(z);
    if (y.numel() != 1)
      throw std::invalid_argument("hessian: f must return a scalar, got shape " + shape_str(y.shape()));
    if (!y.requires_grad()) return zeros_like(z);
    Tensor g = grad({y}, {z}, {}, {.create_graph = true, .allow_unused = true})[0];
    return g.defined() ? g : zeros_like(z);
  };
  return jacobian(gradient, x, create_graph);
}

Tensor jvp(const TensorFn& f, const Tensor& x_in, const Tensor& v, bool create_graph) {
  Tensor x = as_differentiable(x_in, "jvp");
  check_like("jvp", "v", v, x);
  Tensor y = f(x);
  if (!y.requires_grad()) return zeros_like(y);
  // J^T u is linear in the dummy u; differentiating <J^T u, v> in u gives J v.
  Tensor u = zeros_like(y).requires_grad_();
  Tensor jtu = grad({y}, {x}, {u}, {.create_graph = true, .allow_unused = true})[0];
  if (!jtu.defined() || !jtu.requires_grad()) return zeros_like(y);
  Tensor jv = grad({jtu}, {u}, {v}, {.create_graph = create_graph, .allow_unused = true})[0];
  return jv.defined() ? jv : zeros_like(y);
}

}  // namespace symgrad
