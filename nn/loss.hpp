#pragma once
// Loss functions: a prediction and a target in, one number (or one per element) out.
// Each is a composite of engine ops, so gradients of any order come from the ops'
// own backward rules, for the prediction and for a target that requires grad alike.
#include <cstdint>
#include <vector>

#include "engine/engine.hpp"

namespace symgrad::nn {

// How per-element (or per-example) losses are combined: their mean, their sum, or not
// at all (the unreduced tensor is returned).
enum class Reduction { mean, sum, none };
const char* reduction_name(Reduction r);

// Regression losses. pred and target have the same shape and dtype (no broadcasting:
// a [N, 1] prediction against an [N] target is almost always a bug, so it throws).
// mean squared error: (pred - target)^2
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction r = Reduction::mean);
// mean absolute error: |pred - target| (its derivative at 0 is taken as 0)
Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction r = Reduction::mean);
// Huber: 0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere, d = pred - target.
// Quadratic near zero (smooth gradient), linear far away (robust to outliers). delta > 0.
Tensor huber_loss(const Tensor& pred, const Tensor& target, double delta = 1.0,
                  Reduction r = Reduction::mean);

// Classification losses over logits or log-probabilities [N, C] and N class labels in [0, C).
struct CrossEntropyOptions {
  // eps in [0, 1]: the target distribution puts 1 - eps on the label and spreads eps
  // evenly over all C classes, so the loss per example is
  //   (1 - eps) * (-log p[label]) + eps * mean_c(-log p[c])   (as PyTorch 1.13).
  double label_smoothing = 0.0;
  Reduction reduction = Reduction::mean;
};
// Softmax cross-entropy from unnormalised logits, via log_softmax (stable for any
// logit magnitude; never exponentiates a large number).
Tensor cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& labels,
                     CrossEntropyOptions opts = {});
// Negative log-likelihood: -log_probs[n, labels[n]] per example.
Tensor nll_loss(const Tensor& log_probs, const std::vector<std::int64_t>& labels,
                Reduction r = Reduction::mean);

}  // namespace symgrad::nn
