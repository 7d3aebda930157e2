// LagrangianNN: with a known Lagrangian in place of the network its accelerations are the
// exact Euler-Lagrange ones (a 1-dof system solved by hand, the double pendulum of
// systems.hpp); with the network they match finite differences of its own L and conserve
// its energy; the loss through the Hessian solve passes gradcheck and gradgradcheck in the
// parameters (third derivatives of the MLP); Adam steps reduce it; errors speak.
#include <catch2/catch.hpp>

#include <cmath>

#include "nn/init.hpp"
#include "nn/optim/adam.hpp"
#include "pde/hamiltonian/lnn.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;
using symgrad::testing::require_allclose;

namespace {

// Double pendulum states: angles in [-pi, pi], angular velocities in [-3, 3].
Tensor pendulum_states(std::int64_t count, std::uint64_t seed) {
  Generator gen(seed);
  const Tensor angles = uniform({count, 2}, -M_PI, M_PI, gen, DType::f64);
  const Tensor velocities = uniform({count, 2}, -3, 3, gen, DType::f64);
  return concat({angles, velocities}, 1);
}

LnnOptions tiny_options(std::vector<std::int64_t> hidden) {
  LnnOptions options;
  options.hidden = std::move(hidden);
  options.dtype = DType::f64;
  return options;
}

// d2L/dqdot2 of a model at each state, [batch, n, n], by the engine's Hessian per sample.
std::vector<Tensor> mass_matrices(LagrangianNN& model, const Tensor& x) {
  std::vector<Tensor> masses;
  for (std::int64_t s = 0; s < x.size(0); ++s) {
    const Tensor state = narrow(x, 0, s, 1).detach();
    const Tensor h = hessian([&](const Tensor& y) { return sum(model.lagrangian(y)); }, state);  // [1, 4, 1, 4]
    masses.push_back(narrow(narrow(reshape(h, {4, 4}), 0, 2, 2), 1, 2, 2));
  }
  return masses;
}

// L(x) of a model at one state, as a double (for finite differences).
double lagrangian_at(LagrangianNN& model, const std::vector<double>& state) {
  NoGradGuard no_grad;
  return model.lagrangian(from_vector(state, {1, static_cast<std::int64_t>(state.size())})).item();
}

}  // namespace

TEST_CASE("LNN with a given 1-dof Lagrangian reproduces the hand-solved Euler-Lagrange equation", "[lnn]") {
  // L = (1 + q^2) qdot^2 / 2 - q^2 / 2: d/dt((1 + q^2) qdot) = q qdot^2 - q, so
  // qddot = (-q qdot^2 - q) / (1 + q^2). The q qdot^2 term comes from the mixed Hessian block.
  ScalarField lagrangian = [](const Tensor& x) {
    const Tensor q = reshape(narrow(x, 1, 0, 1), {x.size(0)});
    const Tensor qdot = reshape(narrow(x, 1, 1, 1), {x.size(0)});
    return (1.0 + square(q)) * square(qdot) * 0.5 - square(q) * 0.5;
  };
  LagrangianNN model(1, lagrangian, DType::f64);
  const Tensor x = tensor({0.3, -1.2, -0.7, 0.4, 1.5, 2.0}, {3, 2}, DType::f64);
  std::vector<double> expected;
  for (std::int64_t i = 0; i < 3; ++i) {
    const double q = x.to_vector()[2 * i], qdot = x.to_vector()[2 * i + 1];
    expected.push_back((-q * qdot * qdot - q) / (1 + q * q));
  }
  require_allclose(model.acceleration(x), expected, 1e-13, 1e-13);
  const Tensor field = model.forward(x);
  REQUIRE(field.shape() == Shape{3, 2});
  require_allclose(narrow(field, 1, 0, 1), {-1.2, 0.4, 2.0}, 0, 0);
}

TEST_CASE("LNN with the exact double pendulum Lagrangian gives the exact accelerations", "[lnn]") {
  for (const DoublePendulumParameters& parameters :
       {DoublePendulumParameters{1, 1, 1, 1, 9.8}, DoublePendulumParameters{1.3, 0.7, 0.9, 1.2, 9.8}}) {
    const LagrangianSystem system = double_pendulum_lagrangian(parameters);
    LagrangianNN model(2, system.lagrangian, DType::f64);
    const Tensor x = pendulum_states(16, 1);
    const Tensor exact = narrow(system.field(x), 1, 2, 2);
    require_allclose(model.acceleration(x), exact, 1e-10, 1e-10);
    // The energy function qdot . dL/dqdot - L of the exact L is T + V.
    require_allclose(model.energy(x), system.energy(x), 1e-12, 1e-12);
  }
}

