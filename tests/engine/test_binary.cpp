// Binary elementwise ops with broadcasting: forward against a plain broadcasting loop
// in both dtypes, gradcheck and gradgradcheck in float64, tie conventions,
// comparisons, where, edge shapes and error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

using ScalarFn = std::function<double(double, double)>;

// Reads element `flat` of out_shape from a tensor of shape `in` broadcast to it
// (NumPy rules: align right, size-1 dimensions repeat). Written independently of
// the library's broadcast_strides.
std::int64_t broadcast_offset(const Shape& in, const Shape& out, std::int64_t flat) {
  std::int64_t offset = 0, in_stride = 1;
  for (std::size_t d = out.size(); d-- > 0;) {
    const std::int64_t coord = flat % out[d];
    flat /= out[d];
    const std::size_t lead = out.size() - in.size();
    if (d < lead) continue;
    const std::int64_t extent = in[d - lead];
    if (extent != 1) offset += coord * in_stride;
    in_stride *= extent;
  }
  return offset;
}

std::vector<double> broadcast_reference(const Tensor& a, const Tensor& b, const Shape& out, const ScalarFn& fn) {
  const std::vector<double> av = a.to_vector(), bv = b.to_vector();
  std::vector<double> result;
  for (std::int64_t i = 0; i < shape_numel(out); ++i)
    result.push_back(fn(av[broadcast_offset(a.shape(), out, i)], bv[broadcast_offset(b.shape(), out, i)]));
  return result;
}

struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  ScalarFn reference;
  double a_low, a_high, b_low, b_high;
  bool ties;  // draw from a coarse grid so equal pairs occur
};

std::vector<BinaryCase> binary_cases() {
  auto cmp = [](bool v) { return v ? 1.0 : 0.0; };
  return {
      {"add", [](auto& a, auto& b) { return add(a, b); }, [](double a, double b) { return a + b; }, -5, 5, -5, 5, false},
      {"sub", [](auto& a, auto& b) { return sub(a, b); }, [](double a, double b) { return a - b; }, -5, 5, -5, 5, false},
      {"mul", [](auto& a, auto& b) { return mul(a, b); }, [](double a, double b) { return a * b; }, -5, 5, -5, 5, false},
      {"div", [](auto& a, auto& b) { return div(a, b); }, [](double a, double b) { return a / b; }, -5, 5, 0.1, 5, false},
      {"pow", [](auto& a, auto& b) { return pow(a, b); }, [](double a, double b) { return std::pow(a, b); }, 0.05, 5, -3, 3, false},
      {"maximum", [](auto& a, auto& b) { return maximum(a, b); }, [](double a, double b) { return a > b ? a : b; }, -3, 3, -3, 3, true},
      {"minimum", [](auto& a, auto& b) { return minimum(a, b); }, [](double a, double b) { return a < b ? a : b; }, -3, 3, -3, 3, true},
      {"eq", [](auto& a, auto& b) { return eq(a, b); }, [cmp](double a, double b) { return cmp(a == b); }, -3, 3, -3, 3, true},
      {"ne", [](auto& a, auto& b) { return ne(a, b); }, [cmp](double a, double b) { return cmp(a != b); }, -3, 3, -3, 3, true},
      {"lt", [](auto& a, auto& b) { return lt(a, b); }, [cmp](double a, double b) { return cmp(a < b); }, -3, 3, -3, 3, true},
      {"le", [](auto& a, auto& b) { return le(a, b); }, [cmp](double a, double b) { return cmp(a <= b); }, -3, 3, -3, 3, true},
      {"gt", [](auto& a, auto& b) { return gt(a, b); }, [cmp](double a, double b) { return cmp(a > b); }, -3, 3, -3, 3, true},
      {"ge", [](auto& a, auto& b) { return ge(a, b); }, [cmp](double a, double b) { return cmp(a >= b); }, -3, 3, -3, 3, true},
  };
}

struct ShapeCase {
  Shape a, b, out;  // out written by hand, not computed by the library
};

