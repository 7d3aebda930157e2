// The integrators of pde/hamiltonian/integrators.hpp: order of accuracy against the spring's
// exact flow and a fine Gauss-Legendre reference on the pendulum, symplecticity of the
// one-step maps (Jacobian from autograd), energy behaviour over 10^4 steps, agreement of the
// explicit and implicit forms, derivatives through steps (gradgradcheck), float32, the
// fixed-point solver's failure reports, rollout, and argument checks.
//
// Run with -s to see the measured orders, symplecticity errors and energy errors.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "pde/hamiltonian/integrators.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;
using Catch::Matchers::Contains;

namespace {

StepOptions explicit_forms() {
  StepOptions options;
  options.separable = true;
  return options;
}

// x0 integrated over `steps` steps of size total_time / steps; returns the final state.
Tensor integrate(Method method, const VectorField& f, const Tensor& x0, double total_time, std::int64_t steps,
                 const StepOptions& options) {
  NoGradGuard no_grad;
  const Tensor kept = rollout(method, f, x0, total_time / static_cast<double>(steps), steps, options, steps);
  return reshape(narrow(kept, 0, 1, 1), x0.shape());
}

double max_abs(const Tensor& t) { return max(abs(t)).item(); }

// For INFO messages (run with -s to see them): Catch prints doubles in fixed notation.
std::string scientific(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3e", value);
  return text;
}

// Least-squares slope of log(error) against log(h).
double fitted_slope(const std::vector<double>& step_sizes, const std::vector<double>& errors) {
  const double n = static_cast<double>(step_sizes.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < step_sizes.size(); ++i) {
    const double lx = std::log(step_sizes[i]), ly = std::log(errors[i]);
    sx += lx;
    sy += ly;
    sxx += lx * lx;
    sxy += lx * ly;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// Step counts over the time interval for each order: coarse enough that the order-6 errors
// stay well above float64 round-off, fine enough to be in the asymptotic regime.
std::vector<std::int64_t> step_counts_for(Method method) {
  switch (method_order(method)) {
    case 1: return {80, 160, 320, 640};
    case 2: return {20, 40, 80, 160};
    case 4: return {10, 20, 40, 80};
    default: return {6, 9, 13, 18};
  }
}

// Fits the order of `method` from errors after total_time against `exact`.
double measured_order(Method method, const VectorField& f, const Tensor& x0, double total_time, const Tensor& exact,
                      const StepOptions& options) {
  std::vector<double> step_sizes, errors;
  for (std::int64_t steps : step_counts_for(method)) {
    const double error = max_abs(integrate(method, f, x0, total_time, steps, options) - exact);
    step_sizes.push_back(total_time / static_cast<double>(steps));
    errors.push_back(error);
    INFO(method_name(method) << ": " << steps << " steps, error " << scientific(error));
    REQUIRE(error > 1e-13);  // above round-off, so the slope measures truncation error
  }
  return fitted_slope(step_sizes, errors);
}

// ||J^T Omega J - Omega||_F for the Jacobian J of one step at x ([1, 2n]), from autograd.
double symplecticity_error(Method method, const VectorField& f, const Tensor& x, double h,
                           const StepOptions& options) {
  const std::int64_t m = x.size(1), n = m / 2;
  const Tensor jacobian_4d = jacobian([&](const Tensor& y) { return step(method, f, y, h, options); }, x);
  const std::vector<double> j = jacobian_4d.to_vector();  // [1, m, 1, m] row-major = J[m][m]
  const std::vector<double> omega = symplectic_form(n).to_vector();
  double squared = 0;
  for (std::int64_t r = 0; r < m; ++r) {
    for (std::int64_t c = 0; c < m; ++c) {
      double entry = 0;  // (J^T Omega J)[r][c]
      for (std::int64_t a = 0; a < m; ++a) {
        for (std::int64_t b = 0; b < m; ++b) entry += j[a * m + r] * omega[a * m + b] * j[b * m + c];
      }
      const double difference = entry - omega[r * m + c];
      squared += difference * difference;
    }
  }
  return std::sqrt(squared);
}

Tensor pendulum_start(DType dtype = DType::f64) { return tensor({1.0, 0.0}, {1, 2}, dtype); }

}  // namespace

TEST_CASE("method metadata", "[hamiltonian][integrators]") {
  REQUIRE(all_methods().size() == 8);
  for (Method method : all_methods()) REQUIRE(method_from_name(method_name(method)) == method);
  REQUIRE(method_order(Method::explicit_euler) == 1);
  REQUIRE(method_order(Method::symplectic_euler) == 1);
  REQUIRE(method_order(Method::stormer_verlet) == 2);
  REQUIRE(method_order(Method::implicit_midpoint) == 2);
  REQUIRE(method_order(Method::yoshida4) == 4);
  REQUIRE(method_order(Method::rk4) == 4);
  REQUIRE(method_order(Method::yoshida6) == 6);
  REQUIRE(method_order(Method::gauss_legendre6) == 6);
  REQUIRE_FALSE(is_symplectic(Method::explicit_euler));
  REQUIRE_FALSE(is_symplectic(Method::rk4));
  REQUIRE(is_symplectic(Method::yoshida6));
  REQUIRE(is_implicit(Method::implicit_midpoint, true));
  REQUIRE(is_implicit(Method::gauss_legendre6, true));
  REQUIRE_FALSE(is_implicit(Method::stormer_verlet, true));
  REQUIRE(is_implicit(Method::stormer_verlet, false));
  REQUIRE_FALSE(is_implicit(Method::rk4, false));
  REQUIRE_THROWS_WITH(method_from_name("leapfrog"), Contains("leapfrog") && Contains("stormer_verlet") &&
                                                        Contains("gauss_legendre6"));
}

TEST_CASE("one step on the spring matches the formulas worked by hand", "[hamiltonian][integrators]") {
  // f = (2p, -2q) from (q, p) = (0.6, -0.3), h = 0.1.
  const VectorField f = mass_spring().field;
  const Tensor x = tensor({0.6, -0.3}, {1, 2}, DType::f64);
  const double q = 0.6, p = -0.3, h = 0.1;
  testing::require_allclose(explicit_euler_step(f, x, h), {q + 2 * h * p, p - 2 * h * q}, 1e-15, 1e-15);
  const double p_euler = p - 2 * h * q;  // p' = p + h f_p(q), then q' = q + h f_q(p')
  testing::require_allclose(symplectic_euler_step(f, x, h, explicit_forms()), {q + 2 * h * p_euler, p_euler}, 1e-15,
                            1e-15);
  const double p_half = p - h * q, q_next = q + 2 * h * p_half;  // kick, drift, kick
  testing::require_allclose(stormer_verlet_step(f, x, h, explicit_forms()), {q_next, p_half - h * q_next}, 1e-15,
                            1e-15);
  // Implicit midpoint on a linear field is the Cayley transform: with a = h (the field is
  // 2 x rotation, half a step is h), q' = ((1 - a^2) q + 2 a p) / (1 + a^2), likewise p'.
  const double a = h;
  testing::require_allclose(implicit_midpoint_step(f, x, h),
                            {((1 - a * a) * q + 2 * a * p) / (1 + a * a), ((1 - a * a) * p - 2 * a * q) / (1 + a * a)},
                            1e-13, 1e-13);
}

TEST_CASE("every method converges at its order on the spring", "[hamiltonian][integrators]") {
  const HamiltonianSystem spring = mass_spring();
  const Tensor x0 = tensor({1.0, 0.5, -0.3, 0.8}, {2, 2}, DType::f64);
  const double total_time = 1.0;
  const Tensor exact = mass_spring_exact(x0, total_time);
  for (Method method : all_methods()) {
    const double order = measured_order(method, spring.field, x0, total_time, exact, explicit_forms());
    INFO(method_name(method) << ": measured order " << order);
    REQUIRE(std::abs(order - method_order(method)) <= 0.3);
  }
}

TEST_CASE("every method converges at its order on the pendulum", "[hamiltonian][integrators]") {
  const HamiltonianSystem system = pendulum();
  const Tensor x0 = tensor({1.0, 0.0, -2.0, 0.5}, {2, 2}, DType::f64);
  const double total_time = 2.0;
  const Tensor reference = integrate(Method::gauss_legendre6, system.field, x0, total_time, 1000, {});
  for (Method method : all_methods()) {
    const double order = measured_order(method, system.field, x0, total_time, reference, explicit_forms());
    INFO(method_name(method) << ": measured order " << order);
    REQUIRE(std::abs(order - method_order(method)) <= 0.3);
  }
  // The implicit (general) forms of the partitioned methods converge at the same order.
  for (Method method : {Method::symplectic_euler, Method::stormer_verlet, Method::yoshida4, Method::yoshida6}) {
    const double order = measured_order(method, system.field, x0, total_time, reference, {});
    INFO(method_name(method) << " (general form): measured order " << order);
    REQUIRE(std::abs(order - method_order(method)) <= 0.3);
  }
}

TEST_CASE("the separable and general forms agree on a separable system", "[hamiltonian][integrators]") {
  const VectorField f = pendulum().field;
  Generator gen(21);
  const Tensor x = uniform({4, 2}, -2, 2, gen, DType::f64);
  for (Method method : {Method::symplectic_euler, Method::stormer_verlet, Method::yoshida4, Method::yoshida6}) {
    CAPTURE(method_name(method));
    testing::require_allclose(step(method, f, x, 0.1, {}), step(method, f, x, 0.1, explicit_forms()), 0, 1e-13);
  }
}

TEST_CASE("the symplectic methods' one-step maps are symplectic; Euler and RK4 are not", "[hamiltonian][integrators]") {
  const VectorField pendulum_field = pendulum().field;
  const VectorField double_pendulum_field = double_pendulum().field;
  StepOptions tight;
  tight.fixed_point.tolerance = 1e-15;
  tight.fixed_point.max_iterations = 200;
  StepOptions tight_explicit = tight;
  tight_explicit.separable = true;
  Generator gen(22);
  const Tensor pendulum_points = uniform({4, 2}, -2, 2, gen, DType::f64);
  const Tensor double_pendulum_points = uniform({3, 4}, -1, 1, gen, DType::f64);
  for (Method method : all_methods()) {
    double pendulum_error = 0, double_pendulum_error = 0;
    for (std::int64_t i = 0; i < 4; ++i) {
      pendulum_error = std::max(pendulum_error, symplecticity_error(method, pendulum_field,
                                                                    narrow(pendulum_points, 0, i, 1), 0.1, tight_explicit));
    }
    for (std::int64_t i = 0; i < 3; ++i) {
      double_pendulum_error =
          std::max(double_pendulum_error, symplecticity_error(method, double_pendulum_field,
                                                              narrow(double_pendulum_points, 0, i, 1), 0.1, tight));
    }
    INFO(method_name(method) << ": symplecticity error " << scientific(pendulum_error) << " (pendulum), "
                            << scientific(double_pendulum_error) << " (double pendulum)");
    if (is_symplectic(method)) {
      REQUIRE(pendulum_error <= 1e-13);
      REQUIRE(double_pendulum_error <= 1e-13);
    } else {
      // The negative control: the same measurement sees an error 10^4 times the bound above.
      REQUIRE(pendulum_error > 1e-9);
      REQUIRE(double_pendulum_error > 1e-9);
    }
  }
}

TEST_CASE("the pendulum's energy stays bounded under symplectic methods and drifts under Euler and RK4",
          "[hamiltonian][integrators]") {
  NoGradGuard no_grad;
  const HamiltonianSystem system = pendulum();
  const Tensor x0 = pendulum_start();
  const double h = 0.1;
  const std::int64_t steps = 10000;
  for (Method method : all_methods()) {
    const Tensor states = rollout(method, system.field, x0, h, steps, explicit_forms());
    const std::vector<double> energy = system.hamiltonian(reshape(states, {steps + 1, 2})).to_vector();
    double error_to_1000 = 0, error_to_10000 = 0;
    for (std::int64_t k = 0; k <= steps; ++k) {
      const double error = std::abs(energy[static_cast<std::size_t>(k)] - energy[0]);
      if (k <= 1000) error_to_1000 = std::max(error_to_1000, error);
      error_to_10000 = std::max(error_to_10000, error);
    }
    INFO(method_name(method) << ": max energy error " << scientific(error_to_1000) << " to step 1000, "
                            << scientific(error_to_10000) << " to step 10000");
    if (is_symplectic(method)) {
      REQUIRE(error_to_10000 <= 1.05 * error_to_1000);
      REQUIRE(error_to_10000 < 0.05);
    } else {
      REQUIRE(error_to_10000 > 5 * error_to_1000);
    }
  }
}

TEST_CASE("second derivatives flow through two integrator steps of a learned-like field",
          "[hamiltonian][integrators]") {
  // f(x) = tanh(x W + b) with W and b inputs: derivatives reach the field's parameters.
  const Tensor x = testing::random_input({2, 2}, 31, -1, 1);
  const Tensor weight = testing::random_input({2, 2}, 32, -1, 1);
  const Tensor bias = testing::random_input({2}, 33, -0.5, 0.5);
  struct Case {
    Method method;
    bool separable;
  };
  for (const Case& c : {Case{Method::stormer_verlet, true}, Case{Method::stormer_verlet, false},
                        Case{Method::rk4, false}, Case{Method::implicit_midpoint, false}}) {
    CAPTURE(method_name(c.method), c.separable);
    const auto two_steps = [&](const TensorList& in) {
      const VectorField f = [&](const Tensor& y) { return tanh(matmul(y, in[1]) + in[2]); };
      StepOptions options;
      options.separable = c.separable;
      const Tensor once = step(c.method, f, in[0], 0.2, options);
      return step(c.method, f, once, 0.2, options);
    };
    REQUIRE_GRADCHECK(two_steps, (TensorList{x, weight, bias}));
    REQUIRE_GRADGRADCHECK(two_steps, (TensorList{x, weight, bias}));
  }
}

TEST_CASE("the integrators run in float32", "[hamiltonian][integrators]") {
  const VectorField f = pendulum().field;
  const Tensor x64 = tensor({1.0, 0.0, -0.5, 0.7}, {2, 2}, DType::f64);
  const Tensor x32 = to_dtype(x64, DType::f32);
  for (Method method : all_methods()) {
    CAPTURE(method_name(method));
    NoGradGuard no_grad;
    const Tensor end32 = rollout(method, f, x32, 0.1, 50, explicit_forms(), 50);
    REQUIRE(end32.dtype() == DType::f32);
    testing::require_allclose(end32, rollout(method, f, x64, 0.1, 50, explicit_forms(), 50), 1e-4, 1e-4);
  }
  // An implicit general form converges at the float32 default tolerance.
  const Tensor dp64 = tensor({0.5, -0.3, 0.2, 0.1}, {1, 4}, DType::f64);
  FixedPointReport report;
  StepOptions options;
  options.report = &report;
  const Tensor next32 = stormer_verlet_step(double_pendulum().field, to_dtype(dp64, DType::f32), 0.1, options);
  REQUIRE(report.converged);
  testing::require_allclose(next32, stormer_verlet_step(double_pendulum().field, dp64, 0.1), 1e-5, 1e-5);

  // Large states: the default tolerance scales with them, so the solves converge although
  // an absolute 1e-6 is below float32 round-off at these magnitudes (with it, the midpoint
  // iteration wanders at 7.6e-6 until the cap).
  Generator large_gen(5);
  const Tensor large = uniform({64, 2}, -100, 100, large_gen, DType::f32);
  for (Method method : {Method::implicit_midpoint, Method::gauss_legendre6, Method::stormer_verlet}) {
    CAPTURE(method_name(method));
    REQUIRE_NOTHROW(rollout(method, f, large, 0.1, 20, options));
    REQUIRE(report.converged);
  }
}

TEST_CASE("the fixed-point solves report iterations and non-convergence", "[hamiltonian][integrators]") {
  const VectorField f = double_pendulum().field;
  const Tensor x = tensor({0.5, -0.3, 0.2, 0.1, 1.0, 0.2, -0.4, 0.3}, {2, 4}, DType::f64);

  // Converged: the iterate satisfies the midpoint equation x' = x + h f((x + x') / 2).
  FixedPointReport report;
  StepOptions options;
  options.report = &report;
  const Tensor next = implicit_midpoint_step(f, x, 0.1, options);
  CAPTURE(report.iterations, report.residual);
  REQUIRE(report.converged);
  REQUIRE(report.iterations >= 2);
  REQUIRE(report.max_iterations_used == report.iterations);
  REQUIRE(report.residual <= 1e-13);
  testing::require_allclose(next, x + f((x + next) * 0.5) * 0.1, 0, 1e-13);

  // A cap of two iterations cannot reach 1e-15: an exception naming the method, the cap,
  // the residual and the tolerance ...
  StepOptions capped;
  capped.fixed_point.max_iterations = 2;
  capped.fixed_point.tolerance = 1e-15;
  capped.report = &report;
  for (Method method : {Method::implicit_midpoint, Method::gauss_legendre6, Method::stormer_verlet,
                        Method::symplectic_euler, Method::yoshida6}) {
    CAPTURE(method_name(method));
    REQUIRE_THROWS_AS(step(method, f, x, 0.1, capped), NotConverged);
    REQUIRE_THROWS_WITH(step(method, f, x, 0.1, capped), Contains(method_name(method) + "_step") &&
                                                              Contains("at most 2 iterations") &&
                                                              Contains("residual") && Contains("tolerance 1e-15"));
    REQUIRE_FALSE(report.converged);
  }
  // ... or, on request, the last iterate and a report.
  capped.fixed_point.throw_on_failure = false;
  const Tensor unconverged = implicit_midpoint_step(f, x, 0.1, capped);
  REQUIRE_FALSE(report.converged);
  REQUIRE(report.iterations == 2);
  REQUIRE(report.residual > 1e-15);
  REQUIRE(max_abs(unconverged - next) < 1e-3);  // close, but not the converged answer
  REQUIRE(max_abs(unconverged - next) > 1e-15);

  // Rollouts say which step failed, and their reports cover every step.
  capped.fixed_point.throw_on_failure = true;
  REQUIRE_THROWS_WITH(rollout(Method::implicit_midpoint, f, x, 0.1, 5, capped),
                      Contains("rollout(implicit_midpoint)") && Contains("step 1 of 5"));
  rollout(Method::gauss_legendre6, f, x, 0.1, 5, options);
  REQUIRE(report.converged);
  REQUIRE(report.max_iterations_used >= report.iterations);
}

TEST_CASE("rollout keeps every stride-th state and is differentiable", "[hamiltonian][integrators]") {
  const VectorField f = pendulum().field;
  const Tensor x0 = tensor({1.0, 0.0, 0.3, -0.2, -1.0, 0.5}, {3, 2}, DType::f64);
  const Tensor kept = rollout(Method::stormer_verlet, f, x0, 0.1, 10, explicit_forms(), 5);
  REQUIRE(kept.shape() == Shape{3, 3, 2});
  testing::require_allclose(reshape(narrow(kept, 0, 0, 1), {3, 2}), x0, 0, 0);
  Tensor x = x0;
  for (int k = 0; k < 10; ++k) {
    x = stormer_verlet_step(f, x, 0.1, explicit_forms());
    if (k == 4) testing::require_allclose(reshape(narrow(kept, 0, 1, 1), {3, 2}), x, 0, 0);
  }
  testing::require_allclose(reshape(narrow(kept, 0, 2, 1), {3, 2}), x, 0, 0);
  REQUIRE(rollout(Method::rk4, f, x0, 0.1, 0).shape() == Shape{1, 3, 2});
  for (Method method : all_methods()) {  // an empty batch is a valid, empty rollout
    REQUIRE(rollout(method, f, zeros({0, 2}, DType::f64), 0.1, 2).shape() == Shape{3, 0, 2});
  }

  const Tensor start = testing::random_input({2, 2}, 41, -1, 1);
  REQUIRE_GRADCHECK([&](const TensorList& in) { return rollout(Method::yoshida4, f, in[0], 0.1, 4, explicit_forms(), 2); },
                    TensorList{start});
  REQUIRE_GRADCHECK([&](const TensorList& in) { return rollout(Method::gauss_legendre6, f, in[0], 0.1, 3); },
                    TensorList{start});
}

TEST_CASE("the integrators reject bad arguments with clear messages", "[hamiltonian][integrators]") {
  const VectorField f = pendulum().field;
  const Tensor x = zeros({8, 2}, DType::f64);
  REQUIRE_THROWS_WITH(stormer_verlet_step(f, zeros({8, 3}, DType::f64), 0.1),
                      Contains("stormer_verlet_step") && Contains("[8, 3]") && Contains("odd number of columns"));
  REQUIRE_THROWS_WITH(rk4_step(f, zeros({4}, DType::f64), 0.1), Contains("rk4_step") && Contains("[4]"));
  REQUIRE_THROWS_WITH(explicit_euler_step(f, Tensor(), 0.1), Contains("undefined"));
  REQUIRE_THROWS_WITH(symplectic_euler_step(f, zeros({3, 0}, DType::f64), 0.1), Contains("no columns"));
  for (double h : {0.0, -0.1, double(NAN), double(INFINITY)}) {
    CAPTURE(h);
    REQUIRE_THROWS_WITH(gauss_legendre6_step(f, x, h), Contains("gauss_legendre6_step") && Contains("step size"));
  }
  const VectorField wrong = [](const Tensor& y) { return narrow(y, 1, 0, 1); };
  REQUIRE_THROWS_WITH(implicit_midpoint_step(wrong, x, 0.1),
                      Contains("implicit_midpoint_step") && Contains("[8, 1]") && Contains("[8, 2]"));
  StepOptions options;
  options.fixed_point.max_iterations = 0;
  REQUIRE_THROWS_WITH(yoshida4_step(f, x, 0.1, options), Contains("yoshida4_step") && Contains("max_iterations"));
  options.fixed_point.max_iterations = 10;
  options.fixed_point.tolerance = -1;
  REQUIRE_THROWS_WITH(symplectic_euler_step(f, x, 0.1, options), Contains("tolerance"));
  REQUIRE_THROWS_WITH(rollout(Method::rk4, f, x, 0.1, -1), Contains("rollout(rk4)") && Contains("steps = -1"));
  REQUIRE_THROWS_WITH(rollout(Method::rk4, f, x, 0.1, 10, {}, 0), Contains("stride = 0"));
  REQUIRE_THROWS_WITH(rollout(Method::rk4, f, x, 0.1, 10, {}, 3), Contains("not a multiple of stride = 3"));
}
