// Reference trajectories and the sampling protocols of the HNN paper (Greydanus, Dzamba &
// Yosinski 2019) and the SympNets paper (Jin, Zhang, Zhu, Tang & Karniadakis 2020).
//
// Where the papers' text is silent the settings follow their published code:
//   HNN   github.com/greydanus/hamiltonian-nn, experiment-{spring,pend}/data.py and
//         experiment-orbits/data.py (the two-body data; train.py there adds no input noise);
//   SympNets  github.com/jpzxshi/sympnets, pendulum.py and double_pendulum.py.
// The SympNets code orders a state as x = (p, q); this library orders it (q, p) (systems.hpp),
// so the papers' x0 = (0, 1) is (q, p) = (1, 0) here.
#include "pde/hamiltonian/datasets.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "pde/hamiltonian/integrators.hpp"

namespace symgrad::pde::hamiltonian {
namespace {

// The reference integrator's fixed-point tolerance (max-norm of the last update).
constexpr double kReferenceTolerance = 1e-14;
// gauss_legendre6's local error is O(h^7); substeps no longer than this keep the reference
// orders of magnitude below every error the examples measure (the spring's error is ~1e-13).
constexpr double kLongestReferenceSubstep = 0.025;
// The HNN two-body code scales the circular-orbit speed by (1 + 0.05 N(0, 1)), which turns
// the circles into slightly elliptical orbits (random_config, orbit_noise = 5e-2).
constexpr double kOrbitSpeedPerturbation = 0.05;
// Separate PCG32 streams for the initial states and the input noise, so that changing the
// noise level does not change the trajectories drawn with the same seed.
constexpr std::uint64_t kInitialStateStream = 0x5eed0001;
constexpr std::uint64_t kNoiseStream = 0x5eed0002;

std::int64_t reference_substeps(double interval) {
  const auto needed = static_cast<std::int64_t>(std::ceil(interval / kLongestReferenceSubstep));
  return std::max<std::int64_t>(10, needed);
}

void check_hnn_protocol(const HnnProtocol& p, const char* function) {
  const std::string f = function;
  if (p.system != "mass_spring" && p.system != "pendulum_hnn" && p.system != "two_body") {
    throw std::invalid_argument(f + ": system \"" + p.system +
                                "\" has no HNN sampling (want mass_spring, pendulum_hnn or two_body)");
  }
  if (p.trajectories < 2) throw std::invalid_argument(f + ": trajectories = " + std::to_string(p.trajectories) + " must be >= 2");
  if (p.points < 2) throw std::invalid_argument(f + ": points = " + std::to_string(p.points) + " must be >= 2");
  if (!(std::isfinite(p.t_end) && p.t_end > 0)) throw std::invalid_argument(f + ": t_end must be finite and > 0");
  if (!(std::isfinite(p.radius_min) && std::isfinite(p.radius_max) && 0 <= p.radius_min && p.radius_min <= p.radius_max)) {
    throw std::invalid_argument(f + ": radii [" + std::to_string(p.radius_min) + ", " + std::to_string(p.radius_max) +
                                "] must satisfy 0 <= radius_min <= radius_max");
  }
  if (p.system == "two_body" && p.radius_min <= 0) {
    throw std::invalid_argument(f + ": two_body needs radius_min > 0 (the bodies would collide)");
  }
  if (!(std::isfinite(p.noise_std) && p.noise_std >= 0)) throw std::invalid_argument(f + ": noise_std must be finite and >= 0");
  if (!(p.test_fraction > 0 && p.test_fraction < 1)) {
    throw std::invalid_argument(f + ": test_fraction = " + std::to_string(p.test_fraction) + " must be in (0, 1)");
  }
}

// A point on the circle of radius r in the (q, p) plane at a uniformly random angle. (The HNN
// code normalises a uniform point of the square [-1, 1]^2, which favours the diagonals a
// little; the radius, and so the spring's energy H = r^2, is drawn the same way.)
void draw_on_circle(Generator& gen, double radius_min, double radius_max, double* state) {
  const double radius = radius_min + (radius_max - radius_min) * gen.uniform();
  const double angle = 2 * std::numbers::pi * gen.uniform();
  state[0] = radius * std::cos(angle);
  state[1] = radius * std::sin(angle);
}

// The HNN paper's near-circular two-body orbit (experiment-orbits/data.py, random_config):
// body 1 at a position whose coordinates are uniform in [radius_min, radius_max], body 2
// opposite it, each moving perpendicular to its radius vector at the circular-orbit speed
// 1 / (2 sqrt r) (unit masses, G = 1, separation 2r), scaled by (1 + 0.05 N(0, 1)). The
// momenta are opposite, so the center of mass is at rest at the origin.
// State layout (systems.hpp two_body): (x1, y1, x2, y2, px1, py1, px2, py2).
void draw_two_body(Generator& gen, double radius_min, double radius_max, double* state) {
  const double x = radius_min + (radius_max - radius_min) * gen.uniform();
  const double y = radius_min + (radius_max - radius_min) * gen.uniform();
  const double r = std::hypot(x, y);
  const double speed_scale = (1 + kOrbitSpeedPerturbation * gen.normal()) / (2 * std::pow(r, 1.5));
  const double vx = -y * speed_scale, vy = x * speed_scale;  // |v| = r speed_scale
  const double values[8] = {x, y, -x, -y, vx, vy, -vx, -vy};
  std::copy(values, values + 8, state);
}

// [points, count, 2n] -> [count, points, 2n].
Tensor trajectory_major(const Tensor& time_major) { return permute(time_major, {1, 0, 2}); }

// Trajectories [first, first + count) of [trajectories, points, 2n] as rows [count * points, 2n].
Tensor trajectory_rows(const Tensor& trajectories, std::int64_t first, std::int64_t count) {
  return reshape(narrow(trajectories, 0, first, count), {-1, trajectories.size(2)});
}

}  // namespace

Tensor reference_trajectory(const HamiltonianSystem& system, const Tensor& x0, double h, std::int64_t steps,
                            std::int64_t substeps) {
  if (!system.field) throw std::invalid_argument("reference_trajectory: system \"" + system.name + "\" has no field");
  if (!x0.defined() || x0.dim() != 2 || x0.size(1) != 2 * system.dof) {
    throw std::invalid_argument("reference_trajectory: x0 " + (x0.defined() ? shape_str(x0.shape()) : "undefined") +
                                " must be [batch, " + std::to_string(2 * system.dof) + "] for " + system.name);
  }
  if (!(std::isfinite(h) && h > 0)) throw std::invalid_argument("reference_trajectory: h must be finite and > 0");
  if (steps < 0) throw std::invalid_argument("reference_trajectory: steps = " + std::to_string(steps) + " must be >= 0");
  if (substeps < 1) throw std::invalid_argument("reference_trajectory: substeps = " + std::to_string(substeps) + " must be >= 1");

  NoGradGuard no_grad;
  StepOptions options;
  options.separable = system.separable;
  options.fixed_point.tolerance = kReferenceTolerance;
  const double substep = h / static_cast<double>(substeps);
  Tensor x = to_dtype(x0.detach(), DType::f64);
  std::vector<Tensor> states{x};
  states.reserve(static_cast<std::size_t>(steps + 1));
  for (std::int64_t k = 0; k < steps; ++k) {
    for (std::int64_t s = 0; s < substeps; ++s) x = gauss_legendre6_step(system.field, x, substep, options);
    states.push_back(x);
  }
  return stack(states, 0);
}

// ---- HNN protocol ------------------------------------------------------------------

nlohmann::json HnnProtocol::to_json() const {
  return {{"system", system},         {"trajectories", trajectories}, {"t_end", t_end},
          {"points", points},         {"radius_min", radius_min},     {"radius_max", radius_max},
          {"noise_std", noise_std},   {"test_fraction", test_fraction}, {"seed", seed}};
}

HnnProtocol hnn_spring_protocol() {
  HnnProtocol p;
  p.system = "mass_spring";
  p.trajectories = 50;
  p.t_end = 3.0;
  p.points = 30;  // linspace(0, 3, 10 * 3) in the HNN code
  p.radius_min = 0.1;
  p.radius_max = 1.0;
  p.noise_std = 0.1;
  p.test_fraction = 0.5;
  return p;
}

HnnProtocol hnn_pendulum_protocol() {
  HnnProtocol p = hnn_spring_protocol();
  p.system = "pendulum_hnn";
  p.points = 45;  // the HNN pendulum code samples 15 points per unit time: linspace(0, 3, 45)
  p.radius_min = 1.3;
  p.radius_max = 2.3;
  return p;
}

HnnProtocol hnn_two_body_protocol() {
  HnnProtocol p;
  p.system = "two_body";
  p.trajectories = 1000;
  p.t_end = 20.0;  // sample_orbits: t_span = [0, 20], 50 points
  p.points = 50;
  p.radius_min = 0.5;  // per coordinate of body 1's position (see draw_two_body)
  p.radius_max = 1.5;
  p.noise_std = 0.0;  // the HNN two-body data and training add no input noise
  p.test_fraction = 0.2;
  return p;
}

HamiltonianSystem system_by_name(const std::string& name) {
  if (name == "mass_spring") return mass_spring();
  if (name == "pendulum_hnn") return pendulum_hnn();
  if (name == "pendulum") return pendulum();
  if (name == "two_body") return two_body();
  if (name == "double_pendulum") return double_pendulum();
  throw std::invalid_argument("system_by_name: unknown system \"" + name +
                              "\" (want mass_spring, pendulum_hnn, pendulum, two_body or double_pendulum)");
}

Tensor sample_initial_states(const HnnProtocol& protocol, std::int64_t count, std::uint64_t seed) {
  check_hnn_protocol(protocol, "sample_initial_states");
  if (count < 1) throw std::invalid_argument("sample_initial_states: count = " + std::to_string(count) + " must be >= 1");
  const std::int64_t width = 2 * system_by_name(protocol.system).dof;
  std::vector<double> values(static_cast<std::size_t>(count * width));
  Generator gen(seed, kInitialStateStream);
  for (std::int64_t i = 0; i < count; ++i) {
    double* state = values.data() + i * width;
    if (protocol.system == "two_body") draw_two_body(gen, protocol.radius_min, protocol.radius_max, state);
    else draw_on_circle(gen, protocol.radius_min, protocol.radius_max, state);
  }
  return from_vector(values, {count, width}, DType::f64);
}

FieldDataset make_field_dataset(const HnnProtocol& protocol) {
  check_hnn_protocol(protocol, "make_field_dataset");
  const HamiltonianSystem system = system_by_name(protocol.system);
  const std::int64_t test_count = std::llround(static_cast<double>(protocol.trajectories) * protocol.test_fraction);
  const std::int64_t train_count = protocol.trajectories - test_count;
  if (test_count < 1 || train_count < 1) {
    throw std::invalid_argument("make_field_dataset: " + std::to_string(protocol.trajectories) +
                                " trajectories with test_fraction " + std::to_string(protocol.test_fraction) +
                                " leave an empty train or test split");
  }
  NoGradGuard no_grad;
  const Tensor starts = sample_initial_states(protocol, protocol.trajectories, protocol.seed);
  const double interval = protocol.t_end / static_cast<double>(protocol.points - 1);
  const std::int64_t substeps = reference_substeps(interval);
  const Tensor clean = trajectory_major(reference_trajectory(system, starts, interval, protocol.points - 1, substeps));

  // Targets are the exact field at the clean states; only the inputs get noise (HNN data.py).
  const Tensor clean_rows = reshape(clean, {-1, clean.size(2)});
  const Tensor dxdt = reshape(system.field(clean_rows), clean.shape());
  Tensor noisy = clean;
  if (protocol.noise_std > 0) {
    Generator noise_gen(protocol.seed, kNoiseStream);
    noisy = clean + normal(clean.shape(), 0.0, protocol.noise_std, noise_gen, DType::f64);
  }

  FieldDataset data;
  data.x_train = trajectory_rows(noisy, 0, train_count);
  data.dxdt_train = trajectory_rows(dxdt, 0, train_count);
  data.x_test = trajectory_rows(noisy, train_count, test_count);
  data.dxdt_test = trajectory_rows(dxdt, train_count, test_count);
  data.trajectories = clean;
  data.protocol = protocol.to_json();
  data.protocol["train_trajectories"] = train_count;
  data.protocol["test_trajectories"] = test_count;
  data.protocol["times"] = {{"start", 0.0}, {"end", protocol.t_end}, {"points", protocol.points}};
  data.protocol["reference"] = {{"integrator", "gauss_legendre6"}, {"substeps", substeps}, {"tolerance", kReferenceTolerance}};
  data.protocol["initial_states"] =
      protocol.system == "two_body"
          ? "HNN random_config: body 1 at (x, y) uniform in [radius_min, radius_max]^2, body 2 at -(x, y), "
            "circular-orbit speed times (1 + 0.05 N(0,1)), opposite momenta"
          : "radius uniform in [radius_min, radius_max], angle uniform in [0, 2 pi)";
  data.protocol["dtype"] = "float64";
  return data;
}

// The member to_dtype hides the engine's, hence the qualified calls.
FieldDataset FieldDataset::to_dtype(DType dtype) const {
  FieldDataset out = *this;  // trajectories stay float64: they are for plots and references
  out.x_train = symgrad::to_dtype(x_train, dtype);
  out.dxdt_train = symgrad::to_dtype(dxdt_train, dtype);
  out.x_test = symgrad::to_dtype(x_test, dtype);
  out.dxdt_test = symgrad::to_dtype(dxdt_test, dtype);
  out.protocol["dtype"] = dtype_name(dtype);
  return out;
}

// ---- SympNets protocol -------------------------------------------------------------

nlohmann::json SympNetProtocol::to_json() const {
  return {{"system", system}, {"x0", x0}, {"h", h}, {"train_pairs", train_pairs}, {"test_pairs", test_pairs}};
}

SympNetProtocol sympnet_pendulum_protocol() {
  SympNetProtocol p;
  p.system = "pendulum";
  p.x0 = {1.0, 0.0};  // the paper's x0 = (p, q) = (0, 1)
  p.h = 0.1;
  p.train_pairs = 40;
  p.test_pairs = 100;
  return p;
}

SympNetProtocol sympnet_double_pendulum_protocol() {
  SympNetProtocol p;
  p.system = "double_pendulum";
  // double_pendulum.py: x0 = (p1, p2, q1, q2) = (0, 0, 3 pi / 7, 3 pi / 8), both arms released
  // at rest; m1 = m2 = l1 = l2 = g = 1, the parameters of systems.hpp's default.
  p.x0 = {3 * std::numbers::pi / 7, 3 * std::numbers::pi / 8, 0.0, 0.0};
  p.h = 0.75;
  p.train_pairs = 200;
  p.test_pairs = 100;
  return p;
}

MapDataset make_map_dataset(const SympNetProtocol& protocol) {
  const HamiltonianSystem system = system_by_name(protocol.system);
  if (static_cast<std::int64_t>(protocol.x0.size()) != 2 * system.dof) {
    throw std::invalid_argument("make_map_dataset: x0 has " + std::to_string(protocol.x0.size()) + " values, " +
                                protocol.system + " needs " + std::to_string(2 * system.dof) + " (q then p)");
  }
  if (!(std::isfinite(protocol.h) && protocol.h > 0)) throw std::invalid_argument("make_map_dataset: h must be finite and > 0");
  if (protocol.train_pairs < 1 || protocol.test_pairs < 1) {
    throw std::invalid_argument("make_map_dataset: train_pairs = " + std::to_string(protocol.train_pairs) +
                                " and test_pairs = " + std::to_string(protocol.test_pairs) + " must both be >= 1");
  }
  NoGradGuard no_grad;
  const std::int64_t width = 2 * system.dof, pairs = protocol.train_pairs + protocol.test_pairs;
  const std::int64_t substeps = reference_substeps(protocol.h);
  const Tensor x0 = from_vector(protocol.x0, {1, width}, DType::f64);
  // One trajectory x_0 .. x_pairs; pair k is (x_k, x_{k+1}), the test pairs continue the
  // training ones (SympNets: the test flow starts at the last training target).
  const Tensor states = reshape(reference_trajectory(system, x0, protocol.h, pairs, substeps), {pairs + 1, width});
  MapDataset data;
  data.h = protocol.h;
  data.x_train = narrow(states, 0, 0, protocol.train_pairs);
  data.y_train = narrow(states, 0, 1, protocol.train_pairs);
  data.x_test = narrow(states, 0, protocol.train_pairs, protocol.test_pairs);
  data.y_test = narrow(states, 0, protocol.train_pairs + 1, protocol.test_pairs);
  data.protocol = protocol.to_json();
  data.protocol["reference"] = {{"integrator", "gauss_legendre6"}, {"substeps", substeps}, {"tolerance", kReferenceTolerance}};
  data.protocol["state_order"] = "q then p";
  data.protocol["dtype"] = "float64";
  return data;
}

MapDataset MapDataset::to_dtype(DType dtype) const {
  MapDataset out = *this;
  out.x_train = symgrad::to_dtype(x_train, dtype);
  out.y_train = symgrad::to_dtype(y_train, dtype);
  out.x_test = symgrad::to_dtype(x_test, dtype);
  out.y_test = symgrad::to_dtype(y_test, dtype);
  out.protocol["dtype"] = dtype_name(dtype);
  return out;
}

}  // namespace symgrad::pde::hamiltonian
