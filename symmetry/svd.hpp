#pragma once
// The singular value decomposition of a real matrix, through LAPACK's dgesdd (OpenBLAS
// carries LAPACK). For audits and discovery: values, not a differentiable op.
#include <cstdint>
#include <vector>

#include "engine/engine.hpp"

namespace symgrad::symmetry {

struct Svd {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> singular_values;  // min(rows, cols), descending
  Tensor u;   // [rows, k] float64, k = min(rows, cols)
  Tensor vt;  // [k, cols] float64
};

// A = U diag(S) V^T of A [m, n] (any float dtype; computed in float64). Throws
// std::invalid_argument for a non-matrix or non-finite input, std::runtime_error when
// LAPACK reports that the iteration did not converge.
Svd svd(const Tensor& a);

// sigma_max / sigma_min of a square matrix (infinity when singular).
double condition_number_2(const Tensor& a);

}  // namespace symgrad::symmetry
