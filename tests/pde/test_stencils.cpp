// Finite-difference stencils and PDE-Net's moment kernels: every stencil against the
// analytic derivative of polynomials it must differentiate exactly (through
// apply_stencil, which also pins the x = column, y = row convention), the measured
// convergence order on a smooth function (halving h divides the error by 2^order) for the
// fixed stencils and for moment_kernel at orders 1..4, the moment matrix of known kernels,
// the dense solver, apply_stencil against a plain correlation loop, gradcheck and
// gradgradcheck in float64, and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "pde/stencils.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// A polynomial sum c_ab x^a y^b with every a + b <= degree and seeded coefficients, with
// its derivatives in closed form.
struct Polynomial {
  int degree;
  std::vector<double> coefficients;  // index a * (degree + 1) + b

  Polynomial(int degree_, std::uint64_t seed) : degree(degree_) {
    coefficients = random_input({(degree + 1) * (degree + 1)}, seed).to_vector();
  }
  double derivative(int i, int j, double x, double y) const {
    double sum = 0.0;
    for (int a = i; a <= degree; ++a)
      for (int b = j; a + b <= degree; ++b) {
        double falling = 1.0;  // a (a - 1) ... (a - i + 1) times the same for b
        for (int k = 0; k < i; ++k) falling *= a - k;
        for (int k = 0; k < j; ++k) falling *= b - k;
        sum += coefficients[static_cast<std::size_t>(a * (degree + 1) + b)] * falling * std::pow(x, a - i) *
               std::pow(y, b - j);
      }
    return sum;
  }
};

// f sampled on an n x n grid: x = x0 + col h, y = y0 + row h, as [1, 1, n, n] float64.
Tensor sample(const std::function<double(double, double)>& f, std::int64_t n, double h, double x0, double y0) {
  std::vector<double> v;
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t c = 0; c < n; ++c) v.push_back(f(x0 + static_cast<double>(c) * h, y0 + static_cast<double>(r) * h));
  return from_vector(v, {1, 1, n, n}, DType::f64);
}

// A smooth function with every derivative in closed form: two plane waves in different
// directions, so no error term cancels by accident.
//   f = exp(0.6 x - 0.4 y) + sin(1.3 x + 0.7 y + 0.2)
double smooth(double x, double y) { return std::exp(0.6 * x - 0.4 * y) + std::sin(1.3 * x + 0.7 * y + 0.2); }
double smooth_derivative(int i, int j, double x, double y) {
  const double wave = std::sin(1.3 * x + 0.7 * y + 0.2 + (i + j) * M_PI / 2);
  return std::pow(0.6, i) * std::pow(-0.4, j) * std::exp(0.6 * x - 0.4 * y) + std::pow(1.3, i) * std::pow(0.7, j) * wave;
}

// K * f at (0.3, -0.2) for a kernel built for spacing h, by a plain loop over the
// kernel's offsets (independent of apply_stencil).
constexpr double kX0 = 0.3, kY0 = -0.2;
double stencil_at_point(const Tensor& kernel, double h) {
  const std::int64_t k = kernel.size(0);
  const std::vector<double> w = kernel.to_vector();
  double sum = 0.0;
  for (std::int64_t r = 0; r < k; ++r)
    for (std::int64_t c = 0; c < k; ++c)
      sum += w[static_cast<std::size_t>(r * k + c)] *
             smooth(kX0 + static_cast<double>(c - k / 2) * h, kY0 + static_cast<double>(r - k / 2) * h);
  return sum;
}

double point_error(const Tensor& kernel, int i, int j, double h) {
  return std::abs(stencil_at_point(kernel, h) - smooth_derivative(i, j, kX0, kY0));
}

// log2 of the error ratio when h halves, from h = 0.2 to 0.1.
double measured_order(const std::function<Tensor(double)>& kernel_for, int i, int j) {
  return std::log2(point_error(kernel_for(0.2), i, j, 0.2) / point_error(kernel_for(0.1), i, j, 0.1));
}

struct Case {
  const char* name;
  std::function<Tensor(double)> kernel_for;  // kernel for spacing h
  int dx_order, dy_order, order;             // the derivative and its order of accuracy
};