TEST_CASE("LNN accelerations match finite differences of its own L", "[lnn]") {
  nn::manual_seed(3);
  LagrangianNN model(2, tiny_options({16, 16}));
  const Tensor x = pendulum_states(4, 2);
  const std::vector<double> predicted = model.acceleration(x).to_vector();
  const std::vector<double> states = x.to_vector();
  const double h = 1e-4;
  for (std::int64_t s = 0; s < 4; ++s) {
    const std::vector<double> state(states.begin() + 4 * s, states.begin() + 4 * s + 4);
    auto at = [&](int i, double di, int j, double dj) {
      std::vector<double> moved = state;
      moved[i] += di;
      moved[j] += dj;
      return lagrangian_at(model, moved);
    };
    // Second derivative d2L / dx_i dx_j by central differences; first derivative likewise.
    auto second = [&](int i, int j) {
      return (at(i, h, j, h) - at(i, h, j, -h) - at(i, -h, j, h) + at(i, -h, j, -h)) / (4 * h * h);
    };
    auto first = [&](int i) { return (at(i, h, i, 0) - at(i, -h, i, 0)) / (2 * h); };
    // (d2L/dqdot2) qddot = dL/dq - (d2L/dqdot dq) qdot, the 2 x 2 system solved by Cramer's rule.
    double mass[2][2], rhs[2];
    for (int j = 0; j < 2; ++j) {
      rhs[j] = first(j);
      for (int i = 0; i < 2; ++i) {
        mass[j][i] = second(2 + j, 2 + i);
        rhs[j] -= second(2 + j, i) * state[2 + i];
      }
    }
    const double det = mass[0][0] * mass[1][1] - mass[0][1] * mass[1][0];
    const double qddot0 = (rhs[0] * mass[1][1] - mass[0][1] * rhs[1]) / det;
    const double qddot1 = (mass[0][0] * rhs[1] - mass[1][0] * rhs[0]) / det;
    INFO("sample " << s);
    CHECK(predicted[2 * s] == Approx(qddot0).epsilon(1e-5).margin(1e-6));
    CHECK(predicted[2 * s + 1] == Approx(qddot1).epsilon(1e-5).margin(1e-6));
  }
}

TEST_CASE("the learned flow conserves the learned energy", "[lnn]") {
  // dE/dt = grad E . (qdot, qddot) = 0 for any L: a wrong sign or block in the
  // acceleration formula breaks it.
  nn::manual_seed(4);
  LnnOptions options = tiny_options({16, 16});
  options.periodic_positions = true;
  options.velocity_scale = 2.0;
  LagrangianNN model(2, options);
  const Tensor x = pendulum_states(8, 5).requires_grad_();
  const Tensor e = model.energy(x);
  const Tensor grad_e = grad({e}, {x}, {ones_like(e)})[0];
  NoGradGuard no_grad;
  const Tensor rate = sum(grad_e * model.forward(x.detach()), {1});
  require_allclose(rate, std::vector<double>(8, 0.0), 0, 1e-10);
}

TEST_CASE("LNN acceleration without grad mode equals the recorded one and carries no history", "[lnn]") {
  nn::manual_seed(5);
  LagrangianNN model(2, tiny_options({8}));
  const Tensor x = pendulum_states(5, 6);
  const Tensor recorded = model.acceleration(x);
  REQUIRE(recorded.requires_grad());
  NoGradGuard no_grad;
  const Tensor plain = model.acceleration(x);
  REQUIRE_FALSE(plain.requires_grad());
  require_allclose(plain, recorded, 0, 0);
}

TEST_CASE("LNN loss: gradcheck and gradgradcheck in the parameters, gradcheck in the state", "[lnn][grad]") {
  nn::manual_seed(6);
  LnnOptions options = tiny_options({4});
  options.periodic_positions = true;
  LagrangianNN model(2, options);
  const Tensor x = pendulum_states(3, 7);
  const Tensor target = tensor({0.1, -0.2, 0.3, 0.0, -0.1, 0.2}, {3, 2}, DType::f64);
  // The loss perturbs the parameters in place (gradcheck shares their storage), so the
  // model's forward sees every finite-difference step.
  MultiFn loss = [&](const TensorList&) { return mean(square(model.acceleration(x) - target)); };
  const TensorList parameters = model.parameters();
  REQUIRE_GRADCHECK(loss, parameters);
  REQUIRE_GRADGRADCHECK(loss, parameters);

  const Tensor state = pendulum_states(2, 8).requires_grad_();
  MultiFn in_state = [&](const TensorList& in) { return model.forward(in[0]); };
  REQUIRE_GRADCHECK(in_state, (TensorList{state}));
}

