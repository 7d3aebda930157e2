// The evaluation API (pde/hamiltonian/metrics.hpp) against hand computations: MSEs of
// small tensors, rollouts of linear maps whose powers are known, the energy drift of two
// integrators on H = q^2 + p^2 in closed form, the symplecticity defect of linear maps
// (zero for a rotation or a symmetric shear, a known value otherwise), and the HNN energy
// protocol on a field whose flow is known.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "pde/hamiltonian/metrics.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;

namespace {

// x -> x A^T for a [2n, 2n] matrix A given row-major: the linear map x_{k+1} = A x_k per row.
StepMap linear_map(const std::vector<double>& a, std::int64_t width, DType dtype = DType::f64) {
  const Tensor a_transposed = transpose(from_vector(a, {width, width}, dtype));
  return [a_transposed](const Tensor& x) { return matmul(x, a_transposed); };
}

StepMap rotation(double angle, DType dtype = DType::f64) {
  const double c = std::cos(angle), s = std::sin(angle);
  return linear_map({c, s, -s, c}, 2, dtype);
}

// Log-spaced sample steps must start at 1, end at the last step and increase.
void require_log_curve(const EnergyDrift& drift, std::int64_t last) {
  REQUIRE(!drift.curve_step.empty());
  REQUIRE(drift.curve_step.size() == drift.curve_error.size());
  CHECK(drift.curve_step.front() == 1.0);
  CHECK(drift.curve_step.back() == static_cast<double>(last));
  CHECK(drift.curve_step.size() <= 1001);
  for (std::size_t i = 1; i < drift.curve_step.size(); ++i) REQUIRE(drift.curve_step[i] > drift.curve_step[i - 1]);
}

}  // namespace

TEST_CASE("mean_squared_error, vector_field_mse and one_step_mse by hand", "[metrics]") {
  CHECK(mean_squared_error(tensor({1, 2, 3}, {3}, DType::f64), tensor({1, 0, 0}, {3}, DType::f64)) == 13.0 / 3.0);
  // Mixed dtypes compare values.
  CHECK(mean_squared_error(tensor({0.5, 1.0}, {2}, DType::f32), tensor({0.0, 0.0}, {2}, DType::f64)) == 0.625);
  const VectorField doubling = [](const Tensor& x) { return x * 2.0; };
  const Tensor x = tensor({1, 2, -1, 0.5}, {2, 2}, DType::f64);
  // model(x) = (2, 4, -2, 1), squared errors 0, 1, 4, 0.25 against (2, 5, 0, 0.5).
  CHECK(vector_field_mse(doubling, x, tensor({2, 5, 0, 0.5}, {2, 2}, DType::f64)) == 5.25 / 4);
  // Shear (q, p) -> (q + p, p): (1, 2) -> (3, 2), (-1, 0.5) -> (-0.5, 0.5).
  const StepMap shear = linear_map({1, 1, 0, 1}, 2);
  CHECK(one_step_mse(shear, x, tensor({3, 2, -0.5, 0.5}, {2, 2}, DType::f64)) == 0.0);
  CHECK(one_step_mse(shear, x, tensor({3, 3, -0.5, 0.5}, {2, 2}, DType::f64)) == 0.25);
}

TEST_CASE("rollouts of a shear and a scaling follow their matrix powers", "[metrics]") {
  const Tensor x0 = tensor({1, 2, -3, 0.5}, {2, 2}, DType::f64);
  // The shear's k-th power is [[1, k], [0, 1]]: q_k = q_0 + k p_0.
  const Tensor path = rollout_map(linear_map({1, 1, 0, 1}, 2), x0, 5);
  REQUIRE(path.shape() == Shape{6, 2, 2});
  std::vector<double> expected;
  for (int k = 0; k <= 5; ++k) {
    expected.insert(expected.end(), {1.0 + 2.0 * k, 2.0, -3.0 + 0.5 * k, 0.5});
  }
  testing::require_allclose(path, expected, 0, 1e-14);
  // rollout_mse streams the same comparison; one entry off by 0.3 in 24 gives 0.09 / 24.
  Tensor truth = from_vector(expected, {6, 2, 2}, DType::f64);
  CHECK(rollout_mse(linear_map({1, 1, 0, 1}, 2), x0, truth) <= 1e-28);
  expected[4 * 3 + 2] += 0.3;
  truth = from_vector(expected, {6, 2, 2}, DType::f64);
  CHECK(std::abs(rollout_mse(linear_map({1, 1, 0, 1}, 2), x0, truth) - 0.09 / 24) < 1e-15);
  // Scaling by 2: x_k = 2^k x_0.
  const Tensor grown = rollout_map(linear_map({2, 0, 0, 2}, 2), x0, 10);
  testing::require_allclose(narrow(grown, 0, 10, 1), reshape(x0 * 1024.0, {1, 2, 2}), 0, 0);
  CHECK(rollout_map(linear_map({2, 0, 0, 2}, 2), x0, 0).shape() == Shape{1, 2, 2});
}

