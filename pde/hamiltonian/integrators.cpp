// Time steppers for dx/dt = f(x) (see integrators.hpp). References: E. Hairer, C. Lubich,
// G. Wanner, "Geometric Numerical Integration" (2006), cited as GNI; H. Yoshida, "Construction
// of higher order symplectic integrators", Phys. Lett. A 150 (1990).
//
// Every step is a composition of engine ops, so it is differentiable in x and in whatever
// parameters f closes over. The implicit methods iterate a fixed-point map; the graph records
// the iterations as they ran, so their derivative is that of the converged iterate.
#include "pde/hamiltonian/integrators.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

namespace symgrad::pde::hamiltonian {
namespace {

// ---- checks ----------------------------------------------------------------------

void require_state(const Tensor& x, const std::string& function) {
  if (!x.defined()) throw std::invalid_argument(function + ": state is undefined");
  if (x.dim() != 2) {
    throw std::invalid_argument(function + ": state " + shape_str(x.shape()) + " must be [batch, 2n]");
  }
  if (x.size(1) == 0) throw std::invalid_argument(function + ": state " + shape_str(x.shape()) + " has no columns");
  if (x.size(1) % 2 != 0) {
    throw std::invalid_argument(function + ": state " + shape_str(x.shape()) +
                                " has an odd number of columns (expected q then p, [batch, 2n])");
  }
}

void require_step_size(double h, const std::string& function) {
  if (!std::isfinite(h) || h <= 0) {
    std::ostringstream os;
    os << function << ": step size h = " << h << " must be finite and > 0";
    throw std::invalid_argument(os.str());
  }
}

void require_fixed_point_options(const FixedPointOptions& options, const std::string& function) {
  if (!std::isfinite(options.tolerance) || options.tolerance < 0) {
    std::ostringstream os;
    os << function << ": fixed-point tolerance " << options.tolerance << " must be finite and >= 0";
    throw std::invalid_argument(os.str());
  }
  if (options.max_iterations < 1) {
    throw std::invalid_argument(function + ": fixed-point max_iterations = " +
                                std::to_string(options.max_iterations) + " must be >= 1");
  }
}

// f(x), checked to be a state of the same shape and dtype.
Tensor evaluate(const VectorField& f, const Tensor& x, const std::string& function) {
  const Tensor dx = f(x);
  if (!dx.defined() || dx.shape() != x.shape() || dx.dtype() != x.dtype()) {
    throw std::invalid_argument(function + ": the vector field returned " +
                                (dx.defined() ? shape_str(dx.shape()) + " " + dtype_name(dx.dtype())
                                              : std::string("an undefined tensor")) +
                                " for the state " + shape_str(x.shape()) + " " + dtype_name(x.dtype()));
  }
  return dx;
}

// The q and p halves of f evaluated at the state (q, p).
Tensor velocity_at(const VectorField& f, const Tensor& q, const Tensor& p, const std::string& function) {
  return positions(evaluate(f, join_state(q, p), function));
}
Tensor force_at(const VectorField& f, const Tensor& q, const Tensor& p, const std::string& function) {
  return momenta(evaluate(f, join_state(q, p), function));
}

// ---- fixed-point iteration -------------------------------------------------------

// What the solves of one step did, published to StepOptions::report at the end.
struct SolveTally {
  int last_iterations = 0;
  int max_iterations_used = 0;
  double last_residual = 0;
  bool converged = true;
};

double max_abs(const Tensor& a) {
  if (a.numel() == 0) return 0;  // an empty batch
  NoGradGuard no_grad;
  return max(abs(a)).item();
}

double max_abs_difference(const Tensor& a, const Tensor& b) {
  if (a.numel() == 0) return 0;
  NoGradGuard no_grad;
  return max(abs(sub(a, b))).item();
}

// A tolerance given by the user is absolute. The defaults are a few hundred units in the
// last place of numbers of size 1, so for unknowns larger than 1 they scale with the
// unknowns' size: an absolute 1e-6 is below float32 round-off once |x| > 8, and the
// iteration would wander at round-off level until the cap.
double resolved_tolerance(const FixedPointOptions& options, const Tensor& guess) {
  if (options.tolerance > 0) return options.tolerance;
  const double relative = guess.dtype() == DType::f64 ? 1e-13 : 1e-6;
  return relative * std::max(1.0, max_abs(guess));
}

// Iterates y <- map(y) from `guess` until the max-norm of an update is <= the tolerance.
// Each iteration stays in the graph (the derivative of the result is the derivative of
// the iteration as it ran); the check of the update does not.
Tensor solve_fixed_point(const std::function<Tensor(const Tensor&)>& map, const Tensor& guess,
                         const FixedPointOptions& options, const std::string& what, SolveTally& tally) {
  const double tolerance = resolved_tolerance(options, guess);
  Tensor current = guess;
  double residual = 0;
  int iterations = 0;
  bool converged = false;
  while (iterations < options.max_iterations) {
    const Tensor next = map(current);
    residual = max_abs_difference(next, current);
    current = next;
    ++iterations;
    if (residual <= tolerance) {
      converged = true;
      break;
    }
    if (!std::isfinite(residual)) break;  // diverged: more iterations cannot help
  }
  // The derivative of the iterate converges a step behind its value (differentiating
  // y_k+1 = map(y_k) gives an iteration for dy_k with the same contraction, started later),
  // so when a graph is being recorded one more iteration brings it to the same accuracy.
  if (converged && current.requires_grad()) {
    const Tensor next = map(current);
    residual = max_abs_difference(next, current);
    current = next;
    ++iterations;
  }
  tally.last_iterations = iterations;
  tally.max_iterations_used = std::max(tally.max_iterations_used, iterations);
  tally.last_residual = residual;
  if (!converged) {
    tally.converged = false;
    if (options.throw_on_failure) {
      std::ostringstream os;
      os.precision(3);
      os << what << ": fixed-point iteration did not converge in " << iterations << " of at most "
         << options.max_iterations << " iterations (residual " << residual << " > tolerance "
         << tolerance << ")";
      throw NotConverged(os.str());
    }
  }
  return current;
}

// ---- the methods, with the tally threaded through compositions -------------------

// GNI (I.1.9): p' = p + h f_p(q, p'), q' = q + h f_q(q, p').
Tensor symplectic_euler(const VectorField& f, const Tensor& x, double h, const StepOptions& options,
                        SolveTally& tally, const std::string& function) {
  const Tensor q = positions(x), p = momenta(x);
  Tensor p_next;
  if (options.separable) {
    p_next = p + force_at(f, q, p, function) * h;  // f_p depends on q alone
  } else {
    p_next = solve_fixed_point([&](const Tensor& pk) { return p + force_at(f, q, pk, function) * h; }, p,
                               options.fixed_point, function + " (momentum update)", tally);
  }
  const Tensor q_next = q + velocity_at(f, q, p_next, function) * h;
  return join_state(q_next, p_next);
}

// The generalised leapfrog for a general H, GNI (VI.3.4):
//   p_half = p + h/2 f_p(q, p_half)                         (implicit)
//   q'     = q + h/2 (f_q(q, p_half) + f_q(q', p_half))     (implicit)
//   p'     = p_half + h/2 f_p(q', p_half)                    (explicit)
// For a separable H the two solves are explicit and it is the kick-drift-kick leapfrog.
Tensor generalised_leapfrog(const VectorField& f, const Tensor& x, double h, const StepOptions& options,
                            SolveTally& tally, const std::string& function) {
  const Tensor q = positions(x), p = momenta(x);
  const double half = 0.5 * h;
  const Tensor p_half = solve_fixed_point(
      [&](const Tensor& pk) { return p + force_at(f, q, pk, function) * half; }, p, options.fixed_point,
      function + " (half kick)", tally);
  const Tensor velocity_start = velocity_at(f, q, p_half, function);
  const Tensor q_next = solve_fixed_point(
      [&](const Tensor& qk) { return q + (velocity_start + velocity_at(f, qk, p_half, function)) * half; },
      q + velocity_start * h, options.fixed_point, function + " (drift)", tally);
  const Tensor p_next = p_half + force_at(f, q_next, p_half, function) * half;
  return join_state(q_next, p_next);
}

// Stormer-Verlet steps of sizes weights[0] h, weights[1] h, ... in sequence. For a separable
// H each step is kick(w h / 2) drift(w h) kick(w h / 2); the closing kick of one step and the
// opening kick of the next act at the same q, so they merge into one force evaluation
// (Yoshida 1990 writes his integrators in this kick-drift form).
Tensor composed_verlet(const VectorField& f, const Tensor& x, double h, const std::vector<double>& weights,
                       const StepOptions& options, SolveTally& tally, const std::string& function) {
  if (!options.separable) {
    Tensor y = x;
    for (double w : weights) y = generalised_leapfrog(f, y, w * h, options, tally, function);
    return y;
  }
  Tensor q = positions(x), p = momenta(x);
  double kick = 0.5 * weights.front();
  for (std::size_t i = 0; i < weights.size(); ++i) {
    p = p + force_at(f, q, p, function) * (kick * h);  // f_p depends on q alone
    q = q + velocity_at(f, q, p, function) * (weights[i] * h);  // f_q depends on p alone
    kick = 0.5 * (weights[i] + (i + 1 < weights.size() ? weights[i + 1] : 0.0));
  }
  p = p + force_at(f, q, p, function) * (kick * h);
  return join_state(q, p);
}

// A symmetric method of order 2k composed as Phi(w1 h) Phi(w0 h) Phi(w1 h) with
// w1 = 1 / (2 - 2^(1/(2k+1))), w0 = -2^(1/(2k+1)) w1 has order 2k + 2 (Yoshida 1990;
// GNI II.4, the "triple jump"). Returns the Verlet step weights of the composition
// applied to a method that is itself Verlet composed with `inner` weights.
std::vector<double> triple_jump(const std::vector<double>& inner, int inner_order) {
  const double root = std::pow(2.0, 1.0 / (inner_order + 1));
  const double outer_weight = 1.0 / (2.0 - root), middle_weight = -root * outer_weight;
  std::vector<double> weights;
  for (double jump : {outer_weight, middle_weight, outer_weight}) {
    for (double w : inner) weights.push_back(jump * w);
  }
  return weights;
}

const std::vector<double>& yoshida4_weights() {
  static const std::vector<double> weights = triple_jump({1.0}, 2);
  return weights;
}

const std::vector<double>& yoshida6_weights() {  // the triple jump of yoshida4: 9 Verlet steps
  static const std::vector<double> weights = triple_jump(yoshida4_weights(), 4);
  return weights;
}

// x' = x + h f((x + x') / 2), iterated from the explicit Euler predictor.
Tensor implicit_midpoint(const VectorField& f, const Tensor& x, double h, const StepOptions& options,
                         SolveTally& tally, const std::string& function) {
  const Tensor predictor = x + evaluate(f, x, function) * h;
  return solve_fixed_point([&](const Tensor& xk) { return x + evaluate(f, (x + xk) * 0.5, function) * h; },
                           predictor, options.fixed_point, function, tally);
}

// The 3-stage Gauss-Legendre collocation method (order 6; GNI Table II.1.2). The unknowns
// are the stage increments Z_i = h sum_j a_ij f(x + Z_j) (GNI VIII.6), held stacked as
// [3 batch, 2n] so that f sees all stages in one call; seen as [3, batch 2n], the sums over
// stages are one matrix product with the Butcher tableau.
Tensor gauss_legendre6(const VectorField& f, const Tensor& x, double h, const StepOptions& options,
                       SolveTally& tally, const std::string& function) {
  const double r = std::sqrt(15.0);
  const DType dtype = x.dtype();
  const Tensor a = from_vector({5.0 / 36, 2.0 / 9 - r / 15, 5.0 / 36 - r / 30,  //
                                5.0 / 36 + r / 24, 2.0 / 9, 5.0 / 36 - r / 24,  //
                                5.0 / 36 + r / 30, 2.0 / 9 + r / 15, 5.0 / 36},
                               {3, 3}, dtype);
  const Tensor b = from_vector({5.0 / 18, 4.0 / 9, 5.0 / 18}, {1, 3}, dtype);
  const Tensor c = from_vector({0.5 - r / 10, 0.5, 0.5 + r / 10}, {3, 1}, dtype);
  const std::int64_t stages = 3, batch = x.size(0), width = x.size(1);
  const auto by_stage = [&](const Tensor& rows) { return reshape(rows, {stages, batch * width}); };
  const auto stacked = [&](const Tensor& stage_rows) { return reshape(stage_rows, {stages * batch, width}); };

  const Tensor x_per_stage = concat({x, x, x}, 0);
  Tensor slopes;  // f(x + Z_j) of the latest iteration, [3 batch, 2n]
  const auto increments = [&](const Tensor& z) {
    slopes = evaluate(f, x_per_stage + z, function);
    return stacked(matmul(a, by_stage(slopes)) * h);
  };
  // Start from Z_i = c_i h f(x), the increments of a constant slope.
  const Tensor guess = stacked(c * reshape(evaluate(f, x, function), {1, batch * width}) * h);
  solve_fixed_point(increments, guess, options.fixed_point, function, tally);
  // x' = x + h sum_i b_i f(x + Z_i), with the slopes the final iteration evaluated.
  return x + reshape(matmul(b, by_stage(slopes)), {batch, width}) * h;
}

// Runs one step's solves and publishes what they did to options.report, also when a
// solve throws NotConverged.
template <class Method>
Tensor with_report(const StepOptions& options, const std::string& function, Method&& method) {
  require_fixed_point_options(options.fixed_point, function);
  SolveTally tally;
  const auto publish = [&] {
    if (options.report == nullptr) return;
    options.report->iterations = tally.last_iterations;
    options.report->max_iterations_used = tally.max_iterations_used;
    options.report->residual = tally.last_residual;
    options.report->converged = tally.converged;
  };
  try {
    Tensor result = method(tally);
    publish();
    return result;
  } catch (const NotConverged&) {
    publish();
    throw;
  }
}

}  // namespace

// ---- method metadata ---------------------------------------------------------------

std::vector<Method> all_methods() {
  return {Method::explicit_euler, Method::symplectic_euler,  Method::stormer_verlet,  Method::yoshida4,
          Method::yoshida6,       Method::implicit_midpoint, Method::gauss_legendre6, Method::rk4};
}

std::string method_name(Method method) {
  switch (method) {
    case Method::explicit_euler: return "explicit_euler";
    case Method::symplectic_euler: return "symplectic_euler";
    case Method::stormer_verlet: return "stormer_verlet";
    case Method::yoshida4: return "yoshida4";
    case Method::yoshida6: return "yoshida6";
    case Method::implicit_midpoint: return "implicit_midpoint";
    case Method::gauss_legendre6: return "gauss_legendre6";
    case Method::rk4: return "rk4";
  }
  throw std::invalid_argument("method_name: unknown method " + std::to_string(static_cast<int>(method)));
}

Method method_from_name(const std::string& name) {
  std::string known;
  for (Method method : all_methods()) {
    if (method_name(method) == name) return method;
    known += (known.empty() ? "" : ", ") + method_name(method);
  }
  throw std::invalid_argument("method_from_name: unknown method \"" + name + "\" (known: " + known + ")");
}

int method_order(Method method) {
  switch (method) {
    case Method::explicit_euler:
    case Method::symplectic_euler: return 1;
    case Method::stormer_verlet:
    case Method::implicit_midpoint: return 2;
    case Method::yoshida4:
    case Method::rk4: return 4;
    case Method::yoshida6:
    case Method::gauss_legendre6: return 6;
  }
  throw std::invalid_argument("method_order: unknown method " + std::to_string(static_cast<int>(method)));
}

bool is_symplectic(Method method) { return method != Method::explicit_euler && method != Method::rk4; }

bool is_implicit(Method method, bool separable) {
  switch (method) {
    case Method::implicit_midpoint:
    case Method::gauss_legendre6: return true;
    case Method::symplectic_euler:
    case Method::stormer_verlet:
    case Method::yoshida4:
    case Method::yoshida6: return !separable;
    case Method::explicit_euler:
    case Method::rk4: return false;
  }
  throw std::invalid_argument("is_implicit: unknown method " + std::to_string(static_cast<int>(method)));
}

// ---- the steps ---------------------------------------------------------------------

Tensor explicit_euler_step(const VectorField& f, const Tensor& x, double h) {
  const std::string function = "explicit_euler_step";
  require_state(x, function);
  require_step_size(h, function);
  return x + evaluate(f, x, function) * h;
}

Tensor symplectic_euler_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options) {
  const std::string function = "symplectic_euler_step";
  require_state(x, function);
  require_step_size(h, function);
  return with_report(options, function,
                     [&](SolveTally& tally) { return symplectic_euler(f, x, h, options, tally, function); });
}

