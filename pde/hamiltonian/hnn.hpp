#pragma once
// Hamiltonian Neural Networks (Greydanus, Dzamba & Yosinski 2019) and the paper's baseline.
//
// An HNN learns a scalar H_theta(q, p) and predicts the motion as its symplectic gradient
// dx/dt = J grad H_theta = (dH/dp, -dH/dq) (systems.hpp's convention). The gradient is taken
// with autograd *inside* the model, with create_graph, so a loss on the predicted field is
// differentiable in the weights: training differentiates twice (grad of grad). Whatever the
// weights, the learned motion conserves H_theta exactly, which is why its energy does not
// drift where the baseline's does.
//
// The baseline (FieldMLP) is the same MLP with 2n outputs read as the field directly.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"
#include "pde/hamiltonian/systems.hpp"

namespace symgrad::pde::hamiltonian {

// The hidden nonlinearity. The HNN's field is a first derivative of the network and its
// loss needs the second, so only smooth activations are offered (with ReLU the field would
// be piecewise constant and its derivative in the inputs zero).
enum class HiddenActivation { tanh, softplus, sigmoid, silu, gelu };
std::string activation_name(HiddenActivation activation);                 // "tanh", ...
HiddenActivation activation_from_name(const std::string& name);           // throws listing the names

struct MlpOptions {
  std::vector<std::int64_t> hidden = {200, 200};  // widths of the hidden layers (at least one)
  HiddenActivation activation = HiddenActivation::tanh;
  // Hidden and output weights orthogonal (Saxe et al. 2014, gain 1) as in the HNN paper's
  // code; false keeps nn::Linear's default. Biases keep nn::Linear's default either way.
  bool orthogonal_init = true;
  // The paper's output layer has no bias: for H it is an unlearnable constant (the field
  // does not see it), so it is off by default for both models.
  bool output_bias = false;
  DType dtype = DType::f32;
};

// in -> hidden[0] -> ... -> out with the activation after every hidden layer (not after the
// output). Draws from nn::default_generator(): seed with nn::manual_seed for repeatable models.
std::shared_ptr<nn::Sequential> make_mlp(std::int64_t in, std::int64_t out, const MlpOptions& options);

class HamiltonianNN : public nn::Module {
 public:
  // H_theta: R^{2 dof} -> R, an MLP 2 dof -> hidden... -> 1.
  explicit HamiltonianNN(std::int64_t dof, const MlpOptions& options = {});

  // x [batch, 2 dof] -> H_theta(x) [batch].
  Tensor hamiltonian(const Tensor& x);
  // x [batch, 2 dof] -> J grad H_theta(x) [batch, 2 dof].
  // With grad mode on the result is part of the graph (create_graph): a loss on it trains
  // the weights, and if x requires grad (a rollout being backpropagated) it stays
  // differentiable in x too. With grad mode off it is a plain tensor, but the input gradient
  // is still computed (an HNN cannot evaluate its field without autograd).
  Tensor forward(const Tensor& x) override;

  // The model as the integrators' VectorField / ScalarField. They refer to this model,
  // which must outlive them.
  VectorField field();
  ScalarField energy();

  std::int64_t dof() const { return dof_; }
  const MlpOptions& options() const { return options_; }
  std::string type_name() const override { return "HamiltonianNN"; }
  std::string extra_repr() const override;  // "dof 1, 2 -> 200 -> 200 -> 1, tanh"

  std::shared_ptr<nn::Sequential> mlp;

 private:
  void check_state(const Tensor& x, const char* method) const;

  std::int64_t dof_;
  MlpOptions options_;
};

// The baseline: an MLP 2 dof -> hidden... -> 2 dof whose output is the field itself.
class FieldMLP : public nn::Module {
 public:
  explicit FieldMLP(std::int64_t dof, const MlpOptions& options = {});

  Tensor forward(const Tensor& x) override;  // [batch, 2 dof] -> [batch, 2 dof]
  VectorField field();                       // refers to this model, which must outlive it

  std::int64_t dof() const { return dof_; }
  const MlpOptions& options() const { return options_; }
  std::string type_name() const override { return "FieldMLP"; }
  std::string extra_repr() const override;  // "dof 1, 2 -> 200 -> 200 -> 2, tanh"

  std::shared_ptr<nn::Sequential> mlp;

 private:
  std::int64_t dof_;
  MlpOptions options_;
};

}  // namespace symgrad::pde::hamiltonian
