#pragma once
// Softmax family along one axis, numerically stable (the max is subtracted first).
#include "engine/tensor.hpp"

namespace symgrad {

Tensor softmax(const Tensor& x, std::int64_t axis = -1);
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);
Tensor logsumexp(const Tensor& x, std::int64_t axis = -1, bool keepdim = false);

}  // namespace symgrad
