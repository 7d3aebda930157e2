// The reference generator and the HNN / SympNets presets (pde/hamiltonian/datasets.hpp):
// the reference against the spring's closed-form flow, determinism by seed, shapes and
// splits, the input noise's statistics, targets equal to the field at the clean states
// (written out by hand here, not taken from systems.cpp), and map pairs cut from one
// reference trajectory.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "pde/hamiltonian/datasets.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;

namespace {

double max_abs_difference(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

bool identical(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && a.to_vector() == b.to_vector(); }

// Max over steps and states of |reference - exact| for the spring from x0.
double spring_reference_error(const Tensor& x0, double h, std::int64_t steps, std::int64_t substeps) {
  const Tensor reference = reference_trajectory(mass_spring(), x0, h, steps, substeps);
  REQUIRE(reference.shape() == Shape{steps + 1, x0.size(0), 2});
  double worst = 0.0;
  for (std::int64_t k = 0; k <= steps; ++k) {
    const Tensor exact = mass_spring_exact(x0, h * static_cast<double>(k));
    worst = std::max(worst, max_abs_difference(narrow(reference, 0, k, 1), unsqueeze(exact, 0)));
  }
  return worst;
}

HnnProtocol small(HnnProtocol protocol, std::int64_t trajectories) {
  protocol.trajectories = trajectories;
  return protocol;
}

}  // namespace

TEST_CASE("reference_trajectory matches the spring's exact flow to 1e-10", "[datasets]") {
  const Tensor x0 = tensor({1.0, 0.0, 0.3, -0.7, -0.05, 0.02}, {3, 2}, DType::f64);
  const double error = spring_reference_error(x0, 0.1, 100, 10);  // t = 10: three periods
  INFO("max |reference - exact| = " << error);
  CHECK(error <= 1e-10);
  // The comparison is sensitive: one gauss_legendre6 step of h = 0.5 per interval is visibly off.
  CHECK(spring_reference_error(x0, 0.5, 20, 1) > 1e-9);
}

TEST_CASE("reference_trajectory converts to float64 and checks its arguments", "[datasets]") {
  const Tensor x0 = tensor({0.5, 0.5}, {1, 2}, DType::f32);
  const Tensor traj = reference_trajectory(pendulum(), x0, 0.1, 3);
  CHECK(traj.dtype() == DType::f64);
  CHECK(traj.shape() == Shape{4, 1, 2});
  CHECK(reference_trajectory(pendulum(), x0, 0.1, 0).shape() == Shape{1, 1, 2});
  CHECK_THROWS_AS(reference_trajectory(pendulum(), zeros({2, 4}, DType::f64), 0.1, 3), std::invalid_argument);
  CHECK_THROWS_AS(reference_trajectory(pendulum(), zeros({2}, DType::f64), 0.1, 3), std::invalid_argument);
  CHECK_THROWS_AS(reference_trajectory(pendulum(), x0, -0.1, 3), std::invalid_argument);
  CHECK_THROWS_AS(reference_trajectory(pendulum(), x0, 0.1, -1), std::invalid_argument);
  CHECK_THROWS_AS(reference_trajectory(pendulum(), x0, 0.1, 3, 0), std::invalid_argument);
}

TEST_CASE("the HNN presets carry the paper's settings", "[datasets]") {
  const HnnProtocol spring = hnn_spring_protocol();
  CHECK(spring.system == "mass_spring");
  CHECK(spring.trajectories == 50);
  CHECK(spring.points == 30);
  CHECK(spring.t_end == 3.0);
  CHECK(spring.radius_min == 0.1);
  CHECK(spring.radius_max == 1.0);
  CHECK(spring.noise_std == 0.1);
  CHECK(spring.test_fraction == 0.5);
  const HnnProtocol pend = hnn_pendulum_protocol();
  CHECK(pend.system == "pendulum_hnn");
  CHECK(pend.radius_min == 1.3);
  CHECK(pend.radius_max == 2.3);
  CHECK(pend.points == 45);
  CHECK(pend.noise_std == 0.1);
  const HnnProtocol orbits = hnn_two_body_protocol();
  CHECK(orbits.system == "two_body");
  CHECK(orbits.trajectories == 1000);
  CHECK(orbits.points == 50);
  CHECK(orbits.t_end == 20.0);
  CHECK(orbits.test_fraction == 0.2);
  CHECK(spring.to_json()["radius_max"] == 1.0);
}

TEST_CASE("spring dataset: shapes, split by trajectory, targets and radii", "[datasets]") {
  const FieldDataset data = make_field_dataset(hnn_spring_protocol());
  CHECK(data.x_train.shape() == Shape{25 * 30, 2});
  CHECK(data.dxdt_train.shape() == Shape{25 * 30, 2});
  CHECK(data.x_test.shape() == Shape{25 * 30, 2});
  CHECK(data.dxdt_test.shape() == Shape{25 * 30, 2});
  CHECK(data.trajectories.shape() == Shape{50, 30, 2});
  CHECK(data.x_train.dtype() == DType::f64);

  // Targets: (2p, -2q) at the clean states, row r of train is trajectory r / 30, point r % 30.
  const std::vector<double> clean = data.trajectories.to_vector();
  const std::vector<double> train_target = data.dxdt_train.to_vector(), test_target = data.dxdt_test.to_vector();
  const std::size_t half = 25 * 30 * 2;
  for (std::size_t row = 0; row < 50 * 30; ++row) {
    const double q = clean[2 * row], p = clean[2 * row + 1];
    const std::vector<double>& target = row < 25 * 30 ? train_target : test_target;
    const std::size_t at = row < 25 * 30 ? 2 * row : 2 * row - half;
    REQUIRE(std::abs(target[at] - (2 * p)) <= 1e-15);
    REQUIRE(std::abs(target[at + 1] - (-2 * q)) <= 1e-15);
  }
  // Each clean trajectory stays on its circle, of radius in [0.1, 1], sampled at t = 3 k / 29.
  double smallest = 10, largest = 0;
  for (std::int64_t j = 0; j < 50; ++j) {
    const double* start = clean.data() + j * 60;
    const double radius = std::hypot(start[0], start[1]);
    smallest = std::min(smallest, radius);
    largest = std::max(largest, radius);
    const Tensor x0 = tensor({start[0], start[1]}, {1, 2}, DType::f64);
    const std::vector<double> end = mass_spring_exact(x0, 3.0).to_vector();
    REQUIRE(std::abs(start[58] - end[0]) < 1e-11);
    REQUIRE(std::abs(start[59] - end[1]) < 1e-11);
  }
  CHECK(smallest >= 0.1);
  CHECK(largest <= 1.0);
  CHECK(largest - smallest > 0.5);  // 50 draws spread over the range
  CHECK(data.protocol["system"] == "mass_spring");
}

TEST_CASE("input noise has the protocol's standard deviation and spares the targets", "[datasets]") {
  HnnProtocol protocol = small(hnn_spring_protocol(), 400);  // 24000 noise values
  protocol.seed = 7;
  const FieldDataset data = make_field_dataset(protocol);
  const Tensor noisy = concat({data.x_train, data.x_test}, 0);
  const std::vector<double> x = noisy.to_vector(), clean = data.trajectories.to_vector();
  double sum = 0, sum_sq = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sum += x[i] - clean[i];
    sum_sq += (x[i] - clean[i]) * (x[i] - clean[i]);
  }
  const double n = static_cast<double>(x.size());
  const double mean = sum / n, std = std::sqrt(sum_sq / n - mean * mean);
  INFO("noise mean " << mean << ", std " << std);
  CHECK(std::abs(std - 0.1) < 0.003);          // the estimate's own spread is ~0.5%
  CHECK(std::abs(mean) < 4 * 0.1 / std::sqrt(n));
  // Targets are the field at the clean states, so they are smooth: exactly what the clean
  // trajectories give, however noisy the inputs.
  const Tensor clean_rows = reshape(narrow(data.trajectories, 0, 0, 200), {-1, 2});
  testing::require_allclose(data.dxdt_train, mass_spring().field(clean_rows), 0, 1e-15);
}

