// expm, expm_frechet, expm_plan and logm_near_identity.
//
// Forward: against tests/data/expm_reference.json (exact-to-double exponentials from
// 320-bit arithmetic, checked there against mpmath at 50 digits) in float64 and float32,
// on random, skew, non-normal, nearly defective, nilpotent and spread-spectrum matrices up
// to n = 64 and 1-norm 56; exp(X) exp(-X) = I; orthogonality for skew X; batching, 1x1 and
// empty edges, bad input. The thresholds theta_m in the code against their recomputation
// from Higham's backward-error series (same file). Derivatives: gradcheck and gradgradcheck
// of expm and expm_frechet; the Frechet derivative against central differences, against
// Gauss-Legendre quadrature of its integral form, and in the commuting case L(A, A) = A e^A.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "support/reference_data.hpp"
#include "support/testing.hpp"
#include "symmetry/expm.hpp"

using namespace symgrad;
using symgrad::symmetry::expm;
using symgrad::symmetry::expm_frechet;
using symgrad::symmetry::expm_plan;
using symgrad::symmetry::logm_near_identity;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

const nlohmann::json& reference() {
  return symgrad::testing::reference_data("expm_reference.json", "tools/make_expm_reference.py");
}

// Catch prints doubles with few digits; failure messages need the exponent.
std::string sci(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3e", v);
  return buffer;
}

double frobenius(const Tensor& x) {
  double s = 0;
  for (double v : x.to_vector()) s += v * v;
  return std::sqrt(s);
}

double one_norm(const Tensor& x) {  // one matrix [n, n]
  const std::int64_t n = x.size(-1);
  const std::vector<double> v = x.to_vector();
  double best = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    double column = 0;
    for (std::int64_t i = 0; i < n; ++i) column += std::abs(v[static_cast<std::size_t>(i * n + j)]);
    best = std::max(best, column);
  }
  return best;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  return frobenius(to_dtype(actual, DType::f64) - expected) / frobenius(expected);
}

// Nodes and weights of the k-point Gauss-Legendre rule on [0, 1] (Newton on P_k).
std::vector<std::pair<double, double>> gauss_legendre(int k) {
  std::vector<std::pair<double, double>> rule;
  for (int i = 1; i <= k; ++i) {
    double x = std::cos(M_PI * (i - 0.25) / (k + 0.5)), derivative = 0;
    for (int iteration = 0; iteration < 100; ++iteration) {
      double p0 = 1, p1 = x;
      for (int j = 2; j <= k; ++j) {
        const double p2 = ((2 * j - 1) * x * p1 - (j - 1) * p0) / j;
        p0 = p1;
        p1 = p2;
      }
      derivative = k * (x * p1 - p0) / (x * x - 1);
      const double step = p1 / derivative;
      x -= step;
      if (std::abs(step) < 1e-16) break;
    }
    rule.emplace_back((1 - x) / 2, 1 / ((1 - x * x) * derivative * derivative));  // weight 2/(..) on [-1,1], halved
  }
  return rule;
}

Tensor random_matrix(const Shape& shape, std::uint64_t seed, double scale = 1.0) {
  NoGradGuard no_grad;
  return (random_input(shape, seed) * scale).detach();
}

}  // namespace

TEST_CASE("expm_plan: the degree and squarings of Higham 2005, thresholds as recomputed", "[expm]") {
  // The constants in the code reproduce theta_m computed from the backward-error series
  // (float64 to rounding; float32 to the 1e-8 at which Higham's published digits and a
  // 150-term recomputation agree).
  const auto& thresholds = reference().at("thresholds");
  const std::vector<std::pair<int, double>> table64 = {{3, 1.495585217958292e-2},
                                                       {5, 2.539398330063230e-1},
                                                       {7, 9.504178996162932e-1},
                                                       {9, 2.097847961257068e0},
                                                       {13, 5.371920351148152e0}};
  for (const auto& [m, theta] : table64) {
    CAPTURE(m);
    REQUIRE(thresholds.at("float64").at(std::to_string(m)).get<double>() == Approx(theta).epsilon(1e-14));
    if (m < 13) {
      REQUIRE(expm_plan(theta, DType::f64).pade_degree == m);
      REQUIRE(expm_plan(theta * (1 + 1e-15), DType::f64).pade_degree > m);
    }
  }
  const std::vector<std::pair<int, double>> table32 = {
      {3, 4.258730016922831e-1}, {5, 1.880152677804762e0}, {7, 3.925724783138660e0}};
  for (const auto& [m, theta] : table32) {
    CAPTURE(m);
    REQUIRE(thresholds.at("float32").at(std::to_string(m)).get<double>() == Approx(theta).epsilon(1e-7));
    REQUIRE(expm_plan(theta, DType::f32).pade_degree == m);
    REQUIRE(expm_plan(theta, DType::f32).squarings == 0);
  }
  // Above the top threshold: the fewest squarings bringing the norm below it.
  REQUIRE(expm_plan(0.0, DType::f64).pade_degree == 3);
  REQUIRE(expm_plan(5.371920351148152, DType::f64).squarings == 0);
  REQUIRE(expm_plan(5.38, DType::f64).pade_degree == 13);
  REQUIRE(expm_plan(5.38, DType::f64).squarings == 1);
  REQUIRE(expm_plan(50.0, DType::f64).squarings == 4);  // 50 / 16 = 3.1 <= 5.37 < 50 / 8
  REQUIRE(expm_plan(100.0, DType::f32).pade_degree == 7);
  REQUIRE(expm_plan(100.0, DType::f32).squarings == 5);  // 100 / 32 = 3.1 <= 3.93
  REQUIRE_THROWS_AS(expm_plan(std::numeric_limits<double>::infinity(), DType::f64), std::invalid_argument);
  REQUIRE_THROWS_AS(expm_plan(-1.0, DType::f64), std::invalid_argument);
}