Tensor stormer_verlet_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options) {
  const std::string function = "stormer_verlet_step";
  require_state(x, function);
  require_step_size(h, function);
  return with_report(options, function, [&](SolveTally& tally) {
    return composed_verlet(f, x, h, {1.0}, options, tally, function);
  });
}

Tensor yoshida4_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options) {
  const std::string function = "yoshida4_step";
  require_state(x, function);
  require_step_size(h, function);
  return with_report(options, function, [&](SolveTally& tally) {
    return composed_verlet(f, x, h, yoshida4_weights(), options, tally, function);
  });
}

Tensor yoshida6_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options) {
  const std::string function = "yoshida6_step";
  require_state(x, function);
  require_step_size(h, function);
  return with_report(options, function, [&](SolveTally& tally) {
    return composed_verlet(f, x, h, yoshida6_weights(), options, tally, function);
  });
}

Tensor implicit_midpoint_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options) {
  const std::string function = "implicit_midpoint_step";
  require_state(x, function);
  require_step_size(h, function);
  return with_report(options, function,
                     [&](SolveTally& tally) { return implicit_midpoint(f, x, h, options, tally, function); });
}

Tensor gauss_legendre6_step(const VectorField& f, const Tensor& x, double h, const StepOptions& options) {
  const std::string function = "gauss_legendre6_step";
  require_state(x, function);
  require_step_size(h, function);
  return with_report(options, function,
                     [&](SolveTally& tally) { return gauss_legendre6(f, x, h, options, tally, function); });
}

