#pragma once
// The one door to BLAS: C = alpha * op(A) op(B) + beta * C, row-major, where op is a
// transpose when the flag says so. Transposes are passed to BLAS, never copied.
#include <cstdint>

#include "engine/dtype.hpp"

namespace symgrad::kernels {

void gemm(DType dt, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
          double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
          double beta, void* c, std::int64_t ldc);

// Plain triple loop with the same contract, for tests.
void gemm_reference(DType dt, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                    std::int64_t k, double alpha, const void* a, std::int64_t lda, const void* b,
                    std::int64_t ldb, double beta, void* c, std::int64_t ldc);

}  // namespace symgrad::kernels
