// hardball and softball (pde/hardball.hpp): forward against a per-pixel loop, gradcheck
// and gradgradcheck away from the ball's boundary, the derivative rule on the boundary
// and at 0, O(n)-equivariance (and its failure for a non-orthogonal map), edge shapes and
// errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "nn/init.hpp"
#include "pde/hardball.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// x [N, C, ...] seen as N x C x plane: the plain-loop reference of both balls.
enum class Ball { hard, soft };

std::vector<double> reference_ball(const Tensor& x, double r, Ball ball) {
  const std::vector<double> v = x.to_vector();
  const std::int64_t batch = x.size(0), channels = x.size(1);
  std::int64_t plane = 1;
  for (std::int64_t d = 2; d < x.dim(); ++d) plane *= x.size(d);
  std::vector<double> out(v.size());
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t p = 0; p < plane; ++p) {
      auto at = [&](std::int64_t c) { return static_cast<std::size_t>((n * channels + c) * plane + p); };
      double norm2 = 0;
      for (std::int64_t c = 0; c < channels; ++c) norm2 += v[at(c)] * v[at(c)];
      const double norm = std::sqrt(norm2);
      const double factor = ball == Ball::hard ? (norm <= r ? 1.0 : r / norm) : 1.0 / std::sqrt(1.0 + norm2 / (r * r));
      for (std::int64_t c = 0; c < channels; ++c) out[at(c)] = v[at(c)] * factor;
    }
  return out;
}

// [N, C, ...] with each pixel's vector scaled to a norm of 0.5 r or 2 r in turn: every
// point well inside or well outside the ball, where hardball is smooth.
Tensor away_from_boundary(const Shape& shape, double r, std::uint64_t seed) {
  std::vector<double> v = random_input(shape, seed).to_vector();
  const std::int64_t batch = shape[0], channels = shape[1];
  std::int64_t plane = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) plane *= shape[d];
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t p = 0; p < plane; ++p) {
      auto at = [&](std::int64_t c) { return static_cast<std::size_t>((n * channels + c) * plane + p); };
      double norm2 = 0;
      for (std::int64_t c = 0; c < channels; ++c) norm2 += v[at(c)] * v[at(c)];
      const double target = (n * plane + p) % 2 == 0 ? 0.5 * r : 2.0 * r;
      for (std::int64_t c = 0; c < channels; ++c) v[at(c)] *= target / std::sqrt(norm2);
    }
  return from_vector(v, shape, DType::f64).requires_grad_();
}

// d(sum(g * f(v)))/dv for one vector v [1, C]: a row of g^T J.
std::vector<double> vector_jacobian(double r, const std::vector<double>& v, const std::vector<double>& g) {
  const Shape shape{1, static_cast<std::int64_t>(v.size())};
  Tensor x = from_vector(v, shape, DType::f64).requires_grad_();
  const Tensor y = pde::hardball(x, r);
  return grad({y}, {x}, {from_vector(g, shape, DType::f64)})[0].to_vector();
}

}  // namespace

TEST_CASE("hardball and softball match a per-pixel loop", "[pde][hardball]") {
  const double r = 1.5;
  for (DType dtype : {DType::f32, DType::f64}) {
    const double rtol = dtype == DType::f32 ? 1e-5 : 1e-13;
    for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{7, 4}}) {
      const Tensor x = random_input(shape, 11, -2.0, 2.0, dtype);
      const Tensor hard = pde::hardball(x, r);
      REQUIRE(hard.dtype() == dtype);
      require_allclose(hard, reference_ball(x, r, Ball::hard), rtol, 1e-7);
      require_allclose(pde::softball(x, r), reference_ball(x, r, Ball::soft), rtol, 1e-7);
      // Both branches of hardball occur in this input.
      const std::vector<double> in = x.to_vector(), out = hard.to_vector();
      std::size_t changed = 0;
      for (std::size_t i = 0; i < in.size(); ++i) changed += in[i] != out[i];
      CHECK(changed > 0);
      CHECK(changed < in.size());
    }
  }
}

TEST_CASE("hardball leaves points inside the ball unchanged bit for bit", "[pde][hardball]") {
  const double r = std::sqrt(32.0);  // a block's default radius, not a round number
  const Tensor x = random_input({3, 32}, 5, -0.5, 0.5, DType::f32);
  REQUIRE(pde::hardball(x, r).to_vector() == x.to_vector());
}

TEST_CASE("hardball and softball pass gradcheck and gradgradcheck", "[pde][hardball]") {
  const double r = 1.3;
  for (const Shape& shape : {Shape{2, 3, 2, 3}, Shape{4, 3}}) {
    const Tensor x = away_from_boundary(shape, r, 21);
    auto hard = [r](const TensorList& in) { return pde::hardball(in[0], r); };
    auto soft = [r](const TensorList& in) { return pde::softball(in[0], r); };
    REQUIRE_GRADCHECK(hard, TensorList{x});
    REQUIRE_GRADGRADCHECK(hard, TensorList{x});
    REQUIRE_GRADCHECK(soft, TensorList{x});
    REQUIRE_GRADGRADCHECK(soft, TensorList{x});
  }
}

