#pragma once
// Small helpers shared by the test files: closeness checks with readable failures,
// seeded random inputs, and gradcheck assertions.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "engine/engine.hpp"

namespace symgrad::testing {

// Every element: |actual - expected| <= atol + rtol * |expected| (NaN matches NaN).
inline void require_allclose(const Tensor& actual, const std::vector<double>& expected,
                             double rtol = 1e-6, double atol = 1e-9) {
  const std::vector<double> a = actual.to_vector();
  REQUIRE(a.size() == expected.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool both_nan = std::isnan(a[i]) && std::isnan(expected[i]);
    const bool same_inf = std::isinf(a[i]) && a[i] == expected[i];
    if (both_nan || same_inf) continue;
    if (!(std::abs(a[i] - expected[i]) <= atol + rtol * std::abs(expected[i]))) {
      std::ostringstream os;
      os.precision(17);
      os << "element " << i << ": got " << a[i] << ", expected " << expected[i];
      FAIL(os.str());
    }
  }
}

inline void require_allclose(const Tensor& actual, const Tensor& expected, double rtol = 1e-6,
                             double atol = 1e-9) {
  REQUIRE(actual.shape() == expected.shape());
  require_allclose(actual, expected.to_vector(), rtol, atol);
}

// Uniform values in [low, high), float64 by default, as a leaf that requires grad.
inline Tensor random_input(const Shape& shape, std::uint64_t seed, double low = -1.0,
                           double high = 1.0, DType dtype = DType::f64) {
  Generator gen(seed);
  return uniform(shape, low, high, gen, dtype).requires_grad_();
}

}  // namespace symgrad::testing

// Asserts gradcheck / gradgradcheck pass, printing their report when they do not.
#define REQUIRE_GRADCHECK(fn, inputs)                          \
  do {                                                         \
    auto symgrad_gc_ = ::symgrad::gradcheck((fn), (inputs));   \
    INFO(symgrad_gc_.message);                                 \
    REQUIRE(symgrad_gc_.ok);                                   \
  } while (0)
#define REQUIRE_GRADGRADCHECK(fn, inputs)                          \
  do {                                                             \
    auto symgrad_gc_ = ::symgrad::gradgradcheck((fn), (inputs));   \
    INFO(symgrad_gc_.message);                                     \
    REQUIRE(symgrad_gc_.ok);                                       \
  } while (0)
