// The benchmark Hamiltonian systems of background §2: each exact H written with
// differentiable ops, and each vector field derived by hand (tests compare it with the
// autograd symplectic gradient of H, so a slip in either shows up).
#include "pde/hamiltonian/systems.hpp"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace symgrad::pde::hamiltonian {
namespace {

// Throws unless x is [batch, 2n]; returns n.
std::int64_t half_width(const Tensor& x, const char* function) {
  if (!x.defined()) throw std::invalid_argument(std::string(function) + ": state is undefined");
  if (x.dim() != 2) {
    throw std::invalid_argument(std::string(function) + ": state " + shape_str(x.shape()) +
                                " must be [batch, 2n]");
  }
  if (x.size(1) % 2 != 0) {
    throw std::invalid_argument(std::string(function) + ": state " + shape_str(x.shape()) +
                                " has an odd number of columns");
  }
  return x.size(1) / 2;
}

// Throws unless x is [batch, 2 dof] for the named system.
void require_state_of(const Tensor& x, std::int64_t dof, const std::string& system) {
  const std::string function = system;
  const std::int64_t n = half_width(x, function.c_str());
  if (n != dof) {
    throw std::invalid_argument(system + ": state " + shape_str(x.shape()) + " must have " +
                                std::to_string(2 * dof) + " columns (q then p, " +
                                std::to_string(dof) + " degrees of freedom)");
  }
}

// Column i of x as [batch, 1].
Tensor column(const Tensor& x, std::int64_t i) { return narrow(x, 1, i, 1); }

// [batch, 1] -> [batch].
Tensor per_sample(const Tensor& x) { return reshape(x, {-1}); }

}  // namespace

// ---- state helpers -----------------------------------------------------------

Tensor positions(const Tensor& x) {
  const std::int64_t n = half_width(x, "positions");
  return narrow(x, 1, 0, n);
}

Tensor momenta(const Tensor& x) {
  const std::int64_t n = half_width(x, "momenta");
  return narrow(x, 1, n, n);
}

Tensor join_state(const Tensor& q, const Tensor& p) {
  if (!q.defined() || !p.defined()) throw std::invalid_argument("join_state: q or p is undefined");
  if (q.dim() != 2 || q.shape() != p.shape()) {
    throw std::invalid_argument("join_state: q " + shape_str(q.shape()) + " and p " +
                                shape_str(p.shape()) + " must both be [batch, n]");
  }
  if (q.dtype() != p.dtype()) {
    throw std::invalid_argument(std::string("join_state: q is ") + dtype_name(q.dtype()) +
                                " but p is " + dtype_name(p.dtype()));
  }
  return concat({q, p}, 1);
}

Tensor symplectic_gradient(const Tensor& grad_h) {
  const std::int64_t n = half_width(grad_h, "symplectic_gradient");
  const Tensor dh_dq = narrow(grad_h, 1, 0, n);
  const Tensor dh_dp = narrow(grad_h, 1, n, n);
  return concat({dh_dp, neg(dh_dq)}, 1);
}

Tensor symplectic_form(std::int64_t n, DType dtype) {
  if (n < 1) throw std::invalid_argument("symplectic_form: n = " + std::to_string(n) + " must be >= 1");
  const std::int64_t size = 2 * n;
  std::vector<double> values(static_cast<std::size_t>(size * size), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    values[static_cast<std::size_t>(i * size + (n + i))] = 1.0;   // dq/dt = +dH/dp
    values[static_cast<std::size_t>((n + i) * size + i)] = -1.0;  // dp/dt = -dH/dq
  }
  return from_vector(values, {size, size}, dtype);
}