TEST_CASE("hardball's derivative is the identity on the boundary and at 0", "[pde][hardball]") {
  const double r = 5.0;
  const std::vector<double> g{0.7, -1.9};
  // ||(3, 4)|| = 5 = r exactly: the inside rule applies.
  CHECK(vector_jacobian(r, {3.0, 4.0}, g) == g);
  CHECK(vector_jacobian(r, {-4.0, 3.0}, g) == g);
  // v = 0: no 0/0, the identity.
  CHECK(vector_jacobian(r, {0.0, 0.0}, g) == g);
  // Just outside: the projection's Jacobian r/|v| (I - v v^T / |v|^2).
  const std::vector<double> v{3.3, 4.4};
  const double norm = 5.5;
  const double along = (g[0] * v[0] + g[1] * v[1]) / (norm * norm);
  const std::vector<double> expected{r / norm * (g[0] - along * v[0]), r / norm * (g[1] - along * v[1])};
  const std::vector<double> got = vector_jacobian(r, v, g);
  CHECK(got[0] == Approx(expected[0]).epsilon(1e-14));
  CHECK(got[1] == Approx(expected[1]).epsilon(1e-14));
  // The forward on the boundary and at 0.
  require_allclose(pde::hardball(tensor({3.0, 4.0, 0.0, 0.0}, {2, 2}, DType::f64), r), {3.0, 4.0, 0.0, 0.0}, 0, 0);
}

TEST_CASE("hardball commutes with orthogonal maps of the channels, not with others", "[pde][hardball]") {
  const std::int64_t channels = 4;
  const double r = 1.0;
  const Tensor v = random_input({16, channels}, 3, -1.0, 1.0).detach();  // rows are pixels
  Tensor q = Tensor::empty({channels, channels}, DType::f64);
  nn::orthogonal_(q, 1.0, &nn::default_generator());
  // Q v for every row v: v Q^T.
  auto act = [](const Tensor& rows, const Tensor& map) { return matmul(rows, transpose(map)); };
  require_allclose(pde::hardball(act(v, q), r), act(pde::hardball(v, r), q), 1e-12, 1e-13);
  require_allclose(pde::softball(act(v, q), r), act(pde::softball(v, r), q), 1e-12, 1e-13);

  // A stretch along the first channel moves some points across the sphere differently.
  const Tensor stretch = tensor({2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, {channels, channels}, DType::f64);
  const std::vector<double> a = pde::hardball(act(v, stretch), r).to_vector();
  const std::vector<double> b = act(pde::hardball(v, r), stretch).to_vector();
  double max_difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) max_difference = std::max(max_difference, std::abs(a[i] - b[i]));
  CHECK(max_difference > 0.1);
}

TEST_CASE("hardball handles empty and one-element inputs", "[pde][hardball]") {
  for (const Shape& shape : {Shape{0, 3}, Shape{2, 0, 3, 3}, Shape{2, 3, 0, 4}}) {
    const Tensor x = zeros(shape, DType::f64);
    CHECK(pde::hardball(x, 1.0).shape() == shape);
    CHECK(pde::softball(x, 1.0).shape() == shape);
  }
  require_allclose(pde::hardball(tensor({-7.0}, {1, 1}, DType::f64), 2.0), {-2.0}, 0, 0);
  require_allclose(pde::hardball(tensor({1.5}, {1, 1}, DType::f64), 2.0), {1.5}, 0, 0);
  require_allclose(pde::softball(tensor({-2.0}, {1, 1}, DType::f64), 2.0), {-2.0 / std::sqrt(2.0)}, 1e-15, 0);
}

TEST_CASE("hardball and the ball layers reject bad inputs", "[pde][hardball]") {
  const Tensor vector = zeros({3}, DType::f64);
  CHECK_THROWS_AS(pde::hardball(vector, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(pde::softball(vector, 1.0), std::invalid_argument);
  CHECK_THROWS_WITH(pde::hardball(vector, 1.0), Catch::Contains("hardball") && Catch::Contains("[3]"));
  const Tensor x = zeros({2, 3}, DType::f64);
  for (double radius : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    CHECK_THROWS_AS(pde::hardball(x, radius), std::invalid_argument);
    CHECK_THROWS_AS(pde::softball(x, radius), std::invalid_argument);
    CHECK_THROWS_AS(pde::Hardball(radius), std::invalid_argument);
    CHECK_THROWS_AS(pde::Softball(radius), std::invalid_argument);
  }
  CHECK_THROWS_WITH(pde::Hardball(0.0), Catch::Contains("radius"));
  pde::Hardball layer(2.0);
  CHECK(layer.extra_repr() == "r = 2");
  require_allclose(layer(tensor({6.0, 8.0}, {1, 2}, DType::f64)), {1.2, 1.6}, 1e-15, 0);
}
