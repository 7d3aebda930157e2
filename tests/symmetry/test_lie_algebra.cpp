// LieAlgebra: the built-ins' dimensions and defining properties, closure and the Jacobi
// identity (basis triples and random elements), so(3)'s structure constants against the
// Levi-Civita symbol, refusal of non-closed / dependent / empty bases, the coordinates ->
// element round trip and projections against closed forms (antisymmetric part, trace-free
// part, diagonal), contains, float32, gradcheck of element and coordinates, bad input.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <string>

#include "support/testing.hpp"
#include "symmetry/lie_algebra.hpp"

using namespace symgrad;
using symgrad::symmetry::bracket;
using symgrad::symmetry::LieAlgebra;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

double frobenius(const Tensor& x) {
  double s = 0;
  for (double v : x.to_vector()) s += v * v;
  return std::sqrt(s);
}

std::vector<LieAlgebra> builtins(std::int64_t n) {
  return {LieAlgebra::gl(n), LieAlgebra::sl(n), LieAlgebra::so(n), LieAlgebra::diagonal(n)};
}

Tensor random_coords(const LieAlgebra& algebra, const Shape& batch, std::uint64_t seed, DType dtype = DType::f64) {
  Shape shape(batch.size() + 1, algebra.dim());  // batch, then dim
  std::copy(batch.begin(), batch.end(), shape.begin());
  return random_input(shape, seed, -1, 1, dtype).detach();
}

// Unit matrix E_ij in an n x n float64 tensor.
Tensor unit(std::int64_t n, std::int64_t i, std::int64_t j) {
  std::vector<double> v(static_cast<std::size_t>(n * n), 0.0);
  v[static_cast<std::size_t>(i * n + j)] = 1.0;
  return from_vector(v, {n, n}, DType::f64);
}

}  // namespace

TEST_CASE("built-in algebras: names, dimensions and defining properties of the basis", "[lie]") {
  for (std::int64_t n : {2, 3, 5}) {
    CAPTURE(n);
    REQUIRE(LieAlgebra::gl(n).dim() == n * n);
    REQUIRE(LieAlgebra::sl(n).dim() == n * n - 1);
    REQUIRE(LieAlgebra::so(n).dim() == n * (n - 1) / 2);
    REQUIRE(LieAlgebra::diagonal(n).dim() == n);
    REQUIRE(LieAlgebra::so(n).name() == "so(" + std::to_string(n) + ")");
    for (const LieAlgebra& algebra : builtins(n)) {
      REQUIRE(algebra.n() == n);
      REQUIRE(algebra.basis().shape() == Shape{algebra.dim(), n, n});
      REQUIRE(algebra.basis().dtype() == DType::f64);
    }
    const Tensor sl = LieAlgebra::sl(n).basis(), so = LieAlgebra::so(n).basis(), diag = LieAlgebra::diagonal(n).basis();
    REQUIRE(frobenius(sum(sl * eye(n, n, DType::f64), {-2, -1})) == 0.0);  // traceless
    REQUIRE(frobenius(so + transpose(so)) == 0.0);                         // antisymmetric
    REQUIRE(frobenius(diag * (1.0 - eye(n, n, DType::f64))) == 0.0);       // diagonal
  }
  REQUIRE(LieAlgebra::gl(1).dim() == 1);
  REQUIRE(LieAlgebra::gl(4).name() == "gl(4)");
  REQUIRE_THROWS_AS(LieAlgebra::so(1), std::invalid_argument);
  REQUIRE_THROWS_AS(LieAlgebra::sl(1), std::invalid_argument);
  REQUIRE_THROWS_AS(LieAlgebra::gl(0), std::invalid_argument);
}