// The classical Runge-Kutta method (GNI Table II.1.1).
Tensor rk4_step(const VectorField& f, const Tensor& x, double h) {
  const std::string function = "rk4_step";
  require_state(x, function);
  require_step_size(h, function);
  const Tensor k1 = evaluate(f, x, function);
  const Tensor k2 = evaluate(f, x + k1 * (0.5 * h), function);
  const Tensor k3 = evaluate(f, x + k2 * (0.5 * h), function);
  const Tensor k4 = evaluate(f, x + k3 * h, function);
  return x + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
}

Tensor step(Method method, const VectorField& f, const Tensor& x, double h, const StepOptions& options) {
  switch (method) {
    case Method::explicit_euler:
    case Method::rk4: {
      Tensor next = method == Method::rk4 ? rk4_step(f, x, h) : explicit_euler_step(f, x, h);
      if (options.report != nullptr) *options.report = FixedPointReport{};  // nothing was solved
      return next;
    }
    case Method::symplectic_euler: return symplectic_euler_step(f, x, h, options);
    case Method::stormer_verlet: return stormer_verlet_step(f, x, h, options);
    case Method::yoshida4: return yoshida4_step(f, x, h, options);
    case Method::yoshida6: return yoshida6_step(f, x, h, options);
    case Method::implicit_midpoint: return implicit_midpoint_step(f, x, h, options);
    case Method::gauss_legendre6: return gauss_legendre6_step(f, x, h, options);
  }
  throw std::invalid_argument("step: unknown method " + std::to_string(static_cast<int>(method)));
}

