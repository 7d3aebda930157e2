#include "pde/stencils.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace symgrad::pde {

namespace {

void check_spacing(const char* who, double h) {
  if (!(h > 0.0) || !std::isfinite(h))
    throw std::invalid_argument(std::string(who) + ": grid spacing h = " + std::to_string(h) + " must be positive");
}

// A 1-D stencil (weights at offsets -n/2 .. n/2) placed on the centre row (axis x) or
// centre column (axis y) of a square n x n kernel, times `scale`.
Tensor line_kernel(Axis axis, const std::vector<double>& weights, double scale, DType dtype) {
  const std::int64_t n = static_cast<std::int64_t>(weights.size());
  std::vector<double> k(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t r = axis == Axis::x ? n / 2 : i;
    const std::int64_t c = axis == Axis::x ? i : n / 2;
    k[static_cast<std::size_t>(r * n + c)] = weights[static_cast<std::size_t>(i)] * scale;
  }
  return from_vector(k, {n, n}, dtype);
}

void check_accuracy_2_or_4(const char* who, int accuracy) {
  if (accuracy != 2 && accuracy != 4)
    throw std::invalid_argument(std::string(who) + ": accuracy " + std::to_string(accuracy) +
                                " is not available (2: 3-point stencil, 4: 5-point stencil)");
}

double factorial(int n) {
  double f = 1.0;
  for (int i = 2; i <= n; ++i) f *= i;
  return f;
}

// One row of the moment map K -> M[p][q] (see stencils.hpp), for a k x k kernel with
// offsets in units of h: entry (r, c) is (c - k/2)^p (r - k/2)^q / (p! q!).
std::vector<double> moment_row(std::int64_t k, int p, int q) {
  std::vector<double> row(static_cast<std::size_t>(k * k));
  const double norm = factorial(p) * factorial(q);
  for (std::int64_t r = 0; r < k; ++r)
    for (std::int64_t c = 0; c < k; ++c)
      row[static_cast<std::size_t>(r * k + c)] =
          std::pow(static_cast<double>(c - k / 2), p) * std::pow(static_cast<double>(r - k / 2), q) / norm;
  return row;
}

void check_square_odd(const char* who, const Tensor& kernel) {
  if (kernel.dim() != 2 || kernel.size(0) != kernel.size(1) || kernel.size(0) % 2 == 0)
    throw std::invalid_argument(std::string(who) + ": kernel " + shape_str(kernel.shape()) +
                                " must be square with an odd size");
}

}  // namespace

const char* axis_name(Axis axis) { return axis == Axis::x ? "x" : "y"; }

// ---- classical stencils -------------------------------------------------------------------

Tensor first_derivative(Axis axis, double h, int accuracy, DType dtype) {
  check_spacing("first_derivative", h);
  check_accuracy_2_or_4("first_derivative", accuracy);
  if (accuracy == 2) return line_kernel(axis, {-1.0, 0.0, 1.0}, 1.0 / (2.0 * h), dtype);
  return line_kernel(axis, {1.0, -8.0, 0.0, 8.0, -1.0}, 1.0 / (12.0 * h), dtype);
}

Tensor second_derivative(Axis axis, double h, int accuracy, DType dtype) {
  check_spacing("second_derivative", h);
  check_accuracy_2_or_4("second_derivative", accuracy);
  if (accuracy == 2) return line_kernel(axis, {1.0, -2.0, 1.0}, 1.0 / (h * h), dtype);
  return line_kernel(axis, {-1.0, 16.0, -30.0, 16.0, -1.0}, 1.0 / (12.0 * h * h), dtype);
}

Tensor laplacian(double h, DType dtype) {
  check_spacing("laplacian", h);
  const double s = 1.0 / (h * h);
  return from_vector({0.0, s, 0.0, s, -4.0 * s, s, 0.0, s, 0.0}, {3, 3}, dtype);
}

Tensor mixed_derivative(double h, DType dtype) {
  check_spacing("mixed_derivative", h);
  const double s = 1.0 / (4.0 * h * h);
  return from_vector({s, 0.0, -s, 0.0, 0.0, 0.0, -s, 0.0, s}, {3, 3}, dtype);
}

