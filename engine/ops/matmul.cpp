// matmul: batched matrix products through one BLAS gemm per batch item, and the
// backward rule written with matmul itself (transposes as flags, never copies).
#include "engine/ops/matmul.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "engine/kernels/gemm.hpp"

namespace symgrad {
namespace {

// The operand as matmul sees it: leading batch dims and op(operand) = rows x cols.
struct MatrixOperand {
  Shape batch;
  std::int64_t rows = 0, cols = 0;         // of op(operand), after the transpose flag
  std::int64_t stored_cols = 0;            // leading dimension of the stored matrix
};

MatrixOperand describe(const Tensor& t, bool transposed, const char* side) {
  if (!t.defined()) throw std::invalid_argument(std::string("matmul: ") + side + " is undefined");
  if (t.dim() < 2)
    throw std::invalid_argument(std::string("matmul: ") + side + " " + shape_str(t.shape()) + " has rank " +
                                std::to_string(t.dim()) +
                                "; matmul needs rank >= 2 (reshape a vector to [n, 1] or [1, n])");
  MatrixOperand m;
  m.batch.assign(t.shape().begin(), t.shape().end() - 2);
  const std::int64_t stored_rows = t.size(-2);
  m.stored_cols = t.size(-1);
  m.rows = transposed ? m.stored_cols : stored_rows;
  m.cols = transposed ? stored_rows : m.stored_cols;
  return m;
}

std::string operand_str(const Tensor& t, bool transposed) {
  return shape_str(t.shape()) + (transposed ? " (transposed)" : "");
}

// Broadcast batch shape of the two operands; the error names both full shapes.
Shape batch_shape(const Tensor& a, const MatrixOperand& ma, const Tensor& b, const MatrixOperand& mb) {
  const std::size_t rank = std::max(ma.batch.size(), mb.batch.size());
  Shape out(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i < rank - ma.batch.size() ? 1 : ma.batch[i - (rank - ma.batch.size())];
    const std::int64_t db = i < rank - mb.batch.size() ? 1 : mb.batch[i - (rank - mb.batch.size())];
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument("matmul: batch dimensions of lhs " + shape_str(a.shape()) + " and rhs " +
                                  shape_str(b.shape()) + " do not broadcast (" + shape_str(ma.batch) + " vs " +
                                  shape_str(mb.batch) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// out[i] = op(a[i]) @ op(b[i]) over the broadcast batch, one gemm per item -- or a
// single gemm when b is shared by every item and a's rows can be stacked into M.
void batched_gemm(const Tensor& a, const MatrixOperand& ma, bool ta, const Tensor& b, const MatrixOperand& mb,
                  bool tb, const Shape& batch, Tensor& out) {
  const std::int64_t m = ma.rows, n = mb.cols, k = ma.cols;
  const std::int64_t items = shape_numel(batch);
  if (items == 0 || m == 0 || n == 0) return;
  const DType dt = out.dtype();
  const std::size_t elem = dtype_size(dt);
  const auto* a_bytes = static_cast<const char*>(a.raw_data());
  const auto* b_bytes = static_cast<const char*>(b.raw_data());
  auto* out_bytes = static_cast<char*>(out.raw_data());

  if (shape_numel(mb.batch) == 1 && !ta) {
    kernels::gemm(dt, false, tb, items * m, n, k, 1.0, a_bytes, ma.stored_cols, b_bytes, mb.stored_cols, 0.0,
                  out_bytes, n);
    return;
  }
  const Shape a_strides = broadcast_strides(ma.batch, batch);
  const Shape b_strides = broadcast_strides(mb.batch, batch);
  const std::int64_t a_matrix = a.size(-2) * a.size(-1), b_matrix = b.size(-2) * b.size(-1);
  Shape index(batch.size(), 0);
  for (std::int64_t item = 0; item < items; ++item) {
    std::int64_t a_item = 0, b_item = 0;
    for (std::size_t d = 0; d < batch.size(); ++d) {
      a_item += index[d] * a_strides[d];
      b_item += index[d] * b_strides[d];
    }
    kernels::gemm(dt, ta, tb, m, n, k, 1.0, a_bytes + a_item * a_matrix * elem, ma.stored_cols,
                  b_bytes + b_item * b_matrix * elem, mb.stored_cols, 0.0, out_bytes + item * m * n * elem, n);
    for (std::size_t d = batch.size(); d-- > 0;) {  // odometer over the batch index
      if (++index[d] < batch[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return matmul(a, b, false, false); }

// matmul: saves both operands. With C = op(A) op(B), dA and dB are again products of
// g with A or B, each with the transpose flags that make the shapes line up.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const MatrixOperand ma = describe(a, transpose_a, "lhs");
  const MatrixOperand mb = describe(b, transpose_b, "rhs");
  if (a.dtype() != b.dtype())
    throw std::invalid_argument("matmul: lhs " + shape_str(a.shape()) + " " + dtype_name(a.dtype()) + " and rhs " +
                                shape_str(b.shape()) + " " + dtype_name(b.dtype()) +
                                " have different dtypes; convert one with to_dtype");
  if (ma.cols != mb.rows)
    throw std::invalid_argument("matmul: lhs " + operand_str(a, transpose_a) + " and rhs " +
                                operand_str(b, transpose_b) + " do not chain (" + std::to_string(ma.cols) +
                                " != " + std::to_string(mb.rows) + ")");
  const Shape batch = batch_shape(a, ma, b, mb);
  Shape out_shape = batch;
  out_shape.push_back(ma.rows);
  out_shape.push_back(mb.cols);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  batched_gemm(a, ma, transpose_a, b, mb, transpose_b, batch, out);

  if (auto node = record("matmul", out, {a, b}))
    node->backward = [a, b, transpose_a, transpose_b](const Tensor& g, const Node& n) {
      // Gradients come back in the broadcast batch shape; autograd's sum_to reduces them.
      Tensor ga, gb;
      if (n.needs_grad(0))
        ga = !transpose_a ? matmul(g, b, false, !transpose_b)       // g op(B)^T
                          : matmul(b, g, transpose_b, true);       // (g op(B)^T)^T = op(B) g^T
      if (n.needs_grad(1))
        gb = !transpose_b ? matmul(a, g, !transpose_a, false)       // op(A)^T g
                          : matmul(g, a, true, transpose_a);       // (op(A)^T g)^T = g^T op(A)
      return TensorList{ga, gb};
    };
  return out;
}

}  // namespace symgrad
