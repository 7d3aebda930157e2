#include "symmetry/teleport.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "nn/parameter_scope.hpp"
#include "symmetry/expm.hpp"
#include "symmetry/svd.hpp"

namespace symgrad::symmetry {

namespace {

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3g", v);
  return buffer;
}

void check_options(const TeleportOptions& o) {
  const auto bad = [](const std::string& what) { throw std::invalid_argument("teleport: " + what); };
  if (o.steps < 0) bad("steps is " + std::to_string(o.steps) + " but must be >= 0");
  if (!(o.step_size > 0) || !std::isfinite(o.step_size)) bad("step_size is " + number(o.step_size) + " but must be > 0");
  if (!(o.max_step_norm >= 0) || !std::isfinite(o.max_step_norm))
    bad("max_step_norm is " + number(o.max_step_norm) + " but must be >= 0 (0: no cap)");
  if (o.max_backtracks < 0) bad("max_backtracks is " + std::to_string(o.max_backtracks) + " but must be >= 0");
  if (!(o.backtrack_factor > 0 && o.backtrack_factor < 1))
    bad("backtrack_factor is " + number(o.backtrack_factor) + " but must be in (0, 1)");
  if (!(o.max_condition_number >= 1)) bad("max_condition_number is " + number(o.max_condition_number) + " but must be >= 1");
  if (!(o.max_relative_loss_change >= 0))
    bad("max_relative_loss_change is " + number(o.max_relative_loss_change) + " but must be >= 0");
}

// The symmetries must be usable on this model as it stands: a real algebra, the model's
// train/eval mode, and a defined batch. (act() checks the parameters themselves.)
void check_setting(const char* op, const nn::Module& model, const std::vector<WeightSymmetry>& symmetries,
                   const Tensor& x) {
  const std::string who = op;
  if (symmetries.empty()) throw std::invalid_argument(who + ": no symmetries given");
  if (!x.defined()) throw std::invalid_argument(who + ": the batch x is undefined");
  if (model.named_parameters().empty()) throw std::invalid_argument(who + ": the model has no parameters");
  for (const WeightSymmetry& s : symmetries) {
    if (s.algebra.dim() == 0)
      throw std::invalid_argument(who + ": symmetry '" + s.name + "' has an empty Lie algebra");
    if (s.mode == ModeRequirement::train && !model.is_training())
      throw std::invalid_argument(who + ": symmetry '" + s.name +
                                  "' holds only with batch statistics (train mode) but the model is in eval mode");
    if (s.mode == ModeRequirement::eval && model.is_training())
      throw std::invalid_argument(who + ": symmetry '" + s.name +
                                  "' holds only with fixed BatchNorm statistics (eval mode) but the model is in "
                                  "train mode");
  }
}

// The loss on the batch, checked to be a finite scalar that depends on the parameters.
Tensor batch_loss(nn::Module& model, const Tensor& x, const LossFn& loss, const char* op) {
  const Tensor value = loss(model(x));
  const std::string who = op;
  if (!value.defined() || value.numel() != 1)
    throw std::invalid_argument(who + ": the loss function returned " +
                                (value.defined() ? shape_str(value.shape()) : std::string("an undefined tensor")) +
                                " but must return a scalar");
  if (!value.requires_grad())
    throw std::invalid_argument(who + ": the loss does not depend on the model's parameters (no graph)");
  if (!std::isfinite(value.item())) throw std::invalid_argument(who + ": the loss is " + number(value.item()));
  return value;
}

// sum_p ||dL/dp||^2 over `inputs` (undefined gradients count as zero).
Tensor squared_norm(const TensorList& grads, DType dtype) {
  Tensor total = scalar(0.0, dtype);
  for (const Tensor& g : grads)
    if (g.defined()) total = total + sum(square(g));
  return total;
}

struct Measurement {
  double loss = 0.0, grad_norm = 0.0;
};

// The loss and ||grad_theta L|| of the model as it is (no substitution).
Measurement measure(nn::Module& model, const Tensor& x, const LossFn& loss) {
  GradModeGuard grad_on(true);
  const Tensor value = batch_loss(model, x, loss, "teleport");
  TensorList trained;  // frozen parameters (requires_grad off) are not part of the gradient
  for (const Tensor& p : model.parameters())
    if (p.requires_grad()) trained.push_back(p);
  const TensorList grads = grad({value}, trained, {}, {.allow_unused = true});
  return {value.item(), std::sqrt(squared_norm(grads, value.dtype()).item())};
}

Tensor group_element(const WeightSymmetry& s, const Tensor& coordinates) {
  return expm(s.algebra.element(coordinates));
}

double condition_number(const WeightSymmetry& s, const Tensor& coordinates) {
  NoGradGuard no_grad;
  return condition_number_2(group_element(s, coordinates));
}

double euclidean_norm(const std::vector<Tensor>& parts) {
  double total = 0.0;
  for (const Tensor& t : parts)
    for (double v : t.to_vector()) total += v * v;
  return std::sqrt(total);
}

// xi + scale * direction, per symmetry (plain values, no graph).
std::vector<Tensor> moved_by(const std::vector<Tensor>& xi, const std::vector<Tensor>& direction, double scale) {
  NoGradGuard no_grad;
  std::vector<Tensor> out;
  for (std::size_t k = 0; k < xi.size(); ++k) out.push_back(xi[k] + direction[k] * scale);
  return out;
}

// A plain copy of values (no graph), to put parameters back.
Tensor copy_of(const Tensor& t) {
  NoGradGuard no_grad;
  Tensor out = zeros_like(t);
  copy_(out, t);
  return out;
}

}  // namespace