TEST_CASE("integrator_map is one step of the integrator", "[metrics]") {
  const HamiltonianSystem system = pendulum();
  StepOptions options;
  options.separable = true;
  const Tensor x = tensor({1.0, 0.0, 0.3, -0.2}, {2, 2}, DType::f64);
  const StepMap map = integrator_map(Method::yoshida4, system.field, 0.1, options);
  testing::require_allclose(map(x), yoshida4_step(system.field, x, 0.1, options), 0, 0);
}

TEST_CASE("energy_drift: Stormer-Verlet on the spring stays within its O(h^2) bound", "[metrics]") {
  // Kick-drift-kick on q' = 2p, p' = -2q conserves I = p^2 + (1 - h^2) q^2 exactly, so
  // H - H_0 = h^2 (q_k^2 - q_0^2); from (q, p) = (0, 1) that is h^2 q_k^2 <= h^2 / (1 - h^2),
  // approached as the rotation sweeps the circle.
  const HamiltonianSystem spring = mass_spring();
  StepOptions options;
  options.separable = true;
  const Tensor x0 = tensor({0.0, 1.0}, {1, 2}, DType::f64);
  for (double h : {0.1, 0.05}) {
    const double bound = h * h / (1 - h * h);
    const EnergyDrift drift =
        energy_drift(integrator_map(Method::stormer_verlet, spring.field, h, options), spring.hamiltonian, x0,
                     {10, 100, 1000, 3000});
    REQUIRE(drift.max_error.size() == 4);
    INFO("h = " << h << ", max error " << drift.max_error.back() << ", bound " << bound);
    for (std::size_t i = 0; i < 4; ++i) CHECK(drift.max_error[i] <= bound * (1 + 1e-12));
    for (std::size_t i = 1; i < 4; ++i) CHECK(drift.max_error[i] >= drift.max_error[i - 1]);
    CHECK(drift.max_error.back() >= 0.999 * bound);  // bounded, and the bound is the actual size
    CHECK(drift.max_error[3] <= drift.max_error[2] * 1.001);  // no growth from 10^3 to 3 10^3 steps
    require_log_curve(drift, 3000);
  }
}

TEST_CASE("energy_drift: explicit Euler on the spring grows like (1 + 4 h^2)^k", "[metrics]") {
  // x_{k+1} = x_k + h (2 p, -2 q) multiplies q^2 + p^2 by exactly 1 + 4 h^2 per step.
  const HamiltonianSystem spring = mass_spring();
  const double h = 0.01, h0 = 0.3 * 0.3 + 0.4 * 0.4;
  const Tensor x0 = tensor({0.3, 0.4, -0.1, 0.0}, {2, 2}, DType::f64);  // H0 = 0.25 and 0.01
  const std::vector<std::int64_t> checkpoints{1, 10, 100, 1000, 3000};
  const EnergyDrift drift =
      energy_drift(integrator_map(Method::explicit_euler, spring.field, h), spring.hamiltonian, x0, checkpoints);
  for (std::size_t i = 0; i < checkpoints.size(); ++i) {
    const double exact = h0 * (std::pow(1 + 4 * h * h, static_cast<double>(checkpoints[i])) - 1);
    INFO("step " << checkpoints[i] << ": " << drift.max_error[i] << " vs " << exact);
    CHECK(std::abs(drift.max_error[i] - exact) <= 1e-11 * exact);
  }
  require_log_curve(drift, 3000);
  for (std::size_t i = 0; i < drift.curve_step.size(); ++i) {
    const double exact = h0 * (std::pow(1 + 4 * h * h, drift.curve_step[i]) - 1);
    REQUIRE(std::abs(drift.curve_error[i] - exact) <= 1e-11 * exact);
  }
  CHECK(drift.to_json()["checkpoints"].size() == 5);
}

