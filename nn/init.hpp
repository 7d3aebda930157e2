#pragma once
// Parameter initialisers: fill an existing tensor in place with values whose scale keeps
// activations and gradients from growing or vanishing through many layers.
//
// Each random initialiser takes an optional Generator; without one it draws from
// default_generator(), which manual_seed() reseeds. Values are drawn in float64 and then
// stored in the tensor's dtype, so one seed gives the same weights (up to rounding) in
// float32 and float64. They write under a NoGradGuard: parameters may be passed as is.
//
// Fans follow PyTorch: for a weight [out, in, k1, k2, ...] (Linear's [out, in], Conv2d's
// [out, in / groups, kh, kw]), fan_in = in * k1 * k2 * ... and fan_out = out * k1 * k2 * ...
#include <cstdint>

#include "engine/engine.hpp"

namespace symgrad::nn {

// The process-wide generator used when no generator is given (layers' default init
// included). Not synchronised: initialise models from one thread.
Generator& default_generator();
// Reseeds default_generator(): models built after the same seed are identical.
void manual_seed(std::uint64_t seed);

enum class Nonlinearity { linear, relu, leaky_relu, tanh, sigmoid };
enum class FanMode { fan_in, fan_out };

// The factor by which a nonlinearity shrinks the variance of its input is 1 / gain^2:
// linear 1, relu sqrt 2, leaky_relu sqrt(2 / (1 + slope^2)), tanh 5/3, sigmoid 1.
// negative_slope is used by leaky_relu only.
double calculate_gain(Nonlinearity nl, double negative_slope = 0.01);

// fan_in and fan_out of a weight of rank >= 2 (throws for rank 0 and 1, where they are
// undefined). `who` names the caller in the message.
struct Fans {
  std::int64_t fan_in = 0, fan_out = 0;
};
Fans calculate_fans(const Tensor& w, const char* who = "calculate_fans");

// He et al. 2015: std = gain / sqrt(fan), gain = calculate_gain(nl, negative_slope).
// Uniform on [-sqrt(3) std, sqrt(3) std] or normal(0, std).
void kaiming_uniform_(Tensor& w, double negative_slope = 0.0, FanMode mode = FanMode::fan_in,
                      Nonlinearity nl = Nonlinearity::leaky_relu, Generator* gen = nullptr);
void kaiming_normal_(Tensor& w, double negative_slope = 0.0, FanMode mode = FanMode::fan_in,
                     Nonlinearity nl = Nonlinearity::leaky_relu, Generator* gen = nullptr);

// Glorot & Bengio 2010: std = gain sqrt(2 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& w, double gain = 1.0, Generator* gen = nullptr);
void xavier_normal_(Tensor& w, double gain = 1.0, Generator* gen = nullptr);

// Saxe et al. 2014: w seen as a [rows, cols] matrix (rows = size(0)) becomes gain times a
// random matrix with orthonormal rows (rows <= cols) or columns (rows >= cols), uniformly
// (Haar) distributed: the Q of a Gaussian matrix's QR with R's diagonal made positive.
void orthogonal_(Tensor& w, double gain = 1.0, Generator* gen = nullptr);

// Uniform on [low, high) and normal(mean, std), for biases and hand-written inits.
void uniform_(Tensor& w, double low, double high, Generator* gen = nullptr);
void normal_(Tensor& w, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);

void zeros_(Tensor& w);
void ones_(Tensor& w);
void constant_(Tensor& w, double value);

}  // namespace symgrad::nn