Tensor sobel(Axis axis, double h, DType dtype) {
  check_spacing("sobel", h);
  const double s = 1.0 / (8.0 * h);
  const std::vector<double> along_x{-s, 0.0, s, -2 * s, 0.0, 2 * s, -s, 0.0, s};
  const std::vector<double> along_y{-s, -2 * s, -s, 0.0, 0.0, 0.0, s, 2 * s, s};
  return from_vector(axis == Axis::x ? along_x : along_y, {3, 3}, dtype);
}

// ---- moment matrix --------------------------------------------------------------------------

Tensor moment_matrix(const Tensor& kernel, std::int64_t orders) {
  check_square_odd("moment_matrix", kernel);
  if (orders < 1) throw std::invalid_argument("moment_matrix: orders = " + std::to_string(orders) + " must be >= 1");
  const std::int64_t k = kernel.size(0);
  const std::vector<double> weights = kernel.to_vector();
  std::vector<double> m(static_cast<std::size_t>(orders * orders));
  for (int p = 0; p < orders; ++p)
    for (int q = 0; q < orders; ++q) {
      const std::vector<double> row = moment_row(k, p, q);
      double sum = 0.0;
      for (std::size_t e = 0; e < row.size(); ++e) sum += row[e] * weights[e];
      m[static_cast<std::size_t>(p * orders + q)] = sum;
    }
  return from_vector(m, {orders, orders}, DType::f64);
}

Tensor moment_kernel(std::int64_t k, int dx_order, int dy_order, int accuracy, double h, DType dtype) {
  check_spacing("moment_kernel", h);
  if (dx_order < 0 || dy_order < 0 || accuracy < 1)
    throw std::invalid_argument("moment_kernel: derivative orders (" + std::to_string(dx_order) + ", " +
                                std::to_string(dy_order) + ") must be >= 0 and accuracy " +
                                std::to_string(accuracy) + " >= 1");
  const int top = dx_order + dy_order + accuracy - 1;  // highest total order of moment fixed
  if (k < 1 || k % 2 == 0 || k < top + 1)
    throw std::invalid_argument("moment_kernel: a " + std::to_string(k) + "x" + std::to_string(k) +
                                " kernel cannot approximate d^" + std::to_string(dx_order + dy_order) +
                                "/dx^" + std::to_string(dx_order) + " dy^" + std::to_string(dy_order) +
                                " to accuracy " + std::to_string(accuracy) +
                                ": k must be odd and >= " + std::to_string(top + 1));
  // The constraints A K = e: one row per moment (p, q) with p + q <= top.
  std::vector<std::vector<double>> rows;
  std::vector<double> target;
  for (int total = 0; total <= top; ++total)
    for (int p = total; p >= 0; --p) {
      rows.push_back(moment_row(k, p, total - p));
      target.push_back(p == dx_order && total - p == dy_order ? 1.0 : 0.0);
    }
  // Minimum-norm solution K = A^T z with (A A^T) z = e. The rows are independent (every
  // p, q < k, and a tensor product of Vandermonde matrices on k distinct points is
  // invertible), so A A^T is symmetric positive definite.
  const std::size_t m = rows.size(), cells = rows[0].size();
  std::vector<double> gram(m * m);
  for (std::size_t a = 0; a < m; ++a)
    for (std::size_t b = 0; b < m; ++b) {
      double dot = 0.0;
      for (std::size_t e = 0; e < cells; ++e) dot += rows[a][e] * rows[b][e];
      gram[a * m + b] = dot;
    }
  const std::vector<double> z = solve_linear_system(std::move(gram), target);
  const double scale = std::pow(h, -(dx_order + dy_order));
  std::vector<double> kernel(cells, 0.0);
  for (std::size_t a = 0; a < m; ++a)
    for (std::size_t e = 0; e < cells; ++e) kernel[e] += rows[a][e] * z[a];
  for (double& w : kernel) w *= scale;
  return from_vector(kernel, {k, k}, dtype);
}

