// Unary elementwise ops: forward against std:: math in both dtypes, gradcheck and
// gradgradcheck in float64, the documented conventions at kinks, and edge shapes.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>

#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// Relative tolerance of a result against a double-precision reference: a few ulp of
// the element type (float32 computes in float, so its results carry float rounding).
double rtol_for(DType dt) { return dt == DType::f32 ? 2e-6 : 1e-13; }

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> reference;  // the std:: formula, in double
  double low, high;                         // forward inputs are drawn from [low, high)
  // Functions whose value can cancel to near zero (sin near pi, log near 1, gelu's
  // 1 + erf) are accurate relative to this magnitude, not to the result: the
  // tolerance is rtol * (|reference| + abs_floor).
  double abs_floor;
};

double gelu_reference(double x) { return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)); }
double sigmoid_reference(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus_reference(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -10, 10, 0},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, -10, 10, 0},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -20, 20, 0},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 1e-3, 50, 1},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0, 100, 0},
      {"square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }, -10, 10, 0},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, [](double x) { return x * x * x; }, -4, 4, 0},
      {"pow 2 (negative base)", [](const Tensor& x) { return pow(x, 2.0); }, [](double x) { return x * x; }, -4, 4, 0},
      {"pow -1.5", [](const Tensor& x) { return pow(x, -1.5); }, [](double x) { return std::pow(x, -1.5); }, 0.1, 10, 0},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }, [](double x) { return std::sqrt(x); }, 0, 10, 0},
      {"sin", [](const Tensor& x) { return sin(x); }, [](double x) { return std::sin(x); }, -10, 10, 1},
      {"cos", [](const Tensor& x) { return cos(x); }, [](double x) { return std::cos(x); }, -10, 10, 1},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -8, 8, 1},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, sigmoid_reference, -20, 20, 0},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }, -5, 5, 0},
      {"gelu", [](const Tensor& x) { return gelu(x); }, gelu_reference, -6, 6, 1},
      {"softplus", [](const Tensor& x) { return softplus(x); }, softplus_reference, -20, 20, 0},
      {"silu", [](const Tensor& x) { return silu(x); }, [](double x) { return x * sigmoid_reference(x); }, -20, 20, 0},
      {"erf", [](const Tensor& x) { return erf(x); }, [](double x) { return std::erf(x); }, -4, 4, 1},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, [](double x) { return 1.0 / x; }, 0.05, 20, 0},
  };
}

// |actual - reference| <= rtol * (|reference| + abs_floor) elementwise; NaN matches NaN.
void require_matches_reference(const Tensor& input, const Tensor& output, const UnaryCase& c) {
  REQUIRE(output.shape() == input.shape());
  REQUIRE(output.dtype() == input.dtype());
  const std::vector<double> xs = input.to_vector(), ys = output.to_vector();
  const double rtol = rtol_for(input.dtype());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    double expected = c.reference(xs[i]);
    if (input.dtype() == DType::f32) expected = static_cast<float>(expected);  // the representable answer
    if (std::isnan(expected) && std::isnan(ys[i])) continue;
    if (std::abs(ys[i] - expected) <= rtol * (std::abs(expected) + c.abs_floor)) continue;
    std::ostringstream os;
    os.precision(17);
    os << c.name << " " << dtype_name(input.dtype()) << " element " << i << ": x = " << xs[i] << ", got "
       << ys[i] << ", expected " << expected;
    FAIL(os.str());
  }
}

// Shapes chosen so a SIMD kernel runs its vector body, its tail, and more than one
// thread chunk: 1031 is prime, [3, 7] is smaller than one vector of floats.
const Shape forward_shapes[] = {{1031}, {3, 7}, {}, {1}};

}  // namespace

