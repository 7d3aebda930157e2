// Initialisers: fans, gains (against PyTorch 1.13's calculate_gain), the statistics of
// each random initialiser against its formula, orthogonality and the Haar distribution
// of orthogonal_, and seeding.
#include "nn/init.hpp"

#include <cmath>
#include <functional>
#include <numeric>

#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;

namespace {

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
  double within_one_std = 0;  // fraction of |x - mean| < std: 0.683 for a normal, 0.577 for a uniform
};

Stats stats_of(const Tensor& t) {
  const std::vector<double> v = t.to_vector();
  const double n = static_cast<double>(v.size());
  Stats s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double ss = 0;
  for (double x : v) {
    ss += (x - s.mean) * (x - s.mean);
    s.max_abs = std::max(s.max_abs, std::abs(x));
  }
  s.std = std::sqrt(ss / n);
  for (double x : v) s.within_one_std += std::abs(x - s.mean) < s.std ? 1.0 / n : 0.0;
  return s;
}

// Checks a uniform(-bound, bound) sample: inside the bounds, reaching them, std bound/sqrt 3.
void require_uniform(const Tensor& t, double bound) {
  const Stats s = stats_of(t);
  const double n = static_cast<double>(t.numel());
  INFO("bound " << bound << ", mean " << s.mean << ", std " << s.std << ", max |x| " << s.max_abs);
  REQUIRE(s.max_abs <= bound);
  REQUIRE(s.max_abs > 0.999 * bound);
  REQUIRE(std::abs(s.mean) < 5 * bound / std::sqrt(3 * n));
  REQUIRE(s.std == Approx(bound / std::sqrt(3.0)).epsilon(0.01));
  REQUIRE(s.within_one_std == Approx(1 / std::sqrt(3.0)).margin(0.01));
}

void require_normal(const Tensor& t, double std) {
  const Stats s = stats_of(t);
  const double n = static_cast<double>(t.numel());
  INFO("std " << std << ", mean " << s.mean << ", sample std " << s.std);
  REQUIRE(std::abs(s.mean) < 5 * std / std::sqrt(n));
  REQUIRE(s.std == Approx(std).epsilon(0.01));
  REQUIRE(s.within_one_std == Approx(0.6827).margin(0.01));
  REQUIRE(s.max_abs > 3.5 * std);  // tails a uniform of the same std (max 1.73 std) lacks
}

// W viewed as [rows, cols]; returns W W^T.
Tensor gram_of_rows(const Tensor& w) {
  const Tensor m = reshape(to_dtype(w, DType::f64), {w.size(0), -1});
  return matmul(m, m, false, true);
}

Tensor gram_of_columns(const Tensor& w) {
  const Tensor m = reshape(to_dtype(w, DType::f64), {w.size(0), -1});
  return matmul(m, m, true, false);
}

}  // namespace

TEST_CASE("calculate_gain matches PyTorch's values") {
  CHECK(calculate_gain(Nonlinearity::linear) == 1.0);
  CHECK(calculate_gain(Nonlinearity::sigmoid) == 1.0);
  CHECK(calculate_gain(Nonlinearity::relu) == Approx(1.4142135623730951).epsilon(1e-15));
  CHECK(calculate_gain(Nonlinearity::tanh) == Approx(1.6666666666666667).epsilon(1e-15));
  CHECK(calculate_gain(Nonlinearity::leaky_relu) == Approx(1.4141428569978354).epsilon(1e-15));
  CHECK(calculate_gain(Nonlinearity::leaky_relu, 0.2) == Approx(1.3867504905630728).epsilon(1e-15));
  CHECK(calculate_gain(Nonlinearity::leaky_relu, std::sqrt(5.0)) == Approx(0.5773502691896257).epsilon(1e-15));
  CHECK(calculate_gain(Nonlinearity::leaky_relu, 0.0) == calculate_gain(Nonlinearity::relu));
  CHECK(calculate_gain(Nonlinearity::relu, 0.5) == calculate_gain(Nonlinearity::relu));  // slope ignored
}

