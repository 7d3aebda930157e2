// solve: forward against a Gauss-Jordan reference written here (a different algorithm
// from the library's LU) and the residual A X - B, both dtypes; batch broadcasting;
// vector and matrix right-hand sides; n = 1 and empty batches; gradcheck and
// gradgradcheck in float64 for A and B; singular matrices and shape errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// Solves one n x n system with k right-hand sides by Gauss-Jordan elimination on the
// augmented matrix [A | B], choosing the largest pivot in each column.
std::vector<double> gauss_jordan(std::vector<double> a, std::vector<double> b, std::int64_t n, std::int64_t k) {
  for (std::int64_t col = 0; col < n; ++col) {
    std::int64_t best = col;
    for (std::int64_t r = col + 1; r < n; ++r)
      if (std::abs(a[r * n + col]) > std::abs(a[best * n + col])) best = r;
    for (std::int64_t c = 0; c < n; ++c) std::swap(a[col * n + c], a[best * n + c]);
    for (std::int64_t c = 0; c < k; ++c) std::swap(b[col * k + c], b[best * k + c]);
    const double pivot = a[col * n + col];
    for (std::int64_t c = 0; c < n; ++c) a[col * n + c] /= pivot;
    for (std::int64_t c = 0; c < k; ++c) b[col * k + c] /= pivot;
    for (std::int64_t r = 0; r < n; ++r) {
      if (r == col) continue;
      const double factor = a[r * n + col];
      for (std::int64_t c = 0; c < n; ++c) a[r * n + c] -= factor * a[col * n + c];
      for (std::int64_t c = 0; c < k; ++c) b[r * k + c] -= factor * b[col * k + c];
    }
  }
  return b;
}

// Flat index of the batch item that item `item` of the broadcast batch `out` reads from an
// operand with batch shape `in` (NumPy broadcasting, written independently of the library).
std::int64_t batch_item(const Shape& in, const Shape& out, std::int64_t item) {
  std::int64_t offset = 0, stride = 1;
  for (std::size_t d = out.size(); d-- > 0;) {
    const std::int64_t coord = item % out[d];
    item /= out[d];
    const std::size_t lead = out.size() - in.size();
    if (d < lead) continue;
    if (in[d - lead] != 1) offset += coord * stride;
    stride *= in[d - lead];
  }
  return offset;
}

// The reference solution over a broadcast batch: a_batch, b_batch the operands' batch
// axes, b holding n x k per item (k = 1 for vectors).
std::vector<double> reference_solve(const Tensor& a, const Shape& a_batch, const Tensor& b, const Shape& b_batch,
                                    const Shape& batch, std::int64_t n, std::int64_t k) {
  const std::vector<double> av = a.to_vector(), bv = b.to_vector();
  std::vector<double> out;
  for (std::int64_t item = 0; item < shape_numel(batch); ++item) {
    const std::int64_t ai = batch_item(a_batch, batch, item), bi = batch_item(b_batch, batch, item);
    std::vector<double> one_a(av.begin() + ai * n * n, av.begin() + (ai + 1) * n * n);
    std::vector<double> one_b(bv.begin() + bi * n * k, bv.begin() + (bi + 1) * n * k);
    const std::vector<double> x = gauss_jordan(one_a, one_b, n, k);
    out.insert(out.end(), x.begin(), x.end());
  }
  return out;
}

// A well-conditioned batch: uniform entries in [-1, 1] plus n on the diagonal.
Tensor well_conditioned(const Shape& shape, std::uint64_t seed, DType dtype) {
  const std::int64_t n = shape.back();
  NoGradGuard no_grad;
  return (random_input(shape, seed, -1, 1, dtype) + eye(n, n, dtype) * static_cast<double>(n)).detach();
}

}  // namespace

TEST_CASE("solve matches Gauss-Jordan elimination and A X = B, float64 and float32", "[linalg]") {
  for (DType dtype : {DType::f64, DType::f32}) {
    const double tol = dtype == DType::f64 ? 1e-12 : 1e-5;
    Tensor a = well_conditioned({3, 4, 4}, 1, dtype);
    Tensor b = random_input({3, 4, 2}, 2, -1, 1, dtype).detach();
    Tensor x = solve(a, b);
    REQUIRE(x.shape() == Shape{3, 4, 2});
    REQUIRE(x.dtype() == dtype);
    require_allclose(x, reference_solve(a, {3}, b, {3}, {3}, 4, 2), tol, tol);
    require_allclose(matmul(a, x), b, tol, tol);
  }
}

