// The Hamiltonian systems of pde/hamiltonian/systems.hpp: each hand-derived vector field
// against the autograd symplectic gradient of its H, the energies against numbers computed
// here with plain arithmetic (the double pendulum's from Cartesian positions and
// velocities), the double pendulum's Lagrangian accelerations against its Hamiltonian flow,
// the spring's exact flow against a small-step RK4 written out here, and the errors.
#include <cmath>
#include <vector>

#include "pde/hamiltonian/systems.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;
using Catch::Matchers::Contains;

namespace {

Tensor random_states(std::int64_t batch, std::int64_t columns, std::uint64_t seed, double low, double high,
                     DType dtype = DType::f64) {
  Generator gen(seed);
  return uniform({batch, columns}, low, high, gen, dtype);
}

// Two bodies kept apart: body 1 near (1, 0), body 2 near (-1, 0), momenta in [-1, 1).
Tensor two_body_states(std::int64_t batch, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<double> values;
  for (std::int64_t i = 0; i < batch; ++i) {
    values.push_back(1.0 + 0.4 * (gen.uniform() - 0.5));
    values.push_back(0.4 * (gen.uniform() - 0.5));
    values.push_back(-1.0 + 0.4 * (gen.uniform() - 0.5));
    values.push_back(0.4 * (gen.uniform() - 0.5));
    for (int k = 0; k < 4; ++k) values.push_back(2.0 * gen.uniform() - 1.0);
  }
  return from_vector(values, {batch, 8});
}

void require_field_is_symplectic_gradient(const HamiltonianSystem& system, const Tensor& x) {
  INFO(system.name);
  const Tensor by_hand = system.field(x);
  const Tensor by_autograd = autograd_symplectic_gradient(system.hamiltonian, x, /*create_graph=*/false);
  testing::require_allclose(by_hand, by_autograd, 1e-12, 1e-12);
}

// The double pendulum in Cartesian coordinates: bob positions from the angles, velocities
// from the angular velocities; returns (T, V, p1, p2) with p = dL/d(omega) from
// L = sum m |v|^2 / 2 - V.
struct CartesianDoublePendulum {
  double kinetic, potential, p1, p2;
};
CartesianDoublePendulum cartesian(const DoublePendulumParameters& pp, double theta1, double theta2, double omega1,
                                  double omega2) {
  const double y1 = -pp.l1 * std::cos(theta1), y2 = y1 - pp.l2 * std::cos(theta2);
  // d(x, y)/d theta for each rod: (l cos theta, l sin theta).
  const double e1x = pp.l1 * std::cos(theta1), e1y = pp.l1 * std::sin(theta1);
  const double e2x = pp.l2 * std::cos(theta2), e2y = pp.l2 * std::sin(theta2);
  const double v1x = e1x * omega1, v1y = e1y * omega1;
  const double v2x = v1x + e2x * omega2, v2y = v1y + e2y * omega2;
  CartesianDoublePendulum c{};
  c.kinetic = 0.5 * pp.m1 * (v1x * v1x + v1y * v1y) + 0.5 * pp.m2 * (v2x * v2x + v2y * v2y);
  c.potential = pp.g * (pp.m1 * y1 + pp.m2 * y2);
  c.p1 = pp.m1 * (v1x * e1x + v1y * e1y) + pp.m2 * (v2x * e1x + v2y * e1y);
  c.p2 = pp.m2 * (v2x * e2x + v2y * e2y);
  return c;
}

}  // namespace

TEST_CASE("state helpers split, join and rotate states", "[hamiltonian][systems]") {
  const Tensor x = tensor({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}, DType::f64);
  testing::require_allclose(positions(x), {1, 2, 5, 6});
  testing::require_allclose(momenta(x), {3, 4, 7, 8});
  testing::require_allclose(join_state(positions(x), momenta(x)), x);
  // grad H = (dH/dq, dH/dp) -> (dH/dp, -dH/dq).
  testing::require_allclose(symplectic_gradient(x), {3, 4, -1, -2, 7, 8, -5, -6});

  const Tensor j = symplectic_form(2);
  REQUIRE(j.dtype() == DType::f64);
  testing::require_allclose(j, {0, 0, 1, 0,  //
                                0, 0, 0, 1,  //
                                -1, 0, 0, 0,  //
                                0, -1, 0, 0});
  // J^T J = I and J^2 = -I.
  testing::require_allclose(matmul(transpose(j), j), eye(4, -1, DType::f64));
  testing::require_allclose(matmul(j, j), -eye(4, -1, DType::f64));
  REQUIRE(symplectic_form(1, DType::f32).dtype() == DType::f32);
  // The field of H is J grad H: symplectic_gradient agrees with grad H @ J^T row by row.
  testing::require_allclose(symplectic_gradient(x), matmul(x, transpose(j)));
}