// Broadcasts in every position, scalars, zero-size, one-element, and sizes that give
// a SIMD kernel a vector body, a tail and several thread chunks.
const ShapeCase shape_cases[] = {
    {{3, 1}, {4}, {3, 4}},          {{2, 1, 3}, {5, 1}, {2, 5, 3}},  {{}, {2, 3}, {2, 3}},
    {{2, 3}, {}, {2, 3}},           {{2, 3}, {2, 3}, {2, 3}},        {{3, 1}, {1, 4}, {3, 4}},
    {{4, 1, 5}, {1, 3, 1}, {4, 3, 5}}, {{67, 33}, {33}, {67, 33}},   {{67, 1}, {67, 33}, {67, 33}},
    {{1031}, {1031}, {1031}},       {{0, 3}, {3}, {0, 3}},           {{1}, {1}, {1}},
    {{}, {}, {}},                   {{1}, {2, 3}, {2, 3}},
};

Tensor draw(const Shape& shape, double low, double high, bool ties, Generator& gen, DType dt) {
  Tensor t = uniform(shape, low, high, gen, dt);
  if (!ties) return t;
  std::vector<double> v = t.to_vector();
  for (double& e : v) e = std::round(e * 2.0) / 2.0;  // half-integers: exact in both dtypes
  return from_vector(v, shape, dt);
}

double rtol_for(DType dt) { return dt == DType::f32 ? 2e-6 : 1e-13; }

}  // namespace

TEST_CASE("binary ops match a plain broadcasting loop in float32 and float64", "[binary]") {
  std::uint64_t seed = 1000;
  for (const BinaryCase& c : binary_cases())
    for (DType dt : {DType::f32, DType::f64})
      for (const ShapeCase& s : shape_cases) {
        INFO(c.name << " " << dtype_name(dt) << " " << shape_str(s.a) << " x " << shape_str(s.b));
        Generator gen(++seed);
        Tensor a = draw(s.a, c.a_low, c.a_high, c.ties, gen, dt);
        Tensor b = draw(s.b, c.b_low, c.b_high, c.ties, gen, dt);
        Tensor out = c.op(a, b);
        REQUIRE(out.shape() == s.out);
        REQUIRE(out.dtype() == dt);
        std::vector<double> expected = broadcast_reference(a, b, s.out, c.reference);
        if (dt == DType::f32)
          for (double& e : expected) e = static_cast<float>(e);
        require_allclose(out, expected, rtol_for(dt), 0.0);
      }
}

TEST_CASE("binary ops on tensors large enough to be split over threads", "[binary][threads]") {
  const int previous = get_num_threads();
  set_num_threads(3);  // odd, so chunks are uneven
  const ShapeCase large[] = {{{517, 263}, {263}, {517, 263}},
                             {{517, 1}, {517, 263}, {517, 263}},
                             {{131101}, {131101}, {131101}},
                             {{3, 1, 211}, {217, 1}, {3, 217, 211}}};
  std::uint64_t seed = 1500;
  for (const BinaryCase& c : binary_cases())
    for (DType dt : {DType::f32, DType::f64})
      for (const ShapeCase& s : large) {
        INFO(c.name << " " << dtype_name(dt) << " " << shape_str(s.a) << " x " << shape_str(s.b));
        Generator gen(++seed);
        Tensor a = draw(s.a, c.a_low, c.a_high, c.ties, gen, dt);
        Tensor b = draw(s.b, c.b_low, c.b_high, c.ties, gen, dt);
        Tensor out = c.op(a, b);
        REQUIRE(out.shape() == s.out);
        std::vector<double> expected = broadcast_reference(a, b, s.out, c.reference);
        if (dt == DType::f32)
          for (double& e : expected) e = static_cast<float>(e);
        require_allclose(out, expected, rtol_for(dt), 0.0);
      }
  set_num_threads(previous);
}