TEST_CASE("expm matches the high-precision reference, float64", "[expm]") {
  // Relative Frobenius error <= 1e-13 on every case, the worst conditioned included:
  // kappa_exp <= 364, so even u * kappa_exp = 4e-14 stays below the bound (measured worst
  // 5e-15, the n = 4 norm-50 case).
  for (const auto& c : reference().at("cases")) {
    const std::string name = c.at("name");
    CAPTURE(name);
    const Tensor a = symgrad::testing::tensor_from_json(c.at("a"), DType::f64);
    const Tensor expected = symgrad::testing::tensor_from_json(c.at("expm"), DType::f64);
    const double error = relative_error(expm(a), expected);
    INFO("error " << sci(error));
    REQUIRE(error <= 1e-13);
  }
}

TEST_CASE("expm matches the reference in float32", "[expm]") {
  // The inputs are float32 numbers, so float32 solves exactly the stored problem. The bound
  // 1e-5 holds for every case, 1-norm 56 and kappa_exp 364 included (measured worst 2e-6,
  // about 30 u32 kappa_exp; degree <= 7 and up to 4 squarings).
  for (const auto& c : reference().at("cases")) {
    const std::string name = c.at("name");
    CAPTURE(name);
    const Tensor a = symgrad::testing::tensor_from_json(c.at("a"), DType::f32);
    const Tensor expected = symgrad::testing::tensor_from_json(c.at("expm"), DType::f64);
    const Tensor result = expm(a);
    REQUIRE(result.dtype() == DType::f32);
    const double error = relative_error(result, expected);
    INFO("error " << sci(error));
    REQUIRE(error <= 1e-5);
  }
}

TEST_CASE("exp(X) exp(-X) = I to 1e-14 times cond_1(exp(X))", "[expm]") {
  for (const auto& c : reference().at("cases")) {
    const std::string name = c.at("name");
    CAPTURE(name);
    const Tensor x = symgrad::testing::tensor_from_json(c.at("a"), DType::f64);
    const std::int64_t n = x.size(-1);
    const Tensor forward = expm(x), backward = expm(-x);
    const double residual = one_norm(matmul(forward, backward) - eye(n, n, DType::f64));
    const double condition = one_norm(forward) * one_norm(backward);  // cond_1 of exp(X)
    INFO("residual " << sci(residual) << ", cond_1 " << sci(condition));
    REQUIRE(residual <= 1e-14 * condition);
  }
}

TEST_CASE("expm of a skew-symmetric matrix is orthogonal; of a diagonal one, diagonal", "[expm]") {
  const Tensor b = random_matrix({8, 8}, 3, 2.0);
  const Tensor skew = b - transpose(b);
  const Tensor q = expm(skew);
  const double deviation = frobenius(matmul(q, q, true, false) - eye(8, 8, DType::f64));
  INFO("deviation " << sci(deviation));
  REQUIRE(deviation <= 5e-15);
  // Negative control: a non-skew matrix of the same size gives a far from orthogonal exp.
  REQUIRE(frobenius(matmul(expm(b), expm(b), true, false) - eye(8, 8, DType::f64)) > 1e-2);

  const Tensor d = tensor({-3.0, 0.5, 7.25}, {3}, DType::f64);
  const std::vector<double> e = expm(d * eye(3, 3, DType::f64)).to_vector();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const double expected = i == j ? std::exp(d.to_vector()[static_cast<std::size_t>(i)]) : 0.0;
      REQUIRE(std::abs(e[static_cast<std::size_t>(i * 3 + j)] - expected) <= 2e-15 * std::abs(expected));
    }
}

