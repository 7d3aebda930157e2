#include "pde/generator_flow.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace symgrad::pde {

namespace {

void check_grid(const char* who, std::int64_t height, std::int64_t width) {
  if (height < 1 || width < 1)
    throw std::invalid_argument(std::string(who) + ": grid " + std::to_string(height) + " x " +
                                std::to_string(width) + " must be at least 1 x 1");
}

void check_image(const char* who, const Tensor& image) {
  if (image.dim() != 4)
    throw std::invalid_argument(std::string(who) + ": image " + shape_str(image.shape()) + " must be [N, C, H, W]");
}

// Bilinear sample of one H x W plane at centred coordinates (x, y), 0 outside the grid.
double bilinear(const double* plane, std::int64_t height, std::int64_t width, double x, double y) {
  const double col = x + 0.5 * static_cast<double>(width - 1);
  const double row = y + 0.5 * static_cast<double>(height - 1);
  const double c0 = std::floor(col), r0 = std::floor(row);
  const double fc = col - c0, fr = row - r0;
  auto at = [&](double r, double c) {
    // Written so that a NaN coordinate also reads 0 (it fails every comparison).
    const bool inside = r >= 0 && c >= 0 && r <= static_cast<double>(height - 1) && c <= static_cast<double>(width - 1);
    if (!inside) return 0.0;
    return plane[static_cast<std::int64_t>(r) * width + static_cast<std::int64_t>(c)];
  };
  return (1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c0 + 1)) +
         fr * ((1 - fc) * at(r0 + 1, c0) + fc * at(r0 + 1, c0 + 1));
}

}  // namespace

Tensor x_coordinates(std::int64_t height, std::int64_t width, DType dtype) {
  check_grid("x_coordinates", height, width);
  std::vector<double> x(static_cast<std::size_t>(height * width));
  for (std::int64_t r = 0; r < height; ++r)
    for (std::int64_t c = 0; c < width; ++c)
      x[static_cast<std::size_t>(r * width + c)] = static_cast<double>(c) - 0.5 * static_cast<double>(width - 1);
  return from_vector(x, {height, width}, dtype);
}

Tensor y_coordinates(std::int64_t height, std::int64_t width, DType dtype) {
  check_grid("y_coordinates", height, width);
  std::vector<double> y(static_cast<std::size_t>(height * width));
  for (std::int64_t r = 0; r < height; ++r)
    for (std::int64_t c = 0; c < width; ++c)
      y[static_cast<std::size_t>(r * width + c)] = static_cast<double>(r) - 0.5 * static_cast<double>(height - 1);
  return from_vector(y, {height, width}, dtype);
}

VectorField translation_field(std::int64_t height, std::int64_t width, double vx, double vy, DType dtype) {
  check_grid("translation_field", height, width);
  return {full({height, width}, vx, dtype), full({height, width}, vy, dtype)};
}

VectorField rotation_field(std::int64_t height, std::int64_t width, DType dtype) {
  return {-y_coordinates(height, width, dtype), x_coordinates(height, width, dtype)};
}

VectorField dilation_field(std::int64_t height, std::int64_t width, DType dtype) {
  return {x_coordinates(height, width, dtype), y_coordinates(height, width, dtype)};
}

// ---- the Euler steps ---------------------------------------------------------------------

Tensor apply_generator(const Tensor& image, const VectorField& L, const FlowOptions& opts) {
  check_image("apply_generator", image);
  const Shape plane{image.size(2), image.size(3)};
  if (!L.a.defined() || !L.b.defined() || L.a.shape() != plane || L.b.shape() != plane)
    throw std::invalid_argument("apply_generator: coefficient fields " +
                                (L.a.defined() ? shape_str(L.a.shape()) : std::string("(undefined)")) + " and " +
                                (L.b.defined() ? shape_str(L.b.shape()) : std::string("(undefined)")) +
                                " must both be " + shape_str(plane) + " for image " + shape_str(image.shape()));
  const Tensor a = L.a.dtype() == image.dtype() ? L.a : to_dtype(L.a, image.dtype());
  const Tensor b = L.b.dtype() == image.dtype() ? L.b : to_dtype(L.b, image.dtype());
  const Tensor du_dx = apply_stencil(image, first_derivative(Axis::x, 1.0, opts.accuracy), opts.padding_mode);
  const Tensor du_dy = apply_stencil(image, first_derivative(Axis::y, 1.0, opts.accuracy), opts.padding_mode);
  return a * du_dx + b * du_dy;
}

