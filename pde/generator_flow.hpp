#pragma once
// The exponential of a generator: a local operator, applied many times, makes a global
// transformation (background §1). For a first-order operator on images
//     L = a(x, y) d/dx + b(x, y) d/dy
// exp(tL) u = u o phi_t, where phi_t is the flow of the vector field (a, b) for time t
// (both sides solve u_t = L u). Repeated explicit Euler steps approximate it:
//     exp(tL) u ~ (1 + (t/n) L)^n u,      with d/dx, d/dy central-difference stencils,
// the same structure as a ResNet: n residual blocks, each u + (t/n) * (3x3 conv).
//
// Coordinates are in pixel units, centred on the image centre:
//     x = col - (W - 1) / 2,   y = row - (H - 1) / 2   (y grows downwards, see stencils.hpp)
// so the stencils use h = 1 and a translation time t is a shift in pixels.
//   translation  a = vx, b = vy   phi_t(p) = p + t v           (u shifts by -t v)
//   rotation     a = -y, b = x    phi_t = rotation by angle t   (on screen, with y down,
//                                 the content turns anticlockwise by t)
//   dilation     a = x,  b = y    phi_t(p) = e^t p              (content shrinks by e^-t;
//                                 t < 0 zooms in)
//
// Stable regime. The step u + s a D_x u with central D_x multiplies the Fourier mode
// e^{i k x} by 1 + i s a sin(k) / h: more than 1 in size for every s > 0, so explicit Euler
// with central differences is never strictly stable for advection. Over n steps of size
// s = t/n the worst mode grows by (1 + (t |a| / (n h))^2)^(n/2) ~ exp(t^2 |a|^2 / (2 n h^2)),
// which tends to 1 as n grows: the scheme converges (for smooth u), but only once
// n >> (t max|a| / h)^2 / 2, i.e. when each step moves the content well under a pixel
// (t max|a| / n << h) and the total displacement is modest. For rotation and dilation
// max|a| is the image's radius, so a 30 degree turn of a 56 x 56 image needs n in the tens
// to hundreds. Below that regime the error grows with the highest frequencies in u:
// smooth (blurred or upsampled) images tolerate fewer steps.
#include <cstdint>
#include <vector>

#include "engine/engine.hpp"
#include "pde/stencils.hpp"

namespace symgrad::pde {

// L = a d/dx + b d/dy with coefficient fields a, b of shape [H, W] (they broadcast over
// the batch and channels of an [N, C, H, W] image).
struct VectorField {
  Tensor a, b;
};

// Centred pixel coordinates of an H x W grid (see above), each [H, W].
Tensor x_coordinates(std::int64_t height, std::int64_t width, DType dtype = DType::f64);
Tensor y_coordinates(std::int64_t height, std::int64_t width, DType dtype = DType::f64);

VectorField translation_field(std::int64_t height, std::int64_t width, double vx = 1.0, double vy = 0.0,
                              DType dtype = DType::f64);
VectorField rotation_field(std::int64_t height, std::int64_t width, DType dtype = DType::f64);   // -y d_x + x d_y
VectorField dilation_field(std::int64_t height, std::int64_t width, DType dtype = DType::f64);   //  x d_x + y d_y

struct FlowOptions {
  PadMode padding_mode = PadMode::zeros;  // the boundary condition of every step
  int accuracy = 2;                       // of the derivative stencils: 2 (3x3) or 4 (5x5)
};

// L u for an image [N, C, H, W] (differentiable in image and in the coefficients).
Tensor apply_generator(const Tensor& image, const VectorField& L, const FlowOptions& opts = {});

// (1 + (t/n) L)^n image: n explicit Euler steps of u_t = L u. If frames is given it
// receives the n + 1 images u_0 = image, u_1, ..., u_n. Throws std::invalid_argument if
// n < 1 or the field does not match the image's H x W.
Tensor exp_generator(const Tensor& image, const VectorField& L, double t, std::int64_t n,
                     const FlowOptions& opts = {}, std::vector<Tensor>* frames = nullptr);

// ---- the exact flows, for measuring the error ------------------------------------------
// out(p) = image(source(p)) by bilinear interpolation, with image = 0 outside the grid
// (the zero padding's boundary condition). source_x, source_y: [H, W] centred pixel
// coordinates. Plain loops in double (a reference, not differentiable); the output has the
// image's shape and dtype.
Tensor sample_bilinear(const Tensor& image, const Tensor& source_x, const Tensor& source_y);

// exp(tL) image for the three generators above, in closed form:
Tensor translate(const Tensor& image, double tx, double ty);  // image(x + tx, y + ty)
Tensor rotate(const Tensor& image, double angle);             // image(R_angle p)
Tensor dilate(const Tensor& image, double t);                 // image(e^t p)

// ||approx - exact|| / ||exact|| over all elements (Frobenius norms).
double relative_error(const Tensor& approx, const Tensor& exact);

}  // namespace symgrad::pde
