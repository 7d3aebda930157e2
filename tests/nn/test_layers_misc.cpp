// The parameter-free layers: activations and pools against PyTorch 1.13 (forward and
// input gradients, tests/data/nn_layer_reference.json from
// tools/make_nn_layer_reference.py), gradcheck and gradgradcheck of each, Dropout's
// statistics and seeding, Flatten, and the input checks.
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <stdexcept>

#include "nn/layers/activation.hpp"
#include "nn/layers/dropout.hpp"
#include "nn/layers/flatten.hpp"
#include "nn/layers/pool.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using json = nlohmann::json;

namespace {

const json& reference_cases() {
  return testing::reference_data("nn_layer_reference.json", "tools/make_nn_layer_reference.py").at("cases");
}

// The script's module names, built from its "args".
const std::map<std::string, std::function<std::shared_ptr<Module>(const json&)>>& layer_makers() {
  static const std::map<std::string, std::function<std::shared_ptr<Module>(const json&)>> makers{
      {"ReLU", [](const json&) { return std::make_shared<ReLU>(); }},
      {"GELU", [](const json&) { return std::make_shared<GELU>(); }},
      {"Tanh", [](const json&) { return std::make_shared<Tanh>(); }},
      {"Sigmoid", [](const json&) { return std::make_shared<Sigmoid>(); }},
      {"SiLU", [](const json&) { return std::make_shared<SiLU>(); }},
      {"Softplus", [](const json& a) { return std::make_shared<Softplus>(a.at("beta"), a.at("threshold")); }},
      {"MaxPool2d",
       [](const json& a) { return std::make_shared<MaxPool2d>(a.at("kernel"), a.at("stride"), a.at("padding")); }},
      {"AvgPool2d",
       [](const json& a) { return std::make_shared<AvgPool2d>(a.at("kernel"), a.at("stride"), a.at("padding")); }},
      {"GlobalAvgPool2d", [](const json&) { return std::make_shared<GlobalAvgPool2d>(); }},
  };
  return makers;
}

int check_reference_cases(DType dtype, double rtol, double atol) {
  int checked = 0;
  for (const json& c : reference_cases()) {
    const auto maker = layer_makers().find(c.at("module"));
    if (maker == layer_makers().end()) continue;  // Linear and Conv2d: test_linear_conv.cpp
    DYNAMIC_SECTION(c.at("id").get<std::string>() << " " << dtype_name(dtype)) {
      std::shared_ptr<Module> layer = maker->second(c.at("args"));
      Tensor x = testing::tensor_from_json(c.at("input"), dtype).requires_grad_();
      const Tensor y = layer->forward(x);
      testing::require_allclose(y, testing::tensor_from_json(c.at("output"), DType::f64), rtol, atol);
      backward(sum(y * testing::tensor_from_json(c.at("weighting"), dtype)));
      testing::require_allclose(x.grad(), testing::tensor_from_json(c.at("grads").at("input"), DType::f64), rtol, atol);
    }
    ++checked;
  }
  return checked;
}

void require_gradchecks(Module& layer, const Tensor& x) {
  auto f = [&layer](const TensorList& xs) { return layer.forward(xs[0]); };
  REQUIRE_GRADCHECK(f, TensorList{x});
  REQUIRE_GRADGRADCHECK(f, TensorList{x});
}

}  // namespace

TEST_CASE("activations and pools match PyTorch in float64") {
  CHECK(check_reference_cases(DType::f64, 1e-12, 1e-13) >= 14);
}

TEST_CASE("activations and pools match PyTorch in float32") {
  CHECK(check_reference_cases(DType::f32, 1e-5, 1e-5) >= 14);
}

TEST_CASE("activation gradcheck and gradgradcheck") {
  const Tensor x = testing::random_input({2, 3, 2}, 31, -3.0, 3.0);
  SECTION("ReLU") {
    ReLU layer;
    require_gradchecks(layer, x);
  }
  SECTION("GELU") {
    GELU layer;
    require_gradchecks(layer, x);
  }
  SECTION("Tanh") {
    Tanh layer;
    require_gradchecks(layer, x);
  }
  SECTION("Sigmoid") {
    Sigmoid layer;
    require_gradchecks(layer, x);
  }
  SECTION("SiLU") {
    SiLU layer;
    require_gradchecks(layer, x);
  }
  SECTION("Softplus with beta 2 and threshold 3, inputs on both sides of the threshold") {
    Softplus layer(2.0, 3.0);
    require_gradchecks(layer, x);
  }
}

TEST_CASE("pool gradcheck and gradgradcheck") {
  const Tensor x = testing::random_input({1, 2, 5, 4}, 32);
  SECTION("MaxPool2d overlapping, padded") {
    MaxPool2d layer(3, 2, 1);
    require_gradchecks(layer, x);
  }
  SECTION("AvgPool2d overlapping, padded") {
    AvgPool2d layer(3, 1, 1);
    require_gradchecks(layer, x);
  }
  SECTION("GlobalAvgPool2d") {
    GlobalAvgPool2d layer;
    require_gradchecks(layer, x);
  }
}

