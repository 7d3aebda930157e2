// The moment map of a weight symmetry: <grads, xi . theta> = <xi, M>_F for every xi.
#include <stdexcept>
#include <string>

#include "symmetry/weight_symmetry.hpp"

namespace symgrad::symmetry {
namespace {

const Tensor& lookup(const ParameterMap& map, const std::string& name, const char* which) {
  auto it = map.find(name);
  if (it == map.end() || !it->second.defined())
    throw std::invalid_argument(std::string("moment_map: ") + which + " has no tensor '" + name +
                                "' that the symmetry acts on");
  return it->second;
}

}  // namespace

Tensor unfold_axis(const Tensor& p, std::int64_t axis) {
  std::vector<std::int64_t> order{axis};
  for (std::int64_t a = 0; a < p.dim(); ++a)
    if (a != axis) order.push_back(a);
  return reshape(permute(p, order), {p.size(axis), -1});
}

Tensor moment_map(const WeightSymmetry& symmetry, const ParameterMap& grads,
                  const ParameterMap& theta) {
  const std::int64_t n = symmetry.algebra.n();
  Tensor m;
  auto add_term = [&m](const Tensor& term) { m = m.defined() ? m + term : term; };
  for (const AxisAction& action : symmetry.actions) {
    const Tensor& g = lookup(grads, action.parameter, "grads");
    const Tensor& p = lookup(theta, action.parameter, "theta");
    if (g.shape() != p.shape())
      throw std::invalid_argument("moment_map: grads['" + action.parameter + "'] " +
                                  shape_str(g.shape()) + " and theta's " + shape_str(p.shape()) +
                                  " differ");
    if (action.factor == GroupFactor::translation) {
      // <G, c 1> = c sum(G), and c is xi[0][1]: M is sum(G) at [0][1], zero elsewhere.
      if (n != 2)
        throw std::invalid_argument("moment_map: a translation acts through 2 x 2 matrices, but '" +
                                    symmetry.name + "' has n = " + std::to_string(n));
      Tensor e01 = zeros({2, 2}, g.dtype());
      if (g.dtype() == DType::f64) e01.data<double>()[1] = 1.0;
      else e01.data<float>()[1] = 1.0f;
      add_term(mul(sum(g), e01));
      continue;
    }
    const std::int64_t axis = action.axis < 0 ? action.axis + p.dim() : action.axis;
    if (axis < 0 || axis >= p.dim() || p.size(axis) != n)
      throw std::invalid_argument("moment_map: '" + action.parameter + "' " +
                                  shape_str(p.shape()) + " has no axis " +
                                  std::to_string(action.axis) + " of length " + std::to_string(n));
    const Tensor gp = matmul(unfold_axis(g, axis), unfold_axis(p, axis), false, true);  // G_a P_a^T
    switch (action.factor) {
      case GroupFactor::g: add_term(gp); break;
      case GroupFactor::g_inverse: add_term(neg(gp)); break;
      case GroupFactor::g_transpose: add_term(transpose(gp)); break;
      case GroupFactor::g_inverse_transpose: add_term(neg(transpose(gp))); break;
      case GroupFactor::translation: break;
    }
  }
  if (!m.defined()) throw std::invalid_argument("moment_map: symmetry '" + symmetry.name + "' has no actions");
  return m;
}

}  // namespace symgrad::symmetry
