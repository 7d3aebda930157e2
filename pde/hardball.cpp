#include "pde/hardball.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace symgrad::pde {
namespace {

void check_ball_input(const char* op, const Tensor& x, double radius) {
  if (x.dim() < 2)
    throw std::invalid_argument(std::string(op) + ": input " + shape_str(x.shape()) +
                                " needs a channel axis (rank >= 2, channels on axis 1)");
  if (!(radius > 0) || !std::isfinite(radius))
    throw std::invalid_argument(std::string(op) + ": radius must be positive and finite, got " +
                                std::to_string(radius));
}

// ||v||^2 over the channels of each pixel: [N, 1, ...].
Tensor squared_channel_norm(const Tensor& x) { return sum(mul(x, x), {1}, /*keepdim=*/true); }

}  // namespace

Tensor hardball(const Tensor& x, double radius) {
  check_ball_input("hardball", x, radius);
  const Tensor norm2 = squared_channel_norm(x);
  const double r2 = radius * radius;
  // Inside the ball (boundary included) the factor is exactly 1 (so inside points pass
  // unchanged, bit for bit) and carries no gradient: the derivative there is the identity.
  // The outside branch sees r^2 there instead of ||v||^2, so it never evaluates
  // 1/sqrt(0) and no 0 * inf reaches the gradient at v = 0.
  const Tensor inside = le(norm2, scalar(r2, x.dtype()));
  const Tensor outside_norm2 = where(inside, full(norm2.shape(), r2, x.dtype()), norm2);
  const Tensor shrink = div(scalar(radius, x.dtype()), sqrt(outside_norm2));
  const Tensor factor = where(inside, ones(norm2.shape(), x.dtype()), shrink);
  return mul(x, factor);
}

Tensor softball(const Tensor& x, double radius) {
  check_ball_input("softball", x, radius);
  const Tensor norm2 = squared_channel_norm(x);
  const Tensor denom = sqrt(add(scalar(1.0, x.dtype()), div(norm2, scalar(radius * radius, x.dtype()))));
  return div(x, denom);
}

namespace {
std::string radius_repr(double radius) {
  std::ostringstream out;
  out << "r = " << radius;
  return out.str();
}
void check_radius(const char* layer, double radius) {
  if (!(radius > 0) || !std::isfinite(radius))
    throw std::invalid_argument(std::string(layer) + ": radius must be positive and finite, got " +
                                std::to_string(radius));
}
}  // namespace

Hardball::Hardball(double radius) : radius_(radius) { check_radius("Hardball", radius); }
std::string Hardball::extra_repr() const { return radius_repr(radius_); }

Softball::Softball(double radius) : radius_(radius) { check_radius("Softball", radius); }
std::string Softball::extra_repr() const { return radius_repr(radius_); }

}  // namespace symgrad::pde
