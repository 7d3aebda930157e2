// The evaluation API of the Hamiltonian examples. Every number is accumulated in double
// from the tensors' values, whatever their dtype, so a float32 model is judged on the same
// scale as a float64 one.
//
// Rollouts run under NoGradGuard and drop each state's history (detach) before the next
// step, so memory stays flat however long they run. An HNN still evaluates its field there:
// it turns grad mode on for its own input gradient (hnn.hpp).
#include "pde/hamiltonian/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace symgrad::pde::hamiltonian {
namespace {

void require_states(const Tensor& x, const char* function, const char* argument) {
  if (!x.defined()) throw std::invalid_argument(std::string(function) + ": " + argument + " is undefined");
  if (x.dim() != 2 || x.size(1) % 2 != 0 || x.size(0) < 1) {
    throw std::invalid_argument(std::string(function) + ": " + argument + " " + shape_str(x.shape()) +
                                " must be [batch >= 1, 2n]");
  }
}

void require_same_shape(const Tensor& a, const Tensor& b, const char* function, const char* a_name,
                        const char* b_name) {
  if (a.shape() != b.shape()) {
    throw std::invalid_argument(std::string(function) + ": " + a_name + " " + shape_str(a.shape()) + " and " +
                                b_name + " " + shape_str(b.shape()) + " differ in shape");
  }
}

double sum_of_squared_differences(const std::vector<double>& a, const double* b) {
  double total = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) total += (a[i] - b[i]) * (a[i] - b[i]);
  return total;
}

// max over the batch of |H(x) - H(x_0)|; NaN if any energy is not a number (a diverged run
// must not look conserved).
double max_energy_error(const std::vector<double>& energy, const std::vector<double>& energy0) {
  double worst = 0.0;
  for (std::size_t b = 0; b < energy.size(); ++b) {
    const double error = std::abs(energy[b] - energy0[b]);
    if (std::isnan(error)) return error;
    worst = std::max(worst, error);
  }
  return worst;
}

// About `count` distinct steps in [1, last], evenly spaced in log(step): a log-log plot of
// the energy error then has the same density of points in every decade.
std::vector<std::int64_t> log_spaced_steps(std::int64_t last, int count) {
  std::vector<std::int64_t> steps;
  const double log_last = std::log(static_cast<double>(last));
  for (int i = 0; i < count; ++i) {
    const double fraction = count > 1 ? static_cast<double>(i) / (count - 1) : 1.0;
    const auto step = static_cast<std::int64_t>(std::llround(std::exp(log_last * fraction)));
    const std::int64_t clamped = std::clamp<std::int64_t>(step, 1, last);
    if (steps.empty() || clamped > steps.back()) steps.push_back(clamped);
  }
  if (steps.back() != last) steps.push_back(last);
  return steps;
}

std::vector<double> energies(const ScalarField& hamiltonian, const Tensor& x, const char* function) {
  const Tensor h = hamiltonian(x);
  if (!h.defined() || h.numel() != x.size(0)) {
    throw std::invalid_argument(std::string(function) + ": the Hamiltonian of states " + shape_str(x.shape()) +
                                " has shape " + (h.defined() ? shape_str(h.shape()) : "undefined") +
                                ", expected [" + std::to_string(x.size(0)) + "]");
  }
  return h.to_vector();
}

// One step of `map` from x, detached, with its shape checked against x's.
Tensor next_state(const StepMap& map, const Tensor& x, const char* function) {
  const Tensor y = map(x);
  if (!y.defined() || y.shape() != x.shape()) {
    throw std::invalid_argument(std::string(function) + ": the map sent state " + shape_str(x.shape()) + " to " +
                                (y.defined() ? shape_str(y.shape()) : "undefined"));
  }
  return y.detach();
}

}  // namespace

StepMap integrator_map(Method method, const VectorField& f, double h, const StepOptions& options) {
  if (!f) throw std::invalid_argument("integrator_map: the vector field is empty");
  if (!std::isfinite(h)) throw std::invalid_argument("integrator_map: step size h is not finite");
  return [method, f, h, options](const Tensor& x) { return step(method, f, x, h, options); };
}

double mean_squared_error(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) throw std::invalid_argument("mean_squared_error: an argument is undefined");
  require_same_shape(a, b, "mean_squared_error", "a", "b");
  if (a.numel() == 0) throw std::invalid_argument("mean_squared_error: a " + shape_str(a.shape()) + " is empty");
  const std::vector<double> av = a.to_vector(), bv = b.to_vector();
  return sum_of_squared_differences(av, bv.data()) / static_cast<double>(av.size());
}

