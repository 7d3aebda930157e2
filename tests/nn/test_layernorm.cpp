// LayerNorm against PyTorch 1.13 (tests/data/nn_norm_loss_reference.json, written by
// tools/make_nn_norm_loss_reference.py), against a plain loop, gradcheck and errors.

#include <nlohmann/json.hpp>

#include "nn/layers/layernorm.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using json = nlohmann::json;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

const json& reference() {
  return testing::reference_data("nn_norm_loss_reference.json", "tools/make_nn_norm_loss_reference.py");
}

void require_close(const Tensor& actual, const json& expected, DType dtype) {
  REQUIRE(actual.defined());
  REQUIRE(actual.shape() == expected.at("shape").get<Shape>());
  const auto values = expected.at("values").get<std::vector<double>>();
  if (dtype == DType::f64) require_allclose(actual, values, 1e-9, 1e-11);
  else require_allclose(actual, values, 2e-4, 2e-5);
}

}  // namespace

TEST_CASE("LayerNorm matches PyTorch with and without affine parameters") {
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const json& c : reference().at("layernorm")) {
      INFO(c.at("id").get<std::string>() << " " << dtype_name(dtype));
      const bool affine = c.at("affine");
      LayerNorm layer(c.at("normalized_shape").get<Shape>(), c.at("eps"), affine, dtype);
      if (affine) {
        NoGradGuard no_grad;
        copy_(layer.weight, testing::tensor_from_json(c.at("weight"), dtype));
        copy_(layer.bias, testing::tensor_from_json(c.at("bias"), dtype));
      }
      Tensor x = testing::tensor_from_json(c.at("input"), dtype).requires_grad_();
      Tensor out = layer(x);
      require_close(out, c.at("output"), dtype);
      backward(sum(out * testing::tensor_from_json(c.at("weights"), dtype)));
      require_close(x.grad(), c.at("grad_input"), dtype);
      if (affine) {
        require_close(layer.weight.grad(), c.at("grad_weight"), dtype);
        require_close(layer.bias.grad(), c.at("grad_bias"), dtype);
      }
      layer.eval();  // no batch statistics: eval mode computes the same
      require_close(layer(x), c.at("output"), dtype);
    }
  }
}

TEST_CASE("LayerNorm normalises each example over the trailing axes (plain loop)") {
  Tensor x = random_input({3, 2, 4}, 7, -2.0, 3.0).detach();
  Tensor w = random_input({2, 4}, 8).detach();
  Tensor b = random_input({2, 4}, 9).detach();
  const std::vector<double> xs = x.to_vector(), ws = w.to_vector(), bs = b.to_vector();
  std::vector<double> expected(xs.size());
  for (int n = 0; n < 3; ++n) {
    double mu = 0.0, var = 0.0;
    for (int i = 0; i < 8; ++i) mu += xs[n * 8 + i] / 8.0;
    for (int i = 0; i < 8; ++i) var += (xs[n * 8 + i] - mu) * (xs[n * 8 + i] - mu) / 8.0;
    for (int i = 0; i < 8; ++i) expected[n * 8 + i] = (xs[n * 8 + i] - mu) / std::sqrt(var + 1e-5) * ws[i] + bs[i];
  }
  require_allclose(layer_norm(x, {2, 4}, w, b), expected, 1e-12, 1e-12);
}

TEST_CASE("LayerNorm gradcheck and gradgradcheck") {
  Tensor x = random_input({2, 3, 4}, 1, -2.0, 2.0);
  Tensor w = random_input({3, 4}, 2, 0.5, 1.5);
  Tensor b = random_input({3, 4}, 3);
  auto affine = [](const TensorList& in) { return layer_norm(in[0], {3, 4}, in[1], in[2], 1e-3); };
  REQUIRE_GRADCHECK(affine, (TensorList{x, w, b}));
  REQUIRE_GRADGRADCHECK(affine, (TensorList{x, w, b}));
  auto plain = [](const TensorList& in) { return layer_norm(in[0], {4}, Tensor(), Tensor(), 1e-3); };
  REQUIRE_GRADCHECK(plain, TensorList{x});
  REQUIRE_GRADGRADCHECK(plain, TensorList{x});
}

TEST_CASE("LayerNorm parameters, description and errors") {
  LayerNorm layer({2, 3});
  REQUIRE(layer.named_parameters().size() == 2);
  CHECK(layer.named_parameters()[0].first == "weight");
  CHECK(layer.weight.shape() == Shape{2, 3});
  CHECK(layer.weight.to_vector() == std::vector<double>(6, 1.0));
  CHECK(layer.bias.to_vector() == std::vector<double>(6, 0.0));
  CHECK(layer.named_buffers().empty());
  CHECK(layer.type_name() == "LayerNorm");
  CHECK(layer.extra_repr() == "[2, 3], eps=1e-05");
  LayerNorm bare({5}, 1e-6, false, DType::f64);
  CHECK(bare.named_parameters().empty());
  CHECK(bare.extra_repr() == "[5], eps=1e-06, no affine");

  CHECK_THROWS_WITH(layer(zeros({4, 3, 2})),
                    Catch::Contains("LayerNorm([2, 3]): input [4, 3, 2] does not end with the normalized shape [2, 3]"));
  CHECK_THROWS_WITH(layer(zeros({3})), Catch::Contains("input [3] does not end with"));
  CHECK_THROWS_WITH(layer(zeros({4, 2, 3}, DType::f64)),
                    Catch::Contains("LayerNorm([2, 3]): input is float64 but weight is float32"));
  CHECK_THROWS_WITH(LayerNorm(Shape{}), Catch::Contains("normalized_shape is empty"));
  CHECK_THROWS_WITH(LayerNorm({3, 0}), Catch::Contains("every normalized axis must have a positive size"));
  CHECK_THROWS_WITH(layer_norm(zeros({2, 3}), {3}, zeros({2}), Tensor()),
                    Catch::Contains("layer_norm: weight [2] must have the normalized shape [3]"));
}