Tensor autograd_symplectic_gradient(const ScalarField& hamiltonian, const Tensor& x, bool create_graph) {
  half_width(x, "autograd_symplectic_gradient");
  GradModeGuard grad_on(true);  // the derivative needs a graph even inside a NoGradGuard
  // Differentiate with respect to x itself when it already carries history (a rollout being
  // backpropagated), otherwise with respect to a fresh leaf holding the same values.
  const Tensor input = x.requires_grad() ? x : x.detach().requires_grad_();
  const Tensor h = hamiltonian(input);
  if (h.dim() != 1 || h.size(0) != x.size(0)) {
    throw std::invalid_argument("autograd_symplectic_gradient: H of state " + shape_str(x.shape()) +
                                " has shape " + shape_str(h.shape()) + ", expected [" +
                                std::to_string(x.size(0)) + "]");
  }
  GradOptions options;
  options.create_graph = create_graph;
  options.allow_unused = true;
  TensorList grads = grad({sum(h)}, {input}, {}, options);
  const Tensor grad_h = grads[0].defined() ? grads[0] : zeros_like(x);
  if (create_graph) return symplectic_gradient(grad_h);
  NoGradGuard no_grad;
  return symplectic_gradient(grad_h.detach());
}

// ---- the systems -------------------------------------------------------------

HamiltonianSystem mass_spring() {
  HamiltonianSystem system;
  system.name = "mass_spring";
  system.dof = 1;
  system.separable = true;
  system.hamiltonian = [](const Tensor& x) {
    require_state_of(x, 1, "mass_spring");
    return sum(square(x), {1});  // q^2 + p^2
  };
  system.field = [](const Tensor& x) {
    require_state_of(x, 1, "mass_spring");
    const Tensor q = column(x, 0), p = column(x, 1);
    return concat({p * 2.0, q * -2.0}, 1);
  };
  return system;
}

HamiltonianSystem pendulum_hnn() {
  HamiltonianSystem system;
  system.name = "pendulum_hnn";
  system.dof = 1;
  system.separable = true;
  system.hamiltonian = [](const Tensor& x) {
    require_state_of(x, 1, "pendulum_hnn");
    const Tensor q = column(x, 0), p = column(x, 1);
    return per_sample((1.0 - cos(q)) * 3.0 + square(p));
  };
  system.field = [](const Tensor& x) {
    require_state_of(x, 1, "pendulum_hnn");
    const Tensor q = column(x, 0), p = column(x, 1);
    return concat({p * 2.0, sin(q) * -3.0}, 1);
  };
  return system;
}

HamiltonianSystem pendulum() {
  HamiltonianSystem system;
  system.name = "pendulum";
  system.dof = 1;
  system.separable = true;
  system.hamiltonian = [](const Tensor& x) {
    require_state_of(x, 1, "pendulum");
    const Tensor q = column(x, 0), p = column(x, 1);
    return per_sample(square(p) * 0.5 - cos(q));
  };
  system.field = [](const Tensor& x) {
    require_state_of(x, 1, "pendulum");
    const Tensor q = column(x, 0), p = column(x, 1);
    return concat({p, neg(sin(q))}, 1);
  };
  return system;
}

HamiltonianSystem two_body() {
  HamiltonianSystem system;
  system.name = "two_body";
  system.dof = 4;
  system.separable = true;
  // q = (x1, y1, x2, y2): the separation q1 - q2 is [batch, 2].
  const auto separation = [](const Tensor& x) {
    return sub(narrow(x, 1, 0, 2), narrow(x, 1, 2, 2));
  };
  system.hamiltonian = [separation](const Tensor& x) {
    require_state_of(x, 4, "two_body");
    const Tensor kinetic = sum(square(narrow(x, 1, 4, 4)), {1}) * 0.5;
    const Tensor distance = sqrt(sum(square(separation(x)), {1}));
    return kinetic - reciprocal(distance);
  };
  // dp1/dt = -dH/dq1 = -(q1 - q2) / r^3, dp2/dt = +(q1 - q2) / r^3 (Newton's law of gravity).
  system.field = [separation](const Tensor& x) {
    require_state_of(x, 4, "two_body");
    const Tensor d = separation(x);
    const Tensor r_squared = sum(square(d), {1}, /*keepdim=*/true);
    const Tensor pull = d / (r_squared * sqrt(r_squared));
    return concat({narrow(x, 1, 4, 4), neg(pull), pull}, 1);
  };
  return system;
}

