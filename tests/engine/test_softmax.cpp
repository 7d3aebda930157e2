// softmax, log_softmax and logsumexp: forward against a plain loop in both dtypes,
// numerical stability, agreement with their compositions from primitive ops
// (values, gradients, second derivatives), gradcheck and gradgradcheck in float64,
// edge shapes and error messages.
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

enum class Kind { softmax, log_softmax, logsumexp };
const char* kind_name(Kind k) {
  return k == Kind::softmax ? "softmax" : k == Kind::log_softmax ? "log_softmax" : "logsumexp";
}

// The plain loop: x seen as [outer, n, inner] around `axis` (normalised by the
// caller), max subtracted first, all in double.
std::vector<double> reference(Kind k, const Tensor& x, std::int64_t axis) {
  const Shape& s = x.shape();
  std::int64_t outer = 1, n = s[axis], inner = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= s[d];
  for (std::size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
  const std::vector<double> xs = x.to_vector();
  std::vector<double> out(k == Kind::logsumexp ? outer * inner : xs.size());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      auto at = [&](std::int64_t j) { return xs[(o * n + j) * inner + i]; };
      double m = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < n; ++j) m = std::max(m, at(j));
      double total = 0;
      for (std::int64_t j = 0; j < n; ++j) total += std::exp(at(j) - m);
      if (k == Kind::logsumexp) {
        out[o * inner + i] = m + std::log(total);
        continue;
      }
      for (std::int64_t j = 0; j < n; ++j)
        out[(o * n + j) * inner + i] = k == Kind::softmax ? std::exp(at(j) - m) / total : at(j) - m - std::log(total);
    }
  return out;
}

Tensor apply(Kind k, const Tensor& x, std::int64_t axis, bool keepdim = false) {
  if (k == Kind::softmax) return softmax(x, axis);
  if (k == Kind::log_softmax) return log_softmax(x, axis);
  return logsumexp(x, axis, keepdim);
}

struct AxisCase {
  Shape shape;
  std::int64_t axis;       // as passed
  std::int64_t normalised;  // written by hand
};

// Contiguous (last axis), strided (inner > 1), negative axes, and sizes that give a
// SIMD kernel a vector body, a tail and more than one thread chunk.
const AxisCase axis_cases[] = {
    {{3, 4, 5}, 0, 0},   {{3, 4, 5}, 1, 1},    {{3, 4, 5}, -1, 2}, {{3, 4, 5}, -3, 0},
    {{7, 1031}, -1, 1},  {{129, 3, 33}, 0, 0}, {{129, 3, 33}, 1, 1}, {{1, 1}, 1, 1},
    {{17}, 0, 0},
    // Above the per-thread grain: split over threads (the test sets an odd count).
    {{64, 4099}, -1, 1}, {{301, 3, 293}, 1, 1}, {{301, 3, 293}, 0, 0},
};

}  // namespace

TEST_CASE("softmax family matches a plain loop in float32 and float64", "[softmax]") {
  const int previous = get_num_threads();
  set_num_threads(3);
  std::uint64_t seed = 6000;
  for (Kind k : {Kind::softmax, Kind::log_softmax, Kind::logsumexp})
    for (DType dt : {DType::f32, DType::f64})
      for (const AxisCase& c : axis_cases)
        for (bool keepdim : {false, true}) {
          if (k != Kind::logsumexp && keepdim) continue;
          INFO(kind_name(k) << " " << dtype_name(dt) << " " << shape_str(c.shape) << " axis " << c.axis
                            << " keepdim " << keepdim);
          Generator gen(++seed);
          Tensor x = uniform(c.shape, -6.0, 6.0, gen, dt);
          Tensor y = apply(k, x, c.axis, keepdim);
          Shape expected_shape = c.shape;
          if (k == Kind::logsumexp) {
            if (keepdim) expected_shape[c.normalised] = 1;
            else expected_shape.erase(expected_shape.begin() + c.normalised);
          }
          REQUIRE(y.shape() == expected_shape);
          REQUIRE(y.dtype() == dt);
          // float32 rounds x - max (|x - max| <= 12) before the exp: a few 1e-7 relative.
          // log_softmax and logsumexp add terms of size |x|, so they are accurate to that scale.
          const double rtol = dt == DType::f32 ? 4e-6 : 1e-13;
          const double abs_floor = k == Kind::softmax ? 0.0 : 10.0;
          const std::vector<double> expected = reference(k, x, c.normalised), got = y.to_vector();
          for (std::size_t i = 0; i < got.size(); ++i)
            if (!(std::abs(got[i] - expected[i]) <= rtol * (std::abs(expected[i]) + abs_floor))) {
              std::ostringstream os;
              os.precision(17);
              os << "element " << i << ": got " << got[i] << ", expected " << expected[i];
              FAIL(os.str());
            }
        }
  set_num_threads(previous);
}

