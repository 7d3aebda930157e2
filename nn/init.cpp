#include "nn/init.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace symgrad::nn {

Generator& default_generator() {
  static Generator generator;
  return generator;
}

void manual_seed(std::uint64_t seed) { default_generator() = Generator(seed); }

double calculate_gain(Nonlinearity nl, double negative_slope) {
  switch (nl) {
    case Nonlinearity::linear:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
    // PyTorch's value: an empirical choice that keeps stacked tanh layers near unit variance.
    case Nonlinearity::tanh: return 5.0 / 3.0;
  }
  throw std::invalid_argument("calculate_gain: unknown nonlinearity");
}

namespace {

void require_defined(const Tensor& w, const char* who) {
  if (!w.defined()) throw std::invalid_argument(std::string(who) + ": the tensor is undefined");
}

Generator& generator_or_default(Generator* gen) { return gen ? *gen : default_generator(); }

// w <- values (a float64 tensor of w's shape), converted to w's dtype.
void assign(Tensor& w, const Tensor& values) {
  NoGradGuard no_grad;
  copy_(w, values);
}

double fan_for(const Tensor& w, FanMode mode, const char* who) {
  const Fans fans = calculate_fans(w, who);
  return static_cast<double>(mode == FanMode::fan_in ? fans.fan_in : fans.fan_out);
}

// ---- orthogonal: Householder QR of a tall matrix ----------------------------------------

// Column-major m x n matrix, m >= n.
struct TallMatrix {
  std::int64_t m = 0, n = 0;
  std::vector<double> a;
  double& at(std::int64_t i, std::int64_t j) { return a[static_cast<std::size_t>(j * m + i)]; }
};

// The Q factor (m x n, orthonormal columns) of A = Q R with diag(R) >= 0. Householder
// reflections keep Q orthogonal to rounding whatever A's conditioning (Gram-Schmidt
// would not). Forcing diag(R) positive makes the factorisation unique, and that is what
// makes Q Haar-distributed when A is Gaussian (Mezzadri 2007, "How to generate random
// matrices from the classical compact groups").
TallMatrix orthonormal_factor(TallMatrix A) {
  const std::int64_t m = A.m, n = A.n;
  std::vector<std::vector<double>> reflectors(static_cast<std::size_t>(n));
  std::vector<double> diagonal(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < n; ++k) {
    // Reflect column k below the diagonal onto alpha e_k, alpha = -sign(x_0) |x| (the sign
    // that avoids cancellation in v = x - alpha e_k).
    double norm2 = 0.0;
    for (std::int64_t i = k; i < m; ++i) norm2 += A.at(i, k) * A.at(i, k);
    const double norm = std::sqrt(norm2);
    const double alpha = A.at(k, k) > 0 ? -norm : norm;
    std::vector<double>& v = reflectors[static_cast<std::size_t>(k)];
    v.assign(static_cast<std::size_t>(m - k), 0.0);
    for (std::int64_t i = k; i < m; ++i) v[static_cast<std::size_t>(i - k)] = A.at(i, k);
    v[0] -= alpha;
    double v_norm2 = 0.0;
    for (double e : v) v_norm2 += e * e;
    diagonal[static_cast<std::size_t>(k)] = alpha;
    if (v_norm2 == 0.0) {  // the column is zero from the diagonal down: nothing to reflect
      v.clear();
      continue;
    }
    const double v_norm = std::sqrt(v_norm2);
    for (double& e : v) e /= v_norm;
    for (std::int64_t j = k; j < n; ++j) {  // A[k:, j] -= 2 v (v . A[k:, j])
      double dot = 0.0;
      for (std::int64_t i = k; i < m; ++i) dot += v[static_cast<std::size_t>(i - k)] * A.at(i, j);
      for (std::int64_t i = k; i < m; ++i) A.at(i, j) -= 2.0 * dot * v[static_cast<std::size_t>(i - k)];
    }
  }
  // Q = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity.
  TallMatrix Q{m, n, std::vector<double>(static_cast<std::size_t>(m * n), 0.0)};
  for (std::int64_t j = 0; j < n; ++j) Q.at(j, j) = 1.0;
  for (std::int64_t k = n - 1; k >= 0; --k) {
    const std::vector<double>& v = reflectors[static_cast<std::size_t>(k)];
    if (v.empty()) continue;
    for (std::int64_t j = 0; j < n; ++j) {
      double dot = 0.0;
      for (std::int64_t i = k; i < m; ++i) dot += v[static_cast<std::size_t>(i - k)] * Q.at(i, j);
      for (std::int64_t i = k; i < m; ++i) Q.at(i, j) -= 2.0 * dot * v[static_cast<std::size_t>(i - k)];
    }
  }
  // Q R = Q D D R with D = sign(diag R): flip the columns whose R diagonal is negative.
  for (std::int64_t j = 0; j < n; ++j)
    if (diagonal[static_cast<std::size_t>(j)] < 0)
      for (std::int64_t i = 0; i < m; ++i) Q.at(i, j) = -Q.at(i, j);
  return Q;
}

}  // namespace

