// build_model: models from JSON specs (the MLP and CNN the examples train, every layer
// type and key, nesting, dtype, seeding) and its error messages, each naming the JSON path.
#include "nn/architecture.hpp"

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/batchnorm.hpp"
#include "nn/layers/conv2d.hpp"
#include "nn/layers/dropout.hpp"
#include "nn/layers/flatten.hpp"
#include "nn/layers/layernorm.hpp"
#include "nn/layers/linear.hpp"
#include "nn/layers/pool.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using json = nlohmann::json;

namespace {

const json mlp_spec = json::parse(R"({
  "type": "Sequential",
  "layers": [
    {"type": "Flatten"},
    {"type": "Linear", "in": 784, "out": 256},
    {"type": "ReLU"},
    {"type": "Linear", "in": 256, "out": 128, "bias": true},
    {"type": "ReLU"},
    {"type": "Linear", "in": 128, "out": 10}
  ]
})");

const json cnn_spec = json::parse(R"({
  "type": "Sequential",
  "layers": [
    {"type": "Conv2d", "in": 1, "out": 32, "kernel": 3, "stride": 1, "padding": 1},
    {"type": "BatchNorm2d", "features": 32},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel": 2},
    {"type": "Conv2d", "in": 32, "out": 64, "kernel": 3, "padding": 1},
    {"type": "BatchNorm2d", "features": 64, "eps": 1e-5, "momentum": 0.1, "affine": true},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel": 2, "stride": 2, "padding": 0},
    {"type": "Flatten"},
    {"type": "Linear", "in": 3136, "out": 10}
  ]
})");

// The spec with one layer replaced (or, with a null layer, unchanged).
json with_layer(json spec, std::size_t index, const json& layer) {
  spec["layers"][index] = layer;
  return spec;
}

template <class Layer>
std::shared_ptr<Layer> child(const Module& model, std::size_t index) {
  auto layer = std::dynamic_pointer_cast<Layer>(model.named_children().at(index).second);
  REQUIRE(layer);
  return layer;
}

void require_build_error(const json& spec, const std::string& message) {
  INFO(spec.dump());
  CHECK_THROWS_WITH(build_model(spec), Catch::Contains(message));
}

}  // namespace

TEST_CASE("the MLP 784-256-128-10 from JSON") {
  manual_seed(1);
  const std::shared_ptr<Module> model = build_model(mlp_spec);
  CHECK(model->type_name() == "Sequential");
  CHECK(model->num_parameters() == 235146);
  CHECK(model->named_children().size() == 6);
  CHECK(child<Linear>(*model, 1)->extra_repr() == "784 -> 256, bias");
  CHECK(child<Linear>(*model, 5)->out_features() == 10);
  child<ReLU>(*model, 2);
  CHECK((*model)(ones({5, 1, 28, 28})).shape() == Shape{5, 10});
  CHECK(model->dtype() == DType::f32);

  // Parameters come from default_generator in layer order: the same as building the
  // layers by hand after the same seed.
  manual_seed(1);
  Linear first(784, 256), second(256, 128);
  CHECK(child<Linear>(*model, 1)->weight.to_vector() == first.weight.to_vector());
  CHECK(child<Linear>(*model, 3)->bias.to_vector() == second.bias.to_vector());
}

TEST_CASE("the CNN from JSON: two conv blocks and a classifier") {
  const std::shared_ptr<Module> model = build_model(cnn_spec);
  // conv 32*9 + 32, BN 2*32, conv 64*32*9 + 64, BN 2*64, linear 3136*10 + 10
  CHECK(model->num_parameters() == 320 + 64 + 18496 + 128 + 31370);
  CHECK(model->named_buffers().size() == 4);  // running mean and var of both BatchNorms
  CHECK(child<Conv2d>(*model, 0)->extra_repr() == "1 -> 32, kernel 3x3, stride 1, padding 1 (zeros)");
  CHECK(child<BatchNorm2d>(*model, 1)->num_features() == 32);
  CHECK(child<MaxPool2d>(*model, 3)->stride() == 2);
  const Tensor x = testing::random_input({2, 1, 28, 28}, 1, 0.0, 1.0, DType::f32);
  CHECK((*model)(x).shape() == Shape{2, 10});
  model->eval();
  CHECK((*model)(x).shape() == Shape{2, 10});
  const std::string summary = model->summary();
  INFO(summary);
  CHECK(summary.find("Conv2d(32 -> 64, kernel 3x3, stride 1, padding 1 (zeros))") != std::string::npos);
}

