#pragma once
// Finite-difference stencils as convolution kernels: a 3x3 conv of a ResNet block is a
// differential operator of order <= 2 (background §1), and these are the operators it
// can express, written down explicitly.
//
// Convention. An image is [N, C, H, W]. x is the column index (axis 3, grows to the
// right), y is the row index (axis 2, grows downwards), both in units of the grid
// spacing h. A kernel K is a [kh, kw] tensor (odd sizes, centred) applied as a
// cross-correlation, like conv2d:
//     (K * u)[row][col] = sum_{r, c} K[r][c] u[row + r - kh/2][col + c - kw/2]
// so K[r][c] weighs the sample at offset (x, y) = ((c - kw/2) h, (r - kh/2) h).
// A kernel that approximates a derivative of total order m carries the factor h^-m.
//
// Every kernel is returned in float64 unless a dtype is given; apply_stencil converts it
// to the image's dtype.
#include <cstdint>
#include <vector>

#include "engine/engine.hpp"

namespace symgrad::pde {

enum class Axis { x, y };
const char* axis_name(Axis axis);

// d/dx or d/dy by central differences: accuracy 2 is the 3-point stencil (u(+h) - u(-h)) / 2h
// in a 3x3 kernel, accuracy 4 the 5-point one (-u(2h) + 8u(h) - 8u(-h) + u(-2h)) / 12h in 5x5.
Tensor first_derivative(Axis axis, double h = 1.0, int accuracy = 2, DType dtype = DType::f64);
// d2/dx2 or d2/dy2: accuracy 2 is (u(h) - 2u + u(-h)) / h^2 (3x3), accuracy 4 is
// (-u(2h) + 16u(h) - 30u + 16u(-h) - u(-2h)) / 12h^2 (5x5).
Tensor second_derivative(Axis axis, double h = 1.0, int accuracy = 2, DType dtype = DType::f64);
// The 5-point Laplacian d2/dx2 + d2/dy2 (3x3, accuracy 2).
Tensor laplacian(double h = 1.0, DType dtype = DType::f64);
// d2/dxdy from the four corners: (u(h,h) - u(h,-h) - u(-h,h) + u(-h,-h)) / 4h^2 (3x3, accuracy 2).
Tensor mixed_derivative(double h = 1.0, DType dtype = DType::f64);
// Sobel: the central difference along `axis` smoothed by [1 2 1] / 4 across it, scaled by
// 1/8h so that it approximates d/dx (or d/dy) to accuracy 2 rather than 8 times it.
Tensor sobel(Axis axis, double h = 1.0, DType dtype = DType::f64);

// ---- PDE-Net's moment matrix (Long, Lu, Ma, Dong, "PDE-Net: Learning PDEs from Data", 2018)
// Taylor-expanding u around the centre, a k x k kernel computes
//     K * u = sum_{p, q} M[p][q] h^(p+q) d^(p+q) u / dx^p dy^q,
//     M[p][q] = sum_{r, c} K[r][c] (c - k/2)^p (r - k/2)^q / (p! q!)     (offsets in units of h)
// so K approximates d^(i+j)/dx^i dy^j (times h^(i+j)) when M[i][j] = 1 and every other
// moment of low total order vanishes. The first nonzero moment of total order i + j + s
// leaves an error O(h^s): s is the kernel's order of accuracy.

// M[p][q] for 0 <= p, q < orders (p: x order, q: y order) of a square kernel with odd k,
// with offsets in units of h and the kernel taken as given (not rescaled by h).
// Returned as [orders, orders] float64.
Tensor moment_matrix(const Tensor& kernel, std::int64_t orders);

// The k x k kernel (k odd) approximating d^(i+j)/dx^i dy^j with error O(h^accuracy):
// the moments M[p][q] with p + q <= i + j + accuracy - 1 are set to the target
// (M[i][j] = 1, the rest 0) and, of all kernels that do so, the one with the smallest sum
// of squares is returned (K = A^T (A A^T)^-1 e, solved by solve_linear_system). Throws
// std::invalid_argument if k is even, below 1, or smaller than i + j + accuracy (a k-point
// grid line cannot hold more than k independent moments). The constraints are unchanged
// by x -> -x and y -> -y, so the minimum-norm kernel is even or odd in each direction like
// the target derivative, its moments of total order i + j + (odd) vanish, and an odd
// requested accuracy comes out one higher (accuracy_order reports the actual order).
Tensor moment_kernel(std::int64_t k, int dx_order, int dy_order, int accuracy, double h = 1.0,
                     DType dtype = DType::f64);

// The order of accuracy s of `kernel` (built for spacing h) as an approximation of
// d^(i+j)/dx^i dy^j: the smallest s >= 1 such that a moment of total order i + j + s of
// h^(i+j) kernel differs from the target by more than tolerance; 0 if a moment of order
// <= i + j is wrong (the kernel does not approximate that derivative). Moments are checked
// up to total order max_order; a kernel right up to there gets max_order - i - j + 1.
int accuracy_order(const Tensor& kernel, int dx_order, int dy_order, double h = 1.0,
                   int max_order = 12, double tolerance = 1e-9);

// Solves the n x n system A z = b (A row-major) by Gaussian elimination with partial
// pivoting. Throws std::invalid_argument on mismatched sizes and when a pivot is below
// 1e-12 times the largest entry of A (singular to working precision).
std::vector<double> solve_linear_system(std::vector<double> A, std::vector<double> b);

// ---- Applying kernels
// The weight [channels, 1, kh, kw] of a depthwise conv2d (groups = channels) that applies
// `kernel` [kh, kw] to every channel. Differentiable in kernel.
Tensor depthwise_weight(const Tensor& kernel, std::int64_t channels);

// kernel * image for every channel of image [N, C, H, W], same size out (padding kh/2,
// kw/2 with padding_mode as the boundary condition: zeros = Dirichlet u = 0 outside,
// replicate/reflect = Neumann-like, circular = periodic). A depthwise conv2d, so
// differentiable to any order in image and kernel.
Tensor apply_stencil(const Tensor& image, const Tensor& kernel, PadMode padding_mode = PadMode::zeros);

}  // namespace symgrad::pde
