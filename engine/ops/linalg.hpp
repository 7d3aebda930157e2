#pragma once
// Dense linear algebra on small batched matrices, differentiable to any order.
#include "engine/tensor.hpp"

namespace symgrad {

// X with A X = B, batched: A [..., n, n], B [..., n, k] or [..., n] (a vector per matrix);
// batch axes broadcast. LU with partial pivoting per matrix; a singular (or numerically
// singular) A throws std::invalid_argument naming the batch index.
// Backward, in ops: gB = solve(A^T, g), gA = -gB X^T, so grad of grad works.
Tensor solve(const Tensor& a, const Tensor& b);

}  // namespace symgrad