TEST_CASE("solve pivots: a zero on the diagonal is no obstacle", "[linalg]") {
  // Without row exchanges the first pivot is 0; the exact solution is (1, 2, 3).
  Tensor a = tensor({0, 2, 1, 1, 1, 1, 2, 1, 0}, {3, 3}, DType::f64);
  Tensor b = tensor({7, 6, 4}, {3}, DType::f64);
  require_allclose(solve(a, b), {1, 2, 3}, 1e-14, 1e-14);
}

TEST_CASE("solve broadcasts batch axes", "[linalg]") {
  Tensor a = well_conditioned({2, 1, 3, 3}, 3, DType::f64);
  Tensor b = random_input({4, 3, 2}, 4).detach();
  Tensor x = solve(a, b);
  REQUIRE(x.shape() == Shape{2, 4, 3, 2});
  require_allclose(x, reference_solve(a, {2, 1}, b, {4}, {2, 4}, 3, 2), 1e-12, 1e-12);

  // One A shared by a batch of right-hand sides, and the other way round.
  Tensor shared_a = well_conditioned({3, 3}, 5, DType::f64);
  Tensor many_b = random_input({5, 3, 1}, 6).detach();
  require_allclose(solve(shared_a, many_b), reference_solve(shared_a, {}, many_b, {5}, {5}, 3, 1), 1e-12, 1e-12);
  Tensor many_a = well_conditioned({5, 3, 3}, 7, DType::f64);
  Tensor shared_b = random_input({3, 2}, 8).detach();
  require_allclose(solve(many_a, shared_b), reference_solve(many_a, {5}, shared_b, {}, {5}, 3, 2), 1e-12, 1e-12);
}

TEST_CASE("solve takes vectors: B [..., n] when its shape is A's without the last axis", "[linalg]") {
  Tensor a = well_conditioned({4, 3, 3}, 9, DType::f64);
  Tensor b = random_input({4, 3}, 10).detach();
  Tensor x = solve(a, b);
  REQUIRE(x.shape() == Shape{4, 3});
  require_allclose(x, reference_solve(a, {4}, b, {4}, {4}, 3, 1), 1e-12, 1e-12);

  // A single vector [n] is shared by every matrix of the batch.
  Tensor v = random_input({3}, 11).detach();
  Tensor xv = solve(a, v);
  REQUIRE(xv.shape() == Shape{4, 3});
  require_allclose(xv, reference_solve(a, {4}, v, {}, {4}, 3, 1), 1e-12, 1e-12);

  // A [3, 3] with B [3, 3] is a matrix right-hand side (the rank decides, as in PyTorch).
  Tensor a2 = well_conditioned({3, 3}, 12, DType::f64);
  Tensor b2 = random_input({3, 3}, 13).detach();
  require_allclose(solve(a2, b2), reference_solve(a2, {}, b2, {}, {}, 3, 3), 1e-12, 1e-12);
}

TEST_CASE("solve edges: n = 1 divides, an empty batch gives an empty result", "[linalg]") {
  Tensor a = tensor({2, -4, 0.5}, {3, 1, 1}, DType::f64);
  Tensor b = tensor({1, 2, 3}, {3, 1}, DType::f64);
  require_allclose(solve(a, b), {0.5, -0.5, 6}, 1e-15, 0);

  Tensor empty_a = zeros({0, 3, 3}, DType::f64).requires_grad_();
  Tensor empty_b = zeros({0, 3, 2}, DType::f64).requires_grad_();
  Tensor x = solve(empty_a, empty_b);
  REQUIRE(x.shape() == Shape{0, 3, 2});
  const TensorList grads = grad({sum(x)}, {empty_a, empty_b});
  REQUIRE(grads[0].shape() == Shape{0, 3, 3});
  REQUIRE(grads[1].shape() == Shape{0, 3, 2});
}

TEST_CASE("solve lets NaN and infinity propagate instead of calling the matrix singular", "[linalg]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = tensor({nan, 0, 0, 1}, {2, 2}, DType::f64);
  const std::vector<double> x = solve(a, ones({2}, DType::f64)).to_vector();
  REQUIRE(std::isnan(x[0]));
  Tensor b = tensor({1, 2}, {2}, DType::f64);
  Tensor inf_a = tensor({std::numeric_limits<double>::infinity(), 1, 1, 1}, {2, 2}, DType::f64);
  REQUIRE_NOTHROW(solve(inf_a, b));
}

TEST_CASE("solve float32 agrees with float64", "[linalg]") {
  Tensor a = well_conditioned({6, 5, 5}, 14, DType::f64);
  Tensor b = random_input({6, 5, 3}, 15).detach();
  Tensor x64 = solve(a, b);
  Tensor x32 = solve(to_dtype(a, DType::f32), to_dtype(b, DType::f32));
  require_allclose(x32, x64.to_vector(), 1e-5, 1e-6);
}