TEST_CASE("maximum and minimum propagate NaN from either side", "[binary]") {
  const double nan = std::nan("");
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = tensor({nan, 1.0, nan}, {}, dt), b = tensor({1.0, nan, nan}, {}, dt);
    for (const Tensor& r : {maximum(a, b), minimum(a, b)})
      for (double v : r.to_vector()) REQUIRE(std::isnan(v));
  }
}

TEST_CASE("scalar operators adopt the tensor's dtype", "[binary]") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = tensor({1.0, 2.0, 4.0}, {}, dt);
    for (const Tensor& r : {a + 1.0, 1.0 + a, a - 1.0, 1.0 - a, a * 3.0, 3.0 * a, a / 2.0, 2.0 / a, -a})
      REQUIRE(r.dtype() == dt);
    require_allclose(a + 1.0, {2, 3, 5});
    require_allclose(1.0 - a, {0, -1, -3});
    require_allclose(a * 3.0, {3, 6, 12});
    require_allclose(2.0 / a, {2, 1, 0.5});
    require_allclose(a / 2.0, {0.5, 1, 2});
    require_allclose(-a, {-1, -2, -4});
  }
}

// ---- derivatives ------------------------------------------------------------

namespace {
struct GradShapes {
  Shape a, b;
};
const GradShapes grad_shapes[] = {{{3, 1}, {4}}, {{2, 1, 3}, {5, 1}}, {{}, {2, 3}}, {{2, 3}, {2, 3}}, {{2, 3}, {}}};

// The smallest |a - b| over the broadcast pairs: maximum/minimum need no pair within
// gradcheck's eps of a tie.
double closest_pair(const Tensor& a, const Tensor& b, const Shape& out) {
  double closest = std::numeric_limits<double>::infinity();
  for (double d : broadcast_reference(a, b, out, [](double x, double y) { return std::abs(x - y); }))
    closest = std::min(closest, d);
  return closest;
}

struct GradCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  double a_low, a_high, b_low, b_high;
  bool kinked_at_ties = false;
};

const GradCase grad_cases[] = {
    {"add", [](auto& a, auto& b) { return add(a, b); }, -2, 2, -2, 2},
    {"sub", [](auto& a, auto& b) { return sub(a, b); }, -2, 2, -2, 2},
    {"mul", [](auto& a, auto& b) { return mul(a, b); }, -2, 2, -2, 2},
    {"div", [](auto& a, auto& b) { return div(a, b); }, -2, 2, 0.5, 2},
    {"div (negative divisor)", [](auto& a, auto& b) { return div(a, b); }, -2, 2, -2, -0.5},
    {"pow", [](auto& a, auto& b) { return pow(a, b); }, 0.5, 2, -1.5, 1.5},
    {"maximum", [](auto& a, auto& b) { return maximum(a, b); }, -1, 1, -1, 1, true},
    {"minimum", [](auto& a, auto& b) { return minimum(a, b); }, -1, 1, -1, 1, true},
    {"a * b - a / b (a used twice)", [](auto& a, auto& b) { return a * b - a / b; }, -2, 2, 0.5, 2},
};
}  // namespace

TEST_CASE("binary ops pass gradcheck and gradgradcheck under broadcasting", "[binary][gradcheck]") {
  std::uint64_t seed = 2000;
  for (const GradCase& c : grad_cases)
    for (const GradShapes& s : grad_shapes) {
      INFO(c.name << " " << shape_str(s.a) << " x " << shape_str(s.b));
      Tensor a = random_input(s.a, ++seed, c.a_low, c.a_high);
      Tensor b = random_input(s.b, ++seed, c.b_low, c.b_high);
      // maximum / minimum are kinked at ties: no broadcast pair may lie within eps of one.
      if (c.kinked_at_ties) REQUIRE(closest_pair(a, b, broadcast_shapes(s.a, s.b, "test")) > 1e-3);
      auto f = [&](const TensorList& xs) { return c.op(xs[0], xs[1]); };
      REQUIRE_GRADCHECK(f, (TensorList{a, b}));
      REQUIRE_GRADGRADCHECK(f, (TensorList{a, b}));
    }
}

