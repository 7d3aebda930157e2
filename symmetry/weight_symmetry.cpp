#include "symmetry/weight_symmetry.hpp"

#include <algorithm>
#include <stdexcept>

namespace symgrad::symmetry {

std::string to_string(GroupFactor factor) {
  switch (factor) {
    case GroupFactor::g: return "g";
    case GroupFactor::g_transpose: return "g^T";
    case GroupFactor::g_inverse: return "g^-1";
    case GroupFactor::g_inverse_transpose: return "g^-T";
    case GroupFactor::translation: return "translation";
  }
  return "unknown";
}

std::string to_string(ModeRequirement mode) {
  switch (mode) {
    case ModeRequirement::any: return "any";
    case ModeRequirement::eval: return "eval";
    case ModeRequirement::train: return "train";
  }
  return "unknown";
}

nlohmann::json WeightSymmetry::to_json() const {
  nlohmann::json actions_json = nlohmann::json::array();
  for (const AxisAction& a : actions)
    actions_json.push_back({{"parameter", a.parameter}, {"axis", a.axis}, {"factor", to_string(a.factor)}});
  return {{"name", name},
          {"kind", kind},
          {"algebra", {{"name", algebra.name()}, {"n", algebra.n()}, {"dim", algebra.dim()}}},
          {"actions", actions_json},
          {"mode", to_string(mode)},
          {"notes", notes}};
}

ParameterMap parameter_map(const nn::Module& model) {
  ParameterMap map;
  for (const auto& [name, p] : model.named_parameters()) map.emplace(name, p);
  return map;
}

namespace {

// "act(stage2 stream)": the prefix of every message.
std::string where(const char* op, const WeightSymmetry& symmetry) {
  return std::string(op) + "(" + symmetry.name + ")";
}

// g (or xi) must be a float n x n matrix with n the algebra's size.
void check_matrix(const char* op, const WeightSymmetry& symmetry, const Tensor& m, const char* what) {
  if (!m.defined()) throw std::invalid_argument(where(op, symmetry) + ": " + what + " is undefined");
  const std::int64_t n = symmetry.algebra.n();
  if (m.dim() != 2 || m.size(0) != n || m.size(1) != n)
    throw std::invalid_argument(where(op, symmetry) + ": " + what + " is " + shape_str(m.shape()) +
                                " but the algebra " + symmetry.algebra.name() + " needs [" + std::to_string(n) +
                                ", " + std::to_string(n) + "]");
}

// The parameter an action names, checked against the action and the matrix; returns the
// axis made non-negative.
std::int64_t check_action(const char* op, const WeightSymmetry& symmetry, const AxisAction& action,
                          const ParameterMap& theta, const Tensor& m) {
  const auto it = theta.find(action.parameter);
  if (it == theta.end())
    throw std::invalid_argument(where(op, symmetry) + ": no parameter named '" + action.parameter +
                                "' among the " + std::to_string(theta.size()) + " given");
  const Tensor& p = it->second;
  if (!p.defined())
    throw std::invalid_argument(where(op, symmetry) + ": parameter '" + action.parameter + "' is undefined");
  if (p.dtype() != m.dtype())
    throw std::invalid_argument(where(op, symmetry) + ": parameter '" + action.parameter + "' is " +
                                dtype_name(p.dtype()) + " but the group matrix is " + dtype_name(m.dtype()));
  if (action.factor == GroupFactor::translation) {
    if (m.size(0) != 2)
      throw std::invalid_argument(where(op, symmetry) + ": the translation of '" + action.parameter +
                                  "' needs a [2, 2] matrix [[1, c], [0, 1]], got " + shape_str(m.shape()));
    return 0;
  }
  const std::int64_t rank = p.dim();
  if (action.axis < -rank || action.axis >= rank)
    throw std::invalid_argument(where(op, symmetry) + ": axis " + std::to_string(action.axis) + " of '" +
                                action.parameter + "' " + shape_str(p.shape()) + " is out of range");
  const std::int64_t axis = action.axis < 0 ? action.axis + rank : action.axis;
  if (p.size(axis) != m.size(0))
    throw std::invalid_argument(where(op, symmetry) + ": axis " + std::to_string(axis) + " of '" +
                                action.parameter + "' " + shape_str(p.shape()) + " has length " +
                                std::to_string(p.size(axis)) + " but the group acts on " +
                                std::to_string(m.size(0)) + " channels");
  return axis;
}

// p with `multiply` applied to its `axis` seen as the rows of a matrix:
// p'[.., i, ..] = (multiply(P))[i, ..] with P = p's axis moved to the front and the rest
// flattened into columns. The copies (permute) are the price of contiguous tensors.
template <class Multiply>
Tensor along_axis(const Tensor& p, std::int64_t axis, Multiply&& multiply) {
  std::vector<std::int64_t> order = {axis};
  for (std::int64_t i = 0; i < p.dim(); ++i)
    if (i != axis) order.push_back(i);
  std::vector<std::int64_t> inverse(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) inverse[static_cast<std::size_t>(order[i])] = static_cast<std::int64_t>(i);
  const Tensor moved = axis == 0 ? p : permute(p, order);
  const Tensor rows = reshape(moved, {moved.size(0), moved.numel() / std::max<std::int64_t>(moved.size(0), 1)});
  const Tensor product = reshape(multiply(rows), moved.shape());
  return axis == 0 ? product : permute(product, inverse);
}

// g[0][1] as a scalar tensor (keeps the graph to g).
Tensor translation_amount(const Tensor& m) { return reshape(narrow(narrow(m, 0, 0, 1), 1, 1, 1), Shape{}); }

// One action of a group element g on p. g^-1 and g^-T are applied by solving with g
// (engine solve: LU, differentiable to any order) rather than by forming the inverse.
Tensor act_once(const WeightSymmetry& symmetry, const AxisAction& action, std::int64_t axis, const Tensor& g,
                const Tensor& p) {
  try {
    switch (action.factor) {
      case GroupFactor::g: return along_axis(p, axis, [&](const Tensor& rows) { return matmul(g, rows); });
      case GroupFactor::g_transpose:
        return along_axis(p, axis, [&](const Tensor& rows) { return matmul(g, rows, true, false); });
      case GroupFactor::g_inverse: return along_axis(p, axis, [&](const Tensor& rows) { return solve(g, rows); });
      case GroupFactor::g_inverse_transpose:
        return along_axis(p, axis, [&](const Tensor& rows) { return solve(transpose(g), rows); });
      case GroupFactor::translation: return p + translation_amount(g);
    }
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where("act", symmetry) + ": acting on '" + action.parameter + "' by " +
                                to_string(action.factor) + ": " + e.what());
  }
  throw std::invalid_argument(where("act", symmetry) + ": unknown group factor for '" + action.parameter + "'");
}

// The derivative of one action at g = I in the direction xi.
Tensor tangent_once(const AxisAction& action, std::int64_t axis, const Tensor& xi, const Tensor& p) {
  switch (action.factor) {
    case GroupFactor::g: return along_axis(p, axis, [&](const Tensor& rows) { return matmul(xi, rows); });
    case GroupFactor::g_transpose:
      return along_axis(p, axis, [&](const Tensor& rows) { return matmul(xi, rows, true, false); });
    case GroupFactor::g_inverse: return along_axis(p, axis, [&](const Tensor& rows) { return -matmul(xi, rows); });
    case GroupFactor::g_inverse_transpose:
      return along_axis(p, axis, [&](const Tensor& rows) { return -matmul(xi, rows, true, false); });
    case GroupFactor::translation: return zeros_like(p.detach()) + translation_amount(xi);
  }
  throw std::invalid_argument("orbit_tangent: unknown group factor for '" + action.parameter + "'");
}

}  // namespace

