#include "symmetry/audit.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "nn/parameter_scope.hpp"
#include "symmetry/expm.hpp"

namespace symgrad::symmetry {
namespace {

double unit_roundoff(DType dtype) { return dtype == DType::f64 ? 0x1p-53 : 0x1p-24; }

double norm_of(const Tensor& t) {
  double s = 0;
  for (double v : t.to_vector()) s += v * v;
  return std::sqrt(s);
}

double norm_of(const ParameterMap& tensors) {
  double s = 0;
  for (const auto& [name, t] : tensors) {
    const double n = norm_of(t);
    s += n * n;
  }
  return std::sqrt(s);
}

double max_abs_difference(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : a.to_vector()) m = std::max(m, std::abs(v));
  return m;
}

// The touched parameters only (the audit's theta).
ParameterMap touched(const WeightSymmetry& symmetry, const ParameterMap& all) {
  ParameterMap out;
  for (const AxisAction& a : symmetry.actions) {
    auto it = all.find(a.parameter);
    if (it == all.end())
      throw std::invalid_argument("audit_symmetry: the model has no parameter '" + a.parameter +
                                  "' that symmetry '" + symmetry.name + "' acts on");
    out.emplace(a.parameter, it->second);
  }
  return out;
}

// Copies of the parameters' values, to put back after the audit moved them.
ParameterMap snapshot(const ParameterMap& theta) {
  NoGradGuard no_grad;
  ParameterMap out;
  for (const auto& [name, t] : theta) {
    Tensor copy = zeros_like(t);
    copy_(copy, t);
    out.emplace(name, copy);
  }
  return out;
}

void restore(nn::Module& model, const ParameterMap& saved) {
  NoGradGuard no_grad;
  ParameterMap live = parameter_map(model);
  for (const auto& [name, t] : saved) copy_(live.at(name), t);
}

// The same symmetry with each factor replaced by the one gradients transform with: a
// parameter multiplied by M along an axis has its gradient multiplied by M^-T.
WeightSymmetry gradient_action(const WeightSymmetry& symmetry) {
  WeightSymmetry dual = symmetry;
  for (AxisAction& a : dual.actions) {
    switch (a.factor) {
      case GroupFactor::g: a.factor = GroupFactor::g_inverse_transpose; break;
      case GroupFactor::g_inverse_transpose: a.factor = GroupFactor::g; break;
      case GroupFactor::g_transpose: a.factor = GroupFactor::g_inverse; break;
      case GroupFactor::g_inverse: a.factor = GroupFactor::g_transpose; break;
      case GroupFactor::translation: break;
    }
  }
  return dual;
}

// L and dL/dtheta (touched parameters) at the model's current parameters.
std::pair<double, ParameterMap> loss_and_grads(nn::Module& model, const ParameterMap& theta,
                                               const Tensor& x, const LossFn& loss) {
  Tensor l = loss(model.forward(x));
  TensorList inputs;
  for (const auto& [name, t] : theta) inputs.push_back(t);
  const TensorList g = grad({l}, inputs, {}, {.allow_unused = true});
  ParameterMap grads;
  std::size_t i = 0;
  for (const auto& [name, t] : theta) {
    grads.emplace(name, g[i].defined() ? g[i].detach() : zeros_like(t));
    ++i;
  }
  return {l.item(), grads};
}

double loss_at(nn::Module& model, const WeightSymmetry& symmetry, const Tensor& g,
               const ParameterMap& theta, const Tensor& x, const LossFn& loss) {
  NoGradGuard no_grad;
  const ParameterMap saved = snapshot(theta);
  apply(symmetry, g, model);
  double l = 0;
  try {
    l = loss(model.forward(x)).item();
  } catch (...) {
    restore(model, saved);
    throw;
  }
  restore(model, saved);
  return l;
}

Tensor random_orthogonal(std::int64_t n, Generator& gen, DType dtype) {
  // exp of a random antisymmetric matrix: a rotation (det +1), spread over SO(n).
  Tensor a = randn({n, n}, gen, DType::f64) * (M_PI / std::sqrt(double(std::max<std::int64_t>(n, 1))));
  Tensor q = expm(a - transpose(a));
  return dtype == DType::f64 ? q : to_dtype(q, dtype);
}

}  // namespace