TeleportObjective teleport_objective(nn::Module& model, const std::vector<WeightSymmetry>& symmetries,
                                     const std::vector<Tensor>& coordinates, const Tensor& x,
                                     const LossFn& loss, bool with_gradient) {
  check_setting("teleport_objective", model, symmetries, x);
  const DType dtype = model.dtype();
  if (coordinates.size() != symmetries.size())
    throw std::invalid_argument("teleport_objective: " + std::to_string(coordinates.size()) +
                                " coordinate vectors for " + std::to_string(symmetries.size()) + " symmetries");
  for (std::size_t k = 0; k < coordinates.size(); ++k) {
    const Tensor& c = coordinates[k];
    const std::int64_t dim = symmetries[k].algebra.dim();
    if (!c.defined() || c.dim() != 1 || c.size(0) != dim || c.dtype() != dtype)
      throw std::invalid_argument("teleport_objective: coordinates " + std::to_string(k) + " ('" +
                                  symmetries[k].name + "') are " +
                                  (c.defined() ? shape_str(c.shape()) + " " + dtype_name(c.dtype()) : "undefined") +
                                  " but the algebra " + symmetries[k].algebra.name() + " needs [" +
                                  std::to_string(dim) + "] " + dtype_name(dtype));
  }
  GradModeGuard grad_on(true);

  // theta' = g_K ... g_1 . theta, built from leaf aliases of the parameters (never from
  // the parameters themselves: the substitution rewrites those, see parameter_scope.hpp).
  std::vector<Tensor> xi;
  for (const Tensor& c : coordinates) {
    Tensor leaf = c.detach();
    if (with_gradient) leaf.requires_grad_();
    xi.push_back(leaf);
  }
  ParameterMap current = nn::detached_parameters(model, /*requires_grad=*/true);
  ParameterMap moved;
  for (std::size_t k = 0; k < symmetries.size(); ++k)
    for (auto& [name, value] : act(symmetries[k], group_element(symmetries[k], xi[k]), current)) {
      current[name] = value;
      moved[name] = value;
    }

  // Everything that differentiates the substituted graph happens inside the scope.
  return nn::with_parameters(model, moved, [&] {
    const Tensor value = batch_loss(model, x, loss, "teleport_objective");
    // The gradient at theta': with respect to the substitutes where the symmetry moved a
    // parameter, to the parameter itself elsewhere.
    TensorList inputs;
    for (const auto& [name, p] : model.named_parameters()) {
      const auto it = moved.find(name);
      if (it != moved.end()) inputs.push_back(it->second);
      else if (p.requires_grad()) inputs.push_back(p);
    }
    const TensorList grads = grad({value}, inputs, {}, {.create_graph = with_gradient, .allow_unused = true});
    const Tensor objective = squared_norm(grads, dtype);

    TeleportObjective result{objective.item(), value.item(), {}};
    if (with_gradient) {
      TensorList d_xi(xi.size());
      if (objective.requires_grad()) d_xi = grad({objective}, xi, {}, {.allow_unused = true});
      for (std::size_t k = 0; k < xi.size(); ++k)
        result.gradient.push_back(d_xi[k].defined() ? d_xi[k].detach() : zeros_like(xi[k].detach()));
    }
    return result;
  });
}

