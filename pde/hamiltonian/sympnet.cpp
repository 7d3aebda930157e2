#include "pde/hamiltonian/sympnet.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "nn/init.hpp"

namespace symgrad::pde::hamiltonian {
namespace {

std::string count_text(std::int64_t value) { return std::to_string(value); }

void require_positive(const char* who, const char* what, std::int64_t value) {
  if (value < 1)
    throw std::invalid_argument(std::string(who) + ": " + what + " " + count_text(value) + " must be positive");
}

void require_init_std(const char* who, double init_std) {
  if (!(init_std >= 0) || !std::isfinite(init_std))
    throw std::invalid_argument(std::string(who) + ": init_std " + std::to_string(init_std) +
                                " must be finite and >= 0");
}

// A parameter of `shape` drawn from normal(0, std) (zeros when std is 0).
Tensor normal_parameter(const Shape& shape, double std, DType dtype) {
  Tensor t = zeros(shape, dtype);
  if (std > 0) nn::normal_(t, 0.0, std);
  return t;
}

Tensor activate(SympNetActivation activation, const Tensor& z) {
  return activation == SympNetActivation::sigmoid ? sigmoid(z) : tanh(z);
}

// A shear's increment, times the step size when the net takes one.
Tensor scaled(const Tensor& increment, const Tensor& step_size) {
  return step_size.defined() ? mul(increment, step_size) : increment;
}

// Adds f(fixed half) * h to the moving half of the state (q, p).
template <class Increment>
void shear(Tensor& q, Tensor& p, Shear side, const Tensor& step_size, Increment&& increment) {
  if (side == Shear::up)
    p = add(p, scaled(increment(q), step_size));
  else
    q = add(q, scaled(increment(p), step_size));
}

// Throws std::invalid_argument, naming "<module type>.forward", unless x is [batch, 2n] in
// `dtype` and the step size is undefined or a scalar / [batch, 1] of the same dtype.
void check_inputs(const nn::Module& module, const Tensor& x, const Tensor& step_size, std::int64_t n, DType dtype) {
  // The message is built only on failure: forward runs every training step.
  auto fail = [&](const std::string& problem) {
    throw std::invalid_argument(module.type_name() + ".forward: " + problem);
  };
  if (!x.defined()) fail("the state x is undefined");
  if (x.dim() != 2 || x.size(1) != 2 * n)
    fail("state x " + shape_str(x.shape()) + " must be [batch, " + count_text(2 * n) +
         "] (q then p, n = " + count_text(n) + ")");
  if (x.dtype() != dtype)
    fail("state x " + shape_str(x.shape()) + " is " + dtype_name(x.dtype()) + " but the parameters are " +
         dtype_name(dtype) + "; convert one with to_dtype or Module::to");
  if (!step_size.defined()) return;
  const bool scalar_step = step_size.numel() == 1 && step_size.dim() <= 1;
  const bool step_per_state = step_size.dim() == 2 && step_size.size(0) == x.size(0) && step_size.size(1) == 1;
  if (!scalar_step && !step_per_state)
    fail("step size h " + shape_str(step_size.shape()) + " must be a scalar ([] or [1]) or [" + count_text(x.size(0)) +
         ", 1] for the state x " + shape_str(x.shape()));
  if (step_size.dtype() != dtype)
    fail("step size h " + shape_str(step_size.shape()) + " is " + dtype_name(step_size.dtype()) +
         " but the parameters are " + dtype_name(dtype));
}

}  // namespace

Shear other_side(Shear side) { return side == Shear::up ? Shear::low : Shear::up; }

const char* shear_name(Shear side) { return side == Shear::up ? "up" : "low"; }

const char* sympnet_activation_name(SympNetActivation activation) {
  return activation == SympNetActivation::sigmoid ? "sigmoid" : "tanh";
}

SympNetActivation sympnet_activation_from_name(const std::string& name) {
  if (name == "sigmoid") return SympNetActivation::sigmoid;
  if (name == "tanh") return SympNetActivation::tanh;
  throw std::invalid_argument("sympnet_activation_from_name: unknown activation \"" + name +
                              "\" (known: sigmoid, tanh)");
}

// ---- SymplecticModule ---------------------------------------------------------------

SymplecticModule::SymplecticModule(const char* who, std::int64_t dof) : dof_(dof) { require_positive(who, "dof", dof); }

Tensor SymplecticModule::forward(const Tensor& x, const Tensor& step_size) {
  check_inputs(*this, x, step_size, dof_, dtype());
  Tensor q = narrow(x, 1, 0, dof_);
  Tensor p = narrow(x, 1, dof_, dof_);
  update(q, p, step_size);
  return concat({q, p}, 1);
}

// ---- LinearSympModule ---------------------------------------------------------------

LinearSympModule::LinearSympModule(std::int64_t dof, std::int64_t sublayers, Shear first, DType dtype, double init_std)
    : SymplecticModule("LinearSympModule", dof), sublayers_(sublayers), first_(first) {
  require_positive("LinearSympModule", "sublayers", sublayers);
  require_init_std("LinearSympModule", init_std);
  S = register_parameter("S", normal_parameter({sublayers, dof, dof}, init_std, dtype));
  b = register_parameter("b", zeros({2 * dof}, dtype));
}

void LinearSympModule::update(Tensor& q, Tensor& p, const Tensor& step_size) const {
  const std::int64_t n = dof();
  // p <- p + (A + A^T) q: the Hessian of q^T A q is A + A^T, symmetric for any A.
  const Tensor symmetric = add(S, transpose(S));  // [sublayers, n, n]
  Shear side = first_;
  for (std::int64_t k = 0; k < sublayers_; ++k) {
    const Tensor sublayer = reshape(narrow(symmetric, 0, k, 1), {n, n});
    shear(q, p, side, step_size, [&](const Tensor& fixed) { return matmul(fixed, sublayer); });
    side = other_side(side);
  }
  // The translation is symplectic too (its Jacobian is I); scaled by h with the shears.
  q = add(q, scaled(narrow(b, 0, 0, n), step_size));
  p = add(p, scaled(narrow(b, 0, n, n), step_size));
}

std::string LinearSympModule::extra_repr() const {
  return "n " + count_text(dof()) + ", " + count_text(sublayers_) + " sublayers from " + shear_name(first_);
}

// ---- ActivationSympModule -----------------------------------------------------------

ActivationSympModule::ActivationSympModule(std::int64_t dof, Shear side, SympNetActivation activation, DType dtype,
                                           double init_std)
    : SymplecticModule("ActivationSympModule", dof), side_(side), activation_(activation) {
  require_init_std("ActivationSympModule", init_std);
  a = register_parameter("a", normal_parameter({dof}, init_std, dtype));
}

void ActivationSympModule::update(Tensor& q, Tensor& p, const Tensor& step_size) const {
  // a * sigma(q) is the gradient of sum_i a_i Sigma(q_i) (Sigma' = sigma): a diagonal Hessian.
  shear(q, p, side_, step_size, [&](const Tensor& fixed) { return mul(activate(activation_, fixed), a); });
}

std::string ActivationSympModule::extra_repr() const {
  return "n " + count_text(dof()) + ", " + shear_name(side_) + ", " + sympnet_activation_name(activation_);
}

// ---- GradientSympModule -------------------------------------------------------------

GradientSympModule::GradientSympModule(std::int64_t dof, std::int64_t width, Shear side, SympNetActivation activation,
                                       DType dtype, double init_std)
    : SymplecticModule("GradientSympModule", dof), width_(width), side_(side), activation_(activation) {
  require_positive("GradientSympModule", "width", width);
  require_init_std("GradientSympModule", init_std);
  K = register_parameter("K", normal_parameter({width, dof}, init_std, dtype));
  a = register_parameter("a", normal_parameter({width}, init_std, dtype));
  b = register_parameter("b", zeros({width}, dtype));
}

void GradientSympModule::update(Tensor& q, Tensor& p, const Tensor& step_size) const {
  // K^T (a * sigma(K q + b)) is the gradient of sum_j a_j Sigma(K q + b)_j; its Hessian
  // K^T diag(a * sigma'(K q + b)) K is symmetric (Jin et al. 2020, gradient modules).
  // Rows are states, so K q + b reads q K^T + b and K^T v reads v K.
  shear(q, p, side_, step_size, [&](const Tensor& fixed) {
    const Tensor pre_activation = add(matmul(fixed, K, false, true), b);  // [batch, width]
    return matmul(mul(activate(activation_, pre_activation), a), K);      // [batch, n]
  });
}

std::string GradientSympModule::extra_repr() const {
  return "n " + count_text(dof()) + ", width " + count_text(width_) + ", " + shear_name(side_) + ", " +
         sympnet_activation_name(activation_);
}

// ---- SympNet ------------------------------------------------------------------------

SympNet::SympNet(std::int64_t dof, bool takes_step_size, double default_step_size)
    : dof_(dof), takes_step_size_(takes_step_size), default_step_size_(default_step_size) {
  if (!std::isfinite(default_step_size))
    throw std::invalid_argument("SympNet: default_step_size " + std::to_string(default_step_size) + " must be finite");
  sequence_ = register_module("modules", std::make_shared<nn::Sequential>());
}

void SympNet::append(std::shared_ptr<SymplecticModule> module) {
  sequence_->push_back(module);
  modules_.push_back(std::move(module));
}

Tensor SympNet::run(const Tensor& x, const Tensor& step_size) {
  check_inputs(*this, x, step_size, dof_, dtype());
  // Split once: every module moves the halves, and they are joined at the end.
  Tensor q = narrow(x, 1, 0, dof_);
  Tensor p = narrow(x, 1, dof_, dof_);
  for (const auto& module : modules_) module->update(q, p, step_size);
  return concat({q, p}, 1);
}

Tensor SympNet::forward(const Tensor& x) {
  if (!takes_step_size_) return run(x, Tensor());
  return run(x, scalar(default_step_size_, x.defined() ? x.dtype() : dtype()));
}

Tensor SympNet::forward(const Tensor& x, const Tensor& step_size) {
  if (!takes_step_size_)
    throw std::invalid_argument(type_name() +
                                ".forward(x, h): the net was built without takes_step_size; call forward(x)");
  if (!step_size.defined()) throw std::invalid_argument(type_name() + ".forward(x, h): the step size h is undefined");
  return run(x, step_size);
}

Tensor SympNet::forward(const Tensor& x, double step_size) {
  if (!takes_step_size_)
    throw std::invalid_argument(type_name() +
                                ".forward(x, h): the net was built without takes_step_size; call forward(x)");
  return run(x, scalar(step_size, dtype()));
}

// ---- LASympNet and GSympNet ----------------------------------------------------------

LASympNet::LASympNet(const LASympNetConfig& config)
    : SympNet(config.dof, config.takes_step_size, config.default_step_size), config_(config) {
  require_positive("LASympNet", "dof", config.dof);
  require_positive("LASympNet", "layers", config.layers);
  require_positive("LASympNet", "sublayers", config.sublayers);
  require_init_std("LASympNet", config.init_std);
  // The authors' LA-SympNet: (linear, activation) pairs with the activation side
  // alternating up, low, ..., closed by a linear module; every linear module starts up.
  Shear activation_side = Shear::up;
  for (std::int64_t layer = 0; layer + 1 < config.layers; ++layer) {
    append(std::make_shared<LinearSympModule>(config.dof, config.sublayers, Shear::up, config.dtype, config.init_std));
    append(std::make_shared<ActivationSympModule>(config.dof, activation_side, config.activation, config.dtype,
                                                  config.init_std));
    activation_side = other_side(activation_side);
  }
  append(std::make_shared<LinearSympModule>(config.dof, config.sublayers, Shear::up, config.dtype, config.init_std));
}

std::string LASympNet::extra_repr() const {
  std::string text = "n " + count_text(config_.dof) + ", " + count_text(config_.layers) + " layers, " +
                     count_text(config_.sublayers) + " sublayers, " + sympnet_activation_name(config_.activation);
  if (config_.takes_step_size) {
    std::ostringstream h;
    h << ", step size input (default h " << config_.default_step_size << ")";
    text += h.str();
  }
  return text;
}

GSympNet::GSympNet(const GSympNetConfig& config)
    : SympNet(config.dof, config.takes_step_size, config.default_step_size), config_(config) {
  require_positive("GSympNet", "dof", config.dof);
  require_positive("GSympNet", "layers", config.layers);
  require_positive("GSympNet", "width", config.width);
  require_init_std("GSympNet", config.init_std);
  Shear side = Shear::up;
  for (std::int64_t layer = 0; layer < config.layers; ++layer) {
    append(std::make_shared<GradientSympModule>(config.dof, config.width, side, config.activation, config.dtype,
                                                config.init_std));
    side = other_side(side);
  }
}

std::string GSympNet::extra_repr() const {
  std::string text = "n " + count_text(config_.dof) + ", " + count_text(config_.layers) + " layers, width " +
                     count_text(config_.width) + ", " + sympnet_activation_name(config_.activation);
  if (config_.takes_step_size) {
    std::ostringstream h;
    h << ", step size input (default h " << config_.default_step_size << ")";
    text += h.str();
  }
  return text;
}

}  // namespace symgrad::pde::hamiltonian