Tensor random_group_element(const LieAlgebra& algebra, double condition_number, Generator& gen,
                            DType dtype) {
  NoGradGuard no_grad;
  const std::int64_t n = algebra.n();
  if (!(condition_number >= 1))
    throw std::invalid_argument("random_group_element: the condition number must be >= 1, got " +
                                std::to_string(condition_number));
  const std::string& name = algebra.name();
  const auto geometric = [&](bool unit_determinant) {
    std::vector<double> s(static_cast<std::size_t>(n));
    double log_sum = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      s[i] = n == 1 ? 1.0 : std::pow(condition_number, double(i) / double(n - 1));
      log_sum += std::log(s[i]);
    }
    if (unit_determinant)
      for (double& v : s) v *= std::exp(-log_sum / double(n));
    // A random order, so the large and small scalings land on random channels.
    for (std::int64_t i = n - 1; i > 0; --i) std::swap(s[i], s[gen.below(std::uint64_t(i + 1))]);
    Tensor d = zeros({n, n}, DType::f64);
    for (std::int64_t i = 0; i < n; ++i) d.data<double>()[i * n + i] = s[i];
    return d;
  };
  Tensor g;
  if (name.rfind("so(", 0) == 0) {
    g = random_orthogonal(n, gen, DType::f64);
  } else if (name.rfind("diagonal(", 0) == 0) {
    g = geometric(false);
  } else if (name.rfind("gl(", 0) == 0 || name.rfind("sl(", 0) == 0) {
    g = matmul(matmul(random_orthogonal(n, gen, DType::f64), geometric(name[0] == 's')),
               random_orthogonal(n, gen, DType::f64));
  } else {
    // Any other algebra: exp(t xi) for a random unit xi in it, t grown until cond is reached.
    Tensor xi = algebra.element(randn({algebra.dim()}, gen, DType::f64));
    xi = xi / std::max(norm_of(xi), 1e-300);
    double t = 1.0;
    g = expm(xi * t);
    for (int k = 0; k < 60 && condition_number_2(g) < condition_number; ++k) {
      t *= 1.5;
      g = expm(xi * t);
    }
  }
  return dtype == DType::f64 ? g : to_dtype(g, dtype);
}