double vector_field_mse(const VectorField& model, const Tensor& x, const Tensor& dxdt) {
  require_states(x, "vector_field_mse", "x");
  require_same_shape(x, dxdt, "vector_field_mse", "x", "dxdt");
  NoGradGuard no_grad;
  const Tensor predicted = model(x);
  if (!predicted.defined()) throw std::invalid_argument("vector_field_mse: the model returned an undefined tensor");
  require_same_shape(predicted, dxdt, "vector_field_mse", "model(x)", "dxdt");
  return mean_squared_error(predicted, dxdt);
}

double one_step_mse(const StepMap& map, const Tensor& x, const Tensor& y) {
  require_states(x, "one_step_mse", "x");
  require_same_shape(x, y, "one_step_mse", "x", "y");
  NoGradGuard no_grad;
  return mean_squared_error(next_state(map, x, "one_step_mse"), y);
}

Tensor rollout_map(const StepMap& map, const Tensor& x0, std::int64_t steps) {
  require_states(x0, "rollout_map", "x0");
  if (steps < 0) throw std::invalid_argument("rollout_map: steps = " + std::to_string(steps) + " must be >= 0");
  NoGradGuard no_grad;
  std::vector<Tensor> states{x0.detach()};
  states.reserve(static_cast<std::size_t>(steps + 1));
  for (std::int64_t k = 0; k < steps; ++k) states.push_back(next_state(map, states.back(), "rollout_map"));
  return stack(states, 0);
}

double rollout_mse(const StepMap& map, const Tensor& x0, const Tensor& truth) {
  require_states(x0, "rollout_mse", "x0");
  if (!truth.defined() || truth.dim() != 3 || truth.size(0) < 1 || truth.size(1) != x0.size(0) ||
      truth.size(2) != x0.size(1)) {
    throw std::invalid_argument("rollout_mse: truth " + (truth.defined() ? shape_str(truth.shape()) : "undefined") +
                                " must be [steps + 1, " + std::to_string(x0.size(0)) + ", " +
                                std::to_string(x0.size(1)) + "] for x0 " + shape_str(x0.shape()));
  }
  NoGradGuard no_grad;
  const std::vector<double> expected = truth.to_vector();
  const auto per_state = static_cast<std::size_t>(x0.numel());
  // Streams: only the current state is kept, the error is summed as the rollout goes.
  Tensor x = x0.detach();
  double total = sum_of_squared_differences(x.to_vector(), expected.data());
  for (std::int64_t k = 1; k < truth.size(0); ++k) {
    x = next_state(map, x, "rollout_mse");
    total += sum_of_squared_differences(x.to_vector(), expected.data() + static_cast<std::size_t>(k) * per_state);
  }
  return total / static_cast<double>(expected.size());
}

// ---- energy -------------------------------------------------------------------------

nlohmann::json EnergyDrift::to_json() const {
  return {{"checkpoints", checkpoints},
          {"max_error", max_error},
          {"curve_step", curve_step},
          {"curve_error", curve_error}};
}

EnergyDrift energy_drift(const StepMap& map, const ScalarField& hamiltonian, const Tensor& x0,
                         const std::vector<std::int64_t>& checkpoints) {
  require_states(x0, "energy_drift", "x0");
  if (checkpoints.empty()) throw std::invalid_argument("energy_drift: no checkpoints given");
  for (std::size_t i = 0; i < checkpoints.size(); ++i) {
    if (checkpoints[i] < 1 || (i > 0 && checkpoints[i] <= checkpoints[i - 1])) {
      throw std::invalid_argument("energy_drift: checkpoints must be >= 1 and strictly ascending (entry " +
                                  std::to_string(i) + " is " + std::to_string(checkpoints[i]) + ")");
    }
  }
  NoGradGuard no_grad;
  const std::int64_t last = checkpoints.back();
  const std::vector<std::int64_t> samples = log_spaced_steps(last, 1000);
  EnergyDrift drift;
  drift.checkpoints = checkpoints;
  Tensor x = x0.detach();
  const std::vector<double> energy0 = energies(hamiltonian, x, "energy_drift");
  double running_max = 0.0;
  std::size_t next_checkpoint = 0, next_sample = 0;
  for (std::int64_t k = 1; k <= last; ++k) {
    x = next_state(map, x, "energy_drift");
    const double error = max_energy_error(energies(hamiltonian, x, "energy_drift"), energy0);
    if (std::isnan(error)) running_max = error;  // a diverged run stays NaN from here on
    else if (!std::isnan(running_max)) running_max = std::max(running_max, error);
    if (next_sample < samples.size() && samples[next_sample] == k) {
      drift.curve_step.push_back(static_cast<double>(k));
      drift.curve_error.push_back(error);
      ++next_sample;
    }
    if (checkpoints[next_checkpoint] == k) {
      drift.max_error.push_back(running_max);
      ++next_checkpoint;
    }
  }
  return drift;
}