TEST_CASE("dtype float64 builds every parameter and buffer in float64") {
  json spec = cnn_spec;
  spec["dtype"] = "float64";
  const std::shared_ptr<Module> model = build_model(spec);
  CHECK(model->dtype() == DType::f64);
  for (const auto& [name, t] : model->named_state()) CHECK(t.dtype() == DType::f64);
  CHECK((*model)(zeros({1, 1, 28, 28}, DType::f64)).dtype() == DType::f64);
  spec["dtype"] = "float32";
  CHECK(build_model(spec)->dtype() == DType::f32);
}

TEST_CASE("every layer type and key is read") {
  const json spec = json::parse(R"({"type": "Sequential", "dtype": "float64", "layers": [
    {"type": "Conv2d", "in": 4, "out": 8, "kernel": [3, 1], "stride": [2, 1], "padding": [1, 0],
     "dilation": 2, "groups": 4, "bias": false, "padding_mode": "circular"},
    {"type": "BatchNorm2d", "features": 8, "eps": 0.001, "momentum": 0.2, "affine": false,
     "track_running_stats": false},
    {"type": "AvgPool2d", "kernel": 3, "stride": 1, "padding": 1},
    {"type": "GlobalAvgPool2d"},
    {"type": "Sequential", "layers": [
      {"type": "Linear", "in": 8, "out": 6, "bias": false},
      {"type": "BatchNorm1d", "features": 6},
      {"type": "LayerNorm", "shape": [6], "eps": 0.01, "elementwise_affine": false}
    ]},
    {"type": "GELU"}, {"type": "Tanh"}, {"type": "Sigmoid"}, {"type": "SiLU"},
    {"type": "Softplus", "beta": 2, "threshold": 10.5},
    {"type": "Dropout", "p": 0.25, "seed": 17},
    {"type": "Dropout"},
    {"type": "LayerNorm", "shape": 6},
    {"type": "Flatten", "start_axis": 0},
    {"type": "Sequential", "layers": []}
  ]})");
  const std::shared_ptr<Module> model = build_model(spec);

  const Conv2dConfig& c = child<Conv2d>(*model, 0)->config();
  CHECK(c.kernel_h == 3);
  CHECK(c.kernel_w == 1);
  CHECK(c.stride_h == 2);
  CHECK(c.stride_w == 1);
  CHECK(c.padding_h == 1);
  CHECK(c.padding_w == 0);
  CHECK(c.dilation_h == 2);
  CHECK(c.dilation_w == 2);
  CHECK(c.groups == 4);
  CHECK_FALSE(c.bias);
  CHECK(c.padding_mode == PadMode::circular);
  CHECK(c.dtype == DType::f64);

  const BatchNormOptions& bn = child<BatchNorm2d>(*model, 1)->options();
  CHECK(bn.eps == 0.001);
  CHECK(bn.momentum == 0.2);
  CHECK_FALSE(bn.affine);
  CHECK_FALSE(bn.track_running_stats);
  CHECK(child<AvgPool2d>(*model, 2)->extra_repr() == "kernel 3, stride 1, padding 1");
  child<GlobalAvgPool2d>(*model, 3);

  const auto inner = child<Sequential>(*model, 4);
  CHECK(inner->size() == 3);
  CHECK_FALSE(child<Linear>(*inner, 0)->bias.defined());
  CHECK(child<BatchNorm1d>(*inner, 1)->num_features() == 6);
  CHECK(child<LayerNorm>(*inner, 2)->eps() == 0.01);
  CHECK_FALSE(child<LayerNorm>(*inner, 2)->weight.defined());

  child<GELU>(*model, 5);
  child<Tanh>(*model, 6);
  child<Sigmoid>(*model, 7);
  child<SiLU>(*model, 8);
  CHECK(child<Softplus>(*model, 9)->beta() == 2.0);
  CHECK(child<Softplus>(*model, 9)->threshold() == 10.5);
  CHECK(child<Dropout>(*model, 10)->p() == 0.25);
  CHECK(child<Dropout>(*model, 11)->p() == 0.5);
  CHECK(child<LayerNorm>(*model, 12)->normalized_shape() == Shape{6});
  CHECK(child<Flatten>(*model, 13)->start_axis() == 0);
  CHECK(child<Sequential>(*model, 14)->size() == 0);

  // Dotted names go through the nested Sequential.
  bool found = false;
  for (const auto& [name, t] : model->named_parameters()) found = found || name == "4.0.weight";
  CHECK(found);
  CHECK((*model)(testing::random_input({3, 4, 6, 5}, 2)).shape() == Shape{18});
}

