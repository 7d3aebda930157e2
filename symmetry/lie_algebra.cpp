// A matrix Lie algebra as a float64 basis [dim, n, n] and the inverse of its Gram matrix.
// Coordinates are those of the Frobenius-orthogonal projection: for X, the c minimising
// ||X - sum_k c_k e_k||_F solves the normal equations G c = (<e_i, X>)_i, G_ij = <e_i, e_j>.
// element() and coordinates() are linear maps written as matmuls, so they differentiate.
#include "symmetry/lie_algebra.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace symgrad::symmetry {

Tensor bracket(const Tensor& a, const Tensor& b) { return matmul(a, b) - matmul(b, a); }

namespace {

std::string n_str(std::int64_t n) { return std::to_string(n); }
std::string shape_of(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "(undefined)"; }

void require_size(const char* algebra, std::int64_t n, std::int64_t minimum) {
  if (n < minimum)
    throw std::invalid_argument(std::string("LieAlgebra::") + algebra + ": n = " + n_str(n) +
                                " must be >= " + n_str(minimum));
}

// One basis element as its nonzero entries (row, column, value).
using Entries = std::vector<std::tuple<std::int64_t, std::int64_t, double>>;

Tensor basis_from_entries(std::int64_t n, const std::vector<Entries>& elements) {
  const std::size_t size = static_cast<std::size_t>(n * n);
  std::vector<double> values(elements.size() * size, 0.0);
  for (std::size_t k = 0; k < elements.size(); ++k)
    for (const auto& [i, j, v] : elements[k]) values[k * size + static_cast<std::size_t>(i * n + j)] = v;
  return from_vector(values, {static_cast<std::int64_t>(elements.size()), n, n}, DType::f64);
}

double frobenius(const Tensor& x) { return std::sqrt(sum(x * x).item()); }

// The basis pair whose bracket leaves the span the most, measured as
// ||[e_i, e_j] - project([e_i, e_j])||_F / (||e_i||_F ||e_j||_F), over i < j.
struct WorstBracket {
  double residual = 0;
  std::int64_t i = 0, j = 0;
};
WorstBracket worst_bracket(const LieAlgebra& algebra) {
  NoGradGuard no_grad;
  const Tensor& basis = algebra.basis();
  const std::vector<double> squared_norms = sum(basis * basis, {-2, -1}).to_vector();
  WorstBracket worst;
  for (std::int64_t i = 0; i < algebra.dim(); ++i) {
    const Tensor brackets = bracket(narrow(basis, 0, i, 1), basis);  // [e_i, e_j] for every j
    const Tensor leftover = brackets - algebra.project(brackets);
    const std::vector<double> left = sum(leftover * leftover, {-2, -1}).to_vector();
    for (std::int64_t j = i + 1; j < algebra.dim(); ++j) {
      const auto at = [](const std::vector<double>& v, std::int64_t k) { return v[static_cast<std::size_t>(k)]; };
      const double r = std::sqrt(at(left, j) / (at(squared_norms, i) * at(squared_norms, j)));
      if (!(r <= worst.residual)) worst = {r, i, j};
    }
  }
  return worst;
}

}  // namespace

void LieAlgebra::require_basis(const char* method) const {
  if (!basis_.defined())
    throw std::invalid_argument(std::string("LieAlgebra::") + method +
                                ": this algebra is default-constructed (empty); build one with gl, sl, so, "
                                "diagonal, single or from_basis");
}

LieAlgebra::LieAlgebra(std::string name, Tensor basis, bool orthogonal) : name_(std::move(name)) {
  NoGradGuard no_grad;
  basis_ = to_dtype(basis.detach(), DType::f64);
  dim_ = basis_.size(0);
  n_ = basis_.size(1);
  const Tensor flat = reshape(basis_, {dim_, n_ * n_});
  if (orthogonal) {
    inverse_norms_squared_ = 1.0 / sum(flat * flat, {1});
    return;
  }
  const Tensor gram = matmul(flat, flat, false, true);
  gram_inverse_ = solve(gram, eye(dim_, dim_, DType::f64));
}

