#pragma once
// Matrix products through BLAS (sgemm / dgemm).
#include "engine/tensor.hpp"

namespace symgrad {

// 2-D @ 2-D, and batched: leading (batch) dimensions broadcast, the last two chain.
// 1-D operands are not promoted: reshape them explicitly.
Tensor matmul(const Tensor& a, const Tensor& b);

// op(a) @ op(b) where op transposes the last two axes when the flag is set. The
// transpose is handed to BLAS, not copied; matmul's backward is written with this.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);

}  // namespace symgrad
