#pragma once
// Models described as JSON, so an experiment's architecture lives in its config file:
//
//   {"type": "Sequential", "dtype": "float32", "layers": [
//     {"type": "Conv2d", "in": 1, "out": 32, "kernel": 3, "padding": 1},
//     {"type": "BatchNorm2d", "features": 32}, {"type": "ReLU"},
//     {"type": "MaxPool2d", "kernel": 2},
//     {"type": "Flatten"}, {"type": "Linear", "in": 6272, "out": 10}]}
//
// Layer types and their keys (defaults in parentheses; every key not marked required
// may be left out):
//   Sequential   layers (required): an array of layer objects, nested freely
//   Linear       in, out (required), bias (true)
//   Conv2d       in, out, kernel (required), stride (1), padding (0), dilation (1),
//                groups (1), bias (true), padding_mode ("zeros" | "reflect" | "replicate" |
//                "circular"); kernel, stride, padding and dilation are a number or [h, w]
//   BatchNorm1d, BatchNorm2d   features (required), eps (1e-5), momentum (0.1),
//                affine (true), track_running_stats (true)
//   LayerNorm    shape (required, a number or an array), eps (1e-5),
//                elementwise_affine (true)
//   ReLU, GELU, Tanh, Sigmoid, SiLU   no keys;  Softplus   beta (1), threshold (20)
//   MaxPool2d, AvgPool2d   kernel (required), stride (kernel), padding (0)
//   GlobalAvgPool2d   no keys
//   Dropout      p (0.5), seed (the number of Dropout layers built before this one, so
//                that two layers never share a mask sequence)
//   Flatten      start_axis (1)
// The top level may also hold "dtype": "float32" (default) or "float64", the dtype of
// every parameter and buffer. Unknown keys and types are errors, so a typo never
// silently falls back to a default. Every error names the JSON path, e.g.
//   build_model: layers[3] (Conv2d): unknown key "kernal" (known keys: ...)
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.hpp"

namespace symgrad::nn {

// Builds the model; parameters are initialised from default_generator() in layer order,
// so manual_seed() before the call makes the model reproducible.
std::shared_ptr<Module> build_model(const nlohmann::json& spec);

// The "type" names build_model knows, sorted.
std::vector<std::string> model_layer_types();

// Teaches build_model a type defined above nn (pde::register_model_types() adds
// "PDEResNet"). The builder receives the type's JSON object (with its "type" key) and the
// dtype of the spec; it throws std::invalid_argument for bad keys, and build_model puts
// the JSON path in front. Registering a name again replaces the builder; a built-in
// layer's name cannot be taken.
using ModelTypeBuilder = std::function<std::shared_ptr<Module>(const nlohmann::json& spec, DType dtype)>;
void register_model_type(const std::string& name, ModelTypeBuilder builder);

}  // namespace symgrad::nn