TEST_CASE("energy_drift reports a diverged run as NaN", "[metrics]") {
  // Doubles the state twice, then produces NaN; finite steps after a NaN must not hide it.
  int calls = 0;
  const StepMap breaks_down = [&calls](const Tensor& x) {
    ++calls;
    if (calls == 3) return x * std::nan("");
    return calls < 3 ? x * 2.0 : zeros_like(x);
  };
  const EnergyDrift drift =
      energy_drift(breaks_down, mass_spring().hamiltonian, tensor({1.0, 0.0}, {1, 2}, DType::f64), {2, 5});
  CHECK(drift.max_error[0] == 15.0);  // H goes 1 -> 4 -> 16
  CHECK(std::isnan(drift.max_error[1]));
}

TEST_CASE("symplecticity_error: rotations and symmetric shears are symplectic, scalings are not", "[metrics]") {
  Generator gen(3);
  const Tensor points = uniform({20, 2}, -2, 2, gen, DType::f64);
  CHECK(symplecticity_error(rotation(0.3), points) <= 1e-13);
  CHECK(symplecticity_error(linear_map({1, 0.7, 0, 1}, 2), points) <= 1e-13);
  // Scaling by s: J^T Omega J = s^2 Omega, so the defect is (s^2 - 1) ||Omega||_F = 0.21 sqrt 2.
  CHECK(std::abs(symplecticity_error(linear_map({1.1, 0, 0, 1.1}, 2), points) - 0.21 * std::sqrt(2.0)) < 1e-13);
  // A nonlinear symplectic map: a pendulum kick then a drift (symplectic Euler, GNI I.1.9).
  const StepMap kick_drift = [](const Tensor& x) {
    const Tensor p = momenta(x) - sin(positions(x)) * 0.1;
    return join_state(positions(x) + p * 0.1, p);
  };
  CHECK(symplecticity_error(kick_drift, points) <= 1e-13);
  // Float32: the Jacobian is taken in the points' dtype, good to a few ulps.
  const double f32_error = symplecticity_error(rotation(0.3, DType::f32), to_dtype(points, DType::f32));
  CHECK(f32_error <= 1e-6);
}

TEST_CASE("symplecticity_error in 4 dimensions: p += S q is symplectic iff S is symmetric", "[metrics]") {
  // J = [[I, 0], [S, I]] gives J^T Omega J - Omega = [[S - S^T, 0], [0, 0]].
  Generator gen(5);
  const Tensor points = uniform({5, 4}, -1, 1, gen, DType::f64);
  const std::vector<double> symmetric{1, 0, 0, 0, 0, 1, 0, 0, 0.4, -0.3, 1, 0, -0.3, 2.0, 0, 1};
  const std::vector<double> lopsided{1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1};
  CHECK(symplecticity_error(linear_map(symmetric, 4), points) <= 1e-13);
  CHECK(std::abs(symplecticity_error(linear_map(lopsided, 4), points) - std::sqrt(2.0)) < 1e-13);
}

TEST_CASE("symplecticity_error of integrator steps: Stormer-Verlet exact, RK4 not", "[metrics]") {
  const HamiltonianSystem system = pendulum();
  StepOptions options;
  options.separable = true;
  Generator gen(9);
  const Tensor points = uniform({10, 2}, -2, 2, gen, DType::f64);
  CHECK(symplecticity_error(integrator_map(Method::stormer_verlet, system.field, 0.1, options), points) <= 1e-13);
  CHECK(symplecticity_error(integrator_map(Method::rk4, system.field, 0.1), points) > 1e-9);
}

