// The autograd engine itself: accumulation, grad(), create_graph, freeing, deep graphs.
#include <catch2/catch.hpp>

#include "engine/engine.hpp"

using namespace symgrad;

TEST_CASE("backward accumulates into leaves through a shared subexpression", "[autograd]") {
  Tensor x = tensor({2.0}, {}, DType::f64).requires_grad_();
  Tensor y = x * x + x;  // dy/dx = 2x + 1 = 5
  backward(y);
  REQUIRE(x.grad().item() == Approx(5.0));
  backward(x * 3.0);     // accumulates: 5 + 3
  REQUIRE(x.grad().item() == Approx(8.0));
}

TEST_CASE("grad with create_graph gives second and third derivatives", "[autograd]") {
  Tensor x = tensor({0.7}, {}, DType::f64).requires_grad_();
  Tensor y = exp(x) * sin(x);
  auto g1 = grad({y}, {x}, {}, {.create_graph = true})[0];
  auto g2 = grad({g1}, {x}, {}, {.create_graph = true})[0];
  auto g3 = grad({g2}, {x})[0];
  const double v = 0.7, e = std::exp(v);
  REQUIRE(g1.item() == Approx(e * (std::sin(v) + std::cos(v))));
  REQUIRE(g2.item() == Approx(2 * e * std::cos(v)));
  REQUIRE(g3.item() == Approx(2 * e * (std::cos(v) - std::sin(v))));
}

TEST_CASE("broadcast gradients are summed back to the input shape", "[autograd]") {
  Tensor a = ones({3, 1}, DType::f64).requires_grad_();
  Tensor b = ones({4}, DType::f64).requires_grad_();
  backward(sum(a * b));
  REQUIRE(a.grad().shape() == Shape{3, 1});
  REQUIRE(b.grad().shape() == Shape{4});
  for (double v : a.grad().to_vector()) REQUIRE(v == 4.0);
  for (double v : b.grad().to_vector()) REQUIRE(v == 3.0);
}

TEST_CASE("a freed graph refuses a second backward with a clear message", "[autograd]") {
  Tensor x = tensor({1.5}, {}, DType::f64).requires_grad_();
  Tensor y = exp(x) * x;
  backward(y);
  REQUIRE_THROWS_WITH(backward(y), Catch::Contains("freed") && Catch::Contains("retain_graph"));
  Tensor z = exp(x) * x;
  backward(z, Tensor(), {.retain_graph = true});
  REQUIRE_NOTHROW(backward(z));
}

TEST_CASE("a chain of a million ops runs backward without recursion", "[autograd]") {
  Tensor x = tensor({1.0}, {}, DType::f64).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 1000000; ++i) y = y + 0.0;
  backward(y);
  REQUIRE(x.grad().item() == 1.0);
}

TEST_CASE("grad reports unused inputs unless allow_unused", "[autograd]") {
  Tensor x = tensor({1.0}, {}, DType::f64).requires_grad_();
  Tensor z = tensor({1.0}, {}, DType::f64).requires_grad_();
  Tensor y = x * 2.0;
  REQUIRE_THROWS_WITH(grad({y}, {x, z}, {}, {.retain_graph = true}), Catch::Contains("not used"));
  auto gs = grad({y}, {x, z}, {}, {.allow_unused = true});
  REQUIRE(gs[0].item() == 2.0);
  REQUIRE_FALSE(gs[1].defined());
}

TEST_CASE("no-grad scope records nothing", "[autograd]") {
  Tensor x = tensor({1.0}).requires_grad_();
  NoGradGuard guard;
  Tensor y = x * 2.0;
  REQUIRE_FALSE(y.requires_grad());
  REQUIRE(y.is_leaf());
}

namespace {
// cube with a backward computed outside the graph, as a fused kernel would be.
Tensor fused_cube(const Tensor& x) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = x * x * x;
  }
  if (auto node = record("fused_cube", y, {x})) {
    node->once_differentiable = true;
    node->backward = [x](const Tensor& g, const Node&) {
      NoGradGuard no_grad;  // the "kernel": plain numbers, no graph
      return TensorList{g * (3.0 * x * x)};
    };
  }
  return y;
}
}  // namespace

TEST_CASE("a second derivative through a once-differentiable op throws a clear error", "[autograd]") {
  Tensor x = tensor({2.0}, {}, DType::f64).requires_grad_();
  // The first derivative is fine, with or without create_graph.
  REQUIRE(grad({fused_cube(x)}, {x})[0].item() == Approx(12.0));
  Tensor g = grad({fused_cube(x)}, {x}, {}, {.create_graph = true})[0];
  REQUIRE(g.item() == Approx(12.0));
  REQUIRE(g.requires_grad());
  REQUIRE_THROWS_WITH(grad({g}, {x}), Catch::Contains("fused_cube") && Catch::Contains("second derivative"));
}

TEST_CASE("grad returns the same gradient for an input passed twice", "[autograd]") {
  Tensor x = tensor({3.0}, {}, DType::f64).requires_grad_();
  Tensor h = x * 2.0;  // a non-leaf input, also passed twice
  Tensor y = x * h;    // 2 x^2: dy/dx = 4x = 12 (both paths, as in PyTorch); dy/dh = x = 3
  auto gs = grad({y}, {x, h, x, h});
  REQUIRE(gs[0].item() == Approx(12.0));
  REQUIRE(gs[1].item() == Approx(3.0));
  REQUIRE(gs[2].item() == gs[0].item());
  REQUIRE(gs[3].item() == gs[1].item());
}

TEST_CASE("grad asks a node only for the input gradients that reach a requested input",
          "[autograd]") {
  // A probe op y = a * b whose backward records which inputs it was asked for.
  std::vector<std::vector<bool>> asked;
  auto probe = [&asked](const Tensor& a, const Tensor& b) {
    Tensor out = mul(a.detach(), b.detach());
    if (auto node = record("probe", out, {a, b}))
      node->backward = [a, b, &asked](const Tensor& g, const Node& n) {
        asked.push_back({n.needs_grad(0), n.needs_grad(1)});
        return TensorList{n.needs_grad(0) ? mul(g, b) : Tensor(),
                          n.needs_grad(1) ? mul(g, a) : Tensor()};
      };
    return out;
  };
  Tensor x = full({3}, 2.0, DType::f64).requires_grad_();
  Tensor w = full({3}, 5.0, DType::f64).requires_grad_();
  Tensor y = sum(probe(x, w));

  const TensorList gx = grad({y}, {x}, {}, {.retain_graph = true});
  REQUIRE(asked.size() == 1);
  CHECK(asked[0] == std::vector<bool>{true, false});  // w's gradient goes nowhere
  CHECK(gx[0].to_vector() == std::vector<double>{5, 5, 5});

  backward(y);  // backward() fills every leaf's .grad: both are asked for
  REQUIRE(asked.size() == 2);
  CHECK(asked[1] == std::vector<bool>{true, true});
  CHECK(w.grad().to_vector() == std::vector<double>{2, 2, 2});
}
