// Noether charges C = sum +-P_a P_a^T, the exact SGD step identity, and the ledger.
#include "symmetry/noether.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace symgrad::symmetry {

namespace {

const Tensor& lookup(const ParameterMap& map, const std::string& name, const char* which, const std::string& who) {
  const auto it = map.find(name);
  if (it == map.end() || !it->second.defined())
    throw std::invalid_argument(who + ": " + which + " has no tensor '" + name + "'");
  return it->second;
}

bool is_translation(const WeightSymmetry& symmetry, const std::string& who) {
  const auto translations = std::count_if(symmetry.actions.begin(), symmetry.actions.end(),
                                          [](const AxisAction& a) { return a.factor == GroupFactor::translation; });
  if (translations > 0 && translations != static_cast<std::ptrdiff_t>(symmetry.actions.size()))
    throw std::invalid_argument(who + ": symmetry '" + symmetry.name +
                                "' mixes translations and linear actions; its charge is not defined here");
  if (symmetry.actions.empty())
    throw std::invalid_argument(who + ": symmetry '" + symmetry.name + "' acts on nothing");
  return translations > 0;
}

// +1 for actions by g or g^T (producers), -1 for g^-1 or g^-T (consumers).
double action_sign(GroupFactor factor) {
  return factor == GroupFactor::g || factor == GroupFactor::g_transpose ? 1.0 : -1.0;
}

// The charges are conserved only when e_k^T lies in the algebra with every e_k.
void require_transpose_closed(const WeightSymmetry& symmetry, const std::string& who) {
  const LieAlgebra& algebra = symmetry.algebra;
  for (std::int64_t k = 0; k < algebra.dim(); ++k) {
    const Tensor e = reshape(narrow(algebra.basis(), 0, k, 1), {algebra.n(), algebra.n()});
    if (!algebra.contains(transpose(e), 1e-12))
      throw std::invalid_argument(who + ": algebra " + algebra.name() + " of symmetry '" + symmetry.name +
                                  "' is not closed under transposition (basis element " + std::to_string(k) +
                                  "); its moment-map charges are not conserved");
  }
}

// P_a unfolded for every action, checked against the symmetry's n.
std::vector<Tensor> unfolded_parameters(const WeightSymmetry& symmetry, const ParameterMap& map, const char* which,
                                        const std::string& who) {
  std::vector<Tensor> out;
  const std::int64_t n = symmetry.algebra.n();
  for (const AxisAction& action : symmetry.actions) {
    const Tensor& p = lookup(map, action.parameter, which, who);
    const std::int64_t axis = action.axis < 0 ? action.axis + p.dim() : action.axis;
    if (axis < 0 || axis >= p.dim() || p.size(axis) != n)
      throw std::invalid_argument(who + ": " + which + "['" + action.parameter + "'] " + shape_str(p.shape()) +
                                  " has no axis " + std::to_string(action.axis) + " of length " + std::to_string(n));
    out.push_back(to_dtype(unfold_axis(p, axis), DType::f64));
  }
  return out;
}

// sum_a sign_a X_a Y_a^T over the actions, [n, n] float64.
Tensor signed_products(const WeightSymmetry& symmetry, const std::vector<Tensor>& x, const std::vector<Tensor>& y) {
  const std::int64_t n = symmetry.algebra.n();
  Tensor out = zeros({n, n}, DType::f64);
  for (std::size_t a = 0; a < x.size(); ++a) {
    const Tensor term = matmul(x[a], y[a], false, true);
    out = action_sign(symmetry.actions[a].factor) > 0 ? out + term : out - term;
  }
  return out;
}

// Components <e_k, X>_F.
std::vector<double> components(const LieAlgebra& algebra, const Tensor& x) {
  const std::int64_t n = algebra.n();
  return matmul(reshape(algebra.basis(), {algebra.dim(), n * n}), reshape(x, {n * n, 1})).to_vector();
}

// Sum of every entry of the translated parameters.
double translated_sum(const WeightSymmetry& symmetry, const ParameterMap& map, const char* which,
                      const std::string& who) {
  double total = 0;
  for (const AxisAction& action : symmetry.actions)
    total += sum(to_dtype(lookup(map, action.parameter, which, who), DType::f64)).item();
  return total;
}

double norm2(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

}  // namespace

Tensor charge_matrix(const WeightSymmetry& symmetry, const ParameterMap& theta) {
  const std::string who = "charge_matrix";
  NoGradGuard no_grad;
  if (is_translation(symmetry, who))
    return from_vector(std::vector<double>{translated_sum(symmetry, theta, "theta", who)}, {1, 1}, DType::f64);
  require_transpose_closed(symmetry, who);
  const std::vector<Tensor> p = unfolded_parameters(symmetry, theta, "theta", who);
  return signed_products(symmetry, p, p);
}

std::vector<double> charges(const WeightSymmetry& symmetry, const ParameterMap& theta) {
  const Tensor c = charge_matrix(symmetry, theta);
  NoGradGuard no_grad;
  if (is_translation(symmetry, "charges")) return c.to_vector();
  return components(symmetry.algebra, c);
}

ChargeStepPrediction predict_sgd_step(const WeightSymmetry& symmetry, const ParameterMap& theta,
                                      const ParameterMap& grads, double lr, double weight_decay) {
  const std::string who = "predict_sgd_step";
  NoGradGuard no_grad;
  const double shrink = 1.0 - lr * weight_decay;
  ChargeStepPrediction out;
  if (is_translation(symmetry, who)) {
    // sum(P') = (1 - lr wd) sum(P) - lr sum(G): no second-order term.
    const double c = translated_sum(symmetry, theta, "theta", who);
    out.decay = {(shrink - 1.0) * c};
    out.second_order = {0.0};
    out.predicted = out.decay;
    out.first_order = {-lr * translated_sum(symmetry, grads, "grads", who)};
    return out;
  }
  require_transpose_closed(symmetry, who);
  const std::vector<Tensor> p = unfolded_parameters(symmetry, theta, "theta", who);
  const std::vector<Tensor> g = unfolded_parameters(symmetry, grads, "grads", who);
  const Tensor c = signed_products(symmetry, p, p);
  const Tensor s = signed_products(symmetry, g, g);
  const Tensor cross = signed_products(symmetry, g, p);  // sum +-G P^T; its symmetric part is M + M^T
  const std::vector<double> c_k = components(symmetry.algebra, c);
  const std::vector<double> s_k = components(symmetry.algebra, s);
  const std::vector<double> first_k = components(symmetry.algebra, cross + transpose(cross));
  for (std::size_t k = 0; k < c_k.size(); ++k) {
    out.decay.push_back((shrink * shrink - 1.0) * c_k[k]);
    out.second_order.push_back(lr * lr * s_k[k]);
    out.predicted.push_back(out.decay.back() + out.second_order.back());
    out.first_order.push_back(-lr * shrink * first_k[k]);
  }
  return out;
}

// ---- the ledger ---------------------------------------------------------------------------

NoetherLedger::NoetherLedger(std::vector<WeightSymmetry> symmetries)
    : symmetries_(std::move(symmetries)), steps_(symmetries_.size()) {}

void NoetherLedger::record_sgd_step(const ParameterMap& before, const ParameterMap& grads, const ParameterMap& after,
                                    double lr, double weight_decay) {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < symmetries_.size(); ++i) {
    const WeightSymmetry& symmetry = symmetries_[i];
    LedgerStep step;
    step.step = steps_taken_;
    step.lr = lr;
    step.weight_decay = weight_decay;
    step.before = charges(symmetry, before);
    step.after = charges(symmetry, after);
    step.prediction = predict_sgd_step(symmetry, before, grads, lr, weight_decay);
    double residual_squared = 0;
    for (std::size_t k = 0; k < step.before.size(); ++k) {
      step.measured.push_back(step.after[k] - step.before[k]);
      const double d = step.measured.back() - step.prediction.predicted[k];
      residual_squared += d * d;
    }
    step.residual = std::sqrt(residual_squared);
    // How far `after` is from the plain SGD step the prediction assumes.
    double largest = 0, mismatch = 0;
    for (const AxisAction& action : symmetry.actions) {
      const std::string who = "NoetherLedger::record_sgd_step";
      const Tensor p = to_dtype(lookup(before, action.parameter, "before", who), DType::f64);
      const Tensor g = to_dtype(lookup(grads, action.parameter, "grads", who), DType::f64);
      const Tensor q = to_dtype(lookup(after, action.parameter, "after", who), DType::f64);
      if (p.shape() != g.shape() || p.shape() != q.shape())
        throw std::invalid_argument(who + ": '" + action.parameter + "' has shapes " + shape_str(p.shape()) +
                                    " (before), " + shape_str(g.shape()) + " (grads), " + shape_str(q.shape()) +
                                    " (after)");
      step.charge_scale += action.factor == GroupFactor::translation ? sum(abs(p)).item() : sum(square(p)).item();
      if (p.numel() == 0) continue;
      largest = std::max(largest, max(abs(p)).item());
      const Tensor expected = p - (g + p * scalar(weight_decay, DType::f64)) * scalar(lr, DType::f64);
      mismatch = std::max(mismatch, max(abs(q - expected)).item());
    }
    step.update_residual = largest > 0 ? mismatch / largest : mismatch;
    steps_[i].push_back(std::move(step));
  }
  ++steps_taken_;
}

