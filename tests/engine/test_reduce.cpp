// Reductions over axis sets: forward against a plain accumulation loop in both dtypes,
// gradcheck and gradgradcheck in float64 over adjacent, non-adjacent and negative
// axes with keepdim both ways, the tie convention of max/min, sum_to, edge shapes
// and error messages.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

enum class Kind { sum, mean, max, min, var };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::sum: return "sum";
    case Kind::mean: return "mean";
    case Kind::max: return "max";
    case Kind::min: return "min";
    case Kind::var: return "var";
  }
  return "?";
}

Tensor apply(Kind k, const Tensor& x, const Axes& axes, bool keepdim, std::int64_t correction = 1) {
  switch (k) {
    case Kind::sum: return sum(x, axes, keepdim);
    case Kind::mean: return mean(x, axes, keepdim);
    case Kind::max: return max(x, axes, keepdim);
    case Kind::min: return min(x, axes, keepdim);
    case Kind::var: return var(x, axes, correction, keepdim);
  }
  return Tensor();
}

struct Reference {
  Shape shape;                // result shape
  std::vector<double> value;  // exact-as-double reduction
  std::vector<double> scale;  // sum of |terms| per output: bounds the rounding error
  std::int64_t count = 0;     // elements per output
};

// Reduces `reduced` (normalised, written by hand in each case) with a plain loop
// over every input element: the output index is the input index with the reduced
// coordinates dropped.
Reference reduce_reference(Kind k, const Tensor& x, const std::vector<std::int64_t>& reduced, bool keepdim,
                           std::int64_t correction = 1) {
  const Shape& in = x.shape();
  const std::vector<double> xs = x.to_vector();
  auto is_reduced = [&](std::size_t d) {
    return std::find(reduced.begin(), reduced.end(), static_cast<std::int64_t>(d)) != reduced.end();
  };
  Reference r;
  Shape kept;  // keepdim shape: the accumulation layout
  for (std::size_t d = 0; d < in.size(); ++d) {
    kept.push_back(is_reduced(d) ? 1 : in[d]);
    if (!is_reduced(d) || keepdim) r.shape.push_back(kept.back());
  }
  const std::int64_t outputs = shape_numel(kept);
  r.count = outputs == 0 ? 0 : shape_numel(in) / outputs;
  auto output_of = [&](std::int64_t flat) {
    std::int64_t out = 0, stride = 1;
    for (std::size_t d = in.size(); d-- > 0;) {
      const std::int64_t coord = flat % in[d];
      flat /= in[d];
      if (!is_reduced(d)) out += coord * stride;
      stride *= kept[d];
    }
    return out;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const double start = k == Kind::max ? -inf : k == Kind::min ? inf : 0.0;
  std::vector<double> acc(outputs, start), abs_acc(outputs, 0.0);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const std::int64_t o = output_of(static_cast<std::int64_t>(i));
    if (k == Kind::max) acc[o] = std::max(acc[o], xs[i]);
    else if (k == Kind::min) acc[o] = std::min(acc[o], xs[i]);
    else acc[o] += xs[i];
    abs_acc[o] += std::abs(xs[i]);
  }
  const double n = static_cast<double>(r.count);
  if (k == Kind::mean)
    for (std::int64_t o = 0; o < outputs; ++o) {
      acc[o] /= n;
      abs_acc[o] /= n;
    }
  if (k == Kind::var) {  // two passes: the mean, then the squared deviations
    std::vector<double> squares(outputs, 0.0);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const std::int64_t o = output_of(static_cast<std::int64_t>(i));
      squares[o] += (xs[i] - acc[o] / n) * (xs[i] - acc[o] / n);
    }
    for (std::int64_t o = 0; o < outputs; ++o) {
      acc[o] = squares[o] / (n - static_cast<double>(correction));
      abs_acc[o] = (abs_acc[o] * abs_acc[o] / n + squares[o]) / (n - static_cast<double>(correction));
    }
  }
  r.value = acc;
  r.scale = abs_acc;
  return r;
}

// max and min are exact. Sums carry at most ~count roundings of the running total
// (the textbook bound for recursive summation; pairwise or SIMD-lane orders do better).
void require_matches(const Tensor& out, const Reference& r, Kind k, DType dt) {
  REQUIRE(out.shape() == r.shape);
  REQUIRE(out.dtype() == dt);
  const std::vector<double> got = out.to_vector();
  const double unit_roundoff = dt == DType::f32 ? 0x1p-24 : 0x1p-53;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double tol = (k == Kind::max || k == Kind::min)
                           ? 0.0
                           : 2.0 * static_cast<double>(r.count + 2) * unit_roundoff * r.scale[i];
    if (std::abs(got[i] - r.value[i]) <= tol) continue;
    std::ostringstream os;
    os.precision(17);
    os << kind_name(k) << " element " << i << ": got " << got[i] << ", expected " << r.value[i]
       << " (tolerance " << tol << ")";
    FAIL(os.str());
  }
}