TEST_CASE("unary ops match std:: math in float32 and float64", "[unary]") {
  std::uint64_t seed = 100;
  for (const UnaryCase& c : unary_cases())
    for (DType dt : {DType::f32, DType::f64})
      for (const Shape& shape : forward_shapes) {
        INFO(c.name << " " << dtype_name(dt) << " " << shape_str(shape));
        Generator gen(++seed);
        Tensor x = uniform(shape, c.low, c.high, gen, dt);
        require_matches_reference(x, c.op(x), c);
      }
}

TEST_CASE("unary ops on tensors large enough to be split over threads", "[unary][threads]") {
  // Above the kernels' per-thread grain, with an odd thread count so chunks are uneven.
  const int previous = get_num_threads();
  set_num_threads(3);
  std::uint64_t seed = 300;
  for (const UnaryCase& c : unary_cases())
    for (DType dt : {DType::f32, DType::f64}) {
      INFO(c.name << " " << dtype_name(dt));
      Generator gen(++seed);
      Tensor x = uniform({200003}, c.low, c.high, gen, dt);
      require_matches_reference(x, c.op(x), c);
    }
  set_num_threads(previous);
}

TEST_CASE("unary ops stay finite where a naive formula overflows", "[unary]") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    Tensor x = tensor({-1000.0, -100.0, 100.0, 1000.0}, {}, dt);
    require_allclose(sigmoid(x), {0.0, 3.720075976020836e-44, 1.0, 1.0}, 1e-6, 1e-40);
    require_allclose(softplus(x), {0.0, 3.720075976020836e-44, 100.0, 1000.0}, 1e-6, 1e-40);
    require_allclose(tanh(x), {-1.0, -1.0, 1.0, 1.0});
    require_allclose(silu(x), {-0.0, -3.720075976020836e-42, 100.0, 1000.0}, 1e-6, 1e-38);
    require_allclose(gelu(x), {-0.0, -0.0, 100.0, 1000.0});
  }
}

TEST_CASE("unary ops at special values follow IEEE / the C library", "[unary]") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    require_allclose(exp(tensor({-inf, 0.0, inf}, {}, dt)), {0.0, 1.0, inf});
    require_allclose(log(tensor({0.0, 1.0, inf}, {}, dt)), {-inf, 0.0, inf});
    require_allclose(sqrt(tensor({0.0, 4.0, inf}, {}, dt)), {0.0, 2.0, inf});
    require_allclose(reciprocal(tensor({inf, 4.0, -inf}, {}, dt)), {0.0, 0.25, -0.0});
    require_allclose(sigmoid(tensor({-inf, 0.0, inf}, {}, dt)), {0.0, 0.5, 1.0});
    REQUIRE(std::isnan(log(tensor({-1.0}, {}, dt)).item()));
    REQUIRE(std::isnan(sqrt(tensor({-1.0}, {}, dt)).item()));
    REQUIRE(std::isnan(exp(tensor({std::nan("")}, {}, dt)).item()));
  }
}

// ---- derivatives ------------------------------------------------------------

namespace {
struct GradCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  double low, high;  // gradcheck inputs: inside the domain, away from kinks
};

std::vector<GradCase> grad_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, -2, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, -2, 2},
      {"log", [](const Tensor& x) { return log(x); }, 0.5, 2},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.5, 2},
      {"square", [](const Tensor& x) { return square(x); }, -2, 2},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, -2, 2},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }, -2, 2},
      {"pow 1", [](const Tensor& x) { return pow(x, 1.0); }, -2, 2},
      {"pow 0", [](const Tensor& x) { return pow(x, 0.0); }, -2, 2},
      {"pow -1.5", [](const Tensor& x) { return pow(x, -1.5); }, 0.5, 2},
      {"pow 2.5", [](const Tensor& x) { return pow(x, 2.5); }, 0.5, 2},
      {"sin", [](const Tensor& x) { return sin(x); }, -3, 3},
      {"cos", [](const Tensor& x) { return cos(x); }, -3, 3},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -2, 2},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -3, 3},
      {"gelu", [](const Tensor& x) { return gelu(x); }, -3, 3},
      {"softplus", [](const Tensor& x) { return softplus(x); }, -3, 3},
      {"silu", [](const Tensor& x) { return silu(x); }, -3, 3},
      {"erf", [](const Tensor& x) { return erf(x); }, -2, 2},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, 0.5, 2},
  };
}
}  // namespace