TEST_CASE("same seed, same data; another seed, other data", "[datasets]") {
  const HnnProtocol protocol = small(hnn_pendulum_protocol(), 6);
  const FieldDataset a = make_field_dataset(protocol), b = make_field_dataset(protocol);
  CHECK(identical(a.x_train, b.x_train));
  CHECK(identical(a.x_test, b.x_test));
  CHECK(identical(a.dxdt_train, b.dxdt_train));
  CHECK(identical(a.trajectories, b.trajectories));
  HnnProtocol other = protocol;
  other.seed = 1;
  CHECK_FALSE(identical(a.x_train, make_field_dataset(other).x_train));
  CHECK(identical(sample_initial_states(protocol, 5, 3), sample_initial_states(protocol, 5, 3)));
  CHECK_FALSE(identical(sample_initial_states(protocol, 5, 3), sample_initial_states(protocol, 5, 4)));
}

TEST_CASE("pendulum dataset: radii in [1.3, 2.3], targets (2p, -3 sin q)", "[datasets]") {
  const FieldDataset data = make_field_dataset(small(hnn_pendulum_protocol(), 8));
  CHECK(data.x_train.shape() == Shape{4 * 45, 2});
  CHECK(data.x_test.shape() == Shape{4 * 45, 2});
  const std::vector<double> clean = data.trajectories.to_vector();
  for (std::int64_t j = 0; j < 8; ++j) {
    const double radius = std::hypot(clean[static_cast<std::size_t>(j * 90)], clean[static_cast<std::size_t>(j * 90 + 1)]);
    CHECK(radius >= 1.3);
    CHECK(radius <= 2.3);
  }
  const std::vector<double> target = data.dxdt_test.to_vector();
  for (std::size_t row = 0; row < 4 * 45; ++row) {
    const double q = clean[2 * (row + 4 * 45)], p = clean[2 * (row + 4 * 45) + 1];
    REQUIRE(std::abs(target[2 * row] - (2 * p)) <= 1e-14);
    REQUIRE(std::abs(target[2 * row + 1] - (-3 * std::sin(q))) <= 1e-14);
  }
  // The reference conserves H = 3 (1 - cos q) + p^2 along every trajectory.
  for (std::int64_t j = 0; j < 8; ++j) {
    const double* t = clean.data() + j * 90;
    const double h0 = 3 * (1 - std::cos(t[0])) + t[1] * t[1];
    for (int k = 1; k < 45; ++k) REQUIRE(std::abs(3 * (1 - std::cos(t[2 * k])) + t[2 * k + 1] * t[2 * k + 1] - h0) < 1e-11);
  }
}