TEST_CASE("expm is batched over leading axes; 1x1 is exp; empty batches are empty", "[expm]") {
  const Tensor a = random_matrix({2, 3, 4, 4}, 5, 3.0);
  const Tensor batched = expm(a);
  REQUIRE(batched.shape() == Shape{2, 3, 4, 4});
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 3; ++j) {
      const Tensor one = narrow(narrow(a, 0, i, 1), 1, j, 1);
      require_allclose(narrow(narrow(batched, 0, i, 1), 1, j, 1), reshape(expm(reshape(one, {4, 4})), {1, 1, 4, 4}), 0,
                       0);  // the same arithmetic per matrix: identical bits
    }
  for (DType dtype : {DType::f64, DType::f32}) {
    const Tensor scalars = tensor({-40.0, -1.5, 0.0, 2.0, 30.0}, {5, 1, 1}, dtype);
    const std::vector<double> e = expm(scalars).to_vector(), s = scalars.to_vector();
    const double tol = dtype == DType::f64 ? 4e-16 : 4e-7;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const double error = std::abs(e[i] / std::exp(s[i]) - 1);
      INFO("exp(" << s[i] << ") error " << sci(error));
      REQUIRE(error <= tol);
    }
  }
  Tensor empty = zeros({0, 3, 3}, DType::f64).requires_grad_();
  const Tensor e = expm(empty);
  REQUIRE(e.shape() == Shape{0, 3, 3});
  REQUIRE(grad({sum(e)}, {empty})[0].shape() == Shape{0, 3, 3});
  REQUIRE(expm(zeros({2, 0, 0}, DType::f32)).shape() == Shape{2, 0, 0});
}

TEST_CASE("expm refuses non-square, rank < 2 and non-finite input", "[expm]") {
  REQUIRE_THROWS_WITH(expm(zeros({3}, DType::f64)), Catch::Contains("expm") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(expm(zeros({2, 3}, DType::f64)), Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_AS(expm(Tensor()), std::invalid_argument);
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()})
    REQUIRE_THROWS_WITH(expm(tensor({1, 2, bad, 4}, {2, 2}, DType::f64)), Catch::Contains("non-finite"));
  REQUIRE_THROWS_AS(expm_frechet(zeros({2, 2}, DType::f64), zeros({3, 3}, DType::f64)), std::invalid_argument);
  REQUIRE_THROWS_AS(expm_frechet(zeros({2, 2}, DType::f64), zeros({2, 2}, DType::f32)), std::invalid_argument);
}

TEST_CASE("expm_frechet matches central differences, quadrature and L(A, A) = A e^A", "[expm]") {
  const Tensor a = random_matrix({4, 4}, 7, 1.5), e = random_matrix({4, 4}, 8);
  const Tensor l = expm_frechet(a, e);

  // L(A, E) = int_0^1 e^{sA} E e^{(1-s)A} ds (Higham 2008, eq. 10.15), 20-point Gauss rule.
  Tensor integral = zeros({4, 4}, DType::f64);
  for (const auto& [s, w] : gauss_legendre(20))
    integral = integral + matmul(matmul(expm(a * s), e), expm(a * (1 - s))) * w;
  const double quadrature_error = relative_error(l, integral);
  INFO("error " << sci(quadrature_error));
  REQUIRE(quadrature_error <= 1e-13);

  const double h = 1e-5;  // truncation h^2 ~ 1e-10 against rounding u / h ~ 1e-11
  const Tensor difference = (expm(a + e * h) - expm(a - e * h)) / (2 * h);
  REQUIRE(relative_error(l, difference) <= 1e-8);

  // A commutes with itself, so L(A, A) = A e^A; a non-commuting E gives E e^A != L(A, E).
  REQUIRE(relative_error(expm_frechet(a, a), matmul(a, expm(a))) <= 1e-14);
  REQUIRE(relative_error(l, matmul(e, expm(a))) > 1e-2);

  // The block identity: exp([[A, E], [0, A]]) = [[e^A, L], [0, e^A]].
  const Tensor block = concat({concat({a, e}, -1), concat({zeros({4, 4}, DType::f64), a}, -1)}, -2);
  const Tensor big = expm(block);
  REQUIRE(relative_error(narrow(narrow(big, 0, 0, 4), 1, 0, 4), expm(a)) <= 1e-15);
  REQUIRE(relative_error(narrow(narrow(big, 0, 0, 4), 1, 4, 4), l) <= 1e-13);
  REQUIRE(frobenius(narrow(narrow(big, 0, 4, 4), 1, 0, 4)) == 0.0);

  // Scaling E leaves L / ||E|| unchanged (the backward balances ||E|| against ||A||).
  REQUIRE(relative_error(expm_frechet(a, e * 1e6) / 1e6, l) <= 1e-14);
  REQUIRE(frobenius(expm_frechet(a, zeros_like(a))) == 0.0);
  REQUIRE(expm_frechet(zeros({0, 2, 2}, DType::f64), zeros({0, 2, 2}, DType::f64)).shape() == Shape{0, 2, 2});
}