Fans calculate_fans(const Tensor& w, const char* who) {
  require_defined(w, who);
  if (w.dim() < 2)
    throw std::invalid_argument(std::string(who) + ": fan_in and fan_out are undefined for tensor " +
                                shape_str(w.shape()) + " with fewer than 2 dimensions");
  std::int64_t receptive_field = 1;
  for (std::int64_t d = 2; d < w.dim(); ++d) receptive_field *= w.size(d);
  return {w.size(1) * receptive_field, w.size(0) * receptive_field};
}

void uniform_(Tensor& w, double low, double high, Generator* gen) {
  require_defined(w, "uniform_");
  if (!(low <= high))
    throw std::invalid_argument("uniform_: low " + std::to_string(low) + " must be <= high " + std::to_string(high));
  assign(w, uniform(w.shape(), low, high, generator_or_default(gen), DType::f64));
}

void normal_(Tensor& w, double mean, double std, Generator* gen) {
  require_defined(w, "normal_");
  if (!(std >= 0)) throw std::invalid_argument("normal_: std " + std::to_string(std) + " must be >= 0");
  assign(w, normal(w.shape(), mean, std, generator_or_default(gen), DType::f64));
}

// The fan is checked before the no-op for empty tensors, so a rank mistake is reported
// even when a dimension is zero.
void kaiming_uniform_(Tensor& w, double negative_slope, FanMode mode, Nonlinearity nl, Generator* gen) {
  const double fan = fan_for(w, mode, "kaiming_uniform_");
  if (w.numel() == 0) return;
  const double bound = std::sqrt(3.0) * calculate_gain(nl, negative_slope) / std::sqrt(fan);
  uniform_(w, -bound, bound, gen);
}

void kaiming_normal_(Tensor& w, double negative_slope, FanMode mode, Nonlinearity nl, Generator* gen) {
  const double fan = fan_for(w, mode, "kaiming_normal_");
  if (w.numel() == 0) return;
  normal_(w, 0.0, calculate_gain(nl, negative_slope) / std::sqrt(fan), gen);
}

void xavier_uniform_(Tensor& w, double gain, Generator* gen) {
  const Fans fans = calculate_fans(w, "xavier_uniform_");
  if (w.numel() == 0) return;
  const double bound = std::sqrt(3.0) * gain * std::sqrt(2.0 / static_cast<double>(fans.fan_in + fans.fan_out));
  uniform_(w, -bound, bound, gen);
}

void xavier_normal_(Tensor& w, double gain, Generator* gen) {
  const Fans fans = calculate_fans(w, "xavier_normal_");
  if (w.numel() == 0) return;
  normal_(w, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fans.fan_in + fans.fan_out)), gen);
}

void orthogonal_(Tensor& w, double gain, Generator* gen) {
  require_defined(w, "orthogonal_");
  if (w.dim() < 2)
    throw std::invalid_argument("orthogonal_: tensor " + shape_str(w.shape()) +
                                " has fewer than 2 dimensions; it needs rows and columns");
  if (w.numel() == 0) return;
  const std::int64_t rows = w.size(0), cols = w.numel() / rows;
  const std::vector<double> gaussian =
      normal({rows, cols}, 0.0, 1.0, generator_or_default(gen), DType::f64).to_vector();
  // Factor the tall orientation: [rows, cols] itself when rows >= cols, else its transpose.
  // Read row-major [rows, cols] into column-major m x n: A(i, j) = g[i][j] or g[j][i].
  const bool tall = rows >= cols;
  TallMatrix A{tall ? rows : cols, tall ? cols : rows, {}};
  A.a.resize(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      (tall ? A.at(r, c) : A.at(c, r)) = gaussian[static_cast<std::size_t>(r * cols + c)];
  TallMatrix Q = orthonormal_factor(std::move(A));
  std::vector<double> result(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      result[static_cast<std::size_t>(r * cols + c)] = gain * (tall ? Q.at(r, c) : Q.at(c, r));
  assign(w, from_vector(result, w.shape(), DType::f64));
}

void zeros_(Tensor& w) { constant_(w, 0.0); }
void ones_(Tensor& w) { constant_(w, 1.0); }

void constant_(Tensor& w, double value) {
  require_defined(w, "constant_");
  NoGradGuard no_grad;
  fill_(w, value);
}

}  // namespace symgrad::nn