TEST_CASE("unary ops pass gradcheck and gradgradcheck", "[unary][gradcheck]") {
  std::uint64_t seed = 500;
  for (const GradCase& c : grad_cases()) {
    INFO(c.name);
    Tensor x = random_input({2, 3}, ++seed, c.low, c.high);
    auto f = [&](const TensorList& xs) { return c.op(xs[0]); };
    REQUIRE_GRADCHECK(f, TensorList{x});
    REQUIRE_GRADGRADCHECK(f, TensorList{x});
  }
}

TEST_CASE("relu and abs pass gradcheck away from their kink at 0", "[unary][gradcheck]") {
  // Fixed inputs so no element lands within eps of 0.
  Tensor x = tensor({-0.9, -0.4, -0.15, 0.2, 0.55, 1.3}, {2, 3}, DType::f64).requires_grad_();
  auto relu_f = [](const TensorList& xs) { return relu(xs[0]); };
  auto abs_f = [](const TensorList& xs) { return abs(xs[0]); };
  REQUIRE_GRADCHECK(relu_f, TensorList{x});
  REQUIRE_GRADGRADCHECK(relu_f, TensorList{x});
  REQUIRE_GRADCHECK(abs_f, TensorList{x});
  REQUIRE_GRADGRADCHECK(abs_f, TensorList{x});
  // Composed with a smooth op, so the second derivative is not identically zero.
  auto mixed = [](const TensorList& xs) { return relu(xs[0]) * abs(xs[0]) + relu(-xs[0]) * exp(xs[0]); };
  REQUIRE_GRADGRADCHECK(mixed, TensorList{x});
}

TEST_CASE("the derivative of relu and abs at 0 is 0 (the PyTorch convention)", "[unary]") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = tensor({-1.5, 0.0, 2.0}, {}, dt).requires_grad_();
    backward(sum(relu(x)));
    require_allclose(x.grad(), {0.0, 0.0, 1.0});
    x.zero_grad();
    backward(sum(abs(x)));
    require_allclose(x.grad(), {-1.0, 0.0, 1.0});
  }
}

TEST_CASE("pow with exponent 0 has gradient 0 even at x = 0", "[unary]") {
  Tensor x = tensor({0.0, -2.0, 3.0}, {}, DType::f64).requires_grad_();
  Tensor y = pow(x, 0.0);
  require_allclose(y, {1.0, 1.0, 1.0});
  backward(sum(y));
  require_allclose(x.grad(), {0.0, 0.0, 0.0});
}

TEST_CASE("hand-derived second derivatives of tanh, sigmoid and gelu", "[unary]") {
  // Independent of gradgradcheck: closed forms evaluated with std:: math.
  const double v = 0.8;
  Tensor x = tensor({v}, {}, DType::f64).requires_grad_();
  auto second = [&](const std::function<Tensor(const Tensor&)>& f) {
    Tensor g1 = grad({f(x)}, {x}, {}, {.create_graph = true})[0];
    return grad({g1}, {x})[0].item();
  };
  const double t = std::tanh(v), s = sigmoid_reference(v);
  const double phi = std::exp(-0.5 * v * v) / std::sqrt(2.0 * std::numbers::pi);
  REQUIRE(second([](const Tensor& a) { return tanh(a); }) == Approx(-2.0 * t * (1 - t * t)).epsilon(1e-12));
  REQUIRE(second([](const Tensor& a) { return sigmoid(a); }) == Approx(s * (1 - s) * (1 - 2 * s)).epsilon(1e-12));
  REQUIRE(second([](const Tensor& a) { return gelu(a); }) == Approx(phi * (2 - v * v)).epsilon(1e-12));
}