const std::vector<LedgerStep>& NoetherLedger::steps(std::size_t symmetry) const {
  if (symmetry >= steps_.size())
    throw std::invalid_argument("NoetherLedger::steps: symmetry " + std::to_string(symmetry) + " of " +
                                std::to_string(steps_.size()));
  return steps_[symmetry];
}

LedgerTotals NoetherLedger::totals(std::size_t symmetry) const {
  const std::vector<LedgerStep>& list = steps(symmetry);
  LedgerTotals t;
  if (list.empty()) return t;
  t.initial = list.front().before;
  t.final = list.back().after;
  const std::size_t k = t.initial.size();
  t.predicted_change.assign(k, 0.0);
  t.second_order_change.assign(k, 0.0);
  for (std::size_t j = 0; j < k; ++j) t.measured_change.push_back(t.final[j] - t.initial[j]);
  for (const LedgerStep& step : list) {
    for (std::size_t j = 0; j < k; ++j) {
      t.predicted_change[j] += step.prediction.predicted[j];
      t.second_order_change[j] += step.prediction.second_order[j];
    }
    t.max_residual = std::max(t.max_residual, step.residual);
    const double second = norm2(step.prediction.second_order);
    if (second > 0) t.max_relative_residual = std::max(t.max_relative_residual, step.residual / second);
    t.max_update_residual = std::max(t.max_update_residual, step.update_residual);
  }
  return t;
}

