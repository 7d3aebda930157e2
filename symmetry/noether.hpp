#pragma once
// Conserved charges of weight symmetries: a "Noether ledger" (Kunin et al. 2021, "Neural
// Mechanics"; Tanaka & Kunin 2021, "Noether's Learning Dynamics"; background.md §3).
//
// For a symmetry acting on axes (P_a: the parameter unfolded with the axis first,
// [n, rest]), the charge is the moment map of theta itself,
//   C(theta) = sum_{a by g or g^T} P_a P_a^T - sum_{a by g^-1 or g^-T} P_a P_a^T   [n, n],
// read on the algebra's basis: components <e_k, C>_F (gl(n): every entry; diagonal(n):
// the diagonal, e.g. ||incoming||^2 - ||outgoing||^2 per ReLU unit, ||W_i||^2 + b_i^2 per
// channel feeding a BatchNorm). For a translation (softmax logits' bias) the charge is
// the sum of the translated entries.
//
// Why it is conserved. Invariance gives <grad L, xi . theta> = <xi, M>_F = 0 for every
// xi of the algebra, with M = sum_a M_a (g: G P^T, g^T: P G^T, g^-1: -G P^T,
// g^-T: -P G^T). Under gradient flow (dP/dt = -G) dC/dt = -(M + M^T), whose component
// on e_k is -<e_k, M> - <e_k^T, M> = 0 when the algebra holds e_k^T too (gl, sl,
// diagonal, so; the charges are refused for other algebras).
//
// Under plain SGD with weight decay, theta' = theta - eta (G + lambda theta), exactly:
//   P' P'^T = (1 - eta lambda)^2 P P^T - eta (1 - eta lambda)(G P^T + P G^T) + eta^2 G G^T,
// so C' = (1 - eta lambda)^2 C - eta (1 - eta lambda)(M + M^T) + eta^2 S,
//   S = sum_{g, g^T} G_a G_a^T - sum_{g^-1, g^-T} G_a G_a^T,
// and the first-order term vanishes on the algebra: per step the charge changes by
// ((1 - eta lambda)^2 - 1) C + eta^2 S (translation: by -eta lambda C, no eta^2 term).
// Over a time T = eta * steps the drift sum eta^2 S = O(eta T) vanishes as eta -> 0, and
// weight decay makes the charge decay as (1 - eta lambda)^(2k) ~ exp(-2 lambda t).
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.hpp"
#include "symmetry/weight_symmetry.hpp"

namespace symgrad::symmetry {

// C(theta) [n, n] float64 (translation symmetries: [1, 1], the sum of the entries).
// Throws std::invalid_argument naming the parameter when an action does not fit, when a
// symmetry mixes translations and linear actions, or when the algebra is not closed under
// transposition (its charges are not conserved).
Tensor charge_matrix(const WeightSymmetry& symmetry, const ParameterMap& theta);

// The charge's components <e_k, C>_F, one per basis element of the algebra (translation:
// one component).
std::vector<double> charges(const WeightSymmetry& symmetry, const ParameterMap& theta);

// The exact one-step change of the charges under theta' = theta - lr (grads + weight_decay
// theta), split into what a symmetry predicts and what it forbids:
struct ChargeStepPrediction {
  std::vector<double> decay;         // ((1 - lr wd)^2 - 1) C   (translation: -lr wd C)
  std::vector<double> second_order;  // lr^2 S                  (translation: 0)
  std::vector<double> predicted;     // decay + second_order: the change along a symmetry
  // -lr (1 - lr wd) <e_k, M + M^T> (translation: -lr sum G): zero along a symmetry, so the
  // first-order violation when the symmetry is not one. predicted + first_order is the
  // exact change in any case.
  std::vector<double> first_order;
};
ChargeStepPrediction predict_sgd_step(const WeightSymmetry& symmetry, const ParameterMap& theta,
                                      const ParameterMap& grads, double lr, double weight_decay = 0.0);

// One recorded step of one symmetry.
struct LedgerStep {
  std::int64_t step = 0;
  double lr = 0, weight_decay = 0;
  std::vector<double> before, after;  // charges
  std::vector<double> measured;       // after - before
  ChargeStepPrediction prediction;
  double residual = 0;        // ||measured - predicted||_2
  // sum_a ||P_a||_F^2 before the step (translation: sum of |entries|): C's rounding
  // errors are a few units of roundoff times it. The residual relative to |second_order|
  // grows as 1/lr^2 at fixed rounding; relative to charge_scale it stays ~1e-16.
  double charge_scale = 0;
  double update_residual = 0;  // max |after - (before - lr (G + wd before))| / max |before|
};

// Totals of one symmetry over the recorded steps.
struct LedgerTotals {
  std::vector<double> initial, final;
  std::vector<double> measured_change;      // final - initial
  std::vector<double> predicted_change;     // sum of the predicted per-step changes
  std::vector<double> second_order_change;  // sum of lr^2 S
  double max_residual = 0;                  // over steps, ||measured - predicted||
  double max_relative_residual = 0;         // over steps, residual / ||second_order||
  double max_update_residual = 0;
};

// Records the charges of some symmetries along a training run with plain SGD (no
// momentum): call record_sgd_step once per step, with copies of the parameters before and
// after it and the gradient of the loss (without weight decay) at `before`.
class NoetherLedger {
 public:
  explicit NoetherLedger(std::vector<WeightSymmetry> symmetries);

  void record_sgd_step(const ParameterMap& before, const ParameterMap& grads, const ParameterMap& after, double lr,
                       double weight_decay = 0.0);

  const std::vector<WeightSymmetry>& symmetries() const { return symmetries_; }
  std::int64_t num_steps() const { return steps_taken_; }
  const std::vector<LedgerStep>& steps(std::size_t symmetry) const;
  LedgerTotals totals(std::size_t symmetry) const;

  // Per symmetry: name, totals, and per step lr, |measured|, |predicted|, |first order|,
  // residual.
  nlohmann::json to_json() const;

 private:
  std::vector<WeightSymmetry> symmetries_;
  std::vector<std::vector<LedgerStep>> steps_;
  std::int64_t steps_taken_ = 0;
};

// Copies of the model's parameters (detached, same dtype): what "before" and "after" hold.
ParameterMap snapshot(const nn::Module& model);
// The parameters' accumulated .grad (copies); a parameter without one gets zeros.
ParameterMap gradients(const nn::Module& model);

}  // namespace symgrad::symmetry