int accuracy_order(const Tensor& kernel, int dx_order, int dy_order, double h, int max_order, double tolerance) {
  check_spacing("accuracy_order", h);
  check_square_odd("accuracy_order", kernel);
  const int order = dx_order + dy_order;
  if (dx_order < 0 || dy_order < 0 || max_order < order)
    throw std::invalid_argument("accuracy_order: derivative orders (" + std::to_string(dx_order) + ", " +
                                std::to_string(dy_order) + ") must be >= 0 and <= max_order " +
                                std::to_string(max_order));
  // Undo the h^-(i+j) so the moments are those of the kernel on the unit grid.
  const Tensor unit = kernel * std::pow(h, order);
  const Tensor moments = moment_matrix(to_dtype(unit, DType::f64), max_order + 1);
  const std::vector<double> m = moments.to_vector();
  auto wrong = [&](int p, int q) {
    const double want = p == dx_order && q == dy_order ? 1.0 : 0.0;
    return std::abs(m[static_cast<std::size_t>(p * (max_order + 1) + q)] - want) > tolerance;
  };
  for (int total = 0; total <= max_order; ++total)
    for (int p = 0; p <= total; ++p)
      if (wrong(p, total - p)) return total <= order ? 0 : total - order;
  return max_order - order + 1;
}

std::vector<double> solve_linear_system(std::vector<double> A, std::vector<double> b) {
  const std::size_t n = b.size();
  if (A.size() != n * n)
    throw std::invalid_argument("solve_linear_system: matrix has " + std::to_string(A.size()) +
                                " entries, expected " + std::to_string(n) + " x " + std::to_string(n) +
                                " for a right-hand side of " + std::to_string(n));
  double largest = 0.0;
  for (double a : A) largest = std::max(largest, std::abs(a));
  for (std::size_t col = 0; col < n; ++col) {
    // Partial pivoting: the largest remaining entry of this column keeps multipliers <= 1.
    std::size_t pivot = col;
    for (std::size_t r = col + 1; r < n; ++r)
      if (std::abs(A[r * n + col]) > std::abs(A[pivot * n + col])) pivot = r;
    if (!(std::abs(A[pivot * n + col]) > 1e-12 * largest))
      throw std::invalid_argument("solve_linear_system: the " + std::to_string(n) + " x " + std::to_string(n) +
                                  " matrix is singular to working precision (column " + std::to_string(col) + ")");
    if (pivot != col) {
      for (std::size_t c = 0; c < n; ++c) std::swap(A[col * n + c], A[pivot * n + c]);
      std::swap(b[col], b[pivot]);
    }
    for (std::size_t r = col + 1; r < n; ++r) {
      const double factor = A[r * n + col] / A[col * n + col];
      for (std::size_t c = col; c < n; ++c) A[r * n + c] -= factor * A[col * n + c];
      b[r] -= factor * b[col];
    }
  }
  std::vector<double> z(n);
  for (std::size_t i = n; i-- > 0;) {
    double rest = b[i];
    for (std::size_t c = i + 1; c < n; ++c) rest -= A[i * n + c] * z[c];
    z[i] = rest / A[i * n + i];
  }
  return z;
}

// ---- applying kernels -----------------------------------------------------------------------

Tensor depthwise_weight(const Tensor& kernel, std::int64_t channels) {
  if (kernel.dim() != 2 || channels < 1)
    throw std::invalid_argument("depthwise_weight: kernel " + shape_str(kernel.shape()) +
                                " must be [kh, kw] and channels (" + std::to_string(channels) + ") >= 1");
  const Tensor one = reshape(kernel, {1, 1, kernel.size(0), kernel.size(1)});
  return expand(one, {channels, 1, kernel.size(0), kernel.size(1)});
}

Tensor apply_stencil(const Tensor& image, const Tensor& kernel, PadMode padding_mode) {
  if (image.dim() != 4)
    throw std::invalid_argument("apply_stencil: image " + shape_str(image.shape()) + " must be [N, C, H, W]");
  if (kernel.dim() != 2 || kernel.size(0) % 2 == 0 || kernel.size(1) % 2 == 0)
    throw std::invalid_argument("apply_stencil: kernel " + shape_str(kernel.shape()) +
                                " must be [kh, kw] with odd sizes (centred)");
  const Tensor same_dtype = kernel.dtype() == image.dtype() ? kernel : to_dtype(kernel, image.dtype());
  Conv2dOptions opts;
  opts.padding_h = kernel.size(0) / 2;
  opts.padding_w = kernel.size(1) / 2;
  opts.groups = image.size(1);
  opts.padding_mode = padding_mode;
  return conv2d(image, depthwise_weight(same_dtype, image.size(1)), Tensor(), opts);
}

}  // namespace symgrad::pde