TEST_CASE("two-body orbits: near-circular, center of mass at rest, no input noise", "[datasets]") {
  const HnnProtocol protocol = small(hnn_two_body_protocol(), 10);
  const std::vector<double> s = sample_initial_states(protocol, 200, 11).to_vector();
  for (std::size_t i = 0; i < 200; ++i) {
    const double* x = s.data() + 8 * i;
    REQUIRE(x[2] == -x[0]);  // body 2 opposite body 1, momenta opposite: center of mass at rest
    REQUIRE(x[3] == -x[1]);
    REQUIRE(x[4] == -x[6]);
    REQUIRE(x[5] == -x[7]);
    REQUIRE(x[0] >= 0.5);
    REQUIRE(x[0] <= 1.5);
    REQUIRE(x[1] >= 0.5);
    REQUIRE(x[1] <= 1.5);
    // Velocity perpendicular to the position, speed near the circular 1 / (2 sqrt r).
    const double r = std::hypot(x[0], x[1]), speed = std::hypot(x[4], x[5]);
    REQUIRE(std::abs(x[0] * x[4] + x[1] * x[5]) < 1e-12);
    REQUIRE(std::abs(speed * 2 * std::sqrt(r) - (1.0)) <= 0.3);  // 0.05 N(0, 1), 6 sigma
  }
  const FieldDataset data = make_field_dataset(protocol);
  CHECK(data.x_train.shape() == Shape{8 * 50, 8});
  CHECK(data.x_test.shape() == Shape{2 * 50, 8});
  testing::require_allclose(data.x_train, reshape(narrow(data.trajectories, 0, 0, 8), {-1, 8}), 0, 0);
  // Newton: dp1/dt = (q2 - q1) / |q2 - q1|^3, computed here by hand.
  const std::vector<double> x = data.x_test.to_vector(), target = data.dxdt_test.to_vector();
  for (std::size_t row = 0; row < 100; ++row) {
    const double* xr = x.data() + 8 * row;
    const double* tr = target.data() + 8 * row;
    const double dx = xr[2] - xr[0], dy = xr[3] - xr[1], r3 = std::pow(dx * dx + dy * dy, 1.5);
    for (int c = 0; c < 4; ++c) REQUIRE(std::abs(tr[c] - (xr[4 + c])) <= 1e-14);
    REQUIRE(std::abs(tr[4] - (dx / r3)) <= 1e-13);
    REQUIRE(std::abs(tr[5] - (dy / r3)) <= 1e-13);
    REQUIRE(std::abs(tr[6] - (-dx / r3)) <= 1e-13);
    REQUIRE(std::abs(tr[7] - (-dy / r3)) <= 1e-13);
  }
}

TEST_CASE("to_dtype converts the training tensors and keeps the clean trajectories", "[datasets]") {
  const FieldDataset data = make_field_dataset(small(hnn_spring_protocol(), 4));
  const FieldDataset f32 = data.to_dtype(DType::f32);
  CHECK(f32.x_train.dtype() == DType::f32);
  CHECK(f32.dxdt_test.dtype() == DType::f32);
  CHECK(f32.trajectories.dtype() == DType::f64);
  testing::require_allclose(f32.x_train, data.x_train, 1e-7, 1e-7);
  CHECK(f32.protocol["dtype"] == "float32");
  const MapDataset maps = make_map_dataset(sympnet_pendulum_protocol()).to_dtype(DType::f32);
  CHECK(maps.y_test.dtype() == DType::f32);
  CHECK(maps.h == 0.1);
}