TEST_CASE("sign and step are constants: values, and no gradient recorded", "[unary]") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = tensor({-2.0, -0.0, 0.0, 0.5}, {}, dt).requires_grad_();
    Tensor s = sign(x), u = step(x);
    require_allclose(s, {-1.0, 0.0, 0.0, 1.0});
    require_allclose(u, {0.0, 0.0, 0.0, 1.0});
    REQUIRE_FALSE(s.requires_grad());
    REQUIRE_FALSE(u.requires_grad());
    REQUIRE(s.dtype() == dt);
  }
}

// ---- to_dtype ----------------------------------------------------------------

TEST_CASE("to_dtype converts values and converts the gradient back", "[unary][dtype]") {
  Tensor x32 = tensor({0.1, -2.5, 1e30}, {}, DType::f32).requires_grad_();
  Tensor x64 = to_dtype(x32, DType::f64);
  REQUIRE(x64.dtype() == DType::f64);
  // Exactly the float values, widened: 0.1f is not 0.1.
  require_allclose(x64, {static_cast<double>(0.1f), -2.5, static_cast<double>(1e30f)}, 0, 0);
  backward(sum(x64 * tensor({1.0, 2.0, 3.0}, {}, DType::f64)));
  REQUIRE(x32.grad().dtype() == DType::f32);
  require_allclose(x32.grad(), {1.0, 2.0, 3.0});

  Tensor narrowed = to_dtype(tensor({0.1, 1e300}, {}, DType::f64), DType::f32);
  REQUIRE(narrowed.dtype() == DType::f32);
  require_allclose(narrowed, {static_cast<double>(0.1f), std::numeric_limits<double>::infinity()}, 0, 0);
}

TEST_CASE("to_dtype to the same dtype returns the tensor itself", "[unary][dtype]") {
  Tensor x = tensor({1.0, 2.0}, {}, DType::f64).requires_grad_();
  Tensor y = to_dtype(x, DType::f64);
  REQUIRE(y.impl() == x.impl());
}

TEST_CASE("to_dtype passes gradcheck and gradgradcheck through a float32 round trip", "[unary][dtype][gradcheck]") {
  // float32 rounding (~6e-8 relative) is invisible at this eps.
  Tensor x = random_input({2, 3}, 77, -2.0, 2.0);
  auto f = [](const TensorList& xs) { return to_dtype(square(to_dtype(xs[0], DType::f32)), DType::f64); };
  GradcheckOptions opts;
  opts.eps = 1e-2;
  opts.atol = 1e-4;
  opts.name = "to_dtype round trip";
  auto first = gradcheck(f, {x}, opts);
  INFO(first.message);
  REQUIRE(first.ok);
  auto second = gradgradcheck(f, {x}, opts);
  INFO(second.message);
  REQUIRE(second.ok);
}

// ---- shapes and errors ----------------------------------------------------------

TEST_CASE("unary ops on zero-size and one-element tensors", "[unary][edge]") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor empty = zeros({0, 3}, dt).requires_grad_();
    Tensor y = exp(empty);
    REQUIRE(y.shape() == Shape{0, 3});
    REQUIRE(y.dtype() == dt);
    backward(sum(y));
    REQUIRE(empty.grad().shape() == Shape{0, 3});

    Tensor one = tensor({0.25}, {}, dt).requires_grad_();  // shape []
    REQUIRE(one.shape() == Shape{});
    Tensor z = sqrt(one);
    REQUIRE(z.shape() == Shape{});
    REQUIRE(z.item() == Approx(0.5));
    backward(z);
    REQUIRE(one.grad().item() == Approx(1.0));  // 1 / (2 sqrt 0.25)
  }
}

TEST_CASE("unary ops reject an undefined input naming the op", "[unary][errors]") {
  REQUIRE_THROWS_WITH(exp(Tensor()), Catch::Contains("exp") && Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(gelu(Tensor()), Catch::Contains("gelu"));
  REQUIRE_THROWS_WITH(to_dtype(Tensor(), DType::f32), Catch::Contains("to_dtype"));
}
