#include "config.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace symgrad::cli {

namespace {
using nlohmann::json;

// Reads the keys of one JSON object, naming "<prefix><key>" in every complaint, and
// rejects keys nobody asked for.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string source, std::string prefix, std::vector<std::string> known)
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)), known_(std::move(known)) {
    if (!object_.is_object())
      fail(prefix_.empty() ? "the config must be a JSON object" : prefix_.substr(0, prefix_.size() - 1) +
                                                                      " must be a JSON object, got " + object_.dump());
    for (const auto& item : object_.items()) {
      bool ok = false;
      for (const std::string& k : known_) ok = ok || k == item.key();
      if (!ok) {
        std::string list;
        for (const std::string& k : known_) list += (list.empty() ? "" : ", ") + k;
        fail("unknown key \"" + prefix_ + item.key() + "\" (known keys: " + list + ")");
      }
    }
  }

  bool has(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }
  const json& at(const char* key) const { return object_.at(key); }

  json required(const char* key) const {
    if (!object_.contains(key)) fail("missing key \"" + prefix_ + key + "\"");
    return object_.at(key);
  }
  std::int64_t integer(const char* key, std::int64_t fallback, std::int64_t min) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < min)
      fail(prefix_ + key + " must be an integer >= " + std::to_string(min) + ", got " + v.dump());
    return v.get<std::int64_t>();
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_number()) fail(prefix_ + key + " must be a number, got " + v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_boolean()) fail(prefix_ + key + " must be true or false, got " + v.dump());
    return v.get<bool>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    const json& v = at(key);
    if (!v.is_string()) fail(prefix_ + key + " must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw std::invalid_argument("config " + source_ + ": " + message);
  }

 private:
  const json& object_;
  std::string source_, prefix_;
  std::vector<std::string> known_;
};

DataConfig parse_data(const json& j, const std::string& source) {
  const ObjectReader r(j, source, "data.",
                       {"dataset", "dir", "batch_size", "test_batch_size", "mean", "std", "crop_padding",
                        "horizontal_flip"});
  DataConfig d;
  d.dataset = r.text("dataset", d.dataset);
  if (d.dataset != "fashion-mnist")
    r.fail("data.dataset \"" + d.dataset + "\" is not known (known: \"fashion-mnist\")");
  d.dir = r.text("dir", d.dir);
  d.batch_size = r.integer("batch_size", d.batch_size, 1);
  d.test_batch_size = r.integer("test_batch_size", d.test_batch_size, 1);
  d.mean = r.number("mean", d.mean);
  d.std = r.number("std", d.std);
  if (!(d.std > 0.0)) r.fail("data.std must be > 0, got " + std::to_string(d.std));
  d.crop_padding = r.integer("crop_padding", d.crop_padding, 0);
  d.horizontal_flip = r.boolean("horizontal_flip", d.horizontal_flip);
  return d;
}
}  // namespace

RunConfig parse_config(const json& j, const std::string& source) {
  const ObjectReader r(j, source, "",
                       {"model", "optimizer", "schedule", "data", "epochs", "seed", "threads", "dtype", "out_dir",
                        "label_smoothing", "clip_grad_norm", "log_every_steps"});
  RunConfig c;
  c.model = r.required("model");
  c.optimizer = r.required("optimizer");
  if (!c.model.is_object()) r.fail("model must be a JSON object (a build_model spec), got " + c.model.dump());
  if (!c.optimizer.is_object())
    r.fail("optimizer must be a JSON object (a make_optimizer spec), got " + c.optimizer.dump());
  c.schedule = r.has("schedule") ? r.at("schedule") : json();
  c.data = parse_data(r.has("data") ? r.at("data") : json::object(), source);
  c.epochs = r.integer("epochs", c.epochs, 1);
  c.seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0));
  c.threads = static_cast<int>(r.integer("threads", 0, 0));
  const std::string dtype = r.text("dtype", "float32");
  if (dtype != "float32" && dtype != "float64") r.fail("dtype must be \"float32\" or \"float64\", got \"" + dtype + "\"");
  c.dtype = dtype == "float32" ? DType::f32 : DType::f64;
  c.out_dir = r.text("out_dir", "");
  c.label_smoothing = r.number("label_smoothing", 0.0);
  if (!(c.label_smoothing >= 0.0 && c.label_smoothing <= 1.0))
    r.fail("label_smoothing must be in [0, 1], got " + std::to_string(c.label_smoothing));
  c.clip_grad_norm = r.number("clip_grad_norm", 0.0);
  if (!(c.clip_grad_norm >= 0.0)) r.fail("clip_grad_norm must be > 0 (or 0 / null: off)");
  c.log_every_steps = r.integer("log_every_steps", 0, 0);
  return c;
}

RunConfig load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("config " + path + ": cannot open the file");
  json j;
  try {
    j = json::parse(in, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    throw std::runtime_error("config " + path + ": not valid JSON: " + e.what());
  }
  RunConfig c = parse_config(j, path);
  if (c.out_dir.empty()) c.out_dir = (std::filesystem::path("runs") / std::filesystem::path(path).stem()).string();
  return c;
}

json to_json(const RunConfig& c) {
  return {{"model", c.model},
          {"optimizer", c.optimizer},
          {"schedule", c.schedule},
          {"data",
           {{"dataset", c.data.dataset},
            {"dir", c.data.dir},
            {"batch_size", c.data.batch_size},
            {"test_batch_size", c.data.test_batch_size},
            {"mean", c.data.mean},
            {"std", c.data.std},
            {"crop_padding", c.data.crop_padding},
            {"horizontal_flip", c.data.horizontal_flip}}},
          {"epochs", c.epochs},
          {"seed", c.seed},
          {"threads", c.threads},
          {"dtype", dtype_name(c.dtype)},
          {"out_dir", c.out_dir},
          {"label_smoothing", c.label_smoothing},
          {"clip_grad_norm", c.clip_grad_norm > 0.0 ? json(c.clip_grad_norm) : json()},
          {"log_every_steps", c.log_every_steps}};
}

}  // namespace symgrad::cli
