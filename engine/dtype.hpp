#pragma once
// The two element types symgrad computes in, and how code picks one at run time.
#include <cstddef>
#include <cstdint>
#include <string>

namespace symgrad {

enum class DType : std::uint8_t { f32, f64 };

constexpr std::size_t dtype_size(DType d) { return d == DType::f32 ? 4 : 8; }
constexpr const char* dtype_name(DType d) { return d == DType::f32 ? "float32" : "float64"; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }

// Calls fn(T{}) with T = float or double according to d. Every kernel entry point
// uses this, so the dtype switch is written once.
template <class Fn>
decltype(auto) dispatch_dtype(DType d, Fn&& fn) {
  if (d == DType::f32) return fn(float{});
  return fn(double{});
}

}  // namespace symgrad