TEST_CASE("expm and expm_frechet: gradcheck and gradgradcheck in float64", "[expm][grad]") {
  MultiFn f_expm = [](const TensorList& in) { return expm(in[0]); };
  MultiFn f_frechet = [](const TensorList& in) { return expm_frechet(in[0], in[1]); };
  for (const Shape& shape : {Shape{1, 1}, Shape{2, 2}, Shape{3, 3}, Shape{2, 3, 3}}) {
    CAPTURE(shape_str(shape));
    Tensor a = random_input(shape, 11, -1.5, 1.5);
    Tensor e = random_input(shape, 12);
    REQUIRE_GRADCHECK(f_expm, (TensorList{a}));
    REQUIRE_GRADGRADCHECK(f_expm, (TensorList{a}));
    REQUIRE_GRADCHECK(f_frechet, (TensorList{a, e}));
    REQUIRE_GRADGRADCHECK(f_frechet, (TensorList{a, e}));
  }
  // Large enough for degree 13 with squarings, where the backward's block matrix squares too.
  Tensor big = random_input({3, 3}, 13, -4, 4);
  REQUIRE(expm_plan(one_norm(big), DType::f64).squarings > 0);
  REQUIRE_GRADCHECK(f_expm, (TensorList{big}));
  REQUIRE_GRADGRADCHECK(f_expm, (TensorList{big}));
}

TEST_CASE("expm's gradient in float32 matches float64", "[expm][grad]") {
  Tensor a64 = random_input({2, 3, 3}, 14, -2, 2), w = random_matrix({2, 3, 3}, 15);
  Tensor a32 = to_dtype(a64.detach(), DType::f32).requires_grad_();
  const Tensor g64 = grad({sum(expm(a64) * w)}, {a64})[0];
  const Tensor g32 = grad({sum(expm(a32) * to_dtype(w, DType::f32))}, {a32})[0];
  REQUIRE(g32.dtype() == DType::f32);
  REQUIRE(relative_error(g32, g64) <= 1e-5);
}

TEST_CASE("logm_near_identity inverts expm near I and refuses G far from it", "[expm][logm]") {
  // G = expm(X) carries rounding errors of size u ||G||, which log passes on unchanged near
  // I: the bound is that absolute part plus a relative one (1e-13 float64, 1e-5 float32).
  for (double scale : {1e-3, 0.03, 0.12}) {  // the last needs square roots
    CAPTURE(scale);
    const Tensor x = random_matrix({3, 5, 5}, 21, scale);  // ||G - I||_1 <= e^(5 scale) - 1
    const Tensor g = expm(x);
    const double error = frobenius(logm_near_identity(g) - x);
    INFO("error " << sci(error) << ", ||X||_F " << sci(frobenius(x)));
    REQUIRE(error <= 1e-15 * frobenius(g) + 1e-13 * frobenius(x));
    const double error32 = frobenius(to_dtype(logm_near_identity(to_dtype(g, DType::f32)), DType::f64) - x);
    INFO("float32 error " << sci(error32));
    REQUIRE(error32 <= 1e-6 * frobenius(g) + 1e-5 * frobenius(x));
  }
  // A rotation by 0.9 rad: ||G - I||_1 = 1 - cos 0.9 + sin 0.9 = 1.16 > 1: refused, although its
  // logarithm exists; a rotation by 0.4 rad is accepted and recovered.
  const auto rotation = [](double t) {
    return tensor({std::cos(t), -std::sin(t), std::sin(t), std::cos(t)}, {2, 2}, DType::f64);
  };
  require_allclose(logm_near_identity(rotation(0.4)), {0, -0.4, 0.4, 0}, 0, 1e-15);
  REQUIRE_THROWS_WITH(logm_near_identity(rotation(0.9)), Catch::Contains("too far from I"));
  REQUIRE_THROWS_AS(logm_near_identity(eye(3, 3, DType::f64) * -1.0), std::invalid_argument);
  REQUIRE_THROWS_AS(logm_near_identity(zeros({2, 3}, DType::f64)), std::invalid_argument);
  require_allclose(logm_near_identity(eye(4, 4, DType::f64)), std::vector<double>(16, 0.0), 0, 0);
  REQUIRE(logm_near_identity(zeros({0, 2, 2}, DType::f64)).shape() == Shape{0, 2, 2});
}