TEST_CASE("softmax family is stable for large and infinite inputs", "[softmax]") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    const double e1 = std::exp(1.0), e2 = std::exp(2.0), z = 1 + e1 + e2;
    require_allclose(softmax(tensor({1000.0, 1001.0, 1002.0}, {}, dt)), {1 / z, e1 / z, e2 / z}, 1e-6);
    require_allclose(softmax(tensor({-1000.0, -999.0, -998.0}, {}, dt)), {1 / z, e1 / z, e2 / z}, 1e-6);
    require_allclose(log_softmax(tensor({0.0, -1000.0}, {}, dt)), {0.0, -1000.0}, 1e-6);
    require_allclose(logsumexp(tensor({1000.0, 1000.0}, {}, dt)), {1000.0 + std::log(2.0)}, 1e-6);
    require_allclose(logsumexp(tensor({-1000.0, -1000.0}, {}, dt)), {-1000.0 + std::log(2.0)}, 1e-6);
    // -inf is how attention masks out a position: it gets probability 0.
    require_allclose(softmax(tensor({-inf, 0.0, 0.0}, {}, dt)), {0.0, 0.5, 0.5});
    require_allclose(log_softmax(tensor({-inf, 0.0, 0.0}, {}, dt)), {-inf, -std::log(2.0), -std::log(2.0)}, 1e-6);
    require_allclose(logsumexp(tensor({-inf, 0.0}, {}, dt)), {0.0});
    require_allclose(logsumexp(tensor({-inf, -inf}, {}, dt)), {-inf});
  }
}

// ---- against the composition from primitives ----------------------------------

namespace {
Tensor composed(Kind k, const Tensor& x, std::int64_t axis, bool keepdim = false) {
  Tensor shifted = x - max(x, {axis}, true).detach();  // the max shift cancels exactly in every formula
  Tensor log_total = log(sum(exp(shifted), {axis}, true));
  if (k == Kind::softmax) return exp(shifted - log_total);
  if (k == Kind::log_softmax) return shifted - log_total;
  Tensor lse = log_total + max(x, {axis}, true).detach();
  return keepdim ? lse : sum(lse, {axis});  // sum over a size-1 axis drops it
}
}  // namespace

TEST_CASE("softmax family agrees with its composition from primitive ops", "[softmax]") {
  for (Kind k : {Kind::softmax, Kind::log_softmax, Kind::logsumexp})
    for (std::int64_t axis : {0, 1, 2}) {
      INFO(kind_name(k) << " axis " << axis);
      Tensor x = random_input({2, 3, 4}, 70 + static_cast<std::uint64_t>(axis), -2.0, 2.0);
      Tensor w = random_input(k == Kind::logsumexp ? reduced_shape({2, 3, 4}, {axis}, false) : Shape{2, 3, 4}, 80)
                     .detach();
      Tensor fused = apply(k, x, axis), reference_value = composed(k, x, axis);
      require_allclose(fused, reference_value, 1e-12, 1e-14);
      // First and second derivatives of a weighted sum.
      Tensor g_fused = grad({sum(fused * w)}, {x}, {}, {.create_graph = true})[0];
      Tensor g_composed = grad({sum(reference_value * w)}, {x}, {}, {.create_graph = true})[0];
      require_allclose(g_fused, g_composed, 1e-12, 1e-14);
      Tensor gg_fused = grad({sum(g_fused * g_fused)}, {x})[0];
      Tensor gg_composed = grad({sum(g_composed * g_composed)}, {x})[0];
      require_allclose(gg_fused, gg_composed, 1e-11, 1e-13);
    }
}

