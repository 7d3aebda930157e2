// Linear and Conv2d: forward values and gradients against PyTorch 1.13 (stride, the four
// padding modes, dilation, groups, depthwise, no bias), gradcheck and gradgradcheck,
// PyTorch's default initialisation, shape checks and edge cases.
// Reference values: tests/data/nn_layer_reference.json, written by
// tools/make_nn_layer_reference.py.
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "nn/init.hpp"
#include "nn/layers/conv2d.hpp"
#include "nn/layers/linear.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using json = nlohmann::json;

namespace {

const json& reference_cases() {
  return testing::reference_data("nn_layer_reference.json", "tools/make_nn_layer_reference.py").at("cases");
}

PadMode pad_mode_named(const std::string& name) {
  for (PadMode m : {PadMode::zeros, PadMode::reflect, PadMode::replicate, PadMode::circular})
    if (name == pad_mode_name(m)) return m;
  throw std::invalid_argument("unknown padding mode " + name);
}

std::shared_ptr<Module> layer_for(const json& c, DType dtype) {
  const json& a = c.at("args");
  if (c.at("module") == "Linear") return std::make_shared<Linear>(a.at("in"), a.at("out"), a.at("bias"), dtype);
  Conv2dConfig config;
  config.in_channels = a.at("in");
  config.out_channels = a.at("out");
  config.kernel_h = a.at("kernel")[0];
  config.kernel_w = a.at("kernel")[1];
  config.stride_h = a.at("stride")[0];
  config.stride_w = a.at("stride")[1];
  config.padding_h = a.at("padding")[0];
  config.padding_w = a.at("padding")[1];
  config.dilation_h = a.at("dilation")[0];
  config.dilation_w = a.at("dilation")[1];
  config.groups = a.at("groups");
  config.bias = a.at("bias");
  config.padding_mode = pad_mode_named(a.at("padding_mode"));
  config.dtype = dtype;
  return std::make_shared<Conv2d>(config);
}

// Loads the case's parameters into a fresh layer, runs it, and compares the output and
// the gradients of sum(output * weighting) with PyTorch's. Returns the number of cases run.
int check_reference_cases(DType dtype, double rtol, double atol) {
  int checked = 0;
  for (const json& c : reference_cases()) {
    if (c.at("module") != "Linear" && c.at("module") != "Conv2d") continue;
    DYNAMIC_SECTION(c.at("id").get<std::string>() << " " << dtype_name(dtype)) {
      std::shared_ptr<Module> layer = layer_for(c, dtype);
      NamedTensors params = layer->named_parameters();
      REQUIRE(params.size() == c.at("params").size());
      {
        NoGradGuard no_grad;
        for (auto& [name, p] : params) copy_(p, testing::tensor_from_json(c.at("params").at(name), DType::f64));
      }
      Tensor x = testing::tensor_from_json(c.at("input"), dtype).requires_grad_();
      const Tensor y = layer->forward(x);
      testing::require_allclose(y, testing::tensor_from_json(c.at("output"), DType::f64), rtol, atol);
      backward(sum(y * testing::tensor_from_json(c.at("weighting"), dtype)));
      testing::require_allclose(x.grad(), testing::tensor_from_json(c.at("grads").at("input"), DType::f64), rtol, atol);
      for (auto& [name, p] : params) {
        INFO("gradient of " << name);
        testing::require_allclose(p.grad(), testing::tensor_from_json(c.at("grads").at(name), DType::f64), rtol, atol);
      }
    }
    ++checked;
  }
  return checked;
}

// gradcheck and gradgradcheck of a layer with respect to its input and its parameters
// (gradcheck perturbs the parameters' buffers in place, so the layer sees each change).
void require_layer_gradchecks(Module& layer, const Shape& input_shape, std::uint64_t seed) {
  layer.to(DType::f64);
  TensorList inputs{testing::random_input(input_shape, seed)};
  for (const Tensor& p : layer.parameters()) inputs.push_back(p);
  auto f = [&layer](const TensorList& xs) { return layer.forward(xs[0]); };
  REQUIRE_GRADCHECK(f, inputs);
  REQUIRE_GRADGRADCHECK(f, inputs);
}

Conv2dConfig conv_config(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t padding = 0) {
  Conv2dConfig c;
  c.in_channels = in;
  c.out_channels = out;
  c.kernel_h = c.kernel_w = kernel;
  c.padding_h = c.padding_w = padding;
  return c;
}

}  // namespace

TEST_CASE("Linear and Conv2d match PyTorch in float64") {
  CHECK(check_reference_cases(DType::f64, 1e-12, 1e-12) >= 15);
}

TEST_CASE("Linear and Conv2d match PyTorch in float32") {
  CHECK(check_reference_cases(DType::f32, 1e-5, 1e-5) >= 15);
}

