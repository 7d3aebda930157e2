#pragma once
// Reductions over any set of axes. An empty axes list means all axes. Negative axes
// count from the end. keepdim keeps reduced axes as size 1.
#include <vector>

#include "engine/tensor.hpp"

namespace symgrad {

using Axes = std::vector<std::int64_t>;

Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdim = false);  // ties share the gradient
Tensor min(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
// Variance with `correction` (0: population, 1: Bessel, PyTorch's default).
Tensor var(const Tensor& x, const Axes& axes = {}, std::int64_t correction = 1, bool keepdim = false);

// Sums a broadcast gradient back to `shape` (the inverse of broadcasting). This is
// the one place autograd reduces broadcast dimensions.
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace symgrad
