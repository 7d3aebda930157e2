#pragma once
// Lagrangian Neural Networks (Cranmer, Greydanus, Hoyer, Battaglia, Spergel & Ho 2020).
//
// An LNN learns a scalar L_theta(q, qdot) and predicts the motion from the Euler-Lagrange
// equations d/dt dL/dqdot = dL/dq, which, expanded by the chain rule, read per sample
//   (d2L/dqdot2) qddot = dL/dq - (d2L/dq dqdot) qdot          (Cranmer et al. eq. 6)
// The Hessian blocks come from autograd (grad with create_graph) and the n x n system is
// solved per sample with engine solve. A loss on qddot therefore differentiates through
// a Hessian and a linear solve: training needs third derivatives of the network. Whatever
// the weights, the learned motion conserves the learned energy E = qdot . dL/dqdot - L.
//
// States here are (q, qdot), [batch, 2n] (systems.hpp's LagrangianSystem), not (q, p).
// The baseline (AccelerationMLP) is an MLP that outputs qddot directly.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"
#include "pde/hamiltonian/systems.hpp"

namespace symgrad::pde::hamiltonian {

// How the MLP's weights start.
enum class LnnInit {
  // nn::Linear's default (PyTorch's).
  pytorch,
  // nn::Linear's default with every weight after the first layer made non-negative. A
  // softplus network whose later weights are non-negative is convex in its inputs (a
  // non-negative sum of convex non-decreasing functions of convex functions; Amos, Xu &
  // Kolter 2017, input-convex networks), and qdot enters the first layer linearly, so at
  // the start d2L/dqdot2 is positive definite at every state, as a mass matrix must be.
  // From a random start it is indefinite almost everywhere, and training cannot reach the
  // definite region without passing through singular Hessians, where qddot = M^-1 (...)
  // explodes: the loss plateaus. Training may later make weights negative.
  convex,
  // The initialisation Cranmer et al. derive for LNNs (their appendix, for softplus MLPs
  // of uniform width): biases 0, weights normal with std c / sqrt(n), n the larger side of
  // the weight, c = 2.2 for the first layer, 0.58 i for hidden layer i, n for the output.
  paper,
};

struct LnnOptions {
  std::vector<std::int64_t> hidden = {128, 128};  // widths of the hidden layers (at least one)
  // The paper uses softplus MLPs: smooth, with nonzero third derivative (the loss
  // differentiates the network three times). softplus_beta > 1 sharpens the curve
  // (softplus(beta x) / beta): with inputs of order 1 a beta-1 network is nearly
  // quadratic in them and learns the products the double pendulum's L needs slowly.
  double softplus_beta = 1.0;
  LnnInit init = LnnInit::convex;
  // Feed (cos q, sin q) to the network instead of q: L becomes 2 pi-periodic in every
  // coordinate, as it must be for angles (the double pendulum's configuration space is
  // a torus), so a trajectory that swings over the top sees no seam. The MLP then has
  // 3n inputs.
  bool periodic_positions = false;
  // With periodic_positions, also feed (cos, sin) of every difference q_i - q_j (i < j),
  // n (n - 1) more inputs: the relative angle of two links of a chain, on which their
  // kinetic coupling depends (the double pendulum's m2 l1 l2 cos(q1 - q2) qdot1 qdot2).
  // A plain MLP of (cos q, sin q) must build that product itself, which it learns slowly.
  bool angle_differences = false;
  // The network sees qdot / velocity_scale (input normalisation; the dynamics are exact
  // in qdot whatever the scale, autograd carries the factor).
  double velocity_scale = 1.0;
  DType dtype = DType::f32;
};

// The network's input features of a state (q, qdot): (q or (cos q, sin q) [, cos and sin of
// q_i - q_j], qdot / scale).
// Shared by the LNN and the baseline so both see the same inputs.
Tensor lagrangian_features(const Tensor& x, std::int64_t dof, const LnnOptions& options);

class LagrangianNN : public nn::Module {
 public:
  // L_theta an MLP of the state's features -> 1.
  explicit LagrangianNN(std::int64_t dof, const LnnOptions& options = {});
  // A given Lagrangian in place of the network (no parameters), e.g. an exact L to check
  // that acceleration() reproduces its Euler-Lagrange equations.
  LagrangianNN(std::int64_t dof, ScalarField lagrangian, DType dtype);

  // x [batch, 2 dof] -> L(x) [batch].
  Tensor lagrangian(const Tensor& x);
  // x [batch, 2 dof] -> qddot [batch, dof] from eq. 6 above. With grad mode on the result
  // is part of the graph (a loss on it trains the weights; if x requires grad it stays
  // differentiable in x). With grad mode off it is a plain tensor, though autograd still
  // runs inside to form the Hessian.
  Tensor acceleration(const Tensor& x);
  // x [batch, 2 dof] -> (qdot, qddot) [batch, 2 dof], the field an integrator follows.
  Tensor forward(const Tensor& x) override;
  // The learned energy E = qdot . dL/dqdot - L (conserved by the learned flow) [batch].
  Tensor energy(const Tensor& x);

  // The model as a VectorField / ScalarField; they refer to this model, which must
  // outlive them.
  VectorField field();
  ScalarField lagrangian_field();

  std::int64_t dof() const { return dof_; }
  const LnnOptions& options() const { return options_; }
  std::string type_name() const override { return "LagrangianNN"; }
  std::string extra_repr() const override;  // "dof 2, periodic 6 -> 128 -> 128 -> 1, softplus beta 3, convex init"

  std::shared_ptr<nn::Sequential> mlp;  // null for a given Lagrangian

 private:
  void check_state(const Tensor& x, const char* method) const;

  std::int64_t dof_;
  LnnOptions options_;
  DType dtype_;
  ScalarField given_lagrangian_;  // set by the second constructor
};

// The baseline: an MLP of the same features -> dof outputs read as qddot.
class AccelerationMLP : public nn::Module {
 public:
  // The MLP's outputs are multiplied by acceleration_scale (output normalisation: an MLP
  // starts with outputs of order 1).
  explicit AccelerationMLP(std::int64_t dof, const LnnOptions& options = {}, double acceleration_scale = 1.0);

  Tensor acceleration(const Tensor& x);      // [batch, 2 dof] -> [batch, dof]
  Tensor forward(const Tensor& x) override;  // [batch, 2 dof] -> (qdot, qddot)
  VectorField field();                       // refers to this model, which must outlive it

  std::int64_t dof() const { return dof_; }
  std::string type_name() const override { return "AccelerationMLP"; }
  std::string extra_repr() const override;

  std::shared_ptr<nn::Sequential> mlp;

 private:
  std::int64_t dof_;
  LnnOptions options_;
  double acceleration_scale_;
};

}  // namespace symgrad::pde::hamiltonian
