#pragma once
// SympNets (Jin, Zhang, Zhu, Tang, Karniadakis 2020, "SympNets: intrinsic structure-preserving
// symplectic networks for identifying Hamiltonian systems"; background.md §2): networks that
// are symplectic maps by construction, learned from pairs (x_k, x_{k+1}) of a flow map.
//
// States follow systems.hpp: x [batch, 2n], q first then p (the paper writes (p, q)). Every
// module is a *shear*: it adds to one half of the state a function of the other half,
//   up:  p <- p + grad V(q)      low:  q <- q + grad V(p),
// whose Jacobian is [[I, 0], [Hess V, I]] (or its transpose). A Hessian is symmetric, so
// J^T Omega J = Omega holds exactly, and so it does for any composition of shears and
// translations: the network is symplectic whatever its parameters are.
//
//   LinearSympModule      `sublayers` shears alternating up/low, sublayer k with
//                         V(q) = q^T S_k q: p <- p + (S_k + S_k^T) q, S_k a free n x n
//                         matrix; then a translation by b [2n]
//   ActivationSympModule  V(q) = sum_i a_i Sigma(q_i):  p <- p + a * sigma(q)
//   GradientSympModule    V(q) = sum_j a_j Sigma(K q + b)_j:  p <- p + K^T (a * sigma(K q + b))
//   LASympNet             linear, activation (up), linear, activation (low), ..., linear
//   GSympNet              gradient modules alternating up, low, up, ...
//
// Step size as an input (as in the authors' code, where every module takes h): every shear
// increment and the translation are multiplied by h, so the map is the identity at h = 0 and, for each fixed
// h, still a composition of shears. A net built with takes_step_size accepts forward(x, h);
// its forward(x) uses the default_step_size it was built with.
//
// Initialisation as the authors' code (jpzxshi/sympnets, learner/nn/sympnet.py): S, the
// activation scales a, K and the gradient scales a normal with std 0.01; biases 0. The net
// then starts close to the identity map.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace symgrad::pde::hamiltonian {

// Which half of the state a shear moves.
enum class Shear {
  up,   // p <- p + f(q): the momenta (the upper block in the paper's (p, q) order)
  low,  // q <- q + f(p): the positions
};
Shear other_side(Shear side);
const char* shear_name(Shear side);  // "up", "low"

// The std of the normal initialisation of S, a and K (the authors' code).
inline constexpr double kSympNetInitStd = 0.01;

enum class SympNetActivation { sigmoid, tanh };
const char* sympnet_activation_name(SympNetActivation activation);        // "sigmoid", "tanh"
SympNetActivation sympnet_activation_from_name(const std::string& name);  // throws listing the names

// The base of the modules: a symplectic map of states [batch, 2n] with n = dof().
class SymplecticModule : public nn::Module {
 public:
  // `who` names the module type in the error thrown unless dof >= 1.
  SymplecticModule(const char* who, std::int64_t dof);

  // x [batch, 2n] -> [batch, 2n] with the increments unscaled (h = 1).
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }
  // step_size: undefined (unscaled), a scalar ([] or [1]) or [batch, 1], in x's dtype.
  // Checks the shapes and dtypes, then runs update() on the two halves of x.
  Tensor forward(const Tensor& x, const Tensor& step_size);

  // The map itself, on the halves q and p [batch, n] of checked states, replaced by their
  // images. A SympNet splits its input once and passes the halves through all its modules.
  virtual void update(Tensor& q, Tensor& p, const Tensor& step_size) const = 0;

  std::int64_t dof() const { return dof_; }

 private:
  std::int64_t dof_;
};

// `sublayers` linear shears, the first on side `first`, then alternating; then x <- x + b.
// Parameters: "S" [sublayers, n, n] (sublayer k uses S[k] + S[k]^T), "b" [2n].
class LinearSympModule : public SymplecticModule {
 public:
  LinearSympModule(std::int64_t dof, std::int64_t sublayers, Shear first = Shear::up, DType dtype = DType::f32,
                   double init_std = kSympNetInitStd);
  void update(Tensor& q, Tensor& p, const Tensor& step_size) const override;
  std::string type_name() const override { return "LinearSympModule"; }
  std::string extra_repr() const override;  // "n 1, 2 sublayers from up"

  std::int64_t sublayers() const { return sublayers_; }
  Shear first() const { return first_; }
  Tensor S, b;

 private:
  std::int64_t sublayers_;
  Shear first_;
};

