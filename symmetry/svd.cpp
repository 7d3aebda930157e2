#include "symmetry/svd.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

extern "C" {
// LAPACK, column-major (OpenBLAS exports it).
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
             double* u, const int* ldu, double* vt, const int* ldvt, double* work,
             const int* lwork, int* iwork, int* info);
}

namespace symgrad::symmetry {

Svd svd(const Tensor& a) {
  if (!a.defined() || a.dim() != 2)
    throw std::invalid_argument("svd: expected a matrix, got " +
                                (a.defined() ? shape_str(a.shape()) : std::string("undefined")));
  const std::int64_t rows = a.size(0), cols = a.size(1);
  const std::int64_t k = std::min(rows, cols);
  Svd out;
  out.rows = rows;
  out.cols = cols;
  out.u = zeros({rows, k}, DType::f64);
  out.vt = zeros({k, cols}, DType::f64);
  if (k == 0) return out;
  if (rows > std::numeric_limits<int>::max() / std::max<std::int64_t>(cols, 1))
    throw std::invalid_argument("svd: " + shape_str(a.shape()) + " is too large for LAPACK");

  // A^T in row-major is A in column-major: hand LAPACK the transpose and swap roles,
  // A^T = V S U^T, so LAPACK's U is our V and its V^T is our U^T.
  const std::vector<double> values = a.to_vector();
  for (double v : values)
    if (!std::isfinite(v)) throw std::invalid_argument("svd: the matrix has non-finite entries");
  std::vector<double> at(values);  // column-major view of A^T: [cols, rows], lda = cols
  const int m = static_cast<int>(cols), n = static_cast<int>(rows), lda = m;
  std::vector<double> s(static_cast<std::size_t>(k));
  std::vector<double> lu(static_cast<std::size_t>(m) * k), lvt(static_cast<std::size_t>(k) * n);
  const int ldu = m, ldvt = static_cast<int>(k);
  std::vector<int> iwork(8 * static_cast<std::size_t>(k));
  int info = 0, lwork = -1;
  double query = 0;
  const char jobz = 'S';
  dgesdd_(&jobz, &m, &n, at.data(), &lda, s.data(), lu.data(), &ldu, lvt.data(), &ldvt, &query,
          &lwork, iwork.data(), &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
  dgesdd_(&jobz, &m, &n, at.data(), &lda, s.data(), lu.data(), &ldu, lvt.data(), &ldvt,
          work.data(), &lwork, iwork.data(), &info);
  if (info != 0)
    throw std::runtime_error("svd: LAPACK dgesdd failed on " + shape_str(a.shape()) +
                             " (info = " + std::to_string(info) + ")");
  out.singular_values = s;
  // LAPACK's U (column-major [m = cols, k]) is our V: vt[j][c] = lu[c + j * m].
  double* vt = out.vt.data<double>();
  for (std::int64_t j = 0; j < k; ++j)
    for (std::int64_t c = 0; c < cols; ++c) vt[j * cols + c] = lu[c + j * m];
  // LAPACK's V^T (column-major [k, n = rows]) is our U^T: u[r][j] = lvt[j + r * k].
  double* u = out.u.data<double>();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < k; ++j) u[r * k + j] = lvt[j + r * k];
  return out;
}

double condition_number_2(const Tensor& a) {
  if (!a.defined() || a.dim() != 2 || a.size(0) != a.size(1))
    throw std::invalid_argument("condition_number_2: expected a square matrix, got " +
                                (a.defined() ? shape_str(a.shape()) : std::string("undefined")));
  if (a.size(0) == 0) return 1.0;
  const Svd d = svd(a);
  const double smallest = d.singular_values.back();
  return smallest > 0 ? d.singular_values.front() / smallest
                      : std::numeric_limits<double>::infinity();
}

}  // namespace symgrad::symmetry