TEST_CASE("Softplus switches to x above the threshold, as PyTorch") {
  Softplus layer(1.0, 20.0);
  Tensor x = tensor({19.0, 21.0, -30.0}, {3}, DType::f64).requires_grad_();
  const Tensor y = layer(x);
  const std::vector<double> v = y.to_vector();
  CHECK(v[0] == Approx(19.0 + std::log1p(std::exp(-19.0))).epsilon(1e-15));
  CHECK(v[1] == 21.0);  // exactly x, not x + log(1 + e^-21)
  CHECK(v[2] == Approx(std::exp(-30.0)).epsilon(1e-12));
  backward(sum(y));
  CHECK(x.grad().to_vector()[1] == 1.0);
  CHECK(Softplus(2.0, 5.0).extra_repr() == "beta 2, threshold 5");
  CHECK_THROWS_WITH(Softplus(0.0), Catch::Contains("Softplus: beta 0") && Catch::Contains("positive"));
}

TEST_CASE("activations keep the shape and dtype, and accept any rank") {
  const Tensor x = ones({2, 0, 3});
  CHECK(ReLU()(x).shape() == Shape{2, 0, 3});
  CHECK(GELU()(scalar(1.0, DType::f64)).dtype() == DType::f64);
  CHECK(Tanh()(ones({7})).shape() == Shape{7});
  CHECK_THROWS_WITH(Sigmoid()(Tensor()), Catch::Contains("Sigmoid: the input is undefined"));
  CHECK(SiLU().type_name() == "SiLU");
}

TEST_CASE("GlobalAvgPool2d is the mean of each channel's image") {
  const Tensor x = testing::random_input({2, 3, 4, 5}, 33);
  const std::vector<double> v = x.to_vector();
  std::vector<double> expected(6, 0.0);
  for (std::size_t plane = 0; plane < 6; ++plane)
    for (std::size_t i = 0; i < 20; ++i) expected[plane] += v[plane * 20 + i] / 20.0;
  const Tensor y = GlobalAvgPool2d()(x);
  CHECK(y.shape() == Shape{2, 3});
  testing::require_allclose(y, expected, 1e-14, 1e-15);
  CHECK(GlobalAvgPool2d()(zeros({0, 3, 2, 2})).shape() == Shape{0, 3});
}

TEST_CASE("pools check their arguments and input, naming the layer") {
  CHECK(MaxPool2d(2).extra_repr() == "kernel 2, stride 2, padding 0");  // stride defaults to the kernel
  CHECK(AvgPool2d(3, 1, 1).extra_repr() == "kernel 3, stride 1, padding 1");
  CHECK(MaxPool2d(2)(ones({1, 1, 4, 6})).shape() == Shape{1, 1, 2, 3});
  CHECK(MaxPool2d(2)(ones({0, 2, 4, 4})).shape() == Shape{0, 2, 2, 2});
  CHECK_THROWS_WITH(MaxPool2d(2)(ones({4, 6})),
                    Catch::Contains("MaxPool2d(kernel 2, stride 2, padding 0): input [4, 6] must be 4-D"));
  CHECK_THROWS_WITH(AvgPool2d(5)(ones({1, 1, 3, 3})),
                    Catch::StartsWith("AvgPool2d(kernel 5") && Catch::Contains("larger than input"));
  CHECK_THROWS_WITH(MaxPool2d(0), Catch::Contains("MaxPool2d: kernel 0 must be positive"));
  CHECK_THROWS_WITH(MaxPool2d(2, 0), Catch::Contains("MaxPool2d: stride 0 must be positive"));
  CHECK_THROWS_WITH(AvgPool2d(2, 2, 2), Catch::Contains("AvgPool2d: padding 2 must be between 0 and half"));
  CHECK_THROWS_WITH(GlobalAvgPool2d()(ones({2, 3})), Catch::Contains("GlobalAvgPool2d: input [2, 3] must be 4-D"));
  CHECK_THROWS_WITH(GlobalAvgPool2d()(ones({1, 2, 0, 3})), Catch::Contains("no pixels"));
}

TEST_CASE("Dropout zeroes a fraction p and scales the rest by 1 / (1 - p) in training") {
  const double p = 0.3;
  Dropout layer(p, 7);
  Tensor x = testing::random_input({200, 500}, 34, 1.0, 2.0);  // no zeros in x
  const Tensor y = layer(x);
  const std::vector<double> xv = x.to_vector(), yv = y.to_vector();
  std::int64_t dropped = 0;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0.0) {
      ++dropped;
    } else if (yv[i] != Approx(xv[i] / (1.0 - p)).epsilon(1e-15)) {
      FAIL("element " << i << ": kept value " << yv[i] << " is not " << xv[i] << " / (1 - p)");
    }
  }
  const double n = static_cast<double>(xv.size());
  // Binomial(n, p): 5 standard deviations.
  CHECK(std::abs(static_cast<double>(dropped) - p * n) < 5 * std::sqrt(n * p * (1 - p)));
  // The gradient is the mask: 0 where dropped, 1 / (1 - p) where kept.
  backward(sum(y));
  std::vector<double> mask(yv.size());
  for (std::size_t i = 0; i < yv.size(); ++i) mask[i] = yv[i] == 0.0 ? 0.0 : 1.0 / (1.0 - p);
  testing::require_allclose(x.grad(), mask, 1e-15, 0);
  CHECK(layer.extra_repr() == "p 0.3");
}