TeleportReport teleport(nn::Module& model, const std::vector<WeightSymmetry>& symmetries, const Tensor& x,
                        const LossFn& loss, const TeleportOptions& options) {
  check_options(options);
  check_setting("teleport", model, symmetries, x);
  const DType dtype = model.dtype();

  TeleportReport report;
  const Measurement before = measure(model, x, loss);
  report.loss_before = report.loss_after = before.loss;
  report.grad_norm_before = report.grad_norm_after = before.grad_norm;

  std::vector<Tensor> xi;
  for (const WeightSymmetry& s : symmetries) xi.push_back(zeros({s.algebra.dim()}, dtype));
  double objective = teleport_objective(model, symmetries, xi, x, loss, false).value;
  report.objective.push_back(objective);

  // Gradient ascent on J with backtracking: only steps that increase J, with every
  // group element within the condition-number cap, are taken.
  double step = options.step_size;
  report.note = options.steps == 0 ? "no steps requested" : "all steps taken";
  for (std::int64_t iteration = 0; iteration < options.steps; ++iteration) {
    // d log J / dxi = (dJ/dxi) / J: J's ascent direction, in units free of the loss scale.
    const TeleportObjective here = teleport_objective(model, symmetries, xi, x, loss, true);
    if (!(here.value > 0)) {
      report.note = "stopped: the gradient is zero (J = 0), nothing to steepen";
      break;
    }
    std::vector<Tensor> direction;
    for (const Tensor& d : here.gradient) direction.push_back(d / here.value);
    const double slope = euclidean_norm(direction);
    if (!(slope > 0) || !std::isfinite(slope)) {
      report.note = "stopped: |d log J / dxi| is " + number(slope);
      break;
    }
    bool accepted = false;
    for (std::int64_t attempt = 0; attempt <= options.max_backtracks && !accepted; ++attempt) {
      double scale = step;
      if (options.max_step_norm > 0) scale = std::min(scale, options.max_step_norm / slope);
      const std::vector<Tensor> candidate = moved_by(xi, direction, scale);
      bool conditioned = true;
      for (std::size_t k = 0; k < symmetries.size() && conditioned; ++k)
        conditioned = condition_number(symmetries[k], candidate[k]) <= options.max_condition_number;
      const double value =
          conditioned ? teleport_objective(model, symmetries, candidate, x, loss, false).value : 0.0;
      if (conditioned && std::isfinite(value) && value > objective) {
        xi = candidate;
        objective = value;
        report.objective.push_back(value);
        ++report.steps_taken;
        accepted = true;
        step = std::min(step / options.backtrack_factor, options.step_size);
      } else {
        ++report.steps_rejected;
        step *= options.backtrack_factor;
      }
    }
    if (!accepted) {
      report.note = "stopped: no step within " + std::to_string(options.max_backtracks) +
                    " backtracks increased J inside the condition-number cap";
      break;
    }
  }
  report.coordinates = xi;
  for (std::size_t k = 0; k < symmetries.size(); ++k)
    report.condition_numbers.push_back(condition_number(symmetries[k], xi[k]));
  if (report.steps_taken == 0) return report;

  // Move the model, then check on the plain model that the loss did not change.
  std::vector<std::pair<Tensor, Tensor>> backup;  // (parameter, its old values)
  for (const auto& [name, p] : model.named_parameters()) backup.emplace_back(p, copy_of(p));
  {
    NoGradGuard no_grad;
    for (std::size_t k = 0; k < symmetries.size(); ++k) apply(symmetries[k], group_element(symmetries[k], xi[k]), model);
  }
  const Measurement after = measure(model, x, loss);
  const double change = std::abs(after.loss - before.loss);
  report.loss_relative_change = before.loss != 0 ? change / std::abs(before.loss) : change;
  if (!(report.loss_relative_change <= options.max_relative_loss_change)) {
    NoGradGuard no_grad;
    for (auto& [parameter, old] : backup) copy_(parameter, old);
    report.note = "not applied: the loss changed by " + number(report.loss_relative_change) +
                  " (relative) > max_relative_loss_change " + number(options.max_relative_loss_change) +
                  "; is every symmetry one of this model, in this mode? (gradient norm there was " +
                  number(after.grad_norm) + ")";
    return report;
  }
  report.applied = true;
  report.loss_after = after.loss;
  report.grad_norm_after = after.grad_norm;
  return report;
}

TeleportReport teleport(nn::Module& model, const WeightSymmetry& symmetry, const Tensor& x, const LossFn& loss,
                        const TeleportOptions& options) {
  return teleport(model, std::vector<WeightSymmetry>{symmetry}, x, loss, options);
}

nlohmann::json TeleportReport::to_json() const {
  return {{"applied", applied},
          {"note", note},
          {"steps_taken", steps_taken},
          {"steps_rejected", steps_rejected},
          {"loss_before", loss_before},
          {"loss_after", loss_after},
          {"loss_relative_change", loss_relative_change},
          {"grad_norm_before", grad_norm_before},
          {"grad_norm_after", grad_norm_after},
          {"objective", objective},
          {"condition_numbers", condition_numbers}};
}

}  // namespace symgrad::symmetry
