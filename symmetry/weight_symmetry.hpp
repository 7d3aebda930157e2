#pragma once
// A continuous symmetry of a model's weights, as data: which axes of which parameters a
// group element g = exp(xi) multiplies, and by which of g, g^T, g^-1, g^-T; the Lie
// algebra xi may range over; and the conditions under which the model's function is
// unchanged (eval mode / folded BatchNorm, or training-mode BatchNorm).
//
// The action theta' = act(g, theta) is built from differentiable ops, so gradients reach
// both g (hence xi through expm) and theta, in float32 and float64.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"
#include "nn/module.hpp"
#include "symmetry/lie_algebra.hpp"

namespace symgrad::symmetry {

using ParameterMap = std::map<std::string, Tensor>;

// A scalar loss of the model's output on a fixed batch (the closure holds the targets,
// e.g. [&](const Tensor& logits) { return nn::cross_entropy(logits, labels); }); what the
// audits and teleportation differentiate.
using LossFn = std::function<Tensor(const Tensor& output)>;

// Which matrix built from g multiplies the axis.
enum class GroupFactor {
  g,
  g_transpose,
  g_inverse,
  g_inverse_transpose,
  // An additive action: every entry of the parameter gains g[0][1] (the group of
  // translations as 2 x 2 matrices [[1, c], [0, 1]] = exp([[0, c], [0, 0]])). `axis` is
  // ignored. Softmax translation of a last layer's bias is of this kind.
  translation,
};
std::string to_string(GroupFactor factor);

// P'[.., i, ..] = sum_j M[i, j] P[.., j, ..] along `axis`, with M the chosen factor of g.
// For a weight W [out, in]: axis 0 by g gives g W; axis 1 by g^-T gives W g^-1.
struct AxisAction {
  std::string parameter;  // a name from named_parameters()
  std::int64_t axis = 0;
  GroupFactor factor = GroupFactor::g;
};

// What the model's function needs for the symmetry to hold.
enum class ModeRequirement {
  any,         // holds in train and eval mode
  eval,        // needs BatchNorm with fixed statistics (eval mode or folded)
  train,       // needs BatchNorm with batch statistics (the BN scale symmetry)
};
std::string to_string(ModeRequirement mode);

struct WeightSymmetry {
  std::string name;  // "stage2 stream", "0-2 linear pair", ...
  // "residual_stream" | "linear_pair" | "relu_rescaling" | "batchnorm_scale" |
  // "softmax_translation" | "custom"
  std::string kind;
  LieAlgebra algebra;
  std::vector<AxisAction> actions;
  ModeRequirement mode = ModeRequirement::any;
  // Caveats an audit prints, e.g. "unfolded BatchNorm stage2.0.bn3 between a producer and
  // the stream: fold BN (pde/fold_bn.hpp) before acting".
  std::vector<std::string> notes;

  nlohmann::json to_json() const;
};

// The model's parameters by name (shared handles, no copies).
ParameterMap parameter_map(const nn::Module& model);

// theta' = g . theta for the parameters the symmetry touches (only those are returned),
// g [n, n] in theta's dtype. Differentiable in g and theta. Throws std::invalid_argument
// naming the parameter and shapes when an action does not fit (missing name, axis out of
// range, axis length != n, g not n x n).
ParameterMap act(const WeightSymmetry& symmetry, const Tensor& g, const ParameterMap& theta);

// The orbit tangent xi . theta = d/dt act(exp(t xi), theta) at t = 0, in closed form
// (g -> xi, g^T -> xi^T, g^-1 -> -xi, g^-T -> -xi^T, translation -> xi[0][1] * ones).
// Differentiable in xi and theta.
ParameterMap orbit_tangent(const WeightSymmetry& symmetry, const Tensor& xi,
                           const ParameterMap& theta);

// The moment map: the n x n matrix M with <grads, xi . theta> = <xi, M>_F for every
// n x n xi (sum over the touched parameters of the gradient contracted with the orbit
// tangent). Closed form per action, with G_a, P_a the gradient and the parameter unfolded
// with the axis first: g -> G_a P_a^T, g^-1 -> -G_a P_a^T, g^T -> (G_a P_a^T)^T,
// g^-T -> -(G_a P_a^T)^T, translation -> sum(G) at [0][1]. With grads = dL/dtheta, the
// orbit-orthogonality identity (Noether) says its projection onto the algebra vanishes;
// with grads = theta it is the conserved charge. Implemented in moment_map.cpp.
Tensor moment_map(const WeightSymmetry& symmetry, const ParameterMap& grads,
                  const ParameterMap& theta);

// P with `axis` moved to the front and the other axes flattened: [P.size(axis), rest],
// the matrix that a factor of g multiplies from the left. Differentiable.
Tensor unfold_axis(const Tensor& p, std::int64_t axis);

// Writes act(g, theta) into the model's parameters (no graph).
void apply(const WeightSymmetry& symmetry, const Tensor& g, nn::Module& model);

}  // namespace symgrad::symmetry