namespace {

// The double pendulum's mass matrix M(theta) = [[a, b cos D], [b cos D, d]], D = theta1 -
// theta2, with a = (m1 + m2) l1^2, b = m2 l1 l2, d = m2 l2^2 (T = omega^T M omega / 2).
struct DoublePendulumTerms {
  double a, b, d;
  double gravity1, gravity2;  // V = -gravity1 cos theta1 - gravity2 cos theta2
};

DoublePendulumTerms double_pendulum_terms(const DoublePendulumParameters& pp, const char* function) {
  const double values[] = {pp.m1, pp.m2, pp.l1, pp.l2, pp.g};
  for (double v : values) {
    if (!std::isfinite(v) || v <= 0) {
      throw std::invalid_argument(std::string(function) + ": masses, lengths and g must be finite and > 0");
    }
  }
  return {(pp.m1 + pp.m2) * pp.l1 * pp.l1, pp.m2 * pp.l1 * pp.l2, pp.m2 * pp.l2 * pp.l2,
          (pp.m1 + pp.m2) * pp.g * pp.l1, pp.m2 * pp.g * pp.l2};
}

// The angles, their difference's sine and cosine, and det M = a d - b^2 cos^2 D
// (= m2 l1^2 l2^2 (m1 + m2 sin^2 D) > 0), all [batch, 1].
struct DoublePendulumAngles {
  Tensor theta1, theta2, sin_difference, cos_difference, determinant;
};

DoublePendulumAngles double_pendulum_angles(const Tensor& x, const DoublePendulumTerms& t) {
  DoublePendulumAngles angles;
  angles.theta1 = column(x, 0);
  angles.theta2 = column(x, 1);
  const Tensor difference = angles.theta1 - angles.theta2;
  angles.sin_difference = sin(difference);
  angles.cos_difference = cos(difference);
  angles.determinant = t.a * t.d - square(angles.cos_difference) * (t.b * t.b);
  return angles;
}

Tensor double_pendulum_potential(const DoublePendulumAngles& angles, const DoublePendulumTerms& t) {
  return cos(angles.theta1) * -t.gravity1 - cos(angles.theta2) * t.gravity2;
}

}  // namespace

HamiltonianSystem double_pendulum(const DoublePendulumParameters& parameters) {
  const DoublePendulumTerms t = double_pendulum_terms(parameters, "double_pendulum");
  HamiltonianSystem system;
  system.name = "double_pendulum";
  system.dof = 2;
  system.separable = false;
  // H = p^T M^-1 p / 2 + V with M^-1 = [[d, -b c], [-b c, a]] / det M.
  system.hamiltonian = [t](const Tensor& x) {
    require_state_of(x, 2, "double_pendulum");
    const DoublePendulumAngles angles = double_pendulum_angles(x, t);
    const Tensor p1 = column(x, 2), p2 = column(x, 3);
    const Tensor numerator = square(p1) * t.d + square(p2) * t.a -
                             p1 * p2 * angles.cos_difference * (2.0 * t.b);
    return per_sample(numerator / (angles.determinant * 2.0) + double_pendulum_potential(angles, t));
  };
  // dtheta/dt = dH/dp = M^-1 p = omega. For dH/dtheta at fixed p,
  // d/dD (p^T M^-1 p / 2) = -omega^T (dM/dD) omega / 2 = b sin D omega1 omega2, which enters
  // dH/dtheta1 with + and dH/dtheta2 with -.
  system.field = [t](const Tensor& x) {
    require_state_of(x, 2, "double_pendulum");
    const DoublePendulumAngles angles = double_pendulum_angles(x, t);
    const Tensor p1 = column(x, 2), p2 = column(x, 3);
    const Tensor b_cos = angles.cos_difference * t.b;
    const Tensor omega1 = (p1 * t.d - b_cos * p2) / angles.determinant;
    const Tensor omega2 = (p2 * t.a - b_cos * p1) / angles.determinant;
    const Tensor coupling = angles.sin_difference * omega1 * omega2 * t.b;
    const Tensor p1_dot = neg(coupling) - sin(angles.theta1) * t.gravity1;
    const Tensor p2_dot = coupling - sin(angles.theta2) * t.gravity2;
    return concat({omega1, omega2, p1_dot, p2_dot}, 1);
  };
  return system;
}

