// gradcheck compares the Jacobian autograd computes with one measured by central
// differences, element by element; gradgradcheck does the same for the backward pass
// itself, seen as a function of (inputs, grad_output).
#include "engine/gradcheck.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "engine/creation.hpp"
#include "engine/ops/shape_ops.hpp"
#include "engine/random.hpp"

namespace symgrad {
namespace {

using MultiOutputFn = std::function<TensorList(const TensorList&)>;

std::string index_str(const Shape& shape, std::int64_t flat) {
  Shape idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  return shape_str(idx);
}

// Evaluates f and returns every output flattened to doubles. Grad mode stays on:
// for gradgradcheck, f itself runs a backward pass.
std::vector<std::vector<double>> evaluate(const MultiOutputFn& f, const TensorList& inputs) {
  std::vector<std::vector<double>> out;
  for (const Tensor& y : f(inputs)) out.push_back(y.to_vector());
  return out;
}

GradcheckResult check(const MultiOutputFn& f, const TensorList& inputs, const GradcheckOptions& opts,
                      const char* what) {
  TensorList diff;  // the inputs we differentiate with respect to
  std::vector<std::size_t> diff_index;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    if (x.dtype() != DType::f64)
      throw std::invalid_argument(std::string(what) + "(" + opts.name + "): input " + std::to_string(i) +
                                  " is " + dtype_name(x.dtype()) +
                                  "; finite differences need float64 inputs");
    if (!x.is_leaf())
      throw std::invalid_argument(std::string(what) + "(" + opts.name + "): input " + std::to_string(i) +
                                  " must be a leaf (detach it and set requires_grad)");
    diff.push_back(x);
    diff_index.push_back(i);
  }
  if (diff.empty())
    throw std::invalid_argument(std::string(what) + "(" + opts.name + "): no input requires grad");

  // Analytic Jacobian, one reverse pass per output element: rows[o][k][d] is the
  // gradient of output o's element k with respect to diff input d.
  const TensorList outputs = f(inputs);
  std::vector<std::vector<TensorList>> rows(outputs.size());
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    const Tensor& y = outputs[o];
    if (y.dtype() != DType::f64)
      throw std::invalid_argument(std::string(what) + "(" + opts.name + "): output " + std::to_string(o) +
                                  " is " + dtype_name(y.dtype()) + "; it must be float64");
    for (std::int64_t k = 0; k < y.numel(); ++k) {
      TensorList g(diff.size());
      if (y.requires_grad()) {
        Tensor seed = zeros(y.shape(), DType::f64);
        seed.data<double>()[k] = 1.0;
        g = grad({y}, diff, {seed}, {.retain_graph = true, .allow_unused = true});
      }
      rows[o].push_back(std::move(g));
    }
  }

  // Numeric Jacobian by central differences, perturbing one input element at a time.
  for (std::size_t d = 0; d < diff.size(); ++d) {
    double* x = diff[d].data<double>();
    for (std::int64_t j = 0; j < diff[d].numel(); ++j) {
      const double saved = x[j];
      x[j] = saved + opts.eps;
      const auto plus = evaluate(f, inputs);
      x[j] = saved - opts.eps;
      const auto minus = evaluate(f, inputs);
      x[j] = saved;
      for (std::size_t o = 0; o < outputs.size(); ++o)
        for (std::int64_t k = 0; k < outputs[o].numel(); ++k) {
          const double numeric = (plus[o][k] - minus[o][k]) / (2.0 * opts.eps);
          const Tensor& g = rows[o][k][d];
          const double analytic = g.defined() ? g.data<double>()[j] : 0.0;
          if (std::abs(analytic - numeric) <= opts.atol + opts.rtol * std::abs(numeric)) continue;
          std::ostringstream os;
          os.precision(10);
          os << what << "(" << opts.name << ") failed: d output " << o << index_str(outputs[o].shape(), k)
             << " / d input " << diff_index[d] << index_str(diff[d].shape(), j) << ": analytic "
             << analytic << ", numeric " << numeric << " (|diff| " << std::abs(analytic - numeric)
             << " > atol " << opts.atol << " + rtol " << opts.rtol << " * |numeric|)";
          return {false, os.str()};
        }
    }
  }
  return {true, ""};
}

}  // namespace

GradcheckResult gradcheck(const MultiFn& f, const TensorList& inputs, const GradcheckOptions& opts) {
  return check([&](const TensorList& xs) { return TensorList{f(xs)}; }, inputs, opts, "gradcheck");
}

GradcheckResult gradgradcheck(const MultiFn& f, const TensorList& inputs, const GradcheckOptions& opts) {
  // The extra input v plays grad_output; it is random so no structure hides an error.
  Tensor probe = f(inputs);
  Generator gen(0x5eed);
  Tensor v = uniform(probe.shape(), -1.0, 1.0, gen, DType::f64).requires_grad_();
  TensorList extended = inputs;
  extended.push_back(v);
  std::vector<std::size_t> diff_index;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) diff_index.push_back(i);

  auto backward_fn = [&](const TensorList& xs) {
    const TensorList args(xs.begin(), xs.end() - 1);
    Tensor y = f(args);
    TensorList diff;
    for (std::size_t i : diff_index) diff.push_back(args[i]);
    TensorList gs(diff.size());
    if (y.requires_grad())
      gs = grad({y}, diff, {xs.back()}, {.create_graph = true, .allow_unused = true});
    for (std::size_t i = 0; i < gs.size(); ++i)
      if (!gs[i].defined()) gs[i] = zeros_like(diff[i]);  // unused input: zero gradient
    return gs;
  };
  return check(backward_fn, extended, opts, "gradgradcheck");
}

}  // namespace symgrad
