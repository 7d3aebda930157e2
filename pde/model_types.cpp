// pde's models as JSON: pde_resnet_config_from_json (declared in pde_resnet.hpp) and the
// registration of "PDEResNet" with nn::build_model.
#include "pde/model_types.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "nn/architecture.hpp"
#include "pde/pde_resnet.hpp"

namespace symgrad::pde {
namespace {

using json = nlohmann::json;

const std::vector<std::string>& known_keys() {
  static const std::vector<std::string> keys = {
      "type", "preset", "block", "in_channels", "num_classes", "stem_channels", "stem_kernel",
      "stem_stride", "stem_relu", "stem_max_pool", "stages", "width_factor", "stage_entry_hardball",
      "variable_coefficients", "head_hardball", "head_radius", "padding_mode", "zero_init_last_bn",
      "bn_eps", "bn_momentum"};
  return keys;
}

std::string quoted(const json& value) {
  std::string s = value.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument("PDEResNet: " + message); }

// Typed readers: each leaves `target` alone when the key is absent.
class ConfigReader {
 public:
  explicit ConfigReader(const json& spec) : spec_(spec) {}

  void integer(const char* key, std::int64_t minimum, std::int64_t& target) const {
    if (spec_.contains(key)) target = checked_integer(key, spec_.at(key), minimum);
  }
  void boolean(const char* key, bool& target) const {
    if (!spec_.contains(key)) return;
    const json& v = spec_.at(key);
    if (!v.is_boolean()) fail(std::string("\"") + key + "\" must be true or false, got " + quoted(v));
    target = v.get<bool>();
  }
  // A finite number; positive if `positive`, otherwise >= 0.
  void number(const char* key, bool positive, double& target) const {
    if (!spec_.contains(key)) return;
    const json& v = spec_.at(key);
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0 ||
        (positive && v.get<double>() == 0))
      fail(std::string("\"") + key + "\" must be a " + (positive ? "positive" : "non-negative") +
           " number, got " + quoted(v));
    target = v.get<double>();
  }
  // One of `names`, as a string; returns its index, or -1 when the key is absent.
  int choice(const char* key, const std::vector<std::string>& names) const {
    if (!spec_.contains(key)) return -1;
    const json& v = spec_.at(key);
    const auto found = v.is_string() ? std::find(names.begin(), names.end(), v.get<std::string>()) : names.end();
    if (found == names.end()) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "\"" : ", \"") + n + "\"";
      fail(std::string("\"") + key + "\" must be one of " + list + ", got " + quoted(v));
    }
    return static_cast<int>(found - names.begin());
  }
  // [[channels, blocks, stride], ...], at least one stage.
  void stages(std::vector<StageConfig>& target) const {
    if (!spec_.contains("stages")) return;
    const json& v = spec_.at("stages");
    if (!v.is_array() || v.empty())
      fail("\"stages\" must be a non-empty array of [channels, blocks, stride], got " + quoted(v));
    std::vector<StageConfig> parsed;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string where = "stages[" + std::to_string(i) + "]";
      if (!v[i].is_array() || v[i].size() != 3)
        fail("\"" + where + "\" must be [channels, blocks, stride], got " + quoted(v[i]));
      parsed.push_back({checked_integer(where + "[0] (channels)", v[i][0], 1),
                        checked_integer(where + "[1] (blocks)", v[i][1], 1),
                        checked_integer(where + "[2] (stride)", v[i][2], 1)});
    }
    target = std::move(parsed);
  }

 private:
  static std::int64_t checked_integer(const std::string& what, const json& v, std::int64_t minimum) {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX))
      fail("\"" + what + "\" must be an integer, got " + quoted(v));
    const auto n = v.get<std::int64_t>();
    if (n < minimum)
      fail("\"" + what + "\" must be " + (minimum == 1 ? "positive" : ">= " + std::to_string(minimum)) +
           ", got " + std::to_string(n));
    return n;
  }

  const json& spec_;
};

}  // namespace

PDEResNetConfig pde_resnet_config_from_json(const json& spec, DType dtype) {
  if (!spec.is_object()) fail("the spec must be a JSON object, got " + quoted(spec));
  for (const auto& [key, value] : spec.items()) {
    if (std::find(known_keys().begin(), known_keys().end(), key) != known_keys().end()) continue;
    std::string known;
    for (const std::string& k : known_keys()) known += (known.empty() ? "" : ", ") + k;
    fail("unknown key \"" + key + "\" (known keys: " + known + ")");
  }

  // A preset, then the overrides; without a preset the defaults of PDEResNetConfig, which
  // have no stages, so "stages" must be given.
  PDEResNetConfig config;
  if (spec.contains("preset")) {
    const json& name = spec.at("preset");
    if (!name.is_string()) fail("\"preset\" must be a string (\"B\", \"G\", \"imagenet\"), got " + quoted(name));
    try {
      config = preset(name.get<std::string>());
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  } else if (!spec.contains("stages")) {
    fail("needs a \"preset\" (\"B\", \"G\", \"imagenet\") or \"stages\"");
  }

  const ConfigReader read(spec);
  if (const int kind = read.choice("block", {"quasi_linear", "basic"}); kind >= 0)
    config.block = kind == 0 ? BlockKind::quasi_linear : BlockKind::basic;
  read.integer("in_channels", 1, config.in_channels);
  read.integer("num_classes", 1, config.num_classes);
  read.integer("stem_channels", 1, config.stem_channels);
  read.integer("stem_kernel", 1, config.stem_kernel);
  read.integer("stem_stride", 1, config.stem_stride);
  read.boolean("stem_relu", config.stem_relu);
  read.boolean("stem_max_pool", config.stem_max_pool);
  read.stages(config.stages);
  read.integer("width_factor", 0, config.width_factor);
  read.boolean("stage_entry_hardball", config.stage_entry_hardball);
  read.boolean("variable_coefficients", config.variable_coefficients);
  read.boolean("head_hardball", config.head_hardball);
  read.number("head_radius", /*positive=*/false, config.head_radius);
  constexpr PadMode kModes[] = {PadMode::zeros, PadMode::reflect, PadMode::replicate, PadMode::circular};
  if (const int mode = read.choice("padding_mode", {"zeros", "reflect", "replicate", "circular"}); mode >= 0)
    config.padding_mode = kModes[mode];
  read.boolean("zero_init_last_bn", config.zero_init_last_bn);
  read.number("bn_eps", /*positive=*/true, config.batch_norm.eps);
  read.number("bn_momentum", /*positive=*/false, config.batch_norm.momentum);
  if (config.batch_norm.momentum > 1)
    fail("\"bn_momentum\" must be in [0, 1], got " + std::to_string(config.batch_norm.momentum));
  config.dtype = dtype;
  config.batch_norm.dtype = dtype;
  return config;
}

void register_model_types() {
  nn::register_model_type("PDEResNet", [](const json& spec, DType dtype) -> std::shared_ptr<nn::Module> {
    return std::make_shared<PDEResNet>(pde_resnet_config_from_json(spec, dtype));
  });
}

}  // namespace symgrad::pde
