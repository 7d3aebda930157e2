#pragma once
// Time steppers for dx/dt = f(x), batched over states ([batch, 2n], q then p; see
// systems.hpp), float32 and float64. Every step is written with the engine's differentiable
// ops, so a rollout can be backpropagated through (the implicit methods by differentiating
// their fixed-point iterations as they ran).
//
// Symplectic methods and Hamiltonian fields: for a separable H = T(p) + V(q) the "explicit"
// forms below use only dq/dt at mixed states (it depends on p alone) and dp/dt (on q alone),
// so f is evaluated on states whose other half is irrelevant. For a general H the same
// methods become implicit and are solved by fixed-point iteration.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pde/hamiltonian/systems.hpp"

namespace symgrad::pde::hamiltonian {

enum class Method {
  explicit_euler,     // order 1, not symplectic (energy drifts)
  symplectic_euler,   // order 1: p' = p + h f_p(q, p'), q' = q + h f_q(q, p')
  stormer_verlet,     // order 2: leapfrog kick-drift-kick; the generalised (implicit) form for non-separable H
  yoshida4,           // order 4: Stormer-Verlet composed with Yoshida's triple-jump weights
  yoshida6,           // order 6: triple jump of yoshida4
  implicit_midpoint,  // order 2: x' = x + h f((x + x') / 2)
  gauss_legendre6,    // order 6: the 3-stage Gauss-Legendre collocation method (symplectic)
  rk4,                // order 4, not symplectic (energy drifts linearly)
};
std::vector<Method> all_methods();
std::string method_name(Method method);            // "stormer_verlet", ...
Method method_from_name(const std::string& name);  // throws std::invalid_argument listing the names
int method_order(Method method);
bool is_symplectic(Method method);
bool is_implicit(Method method, bool separable);   // implicit_midpoint, gauss_legendre6; verlet/euler if !separable

// The fixed-point solve of the implicit methods.
struct FixedPointOptions {
  double tolerance = 0;     // max-norm of the last update; 0: 1e-13 (float64) or 1e-6 (float32)
  int max_iterations = 100;
  bool throw_on_failure = true;  // NotConverged; false: return the last iterate and report it
};
struct FixedPointReport {
  int iterations = 0;       // of the last solve in the step
  int max_iterations_used = 0;  // over the step's solves
  double residual = 0;      // max-norm of the last update
  bool converged = true;
};
struct NotConverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct StepOptions {
  bool separable = false;   // the field is of a separable H (explicit symplectic forms)
  FixedPointOptions fixed_point;
  FixedPointReport* report = nullptr;  // filled if given
};

Tensor explicit_euler_step(const VectorField& f, const Tensor& x, double h);
Tensor symplectic_euler_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options = {});
Tensor stormer_verlet_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options = {});
Tensor yoshida4_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options = {});
Tensor yoshida6_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options = {});
Tensor implicit_midpoint_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options = {});
Tensor gauss_legendre6_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options = {});
Tensor rk4_step(const VectorField& f, const Tensor& x, double h);

// One step of `method` (dispatches to the functions above).
Tensor step(Method method, const VectorField& f, const Tensor& x, double h, const StepOptions& options = {});

// x0 [batch, 2n] -> [steps / stride + 1, batch, 2n]: x0 and every stride-th state after it
// (steps must be a multiple of stride). Differentiable when grad mode is on; iterative, so
// long rollouts do not grow the stack.
Tensor rollout(Method method, const VectorField& f, const Tensor& x0, double h, std::int64_t steps,
               const StepOptions& options = {}, std::int64_t stride = 1);

}  // namespace symgrad::pde::hamiltonian
