#include "pde/hamiltonian/lnn.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/linear.hpp"

namespace symgrad::pde::hamiltonian {
namespace {

void check_dof(std::int64_t dof, const char* model) {
  if (dof < 1) throw std::invalid_argument(std::string(model) + ": dof " + std::to_string(dof) + " must be >= 1");
}

void check_options(const LnnOptions& options, const char* model) {
  if (options.hidden.empty())
    throw std::invalid_argument(std::string(model) + ": the MLP needs at least one hidden layer (hidden is empty)");
  for (std::int64_t width : options.hidden)
    if (width < 1)
      throw std::invalid_argument(std::string(model) + ": hidden width " + std::to_string(width) + " must be >= 1");
  if (!(options.velocity_scale > 0) || !std::isfinite(options.velocity_scale))
    throw std::invalid_argument(std::string(model) + ": velocity_scale " + std::to_string(options.velocity_scale) +
                                " must be finite and > 0");
  if (options.angle_differences && !options.periodic_positions)
    throw std::invalid_argument(std::string(model) + ": angle_differences needs periodic_positions");
  if (!(options.softplus_beta > 0) || !std::isfinite(options.softplus_beta))
    throw std::invalid_argument(std::string(model) + ": softplus_beta " + std::to_string(options.softplus_beta) +
                                " must be finite and > 0");
}

std::int64_t feature_count(std::int64_t dof, const LnnOptions& options) {
  const std::int64_t differences = options.angle_differences ? dof * (dof - 1) : 0;
  return (options.periodic_positions ? 3 : 2) * dof + differences;
}

const char* init_name(LnnInit init) {
  switch (init) {
    case LnnInit::pytorch: return "pytorch";
    case LnnInit::convex: return "convex";
    case LnnInit::paper: return "paper";
  }
  return "unknown";
}

// "dof 2, periodic 6 -> 128 -> 128 -> 1, softplus beta 3, convex init"
std::string layout(std::int64_t dof, std::int64_t out, const LnnOptions& options) {
  std::string text = "dof " + std::to_string(dof) + ", " + (options.angle_differences ? "periodic+differences " : options.periodic_positions ? "periodic " : "") +
                     std::to_string(feature_count(dof, options));
  for (std::int64_t width : options.hidden) text += " -> " + std::to_string(width);
  char beta[32];
  std::snprintf(beta, sizeof beta, "%g", options.softplus_beta);
  return text + " -> " + std::to_string(out) + ", softplus beta " + beta + ", " + init_name(options.init) + " init";
}

// Cranmer et al.'s LNN initialisation (see LnnInit::paper).
void paper_initialisation(const std::vector<nn::Linear*>& layers) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const double n = static_cast<double>(std::max(layers[i]->in_features(), layers[i]->out_features()));
    const bool first = i == 0, last = i + 1 == layers.size();
    const double c = first ? 2.2 : last ? n : 0.58 * static_cast<double>(i);
    nn::normal_(layers[i]->weight, 0.0, c / std::sqrt(n));
    if (layers[i]->bias.defined()) nn::zeros_(layers[i]->bias);
  }
}

// features -> hidden[0] -> ... -> out, softplus after every hidden layer. The output layer
// has no bias: for L it is a constant the dynamics never see. Draws from
// nn::default_generator(): seed with nn::manual_seed for repeatable models.
std::shared_ptr<nn::Sequential> softplus_mlp(std::int64_t in, std::int64_t out, const LnnOptions& options) {
  auto mlp = std::make_shared<nn::Sequential>();
  std::vector<nn::Linear*> layers;
  std::int64_t width_in = in;
  for (std::size_t layer = 0; layer <= options.hidden.size(); ++layer) {
    const bool is_output = layer == options.hidden.size();
    const std::int64_t width_out = is_output ? out : options.hidden[layer];
    auto linear = std::make_shared<nn::Linear>(width_in, width_out, !is_output, options.dtype);
    layers.push_back(linear.get());
    mlp->push_back(linear);
    if (!is_output) mlp->push_back(std::make_shared<nn::Softplus>(options.softplus_beta));
    width_in = width_out;
  }
  if (options.init == LnnInit::paper) paper_initialisation(layers);
  if (options.init == LnnInit::convex) {
    NoGradGuard no_grad;
    for (std::size_t i = 1; i < layers.size(); ++i) copy_(layers[i]->weight, abs(layers[i]->weight));
  }
  return mlp;
}

