#pragma once
// Elementwise activation layers: no parameters, any input shape, output of the same
// shape. Each is one engine op (or a short composition of them), so it is
// differentiable to any order.
#include "nn/module.hpp"

namespace symgrad::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;  // max(x, 0)
  std::string type_name() const override { return "ReLU"; }
};

// The exact GELU, x Phi(x) (PyTorch's approximate="none").
class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GELU"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Tanh"; }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;  // 1 / (1 + e^-x)
  std::string type_name() const override { return "Sigmoid"; }
};

// log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (as PyTorch: there
// the two agree to within e^-threshold, and x keeps the gradient exactly 1).
class Softplus : public Module {
 public:
  explicit Softplus(double beta = 1.0, double threshold = 20.0);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Softplus"; }
  std::string extra_repr() const override;  // "beta 1, threshold 20"
  double beta() const { return beta_; }
  double threshold() const { return threshold_; }

 private:
  double beta_, threshold_;
};

// x sigmoid(x), also called swish.
class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "SiLU"; }
};

}  // namespace symgrad::nn
