#include "nn/architecture.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "nn/layers/activation.hpp"
#include "nn/layers/batchnorm.hpp"
#include "nn/layers/conv2d.hpp"
#include "nn/layers/dropout.hpp"
#include "nn/layers/flatten.hpp"
#include "nn/layers/layernorm.hpp"
#include "nn/layers/linear.hpp"
#include "nn/layers/pool.hpp"

namespace symgrad::nn {
namespace {

using json = nlohmann::json;

// A JSON value for an error message, cut short if long.
std::string quoted(const json& value) {
  std::string s = value.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string layer_path(const std::string& parent, std::size_t index) {
  return (parent.empty() ? "" : parent + ".") + "layers[" + std::to_string(index) + "]";
}

// What the builders share while walking the spec.
struct BuildContext {
  DType dtype = DType::f32;
  std::uint64_t dropouts_built = 0;  // Dropout's default seed
};

// One layer object of the spec and where it is, with typed readers that check each value
// and complain in the build_model format: "build_model: <path> (<type>): <message>".
class LayerSpec {
 public:
  LayerSpec(const json& object, std::string path, std::string type)
      : object_(object), path_(std::move(path)), type_(std::move(type)) {}

  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& message) const {
    throw std::invalid_argument("build_model: " + (path_.empty() ? std::string("the top level") : path_) + " (" +
                                type_ + "): " + message);
  }

  // Every key but "type" must be one of `keys`.
  void allow_only(const std::vector<std::string>& keys) const {
    for (const auto& [key, value] : object_.items()) {
      if (key == "type" || std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
      std::string known;
      for (const std::string& k : keys) known += (known.empty() ? "" : ", ") + k;
      fail("unknown key \"" + key + "\" (" + (known.empty() ? "this type takes no keys" : "known keys: " + known) +
           ")");
    }
  }

  const json& required(const char* key) const {
    if (!object_.contains(key)) fail(std::string("missing key \"") + key + "\"");
    return object_.at(key);
  }

  // The readers without a fallback require the key; integers must be >= minimum.
  std::int64_t integer(const char* key, std::int64_t minimum) const {
    return checked_integer(key, required(key), minimum);
  }
  std::int64_t integer_or(const char* key, std::int64_t minimum, std::int64_t fallback) const {
    return object_.contains(key) ? checked_integer(key, object_.at(key), minimum) : fallback;
  }

  // A number n (meaning n x n) or a pair [h, w].
  std::pair<std::int64_t, std::int64_t> integer_pair(const char* key, std::int64_t minimum) const {
    return checked_pair(key, required(key), minimum);
  }
  std::pair<std::int64_t, std::int64_t> integer_pair_or(const char* key, std::int64_t minimum,
                                                        std::int64_t fallback) const {
    return object_.contains(key) ? checked_pair(key, object_.at(key), minimum) : std::pair{fallback, fallback};
  }

  double number_or(const char* key, double fallback) const {
    if (!object_.contains(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_number()) fail(std::string("\"") + key + "\" must be a number, got " + quoted(v));
    return v.get<double>();
  }

  bool boolean_or(const char* key, bool fallback) const {
    if (!object_.contains(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_boolean()) fail(std::string("\"") + key + "\" must be true or false, got " + quoted(v));
    return v.get<bool>();
  }

  std::string string_or(const char* key, const std::string& fallback) const {
    if (!object_.contains(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_string()) fail(std::string("\"") + key + "\" must be a string, got " + quoted(v));
    return v.get<std::string>();
  }

 private:
  std::int64_t checked_integer(const std::string& what, const json& v, std::int64_t minimum) const {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX))
      fail("\"" + what + "\" must be an integer, got " + quoted(v));
    const auto n = v.get<std::int64_t>();
    if (n < minimum)
      fail("\"" + what + "\" must be " + (minimum == 1 ? "positive" : ">= " + std::to_string(minimum)) + ", got " +
           std::to_string(n));
    return n;
  }

  std::pair<std::int64_t, std::int64_t> checked_pair(const char* key, const json& v, std::int64_t minimum) const {
    if (v.is_array()) {
      if (v.size() != 2) fail(std::string("\"") + key + "\" must be a number or a pair [h, w], got " + quoted(v));
      return {checked_integer(std::string(key) + "[0]", v[0], minimum),
              checked_integer(std::string(key) + "[1]", v[1], minimum)};
    }
    const std::int64_t n = checked_integer(key, v, minimum);
    return {n, n};
  }

  const json& object_;
  std::string path_, type_;
};

// Types added from above nn (register_model_type).
std::map<std::string, ModelTypeBuilder>& registered_types() {
  static std::map<std::string, ModelTypeBuilder> table;
  return table;
}

std::shared_ptr<Module> build_layer(const json& spec, const std::string& path, BuildContext& context);

PadMode pad_mode_named(const LayerSpec& s, const std::string& name) {
  for (PadMode m : {PadMode::zeros, PadMode::reflect, PadMode::replicate, PadMode::circular})
    if (name == pad_mode_name(m)) return m;
  s.fail("\"padding_mode\" must be \"zeros\", \"reflect\", \"replicate\" or \"circular\", got \"" + name + "\"");
}

std::shared_ptr<Module> sequential(const LayerSpec& s, BuildContext& context) {
  s.allow_only({"layers"});
  const json& layers = s.required("layers");
  if (!layers.is_array()) s.fail("\"layers\" must be an array of layer objects, got " + quoted(layers));
  auto model = std::make_shared<Sequential>();
  for (std::size_t i = 0; i < layers.size(); ++i)
    model->push_back(build_layer(layers[i], layer_path(s.path(), i), context));
  return model;
}

std::shared_ptr<Module> linear(const LayerSpec& s, BuildContext& context) {
  s.allow_only({"in", "out", "bias"});
  return std::make_shared<Linear>(s.integer("in", 1), s.integer("out", 1), s.boolean_or("bias", true), context.dtype);
}

std::shared_ptr<Module> conv2d(const LayerSpec& s, BuildContext& context) {
  s.allow_only({"in", "out", "kernel", "stride", "padding", "dilation", "groups", "bias", "padding_mode"});
  Conv2dConfig c;
  c.in_channels = s.integer("in", 1);
  c.out_channels = s.integer("out", 1);
  std::tie(c.kernel_h, c.kernel_w) = s.integer_pair("kernel", 1);
  std::tie(c.stride_h, c.stride_w) = s.integer_pair_or("stride", 1, 1);
  std::tie(c.padding_h, c.padding_w) = s.integer_pair_or("padding", 0, 0);
  std::tie(c.dilation_h, c.dilation_w) = s.integer_pair_or("dilation", 1, 1);
  c.groups = s.integer_or("groups", 1, 1);
  c.bias = s.boolean_or("bias", true);
  c.padding_mode = pad_mode_named(s, s.string_or("padding_mode", "zeros"));
  c.dtype = context.dtype;
  return std::make_shared<Conv2d>(c);
}

template <class Norm>
std::shared_ptr<Module> batch_norm(const LayerSpec& s, BuildContext& context) {
  s.allow_only({"features", "eps", "momentum", "affine", "track_running_stats"});
  BatchNormOptions o;
  o.eps = s.number_or("eps", o.eps);
  o.momentum = s.number_or("momentum", o.momentum);
  o.affine = s.boolean_or("affine", o.affine);
  o.track_running_stats = s.boolean_or("track_running_stats", o.track_running_stats);
  o.dtype = context.dtype;
  return std::make_shared<Norm>(s.integer("features", 1), o);
}

std::shared_ptr<Module> layer_norm(const LayerSpec& s, BuildContext& context) {
  s.allow_only({"shape", "eps", "elementwise_affine"});
  const json& v = s.required("shape");
  Shape shape;
  if (v.is_array()) {
    if (v.empty()) s.fail("\"shape\" must name at least one axis, got []");
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number_integer() || v[i].get<std::int64_t>() <= 0)
        s.fail("\"shape\"[" + std::to_string(i) + "] must be a positive integer, got " + quoted(v[i]));
      shape.push_back(v[i].get<std::int64_t>());
    }
  } else {
    shape.push_back(s.integer("shape", 1));
  }
  return std::make_shared<LayerNorm>(shape, s.number_or("eps", 1e-5), s.boolean_or("elementwise_affine", true),
                                     context.dtype);
}

// Layers with nothing to configure: the activations and GlobalAvgPool2d.
template <class Layer>
std::shared_ptr<Module> without_keys(const LayerSpec& s, BuildContext&) {
  s.allow_only({});
  return std::make_shared<Layer>();
}

std::shared_ptr<Module> softplus(const LayerSpec& s, BuildContext&) {
  s.allow_only({"beta", "threshold"});
  return std::make_shared<Softplus>(s.number_or("beta", 1.0), s.number_or("threshold", 20.0));
}

template <class Pool>
std::shared_ptr<Module> pool(const LayerSpec& s, BuildContext&) {
  s.allow_only({"kernel", "stride", "padding"});
  const std::int64_t kernel = s.integer("kernel", 1);
  return std::make_shared<Pool>(kernel, s.integer_or("stride", 1, kernel), s.integer_or("padding", 0, 0));
}

std::shared_ptr<Module> dropout(const LayerSpec& s, BuildContext& context) {
  s.allow_only({"p", "seed"});
  const auto default_seed = static_cast<std::int64_t>(context.dropouts_built);
  const auto seed = static_cast<std::uint64_t>(s.integer_or("seed", 0, default_seed));
  ++context.dropouts_built;
  return std::make_shared<Dropout>(s.number_or("p", 0.5), seed);
}

std::shared_ptr<Module> flatten_layer(const LayerSpec& s, BuildContext&) {
  s.allow_only({"start_axis"});
  return std::make_shared<Flatten>(s.integer_or("start_axis", INT64_MIN, 1));
}

using Builder = std::function<std::shared_ptr<Module>(const LayerSpec&, BuildContext&)>;

const std::map<std::string, Builder>& builders() {
  static const std::map<std::string, Builder> table{
      {"Sequential", sequential},
      {"Linear", linear},
      {"Conv2d", conv2d},
      {"BatchNorm1d", batch_norm<BatchNorm1d>},
      {"BatchNorm2d", batch_norm<BatchNorm2d>},
      {"LayerNorm", layer_norm},
      {"ReLU", without_keys<ReLU>},
      {"GELU", without_keys<GELU>},
      {"Tanh", without_keys<Tanh>},
      {"Sigmoid", without_keys<Sigmoid>},
      {"SiLU", without_keys<SiLU>},
      {"Softplus", softplus},
      {"MaxPool2d", pool<MaxPool2d>},
      {"AvgPool2d", pool<AvgPool2d>},
      {"GlobalAvgPool2d", without_keys<GlobalAvgPool2d>},
      {"Dropout", dropout},
      {"Flatten", flatten_layer},
  };
  return table;
}

std::shared_ptr<Module> build_layer(const json& spec, const std::string& path, BuildContext& context) {
  const std::string where = path.empty() ? "the top level" : path;
  if (!spec.is_object())
    throw std::invalid_argument("build_model: " + where + " must be a layer object such as {\"type\": \"ReLU\"}, got " +
                                quoted(spec));
  if (!spec.contains("type") || !spec.at("type").is_string())
    throw std::invalid_argument("build_model: " + where + " needs a \"type\" string, got " + quoted(spec));
  const std::string type = spec.at("type").get<std::string>();
  const auto builder = builders().find(type);
  const auto registered = registered_types().find(type);
  if (builder == builders().end() && registered != registered_types().end()) {
    try {
      return registered->second(spec, context.dtype);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("build_model: " + where + " (" + type + "): " + e.what());
    }
  }
  if (builder == builders().end()) {
    std::string known;
    for (const std::string& name : model_layer_types()) known += (known.empty() ? "" : ", ") + name;
    throw std::invalid_argument("build_model: " + where + ": unknown type \"" + type + "\" (known types: " + known +
                                ")");
  }
  const LayerSpec layer(spec, path, type);
  // A layer's own complaint (groups not dividing the channels, p out of range, ...) gets
  // the path in front; a nested layer's error already carries its own.
  try {
    return builder->second(layer, context);
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).rfind("build_model: ", 0) == 0) throw;
    layer.fail(e.what());
  }
}

}  // namespace