TEST_CASE("built-ins are closed under the bracket and satisfy the Jacobi identity", "[lie]") {
  for (std::int64_t n : {2, 3, 4}) {
    for (const LieAlgebra& algebra : builtins(n)) {
      CAPTURE(algebra.name());
      REQUIRE(algebra.closure_residual() <= 1e-14);
      // Jacobi on every basis triple, via the structure constants' bracket of basis elements.
      const Tensor e = algebra.basis();
      const std::int64_t d = algebra.dim();
      double jacobi = 0;
      for (std::int64_t i = 0; i < d; ++i) {
        const Tensor x = narrow(e, 0, i, 1);
        const Tensor y = unsqueeze(e, 1), z = unsqueeze(e, 0);  // all pairs (j, k)
        const Tensor cyclic = bracket(x, bracket(y, z)) + bracket(y, bracket(z, x)) + bracket(z, bracket(x, y));
        jacobi = std::max(jacobi, frobenius(cyclic));
      }
      REQUIRE(jacobi <= 1e-14);
      // Random elements: the bracket stays inside, and Jacobi holds relative to the sizes.
      const Tensor xs = algebra.element(random_coords(algebra, {3}, 100 + static_cast<std::uint64_t>(n)));
      const Tensor x = narrow(xs, 0, 0, 1), y = narrow(xs, 0, 1, 1), z = narrow(xs, 0, 2, 1);
      const Tensor xy = reshape(bracket(x, y), {n, n});
      REQUIRE(algebra.contains(xy, 1e-14));
      const double scale = frobenius(x) * frobenius(y) * frobenius(z);
      REQUIRE(frobenius(bracket(x, bracket(y, z)) + bracket(y, bracket(z, x)) + bracket(z, bracket(x, y))) <=
              1e-14 * scale);
    }
  }
}

TEST_CASE("structure constants: so(3) is the Levi-Civita symbol, and they rebuild the brackets", "[lie]") {
  // Basis e0 = E01 - E10, e1 = E02 - E20, e2 = E12 - E21: [e0, e1] = -e2 (hand computation
  // with E_ij E_kl = delta_jk E_il), so c_ijk = -epsilon_ijk in this sign convention.
  const std::vector<double> c = LieAlgebra::so(3).structure_constants().to_vector();
  REQUIRE(c.size() == 27);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) {
        const double epsilon = (i - j) * (j - k) * (k - i) / 2.0;  // Levi-Civita for 0..2
        CAPTURE(i, j, k);
        REQUIRE(c[static_cast<std::size_t>(i * 9 + j * 3 + k)] == -epsilon);
      }
  // For sl(3): [e_i, e_j] = sum_k c_ijk e_k exactly.
  const LieAlgebra sl3 = LieAlgebra::sl(3);
  const Tensor constants = sl3.structure_constants();
  REQUIRE(constants.shape() == Shape{8, 8, 8});
  const Tensor rebuilt = sl3.element(constants);  // [8, 8, 3, 3]
  const Tensor brackets = bracket(unsqueeze(sl3.basis(), 1), unsqueeze(sl3.basis(), 0));
  REQUIRE(frobenius(rebuilt - brackets) <= 1e-14);
}

TEST_CASE("from_basis refuses non-closed, dependent and empty bases and accepts closed ones", "[lie]") {
  const Tensor e01 = unit(2, 0, 1), e10 = unit(2, 1, 0), h = unit(2, 0, 0) - unit(2, 1, 1);
  // [E01, E10] = E00 - E11 is outside span{E01, E10}.
  REQUIRE_THROWS_WITH(LieAlgebra::from_basis(stack({e01, e10})),
                      Catch::Contains("not closed") && Catch::Contains("[e_0, e_1]"));
  // With H it is sl(2), in a non-orthogonal basis (E01 + E10, E01, H).
  const LieAlgebra skewed = LieAlgebra::from_basis(stack({e01 + e10, e01, h}), "sl(2) skewed");
  REQUIRE(skewed.dim() == 3);
  REQUIRE(skewed.closure_residual() <= 1e-14);
  REQUIRE(skewed.name() == "sl(2) skewed");
  REQUIRE_THROWS_WITH(LieAlgebra::from_basis(stack({e01, e01 * 2.0})), Catch::Contains("linearly dependent"));
  REQUIRE_THROWS_WITH(LieAlgebra::from_basis(stack({e01, zeros({2, 2}, DType::f64)})), Catch::Contains("is zero"));
  REQUIRE_THROWS_WITH(LieAlgebra::from_basis(zeros({0, 2, 2}, DType::f64)), Catch::Contains("empty"));
  REQUIRE_THROWS_AS(LieAlgebra::from_basis(zeros({2, 2, 3}, DType::f64)), std::invalid_argument);
  REQUIRE_THROWS_AS(LieAlgebra::from_basis(zeros({4, 4}, DType::f64)), std::invalid_argument);
  // A float32 basis is accepted and stored in float64.
  REQUIRE(LieAlgebra::from_basis(to_dtype(stack({e01, h}), DType::f32)).basis().dtype() == DType::f64);

  const Tensor generator = tensor({0, 2, -1, 0.5}, {2, 2}, DType::f64);
  const LieAlgebra line = LieAlgebra::single(generator, "line");
  REQUIRE(line.dim() == 1);
  REQUIRE(line.contains(generator * 3.5));
  REQUIRE_FALSE(line.contains(eye(2, 2, DType::f64)));
  REQUIRE_THROWS_AS(LieAlgebra::single(zeros({2, 2}, DType::f64)), std::invalid_argument);
  REQUIRE_THROWS_AS(LieAlgebra::single(zeros({2}, DType::f64)), std::invalid_argument);
  REQUIRE_THROWS_WITH(LieAlgebra().element(zeros({1}, DType::f64)), Catch::Contains("default-constructed"));
}

