// jacobian, hessian, hvp and jvp against closed forms and against each other.
#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {
// f(x)_i = sin(x_i) * sum(x): a dense Jacobian with a known closed form.
Tensor coupled(const Tensor& x) { return sin(x) * sum(x); }
}  // namespace

TEST_CASE("jacobian matches the closed form of a coupled map", "[functional]") {
  Tensor x = random_input({3}, 11);
  Tensor j = jacobian(coupled, x);
  REQUIRE(j.shape() == Shape{3, 3});
  const auto xv = x.to_vector();
  const double s = xv[0] + xv[1] + xv[2];
  std::vector<double> expected;
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 3; ++k) expected.push_back((i == k ? std::cos(xv[i]) * s : 0.0) + std::sin(xv[i]));
  require_allclose(j, expected, 1e-12, 1e-14);
}

TEST_CASE("jacobian keeps the input's shape in its trailing axes", "[functional]") {
  Tensor x = random_input({2, 2}, 12);
  Tensor j = jacobian([](const Tensor& z) { return sum(square(z), {1}); }, x);
  REQUIRE(j.shape() == Shape{2, 2, 2});
  const auto xv = x.to_vector();
  require_allclose(j, {2 * xv[0], 2 * xv[1], 0, 0, 0, 0, 2 * xv[2], 2 * xv[3]}, 1e-12, 1e-14);
}

TEST_CASE("hvp and hessian of sum(x^3 * y) agree with 6 x v", "[functional]") {
  Tensor x = random_input({4}, 13);
  Tensor v = random_input({4}, 14).detach();
  auto f = [](const Tensor& z) { return sum(pow(z, 3.0)); };
  const auto xv = x.to_vector(), vv = v.to_vector();
  std::vector<double> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(6 * xv[i] * vv[i]);
  require_allclose(hvp(f, x, v), expected, 1e-12, 1e-14);
  Tensor h = hessian(f, x);
  REQUIRE(h.shape() == Shape{4, 4});
  std::vector<double> hexp(16, 0.0);
  for (int i = 0; i < 4; ++i) hexp[i * 5] = 6 * xv[i];
  require_allclose(h, hexp, 1e-12, 1e-14);
}

TEST_CASE("jvp equals the Jacobian applied to v", "[functional]") {
  Tensor x = random_input({3}, 15);
  Tensor v = random_input({3}, 16).detach();
  Tensor jv = jvp(coupled, x, v);
  const auto j = jacobian(coupled, x).to_vector();
  const auto vv = v.to_vector();
  std::vector<double> expected(3, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 3; ++k) expected[i] += j[i * 3 + k] * vv[k];
  require_allclose(jv, expected, 1e-12, 1e-14);
}

TEST_CASE("a jacobian built with create_graph can be differentiated again", "[functional]") {
  // d/dx trace(J) for f = x^3 (elementwise) is 6x.
  Tensor x = random_input({3}, 17);
  Tensor j = jacobian([](const Tensor& z) { return pow(z, 3.0); }, x, /*create_graph=*/true);
  Tensor trace = sum(j * eye(3, 3, DType::f64));
  Tensor g = grad({trace}, {x})[0];
  const auto xv = x.to_vector();
  require_allclose(g, {6 * xv[0], 6 * xv[1], 6 * xv[2]}, 1e-12, 1e-14);
}

TEST_CASE("functional helpers check their arguments", "[functional]") {
  Tensor x = random_input({3}, 18);
  REQUIRE_THROWS_WITH(hvp([](const Tensor& z) { return z * 2.0; }, x, ones({3}, DType::f64)),
                      Catch::Contains("hvp") && Catch::Contains("scalar"));
  REQUIRE_THROWS_WITH(jvp(coupled, x, ones({2}, DType::f64)), Catch::Contains("jvp") && Catch::Contains("[2]"));
  // A function that ignores x has a zero Jacobian, not an error.
  Tensor j = jacobian([](const Tensor&) { return ones({2}, DType::f64); }, x);
  require_allclose(j, std::vector<double>(6, 0.0));
}
