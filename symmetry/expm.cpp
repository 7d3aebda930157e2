// expm as a differentiable op, and the Frechet derivative built on it.
//
// The forward (expm_pade.cpp) is plain numerics. The backward needs the adjoint of the
// Frechet derivative, L(A, .)* = L(A^T, .), and the block identity
//   exp([[X, E], [0, X]]) = [[exp(X), L(X, E)], [0, exp(X)]]
// (Higham 2008, "Functions of Matrices", Thm 3.6; Mathias 1996) gives it as one more call of
// expm on a 2n x 2n matrix assembled from ops. The backward is therefore itself recorded
// when create_graph is on, and second derivatives come out of the same rule (on 4n x 4n).
#include "symmetry/expm.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace symgrad::symmetry {
namespace {

void check_square_batch(const char* op, const char* arg, const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": " + arg + " is an undefined tensor");
  if (x.dim() < 2 || x.size(-1) != x.size(-2))
    throw std::invalid_argument(std::string(op) + ": " + arg + " " + shape_str(x.shape()) +
                                " must be a (batch of) square matrices [..., n, n]");
}

void check_finite(const char* op, const char* arg, const Tensor& x) {
  for (double v : x.to_vector())
    if (!std::isfinite(v))
      throw std::invalid_argument(std::string(op) + ": " + arg + " " + shape_str(x.shape()) +
                                  " has a non-finite entry (" + std::to_string(v) + ")");
}

// Per matrix of the batch, ||A||_1 / ||E||_1 (1 where either is zero), shaped [..., 1, 1].
// L is linear in E, so L(A, E) = L(A, c E) / c for any constant c; choosing ||c E|| =
// ||A|| keeps the block matrix's norm, hence the squarings, those of A alone (Al-Mohy &
// Higham 2009, "Computing the Frechet derivative of the matrix exponential", section 7).
Tensor balancing_scale(const Tensor& a, const Tensor& e) {
  const std::int64_t n = a.size(-1);
  Shape scale_shape(a.shape().begin(), a.shape().end() - 2);
  const std::int64_t items = shape_numel(scale_shape);
  scale_shape.push_back(1);
  scale_shape.push_back(1);
  const std::vector<double> av = a.to_vector(), ev = e.to_vector();
  std::vector<double> scale(static_cast<std::size_t>(items), 1.0);
  for (std::int64_t item = 0; item < items; ++item) {
    double a_norm = 0, e_norm = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      double a_col = 0, e_col = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        a_col += std::abs(av[static_cast<std::size_t>(item * n * n + i * n + j)]);
        e_col += std::abs(ev[static_cast<std::size_t>(item * n * n + i * n + j)]);
      }
      a_norm = std::max(a_norm, a_col);
      e_norm = std::max(e_norm, e_col);
    }
    // Rounded to a power of two, so that multiplying and dividing by it is exact.
    if (a_norm > 0 && e_norm > 0)
      scale[static_cast<std::size_t>(item)] = std::exp2(std::round(std::log2(a_norm / e_norm)));
  }
  return from_vector(scale, scale_shape, a.dtype());
}

// L(A, E) as the top-right block of expm([[A, cE], [0, A]]) / c, with ops only.
Tensor frechet_by_block(const Tensor& a, const Tensor& e) {
  const std::int64_t n = a.size(-1);
  const Tensor scale = balancing_scale(a, e);  // a power of two: scaling is exact
  const Tensor top = concat({a, e * scale}, -1);
  const Tensor bottom = concat({zeros_like(a), a}, -1);
  const Tensor block_exp = expm(concat({top, bottom}, -2));
  return narrow(narrow(block_exp, -2, 0, n), -1, n, n) / scale;
}

}  // namespace

// expm: saves A (an input, so no reference cycle) for the backward gA = L(A^T, g).
Tensor expm(const Tensor& a) {
  check_square_batch("expm", "A", a);
  if (a.numel() > 0) check_finite("expm", "A", a);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  if (out.numel() > 0) detail::expm_forward(a.detach(), out);
  if (auto node = record("expm", out, {a}))
    node->backward = [a](const Tensor& g, const Node&) {
      return TensorList{frechet_by_block(transpose(a, -2, -1), g)};
    };
  return out;
}

Tensor expm_frechet(const Tensor& a, const Tensor& e) {
  check_square_batch("expm_frechet", "A", a);
  check_square_batch("expm_frechet", "E", e);
  if (a.shape() != e.shape() || a.dtype() != e.dtype())
    throw std::invalid_argument("expm_frechet: A " + shape_str(a.shape()) + " " + dtype_name(a.dtype()) + " and E " +
                                shape_str(e.shape()) + " " + dtype_name(e.dtype()) +
                                " must have the same shape and dtype");
  if (a.numel() == 0) return zeros_like(a);
  check_finite("expm_frechet", "E", e);
  return frechet_by_block(a, e);
}

}  // namespace symgrad::symmetry
