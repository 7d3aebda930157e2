#include "pde/hamiltonian/hnn.hpp"

#include <stdexcept>
#include <string>

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/linear.hpp"

namespace symgrad::pde::hamiltonian {
namespace {

std::shared_ptr<nn::Module> make_activation(HiddenActivation activation) {
  switch (activation) {
    case HiddenActivation::tanh: return std::make_shared<nn::Tanh>();
    case HiddenActivation::softplus: return std::make_shared<nn::Softplus>();
    case HiddenActivation::sigmoid: return std::make_shared<nn::Sigmoid>();
    case HiddenActivation::silu: return std::make_shared<nn::SiLU>();
    case HiddenActivation::gelu: return std::make_shared<nn::GELU>();
  }
  throw std::invalid_argument("make_mlp: unknown HiddenActivation " + std::to_string(static_cast<int>(activation)));
}

// "2 -> 200 -> 200 -> 1, tanh"
std::string layout(std::int64_t in, std::int64_t out, const MlpOptions& options) {
  std::string text = std::to_string(in);
  for (std::int64_t width : options.hidden) text += " -> " + std::to_string(width);
  return text + " -> " + std::to_string(out) + ", " + activation_name(options.activation);
}

void check_dof(std::int64_t dof, const char* model) {
  if (dof < 1) throw std::invalid_argument(std::string(model) + ": dof " + std::to_string(dof) + " must be >= 1");
}

// Shared by both models: x must be a defined [batch, 2 dof] tensor of the model's dtype.
void check_state_tensor(const Tensor& x, std::int64_t dof, DType dtype, const std::string& where) {
  if (!x.defined()) throw std::invalid_argument(where + ": the state is undefined");
  if (x.dim() != 2 || x.size(1) != 2 * dof)
    throw std::invalid_argument(where + ": state " + shape_str(x.shape()) + " must be [batch, " +
                                std::to_string(2 * dof) + "] (q then p for dof " + std::to_string(dof) + ")");
  if (x.dtype() != dtype)
    throw std::invalid_argument(where + ": state " + shape_str(x.shape()) + " is " + dtype_name(x.dtype()) +
                                " but the model is " + dtype_name(dtype) + "; convert one with to_dtype or Module::to");
}

}  // namespace

std::string activation_name(HiddenActivation activation) {
  switch (activation) {
    case HiddenActivation::tanh: return "tanh";
    case HiddenActivation::softplus: return "softplus";
    case HiddenActivation::sigmoid: return "sigmoid";
    case HiddenActivation::silu: return "silu";
    case HiddenActivation::gelu: return "gelu";
  }
  return "unknown";
}

HiddenActivation activation_from_name(const std::string& name) {
  for (HiddenActivation a : {HiddenActivation::tanh, HiddenActivation::softplus, HiddenActivation::sigmoid,
                             HiddenActivation::silu, HiddenActivation::gelu})
    if (activation_name(a) == name) return a;
  throw std::invalid_argument("activation_from_name: unknown activation \"" + name +
                              "\" (tanh, softplus, sigmoid, silu, gelu)");
}

std::shared_ptr<nn::Sequential> make_mlp(std::int64_t in, std::int64_t out, const MlpOptions& options) {
  if (in < 1 || out < 1 || options.hidden.empty())
    throw std::invalid_argument("make_mlp: " + std::to_string(in) + " -> " + std::to_string(out) + " with " +
                                std::to_string(options.hidden.size()) +
                                " hidden layers; the sizes must be positive and there must be a hidden layer");
  for (std::int64_t width : options.hidden)
    if (width < 1) throw std::invalid_argument("make_mlp: hidden width " + std::to_string(width) + " must be >= 1");

  auto mlp = std::make_shared<nn::Sequential>();
  std::int64_t width_in = in;
  for (std::size_t layer = 0; layer <= options.hidden.size(); ++layer) {
    const bool is_output = layer == options.hidden.size();
    const std::int64_t width_out = is_output ? out : options.hidden[layer];
    auto linear = std::make_shared<nn::Linear>(width_in, width_out, !is_output || options.output_bias, options.dtype);
    if (options.orthogonal_init) nn::orthogonal_(linear->weight);
    mlp->push_back(linear);
    if (!is_output) mlp->push_back(make_activation(options.activation));
    width_in = width_out;
  }
  return mlp;
}

// ---- HamiltonianNN ----------------------------------------------------------

HamiltonianNN::HamiltonianNN(std::int64_t dof, const MlpOptions& options) : dof_(dof), options_(options) {
  check_dof(dof, "HamiltonianNN");
  mlp = register_module("mlp", make_mlp(2 * dof, 1, options));
}

void HamiltonianNN::check_state(const Tensor& x, const char* method) const {
  check_state_tensor(x, dof_, dtype(), std::string("HamiltonianNN::") + method);
}

Tensor HamiltonianNN::hamiltonian(const Tensor& x) {
  check_state(x, "hamiltonian");
  return reshape(mlp->forward(x), {x.size(0)});
}

Tensor HamiltonianNN::forward(const Tensor& x) {
  check_state(x, "forward");
  // The caller's grad mode says whether the field must be differentiable (training, a
  // backpropagated rollout) or is only evaluated (metrics under NoGradGuard). Either way
  // grad H needs a recorded graph of H, so recording is switched on here.
  const bool differentiable = grad_enabled();
  GradModeGuard record_h(true);
  Tensor input = x;
  if (!x.requires_grad()) {
    // A fresh leaf to differentiate with respect to; it shares x's storage.
    input = x.detach();
    input.requires_grad_(true);
  }
  const Tensor h = hamiltonian(input);
  // The rows of H are independent, so one backward pass with ones gives every row's grad.
  GradOptions options;
  options.create_graph = differentiable;
  // Without create_graph grad_h carries no history, so neither does the field.
  const Tensor grad_h = grad({h}, {input}, {ones_like(h)}, options)[0];
  return symplectic_gradient(grad_h);
}

VectorField HamiltonianNN::field() {
  return [this](const Tensor& x) { return forward(x); };
}

ScalarField HamiltonianNN::energy() {
  return [this](const Tensor& x) { return hamiltonian(x); };
}

std::string HamiltonianNN::extra_repr() const {
  return "dof " + std::to_string(dof_) + ", " + layout(2 * dof_, 1, options_);
}

// ---- FieldMLP ---------------------------------------------------------------

FieldMLP::FieldMLP(std::int64_t dof, const MlpOptions& options) : dof_(dof), options_(options) {
  check_dof(dof, "FieldMLP");
  mlp = register_module("mlp", make_mlp(2 * dof, 2 * dof, options));
}

Tensor FieldMLP::forward(const Tensor& x) {
  check_state_tensor(x, dof_, dtype(), "FieldMLP::forward");
  return mlp->forward(x);
}

VectorField FieldMLP::field() {
  return [this](const Tensor& x) { return forward(x); };
}

std::string FieldMLP::extra_repr() const {
  return "dof " + std::to_string(dof_) + ", " + layout(2 * dof_, 2 * dof_, options_);
}

}  // namespace symgrad::pde::hamiltonian