std::vector<Case> fixed_stencils() {
  return {
      {"d/dx, 3-point", [](double h) { return first_derivative(Axis::x, h, 2); }, 1, 0, 2},
      {"d/dy, 3-point", [](double h) { return first_derivative(Axis::y, h, 2); }, 0, 1, 2},
      {"d/dx, 5-point", [](double h) { return first_derivative(Axis::x, h, 4); }, 1, 0, 4},
      {"d/dy, 5-point", [](double h) { return first_derivative(Axis::y, h, 4); }, 0, 1, 4},
      {"d2/dx2, 3-point", [](double h) { return second_derivative(Axis::x, h, 2); }, 2, 0, 2},
      {"d2/dy2, 3-point", [](double h) { return second_derivative(Axis::y, h, 2); }, 0, 2, 2},
      {"d2/dx2, 5-point", [](double h) { return second_derivative(Axis::x, h, 4); }, 2, 0, 4},
      {"d2/dy2, 5-point", [](double h) { return second_derivative(Axis::y, h, 4); }, 0, 2, 4},
      {"d2/dxdy", [](double h) { return mixed_derivative(h); }, 1, 1, 2},
      {"Sobel x", [](double h) { return sobel(Axis::x, h); }, 1, 0, 2},
      {"Sobel y", [](double h) { return sobel(Axis::y, h); }, 0, 1, 2},
  };
}

}  // namespace

TEST_CASE("each stencil differentiates low-degree polynomials exactly, x along columns", "[stencils]") {
  struct Exact {
    const char* name;
    Tensor kernel;
    int dx_order, dy_order, degree;  // exact for polynomials up to this total degree
  };
  const double h = 0.5;
  const std::vector<Exact> cases{
      {"d/dx 3-point", first_derivative(Axis::x, h, 2), 1, 0, 2},
      {"d/dy 3-point", first_derivative(Axis::y, h, 2), 0, 1, 2},
      {"d/dx 5-point", first_derivative(Axis::x, h, 4), 1, 0, 4},
      {"d/dy 5-point", first_derivative(Axis::y, h, 4), 0, 1, 4},
      {"d2/dx2 3-point", second_derivative(Axis::x, h, 2), 2, 0, 3},
      {"d2/dy2 3-point", second_derivative(Axis::y, h, 2), 0, 2, 3},
      {"d2/dx2 5-point", second_derivative(Axis::x, h, 4), 2, 0, 5},
      {"d2/dy2 5-point", second_derivative(Axis::y, h, 4), 0, 2, 5},
      {"d2/dxdy", mixed_derivative(h), 1, 1, 3},
      {"Sobel x", sobel(Axis::x, h), 1, 0, 2},
      {"Sobel y", sobel(Axis::y, h), 0, 1, 2},
      {"moment kernel d3/dx2dy", moment_kernel(5, 2, 1, 2, h), 2, 1, 4},
  };
  for (const Exact& e : cases) {
    INFO(e.name);
    const Polynomial poly(e.degree, 11);
    const double x0 = -1.3, y0 = 0.4;
    const std::int64_t n = 9;
    const Tensor image = sample([&](double x, double y) { return poly.derivative(0, 0, x, y); }, n, h, x0, y0);
    const std::vector<double> out = apply_stencil(image, e.kernel).to_vector();
    // Interior points only: the zero padding is not the polynomial.
    for (std::int64_t r = 2; r < n - 2; ++r)
      for (std::int64_t c = 2; c < n - 2; ++c) {
        const double want = poly.derivative(e.dx_order, e.dy_order, x0 + static_cast<double>(c) * h,
                                            y0 + static_cast<double>(r) * h);
        REQUIRE(out[static_cast<std::size_t>(r * n + c)] == Approx(want).margin(1e-9));
      }
  }
  // Laplacian = d2/dx2 + d2/dy2 on a cubic.
  const Polynomial cubic(3, 12);
  const Tensor image = sample([&](double x, double y) { return cubic.derivative(0, 0, x, y); }, 7, h, 0.2, -0.7);
  const std::vector<double> out = apply_stencil(image, laplacian(h)).to_vector();
  for (std::int64_t r = 1; r < 6; ++r)
    for (std::int64_t c = 1; c < 6; ++c) {
      const double x = 0.2 + static_cast<double>(c) * h, y = -0.7 + static_cast<double>(r) * h;
      REQUIRE(out[static_cast<std::size_t>(r * 7 + c)] ==
              Approx(cubic.derivative(2, 0, x, y) + cubic.derivative(0, 2, x, y)).margin(1e-9));
    }
}

TEST_CASE("fixed stencils converge at their order of accuracy, as their moments predict", "[stencils][order]") {
  for (const Case& c : fixed_stencils()) {
    INFO(c.name);
    CHECK(accuracy_order(c.kernel_for(0.1), c.dx_order, c.dy_order, 0.1) == c.order);
    CHECK(measured_order(c.kernel_for, c.dx_order, c.dy_order) == Approx(c.order).margin(0.2));
  }
  // The Laplacian against d2/dx2 + d2/dy2.
  auto laplacian_error = [](double h) {
    return std::abs(stencil_at_point(laplacian(h), h) - smooth_derivative(2, 0, kX0, kY0) -
                    smooth_derivative(0, 2, kX0, kY0));
  };
  CHECK(std::log2(laplacian_error(0.2) / laplacian_error(0.1)) == Approx(2).margin(0.2));
}