TEST_CASE("Linear gradcheck and gradgradcheck, with and without bias, 2-D and 3-D input") {
  SECTION("bias, [3, 4]") {
    Linear layer(4, 3);
    require_layer_gradchecks(layer, {3, 4}, 1);
  }
  SECTION("no bias, [2, 2, 3]") {
    Linear layer(3, 2, false);
    require_layer_gradchecks(layer, {2, 2, 3}, 2);
  }
}

TEST_CASE("Conv2d gradcheck and gradgradcheck for every padding mode, stride, dilation and groups") {
  SECTION("zeros padding, stride 2") {
    Conv2dConfig c = conv_config(2, 2, 3, 1);
    c.stride_h = c.stride_w = 2;
    Conv2d layer(c);
    require_layer_gradchecks(layer, {1, 2, 5, 4}, 3);
  }
  for (PadMode mode : {PadMode::reflect, PadMode::replicate, PadMode::circular}) {
    DYNAMIC_SECTION("padding mode " << pad_mode_name(mode)) {
      Conv2dConfig c = conv_config(2, 2, 3);
      c.padding_h = 2;
      c.padding_w = 1;
      c.padding_mode = mode;
      Conv2d layer(c);
      require_layer_gradchecks(layer, {1, 2, 4, 4}, 4);
    }
  }
  SECTION("dilation 2, no bias") {
    Conv2dConfig c = conv_config(2, 3, 2, 1);
    c.dilation_h = c.dilation_w = 2;
    c.bias = false;
    Conv2d layer(c);
    require_layer_gradchecks(layer, {2, 2, 4, 4}, 5);
  }
  SECTION("groups 2") {
    Conv2dConfig c = conv_config(4, 2, 2);
    c.groups = 2;
    Conv2d layer(c);
    require_layer_gradchecks(layer, {1, 4, 3, 3}, 6);
  }
  SECTION("depthwise with channel multiplier 2") {
    Conv2dConfig c = conv_config(2, 4, 3, 1);
    c.groups = 2;
    Conv2d layer(c);
    require_layer_gradchecks(layer, {1, 2, 3, 4}, 7);
  }
}

TEST_CASE("Linear and Conv2d start from PyTorch's default init, drawn from default_generator") {
  manual_seed(3);
  Linear a(300, 200);
  // kaiming_uniform_ with slope sqrt 5: bound sqrt(3) * sqrt(2 / 6) / sqrt(fan_in) = 1 / sqrt(fan_in)
  const double bound = 1.0 / std::sqrt(300.0);
  const std::vector<double> w = a.weight.to_vector(), b = a.bias.to_vector();
  double max_w = 0, max_b = 0, sum_sq = 0;
  for (double v : w) max_w = std::max(max_w, std::abs(v)), sum_sq += v * v;
  for (double v : b) max_b = std::max(max_b, std::abs(v));
  CHECK(max_w <= bound);
  CHECK(max_w > 0.999 * bound);
  CHECK(std::sqrt(sum_sq / static_cast<double>(w.size())) == Approx(bound / std::sqrt(3.0)).epsilon(0.02));
  CHECK(max_b <= bound);
  CHECK(max_b > 0.9 * bound);

  manual_seed(3);
  Linear same(300, 200);
  CHECK(same.weight.to_vector() == w);
  CHECK(same.bias.to_vector() == b);
  Linear next(300, 200);
  CHECK(next.weight.to_vector() != w);

  // Conv2d's fan_in is in / groups * kh * kw = 2 * 9.
  Conv2dConfig c = conv_config(4, 8, 3);
  c.groups = 2;
  Conv2d conv(c);
  CHECK(conv.weight.shape() == Shape{8, 2, 3, 3});
  const double conv_bound = 1.0 / std::sqrt(18.0);
  double max_cw = 0, max_cb = 0;
  for (double v : conv.weight.to_vector()) max_cw = std::max(max_cw, std::abs(v));
  for (double v : conv.bias.to_vector()) max_cb = std::max(max_cb, std::abs(v));
  CHECK(max_cw <= conv_bound);
  CHECK(max_cw > 0.9 * conv_bound);
  CHECK(max_cb <= conv_bound);
  CHECK(conv.weight.requires_grad());
  CHECK(conv.num_parameters() == 8 * 2 * 9 + 8);
}

TEST_CASE("Linear handles a single vector, a batch of one and an empty batch") {
  Linear layer(3, 2, true, DType::f64);
  const Tensor v = tensor({1.0, -2.0, 0.5}, {3}, DType::f64);
  const Tensor single = layer(v);
  CHECK(single.shape() == Shape{2});
  testing::require_allclose(single, layer(reshape(v, {1, 3})).to_vector(), 1e-15, 0);

  Tensor empty = zeros({0, 3}, DType::f64).requires_grad_();
  const Tensor y = layer(empty);
  CHECK(y.shape() == Shape{0, 2});
  backward(sum(y));
  testing::require_allclose(layer.weight.grad(), std::vector<double>(6, 0.0));  // nothing contributed
  CHECK(layer(zeros({4, 0, 3}, DType::f64)).shape() == Shape{4, 0, 2});
}

