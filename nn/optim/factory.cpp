#include "nn/optim/factory.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "nn/optim/adam.hpp"
#include "nn/optim/sgd.hpp"

namespace symgrad::nn {

namespace {

// Reads one JSON spec object for `where` ("make_optimizer" or "make_schedule"):
// the type, typed values with defaults, and a check that no other key is present.
class SpecReader {
 public:
  SpecReader(const char* where, const nlohmann::json& spec) : where_(where), spec_(spec) {
    if (!spec.is_object())
      throw std::invalid_argument(where_ + ": the spec must be a JSON object, got " + spec.dump());
    if (!spec.contains("type") || !spec.at("type").is_string())
      throw std::invalid_argument(where_ + ": the spec needs a \"type\" string, got " + spec.dump());
    type_ = spec.at("type").get<std::string>();
  }

  const std::string& type() const { return type_; }

  [[noreturn]] void unknown_type(const char* expected) const {
    throw std::invalid_argument(where_ + ": unknown type \"" + type_ + "\" (expected " + expected + ")");
  }

  bool has(const char* key) const { return spec_.contains(key); }

  double number(const char* key, double fallback) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number()) throw bad_value(key, "a number", *v);
    return v->get<double>();
  }
  double required_number(const char* key) {
    if (!has(key)) throw missing(key);
    return number(key, 0.0);
  }
  std::int64_t integer(const char* key, std::int64_t fallback) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number_integer()) throw bad_value(key, "an integer", *v);
    return v->get<std::int64_t>();
  }
  std::int64_t required_integer(const char* key) {
    if (!has(key)) throw missing(key);
    return integer(key, 0);
  }
  bool boolean(const char* key, bool fallback) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) throw bad_value(key, "true or false", *v);
    return v->get<bool>();
  }
  // Two numbers, e.g. "betas": [0.9, 0.999].
  std::pair<double, double> pair(const char* key, std::pair<double, double> fallback) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_array() || v->size() != 2 || !(*v)[0].is_number() || !(*v)[1].is_number())
      throw bad_value(key, "a list of two numbers", *v);
    return {(*v)[0].get<double>(), (*v)[1].get<double>()};
  }

  // Throws for the first key no reader asked for.
  void reject_unread() const {
    for (const auto& item : spec_.items()) {
      if (item.key() == "type" || std::find(read_.begin(), read_.end(), item.key()) != read_.end())
        continue;
      std::string allowed = "type";
      for (const std::string& key : read_) allowed += ", " + key;
      throw std::invalid_argument(where_ + ": unknown key \"" + item.key() + "\" for type \"" + type_ +
                                  "\" (allowed: " + allowed + ")");
    }
  }

 private:
  const nlohmann::json* find(const char* key) {
    read_.emplace_back(key);
    return spec_.contains(key) ? &spec_.at(key) : nullptr;
  }
  std::invalid_argument bad_value(const char* key, const char* expected, const nlohmann::json& v) const {
    return std::invalid_argument(where_ + ": \"" + key + "\" must be " + expected + ", got " + v.dump());
  }
  std::invalid_argument missing(const char* key) const {
    return std::invalid_argument(where_ + ": \"" + key + "\" is required for type \"" + type_ + "\"");
  }

  std::string where_;
  const nlohmann::json& spec_;
  std::string type_;
  std::vector<std::string> read_;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& spec, std::vector<Tensor> params) {
  SpecReader r("make_optimizer", spec);
  if (r.type() == "sgd") {
    SGDOptions o;
    o.lr = r.required_number("lr");
    o.momentum = r.number("momentum", o.momentum);
    o.dampening = r.number("dampening", o.dampening);
    o.nesterov = r.boolean("nesterov", o.nesterov);
    o.weight_decay = r.number("weight_decay", o.weight_decay);
    r.reject_unread();
    return std::make_unique<SGD>(std::move(params), o);
  }
  if (r.type() == "adam" || r.type() == "adamw") {
    const bool decoupled = r.type() == "adamw";
    AdamOptions o = decoupled ? AdamW::default_options() : AdamOptions{};
    o.lr = r.number("lr", o.lr);
    std::tie(o.beta1, o.beta2) = r.pair("betas", {o.beta1, o.beta2});
    o.eps = r.number("eps", o.eps);
    o.weight_decay = r.number("weight_decay", o.weight_decay);
    r.reject_unread();
    if (decoupled) return std::make_unique<AdamW>(std::move(params), o);
    return std::make_unique<Adam>(std::move(params), o);
  }
  r.unknown_type("\"sgd\", \"adam\" or \"adamw\"");
}

std::unique_ptr<LRSchedule> make_schedule(const nlohmann::json& spec, double base_lr,
                                          std::int64_t total_steps) {
  if (spec.is_null()) return std::make_unique<ConstantLR>(base_lr);
  SpecReader r("make_schedule", spec);
  if (r.type() == "onecycle") {
    if (r.has("warmup_steps") || r.has("warmup_start_factor"))
      throw std::invalid_argument(
          "make_schedule: type \"onecycle\" rises by itself (pct_start); it takes no \"warmup_steps\" "
          "or \"warmup_start_factor\"");
    const double max_lr = r.number("max_lr", base_lr);
    const double pct_start = r.number("pct_start", 0.3);
    const double div_factor = r.number("div_factor", 25.0);
    const double final_div_factor = r.number("final_div_factor", 1e4);
    r.reject_unread();
    return std::make_unique<OneCycleLR>(max_lr, total_steps, pct_start, div_factor, final_div_factor);
  }
  const std::int64_t warmup_steps = r.integer("warmup_steps", 0);
  const double start_factor = r.number("warmup_start_factor", 1.0 / 3.0);
  if (warmup_steps < 0)
    throw std::invalid_argument("make_schedule: \"warmup_steps\" must be >= 0, got " +
                                std::to_string(warmup_steps));
  std::unique_ptr<LRSchedule> schedule;
  if (r.type() == "constant") {
    r.reject_unread();
    schedule = std::make_unique<ConstantLR>(base_lr);
  } else if (r.type() == "step") {
    const std::int64_t step_size = r.required_integer("step_size");
    const double gamma = r.number("gamma", 0.1);
    r.reject_unread();
    schedule = std::make_unique<StepLR>(base_lr, step_size, gamma);
  } else if (r.type() == "cosine") {
    const double min_lr = r.number("min_lr", 0.0);
    r.reject_unread();
    if (total_steps - warmup_steps < 1)
      throw std::invalid_argument("make_schedule: a cosine schedule of " + std::to_string(total_steps) +
                                  " steps leaves none after " + std::to_string(warmup_steps) +
                                  " warm-up steps");
    schedule = std::make_unique<CosineLR>(base_lr, total_steps - warmup_steps, min_lr);
  } else {
    r.unknown_type("\"constant\", \"step\", \"cosine\" or \"onecycle\"");
  }
  if (warmup_steps == 0) return schedule;
  return std::make_unique<LinearWarmup>(std::move(schedule), warmup_steps, start_factor);
}

}  // namespace symgrad::nn
