#pragma once
// The evaluation API of the Hamiltonian examples (issue 5): errors of learned vector fields
// and one-step maps, rollouts, energy conservation and symplecticity. Every function runs
// without recording a graph (NoGradGuard) except where it needs autograd itself, and returns
// plain numbers computed in float64.
#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "pde/hamiltonian/integrators.hpp"

namespace symgrad::pde::hamiltonian {

// x_k [batch, 2n] -> x_{k+1} [batch, 2n]: a learned map (SympNet) or an integrator step.
using StepMap = std::function<Tensor(const Tensor& x)>;
StepMap integrator_map(Method method, const VectorField& f, double h, const StepOptions& options = {});

double mean_squared_error(const Tensor& a, const Tensor& b);  // shapes must match
double vector_field_mse(const VectorField& model, const Tensor& x, const Tensor& dxdt);
double one_step_mse(const StepMap& map, const Tensor& x, const Tensor& y);
// Iterates map from x0 for truth.shape[0] - 1 steps; MSE against truth [steps + 1, batch, 2n].
double rollout_mse(const StepMap& map, const Tensor& x0, const Tensor& truth);
Tensor rollout_map(const StepMap& map, const Tensor& x0, std::int64_t steps);  // [steps + 1, batch, 2n]

// max_k<=K |H(x_k) - H(x_0)| at each checkpoint K (ascending), streaming: memory does not grow
// with the number of steps. Also returns the sampled energy error curve for plots.
struct EnergyDrift {
  std::vector<std::int64_t> checkpoints;
  std::vector<double> max_error;               // one per checkpoint
  std::vector<double> curve_step, curve_error; // ~1000 log-spaced samples of |H(x_k) - H(x_0)|
  nlohmann::json to_json() const;
};
EnergyDrift energy_drift(const StepMap& map, const ScalarField& hamiltonian, const Tensor& x0,
                         const std::vector<std::int64_t>& checkpoints);

// The HNN paper's energy protocol: `starts` random initial states of the system's protocol
// distribution (seeded), the learned field and the true field both integrated over
// [0, t_end] (rk4 with small substeps, float64), `points` evaluation times; the MSE between
// the true H along the learned trajectory and along the true one. Also the trajectories.
struct EnergyMseResult {
  double energy_mse = 0;
  double state_mse = 0;
  Tensor learned, truth;  // [points, starts, 2n]
  Tensor times;           // [points]
};
EnergyMseResult hnn_energy_mse(const VectorField& learned, const HamiltonianSystem& system, const Tensor& starts,
                               double t_end = 20.0, std::int64_t points = 100, std::int64_t substeps = 10);

// max over the points of || J^T Omega J - Omega ||_F, J = d map / d x by autograd at each point
// (in the points' dtype). points [m, 2n].
double symplecticity_error(const StepMap& map, const Tensor& points);

}  // namespace symgrad::pde::hamiltonian