TEST_CASE("fans follow PyTorch: in * receptive field and out * receptive field") {
  const Fans linear = calculate_fans(zeros({256, 784}));
  CHECK(linear.fan_in == 784);
  CHECK(linear.fan_out == 256);
  const Fans conv = calculate_fans(zeros({64, 16, 3, 5}));  // grouped conv: 16 = in / groups
  CHECK(conv.fan_in == 16 * 15);
  CHECK(conv.fan_out == 64 * 15);
  const Fans conv3d = calculate_fans(zeros({4, 2, 3, 3, 3}));
  CHECK(conv3d.fan_in == 54);
}

TEST_CASE("fan-based initialisers reject tensors with fewer than two dimensions") {
  Tensor vector = zeros({5}), scalar_tensor = scalar(1.0), undefined;
  for (Tensor* t : {&vector, &scalar_tensor}) {
    CHECK_THROWS_WITH(kaiming_uniform_(*t), Catch::Contains("kaiming_uniform_") && Catch::Contains("fewer than 2"));
    CHECK_THROWS_WITH(kaiming_normal_(*t), Catch::Contains("kaiming_normal_") && Catch::Contains("fewer than 2"));
    CHECK_THROWS_WITH(xavier_uniform_(*t), Catch::Contains("xavier_uniform_") && Catch::Contains("fewer than 2"));
    CHECK_THROWS_WITH(xavier_normal_(*t), Catch::Contains("xavier_normal_") && Catch::Contains("fewer than 2"));
    CHECK_THROWS_WITH(orthogonal_(*t), Catch::Contains("orthogonal_") && Catch::Contains("fewer than 2"));
  }
  CHECK_THROWS_WITH(kaiming_uniform_(vector), Catch::Contains("[5]"));
  CHECK_THROWS_WITH(xavier_normal_(undefined), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(uniform_(vector, 1.0, -1.0), Catch::Contains("low"));
  CHECK_THROWS_WITH(normal_(vector, 0.0, -1.0), Catch::Contains("std"));
}

TEST_CASE("kaiming_uniform_ and kaiming_normal_ have std gain / sqrt(fan)") {
  Generator gen(11);
  SECTION("uniform, fan_in, relu") {
    Tensor w = zeros({400, 500}, DType::f64);
    kaiming_uniform_(w, 0.0, FanMode::fan_in, Nonlinearity::relu, &gen);
    require_uniform(w, std::sqrt(3.0) * std::sqrt(2.0) / std::sqrt(500.0));
  }
  SECTION("uniform, fan_out, leaky_relu 0.2, conv shape") {
    Tensor w = zeros({128, 32, 3, 3});  // fan_in 288, fan_out 1152
    kaiming_uniform_(w, 0.2, FanMode::fan_out, Nonlinearity::leaky_relu, &gen);
    require_uniform(w, std::sqrt(3.0) * std::sqrt(2.0 / 1.04) / std::sqrt(1152.0));
  }
  SECTION("normal, fan_in, tanh") {
    Tensor w = zeros({300, 600}, DType::f64);
    kaiming_normal_(w, 0.0, FanMode::fan_in, Nonlinearity::tanh, &gen);
    require_normal(w, (5.0 / 3.0) / std::sqrt(600.0));
  }
  SECTION("normal, fan_out, default leaky_relu with slope 0") {
    Tensor w = zeros({200, 50, 2, 2});  // fan_out 800
    kaiming_normal_(w, 0.0, FanMode::fan_out, Nonlinearity::leaky_relu, &gen);
    require_normal(w, std::sqrt(2.0) / std::sqrt(800.0));
  }
}

TEST_CASE("xavier_uniform_ and xavier_normal_ have std gain sqrt(2 / (fan_in + fan_out))") {
  Generator gen(12);
  SECTION("uniform") {
    Tensor w = zeros({300, 700}, DType::f64);
    xavier_uniform_(w, 2.0, &gen);
    require_uniform(w, std::sqrt(3.0) * 2.0 * std::sqrt(2.0 / 1000.0));
  }
  SECTION("normal, conv shape") {
    Tensor w = zeros({64, 48, 5, 5});  // fans 1200 and 1600
    xavier_normal_(w, 0.5, &gen);
    require_normal(w, 0.5 * std::sqrt(2.0 / 2800.0));
  }
}

TEST_CASE("uniform_, normal_ and the constant fills") {
  Generator gen(13);
  Tensor u = zeros({100000}, DType::f64);
  uniform_(u, 2.0, 4.0, &gen);
  const Stats su = stats_of(u);
  CHECK(su.mean == Approx(3.0).margin(0.01));
  CHECK(su.std == Approx(2.0 / std::sqrt(12.0)).epsilon(0.01));
  Tensor n = zeros({100000}, DType::f64);
  normal_(n, -1.0, 0.5, &gen);
  CHECK(stats_of(n).mean == Approx(-1.0).margin(0.01));
  CHECK(stats_of(n).std == Approx(0.5).epsilon(0.01));

  Tensor p = zeros({2, 3}).requires_grad_();  // a parameter: the fills need no NoGradGuard
  ones_(p);
  CHECK(p.to_vector() == std::vector<double>(6, 1.0));
  constant_(p, -2.5);
  CHECK(p.to_vector() == std::vector<double>(6, -2.5));
  zeros_(p);
  CHECK(p.to_vector() == std::vector<double>(6, 0.0));
  kaiming_uniform_(p);
  CHECK(p.requires_grad());
  CHECK(stats_of(p).max_abs > 0);
}

TEST_CASE("orthogonal_ gives orthonormal rows or columns, scaled by gain") {
  Generator gen(14);
  SECTION("wide: W W^T = gain^2 I") {
    Tensor w = zeros({5, 8}, DType::f64);
    orthogonal_(w, 2.0, &gen);
    testing::require_allclose(gram_of_rows(w), eye(5, -1, DType::f64) * 4.0, 0, 1e-12);
  }
  SECTION("tall: W^T W = gain^2 I") {
    Tensor w = zeros({9, 4}, DType::f64);
    orthogonal_(w, 1.5, &gen);
    testing::require_allclose(gram_of_columns(w), eye(4, -1, DType::f64) * 2.25, 0, 1e-12);
  }
  SECTION("square: both") {
    Tensor w = zeros({64, 64}, DType::f64);
    orthogonal_(w, 1.0, &gen);
    testing::require_allclose(gram_of_rows(w), eye(64, -1, DType::f64), 0, 1e-12);
    testing::require_allclose(gram_of_columns(w), eye(64, -1, DType::f64), 0, 1e-12);
  }
  SECTION("conv weight, flattened to [out, in * kh * kw], float32") {
    Tensor w = zeros({6, 2, 3, 3});
    orthogonal_(w, 1.0, &gen);
    testing::require_allclose(gram_of_rows(w), eye(6, -1, DType::f64), 0, 1e-6);
  }
  SECTION("one row and one column") {
    Tensor row = zeros({1, 7}, DType::f64), column = zeros({7, 1}, DType::f64);
    orthogonal_(row, 1.0, &gen);
    orthogonal_(column, 1.0, &gen);
    testing::require_allclose(gram_of_rows(row), std::vector<double>{1.0}, 0, 1e-14);
    testing::require_allclose(gram_of_columns(column), std::vector<double>{1.0}, 0, 1e-14);
  }
}

TEST_CASE("orthogonal_ is the Q of a Gaussian matrix's QR with R's diagonal positive") {
  // Same seed twice: G is the Gaussian orthogonal_ factored, so R = Q^T G must be upper
  // triangular with a positive diagonal. Without the sign fix about half the diagonal is
  // negative.
  for (const Shape& shape : {Shape{7, 4}, Shape{4, 7}, Shape{5, 5}}) {
    Generator for_init(21), for_check(21);
    Tensor w = zeros(shape, DType::f64);
    orthogonal_(w, 1.0, &for_init);
    const Tensor g = normal(shape, 0.0, 1.0, for_check, DType::f64);
    // For a wide W the factored matrix is G^T = W^T R.
    const bool tall = shape[0] >= shape[1];
    const Tensor r = tall ? matmul(w, g, true, false) : matmul(w, g, false, true);
    const std::int64_t k = r.size(0);
    const std::vector<double> rv = r.to_vector();
    for (std::int64_t i = 0; i < k; ++i) {
      INFO("shape " << shape_str(shape) << ", R[" << i << "]");
      CHECK(rv[static_cast<std::size_t>(i * k + i)] > 0);
      for (std::int64_t j = 0; j < i; ++j) CHECK(std::abs(rv[static_cast<std::size_t>(i * k + j)]) < 1e-12);
    }
  }
}

TEST_CASE("orthogonal_ is uniformly (Haar) distributed") {
  // For a Haar-random Q in O(3), each entry is a coordinate of a uniform point on the
  // sphere, hence uniform on [-1, 1] (Archimedes): mean 0, mean square 1/3. Householder
  // QR without the sign fix has a biased diagonal.
  Generator gen(15);
  const int draws = 3000;
  std::vector<double> sum(9, 0.0), sum_sq(9, 0.0);
  for (int d = 0; d < draws; ++d) {
    Tensor w = zeros({3, 3}, DType::f64);
    orthogonal_(w, 1.0, &gen);
    const std::vector<double> v = w.to_vector();
    for (std::size_t i = 0; i < 9; ++i) {
      sum[i] += v[i];
      sum_sq[i] += v[i] * v[i];
    }
  }
  for (std::size_t i = 0; i < 9; ++i) {
    INFO("entry " << i);
    // Var of a uniform[-1, 1] entry is 1/3: 5 sigma of the mean is 5 / sqrt(3 * draws).
    CHECK(std::abs(sum[i] / draws) < 5.0 / std::sqrt(3.0 * draws));
    CHECK(sum_sq[i] / draws == Approx(1.0 / 3.0).margin(0.02));
  }
}

TEST_CASE("the same seed gives the same values, another seed other values") {
  auto draw = [](std::uint64_t seed, DType dtype) {
    Generator gen(seed);
    Tensor w = zeros({16, 8}, dtype);
    kaiming_normal_(w, 0.0, FanMode::fan_in, Nonlinearity::relu, &gen);
    return w.to_vector();
  };
  CHECK(draw(5, DType::f64) == draw(5, DType::f64));
  CHECK(draw(5, DType::f64) != draw(6, DType::f64));
  // Drawn in float64 and rounded: one seed gives the same weights in both dtypes.
  const std::vector<double> f64 = draw(5, DType::f64), f32 = draw(5, DType::f32);
  for (std::size_t i = 0; i < f64.size(); ++i) CHECK(f32[i] == static_cast<double>(static_cast<float>(f64[i])));

  SECTION("every random initialiser follows its generator") {
    using Init = std::function<void(Tensor&, Generator*)>;
    const std::vector<Init> inits{
        [](Tensor& w, Generator* g) { kaiming_uniform_(w, 0.0, FanMode::fan_in, Nonlinearity::relu, g); },
        [](Tensor& w, Generator* g) { xavier_uniform_(w, 1.0, g); },
        [](Tensor& w, Generator* g) { xavier_normal_(w, 1.0, g); },
        [](Tensor& w, Generator* g) { orthogonal_(w, 1.0, g); },
        [](Tensor& w, Generator* g) { uniform_(w, -1.0, 1.0, g); },
        [](Tensor& w, Generator* g) { normal_(w, 0.0, 1.0, g); },
    };
    for (std::size_t i = 0; i < inits.size(); ++i) {
      INFO("initialiser " << i);
      Generator a(1), b(1), c(2);
      Tensor wa = zeros({6, 4}), wb = zeros({6, 4}), wc = zeros({6, 4});
      inits[i](wa, &a);
      inits[i](wb, &b);
      inits[i](wc, &c);
      CHECK(wa.to_vector() == wb.to_vector());
      CHECK(wa.to_vector() != wc.to_vector());
    }
  }
}

TEST_CASE("without a generator the initialisers draw from default_generator, reseeded by manual_seed") {
  Tensor a = zeros({10, 10}), b = zeros({10, 10});
  manual_seed(42);
  xavier_uniform_(a);
  const std::vector<double> first = a.to_vector();
  xavier_uniform_(a);
  CHECK(a.to_vector() != first);  // the stream moved on
  manual_seed(42);
  xavier_uniform_(b);
  CHECK(b.to_vector() == first);
  Generator same(42);
  Tensor c = zeros({10, 10});
  xavier_uniform_(c, 1.0, &same);
  CHECK(c.to_vector() == first);  // manual_seed(s) is Generator(s)
}

TEST_CASE("zero-element tensors are left alone") {
  Tensor w = zeros({0, 5});
  CHECK_NOTHROW(kaiming_uniform_(w));
  CHECK_NOTHROW(xavier_normal_(w));
  CHECK_NOTHROW(orthogonal_(w));
  CHECK(w.numel() == 0);
}