EnergyMseResult hnn_energy_mse(const VectorField& learned, const HamiltonianSystem& system, const Tensor& starts,
                               double t_end, std::int64_t points, std::int64_t substeps) {
  require_states(starts, "hnn_energy_mse", "starts");
  if (starts.size(1) != 2 * system.dof) {
    throw std::invalid_argument("hnn_energy_mse: starts " + shape_str(starts.shape()) + " must have " +
                                std::to_string(2 * system.dof) + " columns for " + system.name);
  }
  if (!(std::isfinite(t_end) && t_end > 0)) throw std::invalid_argument("hnn_energy_mse: t_end must be finite and > 0");
  if (points < 2) throw std::invalid_argument("hnn_energy_mse: points = " + std::to_string(points) + " must be >= 2");
  if (substeps < 1) throw std::invalid_argument("hnn_energy_mse: substeps = " + std::to_string(substeps) + " must be >= 1");
  if (!learned || !system.field || !system.hamiltonian) {
    throw std::invalid_argument("hnn_energy_mse: the learned field or the system's field / H is empty");
  }
  NoGradGuard no_grad;
  // Both fields are integrated in float64; a learned field that answers in float32 is
  // widened so that the state itself never loses precision.
  const VectorField learned_f64 = [&learned](const Tensor& x) {
    const Tensor v = learned(x);
    return v.dtype() == DType::f64 ? v : to_dtype(v, DType::f64);
  };
  const double h = t_end / static_cast<double>((points - 1) * substeps);
  Tensor x_learned = to_dtype(starts.detach(), DType::f64), x_true = x_learned;
  std::vector<Tensor> learned_states{x_learned}, true_states{x_true};
  for (std::int64_t k = 1; k < points; ++k) {
    for (std::int64_t s = 0; s < substeps; ++s) {
      x_learned = rk4_step(learned_f64, x_learned, h).detach();
      x_true = rk4_step(system.field, x_true, h).detach();
    }
    learned_states.push_back(x_learned);
    true_states.push_back(x_true);
  }
  EnergyMseResult result;
  result.learned = stack(learned_states, 0);
  result.truth = stack(true_states, 0);
  result.times = linspace(0.0, t_end, points, DType::f64);
  const std::int64_t state_width = starts.size(1);
  const Tensor learned_rows = reshape(result.learned, {-1, state_width});
  const Tensor true_rows = reshape(result.truth, {-1, state_width});
  result.energy_mse = mean_squared_error(system.hamiltonian(learned_rows), system.hamiltonian(true_rows));
  result.state_mse = mean_squared_error(result.learned, result.truth);
  return result;
}

// ---- symplecticity ------------------------------------------------------------------

double symplecticity_error(const StepMap& map, const Tensor& points) {
  require_states(points, "symplecticity_error", "points");
  const std::int64_t width = points.size(1), n = width / 2;
  // Omega = [[0, I], [-I, 0]] (systems.hpp's J); the map is symplectic iff J^T Omega J = Omega.
  const auto omega = [n](std::int64_t i, std::int64_t j) {
    if (i < n && j == i + n) return 1.0;
    if (i >= n && j == i - n) return -1.0;
    return 0.0;
  };
  GradModeGuard grad_on(true);  // the Jacobian is taken by autograd even inside a NoGradGuard
  double worst = 0.0;
  for (std::int64_t point = 0; point < points.size(0); ++point) {
    const Tensor x = narrow(points, 0, point, 1).detach().requires_grad_();
    const Tensor jac = jacobian(map, x);  // [1, 2n, 1, 2n] in the points' dtype
    if (jac.numel() != width * width) {
      throw std::invalid_argument("symplecticity_error: the map sent a state [1, " + std::to_string(width) +
                                  "] to an output whose Jacobian has shape " + shape_str(jac.shape()));
    }
    const std::vector<double> j = jac.to_vector();  // j[a * width + b] = d out_a / d x_b
    double squared_norm = 0.0;
    for (std::int64_t a = 0; a < width; ++a) {
      for (std::int64_t b = 0; b < width; ++b) {
        double value = 0.0;  // (J^T Omega J)_ab = sum_ij J_ia Omega_ij J_jb
        for (std::int64_t i = 0; i < width; ++i) {
          for (std::int64_t k = 0; k < width; ++k) {
            const double o = omega(i, k);
            if (o != 0.0) value += j[static_cast<std::size_t>(i * width + a)] * o * j[static_cast<std::size_t>(k * width + b)];
          }
        }
        const double deviation = value - omega(a, b);
        squared_norm += deviation * deviation;
      }
    }
    const double norm = std::sqrt(squared_norm);
    if (std::isnan(norm)) return norm;
    worst = std::max(worst, norm);
  }
  return worst;
}

}  // namespace symgrad::pde::hamiltonian