LieAlgebra LieAlgebra::gl(std::int64_t n) {
  require_size("gl", n, 1);
  std::vector<Entries> elements;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) elements.push_back({{i, j, 1.0}});
  return LieAlgebra("gl(" + n_str(n) + ")", basis_from_entries(n, elements), true);
}

LieAlgebra LieAlgebra::sl(std::int64_t n) {
  require_size("sl", n, 2);  // sl(1) = {0} has no basis
  std::vector<Entries> elements;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      if (i != j) elements.push_back({{i, j, 1.0}});
  for (std::int64_t i = 0; i + 1 < n; ++i) elements.push_back({{i, i, 1.0}, {i + 1, i + 1, -1.0}});
  return LieAlgebra("sl(" + n_str(n) + ")", basis_from_entries(n, elements));
}

LieAlgebra LieAlgebra::so(std::int64_t n) {
  require_size("so", n, 2);  // so(1) = {0} has no basis
  std::vector<Entries> elements;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i + 1; j < n; ++j) elements.push_back({{i, j, 1.0}, {j, i, -1.0}});
  return LieAlgebra("so(" + n_str(n) + ")", basis_from_entries(n, elements), true);
}

LieAlgebra LieAlgebra::diagonal(std::int64_t n) {
  require_size("diagonal", n, 1);
  std::vector<Entries> elements;
  for (std::int64_t i = 0; i < n; ++i) elements.push_back({{i, i, 1.0}});
  return LieAlgebra("diagonal(" + n_str(n) + ")", basis_from_entries(n, elements), true);
}

LieAlgebra LieAlgebra::single(const Tensor& generator, std::string name) {
  if (!generator.defined() || generator.dim() != 2)
    throw std::invalid_argument("LieAlgebra::single: generator " + shape_of(generator) + " must be one matrix [n, n]");
  return from_basis(unsqueeze(generator.detach(), 0), std::move(name));
}

LieAlgebra LieAlgebra::from_basis(const Tensor& basis, std::string name, double closure_tolerance) {
  const std::string op = "LieAlgebra::from_basis(" + name + ")";
  if (!basis.defined() || basis.dim() != 3 || basis.size(1) != basis.size(2))
    throw std::invalid_argument(op + ": basis " + shape_of(basis) + " must be [dim, n, n]");
  if (basis.size(0) == 0 || basis.size(1) == 0)
    throw std::invalid_argument(op + ": basis " + shape_str(basis.shape()) + " is empty");
  const std::int64_t dim = basis.size(0), n = basis.size(1);
  NoGradGuard no_grad;
  const Tensor b = to_dtype(basis.detach(), DType::f64);
  const std::vector<double> values = b.to_vector();
  for (double v : values)
    if (!std::isfinite(v))
      throw std::invalid_argument(op + ": basis " + shape_str(basis.shape()) + " has a non-finite entry");
  // Linear independence by modified Gram-Schmidt on the flattened matrices: e_k is
  // dependent when what is left of it after removing e_0..e_{k-1} is rounding noise.
  const std::size_t size = static_cast<std::size_t>(n * n);
  std::vector<std::vector<double>> orthonormal;
  for (std::int64_t k = 0; k < dim; ++k) {
    std::vector<double> r(values.begin() + static_cast<std::ptrdiff_t>(k * n * n),
                          values.begin() + static_cast<std::ptrdiff_t>((k + 1) * n * n));
    double original = 0;
    for (double v : r) original += v * v;
    for (const auto& q : orthonormal) {
      double dot = 0;
      for (std::size_t i = 0; i < size; ++i) dot += q[i] * r[i];
      for (std::size_t i = 0; i < size; ++i) r[i] -= dot * q[i];
    }
    double left = 0;
    for (double v : r) left += v * v;
    if (!(std::sqrt(left) > 1e-10 * std::sqrt(original)))
      throw std::invalid_argument(op + ": basis " + shape_str(basis.shape()) + " is linearly dependent: element " +
                                  n_str(k) + (original == 0 ? " is zero" : " lies in the span of the ones before it"));
    for (double& v : r) v /= std::sqrt(left);
    orthonormal.push_back(std::move(r));
  }
  LieAlgebra algebra(std::move(name), b);
  const WorstBracket worst = worst_bracket(algebra);
  if (!(worst.residual <= closure_tolerance))
    throw std::invalid_argument(op + ": the span of basis " + shape_str(basis.shape()) +
                                " is not closed under the bracket: [e_" + n_str(worst.i) + ", e_" + n_str(worst.j) +
                                "] leaves it (relative residual " + std::to_string(worst.residual) + " > " +
                                std::to_string(closure_tolerance) + ")");
  return algebra;
}

