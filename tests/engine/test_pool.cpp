// max_pool2d and avg_pool2d: forward against plain loops, the argmax convention (ties go
// to the first element, NaN propagates), gradcheck and gradgradcheck in float64, both
// dtypes, empty and one-element edges, and error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

Pool2dOptions square_window(std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  return {.kernel_h = kernel, .kernel_w = kernel, .stride_h = stride, .stride_w = stride, .padding_h = padding,
          .padding_w = padding};
}

struct PoolCase {
  const char* name;
  Shape x;
  Pool2dOptions opts;
};

std::vector<PoolCase> pool_cases() {
  return {
      {"2x2 default stride", {2, 3, 6, 8}, {}},
      {"3x3 stride 1 pad 1", {1, 2, 5, 5}, square_window(3, 1, 1)},
      {"3x3 stride 2 pad 1, odd size", {2, 2, 7, 7}, square_window(3, 2, 1)},
      {"non-square", {1, 3, 6, 7},
       {.kernel_h = 2, .kernel_w = 3, .stride_h = 1, .stride_w = 2, .padding_h = 1, .padding_w = 1}},
      {"window equals the input", {2, 2, 3, 4}, {.kernel_h = 3, .kernel_w = 4}},
      {"one element", {1, 1, 1, 1}, {.kernel_h = 1, .kernel_w = 1}},
  };
}

// out[n, c, i, j] = reduce over the window's positions inside x (padding is -inf for max
// and 0 for the average, which always divides by kH * kW).
std::vector<double> pool_naive(const Tensor& x, const Pool2dOptions& o, bool is_max, Shape* out_shape) {
  const Shape s = x.shape();
  const std::int64_t sh = o.stride_h ? o.stride_h : o.kernel_h, sw = o.stride_w ? o.stride_w : o.kernel_w;
  const std::int64_t OH = (s[2] + 2 * o.padding_h - o.kernel_h) / sh + 1;
  const std::int64_t OW = (s[3] + 2 * o.padding_w - o.kernel_w) / sw + 1;
  *out_shape = {s[0], s[1], OH, OW};
  const std::vector<double> xv = x.to_vector();
  std::vector<double> out;
  for (std::int64_t plane = 0; plane < s[0] * s[1]; ++plane)
    for (std::int64_t i = 0; i < OH; ++i)
      for (std::int64_t j = 0; j < OW; ++j) {
        double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
        for (std::int64_t p = 0; p < o.kernel_h; ++p)
          for (std::int64_t q = 0; q < o.kernel_w; ++q) {
            const std::int64_t r = i * sh - o.padding_h + p, c = j * sw - o.padding_w + q;
            if (r < 0 || r >= s[2] || c < 0 || c >= s[3]) continue;
            const double v = xv[(plane * s[2] + r) * s[3] + c];
            acc = is_max ? std::max(acc, v) : acc + v;
          }
        out.push_back(is_max ? acc : acc / static_cast<double>(o.kernel_h * o.kernel_w));
      }
  return out;
}

}  // namespace

TEST_CASE("max_pool2d and avg_pool2d match plain loops in both dtypes", "[pool]") {
  std::uint64_t seed = 1;
  for (const PoolCase& c : pool_cases())
    for (DType dt : {DType::f64, DType::f32})
      for (bool is_max : {true, false}) {
        INFO(c.name << (is_max ? " max" : " avg") << " " << dtype_name(dt));
        const Tensor x = random_input(c.x, seed++, -1, 1, dt).detach();
        Shape shape;
        const std::vector<double> expected = pool_naive(x, c.opts, is_max, &shape);
        const Tensor y = is_max ? max_pool2d(x, c.opts) : avg_pool2d(x, c.opts);
        REQUIRE(y.shape() == shape);
        REQUIRE(y.dtype() == dt);
        require_allclose(y, expected, dt == DType::f32 ? 1e-6 : 1e-14, 1e-7);
      }
}

TEST_CASE("pooling passes gradcheck and gradgradcheck", "[pool][gradcheck]") {
  std::uint64_t seed = 100;
  for (const PoolCase& c : pool_cases()) {
    INFO(c.name);
    // Distinct random values: no ties, so max is differentiable at the sample point.
    const Tensor x = random_input(c.x, seed++);
    auto max_fn = [&c](const TensorList& xs) { return max_pool2d(xs[0], c.opts); };
    auto avg_fn = [&c](const TensorList& xs) { return avg_pool2d(xs[0], c.opts); };
    REQUIRE_GRADCHECK(max_fn, TensorList{x});
    REQUIRE_GRADGRADCHECK(max_fn, TensorList{x});
    REQUIRE_GRADCHECK(avg_fn, TensorList{x});
    REQUIRE_GRADGRADCHECK(avg_fn, TensorList{x});
    // A nonlinearity after the pool makes the second derivative non-zero.
    auto max_sq = [&c](const TensorList& xs) { return square(max_pool2d(xs[0], c.opts)); };
    REQUIRE_GRADGRADCHECK(max_sq, TensorList{x});
  }
}