TEST_CASE("gradcheck with only one operand requiring grad", "[binary][gradcheck]") {
  Tensor a = random_input({3, 1}, 31, 0.5, 2.0);
  Tensor b_const = random_input({4}, 32, -1.0, 1.0).detach();
  auto f = [&](const TensorList& xs) { return pow(xs[0], b_const) / b_const; };
  REQUIRE_GRADCHECK(f, TensorList{a});
  REQUIRE_GRADGRADCHECK(f, TensorList{a});
  Tensor a_const = a.detach();
  Tensor b = random_input({4}, 33, -1.0, 1.0);
  auto g = [&](const TensorList& xs) { return pow(a_const, xs[0]) * xs[0]; };
  REQUIRE_GRADCHECK(g, TensorList{b});
  REQUIRE_GRADGRADCHECK(g, TensorList{b});
}

TEST_CASE("maximum and minimum split the gradient evenly on ties", "[binary]") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    Tensor a = tensor({1.0, 2.0, 3.0}, {}, dt).requires_grad_();
    Tensor b = tensor({2.0}, {}, dt).requires_grad_();
    backward(sum(maximum(a, b)));
    require_allclose(a.grad(), {0.0, 0.5, 1.0});
    require_allclose(b.grad(), {1.5});  // 1 + 0.5 + 0, summed over the broadcast
    a.zero_grad();
    b.zero_grad();
    backward(sum(minimum(a, b)));
    require_allclose(a.grad(), {1.0, 0.5, 0.0});
    require_allclose(b.grad(), {1.5});
  }
}

TEST_CASE("comparisons give 0/1 in the operands' dtype and record no gradient", "[binary]") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = tensor({1.0, 2.0, 3.0}, {}, dt).requires_grad_();
    Tensor b = tensor({2.0}, {}, dt).requires_grad_();
    const std::vector<std::pair<Tensor, std::vector<double>>> results = {
        {eq(a, b), {0, 1, 0}}, {ne(a, b), {1, 0, 1}}, {lt(a, b), {1, 0, 0}},
        {le(a, b), {1, 1, 0}}, {gt(a, b), {0, 0, 1}}, {ge(a, b), {0, 1, 1}}};
    for (const auto& [r, expected] : results) {
      REQUIRE(r.dtype() == dt);
      REQUIRE_FALSE(r.requires_grad());
      REQUIRE(r.is_leaf());
      require_allclose(r, expected, 0, 0);
    }
  }
}

// ---- where ------------------------------------------------------------------

TEST_CASE("where picks a where cond is non-zero, with broadcasting", "[binary][where]") {
  for (DType dt : {DType::f32, DType::f64}) {
    // Any non-zero condition counts, including -1, 0.5 and NaN.
    Tensor cond = tensor({1.0, 0.0, -1.0, 0.5, std::nan(""), -0.0}, {3, 2, 1}, dt);
    Tensor a = tensor({10.0, 20.0, 30.0, 40.0}, {2, 2}, dt);
    Tensor b = tensor({-5.0}, {}, dt);
    Tensor out = where(cond, a, b);
    REQUIRE(out.shape() == Shape{3, 2, 2});
    REQUIRE(out.dtype() == dt);
    const std::vector<double> c = cond.to_vector(), av = a.to_vector();
    std::vector<double> expected;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j)
        for (int k = 0; k < 2; ++k) expected.push_back(c[i * 2 + j] != 0.0 ? av[j * 2 + k] : -5.0);
    require_allclose(out, expected, 0, 0);
  }
}