Tensor mass_spring_exact(const Tensor& x0, double t) {
  require_state_of(x0, 1, "mass_spring_exact");
  if (!std::isfinite(t)) throw std::invalid_argument("mass_spring_exact: time t is not finite");
  // q' = 2p, p' = -2q: a clockwise rotation of (q, p) by angle 2t.
  const double c = std::cos(2.0 * t), s = std::sin(2.0 * t);
  const Tensor q0 = column(x0, 0), p0 = column(x0, 1);
  return concat({q0 * c + p0 * s, p0 * c - q0 * s}, 1);
}

LagrangianSystem double_pendulum_lagrangian(const DoublePendulumParameters& parameters) {
  const DoublePendulumTerms t = double_pendulum_terms(parameters, "double_pendulum_lagrangian");
  // T = (a w1^2 + d w2^2) / 2 + b cos D w1 w2, with the state (theta1, theta2, w1, w2).
  const auto kinetic = [t](const Tensor& x, const DoublePendulumAngles& angles) {
    const Tensor w1 = column(x, 2), w2 = column(x, 3);
    return (square(w1) * t.a + square(w2) * t.d) * 0.5 + angles.cos_difference * w1 * w2 * t.b;
  };
  LagrangianSystem system;
  system.name = "double_pendulum";
  system.dof = 2;
  system.lagrangian = [t, kinetic](const Tensor& x) {
    require_state_of(x, 2, "double_pendulum_lagrangian");
    const DoublePendulumAngles angles = double_pendulum_angles(x, t);
    return per_sample(kinetic(x, angles) - double_pendulum_potential(angles, t));
  };
  system.energy = [t, kinetic](const Tensor& x) {
    require_state_of(x, 2, "double_pendulum_lagrangian");
    const DoublePendulumAngles angles = double_pendulum_angles(x, t);
    return per_sample(kinetic(x, angles) + double_pendulum_potential(angles, t));
  };
  // Euler-Lagrange, d/dt dL/dw = dL/dtheta, gives M alpha = r with
  //   r1 = -b sin D w2^2 - (m1 + m2) g l1 sin theta1,
  //   r2 = +b sin D w1^2 - m2 g l2 sin theta2,
  // solved by the 2x2 inverse of M.
  system.field = [t](const Tensor& x) {
    require_state_of(x, 2, "double_pendulum_lagrangian");
    const DoublePendulumAngles angles = double_pendulum_angles(x, t);
    const Tensor w1 = column(x, 2), w2 = column(x, 3);
    const Tensor b_sin = angles.sin_difference * t.b;
    const Tensor r1 = neg(b_sin * square(w2)) - sin(angles.theta1) * t.gravity1;
    const Tensor r2 = b_sin * square(w1) - sin(angles.theta2) * t.gravity2;
    const Tensor b_cos = angles.cos_difference * t.b;
    const Tensor alpha1 = (r1 * t.d - b_cos * r2) / angles.determinant;
    const Tensor alpha2 = (r2 * t.a - b_cos * r1) / angles.determinant;
    return concat({w1, w2, alpha1, alpha2}, 1);
  };
  return system;
}

}  // namespace symgrad::pde::hamiltonian