TEST_CASE("Dropout masks follow the layer's seed") {
  const Tensor x = ones({1000});
  Dropout a(0.5, 1), b(0.5, 1), c(0.5, 2);
  const std::vector<double> first = a(x).to_vector();
  CHECK(b(x).to_vector() == first);
  CHECK(c(x).to_vector() != first);
  CHECK(a(x).to_vector() != first);  // each call draws a new mask
  // float32 input: same masks as float64 from the same seed (the mask is drawn in double).
  Dropout d(0.5, 1);
  CHECK(d(ones({1000}, DType::f64)).to_vector() == first);
}

TEST_CASE("Dropout's call counter is saved state: a restored layer continues the masks") {
  const Tensor x = ones({500});
  Dropout original(0.5, 4);
  original(x);
  original(x);
  const std::vector<double> third = original(x).to_vector();
  Dropout restored(0.5, 4);
  REQUIRE(restored.named_buffers().size() == 1);
  {
    NoGradGuard no_grad;
    Tensor calls = restored.named_buffers()[0].second;
    fill_(calls, 2.0);  // what load_state would copy from a checkpoint after two calls
  }
  CHECK(restored(x).to_vector() == third);
  CHECK(original.named_buffers()[0].second.item() == 3.0);
  original.eval();
  original(x);  // eval calls draw nothing
  CHECK(original.named_buffers()[0].second.item() == 3.0);
}

TEST_CASE("Dropout is the identity in eval mode and for p = 0, and checks p") {
  const Tensor x = testing::random_input({4, 5}, 35);
  Dropout layer(0.9, 3);
  layer.eval();
  CHECK(layer(x).to_vector() == x.to_vector());
  layer.train();
  CHECK(layer(x).to_vector() != x.to_vector());
  CHECK(Dropout(0.0, 1)(x).to_vector() == x.to_vector());
  CHECK(Dropout(0.5, 1)(zeros({0, 3})).shape() == Shape{0, 3});
  CHECK_THROWS_WITH(Dropout(1.0, 0), Catch::Contains("Dropout: p 1") && Catch::Contains("[0, 1)"));
  CHECK_THROWS_WITH(Dropout(-0.1, 0), Catch::Contains("Dropout: p -0.1"));
  CHECK_THROWS_AS(Dropout(std::nan(""), 0), std::invalid_argument);
  CHECK_THROWS_WITH(layer(Tensor()), Catch::Contains("Dropout(p 0.9): the input is undefined"));
}

TEST_CASE("Dropout gradcheck and gradgradcheck with a fixed mask") {
  // Each evaluation draws a new mask, so the function gradcheck sees is made fixed by
  // reseeding: a fresh layer with the same seed per call.
  const Tensor x = testing::random_input({3, 4}, 36);
  auto f = [](const TensorList& xs) {
    Dropout layer(0.4, 9);
    return layer(xs[0]);
  };
  REQUIRE_GRADCHECK(f, TensorList{x});
  REQUIRE_GRADGRADCHECK(f, TensorList{x});
}

TEST_CASE("Flatten merges the axes from start_axis on") {
  const Tensor x = testing::random_input({2, 3, 4, 5}, 37);
  const Tensor y = Flatten()(x);
  CHECK(y.shape() == Shape{2, 60});
  CHECK(y.to_vector() == x.to_vector());  // row-major order kept
  CHECK(Flatten(2)(x).shape() == Shape{2, 3, 20});
  CHECK(Flatten(-2)(x).shape() == Shape{2, 3, 20});
  CHECK(Flatten(0)(x).shape() == Shape{120});
  CHECK(Flatten(3)(x).shape() == Shape{2, 3, 4, 5});
  CHECK(Flatten()(zeros({0, 3, 4})).shape() == Shape{0, 12});
  CHECK(Flatten().extra_repr() == "start_axis 1");
  CHECK_THROWS_WITH(Flatten()(ones({5})),
                    Catch::Contains("Flatten(start_axis 1): input [5] has 1 axes, so it has no axis 1"));
  CHECK_THROWS_WITH(Flatten(-5)(x), Catch::Contains("no axis -5"));
  Flatten layer;
  REQUIRE_GRADGRADCHECK([&layer](const TensorList& xs) { return layer(xs[0]); },
                        TensorList{testing::random_input({2, 2, 3}, 38)});
}
