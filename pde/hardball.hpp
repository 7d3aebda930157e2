#pragma once
// Ball activations: per pixel, the vector of channel values v (axis 1 of [N, C, H, W],
// or of [N, C]) is pulled back into the ball of radius r about the origin.
//
//   hardball: v -> v * min(1, r / ||v||)          (radial projection onto the ball)
//   softball: v -> v / sqrt(1 + ||v||^2 / r^2)    (a smooth variant, |softball(v)| < r)
//
// Both act on the length of v only, so they commute with every orthogonal change of the
// channel basis, hardball(Q v) = Q hardball(v) for Q in O(n), but not with a general
// invertible Q: a hardball shrinks a residual stream's GL(n) symmetry to O(n).
//
// The gradient at the ball's boundary. hardball is continuous but not differentiable
// where ||v|| = r (inside it is the identity, outside the projection). The rule used
// here, and tested: on the boundary and inside the ball the derivative is the inside
// one (the identity), so ||v|| <= r passes gradients unchanged; at v = 0 too (no 0/0).
// Both functions are built from differentiable engine ops, so they have derivatives
// of every order.
#include "engine/engine.hpp"
#include "nn/module.hpp"

namespace symgrad::pde {

// x: [N, C, ...] (rank >= 2, channels on axis 1); radius > 0.
Tensor hardball(const Tensor& x, double radius);
Tensor softball(const Tensor& x, double radius);

class Hardball : public nn::Module {
 public:
  explicit Hardball(double radius);
  Tensor forward(const Tensor& x) override { return hardball(x, radius_); }
  std::string type_name() const override { return "Hardball"; }
  std::string extra_repr() const override;  // "r = 5.657"
  double radius() const { return radius_; }

 private:
  double radius_;
};

class Softball : public nn::Module {
 public:
  explicit Softball(double radius);
  Tensor forward(const Tensor& x) override { return softball(x, radius_); }
  std::string type_name() const override { return "Softball"; }
  std::string extra_repr() const override;
  double radius() const { return radius_; }

 private:
  double radius_;
};

}  // namespace symgrad::pde