TEST_CASE("max_pool2d sends the gradient to the first maximum of each window", "[pool]") {
  // All equal: every window's argmax is its top-left element. Overlapping windows
  // (3x3, stride 1, padding 1) accumulate at the shared winners.
  const Tensor x = ones({1, 1, 3, 3}, DType::f64).requires_grad_();
  backward(sum(max_pool2d(x, square_window(3, 1, 1))));
  // Window (i, j) starts at (i - 1, j - 1); its first in-bounds element is (max(i-1,0), max(j-1,0)).
  require_allclose(x.grad(), {4, 2, 0, 2, 1, 0, 0, 0, 0});

  const Tensor y = tensor({1, 5, 5, 2}, {1, 1, 2, 2}, DType::f64).requires_grad_();
  backward(sum(max_pool2d(y)));
  require_allclose(y.grad(), {0, 1, 0, 0});
}

TEST_CASE("max_pool2d propagates NaN", "[pool]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = tensor({1, nan, 3, 2}, {1, 1, 2, 2}, DType::f64).requires_grad_();
  const Tensor y = max_pool2d(x);
  REQUIRE(std::isnan(y.item()));
  backward(y);
  require_allclose(x.grad(), {0, 1, 0, 0});
}

TEST_CASE("avg_pool2d counts padding as zeros", "[pool]") {
  const Tensor x = ones({1, 1, 2, 2}, DType::f64);
  const Tensor y = avg_pool2d(x, square_window(2, 1, 1));
  require_allclose(y, {0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25});
}

TEST_CASE("pooling an empty batch gives empty outputs", "[pool]") {
  const Tensor x = random_input({0, 3, 4, 4}, 200);
  REQUIRE(max_pool2d(x).shape() == Shape{0, 3, 2, 2});
  REQUIRE(avg_pool2d(x).shape() == Shape{0, 3, 2, 2});
  backward(sum(max_pool2d(x)) + sum(avg_pool2d(x)));
  REQUIRE(x.grad().shape() == Shape{0, 3, 4, 4});
}

TEST_CASE("pooling errors name the op and the shapes", "[pool][errors]") {
  const Tensor x = zeros({2, 3, 5, 5});
  for (bool is_max : {true, false}) {
    const char* op = is_max ? "max_pool2d" : "avg_pool2d";
    auto pool = [is_max](const Tensor& t, const Pool2dOptions& o) {
      return is_max ? max_pool2d(t, o) : avg_pool2d(t, o);
    };
    REQUIRE_THROWS_WITH(pool(zeros({3, 5, 5}), {}), Catch::Contains(op) && Catch::Contains("[3, 5, 5]"));
    REQUIRE_THROWS_WITH(pool(x, {.kernel_h = 0}), Catch::Contains(op) && Catch::Contains("kernel 0x2"));
    REQUIRE_THROWS_WITH(pool(x, {.stride_h = -1}), Catch::Contains(op) && Catch::Contains("stride -1x0"));
    REQUIRE_THROWS_WITH(pool(x, {.kernel_h = 3, .kernel_w = 3, .padding_h = 2}),
                        Catch::Contains(op) && Catch::Contains("padding 2x0") && Catch::Contains("half"));
    REQUIRE_THROWS_WITH(pool(x, {.kernel_h = 6, .kernel_w = 2}),
                        Catch::Contains(op) && Catch::Contains("larger than input [2, 3, 5, 5]"));
    REQUIRE_THROWS_WITH(pool(zeros({1, 1, 0, 4}), {.kernel_h = 2, .kernel_w = 2, .padding_h = 1}),
                        Catch::Contains(op) && Catch::Contains("[1, 1, 0, 4]"));
    REQUIRE_THROWS_WITH(pool(Tensor(), {}), Catch::Contains(op) && Catch::Contains("undefined"));
  }
}

TEST_CASE("max_pool2d without padding (the select path) keeps the argmax rules", "[pool]") {
  // Windows with a tie, a NaN after the maximum, a NaN first and two NaNs: the path
  // for unpadded windows must pick what the general rule picks. The gradient of
  // sum(y) counts how often each input was its window's argmax.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> values{2, 7, 7, 1,  3, nan, nan, 0,   //
                                   7, 1, 9, 9,  nan, 4, 5, nan};
  for (const std::int64_t stride : {2, 1}) {
    INFO("2x2 windows, stride " << stride);
    const Tensor x = from_vector(values, {1, 1, 4, 4}, DType::f64).requires_grad_();
    const Tensor y = max_pool2d(x, square_window(2, stride, 0));
    backward(sum(y));
    const std::int64_t out = y.size(2);
    const std::vector<double> got = y.to_vector();
    std::vector<double> expected_grad(16, 0.0);
    for (std::int64_t i = 0; i < out; ++i)
      for (std::int64_t j = 0; j < out; ++j) {
        std::int64_t best = -1;
        for (std::int64_t p = 0; p < 2; ++p)
          for (std::int64_t q = 0; q < 2; ++q) {
            const std::int64_t at = (i * stride + p) * 4 + j * stride + q;
            if (best < 0 || values[at] > values[best] ||
                (std::isnan(values[at]) && !std::isnan(values[best])))
              best = at;
          }
        const double v = got[i * out + j];
        CHECK((std::isnan(values[best]) ? std::isnan(v) : v == values[best]));
        expected_grad[best] += 1.0;
      }
    require_allclose(x.grad(), expected_grad);
  }
}
