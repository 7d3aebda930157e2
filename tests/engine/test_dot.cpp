// The DOT export names every op with its shape and marks leaves that require grad.
#include "support/testing.hpp"

using namespace symgrad;

TEST_CASE("to_dot lists ops, shapes, leaves and constants", "[dot]") {
  Tensor w = ones({2, 3}).requires_grad_();
  Tensor c = full({3}, 2.0);
  Tensor y = sum(tanh(w * c));
  const std::string dot = to_dot(y, "tiny");
  REQUIRE_THAT(dot, Catch::StartsWith("digraph \"tiny\""));
  REQUIRE_THAT(dot, Catch::Contains("sum\\n[]"));
  REQUIRE_THAT(dot, Catch::Contains("tanh\\n[2, 3]"));
  REQUIRE_THAT(dot, Catch::Contains("mul\\n[2, 3]"));
  REQUIRE_THAT(dot, Catch::Contains("leaf\\n[2, 3] float32\\nrequires_grad"));
  REQUIRE_THAT(dot, Catch::Contains("constant\\n[3] float32"));
  // One statement per edge: w -> mul, c -> mul, mul -> tanh, tanh -> sum, sum -> output.
  std::size_t arrows = 0;
  for (std::size_t p = dot.find("->"); p != std::string::npos; p = dot.find("->", p + 2)) ++arrows;
  REQUIRE(arrows == 5);
}

TEST_CASE("to_dot shares a leaf used twice", "[dot]") {
  Tensor x = ones({2}).requires_grad_();
  const std::string dot = to_dot(sum(x * x));
  std::size_t leaves = 0;
  for (std::size_t p = dot.find("label=\"leaf"); p != std::string::npos; p = dot.find("label=\"leaf", p + 1)) ++leaves;
  REQUIRE(leaves == 1);
}