struct AxesCase {
  Shape shape;
  Axes axes;                           // as passed: may be negative, unsorted, empty
  std::vector<std::int64_t> reduced;   // the same axes, normalised by hand
};

const AxesCase axes_cases[] = {
    {{2, 3, 4, 5}, {}, {0, 1, 2, 3}},       {{2, 3, 4, 5}, {0}, {0}},
    {{2, 3, 4, 5}, {3}, {3}},               {{2, 3, 4, 5}, {-1}, {3}},
    {{2, 3, 4, 5}, {1, 2}, {1, 2}},         {{2, 3, 4, 5}, {0, 2}, {0, 2}},
    {{2, 3, 4, 5}, {1, 3}, {1, 3}},         {{2, 3, 4, 5}, {-3, -1}, {1, 3}},
    {{2, 3, 4, 5}, {2, 0}, {0, 2}},         {{2, 3, 4, 5}, {0, 1, 2, 3}, {0, 1, 2, 3}},
    {{2, 3, 4, 5}, {0, 3}, {0, 3}},         {{2, 3, 4, 5}, {-4, 1, 3}, {0, 1, 3}},
    {{7, 129, 5}, {1}, {1}},                {{7, 129, 5}, {0, 2}, {0, 2}},
    {{1031}, {0}, {0}},                     {{33, 67}, {-1}, {1}},
    {{33, 67}, {0}, {0}},                   {{1, 1}, {}, {0, 1}},
    {{5, 1, 3}, {1}, {1}},
};

}  // namespace

TEST_CASE("reductions match a plain accumulation loop in float32 and float64", "[reduce]") {
  std::uint64_t seed = 3000;
  for (Kind k : {Kind::sum, Kind::mean, Kind::max, Kind::min, Kind::var})
    for (DType dt : {DType::f32, DType::f64})
      for (const AxesCase& c : axes_cases)
        for (bool keepdim : {false, true}) {
          INFO(kind_name(k) << " " << dtype_name(dt) << " " << shape_str(c.shape) << " axes "
                            << shape_str(c.axes) << " keepdim " << keepdim);
          Generator gen(++seed);
          // An offset mean makes var's cancellation visible if it were computed naively.
          Tensor x = uniform(c.shape, 2.0, 4.0, gen, dt);
          if (k == Kind::var && shape_numel(c.shape) / shape_numel(reduced_shape(c.shape, c.reduced, true)) < 2)
            continue;  // one element per output leaves no degrees of freedom (tested below)
          require_matches(apply(k, x, c.axes, keepdim), reduce_reference(k, x, c.reduced, keepdim), k, dt);
        }
}

TEST_CASE("reductions of tensors large enough to be blocked and split over threads", "[reduce][threads]") {
  const int previous = get_num_threads();
  set_num_threads(3);  // odd, so chunks are uneven
  // Long rows (several pairwise-summation blocks), tall columns, and a non-adjacent
  // pair of axes, each above the per-thread grain.
  const AxesCase large[] = {{{3, 50021}, {-1}, {1}},
                            {{1003, 140}, {0}, {0}},
                            {{41, 97, 37}, {0, 2}, {0, 2}},
                            {{150001}, {}, {0}}};
  std::uint64_t seed = 3500;
  for (Kind k : {Kind::sum, Kind::mean, Kind::max, Kind::min, Kind::var})
    for (DType dt : {DType::f32, DType::f64})
      for (const AxesCase& c : large) {
        INFO(kind_name(k) << " " << dtype_name(dt) << " " << shape_str(c.shape) << " axes " << shape_str(c.axes));
        Generator gen(++seed);
        Tensor x = uniform(c.shape, 2.0, 4.0, gen, dt);
        require_matches(apply(k, x, c.axes, false), reduce_reference(k, x, c.reduced, false), k, dt);
      }
  set_num_threads(previous);
}

TEST_CASE("var honours its correction", "[reduce]") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = tensor({1.0, 2.0, 4.0, 7.0}, {2, 2}, dt);
    require_allclose(var(x, {}, 0), {5.25}, 1e-6);     // population: 21 / 4
    require_allclose(var(x, {}, 1), {7.0}, 1e-6);      // Bessel: 21 / 3
    require_allclose(var(x, {1}, 1), {0.5, 4.5}, 1e-6);
    require_allclose(var(x, {0}, 0, true), {2.25, 6.25}, 1e-6);
    REQUIRE(var(x, {0}, 0, true).shape() == Shape{1, 2});
  }
}

