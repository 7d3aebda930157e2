#pragma once
// The committed reference files in tests/data/ (PyTorch 1.13 values written by the
// scripts in tools/), read once per test program, and the one tensor encoding they
// share: {"shape": [...], "values": [...]} with the values in float64.
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"

namespace symgrad::testing {

// tests/data/<file>, parsed; `script` is what writes it (named in the error if missing).
inline const nlohmann::json& reference_data(const std::string& file, const std::string& script) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(file);
  if (it == cache.end()) {
    const std::string path = std::string(SYMGRAD_TEST_DATA_DIR) + "/" + file;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path + " (written by " + script + ")");
    it = cache.emplace(file, nlohmann::json::parse(in)).first;
  }
  return it->second;
}

// A stored tensor in the requested dtype; shape [] is a scalar.
inline Tensor tensor_from_json(const nlohmann::json& packed, DType dtype) {
  const auto shape = packed.at("shape").get<Shape>();
  const auto values = packed.at("values").get<std::vector<double>>();
  if (shape.empty()) return scalar(values.at(0), dtype);
  return from_vector(values, shape, dtype);
}

}  // namespace symgrad::testing