nlohmann::json NoetherLedger::to_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < symmetries_.size(); ++i) {
    const LedgerTotals t = totals(i);
    nlohmann::json steps_json = nlohmann::json::array();
    for (const LedgerStep& s : steps_[i])
      steps_json.push_back({{"step", s.step},
                            {"lr", s.lr},
                            {"weight_decay", s.weight_decay},
                            {"measured", norm2(s.measured)},
                            {"predicted", norm2(s.prediction.predicted)},
                            {"first_order", norm2(s.prediction.first_order)},
                            {"residual", s.residual}});
    out.push_back({{"symmetry", symmetries_[i].name},
                   {"algebra", symmetries_[i].algebra.name()},
                   {"initial", t.initial},
                   {"final", t.final},
                   {"measured_change", t.measured_change},
                   {"predicted_change", t.predicted_change},
                   {"second_order_change", t.second_order_change},
                   {"max_residual", t.max_residual},
                   {"max_relative_residual", t.max_relative_residual},
                   {"max_update_residual", t.max_update_residual},
                   {"steps", steps_json}});
  }
  return out;
}

ParameterMap snapshot(const nn::Module& model) {
  NoGradGuard no_grad;
  ParameterMap out;
  for (const auto& [name, p] : model.named_parameters()) {
    Tensor copy = zeros_like(p);
    copy_(copy, p.detach());
    out[name] = copy;
  }
  return out;
}

ParameterMap gradients(const nn::Module& model) {
  NoGradGuard no_grad;
  ParameterMap out;
  for (const auto& [name, p] : model.named_parameters()) {
    Tensor copy = zeros_like(p);
    if (p.grad().defined()) copy_(copy, p.grad());
    out[name] = copy;
  }
  return out;
}

}  // namespace symgrad::symmetry