TEST_CASE("every hand-derived field equals the autograd symplectic gradient of its H", "[hamiltonian][systems]") {
  require_field_is_symplectic_gradient(mass_spring(), random_states(16, 2, 1, -2, 2));
  require_field_is_symplectic_gradient(pendulum_hnn(), random_states(16, 2, 2, -4, 4));
  require_field_is_symplectic_gradient(pendulum(), random_states(16, 2, 3, -4, 4));
  require_field_is_symplectic_gradient(two_body(), two_body_states(16, 4));
  require_field_is_symplectic_gradient(double_pendulum(), random_states(16, 4, 5, -3, 3));
  DoublePendulumParameters uneven;
  uneven.m1 = 1.3;
  uneven.m2 = 0.7;
  uneven.l1 = 0.9;
  uneven.l2 = 1.6;
  uneven.g = 9.81;
  require_field_is_symplectic_gradient(double_pendulum(uneven), random_states(16, 4, 6, -3, 3));
}

TEST_CASE("the systems' metadata", "[hamiltonian][systems]") {
  REQUIRE(mass_spring().dof == 1);
  REQUIRE(mass_spring().separable);
  REQUIRE(pendulum().separable);
  REQUIRE(pendulum_hnn().name == "pendulum_hnn");
  REQUIRE(two_body().dof == 4);
  REQUIRE(two_body().separable);
  REQUIRE(double_pendulum().dof == 2);
  REQUIRE_FALSE(double_pendulum().separable);
  REQUIRE(double_pendulum_lagrangian().dof == 2);
}

TEST_CASE("H values match numbers computed by hand", "[hamiltonian][systems]") {
  const Tensor x = tensor({0.3, -0.4, 1.0, 0.5}, {2, 2}, DType::f64);
  testing::require_allclose(mass_spring().hamiltonian(x), {0.25, 1.25}, 1e-15, 1e-15);
  testing::require_allclose(pendulum_hnn().hamiltonian(x),
                            {3 * (1 - std::cos(0.3)) + 0.16, 3 * (1 - std::cos(1.0)) + 0.25}, 1e-15, 1e-15);
  testing::require_allclose(pendulum().hamiltonian(x), {0.08 - std::cos(0.3), 0.125 - std::cos(1.0)}, 1e-15,
                            1e-15);
  testing::require_allclose(mass_spring().field(x), {-0.8, -0.6, 1.0, -2.0}, 1e-15, 1e-15);
  testing::require_allclose(pendulum().field(x), {-0.4, -std::sin(0.3), 0.5, -std::sin(1.0)}, 1e-15, 1e-15);

  // Bodies at (1, 0) and (-2, 4) (distance 5), momenta (1, 2) and (3, -1).
  const Tensor bodies = tensor({1, 0, -2, 4, 1, 2, 3, -1}, {1, 8}, DType::f64);
  testing::require_allclose(two_body().hamiltonian(bodies), {2.5 + 5.0 - 0.2}, 1e-15, 1e-15);
  // q1 - q2 = (3, -4): dp1/dt = -(3, -4) / 125.
  testing::require_allclose(two_body().field(bodies), {1, 2, 3, -1, -0.024, 0.032, 0.024, -0.032}, 1e-15, 1e-15);
}

TEST_CASE("the double pendulum's energies match its Cartesian form", "[hamiltonian][systems]") {
  DoublePendulumParameters pp;
  pp.m1 = 1.3;
  pp.m2 = 0.7;
  pp.l1 = 0.9;
  pp.l2 = 1.6;
  pp.g = 9.81;
  const HamiltonianSystem hamiltonian = double_pendulum(pp);
  const LagrangianSystem lagrangian = double_pendulum_lagrangian(pp);
  Generator gen(7);
  for (int trial = 0; trial < 8; ++trial) {
    const double theta1 = 6 * gen.uniform() - 3, theta2 = 6 * gen.uniform() - 3;
    const double omega1 = 4 * gen.uniform() - 2, omega2 = 4 * gen.uniform() - 2;
    const CartesianDoublePendulum c = cartesian(pp, theta1, theta2, omega1, omega2);
    const Tensor canonical = tensor({theta1, theta2, c.p1, c.p2}, {1, 4}, DType::f64);
    const Tensor velocity = tensor({theta1, theta2, omega1, omega2}, {1, 4}, DType::f64);
    testing::require_allclose(hamiltonian.hamiltonian(canonical), {c.kinetic + c.potential}, 1e-12, 1e-12);
    testing::require_allclose(lagrangian.energy(velocity), {c.kinetic + c.potential}, 1e-12, 1e-12);
    testing::require_allclose(lagrangian.lagrangian(velocity), {c.kinetic - c.potential}, 1e-12, 1e-12);
    // dtheta/dt = dH/dp recovers the angular velocities.
    testing::require_allclose(positions(hamiltonian.field(canonical)), {omega1, omega2}, 1e-12, 1e-12);
  }
}

