// solve: X with A X = B for small batched matrices. The forward is LU with partial
// pivoting per matrix in plain loops (n is small: a Hessian block of a few degrees of
// freedom); the backward is written with solve and matmul, so it differentiates again.
#include "engine/ops/linalg.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/ops/shape_ops.hpp"
#include "engine/ops/unary.hpp"

namespace symgrad {
namespace {

// How solve reads its operands: the batch axes of each, their broadcast, and the sizes
// of one system. Vectors [..., n] are solved as one column (k = 1).
struct SolveLayout {
  Shape a_batch, b_batch, batch;
  std::int64_t n = 0, k = 1;
  bool vector_rhs = false;
  Shape out_shape;
};

std::string operands_str(const Tensor& a, const Tensor& b) {
  return "A " + shape_str(a.shape()) + " and B " + shape_str(b.shape());
}

// B is a batch of vectors when it has rank 1 or its shape is A's without the last axis
// (PyTorch's rule for torch.linalg.solve); otherwise it is a batch of matrices [..., n, k].
bool is_vector_rhs(const Tensor& a, const Tensor& b) {
  if (b.dim() == 1) return true;
  if (b.dim() != a.dim() - 1) return false;
  return std::equal(b.shape().begin(), b.shape().end(), a.shape().begin());
}

void check_operands(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw std::invalid_argument("solve: an operand is an undefined tensor");
  if (a.dtype() != b.dtype())
    throw std::invalid_argument("solve: A " + shape_str(a.shape()) + " " + dtype_name(a.dtype()) + " and B " +
                                shape_str(b.shape()) + " " + dtype_name(b.dtype()) +
                                " have different dtypes; convert one with to_dtype");
  if (a.dim() < 2 || a.size(-1) != a.size(-2))
    throw std::invalid_argument("solve: " + operands_str(a, b) + ": A must be a (batch of) square matrices [..., n, n]");
}

SolveLayout describe_solve(const Tensor& a, const Tensor& b, bool vector_rhs) {
  SolveLayout l;
  l.vector_rhs = vector_rhs;
  l.n = a.size(-1);
  l.a_batch.assign(a.shape().begin(), a.shape().end() - 2);
  const std::int64_t rhs_axes = vector_rhs ? 1 : 2;
  if (b.dim() < rhs_axes)
    throw std::invalid_argument("solve: " + operands_str(a, b) + ": B must be [..., n] or [..., n, k]");
  l.b_batch.assign(b.shape().begin(), b.shape().end() - rhs_axes);
  const std::int64_t b_rows = vector_rhs ? b.size(-1) : b.size(-2);
  if (!vector_rhs) l.k = b.size(-1);
  if (b_rows != l.n)
    throw std::invalid_argument("solve: " + operands_str(a, b) + " do not chain: A is " + std::to_string(l.n) +
                                " x " + std::to_string(l.n) + " but B has " + std::to_string(b_rows) + " rows");
  const std::size_t rank = std::max(l.a_batch.size(), l.b_batch.size());
  l.batch.assign(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t a_pad = rank - l.a_batch.size(), b_pad = rank - l.b_batch.size();
    const std::int64_t da = i < a_pad ? 1 : l.a_batch[i - a_pad];
    const std::int64_t db = i < b_pad ? 1 : l.b_batch[i - b_pad];
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument("solve: batch dimensions of " + operands_str(a, b) + " do not broadcast (" +
                                  shape_str(l.a_batch) + " vs " + shape_str(l.b_batch) + ")");
    l.batch[i] = da == 1 ? db : da;
  }
  l.out_shape = l.batch;
  l.out_shape.push_back(l.n);
  if (!vector_rhs) l.out_shape.push_back(l.k);
  return l;
}

// ---- the kernel: one n x n system with k right-hand sides, in double --------------

// In-place LU factorisation P A = L U with partial pivoting (Golub & Van Loan, Alg. 3.4.1):
// lu holds U on and above the diagonal and L's multipliers below it; pivot[j] is the row
// swapped into row j. Returns the first column whose pivot is numerically zero, or -1.
// A pivot counts as zero when |u_jj| <= n * unit_roundoff * max |a_ij|: below that it is
// rounding noise of the input's dtype rather than information. A matrix with a NaN or an
// infinity is not judged: the NaNs it produces propagate to the caller instead.
std::int64_t lu_factor(std::vector<double>& lu, std::vector<std::int64_t>& pivot, std::int64_t n,
                       double unit_roundoff) {
  double largest = 0;
  bool all_finite = true;
  for (double v : lu) {
    largest = std::max(largest, std::abs(v));
    all_finite = all_finite && std::isfinite(v);
  }
  const double tiny = static_cast<double>(n) * unit_roundoff * largest;
  for (std::int64_t j = 0; j < n; ++j) {
    std::int64_t best = j;
    for (std::int64_t i = j + 1; i < n; ++i)
      if (std::abs(lu[i * n + j]) > std::abs(lu[best * n + j])) best = i;
    pivot[j] = best;
    if (best != j)
      for (std::int64_t c = 0; c < n; ++c) std::swap(lu[j * n + c], lu[best * n + c]);
    const double u_jj = lu[j * n + j];
    if (all_finite && !(std::abs(u_jj) > tiny)) return j;
    for (std::int64_t i = j + 1; i < n; ++i) {
      const double multiplier = lu[i * n + j] / u_jj;
      lu[i * n + j] = multiplier;
      for (std::int64_t c = j + 1; c < n; ++c) lu[i * n + c] -= multiplier * lu[j * n + c];
    }
  }
  return -1;
}

// Overwrites rhs (n x k) with the solution: permute, forward substitution with the unit
// lower L, back substitution with U.
void lu_solve(const std::vector<double>& lu, const std::vector<std::int64_t>& pivot, std::vector<double>& rhs,
              std::int64_t n, std::int64_t k) {
  for (std::int64_t j = 0; j < n; ++j)
    if (pivot[j] != j)
      for (std::int64_t c = 0; c < k; ++c) std::swap(rhs[j * k + c], rhs[pivot[j] * k + c]);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < i; ++j)
      for (std::int64_t c = 0; c < k; ++c) rhs[i * k + c] -= lu[i * n + j] * rhs[j * k + c];
  for (std::int64_t i = n; i-- > 0;) {
    for (std::int64_t j = i + 1; j < n; ++j)
      for (std::int64_t c = 0; c < k; ++c) rhs[i * k + c] -= lu[i * n + j] * rhs[j * k + c];
    for (std::int64_t c = 0; c < k; ++c) rhs[i * k + c] /= lu[i * n + i];
  }
}

// Every system of the broadcast batch, read in the tensors' dtype and solved in double.
template <class T>
void solve_batch(const Tensor& a, const Tensor& b, const SolveLayout& l, Tensor& out) {
  const std::int64_t items = shape_numel(l.batch);
  const std::int64_t n = l.n, k = l.k;
  const Shape a_strides = broadcast_strides(l.a_batch, l.batch);
  const Shape b_strides = broadcast_strides(l.b_batch, l.batch);
  const double unit_roundoff = std::numeric_limits<T>::epsilon() / 2;
  const T* a_data = a.data<T>();
  const T* b_data = b.data<T>();
  T* out_data = out.data<T>();
  std::vector<double> lu(static_cast<std::size_t>(n * n)), rhs(static_cast<std::size_t>(n * k));
  std::vector<std::int64_t> pivot(static_cast<std::size_t>(n));
  Shape index(l.batch.size(), 0);
  for (std::int64_t item = 0; item < items; ++item) {
    std::int64_t a_item = 0, b_item = 0;
    for (std::size_t d = 0; d < l.batch.size(); ++d) {
      a_item += index[d] * a_strides[d];
      b_item += index[d] * b_strides[d];
    }
    std::copy(a_data + a_item * n * n, a_data + (a_item + 1) * n * n, lu.begin());
    std::copy(b_data + b_item * n * k, b_data + (b_item + 1) * n * k, rhs.begin());
    const std::int64_t bad_column = lu_factor(lu, pivot, n, unit_roundoff);
    if (bad_column >= 0)
      throw std::invalid_argument("solve: A " + shape_str(a.shape()) + " is singular at batch index " +
                                  shape_str(index) + " (zero pivot in column " + std::to_string(bad_column) +
                                  "); B " + shape_str(b.shape()));
    lu_solve(lu, pivot, rhs, n, k);
    std::copy(rhs.begin(), rhs.end(), out_data + item * n * k);
    for (std::size_t d = l.batch.size(); d-- > 0;) {  // odometer over the batch index
      if (++index[d] < l.batch[d]) break;
      index[d] = 0;
    }
  }
}

// solve with the right-hand side's kind fixed, so the backward can solve with the
// incoming gradient as it is (its shape is the output's, whatever the batch broadcast).
Tensor solve_as(const Tensor& a, const Tensor& b, bool vector_rhs) {
  const SolveLayout l = describe_solve(a, b, vector_rhs);
  Tensor out = Tensor::empty(l.out_shape, a.dtype());
  if (out.numel() > 0) {
    if (a.dtype() == DType::f32)
      solve_batch<float>(a, b, l, out);
    else
      solve_batch<double>(a, b, l, out);
  }

  // solve: saves A and the output X. From dX = A^-1 (dB - dA X):
  //   gB = A^-T g,  gA = -gB X^T  (Giles 2008, "Extended collection of matrix derivative results").
  // Gradients come back in the broadcast batch shape; autograd's sum_to reduces them.
  if (auto node = record("solve", out, {a, b}))
    node->backward = [a, x_saved = SavedTensor::output(out, node), vector_rhs](const Tensor& g, const Node& n) {
      Tensor gb = solve_as(transpose(a, -2, -1), g, vector_rhs);
      Tensor ga;
      if (n.needs_grad(0)) {
        const Tensor x = x_saved.unpack();
        ga = vector_rhs ? neg(matmul(unsqueeze(gb, -1), unsqueeze(x, -1), false, true))
                        : neg(matmul(gb, x, false, true));
      }
      return TensorList{ga, n.needs_grad(1) ? gb : Tensor()};
    };
  return out;
}

}  // namespace

Tensor solve(const Tensor& a, const Tensor& b) {
  check_operands(a, b);
  return solve_as(a, b, is_vector_rhs(a, b));
}

}  // namespace symgrad