TEST_CASE("a few Adam steps on the double pendulum reduce the LNN loss", "[lnn][train]") {
  nn::manual_seed(7);
  LnnOptions options = tiny_options({32, 32});
  options.periodic_positions = true;
  LagrangianNN model(2, options);
  const LagrangianSystem system = double_pendulum_lagrangian({1, 1, 1, 1, 9.8});
  const Tensor x = pendulum_states(64, 9);
  const Tensor target = narrow(system.field(x), 1, 2, 2);
  nn::Adam adam(model.parameters(), {.lr = 3e-3});
  auto loss = [&] { return mean(square(model.acceleration(x) - target)); };
  const double initial = loss().item();
  for (int step = 0; step < 20; ++step) {
    model.zero_grad();
    Tensor value = loss();
    backward(value);
    adam.step();
  }
  const double final = loss().item();
  INFO("initial " << initial << ", after 20 steps " << final);
  REQUIRE(final < 0.8 * initial);
}

TEST_CASE("the convex initialisation starts with a positive definite mass matrix", "[lnn][init]") {
  // Checked against the engine's Hessian, independently of acceleration(): both 2 x 2
  // leading minors positive at every state. A pytorch-initialised network of the same
  // shape is indefinite at many states (why the convex start exists).
  const Tensor x = pendulum_states(24, 11);
  LnnOptions options = tiny_options({32, 32});
  options.periodic_positions = true;
  options.softplus_beta = 3;
  for (std::uint64_t seed : {1, 2, 3}) {
    nn::manual_seed(seed);
    LagrangianNN convex(2, options);
    for (const Tensor& m : mass_matrices(convex, x)) {
      const std::vector<double> v = m.to_vector();
      REQUIRE(v[0] > 0);
      REQUIRE(v[0] * v[3] - v[1] * v[2] > 0);
      REQUIRE(v[1] == Approx(v[2]).epsilon(1e-10));
    }
  }
  int indefinite = 0;
  options.init = LnnInit::pytorch;
  for (std::uint64_t seed : {1, 2, 3}) {
    nn::manual_seed(seed);
    LagrangianNN plain(2, options);
    for (const Tensor& m : mass_matrices(plain, x)) {
      const std::vector<double> v = m.to_vector();
      indefinite += v[0] * v[3] - v[1] * v[2] < 0;
    }
  }
  REQUIRE(indefinite > 0);
}

TEST_CASE("the paper's initialisation: zero biases, weight scales c / sqrt(n)", "[lnn][init]") {
  nn::manual_seed(9);
  LnnOptions options = tiny_options({64, 64});
  options.init = LnnInit::paper;
  LagrangianNN model(2, options);
  const nn::NamedTensors named = model.named_parameters();
  // mlp.0 [64, 4], mlp.2 [64, 64], mlp.4 [1, 64]: std 2.2 / 8, 0.58 / 8, 64 / 8.
  const double expected_std[] = {2.2 / 8, 0.58 / 8, 64.0 / 8};
  int weight = 0;
  for (const auto& [name, tensor] : named) {
    const std::vector<double> v = tensor.to_vector();
    if (name.find("bias") != std::string::npos) {
      for (double b : v) REQUIRE(b == 0);
      continue;
    }
    double sum_squares = 0;
    for (double w : v) sum_squares += w * w;
    const double std = std::sqrt(sum_squares / static_cast<double>(v.size()));
    INFO(name << " std " << std);
    REQUIRE(std == Approx(expected_std[weight]).epsilon(weight == 2 ? 0.3 : 0.1));
    ++weight;
  }
  REQUIRE(weight == 3);
}

TEST_CASE("lagrangian_features: periodic positions and angle differences", "[lnn][features]") {
  // Against values written out by hand: (cos q, sin q, cos(q1 - q2), sin(q1 - q2), qdot / s).
  LnnOptions options = tiny_options({4});
  options.periodic_positions = true;
  options.velocity_scale = 2.0;
  const std::vector<double> state{0.3, -1.1, 0.5, -4.0};
  const Tensor x = from_vector(state, {1, 4});
  require_allclose(lagrangian_features(x, 2, options),
                   std::vector<double>{std::cos(0.3), std::cos(-1.1), std::sin(0.3), std::sin(-1.1), 0.25, -2.0}, 1e-12,
                   0);
  options.angle_differences = true;
  require_allclose(lagrangian_features(x, 2, options),
                   std::vector<double>{std::cos(0.3), std::cos(-1.1), std::sin(0.3), std::sin(-1.1), std::cos(1.4),
                                       std::sin(1.4), 0.25, -2.0},
                   1e-12, 0);
  // One degree of freedom has no pair: the features are the periodic ones.
  REQUIRE(lagrangian_features(from_vector(std::vector<double>{0.2, 0.4}, {1, 2}), 1, options).shape() == Shape{1, 3});
  // Three: the pairs (1, 2), (1, 3), (2, 3).
  const Tensor three = lagrangian_features(from_vector(std::vector<double>{0.1, 0.2, 0.7, 0, 0, 0}, {1, 6}), 3, options);
  REQUIRE(three.shape() == Shape{1, 15});
  require_allclose(narrow(three, 1, 6, 3), std::vector<double>{std::cos(-0.1), std::cos(-0.6), std::cos(-0.5)}, 1e-12,
                   0);

  // The model's first layer sees them: 8 inputs, and L is 2 pi periodic in each angle.
  nn::manual_seed(12);
  LagrangianNN model(2, options);
  REQUIRE(model.extra_repr().find("periodic+differences 8 -> 4") != std::string::npos);
  const double shifted = lagrangian_at(model, {0.3 + 2 * M_PI, -1.1 - 2 * M_PI, 0.5, -4.0});
  REQUIRE(lagrangian_at(model, state) == Approx(shifted).epsilon(1e-12));
}