TEST_CASE("moment_kernel matches the requested moments and converges at the predicted order", "[stencils][order]") {
  struct Derivative {
    int dx_order, dy_order;
  };
  for (const Derivative d : {Derivative{1, 0}, Derivative{0, 1}, Derivative{2, 0}, Derivative{0, 2}, Derivative{1, 1}}) {
    for (int accuracy = 1; accuracy <= 4; ++accuracy) {
      const int needed = d.dx_order + d.dy_order + accuracy;
      const std::int64_t k = needed % 2 == 1 ? needed : needed + 1;  // the smallest odd k that can
      INFO("d^" << d.dx_order + d.dy_order << "/dx^" << d.dx_order << " dy^" << d.dy_order << ", accuracy "
                << accuracy << ", k = " << k);
      const Tensor kernel = moment_kernel(k, d.dx_order, d.dy_order, accuracy, 0.1);
      // Moments of total order below i + j + accuracy are the target's.
      const int top = d.dx_order + d.dy_order + accuracy - 1;
      const std::vector<double> m = moment_matrix(kernel * std::pow(0.1, d.dx_order + d.dy_order), top + 1).to_vector();
      for (int p = 0; p <= top; ++p)
        for (int q = 0; p + q <= top; ++q)
          REQUIRE(m[static_cast<std::size_t>(p * (top + 1) + q)] ==
                  Approx(p == d.dx_order && q == d.dy_order ? 1.0 : 0.0).margin(1e-10));
      // The centred minimum-norm kernel is (anti)symmetric, so the odd error terms vanish:
      // the order is the requested one rounded up to even.
      const int predicted = accuracy_order(kernel, d.dx_order, d.dy_order, 0.1);
      CHECK(predicted == accuracy + accuracy % 2);
      const auto kernel_for = [&](double h) { return moment_kernel(k, d.dx_order, d.dy_order, accuracy, h); };
      CHECK(measured_order(kernel_for, d.dx_order, d.dy_order) == Approx(predicted).margin(0.25));
    }
  }
}

TEST_CASE("moment_kernel: known kernels and the h scaling", "[stencils]") {
  // The 3x3 minimum-norm d/dx is the central difference averaged over the three rows.
  require_allclose(moment_kernel(3, 1, 0, 2), {-1. / 6, 0, 1. / 6, -1. / 6, 0, 1. / 6, -1. / 6, 0, 1. / 6}, 1e-12, 1e-14);
  // A kernel of order 0 with one moment fixed is the box average (all moments of order 0 = 1).
  require_allclose(moment_kernel(3, 0, 0, 1), std::vector<double>(9, 1.0 / 9), 1e-12, 1e-14);
  // Spacing h scales a derivative of total order m by h^-m.
  require_allclose(moment_kernel(5, 1, 1, 2, 0.5), moment_kernel(5, 1, 1, 2, 1.0) * 4.0, 1e-12, 1e-12);
  // The moment matrix of the 3-point second difference: M[0][0] = 0, M[2][0] = 1, M[4][0] = 2/4! = 1/12.
  const std::vector<double> m = moment_matrix(second_derivative(Axis::x), 5).to_vector();
  CHECK(m[0] == Approx(0).margin(1e-14));
  CHECK(m[2 * 5] == Approx(1.0));
  CHECK(m[4 * 5] == Approx(1.0 / 12));
  CHECK(m[2] == Approx(0).margin(1e-14));  // nothing along y
  CHECK(accuracy_order(sobel(Axis::x), 0, 1) == 0);  // Sobel x is not a y derivative
  CHECK(moment_kernel(3, 0, 0, 1, 1.0, DType::f32).dtype() == DType::f32);
}

TEST_CASE("solve_linear_system solves with pivoting and refuses singular systems", "[stencils]") {
  // The first pivot is zero: elimination without row exchanges would divide by it.
  const std::vector<double> A{0, 2, 1, 1, 1, 1, 2, 1, 3};
  const std::vector<double> z_true{1.5, -2.0, 0.25};
  std::vector<double> b(3, 0.0);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) b[static_cast<std::size_t>(r)] += A[static_cast<std::size_t>(r * 3 + c)] * z_true[static_cast<std::size_t>(c)];
  const std::vector<double> z = solve_linear_system(A, b);
  for (int i = 0; i < 3; ++i) CHECK(z[static_cast<std::size_t>(i)] == Approx(z_true[static_cast<std::size_t>(i)]).margin(1e-14));
  REQUIRE_THROWS_WITH(solve_linear_system({1, 2, 2, 4}, {1, 1}), Catch::Contains("singular"));
  REQUIRE_THROWS_AS(solve_linear_system({1, 2, 3}, {1, 1}), std::invalid_argument);
}

