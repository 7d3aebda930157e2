#pragma once
// Compares autograd's derivatives with central finite differences, in float64.
#include <functional>
#include <string>

#include "engine/autograd.hpp"

namespace symgrad {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  std::string name = "function";  // reported in the failure message
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // on failure: op, input, element index, analytic vs numeric
  explicit operator bool() const { return ok; }
};

using MultiFn = std::function<Tensor(const TensorList&)>;

// Checks d f / d inputs (every input that requires grad) against central differences
// of f, for every output element and every input element. Inputs must be float64.
GradcheckResult gradcheck(const MultiFn& f, const TensorList& inputs, const GradcheckOptions& opts = {});
// Checks the gradient of the backward itself: treats (inputs, grad_output) ->
// grad(f(inputs), inputs, grad_output, create_graph) as a function and gradchecks it.
GradcheckResult gradgradcheck(const MultiFn& f, const TensorList& inputs, const GradcheckOptions& opts = {});

}  // namespace symgrad
