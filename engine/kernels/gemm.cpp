// The one door to BLAS (see gemm.hpp), and the triple loop the tests compare it to.
#include "engine/kernels/gemm.hpp"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

namespace symgrad::kernels {
namespace {

// CBLAS takes int; a matrix dimension beyond INT_MAX must be refused, not truncated.
blasint to_blas_int(std::int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw std::invalid_argument(std::string("gemm: ") + what + " = " + std::to_string(v) +
                                " is outside BLAS's int range");
  return static_cast<blasint>(v);
}

// C = beta * C for the m x n block, when there is nothing to multiply (k == 0). BLAS
// implementations disagree on k == 0, and beta == 0 must overwrite NaNs in C.
template <class T>
void scale_block(std::int64_t m, std::int64_t n, T beta, T* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0)) std::fill(row, row + n, T(0));
    else for (std::int64_t j = 0; j < n; ++j) row[j] *= beta;
  }
}

}  // namespace

void gemm(DType dt, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
          double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb, double beta,
          void* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    dispatch_dtype(dt, [&](auto zero) {
      using T = decltype(zero);
      scale_block(m, n, static_cast<T>(beta), static_cast<T*>(c), ldc);
    });
    return;
  }
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  const blasint bm = to_blas_int(m, "m"), bn = to_blas_int(n, "n"), bk = to_blas_int(k, "k");
  const blasint blda = to_blas_int(lda, "lda"), bldb = to_blas_int(ldb, "ldb"), bldc = to_blas_int(ldc, "ldc");
  if (dt == DType::f32)
    cblas_sgemm(CblasRowMajor, ta, tb, bm, bn, bk, static_cast<float>(alpha), static_cast<const float*>(a),
                blda, static_cast<const float*>(b), bldb, static_cast<float>(beta), static_cast<float*>(c), bldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, bm, bn, bk, alpha, static_cast<const double*>(a), blda,
                static_cast<const double*>(b), bldb, beta, static_cast<double*>(c), bldc);
}

void gemm_reference(DType dt, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                    double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
                    double beta, void* c, std::int64_t ldc) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* A = static_cast<const T*>(a);
    const T* B = static_cast<const T*>(b);
    T* C = static_cast<T*>(c);
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double acc = 0.0;
        for (std::int64_t p = 0; p < k; ++p) {
          const double a_ip = trans_a ? A[p * lda + i] : A[i * lda + p];
          const double b_pj = trans_b ? B[j * ldb + p] : B[p * ldb + j];
          acc += a_ip * b_pj;
        }
        T& out = C[i * ldc + j];
        out = static_cast<T>(alpha * acc + (beta == 0.0 ? 0.0 : beta * static_cast<double>(out)));
      }
  });
}

}  // namespace symgrad::kernels