Tensor LieAlgebra::element(const Tensor& coords) const {
  require_basis("element");
  if (!coords.defined() || coords.dim() < 1 || coords.size(-1) != dim_)
    throw std::invalid_argument("LieAlgebra::element(" + name_ + "): coords " + shape_of(coords) + " must be [..., " +
                                n_str(dim_) + "]");
  Shape out_shape(coords.shape().begin(), coords.shape().end() - 1);
  out_shape.push_back(n_);
  out_shape.push_back(n_);
  const Tensor flat_basis = reshape(to_dtype(basis_, coords.dtype()), {dim_, n_ * n_});
  return reshape(matmul(reshape(coords, {-1, dim_}), flat_basis), out_shape);
}

Tensor LieAlgebra::coordinates(const Tensor& x) const {
  require_basis("coordinates");
  if (!x.defined() || x.dim() < 2 || x.size(-1) != n_ || x.size(-2) != n_)
    throw std::invalid_argument("LieAlgebra::coordinates(" + name_ + "): X " + shape_of(x) + " must be [..., " +
                                n_str(n_) + ", " + n_str(n_) + "]");
  Shape out_shape(x.shape().begin(), x.shape().end() - 2);
  out_shape.push_back(dim_);
  const Tensor flat_basis = reshape(to_dtype(basis_, x.dtype()), {dim_, n_ * n_});
  const Tensor inner = matmul(reshape(x, {-1, n_ * n_}), flat_basis, false, true);  // <e_k, X>
  if (inverse_norms_squared_.defined()) return reshape(inner * to_dtype(inverse_norms_squared_, x.dtype()), out_shape);
  return reshape(matmul(inner, to_dtype(gram_inverse_, x.dtype()), false, true), out_shape);
}

Tensor LieAlgebra::project(const Tensor& x) const { return element(coordinates(x)); }

Tensor LieAlgebra::structure_constants() const {
  require_basis("structure_constants");
  NoGradGuard no_grad;
  std::vector<Tensor> rows;  // row i: coordinates of [e_i, e_j] for every j, [dim, dim]
  for (std::int64_t i = 0; i < dim_; ++i) rows.push_back(coordinates(bracket(narrow(basis_, 0, i, 1), basis_)));
  return stack(rows, 0);
}

double LieAlgebra::closure_residual() const {
  require_basis("closure_residual");
  return worst_bracket(*this).residual;
}

bool LieAlgebra::contains(const Tensor& x, double tolerance) const {
  require_basis("contains");
  if (!x.defined() || x.dim() != 2 || x.size(0) != n_ || x.size(1) != n_)
    throw std::invalid_argument("LieAlgebra::contains(" + name_ + "): X " + shape_of(x) + " must be one [" + n_str(n_) +
                                ", " + n_str(n_) + "] matrix");
  NoGradGuard no_grad;
  const Tensor x64 = to_dtype(x.detach(), DType::f64);
  return frobenius(x64 - project(x64)) <= tolerance * std::max(1.0, frobenius(x64));
}

}  // namespace symgrad::symmetry