TEST_CASE("the double pendulum's Lagrangian accelerations follow its Hamiltonian flow", "[hamiltonian][systems]") {
  const HamiltonianSystem hamiltonian = double_pendulum();
  const LagrangianSystem lagrangian = double_pendulum_lagrangian();
  const Tensor x = random_states(12, 4, 8, -2, 2);
  // (q, p) -> (q, qdot) with qdot = dH/dp.
  const auto to_velocity_state = [&](const Tensor& canonical) {
    return join_state(positions(canonical), positions(hamiltonian.field(canonical)));
  };
  const Tensor velocity_state = to_velocity_state(x);
  const Tensor lagrangian_field = lagrangian.field(velocity_state);
  // The Lagrangian field's first half is qdot itself.
  testing::require_allclose(positions(lagrangian_field), momenta(velocity_state), 1e-15, 1e-15);
  // d/dt qdot along the Hamiltonian flow, by central differences of the map (q, p) -> qdot.
  const double eps = 1e-5;
  const Tensor direction = hamiltonian.field(x);
  const Tensor qdot_ahead = momenta(to_velocity_state(x + direction * eps));
  const Tensor qdot_behind = momenta(to_velocity_state(x - direction * eps));
  const Tensor qddot_numeric = (qdot_ahead - qdot_behind) / (2 * eps);
  testing::require_allclose(momenta(lagrangian_field), qddot_numeric, 1e-7, 1e-7);
  // The same states have the same energy in both forms, and the Lagrangian flow keeps it:
  // grad E . f = 0.
  testing::require_allclose(lagrangian.energy(velocity_state), hamiltonian.hamiltonian(x), 1e-12, 1e-12);
  const Tensor leaf = velocity_state.detach().requires_grad_();
  const Tensor grad_energy = grad({sum(lagrangian.energy(leaf))}, {leaf})[0];
  testing::require_allclose(sum(grad_energy * lagrangian_field, {1}), std::vector<double>(12, 0.0), 0, 1e-12);
}

TEST_CASE("the fields work in float32", "[hamiltonian][systems]") {
  const Tensor x64 = random_states(8, 4, 9, -2, 2);
  const Tensor x32 = to_dtype(x64, DType::f32);
  const HamiltonianSystem two_link = double_pendulum();
  const Tensor field32 = two_link.field(x32);
  REQUIRE(field32.dtype() == DType::f32);
  testing::require_allclose(field32, two_link.field(x64), 1e-5, 1e-5);
  REQUIRE(two_link.hamiltonian(x32).dtype() == DType::f32);
  const Tensor y64 = random_states(8, 2, 10, -2, 2);
  for (const HamiltonianSystem& system : {mass_spring(), pendulum(), pendulum_hnn()}) {
    INFO(system.name);
    testing::require_allclose(system.field(to_dtype(y64, DType::f32)), system.field(y64), 1e-5, 1e-5);
    testing::require_allclose(autograd_symplectic_gradient(system.hamiltonian, to_dtype(y64, DType::f32), false),
                              system.field(y64), 1e-5, 1e-5);
  }
  const LagrangianSystem lagrangian = double_pendulum_lagrangian();
  testing::require_allclose(lagrangian.field(x32), lagrangian.field(x64), 1e-4, 1e-4);
  REQUIRE(lagrangian.energy(x32).dtype() == DType::f32);
}

TEST_CASE("autograd_symplectic_gradient is differentiable and works without grad mode", "[hamiltonian][systems]") {
  const HamiltonianSystem system = double_pendulum();
  const Tensor x = testing::random_input({3, 4}, 11, -2, 2);
  REQUIRE_GRADCHECK([&](const TensorList& in) { return autograd_symplectic_gradient(system.hamiltonian, in[0], true); },
                    TensorList{x});
  {
    NoGradGuard no_grad;
    const Tensor field = autograd_symplectic_gradient(system.hamiltonian, x.detach(), false);
    REQUIRE_FALSE(field.requires_grad());
    testing::require_allclose(field, system.field(x.detach()), 1e-12, 1e-12);
  }
  // An H that does not depend on x has a zero field.
  const ScalarField constant = [](const Tensor& s) { return sum(s, {1}) * 0.0 + 1.0; };
  testing::require_allclose(autograd_symplectic_gradient(constant, x.detach(), false), std::vector<double>(12, 0.0));
}