// A loop, not a recursion, so the C++ stack does not grow with the number of steps. The
// report, if asked for, covers the whole rollout: the last solve's iterations and residual,
// the most iterations any solve used, and whether every solve converged.
Tensor rollout(Method method, const VectorField& f, const Tensor& x0, double h, std::int64_t steps,
               const StepOptions& options, std::int64_t stride) {
  const std::string function = "rollout(" + method_name(method) + ")";
  require_state(x0, function);
  require_step_size(h, function);
  if (steps < 0) throw std::invalid_argument(function + ": steps = " + std::to_string(steps) + " must be >= 0");
  if (stride < 1) throw std::invalid_argument(function + ": stride = " + std::to_string(stride) + " must be >= 1");
  if (steps % stride != 0) {
    throw std::invalid_argument(function + ": steps = " + std::to_string(steps) +
                                " is not a multiple of stride = " + std::to_string(stride));
  }
  FixedPointReport step_report;
  FixedPointReport total;
  StepOptions step_options = options;
  step_options.report = &step_report;
  std::vector<Tensor> kept = {x0};
  kept.reserve(static_cast<std::size_t>(steps / stride + 1));
  Tensor x = x0;
  for (std::int64_t k = 1; k <= steps; ++k) {
    try {
      x = step(method, f, x, h, step_options);
    } catch (const NotConverged& error) {
      if (options.report != nullptr) *options.report = step_report;
      throw NotConverged(function + ": step " + std::to_string(k) + " of " + std::to_string(steps) + ": " +
                         error.what());
    }
    total.iterations = step_report.iterations;
    total.residual = step_report.residual;
    total.max_iterations_used = std::max(total.max_iterations_used, step_report.max_iterations_used);
    total.converged = total.converged && step_report.converged;
    if (k % stride == 0) kept.push_back(x);
  }
  if (options.report != nullptr) *options.report = total;
  return stack(kept, 0);
}

}  // namespace symgrad::pde::hamiltonian