TEST_CASE("SympNets pendulum: pairs cut from one reference trajectory from (q, p) = (1, 0)", "[datasets]") {
  const SympNetProtocol protocol = sympnet_pendulum_protocol();
  CHECK(protocol.x0 == std::vector<double>{1.0, 0.0});
  CHECK(protocol.h == 0.1);
  const MapDataset data = make_map_dataset(protocol);
  CHECK(data.x_train.shape() == Shape{40, 2});
  CHECK(data.y_train.shape() == Shape{40, 2});
  CHECK(data.x_test.shape() == Shape{100, 2});
  CHECK(data.y_test.shape() == Shape{100, 2});
  const Tensor x0 = tensor({1.0, 0.0}, {1, 2}, DType::f64);
  const Tensor states = reshape(reference_trajectory(pendulum(), x0, 0.1, 140, 10), {141, 2});
  CHECK(identical(data.x_train, narrow(states, 0, 0, 40)));
  CHECK(identical(data.y_train, narrow(states, 0, 1, 40)));
  CHECK(identical(data.x_test, narrow(states, 0, 40, 100)));
  CHECK(identical(data.y_test, narrow(states, 0, 41, 100)));
  // Energy p^2 / 2 - cos q is conserved along the data.
  const std::vector<double> y = data.y_test.to_vector();
  for (std::size_t k = 0; k < 100; ++k) REQUIRE(std::abs(0.5 * y[2 * k + 1] * y[2 * k + 1] - std::cos(y[2 * k]) + std::cos(1.0)) < 1e-12);
}

TEST_CASE("SympNets double pendulum: preset and a short trajectory conserving H", "[datasets]") {
  SympNetProtocol protocol = sympnet_double_pendulum_protocol();
  CHECK(protocol.h == 0.75);
  CHECK(protocol.train_pairs == 200);
  CHECK(protocol.test_pairs == 100);
  CHECK(protocol.x0 == std::vector<double>{3 * std::numbers::pi / 7, 3 * std::numbers::pi / 8, 0.0, 0.0});
  protocol.train_pairs = 6;
  protocol.test_pairs = 3;
  const MapDataset data = make_map_dataset(protocol);
  CHECK(data.x_train.shape() == Shape{6, 4});
  CHECK(data.x_test.shape() == Shape{3, 4});
  CHECK(identical(narrow(data.x_test, 0, 0, 1), narrow(data.y_train, 0, 5, 1)));
  const HamiltonianSystem system = double_pendulum();
  const double h0 = system.hamiltonian(tensor({protocol.x0[0], protocol.x0[1], 0.0, 0.0}, {1, 4}, DType::f64)).item();
  const std::vector<double> energies = system.hamiltonian(data.y_test).to_vector();
  for (double e : energies) CHECK(std::abs(e - h0) < 1e-11);
  CHECK(std::abs(data.y_test.to_vector()[0] - protocol.x0[0]) > 1e-3);  // it moved
}

TEST_CASE("dataset functions reject bad arguments", "[datasets]") {
  CHECK_THROWS_AS(system_by_name("spring"), std::invalid_argument);
  CHECK(system_by_name("double_pendulum").dof == 2);
  HnnProtocol bad = hnn_spring_protocol();
  bad.system = "pendulum";
  CHECK_THROWS_AS(make_field_dataset(bad), std::invalid_argument);
  bad = hnn_spring_protocol();
  bad.test_fraction = 1.0;
  CHECK_THROWS_AS(make_field_dataset(bad), std::invalid_argument);
  bad = hnn_spring_protocol();
  bad.radius_min = 2.0;
  CHECK_THROWS_AS(make_field_dataset(bad), std::invalid_argument);
  bad = hnn_spring_protocol();
  bad.points = 1;
  CHECK_THROWS_AS(make_field_dataset(bad), std::invalid_argument);
  CHECK_THROWS_AS(sample_initial_states(hnn_spring_protocol(), 0, 0), std::invalid_argument);
  SympNetProtocol map = sympnet_pendulum_protocol();
  map.x0 = {1.0, 0.0, 0.0};
  CHECK_THROWS_AS(make_map_dataset(map), std::invalid_argument);
  map = sympnet_pendulum_protocol();
  map.test_pairs = 0;
  CHECK_THROWS_AS(make_map_dataset(map), std::invalid_argument);
}