// up: p <- p + a * sigma(q); low: q <- q + a * sigma(p). Parameter "a" [n].
class ActivationSympModule : public SymplecticModule {
 public:
  ActivationSympModule(std::int64_t dof, Shear side, SympNetActivation activation = SympNetActivation::sigmoid,
                       DType dtype = DType::f32, double init_std = kSympNetInitStd);
  void update(Tensor& q, Tensor& p, const Tensor& step_size) const override;
  std::string type_name() const override { return "ActivationSympModule"; }
  std::string extra_repr() const override;  // "n 1, up, sigmoid"

  Shear side() const { return side_; }
  SympNetActivation activation() const { return activation_; }
  Tensor a;

 private:
  Shear side_;
  SympNetActivation activation_;
};

// up: p <- p + K^T (a * sigma(K q + b)); low: the same with q and p swapped.
// Parameters: "K" [width, n], "a" [width], "b" [width].
class GradientSympModule : public SymplecticModule {
 public:
  GradientSympModule(std::int64_t dof, std::int64_t width, Shear side,
                     SympNetActivation activation = SympNetActivation::sigmoid, DType dtype = DType::f32,
                     double init_std = kSympNetInitStd);
  void update(Tensor& q, Tensor& p, const Tensor& step_size) const override;
  std::string type_name() const override { return "GradientSympModule"; }
  std::string extra_repr() const override;  // "n 1, width 30, up, sigmoid"

  std::int64_t width() const { return width_; }
  Shear side() const { return side_; }
  SympNetActivation activation() const { return activation_; }
  Tensor K, a, b;

 private:
  std::int64_t width_;
  Shear side_;
  SympNetActivation activation_;
};

// A composition of symplectic modules, held in a child Sequential named "modules" (so the
// parameters read "modules.0.S", "modules.1.a", ...).
class SympNet : public nn::Module {
 public:
  // x [batch, 2n] -> x' [batch, 2n]; with takes_step_size, at the default step size.
  Tensor forward(const Tensor& x) override;
  // Only for nets built with takes_step_size: h a scalar ([] or [1]) or [batch, 1].
  Tensor forward(const Tensor& x, const Tensor& step_size);
  Tensor forward(const Tensor& x, double step_size);

  std::int64_t dof() const { return dof_; }
  bool takes_step_size() const { return takes_step_size_; }
  double default_step_size() const { return default_step_size_; }
  const std::vector<std::shared_ptr<SymplecticModule>>& modules() const { return modules_; }

 protected:
  SympNet(std::int64_t dof, bool takes_step_size, double default_step_size);
  void append(std::shared_ptr<SymplecticModule> module);

 private:
  Tensor run(const Tensor& x, const Tensor& step_size);
  std::int64_t dof_;
  bool takes_step_size_;
  double default_step_size_;
  std::shared_ptr<nn::Sequential> sequence_;
  std::vector<std::shared_ptr<SymplecticModule>> modules_;
};

struct LASympNetConfig {
  std::int64_t dof = 1;        // n: states have 2n columns
  std::int64_t layers = 3;     // the paper's count: layers - 1 (linear, activation) pairs, then a linear module
  std::int64_t sublayers = 2;  // shears per linear module
  SympNetActivation activation = SympNetActivation::sigmoid;
  bool takes_step_size = false;
  double default_step_size = 1.0;     // h used by forward(x) when takes_step_size
  double init_std = kSympNetInitStd;  // of S and a
  DType dtype = DType::f32;
};

// Linear, activation (up), linear, activation (low), ..., linear: 2 layers - 1 modules.
// Parameters are drawn from nn::default_generator() in module order.
class LASympNet : public SympNet {
 public:
  explicit LASympNet(const LASympNetConfig& config);
  std::string type_name() const override { return "LASympNet"; }
  std::string extra_repr() const override;  // "n 1, 3 layers, 2 sublayers, sigmoid"
  const LASympNetConfig& config() const { return config_; }

 private:
  LASympNetConfig config_;
};

struct GSympNetConfig {
  std::int64_t dof = 1;
  std::int64_t layers = 5;  // gradient modules, alternating up, low, up, ...
  std::int64_t width = 30;
  SympNetActivation activation = SympNetActivation::sigmoid;
  bool takes_step_size = false;
  double default_step_size = 1.0;
  double init_std = kSympNetInitStd;  // of K and a; b starts at 0
  DType dtype = DType::f32;
};

class GSympNet : public SympNet {
 public:
  explicit GSympNet(const GSympNetConfig& config);
  std::string type_name() const override { return "GSympNet"; }
  std::string extra_repr() const override;  // "n 1, 5 layers, width 30, sigmoid"
  const GSympNetConfig& config() const { return config_; }

 private:
  GSympNetConfig config_;
};

}  // namespace symgrad::pde::hamiltonian
