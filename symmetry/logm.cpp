// logm_near_identity: the principal logarithm of a matrix close to I, by inverse scaling
// and squaring (Kenney & Laub 1989; Higham 2008, "Functions of Matrices", section 11.5):
// take square roots until G^(1/2^k) is within 1/4 of I, sum the Gregory series
//   log Y = 2 atanh(Z) = 2 (Z + Z^3/3 + Z^5/5 + ...),  Z = (Y + I)^-1 (Y - I),
// and scale back, log G = 2^k log G^(1/2^k). Square roots come from the Denman-Beavers
// iteration. The whole batch is processed with engine ops, without autograd.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "symmetry/expm.hpp"

namespace symgrad::symmetry {
namespace {

// The largest 1-norm over the batch of x [..., n, n], and the flat index of that matrix.
std::pair<double, std::int64_t> largest_one_norm(const Tensor& x) {
  const std::int64_t n = x.size(-1);
  const std::int64_t items = x.numel() / (n * n);
  const std::vector<double> v = x.to_vector();
  std::pair<double, std::int64_t> worst = {0.0, 0};
  for (std::int64_t item = 0; item < items; ++item)
    for (std::int64_t j = 0; j < n; ++j) {
      double column = 0;
      for (std::int64_t i = 0; i < n; ++i) column += std::abs(v[static_cast<std::size_t>(item * n * n + i * n + j)]);
      if (!(column <= worst.first)) worst = {column, item};  // NaN counts as largest
    }
  return worst;
}

// G^(1/2) by Denman-Beavers: Y <- (Y + Z^-1)/2, Z <- (Z + Y^-1)/2 from Y = G, Z = I, with
// Y -> G^(1/2) quadratically when the eigenvalues of G are near 1 (Higham 2008, eq. 6.15).
Tensor sqrtm_denman_beavers(const Tensor& g, const Tensor& identity, double unit_roundoff) {
  const std::int64_t n = g.size(-1);
  const double tolerance = 8.0 * static_cast<double>(n) * unit_roundoff;
  Tensor y = g, z = identity;  // [n, n] broadcasts against the batch
  for (int iteration = 0; iteration < 60; ++iteration) {
    const Tensor y_next = (y + solve(z, identity)) * 0.5;
    const Tensor z_next = (z + solve(y, identity)) * 0.5;
    const double change = largest_one_norm(y_next - y).first;
    const double size = largest_one_norm(y_next).first;
    y = y_next;
    z = z_next;
    if (change <= tolerance * size) return y;
  }
  throw std::runtime_error("logm_near_identity: the Denman-Beavers square root of G " + shape_str(g.shape()) +
                           " did not converge in 60 iterations");
}

}  // namespace

Tensor logm_near_identity(const Tensor& g) {
  if (!g.defined()) throw std::invalid_argument("logm_near_identity: G is an undefined tensor");
  if (g.dim() < 2 || g.size(-1) != g.size(-2))
    throw std::invalid_argument("logm_near_identity: G " + shape_str(g.shape()) +
                                " must be a (batch of) square matrices [..., n, n]");
  NoGradGuard no_grad;
  if (g.numel() == 0) return zeros_like(g);
  const std::int64_t n = g.size(-1);
  const Tensor identity = eye(n, n, g.dtype());
  // ||G - I||_1 < 1 puts every eigenvalue in the disc |z - 1| < 1, away from the branch
  // cut of the principal logarithm, and makes the square roots below converge.
  const auto [distance, worst_item] = largest_one_norm(g.detach() - identity);
  if (!(distance < 1.0))
    throw std::invalid_argument("logm_near_identity: G " + shape_str(g.shape()) + " is too far from I at batch item " +
                                std::to_string(worst_item) + " (||G - I||_1 = " + std::to_string(distance) +
                                ", needs < 1)");
  const double unit_roundoff =
      g.dtype() == DType::f32 ? std::numeric_limits<float>::epsilon() / 2 : std::numeric_limits<double>::epsilon() / 2;
  Tensor y = g.detach();
  int square_roots = 0;
  // Within 1/4 of I, ||Z||_1 <= 0.25 / 1.75, and 10 series terms reach float64 roundoff.
  while (largest_one_norm(y - identity).first > 0.25) {
    y = sqrtm_denman_beavers(y, identity, unit_roundoff);
    ++square_roots;
  }
  const Tensor z = solve(y + identity, y - identity);  // (Y + I)^-1 and Y - I commute
  const Tensor z_squared = matmul(z, z);
  Tensor term = z, series = z;
  for (int k = 1; k < 40; ++k) {
    term = matmul(term, z_squared);
    const Tensor addend = term / static_cast<double>(2 * k + 1);
    series = series + addend;
    if (largest_one_norm(addend).first <= unit_roundoff * largest_one_norm(series).first) break;
  }
  return series * std::ldexp(2.0, square_roots);
}

}  // namespace symgrad::symmetry
