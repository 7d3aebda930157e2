#pragma once
// Derivative helpers built on grad(): Jacobians, Hessian-vector products and JVPs.
#include <functional>

#include "engine/autograd.hpp"

namespace symgrad {

using TensorFn = std::function<Tensor(const Tensor&)>;

// J[i..., j...] = d f(x)[i...] / d x[j...], shape f(x).shape + x.shape. One
// reverse pass per output element. create_graph makes J differentiable in x.
Tensor jacobian(const TensorFn& f, const Tensor& x, bool create_graph = false);
// H v for a scalar f, by differentiating <grad f(x), v> (double backward).
Tensor hvp(const TensorFn& f, const Tensor& x, const Tensor& v, bool create_graph = false);
// Hessian of a scalar f, shape x.shape + x.shape.
Tensor hessian(const TensorFn& f, const Tensor& x, bool create_graph = false);
// J v, by the double-VJP trick: u -> J^T u is linear in u, so J v = d/du <J^T u, v>.
Tensor jvp(const TensorFn& f, const Tensor& x, const Tensor& v, bool create_graph = false);

}  // namespace symgrad