SymmetryAudit audit_symmetry(nn::Module& model, const WeightSymmetry& symmetry, const Tensor& x,
                             const LossFn& loss, const AuditOptions& options) {
  SymmetryAudit audit;
  audit.symmetry = symmetry;
  audit.notes = symmetry.notes;
  const DType dtype = model.dtype();
  audit.dtype = dtype_name(dtype);
  audit.model_in_training_mode = model.is_training();
  const double tol = options.tolerance > 0 ? options.tolerance : (dtype == DType::f64 ? 1e-12 : 1e-4);
  audit.tolerance = tol;
  const double u = unit_roundoff(dtype);
  const std::int64_t n = symmetry.algebra.n();
  Generator gen(options.seed);

  if (symmetry.mode == ModeRequirement::eval && model.is_training())
    audit.notes.push_back("the model is in training mode, but this symmetry needs BatchNorm with "
                          "fixed statistics (eval mode or folded): expect it to be broken");
  if (symmetry.mode == ModeRequirement::train && !model.is_training())
    audit.notes.push_back("the model is in eval mode, but this symmetry needs BatchNorm's batch "
                          "statistics (training mode): expect it to be broken");

  const ParameterMap theta = touched(symmetry, parameter_map(model));
  const ParameterMap saved = snapshot(theta);
  // Forward passes in training mode update BatchNorm's running statistics: put them back.
  ParameterMap buffers;
  for (const auto& [name, b] : model.named_buffers()) buffers.emplace(name, b);
  const ParameterMap saved_buffers = snapshot(buffers);
  const auto [l0, grads0] = loss_and_grads(model, theta, x, loss);
  const double grad_norm = norm_of(grads0), theta_norm = norm_of(theta);
  Tensor f0;
  {
    NoGradGuard no_grad;
    f0 = model.forward(x);
  }

  // 1. invariance, and 4. covariance, for random g of the chosen condition number.
  const WeightSymmetry dual = gradient_action(symmetry);
  for (int s = 0; s < options.group_samples; ++s) {
    const Tensor g = random_group_element(symmetry.algebra, options.condition_number, gen, dtype);
    const double cond = condition_number_2(g);
    ParameterMap pushed;
    {
      NoGradGuard no_grad;
      pushed = act(dual, g, grads0);
      // A translation moves the parameter, not its gradient: L(theta + c) = L(theta) for
      // all theta gives grad L(theta + c) = grad L(theta).
      for (const AxisAction& a : symmetry.actions)
        if (a.factor == GroupFactor::translation) pushed[a.parameter] = grads0.at(a.parameter);
    }
    double l1 = 0, change = 0;
    ParameterMap grads1;
    try {
      {
        NoGradGuard no_grad;
        apply(symmetry, g, model);
        change = max_abs_difference(model.forward(x), f0);
      }
      const auto moved = loss_and_grads(model, theta, x, loss);
      l1 = moved.first;
      grads1 = moved.second;
    } catch (...) {
      restore(model, saved);
      throw;
    }
    restore(model, saved);

    InvarianceCheck& inv = audit.invariance;
    inv.condition = std::max(inv.condition, cond);
    inv.max_output_change = std::max(inv.max_output_change, change);
    inv.relative_output_change =
        std::max(inv.relative_output_change, change / std::max(max_abs(f0), 1e-300));
    inv.relative_loss_change =
        std::max(inv.relative_loss_change, std::abs(l1 - l0) / std::max(std::abs(l0), 1e-300));

    double diff2 = 0, ref2 = 0;
    for (const auto& [name, t] : pushed) {
      const std::vector<double> a = grads1.at(name).to_vector(), b = t.to_vector();
      for (std::size_t i = 0; i < a.size(); ++i) {
        diff2 += (a[i] - b[i]) * (a[i] - b[i]);
        ref2 += b[i] * b[i];
      }
    }
    CovarianceCheck& cov = audit.covariance;
    cov.condition = std::max(cov.condition, cond);
    cov.relative_residual = std::max(cov.relative_residual, std::sqrt(diff2 / std::max(ref2, 1e-300)));
  }
  audit.invariance.bound = 100 * u * std::max(audit.invariance.condition, 1.0);
  audit.invariance.passed = audit.invariance.relative_loss_change <= audit.invariance.bound;
  // Covariance compares two gradients, each computed with rounding: cond(g)^2 enters
  // through the transformed gradient (g^-T applied to an error of size u ||grad||).
  audit.covariance.passed =
      audit.covariance.relative_residual <=
      std::max(tol, 100 * u * audit.covariance.condition * audit.covariance.condition);

  // 2. orbit orthogonality: the moment map of grad L, on each basis element.
  {
    NoGradGuard no_grad;
    OrthogonalityCheck& orth = audit.orthogonality;
    orth.moment_map = moment_map(symmetry, grads0, theta);
    const Tensor m64 = to_dtype(orth.moment_map, DType::f64);
    const Tensor basis = symmetry.algebra.basis();
    const double scale = std::max(grad_norm * theta_norm, 1e-300);
    for (std::int64_t k = 0; k < symmetry.algebra.dim(); ++k) {
      const Tensor e = reshape(narrow(basis, 0, k, 1), {n, n});
      const double c = sum(e * m64).item() / std::max(norm_of(e), 1e-300) / scale;
      orth.coordinates.push_back(c);
      orth.max_relative = std::max(orth.max_relative, std::abs(c));
    }
    orth.passed = orth.max_relative <= tol;
  }

  // 3. d/dt L(exp(t xi) . theta) at 0: autodiff, moment map, central differences.
  {
    OrbitDerivativeCheck& od = audit.orbit_derivative;
    const double h = dtype == DType::f64 ? 1e-5 : 1e-2;
    const Tensor m64 = to_dtype(audit.orthogonality.moment_map, DType::f64);
    for (int s = 0; s < options.tangent_samples; ++s) {
      // Half the samples from the algebra (all three should be ~0 along a symmetry), half
      // from gl(n) (or, for translations, the translation direction itself).
      Tensor xi64 = (s % 2 == 0 || n == 1) ? symmetry.algebra.element(randn({symmetry.algebra.dim()}, gen, DType::f64))
                                            : randn({n, n}, gen, DType::f64);
      xi64 = xi64 / std::max(norm_of(xi64), 1e-300);
      const Tensor xi = to_dtype(xi64, dtype);

      // (a) autodiff through expm and the action, with the model run on the moved weights.
      Tensor t = zeros({}, dtype).requires_grad_();
      const nn::TensorMap aliases = nn::detached_parameters(model, false);
      ParameterMap theta_alias;
      for (const auto& [name, p] : theta) theta_alias.emplace(name, aliases.at(name));
      const double by_autodiff =
          nn::with_parameters(model, act(symmetry, expm(xi * t), theta_alias),
                              [&] { return grad({loss(model.forward(x))}, {t})[0].item(); });

      // (b) the moment map: <xi, M>.
      const double by_moment_map = sum(xi64 * m64).item();

      // (c) central differences of the loss along exp(+-h xi).
      const double plus = loss_at(model, symmetry, expm(xi * h), theta, x, loss);
      const double minus = loss_at(model, symmetry, expm(xi * (-h)), theta, x, loss);
      const double by_fd = (plus - minus) / (2 * h);

      double tangent_norm;
      {
        NoGradGuard no_grad;
        tangent_norm = norm_of(orbit_tangent(symmetry, xi, theta));
      }
      const double scale = std::max(grad_norm * tangent_norm, 1e-300);
      od.autodiff.push_back(by_autodiff);
      od.moment_map.push_back(by_moment_map);
      od.finite_difference.push_back(by_fd);
      od.max_relative_disagreement =
          std::max(od.max_relative_disagreement, std::abs(by_autodiff - by_moment_map) / scale);
      od.max_relative_fd = std::max(od.max_relative_fd, std::abs(by_fd - by_moment_map) / scale);
    }
    // Finite differences are limited by truncation (h^2) and cancellation (u / h).
    const double fd_tol = dtype == DType::f64 ? 1e-6 : 5e-2;
    od.passed = od.max_relative_disagreement <= tol && od.max_relative_fd <= fd_tol;
  }

  {
    NoGradGuard no_grad;
    for (auto& [name, b] : buffers) copy_(b, saved_buffers.at(name));
  }
  audit.holds = audit.invariance.passed && audit.orthogonality.passed &&
                audit.orbit_derivative.passed && audit.covariance.passed;
  return audit;
}