TEST_CASE("Conv2d handles a batch of one and an empty batch") {
  Conv2d layer(conv_config(2, 3, 3, 1));
  CHECK(layer(ones({1, 2, 5, 5})).shape() == Shape{1, 3, 5, 5});
  Tensor empty = zeros({0, 2, 5, 5}).requires_grad_();
  const Tensor y = layer(empty);
  CHECK(y.shape() == Shape{0, 3, 5, 5});
  backward(sum(y));
  CHECK(empty.grad().shape() == Shape{0, 2, 5, 5});
}

TEST_CASE("Linear rejects wrong shapes, dtypes and sizes with a clear message") {
  Linear layer(784, 256);
  CHECK_THROWS_WITH(layer(zeros({32, 100})),
                    Catch::Contains("Linear(784 -> 256): input [32, 100] has 100 features, expected 784"));
  CHECK_THROWS_WITH(layer(scalar(1.0)), Catch::Contains("Linear(784 -> 256): input [] is a scalar"));
  CHECK_THROWS_WITH(layer(zeros({2, 784}, DType::f64)), Catch::Contains("is float64 but the layer is float32"));
  CHECK_THROWS_WITH(layer(Tensor()), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(Linear(0, 3), Catch::Contains("Linear(0 -> 3)") && Catch::Contains("positive"));
  CHECK_THROWS_AS(Linear(3, -1), std::invalid_argument);
}

TEST_CASE("Conv2d rejects bad configurations and inputs, naming the layer") {
  Conv2d layer(conv_config(1, 32, 3, 1));
  const std::string name = "Conv2d(1 -> 32, kernel 3x3, stride 1, padding 1 (zeros))";
  CHECK_THROWS_WITH(layer(zeros({1, 28, 28})), Catch::Contains(name + ": input [1, 28, 28] must be 4-D [N, 1, H, W]"));
  CHECK_THROWS_WITH(layer(zeros({2, 3, 28, 28})), Catch::Contains("has 3 channels, expected 1"));
  CHECK_THROWS_WITH(layer(zeros({2, 1, 8, 8}, DType::f64)), Catch::Contains("float64"));
  // The image is too small for the kernel even padded: the engine's reason, the layer's name.
  Conv2d big(conv_config(1, 1, 5));
  CHECK_THROWS_WITH(big(zeros({1, 1, 3, 3})), Catch::StartsWith("Conv2d(1 -> 1, kernel 5x5") &&
                                                   Catch::Contains("larger than input [1, 1, 3, 3]"));
  Conv2dConfig reflect = conv_config(1, 1, 3, 3);
  reflect.padding_mode = PadMode::reflect;
  CHECK_THROWS_WITH(Conv2d(reflect)(zeros({1, 1, 3, 3})), Catch::StartsWith("Conv2d(1 -> 1") &&
                                                              Catch::Contains("reflect"));

  Conv2dConfig bad = conv_config(3, 4, 3);
  bad.groups = 2;
  CHECK_THROWS_WITH(Conv2d(bad), Catch::Contains("groups 2 must divide both in_channels 3 and out_channels 4"));
  CHECK_THROWS_WITH(Conv2d(conv_config(1, 1, 0)), Catch::Contains("kernel 0x0 must be positive"));
  Conv2dConfig stride = conv_config(1, 1, 3);
  stride.stride_w = 0;
  CHECK_THROWS_WITH(Conv2d(stride), Catch::Contains("stride 1x0 must be positive"));
  CHECK_THROWS_WITH(Conv2d(conv_config(1, 1, 3, -1)), Catch::Contains("padding -1 must be non-negative"));
  CHECK_THROWS_WITH(Conv2d(conv_config(0, 1, 3)), Catch::Contains("channel counts must be positive"));
}

TEST_CASE("extra_repr describes Linear and Conv2d") {
  CHECK(Linear(784, 256).extra_repr() == "784 -> 256, bias");
  CHECK(Linear(10, 2, false).extra_repr() == "10 -> 2, no bias");
  CHECK(Conv2d(conv_config(1, 32, 3, 1)).extra_repr() == "1 -> 32, kernel 3x3, stride 1, padding 1 (zeros)");
  Conv2dConfig c = conv_config(4, 8, 3);
  c.kernel_w = 1;
  c.stride_h = 2;
  c.padding_h = 1;
  c.padding_mode = PadMode::circular;
  c.dilation_h = c.dilation_w = 2;
  c.groups = 4;
  c.bias = false;
  CHECK(Conv2d(c).extra_repr() ==
        "4 -> 8, kernel 3x1, stride 2x1, padding 1x0 (circular), dilation 2, groups 4, no bias");
  CHECK(Linear(3, 2).type_name() == "Linear");
  CHECK(Conv2d(c).type_name() == "Conv2d");
}