TEST_CASE("coordinates invert element; projections match closed forms", "[lie]") {
  const std::int64_t n = 4;
  const Tensor e01 = unit(2, 0, 1), e10 = unit(2, 1, 0), h = unit(2, 0, 0) - unit(2, 1, 1);
  std::vector<LieAlgebra> algebras = builtins(n);
  algebras.push_back(LieAlgebra::from_basis(stack({e01 + e10, e01, h}), "sl(2) skewed"));
  for (const LieAlgebra& algebra : algebras) {
    CAPTURE(algebra.name());
    const Tensor c = random_coords(algebra, {2, 3}, 7);
    const Tensor x = algebra.element(c);
    REQUIRE(x.shape() == Shape{2, 3, algebra.n(), algebra.n()});
    require_allclose(algebra.coordinates(x), c, 0, 1e-14);
    require_allclose(algebra.project(x), x, 0, 1e-14);
    REQUIRE(algebra.contains(
        reshape(narrow(reshape(x, {6, algebra.n(), algebra.n()}), 0, 4, 1), {algebra.n(), algebra.n()})));
  }
  // The projection of a general X, against formulas written without a basis.
  const Tensor x = random_input({n, n}, 8).detach();
  const Tensor identity = eye(n, n, DType::f64);
  require_allclose(LieAlgebra::so(n).project(x), (x - transpose(x)) * 0.5, 0, 1e-15);
  require_allclose(LieAlgebra::sl(n).project(x), x - identity * (sum(x * identity).item() / n), 0, 1e-15);
  require_allclose(LieAlgebra::diagonal(n).project(x), x * identity, 0, 1e-15);
  require_allclose(LieAlgebra::gl(n).project(x), x, 0, 1e-15);
  REQUIRE_FALSE(LieAlgebra::so(n).contains(x));
  REQUIRE_FALSE(LieAlgebra::sl(n).contains(identity));
  REQUIRE(LieAlgebra::sl(n).contains(x - identity * (sum(x * identity).item() / n)));

  // float32 in, float32 out; empty batches; bad shapes.
  const LieAlgebra so4 = LieAlgebra::so(n);
  const Tensor c32 = random_coords(so4, {5}, 9, DType::f32);
  const Tensor x32 = so4.element(c32);
  REQUIRE(x32.dtype() == DType::f32);
  require_allclose(so4.coordinates(x32), c32, 0, 1e-6);
  REQUIRE(so4.element(zeros({0, so4.dim()}, DType::f64)).shape() == Shape{0, n, n});
  REQUIRE(so4.coordinates(zeros({0, n, n}, DType::f64)).shape() == Shape{0, so4.dim()});
  REQUIRE_THROWS_WITH(so4.element(zeros({3, 5}, DType::f64)), Catch::Contains("[3, 5]") && Catch::Contains("so(4)"));
  REQUIRE_THROWS_AS(so4.coordinates(zeros({3, 3}, DType::f64)), std::invalid_argument);
  REQUIRE_THROWS_AS(so4.contains(zeros({2, n, n}, DType::f64)), std::invalid_argument);
}

TEST_CASE("element and coordinates are differentiable: gradcheck and gradgradcheck", "[lie][grad]") {
  const Tensor e01 = unit(2, 0, 1), e10 = unit(2, 1, 0), h = unit(2, 0, 0) - unit(2, 1, 1);
  for (const LieAlgebra& algebra : {LieAlgebra::sl(3), LieAlgebra::from_basis(stack({e01 + e10, e01, h}))}) {
    CAPTURE(algebra.name());
    MultiFn element = [&](const TensorList& in) { return algebra.element(in[0]); };
    MultiFn coordinates = [&](const TensorList& in) { return algebra.coordinates(in[0]); };
    Tensor c = random_input({2, algebra.dim()}, 31);
    Tensor x = random_input({2, algebra.n(), algebra.n()}, 32);
    REQUIRE_GRADCHECK(element, (TensorList{c}));
    REQUIRE_GRADCHECK(coordinates, (TensorList{x}));
    REQUIRE_GRADGRADCHECK(coordinates, (TensorList{x}));
  }
}