TEST_CASE("an LNN trained in float32 and converted with Module::to runs in float64", "[lnn]") {
  nn::manual_seed(13);
  LnnOptions options = tiny_options({8});
  options.dtype = DType::f32;
  options.periodic_positions = true;
  LagrangianNN model(2, options);
  const Tensor x = pendulum_states(4, 14);
  NoGradGuard no_grad;
  const Tensor single = model.acceleration(to_dtype(x, DType::f32));
  REQUIRE_THROWS_WITH(model.acceleration(x), Catch::Contains("float64") && Catch::Contains("float32"));
  model.to(DType::f64);
  const Tensor doubled = model.acceleration(x);
  REQUIRE(doubled.dtype() == DType::f64);
  require_allclose(doubled, to_dtype(single, DType::f64), 1e-3, 1e-3);
}

TEST_CASE("AccelerationMLP outputs (qdot, qddot)", "[lnn]") {
  nn::manual_seed(8);
  AccelerationMLP baseline(2, tiny_options({8}));
  const Tensor x = pendulum_states(5, 10);
  const Tensor f = baseline.forward(x);
  REQUIRE(f.shape() == Shape{5, 4});
  require_allclose(narrow(f, 1, 0, 2), narrow(x, 1, 2, 2), 0, 0);
}

TEST_CASE("LNN errors name the argument and the shapes", "[lnn][errors]") {
  REQUIRE_THROWS_WITH(LagrangianNN(2, tiny_options({})), Catch::Contains("LagrangianNN") && Catch::Contains("hidden"));
  REQUIRE_THROWS_WITH(LagrangianNN(2, tiny_options({8, 0})),
                      Catch::Contains("LagrangianNN") && Catch::Contains("width 0"));
  REQUIRE_THROWS_WITH(LagrangianNN(0, tiny_options({8})), Catch::Contains("dof 0"));
  LnnOptions bad_scale = tiny_options({8});
  bad_scale.velocity_scale = 0;
  REQUIRE_THROWS_WITH(LagrangianNN(2, bad_scale), Catch::Contains("velocity_scale"));
  REQUIRE_THROWS_WITH(AccelerationMLP(2, tiny_options({-1})), Catch::Contains("AccelerationMLP"));
  REQUIRE_THROWS_WITH(AccelerationMLP(2, tiny_options({4}), -1.0), Catch::Contains("acceleration_scale"));
  LnnOptions bad_beta = tiny_options({8});
  bad_beta.softplus_beta = -2;
  REQUIRE_THROWS_WITH(LagrangianNN(2, bad_beta), Catch::Contains("softplus_beta"));
  LnnOptions differences_only = tiny_options({8});
  differences_only.angle_differences = true;  // without periodic_positions
  REQUIRE_THROWS_WITH(LagrangianNN(2, differences_only), Catch::Contains("angle_differences"));
  REQUIRE_THROWS_WITH(LagrangianNN(2, ScalarField(), DType::f64), Catch::Contains("empty"));

  LagrangianNN model(2, tiny_options({8}));
  REQUIRE_THROWS_WITH(model.acceleration(zeros({3, 3}, DType::f64)),
                      Catch::Contains("LagrangianNN::acceleration") && Catch::Contains("[3, 3]") &&
                          Catch::Contains("[batch, 4]"));
  REQUIRE_THROWS_WITH(model.forward(zeros({3, 4}, DType::f32)), Catch::Contains("float32") &&
                                                                     Catch::Contains("float64"));
  // A Lagrangian that is linear in qdot has a singular mass matrix: solve says so.
  LagrangianNN linear(1, [](const Tensor& x) { return sum(x, {1}); }, DType::f64);
  REQUIRE_THROWS_WITH(linear.acceleration(ones({2, 2}, DType::f64)), Catch::Contains("singular"));
}
