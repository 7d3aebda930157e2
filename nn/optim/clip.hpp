#pragma once
// Gradient-norm clipping (as torch.nn.utils.clip_grad_norm_ with the L2 norm).
#include <vector>

#include "engine/tensor.hpp"

namespace symgrad::nn {

// The L2 norm of all the parameters' gradients together, sqrt(sum of every squared
// element), computed in double; parameters without a gradient are skipped. When
// max_norm / (norm + 1e-6) < 1, every gradient is scaled by that factor in place
// (1e-6 keeps a zero norm from dividing by zero). Gradients that share a buffer are
// scaled once. Returns the norm before clipping; when it is not finite (an overflow
// or a NaN in the gradients) nothing is scaled, so the caller can see it and skip the
// step. Throws std::invalid_argument unless max_norm is finite and > 0.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace symgrad::nn