TEST_CASE("softmax family passes gradcheck and gradgradcheck", "[softmax][gradcheck]") {
  std::uint64_t seed = 7000;
  for (Kind k : {Kind::softmax, Kind::log_softmax, Kind::logsumexp})
    for (std::int64_t axis : {0, 1, -1})
      for (bool keepdim : {false, true}) {
        if (k != Kind::logsumexp && keepdim) continue;
        INFO(kind_name(k) << " axis " << axis << " keepdim " << keepdim);
        Tensor x = random_input({2, 3, 4}, ++seed, -2.0, 2.0);
        auto f = [&](const TensorList& xs) { return apply(k, xs[0], axis, keepdim); };
        REQUIRE_GRADCHECK(f, TensorList{x});
        REQUIRE_GRADGRADCHECK(f, TensorList{x});
      }
}

TEST_CASE("softmax rows sum to 1, so the gradient of their sum is 0", "[softmax]") {
  Tensor x = random_input({3, 5}, 9, -3.0, 3.0);
  Tensor y = softmax(x, 1);
  require_allclose(sum(y, {1}), {1.0, 1.0, 1.0}, 1e-14);
  backward(sum(y));
  for (double v : x.grad().to_vector()) REQUIRE(std::abs(v) < 1e-15);
}

TEST_CASE("the gradient of logsumexp is the softmax", "[softmax]") {
  Tensor x = random_input({2, 5}, 10, -3.0, 3.0);
  backward(sum(logsumexp(x, 1)));
  require_allclose(x.grad(), softmax(x.detach(), 1), 1e-14, 1e-16);
}

// ---- shapes and errors ----------------------------------------------------------

TEST_CASE("softmax family on zero-size and one-element tensors", "[softmax][edge]") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    Tensor rows_empty = zeros({0, 3}, dt).requires_grad_();
    REQUIRE(softmax(rows_empty).shape() == Shape{0, 3});
    REQUIRE(log_softmax(rows_empty, 0).shape() == Shape{0, 3});
    REQUIRE(logsumexp(rows_empty, -1).shape() == Shape{0});
    backward(sum(softmax(rows_empty) * 2.0));
    REQUIRE(rows_empty.grad().shape() == Shape{0, 3});

    // Reducing an empty axis: the sum of no exponentials is 0, and log 0 = -inf.
    Tensor cols_empty = zeros({3, 0}, dt);
    REQUIRE(softmax(cols_empty).shape() == Shape{3, 0});
    require_allclose(logsumexp(cols_empty), {-inf, -inf, -inf});
    require_allclose(logsumexp(rows_empty.detach(), 0, true), {-inf, -inf, -inf});
    REQUIRE(logsumexp(rows_empty.detach(), 0, true).shape() == Shape{1, 3});

    Tensor one = tensor({0.7}, {1}, dt).requires_grad_();
    require_allclose(softmax(one), {1.0});
    require_allclose(log_softmax(one), {0.0});
    Tensor lse = logsumexp(one);
    REQUIRE(lse.shape() == Shape{});
    REQUIRE(lse.item() == Approx(0.7));
    backward(lse);
    require_allclose(one.grad(), {1.0});
  }
}

TEST_CASE("softmax family names the op, the axis and the shape in its errors", "[softmax][errors]") {
  Tensor x = ones({2, 3}, DType::f64);
  REQUIRE_THROWS_AS(softmax(x, 2), std::invalid_argument);
  REQUIRE_THROWS_WITH(softmax(x, 2), Catch::Contains("softmax") && Catch::Contains("axis 2") &&
                                         Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(log_softmax(x, -3), Catch::Contains("log_softmax") && Catch::Contains("axis -3") &&
                                              Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(logsumexp(x, 5, true), Catch::Contains("logsumexp") && Catch::Contains("[2, 3]"));
  // A rank-0 tensor has no axis to normalise over.
  REQUIRE_THROWS_WITH(softmax(scalar(1.0)), Catch::Contains("softmax") && Catch::Contains("[]"));
  REQUIRE_THROWS_WITH(logsumexp(Tensor()), Catch::Contains("logsumexp") && Catch::Contains("undefined"));
}
