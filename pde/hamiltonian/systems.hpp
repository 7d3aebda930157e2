#pragma once
// Hamiltonian systems with their exact energy and vector field (background §2).
//
// State convention, used by every file in pde/hamiltonian: a batch of states is a tensor
// x of shape [batch, 2n]; its first n columns are the positions q, the last n the momenta p.
// Hamilton's equations read dx/dt = J grad H(x) with J = [[0, I], [-I, 0]], i.e.
// dq/dt = dH/dp and dp/dt = -dH/dq ("the symplectic gradient" of H).
#include <cstdint>
#include <functional>
#include <string>

#include "engine/engine.hpp"

namespace symgrad::pde::hamiltonian {

// x [batch, 2n] -> dx/dt [batch, 2n]. Learned or exact; must be written with differentiable
// ops if a rollout through it is to be backpropagated.
using VectorField = std::function<Tensor(const Tensor& x)>;
// x [batch, 2n] -> [batch] (an energy, a Hamiltonian, a Lagrangian).
using ScalarField = std::function<Tensor(const Tensor& x)>;

Tensor positions(const Tensor& x);  // q = x[:, :n]; throws unless x is [batch, 2n]
Tensor momenta(const Tensor& x);    // p = x[:, n:]
Tensor join_state(const Tensor& q, const Tensor& p);  // concat along axis 1, shapes checked
// (dH/dp, -dH/dq) from grad H = (dH/dq, dH/dp), both [batch, 2n].
Tensor symplectic_gradient(const Tensor& grad_h);
// J = [[0, I], [-I, 0]] of size 2n x 2n.
Tensor symplectic_form(std::int64_t n, DType dtype = DType::f64);
// The vector field of H computed by autograd (grad with create_graph), for any H written
// with differentiable ops: used to check hand-derived fields and by the HNN.
Tensor autograd_symplectic_gradient(const ScalarField& hamiltonian, const Tensor& x, bool create_graph);

struct HamiltonianSystem {
  std::string name;        // "mass_spring", "pendulum", ...
  std::int64_t dof = 1;    // n; states have 2n columns
  bool separable = false;  // H = T(p) + V(q): dq/dt depends on p only, dp/dt on q only
  ScalarField hamiltonian; // the exact H, written with differentiable ops
  VectorField field;       // the exact (dH/dp, -dH/dq), derived by hand (not by autograd)
};

// H = q^2 + p^2 (the HNN paper's spring; its field is (2p, -2q)).
HamiltonianSystem mass_spring();
// H = 3 (1 - cos q) + p^2 (the HNN paper's pendulum: 2 m g l (1 - cos q) + l^2 p^2 / 2m
// with m = l = 1, g = 3).
HamiltonianSystem pendulum_hnn();
// H = p^2 / 2 - cos q (the SympNets paper's pendulum, and the integrator table's).
HamiltonianSystem pendulum();
// Two bodies in the plane, masses 1, gravitational constant 1 (the HNN paper's two-body):
// n = 4, q = (x1, y1, x2, y2), p = (px1, py1, px2, py2), H = |p1|^2/2 + |p2|^2/2 - 1/|q1 - q2|.
HamiltonianSystem two_body();
// The planar double pendulum in canonical coordinates (angles from the vertical and their
// conjugate momenta), not separable.
struct DoublePendulumParameters {
  double m1 = 1, m2 = 1, l1 = 1, l2 = 1, g = 1;
};
HamiltonianSystem double_pendulum(const DoublePendulumParameters& parameters = {});

// The spring's exact flow: x(t) = rotation of x0 by angle 2t in the (q, p) plane.
// x0 [batch, 2], t a scalar time; float64 in, float64 out.
Tensor mass_spring_exact(const Tensor& x0, double t);

// A Lagrangian system, for the LNN: states are (q, qdot), [batch, 2n].
struct LagrangianSystem {
  std::string name;
  std::int64_t dof = 1;
  ScalarField lagrangian;    // L(q, qdot) = T - V, differentiable ops
  ScalarField energy;        // T + V
  VectorField field;         // (qdot, qddot), the exact Euler-Lagrange accelerations
};
// The double pendulum as L(theta, theta_dot) with the same parameters.
LagrangianSystem double_pendulum_lagrangian(const DoublePendulumParameters& parameters = {});

}  // namespace symgrad::pde::hamiltonian