TEST_CASE("solve gradcheck and gradgradcheck in float64", "[linalg][grad]") {
  // A is made well-conditioned inside the function, so finite differences stay meaningful.
  auto conditioned = [](const Tensor& a) { return a + eye(a.size(-1), a.size(-1), a.dtype()) * 3.0; };
  SECTION("matrix right-hand side with broadcast batch axes") {
    Tensor a = random_input({2, 1, 3, 3}, 21);
    Tensor b = random_input({2, 3, 2}, 22);
    MultiFn f = [&](const TensorList& in) { return solve(conditioned(in[0]), in[1]); };
    REQUIRE_GRADCHECK(f, (TensorList{a, b}));
    REQUIRE_GRADGRADCHECK(f, (TensorList{a, b}));
  }
  SECTION("vector right-hand side") {
    Tensor a = random_input({2, 3, 3}, 23);
    Tensor b = random_input({2, 3}, 24);
    MultiFn f = [&](const TensorList& in) { return solve(conditioned(in[0]), in[1]); };
    REQUIRE_GRADCHECK(f, (TensorList{a, b}));
    REQUIRE_GRADGRADCHECK(f, (TensorList{a, b}));
  }
  SECTION("one vector shared by a batch of matrices") {
    Tensor a = random_input({2, 2, 2}, 25);
    Tensor b = random_input({2}, 26);
    MultiFn f = [&](const TensorList& in) { return solve(conditioned(in[0]), in[1]); };
    REQUIRE_GRADCHECK(f, (TensorList{a, b}));
    REQUIRE_GRADGRADCHECK(f, (TensorList{a, b}));
  }
  SECTION("only A or only B requires grad") {
    Tensor a = random_input({3, 3}, 27);
    Tensor b = random_input({3, 2}, 28);
    Tensor fixed_a = well_conditioned({3, 3}, 29, DType::f64);
    Tensor fixed_b = b.detach();
    MultiFn f_a = [&](const TensorList& in) { return solve(conditioned(in[0]), fixed_b); };
    MultiFn f_b = [&](const TensorList& in) { return solve(fixed_a, in[0]); };
    REQUIRE_GRADGRADCHECK(f_a, (TensorList{a}));
    REQUIRE_GRADGRADCHECK(f_b, (TensorList{b}));
  }
}

TEST_CASE("solve reports singular matrices with the batch index and shapes", "[linalg][errors]") {
  // Batch item 1 is [[1, 2], [2, 4]]: rank 1.
  Tensor a = tensor({3, 0, 0, 3, 1, 2, 2, 4}, {2, 2, 2}, DType::f64);
  Tensor b = ones({2, 2}, DType::f64);
  REQUIRE_THROWS_AS(solve(a, b), std::invalid_argument);
  REQUIRE_THROWS_WITH(solve(a, b), Catch::Contains("solve") && Catch::Contains("singular") &&
                                       Catch::Contains("batch index [1]") && Catch::Contains("[2, 2, 2]") &&
                                       Catch::Contains("B [2, 2]"));
  // Singular after float32 rounding: 1 + 1e-9 is 1.
  Tensor a32 = tensor({1, 1, 1, 1 + 1e-9}, {2, 2}, DType::f32);
  REQUIRE_THROWS_WITH(solve(a32, ones({2}, DType::f32)), Catch::Contains("singular"));
  REQUIRE_THROWS_WITH(solve(zeros({1, 1}, DType::f64), ones({1}, DType::f64)), Catch::Contains("singular"));
}

TEST_CASE("solve shape and dtype errors name both operands", "[linalg][errors]") {
  const Tensor b = ones({3, 2}, DType::f64);
  REQUIRE_THROWS_WITH(solve(ones({3, 4}, DType::f64), b),
                      Catch::Contains("solve") && Catch::Contains("A [3, 4]") && Catch::Contains("square"));
  REQUIRE_THROWS_WITH(solve(ones({3}, DType::f64), b), Catch::Contains("A [3]") && Catch::Contains("B [3, 2]"));
  REQUIRE_THROWS_WITH(solve(eye(4, 4, DType::f64), b),
                      Catch::Contains("A [4, 4]") && Catch::Contains("B [3, 2]") && Catch::Contains("rows"));
  REQUIRE_THROWS_WITH(solve(ones({2, 3, 3}, DType::f64), ones({4, 3, 1}, DType::f64)),
                      Catch::Contains("A [2, 3, 3]") && Catch::Contains("B [4, 3, 1]") &&
                          Catch::Contains("broadcast"));
  REQUIRE_THROWS_WITH(solve(eye(3, 3, DType::f32), b),
                      Catch::Contains("float32") && Catch::Contains("float64") && Catch::Contains("B [3, 2]"));
  REQUIRE_THROWS_AS(solve(Tensor(), b), std::invalid_argument);
}