TEST_CASE("where passes gradcheck and gradgradcheck; cond gets no gradient", "[binary][where][gradcheck]") {
  Tensor cond = tensor({1.0, 0.0, 1.0}, {3, 1}, DType::f64);
  Tensor a = random_input({3, 4}, 41);
  Tensor b = random_input({4}, 42);
  auto f = [&](const TensorList& xs) { return where(cond, xs[0] * xs[1], exp(xs[1])); };
  REQUIRE_GRADCHECK(f, (TensorList{a, b}));
  REQUIRE_GRADGRADCHECK(f, (TensorList{a, b}));

  Tensor cond_leaf = cond.detach().requires_grad_();
  Tensor a2 = a.detach().requires_grad_();
  backward(sum(where(cond_leaf, a2, b)));
  REQUIRE_FALSE(cond_leaf.grad().defined());
  require_allclose(a2.grad(), {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1});
  require_allclose(b.grad(), {1, 1, 1, 1});  // the one row where cond is 0, summed to [4]
}

// ---- shapes and errors ----------------------------------------------------------

TEST_CASE("binary ops on zero-size and one-element tensors", "[binary][edge]") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = zeros({0, 3}, dt).requires_grad_();
    Tensor b = ones({3}, dt).requires_grad_();
    Tensor out = a * b;
    REQUIRE(out.shape() == Shape{0, 3});
    backward(sum(out));
    REQUIRE(a.grad().shape() == Shape{0, 3});
    REQUIRE(b.grad().shape() == Shape{3});
    require_allclose(b.grad(), {0, 0, 0});  // summed over zero rows

    Tensor s = tensor({3.0}, {}, dt).requires_grad_();  // shape []
    Tensor t = tensor({2.0}, {1}, dt).requires_grad_();  // shape [1]
    Tensor st = s * t;
    REQUIRE(st.shape() == Shape{1});
    backward(sum(st));
    REQUIRE(s.grad().shape() == Shape{});
    REQUIRE(s.grad().item() == 2.0);
    REQUIRE(t.grad().item() == 3.0);
  }
}

TEST_CASE("binary ops name the op, shapes and dtypes in their errors", "[binary][errors]") {
  Tensor a32 = ones({2, 3}, DType::f32), a64 = ones({2, 3}, DType::f64), b64 = ones({4}, DType::f64);
  REQUIRE_THROWS_AS(add(a32, a64), std::invalid_argument);
  REQUIRE_THROWS_WITH(add(a32, a64), Catch::Contains("add") && Catch::Contains("[2, 3]") &&
                                         Catch::Contains("float32") && Catch::Contains("float64"));
  REQUIRE_THROWS_WITH(mul(a64, b64), Catch::Contains("mul") && Catch::Contains("[2, 3]") &&
                                         Catch::Contains("[4]") && Catch::Contains("broadcast"));
  REQUIRE_THROWS_WITH(pow(ones({2, 1, 3}, DType::f64), ones({5, 2}, DType::f64)),
                      Catch::Contains("pow") && Catch::Contains("[2, 1, 3]") && Catch::Contains("[5, 2]"));
  REQUIRE_THROWS_WITH(maximum(a64, b64), Catch::Contains("maximum") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(lt(a32, a64), Catch::Contains("lt") && Catch::Contains("float32"));
  REQUIRE_THROWS_WITH(sub(a64, Tensor()), Catch::Contains("sub") && Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(a32 + a64, Catch::Contains("add"));
}

TEST_CASE("where names its shapes and dtypes in its errors", "[binary][where][errors]") {
  Tensor a = ones({2, 3}, DType::f64), b = ones({2, 3}, DType::f64);
  REQUIRE_THROWS_WITH(where(ones({2, 3}, DType::f32), a, b),
                      Catch::Contains("where") && Catch::Contains("cond") && Catch::Contains("[2, 3]") &&
                          Catch::Contains("float32") && Catch::Contains("float64"));
  REQUIRE_THROWS_WITH(where(ones({4}, DType::f64), a, b),
                      Catch::Contains("where") && Catch::Contains("[4]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(where(ones({2, 3}, DType::f64), a, ones({2, 3}, DType::f32)),
                      Catch::Contains("where") && Catch::Contains("float32"));
  REQUIRE_THROWS_WITH(where(Tensor(), a, b), Catch::Contains("where") && Catch::Contains("undefined"));
}
