#pragma once
// Seedable random numbers that are the same on every machine.
//
// std::mt19937 is portable but std::uniform_real_distribution and
// std::normal_distribution are not (each standard library is free to implement them
// differently), so symgrad draws its own: a PCG32 stream, 53-bit (or 24-bit) uniform
// floats from it, and Box-Muller normals.
#include <cstdint>

#include "engine/tensor.hpp"

namespace symgrad {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0x853c49e6748fea9bULL, std::uint64_t stream = 0xda3e39cb94b95bdbULL);
  std::uint32_t next_u32();
  double uniform();        // [0, 1), 53 random bits
  float uniform_float();   // [0, 1), 24 random bits
  double normal();         // standard normal (Box-Muller, caches the second value)
  std::uint64_t below(std::uint64_t n);  // uniform integer in [0, n), unbiased

 private:
  std::uint64_t state_ = 0, inc_ = 0;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// Uniform on [low, high) and normal(mean, std), drawn in row-major order.
Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype = DType::f32);
Tensor normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype = DType::f32);
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::f32);   // uniform [0, 1)
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32);  // normal(0, 1)

}  // namespace symgrad
