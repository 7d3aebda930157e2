// The forward matrix exponential, one matrix at a time, without autograd: scaling and
// squaring with diagonal Pade approximants (Higham 2005, "The scaling and squaring method
// for the matrix exponential revisited", Algorithm 2.3; the float32 variant of its section 6).
// Products go to BLAS through kernels::gemm; the Pade denominator is solved by LU with
// partial pivoting written here (q_m(A) is well conditioned for ||A||_1 <= theta_m).
#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/kernels/gemm.hpp"
#include "symmetry/expm.hpp"

namespace symgrad::symmetry {
namespace {

// theta_m: the largest 1-norm for which r_m(A) = exp(A + dA) with ||dA|| <= u ||A||.
// float64 (u = 2^-53): Higham 2005 Table 2.3, as in scipy.linalg.expm.
constexpr std::array<double, 5> kTheta64 = {1.495585217958292e-2, 2.539398330063230e-1, 9.504178996162932e-1,
                                            2.097847961257068e0, 5.371920351148152e0};
constexpr std::array<int, 5> kDegrees64 = {3, 5, 7, 9, 13};
// float32 (u = 2^-24): Higham 2005 section 6 uses m <= 7, whose theta_7 makes degree 7
// the cheapest per unit norm in single precision. Recomputed from the backward-error series
// by tools/make_expm_reference.py (stored in tests/data/expm_reference.json, compared in
// tests/symmetry/test_expm.cpp).
constexpr std::array<double, 3> kTheta32 = {4.258730016922831e-1, 1.880152677804762e0, 3.925724783138660e0};
constexpr std::array<int, 3> kDegrees32 = {3, 5, 7};

// Coefficients b_j of p_m(x) = sum_j b_j x^j, q_m(x) = p_m(-x), scaled to integers
// (Higham 2005, eq. 2.2 times a common factor; the common factor cancels in q^-1 p).
const std::vector<double>& pade_coefficients(int m) {
  static const std::vector<double> b3 = {120., 60., 12., 1.};
  static const std::vector<double> b5 = {30240., 15120., 3360., 420., 30., 1.};
  static const std::vector<double> b7 = {17297280., 8648640., 1995840., 277200., 25200., 1512., 56., 1.};
  static const std::vector<double> b9 = {17643225600., 8821612800., 2075673600., 302702400., 30270240.,
                                         2162160.,     110880.,     3960.,       90.,        1.};
  static const std::vector<double> b13 = {64764752532480000.,
                                          32382376266240000.,
                                          7771770303897600.,
                                          1187353796428800.,
                                          129060195264000.,
                                          10559470521600.,
                                          670442572800.,
                                          33522128640.,
                                          1323241920.,
                                          40840800.,
                                          960960.,
                                          16380.,
                                          182.,
                                          1.};
  switch (m) {
    case 3:
      return b3;
    case 5:
      return b5;
    case 7:
      return b7;
    case 9:
      return b9;
    default:
      return b13;
  }
}

// A dense n x n matrix in row-major order, in the input's precision.
template <class T>
struct Square {
  std::int64_t n = 0;
  std::vector<T> v;
  explicit Square(std::int64_t size, T fill = T(0)) : n(size), v(static_cast<std::size_t>(size * size), fill) {}
  T& at(std::int64_t i, std::int64_t j) { return v[static_cast<std::size_t>(i * n + j)]; }
};

template <class T>
Square<T> product(const Square<T>& a, const Square<T>& b) {
  Square<T> c(a.n);
  kernels::gemm(dtype_of<T>(), false, false, a.n, a.n, a.n, 1.0, a.v.data(), a.n, b.v.data(), b.n, 0.0, c.v.data(),
                c.n);
  return c;
}

template <class T>
using Terms = std::vector<std::pair<double, const Square<T>*>>;  // (weight, matrix)

// sum_k w_k M_k + w_I I
template <class T>
Square<T> combination(std::int64_t n, const Terms<T>& terms, double w_identity) {
  Square<T> out(n);
  for (const auto& [w, m] : terms)
    for (std::size_t i = 0; i < out.v.size(); ++i) out.v[i] += static_cast<T>(w) * m->v[i];
  for (std::int64_t i = 0; i < n; ++i) out.at(i, i) += static_cast<T>(w_identity);
  return out;
}

// Overwrites rhs with q^-1 rhs (LU with partial pivoting, Golub & Van Loan Alg. 3.4.1).
template <class T>
void solve_in_place(Square<T> q, Square<T>& rhs) {
  const std::int64_t n = q.n;
  for (std::int64_t j = 0; j < n; ++j) {
    std::int64_t best = j;
    for (std::int64_t i = j + 1; i < n; ++i)
      if (std::abs(q.at(i, j)) > std::abs(q.at(best, j))) best = i;
    if (best != j)
      for (std::int64_t c = 0; c < n; ++c) {
        std::swap(q.at(j, c), q.at(best, c));
        std::swap(rhs.at(j, c), rhs.at(best, c));
      }
    const T pivot = q.at(j, j);
    if (pivot == T(0)) throw std::runtime_error("expm: the Pade denominator q_m(A) is singular (internal error)");
    for (std::int64_t i = j + 1; i < n; ++i) {
      const T multiplier = q.at(i, j) / pivot;
      if (multiplier == T(0)) continue;
      for (std::int64_t c = j + 1; c < n; ++c) q.at(i, c) -= multiplier * q.at(j, c);
      for (std::int64_t c = 0; c < n; ++c) rhs.at(i, c) -= multiplier * rhs.at(j, c);
    }
  }
  for (std::int64_t i = n; i-- > 0;) {
    for (std::int64_t k = i + 1; k < n; ++k) {
      const T factor = q.at(i, k);
      for (std::int64_t c = 0; c < n; ++c) rhs.at(i, c) -= factor * rhs.at(k, c);
    }
    for (std::int64_t c = 0; c < n; ++c) rhs.at(i, c) /= q.at(i, i);
  }
}

// r_m(A) = q_m(A)^-1 p_m(A), with p = V + U, q = V - U: U holds the odd powers, V the even
// ones, evaluated with as few products as Higham 2005 eqs. (2.10)-(2.11) use.
template <class T>
Square<T> pade(const Square<T>& a, int m) {
  const std::vector<double>& b = pade_coefficients(m);
  const std::int64_t n = a.n;
  const Square<T> a2 = product(a, a);
  Square<T> u_inner(n), v(n);
  if (m == 13) {
    const Square<T> a4 = product(a2, a2), a6 = product(a4, a2);
    const Square<T> u_high = combination<T>(n, {{b[13], &a6}, {b[11], &a4}, {b[9], &a2}}, 0.0);
    const Square<T> v_high = combination<T>(n, {{b[12], &a6}, {b[10], &a4}, {b[8], &a2}}, 0.0);
    const Square<T> a6_u = product(a6, u_high), a6_v = product(a6, v_high);
    u_inner = combination<T>(n, {{1.0, &a6_u}, {b[7], &a6}, {b[5], &a4}, {b[3], &a2}}, b[1]);
    v = combination<T>(n, {{1.0, &a6_v}, {b[6], &a6}, {b[4], &a4}, {b[2], &a2}}, b[0]);
  } else {
    // Even powers A^0, A^2, ..., A^(m-1).
    std::vector<Square<T>> even = {a2};
    for (int k = 4; k < m; k += 2) even.push_back(product(even.back(), a2));
    Terms<T> odd_terms, even_terms;
    for (std::size_t k = 0; k < even.size(); ++k) {
      odd_terms.emplace_back(b[2 * k + 3], &even[k]);
      even_terms.emplace_back(b[2 * k + 2], &even[k]);
    }
    u_inner = combination<T>(n, odd_terms, b[1]);
    v = combination<T>(n, even_terms, b[0]);
  }
  const Square<T> u = product(a, u_inner);
  Square<T> p = combination<T>(n, {{1.0, &v}, {1.0, &u}}, 0.0);
  const Square<T> q = combination<T>(n, {{1.0, &v}, {-1.0, &u}}, 0.0);
  solve_in_place(q, p);
  return p;
}

template <class T>
double one_norm(const T* a, std::int64_t n) {
  double best = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    double column = 0;
    for (std::int64_t i = 0; i < n; ++i) column += std::abs(static_cast<double>(a[i * n + j]));
    best = std::max(best, column);
  }
  return best;
}

// exp of one matrix: r_m(A / 2^s)^(2^s).
template <class T>
void expm_one(const T* a, T* out, std::int64_t n) {
  // 1 x 1: the scalar exp is exact to rounding, where r_m(x / 2^s)^(2^s) loses digits to
  // the cancellation in q_m(x) for x << 0 (3.6e-14 relative at x = -40), as scipy does.
  if (n == 1) {
    out[0] = std::exp(a[0]);
    return;
  }
  const ExpmPlan plan = expm_plan(one_norm(a, n), dtype_of<T>());
  Square<T> scaled(n);
  const double scale = std::ldexp(1.0, -plan.squarings);  // exact: a power of two
  for (std::int64_t i = 0; i < n * n; ++i) scaled.v[static_cast<std::size_t>(i)] = static_cast<T>(a[i] * scale);
  Square<T> result = pade(scaled, plan.pade_degree);
  for (int k = 0; k < plan.squarings; ++k) result = product(result, result);
  std::copy(result.v.begin(), result.v.end(), out);
}

}  // namespace