Tensor exp_generator(const Tensor& image, const VectorField& L, double t, std::int64_t n, const FlowOptions& opts,
                     std::vector<Tensor>* frames) {
  check_image("exp_generator", image);
  if (n < 1) throw std::invalid_argument("exp_generator: step count n = " + std::to_string(n) + " must be >= 1");
  if (!std::isfinite(t)) throw std::invalid_argument("exp_generator: time t must be finite");
  const double step = t / static_cast<double>(n);
  Tensor u = image;
  if (frames) {
    frames->clear();
    frames->push_back(u);
  }
  for (std::int64_t i = 0; i < n; ++i) {
    u = u + step * apply_generator(u, L, opts);
    if (frames) frames->push_back(u);
  }
  return u;
}

// ---- exact flows ---------------------------------------------------------------------------

Tensor sample_bilinear(const Tensor& image, const Tensor& source_x, const Tensor& source_y) {
  check_image("sample_bilinear", image);
  const std::int64_t height = image.size(2), width = image.size(3);
  const Shape plane{height, width};
  if (source_x.shape() != plane || source_y.shape() != plane)
    throw std::invalid_argument("sample_bilinear: source coordinates " + shape_str(source_x.shape()) + " and " +
                                shape_str(source_y.shape()) + " must both be " + shape_str(plane) +
                                " for image " + shape_str(image.shape()));
  const std::vector<double> pixels = image.to_vector();
  const std::vector<double> xs = source_x.to_vector(), ys = source_y.to_vector();
  const std::size_t plane_size = static_cast<std::size_t>(height * width);
  std::vector<double> out(pixels.size());
  for (std::size_t offset = 0; offset < pixels.size(); offset += plane_size)
    for (std::size_t i = 0; i < plane_size; ++i)
      out[offset + i] = bilinear(pixels.data() + offset, height, width, xs[i], ys[i]);
  return from_vector(out, image.shape(), image.dtype());
}

Tensor translate(const Tensor& image, double tx, double ty) {
  check_image("translate", image);
  const Tensor x = x_coordinates(image.size(2), image.size(3));
  const Tensor y = y_coordinates(image.size(2), image.size(3));
  return sample_bilinear(image, x + tx, y + ty);
}

Tensor rotate(const Tensor& image, double angle) {
  check_image("rotate", image);
  const Tensor x = x_coordinates(image.size(2), image.size(3));
  const Tensor y = y_coordinates(image.size(2), image.size(3));
  const double c = std::cos(angle), s = std::sin(angle);
  return sample_bilinear(image, c * x - s * y, s * x + c * y);
}

Tensor dilate(const Tensor& image, double t) {
  check_image("dilate", image);
  const double factor = std::exp(t);
  return sample_bilinear(image, factor * x_coordinates(image.size(2), image.size(3)),
                         factor * y_coordinates(image.size(2), image.size(3)));
}

double relative_error(const Tensor& approx, const Tensor& exact) {
  if (approx.shape() != exact.shape())
    throw std::invalid_argument("relative_error: approx " + shape_str(approx.shape()) + " and exact " +
                                shape_str(exact.shape()) + " differ in shape");
  const std::vector<double> a = approx.to_vector(), e = exact.to_vector();
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - e[i]) * (a[i] - e[i]);
    norm += e[i] * e[i];
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

}  // namespace symgrad::pde