TEST_CASE("hnn_energy_mse: zero for the true field, closed form for a growing spiral", "[metrics]") {
  const HamiltonianSystem spring = mass_spring();
  const Tensor starts = tensor({0.5, 0.0, 0.0, -1.0}, {2, 2}, DType::f64);  // H0 = 0.25 and 1
  const EnergyMseResult same = hnn_energy_mse(spring.field, spring, starts, 20.0, 100, 10);
  CHECK(same.energy_mse == 0.0);
  CHECK(same.state_mse == 0.0);
  CHECK(same.learned.shape() == Shape{100, 2, 2});
  CHECK(same.times.shape() == Shape{100});
  CHECK(same.times.to_vector().back() == 20.0);
  // dx/dt = (2p, -2q) + eps x has the flow e^(eps t) R(2t) x0, so H(t) = e^(2 eps t) H0 and the
  // energy MSE is the mean over times and starts of (e^(2 eps t) - 1)^2 H0^2. Answered in
  // float32, as a float32 model would; the states stay float64.
  const double eps = 0.01;
  const VectorField spiral = [&spring, eps](const Tensor& x) {
    return to_dtype(spring.field(x) + x * eps, DType::f32);
  };
  const EnergyMseResult result = hnn_energy_mse(spiral, spring, starts, 20.0, 100, 10);
  double expected = 0.0;
  for (int k = 0; k < 100; ++k) {
    const double growth = std::exp(2 * eps * 20.0 * k / 99.0) - 1;
    expected += growth * growth * (0.25 * 0.25 + 1.0) / 200.0;
  }
  INFO("energy MSE " << result.energy_mse << " vs " << expected);
  CHECK(std::abs(result.energy_mse - expected) <= 1e-5 * expected);
  CHECK(result.learned.dtype() == DType::f64);
}

TEST_CASE("metrics reject bad shapes and arguments", "[metrics]") {
  const Tensor x = zeros({3, 2}, DType::f64);
  CHECK_THROWS_AS(mean_squared_error(x, zeros({2, 3}, DType::f64)), std::invalid_argument);
  CHECK_THROWS_AS(mean_squared_error(zeros({0}, DType::f64), zeros({0}, DType::f64)), std::invalid_argument);
  CHECK_THROWS_AS(vector_field_mse([](const Tensor& s) { return s; }, x, zeros({3, 4}, DType::f64)), std::invalid_argument);
  CHECK_THROWS_AS(vector_field_mse([](const Tensor& s) { return narrow(s, 1, 0, 1); }, x, x), std::invalid_argument);
  CHECK_THROWS_AS(one_step_mse([](const Tensor& s) { return s; }, zeros({3, 3}, DType::f64), zeros({3, 3}, DType::f64)),
                  std::invalid_argument);
  const StepMap identity = [](const Tensor& s) { return s; };
  CHECK_THROWS_AS(rollout_map(identity, x, -1), std::invalid_argument);
  CHECK_THROWS_AS(rollout_mse(identity, x, zeros({4, 3, 4}, DType::f64)), std::invalid_argument);
  CHECK_THROWS_AS(rollout_mse(identity, x, zeros({3, 2}, DType::f64)), std::invalid_argument);
  const ScalarField h = mass_spring().hamiltonian;
  CHECK_THROWS_AS(energy_drift(identity, h, x, {}), std::invalid_argument);
  CHECK_THROWS_AS(energy_drift(identity, h, x, {10, 10}), std::invalid_argument);
  CHECK_THROWS_AS(energy_drift(identity, h, x, {0, 10}), std::invalid_argument);
  CHECK_THROWS_AS(energy_drift([](const Tensor& s) { return concat({s, s}, 0); }, h, x, {1}), std::invalid_argument);
  CHECK_THROWS_AS(symplecticity_error(identity, zeros({4, 3}, DType::f64)), std::invalid_argument);
  CHECK_THROWS_AS(hnn_energy_mse(mass_spring().field, mass_spring(), zeros({2, 4}, DType::f64)), std::invalid_argument);
  CHECK_THROWS_AS(hnn_energy_mse(mass_spring().field, mass_spring(), x, 20.0, 1), std::invalid_argument);
  CHECK_THROWS_AS(integrator_map(Method::rk4, VectorField{}, 0.1), std::invalid_argument);
}