void check_state_tensor(const Tensor& x, std::int64_t dof, DType dtype, const std::string& where) {
  if (!x.defined()) throw std::invalid_argument(where + ": the state is undefined");
  if (x.dim() != 2 || x.size(1) != 2 * dof)
    throw std::invalid_argument(where + ": state " + shape_str(x.shape()) + " must be [batch, " +
                                std::to_string(2 * dof) + "] (q then qdot for dof " + std::to_string(dof) + ")");
  if (x.dtype() != dtype)
    throw std::invalid_argument(where + ": state " + shape_str(x.shape()) + " is " + dtype_name(x.dtype()) +
                                " but the model is " + dtype_name(dtype) +
                                "; convert one with to_dtype or Module::to");
}

// A leaf to differentiate with respect to: x itself if it already requires grad (a
// rollout being backpropagated), otherwise a detached alias of x's storage.
Tensor differentiable_input(const Tensor& x) {
  if (x.requires_grad()) return x;
  Tensor input = x.detach();
  input.requires_grad_(true);
  return input;
}

}  // namespace

Tensor lagrangian_features(const Tensor& x, std::int64_t dof, const LnnOptions& options) {
  const Tensor q = narrow(x, 1, 0, dof);
  Tensor qdot = narrow(x, 1, dof, dof);
  if (options.velocity_scale != 1.0) qdot = qdot / options.velocity_scale;
  if (!options.periodic_positions) return concat({q, qdot}, 1);
  if (!options.angle_differences || dof < 2) return concat({cos(q), sin(q), qdot}, 1);
  std::vector<Tensor> differences;
  for (std::int64_t i = 0; i < dof; ++i)
    for (std::int64_t j = i + 1; j < dof; ++j) differences.push_back(narrow(q, 1, i, 1) - narrow(q, 1, j, 1));
  const Tensor relative = concat(differences, 1);  // [batch, n (n - 1) / 2]
  return concat({cos(q), sin(q), cos(relative), sin(relative), qdot}, 1);
}

// ---- LagrangianNN -----------------------------------------------------------

LagrangianNN::LagrangianNN(std::int64_t dof, const LnnOptions& options)
    : dof_(dof), options_(options), dtype_(options.dtype) {
  check_dof(dof, "LagrangianNN");
  check_options(options, "LagrangianNN");
  mlp = register_module("mlp", softplus_mlp(feature_count(dof, options), 1, options));
}

LagrangianNN::LagrangianNN(std::int64_t dof, ScalarField lagrangian, DType dtype)
    : dof_(dof), dtype_(dtype), given_lagrangian_(std::move(lagrangian)) {
  check_dof(dof, "LagrangianNN");
  if (!given_lagrangian_) throw std::invalid_argument("LagrangianNN: the given Lagrangian is an empty function");
  options_.hidden.clear();
  options_.dtype = dtype;
}

void LagrangianNN::check_state(const Tensor& x, const char* method) const {
  // A network's precision is its parameters' (Module::to may change it after training).
  check_state_tensor(x, dof_, given_lagrangian_ ? dtype_ : dtype(), std::string("LagrangianNN::") + method);
}

Tensor LagrangianNN::lagrangian(const Tensor& x) {
  check_state(x, "lagrangian");
  if (given_lagrangian_) {
    Tensor value = given_lagrangian_(x);
    if (value.shape() != Shape{x.size(0)})
      throw std::invalid_argument("LagrangianNN::lagrangian: the given Lagrangian returned " +
                                  shape_str(value.shape()) + " for state " + shape_str(x.shape()) + "; expected [" +
                                  std::to_string(x.size(0)) + "]");
    return value;
  }
  return reshape(mlp->forward(lagrangian_features(x, dof_, options_)), {x.size(0)});
}

