#pragma once
// A matrix Lie algebra given by a basis: the infinitesimal form of a continuous group of
// n x n matrices (GL(n), SL(n), SO(n), positive diagonal scalings, ...). The symmetry
// module represents a weight symmetry by such an algebra; a group element is exp(xi)
// (expm.hpp) of an element xi = sum_k c_k e_k of it.
//
// The basis is stored in float64 (exact 0/1 entries for the built-ins); methods that take
// a tensor work in that tensor's dtype and are differentiable (they are linear maps).
#include <cstdint>
#include <string>

#include "engine/engine.hpp"

namespace symgrad::symmetry {

// [A, B] = AB - BA, batched over leading axes ([..., n, n], broadcasting), differentiable.
Tensor bracket(const Tensor& a, const Tensor& b);

class LieAlgebra {
 public:
  // An empty placeholder (dim 0, no basis) so that aggregates such as WeightSymmetry can be
  // default-constructed; assign a real algebra before use (its methods throw until then).
  LieAlgebra() = default;

  // gl(n): every n x n matrix; basis E_ij (row-major order), dimension n^2.
  static LieAlgebra gl(std::int64_t n);
  // sl(n): traceless matrices; basis E_ij (i != j) then E_ii - E_{i+1,i+1}; n^2 - 1.
  // (sl and so need n >= 2, gl and diagonal n >= 1: a Lie algebra here has a basis.)
  static LieAlgebra sl(std::int64_t n);
  // so(n): antisymmetric matrices; basis E_ij - E_ji (i < j); n(n-1)/2. With this basis
  // so(3) has [e_i, e_j] = -epsilon_ijk e_k.
  static LieAlgebra so(std::int64_t n);
  // Diagonal matrices (exp gives positive scalings); basis E_ii; n.
  static LieAlgebra diagonal(std::int64_t n);
  // The one-dimensional algebra spanned by `generator` [n, n].
  static LieAlgebra single(const Tensor& generator, std::string name = "single");
  // A user-supplied basis [d, n, n] (any float dtype; stored in float64). Throws
  // std::invalid_argument naming the offending pair when the span is not closed under the
  // bracket (relative residual of the projection above `closure_tolerance`), or when the
  // basis is linearly dependent or empty.
  static LieAlgebra from_basis(const Tensor& basis, std::string name = "custom",
                               double closure_tolerance = 1e-10);

  const std::string& name() const { return name_; }  // "gl(4)", "so(3)", ...
  std::int64_t n() const { return n_; }
  std::int64_t dim() const { return dim_; }
  const Tensor& basis() const { return basis_; }  // [dim, n, n], float64, no grad

  // xi = sum_k c_k e_k: coords [..., dim] -> [..., n, n], in coords' dtype; differentiable.
  Tensor element(const Tensor& coords) const;
  // The coordinates of the Frobenius-orthogonal projection of X [..., n, n] onto the
  // algebra: [..., dim]; exact for elements of the algebra. Differentiable.
  Tensor coordinates(const Tensor& x) const;
  // The projection itself, element(coordinates(x)).
  Tensor project(const Tensor& x) const;
  // Structure constants c [dim, dim, dim]: [e_i, e_j] = sum_k c[i, j, k] e_k (float64).
  // Costs dim brackets of [dim, n, n] batches: fine for dim up to a few hundred.
  Tensor structure_constants() const;
  // max over basis pairs of ||[e_i, e_j] - project([e_i, e_j])||_F / (||e_i|| ||e_j||):
  // zero (to rounding) for a Lie algebra.
  double closure_residual() const;
  // Whether ||x - project(x)||_F <= tolerance * max(1, ||x||_F), for one matrix [n, n].
  bool contains(const Tensor& x, double tolerance = 1e-12) const;

 private:
  // `orthogonal`: the caller knows the basis is Frobenius-orthogonal (gl, so, diagonal),
  // so coordinates() divides by the norms instead of solving with the dim x dim Gram
  // matrix, which for gl(64) would be 4096 x 4096.
  LieAlgebra(std::string name, Tensor basis, bool orthogonal = false);
  void require_basis(const char* method) const;  // throws for a default-constructed algebra
  std::string name_;
  std::int64_t n_ = 0;
  std::int64_t dim_ = 0;
  Tensor basis_;  // [dim, n, n] float64
  Tensor gram_inverse_;  // [dim, dim] float64: (<e_i, e_j>)^-1 for coordinates()
  Tensor inverse_norms_squared_;  // [dim] float64, instead of gram_inverse_ when orthogonal
};

}  // namespace symgrad::symmetry