TEST_CASE("max and min propagate NaN", "[reduce]") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = tensor({1.0, std::nan(""), 3.0, 4.0, 5.0, 6.0}, {2, 3}, dt);
    const std::vector<double> m = max(x, {1}).to_vector(), n = min(x, {1}).to_vector();
    REQUIRE(std::isnan(m[0]));
    REQUIRE(m[1] == 6.0);
    REQUIRE(std::isnan(n[0]));
    REQUIRE(n[1] == 4.0);
  }
}

// ---- derivatives ------------------------------------------------------------

namespace {
// Distinct values spaced 0.05 apart in shuffled order: no max/min tie within eps.
Tensor distinct_input(const Shape& shape, std::uint64_t seed) {
  Generator gen(seed);
  const std::int64_t n = shape_numel(shape);
  std::vector<double> values(n);
  for (std::int64_t i = 0; i < n; ++i) values[i] = 0.05 * static_cast<double>(i - n / 2);
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(values[i], values[gen.below(static_cast<std::uint64_t>(i + 1))]);
  return from_vector(values, shape).requires_grad_();
}

const Axes grad_axes[] = {{}, {0}, {2}, {-1}, {0, 2}, {-3, -1}, {1, 2}, {0, 1, 2}};
}  // namespace

TEST_CASE("reductions pass gradcheck and gradgradcheck over axis sets", "[reduce][gradcheck]") {
  std::uint64_t seed = 4000;
  for (Kind k : {Kind::sum, Kind::mean, Kind::max, Kind::min, Kind::var})
    for (const Axes& axes : grad_axes)
      for (bool keepdim : {false, true}) {
        INFO(kind_name(k) << " axes " << shape_str(axes) << " keepdim " << keepdim);
        Tensor x = distinct_input({2, 3, 4}, ++seed);
        // exp is monotonic (no new ties) and makes the backward depend on x, so
        // gradgradcheck sees a real second derivative through the reduction's backward.
        auto f = [&](const TensorList& xs) { return apply(k, exp(xs[0]), axes, keepdim); };
        REQUIRE_GRADCHECK(f, TensorList{x});
        REQUIRE_GRADGRADCHECK(f, TensorList{x});
      }
}

TEST_CASE("max and min share the gradient evenly among tied elements", "[reduce]") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    Tensor x = tensor({1.0, 3.0, 3.0, 5.0, 2.0, 2.0}, {2, 3}, dt).requires_grad_();
    backward(sum(max(x, {1})));
    require_allclose(x.grad(), {0.0, 0.5, 0.5, 1.0, 0.0, 0.0});
    x.zero_grad();
    backward(sum(min(x, {1}, true) * tensor({2.0, 10.0}, {2, 1}, dt)));
    require_allclose(x.grad(), {2.0, 0.0, 0.0, 0.0, 5.0, 5.0});
    x.zero_grad();
    Tensor three = tensor({4.0, 4.0, 1.0, 4.0}, {}, dt).requires_grad_();
    backward(max(three));
    require_allclose(three.grad(), {1.0 / 3, 1.0 / 3, 0.0, 1.0 / 3});
  }
}

TEST_CASE("mean and sum gradients spread evenly", "[reduce]") {
  Tensor x = ones({2, 3, 4}, DType::f64).requires_grad_();
  backward(sum(mean(x, {0, 2})));
  REQUIRE(x.grad().shape() == Shape{2, 3, 4});
  for (double v : x.grad().to_vector()) REQUIRE(v == Approx(1.0 / 8));
}

// ---- sum_to -------------------------------------------------------------------

TEST_CASE("sum_to reduces a broadcast shape back to its source", "[reduce][sum_to]") {
  struct Case {
    Shape from, to;
  };
  const Case cases[] = {{{3, 4}, {4}},       {{3, 4}, {3, 1}}, {{2, 3, 4}, {1, 3, 1}}, {{2, 3}, {}},
                        {{2, 3, 4}, {3, 4}}, {{2, 5, 3}, {2, 1, 3}}, {{0, 3}, {3}}, {{0, 3}, {1, 3}}};
  for (DType dt : {DType::f32, DType::f64})
    for (const Case& c : cases) {
      INFO(shape_str(c.from) << " -> " << shape_str(c.to));
      Generator gen(5);
      Tensor x = uniform(c.from, -1.0, 1.0, gen, dt);
      Tensor y = sum_to(x, c.to);
      REQUIRE(y.shape() == c.to);
      // Reference: every element of x lands on its broadcast source element.
      const Shape& from = c.from;
      const std::size_t lead = from.size() - c.to.size();
      std::vector<double> expected(shape_numel(c.to), 0.0);
      const std::vector<double> xs = x.to_vector();
      for (std::int64_t i = 0; i < x.numel(); ++i) {
        std::int64_t flat = i, target = 0, stride = 1;
        for (std::size_t d = from.size(); d-- > 0;) {
          const std::int64_t coord = flat % from[d];
          flat /= from[d];
          if (d < lead) continue;
          const std::int64_t extent = c.to[d - lead];
          if (extent != 1) target += coord * stride;
          stride *= extent;
        }
        expected[target] += xs[i];
      }
      require_allclose(y, expected, dt == DType::f32 ? 1e-5 : 1e-13, 1e-6);
    }
}