ParameterMap act(const WeightSymmetry& symmetry, const Tensor& g, const ParameterMap& theta) {
  check_matrix("act", symmetry, g, "g");
  // Actions on one parameter compose in the order listed (they commute for the
  // built-ins: they touch different axes, or act by one diagonal).
  ParameterMap moved;
  for (const AxisAction& action : symmetry.actions) {
    const std::int64_t axis = check_action("act", symmetry, action, theta, g);
    const auto done = moved.find(action.parameter);
    const Tensor& current = done != moved.end() ? done->second : theta.at(action.parameter);
    moved[action.parameter] = act_once(symmetry, action, axis, g, current);
  }
  return moved;
}

ParameterMap orbit_tangent(const WeightSymmetry& symmetry, const Tensor& xi, const ParameterMap& theta) {
  check_matrix("orbit_tangent", symmetry, xi, "xi");
  // d/dt of a composition at t = 0, where every factor is the identity: the sum of the
  // factors' derivatives (product rule).
  ParameterMap tangent;
  for (const AxisAction& action : symmetry.actions) {
    const std::int64_t axis = check_action("orbit_tangent", symmetry, action, theta, xi);
    const Tensor term = tangent_once(action, axis, xi, theta.at(action.parameter));
    const auto done = tangent.find(action.parameter);
    if (done == tangent.end()) tangent.emplace(action.parameter, term);
    else done->second = done->second + term;
  }
  return tangent;
}

void apply(const WeightSymmetry& symmetry, const Tensor& g, nn::Module& model) {
  NoGradGuard no_grad;
  ParameterMap parameters = parameter_map(model);
  // Every new value is computed from the old ones before the first write.
  const ParameterMap moved = act(symmetry, g, parameters);
  for (const auto& [name, value] : moved) copy_(parameters.at(name), value);
}

}  // namespace symgrad::symmetry