TEST_CASE("apply_stencil is a per-channel correlation with the chosen boundary", "[stencils]") {
  const Tensor image = random_input({2, 3, 5, 6}, 3).detach();
  const Tensor kernel = random_input({3, 5}, 4).detach();
  for (PadMode mode : {PadMode::zeros, PadMode::circular}) {
    INFO(pad_mode_name(mode));
    const std::vector<double> x = image.to_vector(), k = kernel.to_vector();
    std::vector<double> want;
    for (std::int64_t plane = 0; plane < 6; ++plane)
      for (std::int64_t r = 0; r < 5; ++r)
        for (std::int64_t c = 0; c < 6; ++c) {
          double sum = 0.0;
          for (std::int64_t a = 0; a < 3; ++a)
            for (std::int64_t b = 0; b < 5; ++b) {
              std::int64_t rr = r + a - 1, cc = c + b - 2;
              if (mode == PadMode::circular) {
                rr = (rr + 5) % 5;
                cc = (cc + 6) % 6;
              } else if (rr < 0 || rr >= 5 || cc < 0 || cc >= 6) {
                continue;
              }
              sum += k[static_cast<std::size_t>(a * 5 + b)] * x[static_cast<std::size_t>((plane * 5 + rr) * 6 + cc)];
            }
          want.push_back(sum);
        }
    require_allclose(apply_stencil(image, kernel, mode), want, 1e-12, 1e-12);
  }
  // A float32 image gets a float32 result from a float64 kernel.
  CHECK(apply_stencil(to_dtype(image, DType::f32), laplacian()).dtype() == DType::f32);
  CHECK(depthwise_weight(laplacian(), 4).shape() == Shape{4, 1, 3, 3});
}

TEST_CASE("apply_stencil passes gradcheck and gradgradcheck in float64", "[stencils][gradcheck]") {
  const Tensor image = random_input({1, 2, 4, 5}, 5);
  const Tensor kernel = random_input({3, 3}, 6);
  for (PadMode mode : {PadMode::zeros, PadMode::replicate, PadMode::reflect}) {
    INFO(pad_mode_name(mode));
    const auto f = [mode](const TensorList& in) { return apply_stencil(in[0], in[1], mode); };
    REQUIRE_GRADCHECK(f, (TensorList{image, kernel}));
    REQUIRE_GRADGRADCHECK(f, (TensorList{image, kernel}));
  }
}

TEST_CASE("stencil errors name the function and the problem", "[stencils][errors]") {
  REQUIRE_THROWS_WITH(moment_kernel(3, 1, 0, 3), Catch::Contains("moment_kernel") && Catch::Contains(">= 4"));
  REQUIRE_THROWS_WITH(moment_kernel(4, 1, 0, 1), Catch::Contains("odd"));
  REQUIRE_THROWS_WITH(moment_kernel(5, -1, 0, 1), Catch::Contains("must be >= 0"));
  REQUIRE_THROWS_WITH(moment_kernel(5, 1, 0, 0), Catch::Contains("accuracy 0"));
  REQUIRE_THROWS_WITH(first_derivative(Axis::x, 1.0, 3), Catch::Contains("accuracy 3"));
  REQUIRE_THROWS_WITH(second_derivative(Axis::y, 0.0), Catch::Contains("h = 0"));
  REQUIRE_THROWS_WITH(laplacian(-1.0), Catch::Contains("must be positive"));
  REQUIRE_THROWS_WITH(apply_stencil(zeros({3, 3}, DType::f64), laplacian()), Catch::Contains("[3, 3]") &&
                                                                                 Catch::Contains("[N, C, H, W]"));
  REQUIRE_THROWS_WITH(apply_stencil(zeros({1, 1, 4, 4}, DType::f64), zeros({2, 3}, DType::f64)),
                      Catch::Contains("[2, 3]") && Catch::Contains("odd"));
  REQUIRE_THROWS_WITH(moment_matrix(zeros({3, 5}, DType::f64), 3), Catch::Contains("square"));
  REQUIRE_THROWS_WITH(depthwise_weight(zeros({3}, DType::f64), 2), Catch::Contains("[3]"));
}
