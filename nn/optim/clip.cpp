#include "nn/optim/clip.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/kernels/optim_update.hpp"
#include "nn/optim/optimizer.hpp"

namespace symgrad::nn {

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  if (!(max_norm > 0.0) || !std::isfinite(max_norm))
    throw std::invalid_argument("clip_grad_norm: max_norm must be finite and > 0, got " +
                                optim_detail::number_text(max_norm));
  std::vector<Tensor> grads;
  double sum_of_squares = 0.0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined())
      throw std::invalid_argument("clip_grad_norm: parameter " + std::to_string(i) + " is undefined");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    sum_of_squares += kernels::sum_of_squares(g.dtype(), g.raw_data(), g.numel());
    grads.push_back(g);
  }
  const double norm = std::sqrt(sum_of_squares);
  if (!std::isfinite(norm)) return norm;
  const double factor = max_norm / (norm + 1e-6);
  if (factor >= 1.0) return norm;
  // The scaled gradients are new tensors rather than writes into the old ones: backward
  // may hand one buffer to several leaves (the two inputs of an add) or to a leaf and
  // the caller's grad_output, and none of those should change behind their backs.
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor handle = p;
    handle.set_grad(g * factor);
  }
  return norm;
}

}  // namespace symgrad::nn