TEST_CASE("mass_spring_exact conserves H and matches a small-step integration", "[hamiltonian][systems]") {
  const Tensor x0 = tensor({1.0, 0.0, 0.3, -0.7, -1.2, 0.4}, {3, 2}, DType::f64);
  testing::require_allclose(mass_spring_exact(x0, 0.0), x0, 0, 0);
  const HamiltonianSystem spring = mass_spring();
  for (double t : {0.1, 1.0, 3.7}) {
    testing::require_allclose(spring.hamiltonian(mass_spring_exact(x0, t)), spring.hamiltonian(x0), 1e-14, 1e-14);
  }
  // Its time derivative is the field (central differences in t).
  const double eps = 1e-6, t = 0.8;
  const Tensor dx_dt = (mass_spring_exact(x0, t + eps) - mass_spring_exact(x0, t - eps)) / (2 * eps);
  testing::require_allclose(dx_dt, spring.field(mass_spring_exact(x0, t)), 1e-8, 1e-8);

  // RK4 on q' = 2p, p' = -2q with 20000 steps of 1e-4, written with plain doubles.
  const std::vector<double> start = x0.to_vector();
  std::vector<double> expected;
  for (std::size_t row = 0; row < 3; ++row) {
    double q = start[2 * row], p = start[2 * row + 1];
    const double h = 1e-4;
    for (int k = 0; k < 20000; ++k) {
      const double k1q = 2 * p, k1p = -2 * q;
      const double k2q = 2 * (p + 0.5 * h * k1p), k2p = -2 * (q + 0.5 * h * k1q);
      const double k3q = 2 * (p + 0.5 * h * k2p), k3p = -2 * (q + 0.5 * h * k2q);
      const double k4q = 2 * (p + h * k3p), k4p = -2 * (q + h * k3q);
      q += h / 6 * (k1q + 2 * k2q + 2 * k3q + k4q);
      p += h / 6 * (k1p + 2 * k2p + 2 * k3p + k4p);
    }
    expected.push_back(q);
    expected.push_back(p);
  }
  testing::require_allclose(mass_spring_exact(x0, 2.0), expected, 0, 1e-11);
}

TEST_CASE("the systems reject malformed states and parameters", "[hamiltonian][systems]") {
  const Tensor odd = zeros({8, 3}, DType::f64);
  REQUIRE_THROWS_WITH(positions(odd), Contains("positions") && Contains("[8, 3]") && Contains("odd"));
  REQUIRE_THROWS_WITH(momenta(zeros({4}, DType::f64)), Contains("momenta") && Contains("[4]"));
  REQUIRE_THROWS_WITH(symplectic_gradient(odd), Contains("symplectic_gradient"));
  REQUIRE_THROWS_WITH(join_state(zeros({2, 1}), zeros({3, 1})),
                      Contains("join_state") && Contains("[2, 1]") && Contains("[3, 1]"));
  REQUIRE_THROWS_WITH(join_state(zeros({2, 1}), zeros({2, 1}, DType::f64)), Contains("float64"));
  REQUIRE_THROWS_WITH(symplectic_form(0), Contains("symplectic_form"));
  REQUIRE_THROWS_WITH(pendulum().field(zeros({5, 4}, DType::f64)),
                      Contains("pendulum") && Contains("[5, 4]") && Contains("2 columns"));
  REQUIRE_THROWS_WITH(two_body().hamiltonian(zeros({5, 2}, DType::f64)), Contains("two_body"));
  REQUIRE_THROWS_WITH(mass_spring_exact(zeros({3, 4}, DType::f64), 1.0), Contains("mass_spring_exact"));
  REQUIRE_THROWS_WITH(mass_spring_exact(zeros({3, 2}, DType::f64), NAN), Contains("not finite"));
  DoublePendulumParameters negative;
  negative.m2 = -1;
  REQUIRE_THROWS_WITH(double_pendulum(negative), Contains("double_pendulum"));
  REQUIRE_THROWS_WITH(double_pendulum_lagrangian(negative), Contains("double_pendulum_lagrangian"));
  const ScalarField wrong_shape = [](const Tensor& s) { return sum(s); };
  REQUIRE_THROWS_WITH(autograd_symplectic_gradient(wrong_shape, zeros({3, 2}, DType::f64), false),
                      Contains("autograd_symplectic_gradient") && Contains("[3]"));
}
