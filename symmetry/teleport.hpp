#pragma once
// Symmetry teleportation (Zhao, Dehmamy, Walters & Yu, "Symmetry Teleportation for
// Accelerated Optimization", NeurIPS 2022): move the weights along an orbit of a weight
// symmetry, theta -> g . theta with g = exp(xi), to a point where the loss is the same
// but the gradient is steeper, so that the descent steps that follow make more progress.
//
// xi is chosen by gradient ascent on the teleport objective
//   J(xi) = || grad_theta L(exp(xi) . theta) ||^2      (over every model parameter)
// on one batch. dJ/dxi is a second derivative: the inner gradient is taken with
// create_graph inside an nn::ParameterSubstitution that puts act(exp(xi), theta) into
// the model, and J is then differentiated back through that gradient, act and expm.
//
//   auto relu = symmetries_of(model);                   // keep the ReLU rescalings
//   auto loss = [&](const Tensor& out) { return nn::cross_entropy(out, labels); };
//   TeleportReport r = teleport(model, relu, images, loss, {.steps = 10});
//   // r.loss_relative_change ~ rounding; r.grad_norm_after > r.grad_norm_before
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"
#include "nn/module.hpp"
#include "symmetry/weight_symmetry.hpp"

namespace symgrad::symmetry {


struct TeleportOptions {
  std::int64_t steps = 10;  // gradient-ascent iterations on xi (0: teleport is the identity)
  // xi += step_size * (dJ/dxi) / J: ascent on log J, J's own direction with a length that
  // does not depend on the loss's scale (J shrinks by orders of magnitude in training).
  double step_size = 0.1;
  // If > 0: the Euclidean norm of one step in algebra coordinates (all symmetries
  // together) is at most this. J can be steep in xi; this keeps one step from jumping far.
  double max_step_norm = 0.0;
  // A step is accepted only if J increases (and stays finite); otherwise its length is
  // multiplied by backtrack_factor, at most max_backtracks times, and teleportation stops
  // when none is accepted. After an accepted step the next one may grow back by
  // 1 / backtrack_factor, up to step_size.
  std::int64_t max_backtracks = 10;
  double backtrack_factor = 0.5;
  // Candidates with cond_2(exp(xi_k)) above this, for any symmetry k, are refused like a
  // decrease of J: an ill-conditioned g loses digits of theta (and the loss is preserved
  // only to about u * cond(g)).
  double max_condition_number = 100.0;
  // After apply(), the loss on the batch is measured again; if it moved by more than this
  // (relative), the parameters are put back and the report says why (not applied).
  double max_relative_loss_change = 1e-6;
};

struct TeleportReport {
  bool applied = false;      // the model's parameters were moved
  std::string note;          // why it stopped, or why it was not applied
  std::int64_t steps_taken = 0;       // accepted ascent steps
  std::int64_t steps_rejected = 0;    // backtracked candidates (J did not grow, or cond too large)
  double loss_before = 0.0, loss_after = 0.0;
  double loss_relative_change = 0.0;  // |loss_after - loss_before| / |loss_before| as measured
  double grad_norm_before = 0.0, grad_norm_after = 0.0;  // sqrt(J), every parameter
  std::vector<double> objective;            // J at the start and after each accepted step
  std::vector<double> condition_numbers;    // cond_2(exp(xi_k)) of the final element, per symmetry
  std::vector<Tensor> coordinates;          // the final xi_k in each algebra's basis, [dim_k]

  nlohmann::json to_json() const;  // everything but the coordinates' values
};

// Teleports `model` in place with the group element exp(xi_K) ... exp(xi_1) of the given
// symmetries (composed in list order; the built-ins commute), found by the ascent above
// on the batch (x, loss). Uses the model's current train/eval mode; a symmetry whose
// ModeRequirement the mode does not meet is refused. The model's .grad are untouched and
// stale afterwards (as after any change of parameters). Throws std::invalid_argument for
// an empty symmetry list, invalid options, an undefined x, a loss that is not a finite
// scalar, or a symmetry that does not fit the model (act's message).
TeleportReport teleport(nn::Module& model, const std::vector<WeightSymmetry>& symmetries, const Tensor& x,
                        const LossFn& loss, const TeleportOptions& options = {});
TeleportReport teleport(nn::Module& model, const WeightSymmetry& symmetry, const Tensor& x,
                        const LossFn& loss, const TeleportOptions& options = {});

// J and, if asked, dJ/dxi at the coordinates xi_k ([dim_k], the model's dtype, one per
// symmetry), without changing the model: what each ascent step computes, exposed so that
// it can be checked against finite differences.
struct TeleportObjective {
  double value = 0.0;             // J(xi) = ||grad_theta L(g . theta)||^2
  double loss = 0.0;              // L(g . theta)
  std::vector<Tensor> gradient;   // dJ/dxi_k, [dim_k] each (empty unless asked)
};
TeleportObjective teleport_objective(nn::Module& model, const std::vector<WeightSymmetry>& symmetries,
                                     const std::vector<Tensor>& coordinates, const Tensor& x,
                                     const LossFn& loss, bool with_gradient = true);

}  // namespace symgrad::symmetry
