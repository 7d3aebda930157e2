#pragma once
// Reference data for the Hamiltonian examples: a high-accuracy trajectory generator and the
// sampling protocols of the HNN paper (Greydanus et al. 2019) and the SympNets paper
// (Jin et al. 2020) as named presets. Everything is seeded (engine Generator) and
// generated in float64; to_dtype converts a dataset for float32 models.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "pde/hamiltonian/systems.hpp"

namespace symgrad::pde::hamiltonian {

// The reference integrator: gauss_legendre6 with `substeps` steps of h / substeps per
// output interval, float64, fixed-point tolerance 1e-14. x0 [batch, 2n] -> [steps + 1, batch, 2n].
// Against the spring's exact flow its error is <= 1e-10 with the default substeps.
Tensor reference_trajectory(const HamiltonianSystem& system, const Tensor& x0, double h, std::int64_t steps,
                            std::int64_t substeps = 10);

// Pairs (x, dx/dt) for training a vector field (HNN protocol).
struct FieldDataset {
  Tensor x_train, dxdt_train;  // [m, 2n]: noisy states, exact derivatives at the clean states
  Tensor x_test, dxdt_test;
  Tensor trajectories;         // clean trajectories [count, points, 2n] (float64), for plots
  nlohmann::json protocol;     // the settings it was drawn with
  FieldDataset to_dtype(DType dtype) const;
};

struct HnnProtocol {
  std::string system;          // "mass_spring", "pendulum_hnn", "two_body"
  std::int64_t trajectories = 50;
  double t_end = 3.0;          // each trajectory sampled on [0, t_end]
  std::int64_t points = 30;    // samples per trajectory
  double radius_min = 0.1, radius_max = 1.0;  // initial energy radius (spring, pendulum)
  double noise_std = 0.1;      // Gaussian noise on the inputs x (not on dx/dt)
  double test_fraction = 0.5;  // split by trajectory
  std::uint64_t seed = 0;
  nlohmann::json to_json() const;
};
HnnProtocol hnn_spring_protocol();
HnnProtocol hnn_pendulum_protocol();
HnnProtocol hnn_two_body_protocol();  // 1000 orbits x 50 points, 80/20
HamiltonianSystem system_by_name(const std::string& name);  // the systems.hpp constructors by name
FieldDataset make_field_dataset(const HnnProtocol& protocol);
// `count` clean initial states drawn like the protocol's trajectories (float64 [count, 2n]),
// e.g. the 15 starts of the energy protocol (metrics.hpp, hnn_energy_mse).
Tensor sample_initial_states(const HnnProtocol& protocol, std::int64_t count, std::uint64_t seed);

// Pairs (x_k, x_{k+1}) of the flow map with step h (SympNets protocol): one trajectory
// from x0; the first train_pairs pairs train, the next test_pairs test.
struct MapDataset {
  Tensor x_train, y_train;  // [train_pairs, 2n]
  Tensor x_test, y_test;    // [test_pairs, 2n]
  double h = 0.1;
  nlohmann::json protocol;
  MapDataset to_dtype(DType dtype) const;
};
struct SympNetProtocol {
  std::string system;   // "pendulum", "double_pendulum"
  std::vector<double> x0;  // (q, p)
  double h = 0.1;
  std::int64_t train_pairs = 40, test_pairs = 100;
  nlohmann::json to_json() const;
};
SympNetProtocol sympnet_pendulum_protocol();         // x0 = (0, 1), h = 0.1, 40 / 100
SympNetProtocol sympnet_double_pendulum_protocol();  // h = 0.75, 200 / 100
MapDataset make_map_dataset(const SympNetProtocol& protocol);

}  // namespace symgrad::pde::hamiltonian
