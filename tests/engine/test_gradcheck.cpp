// gradcheck must pass correct rules and catch wrong ones, naming where they differ.
#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;

namespace {
// x^3 with a deliberately wrong backward (2x^2 instead of 3x^2), for the negative test.
Tensor wrong_cube(const Tensor& x) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = x * x * x;
  }
  if (auto node = record("wrong_cube", y, {x}))
    node->backward = [x](const Tensor& g, const Node&) { return TensorList{g * (2.0 * x * x)}; };
  return y;
}
// Right first derivative (3x^2) whose own backward is wrong: it uses the saved x as a
// constant, so the second derivative comes out as zero.
Tensor cube_with_constant_backward(const Tensor& x) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = x * x * x;
  }
  if (auto node = record("cube_with_constant_backward", y, {x}))
    node->backward = [x](const Tensor& g, const Node&) {
      Tensor c = x.detach();
      return TensorList{g * (3.0 * c * c)};
    };
  return y;
}
}  // namespace

TEST_CASE("gradcheck passes a correct composite", "[gradcheck]") {
  Tensor a = random_input({3, 4}, 1), b = random_input({4}, 2);
  auto f = [](const TensorList& x) { return tanh(x[0] * x[1]) + exp(x[1]); };
  REQUIRE_GRADCHECK(f, TensorList({a, b}));
  REQUIRE_GRADGRADCHECK(f, TensorList({a, b}));
}

TEST_CASE("gradcheck reports a wrong backward with op, input and element", "[gradcheck]") {
  Tensor x = random_input({2, 3}, 3, 0.5, 1.5);
  auto result = gradcheck([](const TensorList& v) { return wrong_cube(v[0]); }, {x},
                          {.name = "wrong_cube"});
  REQUIRE_FALSE(result.ok);
  REQUIRE_THAT(result.message, Catch::Contains("wrong_cube") && Catch::Contains("input 0[") &&
                                   Catch::Contains("analytic") && Catch::Contains("numeric"));
}

TEST_CASE("gradgradcheck catches a backward that is not differentiable", "[gradcheck]") {
  Tensor x = random_input({4}, 4, 0.5, 1.5);
  auto f = [](const TensorList& v) { return cube_with_constant_backward(v[0]); };
  REQUIRE(gradcheck(f, {x}).ok);
  auto second = gradgradcheck(f, {x});
  REQUIRE_FALSE(second.ok);
  REQUIRE_THAT(second.message, Catch::Contains("gradgradcheck"));
}

TEST_CASE("gradcheck refuses float32 inputs", "[gradcheck]") {
  Tensor x = random_input({2}, 5, -1, 1, DType::f32);
  REQUIRE_THROWS_WITH(gradcheck([](const TensorList& v) { return v[0] * 2.0; }, {x}),
                      Catch::Contains("float64"));
}