ExpmPlan expm_plan(double norm1, DType dtype) {
  if (!std::isfinite(norm1) || norm1 < 0)
    throw std::invalid_argument("expm_plan: norm1 = " + std::to_string(norm1) + " must be finite and >= 0");
  const bool single = dtype == DType::f32;
  const double* theta = single ? kTheta32.data() : kTheta64.data();
  const int* degrees = single ? kDegrees32.data() : kDegrees64.data();
  const std::size_t count = single ? kTheta32.size() : kTheta64.size();
  for (std::size_t k = 0; k + 1 < count; ++k)
    if (norm1 <= theta[k]) return {degrees[k], 0};
  // Top degree: the fewest squarings s >= 0 with ||A||_1 / 2^s <= theta_max.
  const double theta_max = theta[count - 1];
  int squarings = 0;
  if (norm1 > theta_max) squarings = static_cast<int>(std::ceil(std::log2(norm1 / theta_max)));
  while (std::ldexp(norm1, -squarings) > theta_max) ++squarings;  // guard log2 rounding
  return {degrees[count - 1], squarings};
}

namespace detail {

void expm_forward(const Tensor& a, Tensor& out) {
  const std::int64_t n = a.size(-1);
  const std::int64_t items = n == 0 ? 0 : a.numel() / (n * n);
  dispatch_dtype(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* in = a.data<T>();
    T* result = out.data<T>();
    for (std::int64_t item = 0; item < items; ++item) expm_one(in + item * n * n, result + item * n * n, n);
  });
}

}  // namespace detail
}  // namespace symgrad::symmetry