Tensor LagrangianNN::acceleration(const Tensor& x) {
  check_state(x, "acceleration");
  // As in HamiltonianNN::forward: the caller's grad mode says whether the result must be
  // differentiable; the Hessian needs a recorded graph of L either way.
  const bool differentiable = grad_enabled();
  GradModeGuard record_l(true);
  const Tensor input = differentiable_input(x);
  const Tensor l = lagrangian(input);

  // The rows of L are independent samples, so a backward pass seeded with ones gives every
  // sample's gradient at once, and the same holds for each column of that gradient.
  GradOptions first;
  first.create_graph = true;  // the Hessian differentiates this gradient again
  const Tensor dl_dx = grad({l}, {input}, {ones_like(l)}, first)[0];  // [batch, 2n]
  const Tensor dl_dq = narrow(dl_dx, 1, 0, dof_);
  const Tensor dl_dqdot = narrow(dl_dx, 1, dof_, dof_);

  // Row j of the Hessian block [d2L/dqdot_j dq, d2L/dqdot_j dqdot], one backward per j.
  // A column that does not depend on the state (L linear in qdot_j) has a zero row.
  GradOptions second;
  second.create_graph = differentiable;
  second.retain_graph = true;
  second.allow_unused = true;
  std::vector<Tensor> rows;
  rows.reserve(static_cast<std::size_t>(dof_));
  for (std::int64_t j = 0; j < dof_; ++j) {
    const Tensor column = narrow(dl_dqdot, 1, j, 1);
    Tensor row = column.requires_grad() ? grad({column}, {input}, {ones_like(column)}, second)[0] : Tensor();
    rows.push_back(row.defined() ? row : zeros_like(input));
  }

  GradModeGuard algebra(differentiable);
  const Tensor hessian_rows = stack(rows, 1);                            // [batch, n, 2n]
  const Tensor mixed = narrow(hessian_rows, 2, 0, dof_);                 // d2L / dqdot_j dq_i
  const Tensor mass = narrow(hessian_rows, 2, dof_, dof_);               // d2L / dqdot_j dqdot_i
  const Tensor qdot = narrow(input, 1, dof_, dof_);
  const Tensor mixed_times_qdot = reshape(matmul(mixed, unsqueeze(qdot, 2)), {x.size(0), dof_});
  Tensor qddot = solve(mass, dl_dq - mixed_times_qdot);  // Cranmer et al. eq. 6
  return differentiable ? qddot : qddot.detach();
}

Tensor LagrangianNN::forward(const Tensor& x) {
  check_state(x, "forward");
  const Tensor qddot = acceleration(x);
  return concat({narrow(x, 1, dof_, dof_), qddot}, 1);
}

Tensor LagrangianNN::energy(const Tensor& x) {
  check_state(x, "energy");
  const bool differentiable = grad_enabled();
  GradModeGuard record_l(true);
  const Tensor input = differentiable_input(x);
  const Tensor l = lagrangian(input);
  GradOptions options;
  options.create_graph = differentiable;
  const Tensor dl_dqdot = narrow(grad({l}, {input}, {ones_like(l)}, options)[0], 1, dof_, dof_);
  GradModeGuard algebra(differentiable);
  const Tensor qdot = narrow(input, 1, dof_, dof_);
  Tensor e = sum(qdot * dl_dqdot, {1}) - l;  // the energy function of a Lagrangian
  return differentiable ? e : e.detach();
}

VectorField LagrangianNN::field() {
  return [this](const Tensor& x) { return forward(x); };
}

ScalarField LagrangianNN::lagrangian_field() {
  return [this](const Tensor& x) { return lagrangian(x); };
}

std::string LagrangianNN::extra_repr() const {
  if (given_lagrangian_) return "dof " + std::to_string(dof_) + ", given Lagrangian";
  return layout(dof_, 1, options_);
}

// ---- AccelerationMLP --------------------------------------------------------

AccelerationMLP::AccelerationMLP(std::int64_t dof, const LnnOptions& options, double acceleration_scale)
    : dof_(dof), options_(options), acceleration_scale_(acceleration_scale) {
  check_dof(dof, "AccelerationMLP");
  check_options(options, "AccelerationMLP");
  if (!(acceleration_scale > 0) || !std::isfinite(acceleration_scale))
    throw std::invalid_argument("AccelerationMLP: acceleration_scale " + std::to_string(acceleration_scale) +
                                " must be finite and > 0");
  mlp = register_module("mlp", softplus_mlp(feature_count(dof, options), dof, options));
}

Tensor AccelerationMLP::acceleration(const Tensor& x) {
  check_state_tensor(x, dof_, dtype(), "AccelerationMLP::acceleration");
  const Tensor raw = mlp->forward(lagrangian_features(x, dof_, options_));
  return acceleration_scale_ == 1.0 ? raw : raw * acceleration_scale_;
}

Tensor AccelerationMLP::forward(const Tensor& x) {
  const Tensor qddot = acceleration(x);
  return concat({narrow(x, 1, dof_, dof_), qddot}, 1);
}

VectorField AccelerationMLP::field() {
  return [this](const Tensor& x) { return forward(x); };
}

std::string AccelerationMLP::extra_repr() const { return layout(dof_, dof_, options_); }

}  // namespace symgrad::pde::hamiltonian