std::vector<std::string> model_layer_types() {
  std::map<std::string, bool> names;
  for (const auto& [name, builder] : builders()) names[name] = true;
  for (const auto& [name, builder] : registered_types()) names[name] = true;
  std::vector<std::string> sorted;
  for (const auto& [name, present] : names) sorted.push_back(name);
  return sorted;  // std::map keeps them sorted
}

void register_model_type(const std::string& name, ModelTypeBuilder builder) {
  if (builders().count(name) != 0)
    throw std::invalid_argument("register_model_type: \"" + name + "\" is a built-in layer type");
  if (!builder) throw std::invalid_argument("register_model_type: \"" + name + "\" needs a builder");
  registered_types()[name] = std::move(builder);
}

std::shared_ptr<Module> build_model(const json& spec) {
  BuildContext context;
  if (!spec.is_object() || !spec.contains("dtype")) return build_layer(spec, "", context);
  const json& dtype = spec.at("dtype");
  if (dtype == "float32") context.dtype = DType::f32;
  else if (dtype == "float64") context.dtype = DType::f64;
  else throw std::invalid_argument("build_model: \"dtype\" must be \"float32\" or \"float64\", got " + quoted(dtype));
  json rest = spec;
  rest.erase("dtype");
  return build_layer(rest, "", context);
}

}  // namespace symgrad::nn