nlohmann::json SymmetryAudit::to_json() const {
  const auto finite = [](double v) -> nlohmann::json {
    if (std::isfinite(v)) return v;
    return nullptr;
  };
  return {
      {"symmetry", symmetry.to_json()},
      {"dtype", dtype},
      {"model_in_training_mode", model_in_training_mode},
      {"tolerance", tolerance},
      {"invariance",
       {{"condition", finite(invariance.condition)},
        {"max_output_change", finite(invariance.max_output_change)},
        {"relative_output_change", finite(invariance.relative_output_change)},
        {"relative_loss_change", finite(invariance.relative_loss_change)},
        {"bound", finite(invariance.bound)},
        {"passed", invariance.passed}}},
      {"orbit_orthogonality",
       {{"max_relative", finite(orthogonality.max_relative)},
        {"moment_map", orthogonality.moment_map.defined() ? orthogonality.moment_map.to_vector()
                                                          : std::vector<double>{}},
        {"passed", orthogonality.passed}}},
      {"orbit_derivative",
       {{"autodiff", orbit_derivative.autodiff},
        {"moment_map", orbit_derivative.moment_map},
        {"finite_difference", orbit_derivative.finite_difference},
        {"max_relative_disagreement", finite(orbit_derivative.max_relative_disagreement)},
        {"max_relative_fd", finite(orbit_derivative.max_relative_fd)},
        {"passed", orbit_derivative.passed}}},
      {"covariance",
       {{"condition", finite(covariance.condition)},
        {"relative_residual", finite(covariance.relative_residual)},
        {"passed", covariance.passed}}},
      {"holds", holds},
      {"notes", notes}};
}

std::string format_audit_table(const std::vector<SymmetryAudit>& audits) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-28s %-14s %5s  %-21s %-9s %-9s %-9s  %s\n", "symmetry",
                "algebra", "dim", "invariance (bound)", "orbit", "d/dt", "covar.", "verdict");
  out << line;
  for (const SymmetryAudit& a : audits) {
    char inv[64];
    std::snprintf(inv, sizeof inv, "%.1e (%.0e)", a.invariance.relative_loss_change, a.invariance.bound);
    std::snprintf(line, sizeof line, "%-28.28s %-14.14s %5lld  %-21s %-9.1e %-9.1e %-9.1e  %s\n",
                  a.symmetry.name.c_str(), a.symmetry.algebra.name().c_str(),
                  static_cast<long long>(a.symmetry.algebra.dim()), inv,
                  a.orthogonality.max_relative, a.orbit_derivative.max_relative_disagreement,
                  a.covariance.relative_residual, a.holds ? "HOLDS" : "BROKEN");
    out << line;
  }
  out << "(invariance: |dL|/|L| for random g of the chosen condition number; orbit: max "
         "|<grad L, xi.theta>| / (|grad L| |theta|) over the basis; d/dt: autodiff vs moment map; "
         "covar.: relative residual of the transformed gradient)\n";
  return out.str();
}

}  // namespace symgrad::symmetry