TEST_CASE("sum_to to the same shape returns the tensor; gradcheck and gradgradcheck", "[reduce][sum_to][gradcheck]") {
  Tensor same = ones({2, 3}, DType::f64);
  REQUIRE(sum_to(same, {2, 3}).impl() == same.impl());
  Tensor x = random_input({2, 5, 3}, 61);
  for (const Shape& to : {Shape{2, 1, 3}, Shape{3}, Shape{}, Shape{1, 5, 1}}) {
    INFO(shape_str(to));
    auto f = [&](const TensorList& xs) { return sum_to(square(xs[0]), to); };
    REQUIRE_GRADCHECK(f, TensorList{x});
    REQUIRE_GRADGRADCHECK(f, TensorList{x});
  }
}

// ---- shapes and errors ----------------------------------------------------------

TEST_CASE("reductions of zero-size and one-element tensors", "[reduce][edge]") {
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    Tensor empty = zeros({0, 3}, dt).requires_grad_();
    Tensor s0 = sum(empty, {0});
    REQUIRE(s0.shape() == Shape{3});
    require_allclose(s0, {0, 0, 0});  // the sum of nothing is 0
    REQUIRE(sum(empty, {1}).shape() == Shape{0});
    REQUIRE(sum(empty).item() == 0.0);
    REQUIRE(max(empty, {1}).shape() == Shape{0});    // nothing to reduce per output: fine
    REQUIRE(var(empty, {1}).shape() == Shape{0});
    backward(sum(s0));
    REQUIRE(empty.grad().shape() == Shape{0, 3});

    Tensor one = tensor({2.5}, {1}, dt);
    REQUIRE(sum(one).shape() == Shape{});
    REQUIRE(sum(one).item() == 2.5);
    REQUIRE(max(one).item() == 2.5);
    REQUIRE(min(one, {0}, true).shape() == Shape{1});
    REQUIRE(mean(one).item() == 2.5);
    REQUIRE(var(one, {}, 0).item() == 0.0);

    Tensor scalar_x = tensor({1.5}, {}, dt).requires_grad_();  // rank 0: "all axes" is none
    REQUIRE(sum(scalar_x).item() == 1.5);
    REQUIRE(max(scalar_x).item() == 1.5);
    backward(sum(scalar_x) * 2.0);
    REQUIRE(scalar_x.grad().item() == 2.0);
  }
}

TEST_CASE("reductions name the op, the axis and the shape in their errors", "[reduce][errors]") {
  Tensor x = ones({2, 3, 4}, DType::f64);
  REQUIRE_THROWS_AS(sum(x, {3}), std::invalid_argument);
  REQUIRE_THROWS_WITH(sum(x, {3}), Catch::Contains("sum") && Catch::Contains("axis 3") &&
                                       Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(mean(x, {-4}), Catch::Contains("mean") && Catch::Contains("-4") &&
                                         Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(max(x, {1, -2}), Catch::Contains("max") && Catch::Contains("repeated") &&
                                           Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(var(x, {0, 5}), Catch::Contains("var") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(max(zeros({0, 3}), {0}), Catch::Contains("max") && Catch::Contains("[0, 3]"));
  REQUIRE_THROWS_WITH(min(zeros({0, 3})), Catch::Contains("min") && Catch::Contains("[0, 3]"));
  REQUIRE_THROWS_WITH(mean(zeros({0, 3}), {0}), Catch::Contains("mean") && Catch::Contains("[0, 3]"));
  REQUIRE_THROWS_WITH(var(ones({1, 3}), {0}), Catch::Contains("var") && Catch::Contains("[1, 3]") &&
                                                  Catch::Contains("correction 1"));
  REQUIRE_THROWS_WITH(var(ones({4}), {}, 4), Catch::Contains("var") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(sum(Tensor()), Catch::Contains("sum") && Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(sum_to(ones({3, 4}), {5}), Catch::Contains("sum_to") && Catch::Contains("[3, 4]") &&
                                                      Catch::Contains("[5]"));
  REQUIRE_THROWS_WITH(sum_to(ones({4}), {3, 4}), Catch::Contains("sum_to") && Catch::Contains("[3, 4]"));
}