TEST_CASE("Dropout's seed: the given one, else a different one per Dropout layer") {
  const json spec = json::parse(R"({"type": "Sequential", "layers": [
    {"type": "Dropout", "p": 0.5, "seed": 1}, {"type": "Dropout"}, {"type": "Dropout"}]})");
  const std::shared_ptr<Module> model = build_model(spec);
  const Tensor x = ones({64});
  Dropout reference(0.5, 1);
  CHECK(child<Dropout>(*model, 0)->forward(x).to_vector() == reference(x).to_vector());
  CHECK(child<Dropout>(*model, 1)->forward(x).to_vector() != child<Dropout>(*model, 2)->forward(x).to_vector());
}

TEST_CASE("build_model errors name the JSON path and the problem") {
  SECTION("keys") {
    require_build_error(with_layer(cnn_spec, 3, {{"type", "Conv2d"}, {"in", 32}, {"out", 64}, {"kernal", 3}}),
                        "build_model: layers[3] (Conv2d): unknown key \"kernal\"");
    require_build_error(with_layer(cnn_spec, 3, {{"type", "Conv2d"}, {"in", 32}, {"out", 64}}),
                        "build_model: layers[3] (Conv2d): missing key \"kernel\"");
    require_build_error(with_layer(mlp_spec, 2, {{"type", "ReLU"}, {"inplace", true}}),
                        "build_model: layers[2] (ReLU): unknown key \"inplace\" (this type takes no keys)");
    require_build_error(with_layer(mlp_spec, 1, {{"type", "Linear"}, {"in", 784}, {"out", 256}, {"bais", true}}),
                        "unknown key \"bais\" (known keys: in, out, bias)");
  }
  SECTION("types") {
    require_build_error(with_layer(mlp_spec, 4, {{"type", "Conv3d"}}),
                        "build_model: layers[4]: unknown type \"Conv3d\" (known types: AvgPool2d, BatchNorm1d");
    require_build_error(with_layer(mlp_spec, 4, {{"kind", "ReLU"}}), "build_model: layers[4] needs a \"type\" string");
    require_build_error(with_layer(mlp_spec, 4, 3), "build_model: layers[4] must be a layer object");
    require_build_error(json::array(), "build_model: the top level must be a layer object");
    require_build_error({{"type", "Sequential"}}, "build_model: the top level (Sequential): missing key \"layers\"");
    require_build_error({{"type", "Sequential"}, {"layers", {{"type", "ReLU"}}}},
                        "\"layers\" must be an array of layer objects");
  }
  SECTION("values") {
    require_build_error(with_layer(mlp_spec, 1, {{"type", "Linear"}, {"in", "784"}, {"out", 256}}),
                        "build_model: layers[1] (Linear): \"in\" must be an integer, got \"784\"");
    require_build_error(with_layer(mlp_spec, 1, {{"type", "Linear"}, {"in", 784.5}, {"out", 256}}),
                        "\"in\" must be an integer, got 784.5");
    require_build_error(with_layer(mlp_spec, 1, {{"type", "Linear"}, {"in", 0}, {"out", 256}}),
                        "\"in\" must be positive, got 0");
    require_build_error(with_layer(mlp_spec, 1, {{"type", "Linear"}, {"in", 784}, {"out", 256}, {"bias", 1}}),
                        "\"bias\" must be true or false, got 1");
    require_build_error(with_layer(cnn_spec, 0, {{"type", "Conv2d"}, {"in", 1}, {"out", 4}, {"kernel", {3, 3, 3}}}),
                        "layers[0] (Conv2d): \"kernel\" must be a number or a pair [h, w], got [3,3,3]");
    require_build_error(with_layer(cnn_spec, 0, {{"type", "Conv2d"}, {"in", 1}, {"out", 4}, {"kernel", {3, -1}}}),
                        "\"kernel[1]\" must be positive, got -1");
    require_build_error(with_layer(cnn_spec, 0, {{"type", "Conv2d"}, {"in", 1}, {"out", 4}, {"kernel", 3},
                                                 {"padding_mode", "mirror"}}),
                        "\"padding_mode\" must be \"zeros\", \"reflect\", \"replicate\" or \"circular\", "
                        "got \"mirror\"");
    require_build_error(with_layer(cnn_spec, 1, {{"type", "BatchNorm2d"}, {"features", 32}, {"eps", "small"}}),
                        "layers[1] (BatchNorm2d): \"eps\" must be a number");
    require_build_error(with_layer(mlp_spec, 0, {{"type", "LayerNorm"}, {"shape", {256, 0}}}),
                        "layers[0] (LayerNorm): \"shape\"[1] must be a positive integer, got 0");
    require_build_error({{"type", "Sequential"}, {"dtype", "float16"}, {"layers", json::array()}},
                        "build_model: \"dtype\" must be \"float32\" or \"float64\", got \"float16\"");
  }
  SECTION("the layers' own complaints get the path") {
    require_build_error(with_layer(cnn_spec, 0, {{"type", "Conv2d"}, {"in", 3}, {"out", 4}, {"kernel", 3},
                                                 {"groups", 2}}),
                        "build_model: layers[0] (Conv2d): Conv2d(3 -> 4): groups 2 must divide both");
    require_build_error(with_layer(mlp_spec, 2, {{"type", "Dropout"}, {"p", 1.0}}),
                        "build_model: layers[2] (Dropout): Dropout: p 1");
    require_build_error(with_layer(cnn_spec, 3, {{"type", "MaxPool2d"}, {"kernel", 2}, {"padding", 2}}),
                        "build_model: layers[3] (MaxPool2d): MaxPool2d: padding 2 must be between 0 and half");
    require_build_error(with_layer(cnn_spec, 1, {{"type", "BatchNorm2d"}, {"features", 32}, {"momentum", 2}}),
                        "build_model: layers[1] (BatchNorm2d): BatchNorm2d(32): momentum must be in [0, 1]");
  }
  SECTION("nested paths") {
    const json nested = {{"type", "Sequential"},
                         {"layers", {{{"type", "ReLU"}},
                                     {{"type", "Sequential"},
                                      {"layers", {{{"type", "Tanh"}}, {{"type", "Linear"}, {"in", 2}}}}}}}};
    require_build_error(nested, "build_model: layers[1].layers[1] (Linear): missing key \"out\"");
    json with_dtype = nested;
    with_dtype["layers"][1]["dtype"] = "float64";
    require_build_error(with_dtype, "build_model: layers[1] (Sequential): unknown key \"dtype\"");
  }
}

TEST_CASE("model_layer_types lists what build_model knows") {
  const std::vector<std::string> types = model_layer_types();
  CHECK(types.size() == 17);
  CHECK(std::is_sorted(types.begin(), types.end()));
  for (const std::string& type : types) {
    if (type == "Sequential") continue;
    INFO(type);
    // Each type is known (a wrong key, not an unknown type, is reported).
    CHECK_THROWS_WITH(build_model({{"type", type}, {"no_such_key", 1}}),
                      Catch::Contains("unknown key \"no_such_key\""));
  }
}
