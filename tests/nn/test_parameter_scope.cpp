// ParameterSubstitution: a forward pass with substituted weights against a model whose
// weights were copied in; gradients with respect to the substitutes against ordinary
// parameter gradients; a second derivative through the substitutes against central
// differences; restoration of values, .grad, requires_grad and identity (also when the
// function throws); nesting; and the errors (unknown names, shapes, dtypes, and
// substitutes computed from the parameter they replace).
#include "nn/parameter_scope.hpp"

#include <cmath>
#include <stdexcept>

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/linear.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using symgrad::testing::require_allclose;

namespace {

// 3 -> 4 -> 2 with a smooth nonlinearity, so that second derivatives are not trivial.
std::shared_ptr<Sequential> small_model(std::uint64_t seed) {
  manual_seed(seed);
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Linear>(3, 4, true, DType::f64), std::make_shared<Tanh>(),
      std::make_shared<Linear>(4, 2, true, DType::f64)});
}

// Random leaves shaped like the model's parameters (requires_grad as asked).
TensorMap random_substitutes(const Module& model, std::uint64_t seed, bool requires_grad = true) {
  Generator gen(seed);
  TensorMap out;
  for (const auto& [name, p] : model.named_parameters()) {
    Tensor t = uniform(p.shape(), -1, 1, gen, DType::f64);
    if (requires_grad) t.requires_grad_();
    out.emplace(name, t);
  }
  return out;
}

// A plain copy of values (no graph).
Tensor copy_of(const Tensor& t) {
  NoGradGuard no_grad;
  Tensor out = zeros_like(t);
  copy_(out, t);
  return out;
}

void load(Module& model, const TensorMap& values) {
  NoGradGuard no_grad;
  for (auto& [name, p] : model.named_parameters()) copy_(p, values.at(name));
}

Tensor loss_of(Module& model, const Tensor& x) { return sum(square(model(x))) * 0.5; }

Tensor input() {
  Generator gen(99);
  return uniform({5, 3}, -1, 1, gen, DType::f64);
}

std::vector<std::string> names_of(const TensorMap& map) {
  std::vector<std::string> names;
  for (const auto& [name, t] : map) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("ParameterSubstitution: the forward pass sees the substitutes", "[parameter_scope]") {
  auto model = small_model(1);
  auto reference = small_model(2);
  const TensorMap substitutes = random_substitutes(*model, 3);
  load(*reference, substitutes);
  const Tensor x = input();
  const Tensor before = copy_of((*model)(x));

  const Tensor inside = with_parameters(*model, substitutes, [&] { return (*model)(x); });
  require_allclose(inside, (*reference)(x), 0, 0);  // the same arithmetic: bit for bit
  // And the model is itself again afterwards.
  require_allclose((*model)(x), before, 0, 0);
  REQUIRE(max(abs(inside - before)).item() > 1e-2);
}

TEST_CASE("ParameterSubstitution: gradients reach the substitutes and equal parameter gradients",
          "[parameter_scope]") {
  auto model = small_model(1);
  auto reference = small_model(2);
  const TensorMap substitutes = random_substitutes(*model, 4);
  load(*reference, substitutes);
  const Tensor x = input();
  backward(loss_of(*reference, x));

  std::vector<Tensor> leaves;
  for (const auto& [name, t] : substitutes) leaves.push_back(t);
  TensorList grads;
  {
    ParameterSubstitution scope(*model, substitutes);
    REQUIRE(scope.size() == 4);
    grads = grad({loss_of(*model, x)}, leaves);
  }
  // grads are in the map's (alphabetical) order.
  TensorMap reference_grads;
  for (const auto& [name, p] : reference->named_parameters()) reference_grads.emplace(name, p.grad());
  std::size_t i = 0;
  for (const auto& [name, unused] : substitutes) {
    INFO(name);
    require_allclose(grads[i++], reference_grads.at(name), 1e-14, 1e-15);
  }

  // backward() inside the scope accumulates into the substitutes' .grad, not into the
  // parameters' (a leaf substitute is wrapped in a recorded identity for that).
  {
    ParameterSubstitution scope(*model, substitutes);
    backward(loss_of(*model, x));
  }
  for (const auto& [name, p] : model->named_parameters()) {
    INFO(name);
    REQUIRE_FALSE(p.grad().defined());
    require_allclose(substitutes.at(name).grad(), reference_grads.at(name), 1e-14, 1e-15);
  }
}

TEST_CASE("ParameterSubstitution: a second derivative through the substitutes matches finite differences",
          "[parameter_scope]") {
  auto model = small_model(5);
  const TensorMap substitutes = random_substitutes(*model, 6);
  const Tensor x = input();
  std::vector<Tensor> leaves;
  for (const auto& [name, t] : substitutes) leaves.push_back(t);

  // N(s) = ||grad_s L(s)||^2, and its gradient by double backward, all inside the scope.
  const auto gradient_norm = [&](const TensorMap& s, bool create_graph) {
    ParameterSubstitution scope(*model, s);
    std::vector<Tensor> inputs;
    for (const auto& [name, t] : s) inputs.push_back(t);
    const TensorList g = grad({loss_of(*model, x)}, inputs, {}, {.create_graph = create_graph});
    Tensor norm = scalar(0.0, DType::f64);
    for (const Tensor& gi : g) norm = norm + sum(square(gi));
    return norm;
  };
  TensorList analytic;
  {
    ParameterSubstitution scope(*model, substitutes);
    const TensorList g = grad({loss_of(*model, x)}, leaves, {}, {.create_graph = true});
    Tensor norm = scalar(0.0, DType::f64);
    for (const Tensor& gi : g) norm = norm + sum(square(gi));
    analytic = grad({norm}, leaves);
  }

  const double eps = 1e-6;
  double worst = 0, scale = 0;
  std::size_t k = 0;
  for (const auto& [name, leaf] : substitutes) {
    const std::vector<double> base = leaf.to_vector();
    const std::vector<double> a = analytic[k++].to_vector();
    for (std::size_t e = 0; e < base.size(); ++e) {
      const auto shifted = [&](double delta) {
        TensorMap s;
        for (const auto& [other, t] : substitutes) s.emplace(other, copy_of(t).requires_grad_());
        std::vector<double> v = base;
        v[e] += delta;
        s[name] = from_vector(v, leaf.shape()).requires_grad_();
        return gradient_norm(s, false).item();
      };
      const double numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
      worst = std::max(worst, std::abs(numeric - a[e]));
      scale = std::max(scale, std::abs(a[e]));
    }
  }
  INFO("max |analytic - numeric| = " << worst << ", max |analytic| = " << scale);
  REQUIRE(scale > 1e-2);
  REQUIRE(worst <= 1e-6 * scale);
}

TEST_CASE("ParameterSubstitution: parameters are restored, also when the function throws", "[parameter_scope]") {
  auto model = small_model(7);
  const auto parameters = model->named_parameters();
  // Give one parameter a .grad and one a cleared requires_grad, to see both come back.
  const Tensor weight_grad = ones_like(parameters[0].second);
  Tensor(parameters[0].second).set_grad(weight_grad);
  Tensor(parameters[3].second).requires_grad_(false);
  std::vector<Tensor> values;
  std::vector<const void*> storages;
  for (const auto& [name, p] : parameters) {
    values.push_back(copy_of(p));
    storages.push_back(p.raw_data());
  }
  const auto check_restored = [&] {
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      const Tensor& p = parameters[i].second;
      INFO(parameters[i].first);
      require_allclose(p, values[i], 0, 0);
      REQUIRE(p.raw_data() == storages[i]);
      REQUIRE(p.is_leaf());
      REQUIRE(p.requires_grad() == (i != 3));
      REQUIRE(p.grad().defined() == (i == 0));
    }
    REQUIRE(parameters[0].second.grad().impl() == weight_grad.impl());
  };

  const TensorMap substitutes = random_substitutes(*model, 8);
  const Tensor x = input();
  REQUIRE_THROWS_WITH(with_parameters(*model, substitutes,
                                      [&]() -> Tensor {
                                        backward(loss_of(*model, x));
                                        // Inside: the parameters are the substitutes.
                                        REQUIRE_FALSE(parameters[0].second.is_leaf());
                                        REQUIRE(parameters[3].second.requires_grad());
                                        throw std::runtime_error("fn failed");
                                      }),
                      "fn failed");
  check_restored();

  // Substitutes that need no grad make constant parameters inside the scope.
  const TensorMap constants = random_substitutes(*model, 9, false);
  with_parameters(*model, constants, [&] {
    REQUIRE_FALSE(parameters[0].second.requires_grad());
    REQUIRE_FALSE((*model)(x).requires_grad());
    return 0;
  });
  check_restored();

  // Nested scopes restore in reverse order.
  {
    ParameterSubstitution outer(*model, substitutes);
    const Tensor outer_out = copy_of((*model)(x));
    {
      ParameterSubstitution inner(*model, {{"2.bias", constants.at("2.bias")}});
      REQUIRE(max(abs((*model)(x) - outer_out)).item() > 1e-3);
    }
    require_allclose((*model)(x), outer_out, 0, 0);
  }
  check_restored();
}

TEST_CASE("ParameterSubstitution: substitutes with history, and detached_parameters", "[parameter_scope]") {
  auto model = small_model(10);
  const Tensor x = input();
  // theta' = 2 theta computed from leaf aliases of the parameters: d L(2 theta) / d alias
  // = 2 grad L at 2 theta.
  const TensorMap aliases = detached_parameters(*model);
  REQUIRE(names_of(aliases) == std::vector<std::string>{"0.bias", "0.weight", "2.bias", "2.weight"});
  for (const auto& [name, p] : model->named_parameters()) {
    REQUIRE(aliases.at(name).raw_data() == p.raw_data());  // shared storage
    REQUIRE(aliases.at(name).impl() != p.impl());          // not the same impl
    REQUIRE(aliases.at(name).requires_grad());
  }
  REQUIRE_FALSE(detached_parameters(*model, false).at("0.weight").requires_grad());

  TensorMap doubled, doubled_values;
  for (const auto& [name, a] : aliases) {
    doubled.emplace(name, a * 2.0);
    doubled_values.emplace(name, copy_of(a * 2.0).requires_grad_());
  }
  std::vector<Tensor> alias_list, value_list;
  for (const auto& [name, a] : aliases) alias_list.push_back(a);
  for (const auto& [name, v] : doubled_values) value_list.push_back(v);
  const TensorList through = with_parameters(*model, doubled, [&] { return grad({loss_of(*model, x)}, alias_list); });
  const TensorList at_values =
      with_parameters(*model, doubled_values, [&] { return grad({loss_of(*model, x)}, value_list); });
  for (std::size_t i = 0; i < through.size(); ++i) require_allclose(through[i], at_values[i] * 2.0, 1e-14, 1e-15);
}

TEST_CASE("ParameterSubstitution: bad substitutions throw and change nothing", "[parameter_scope]") {
  auto model = small_model(11);
  const Tensor x = input();
  const Tensor before = copy_of((*model)(x));
  TensorMap good = random_substitutes(*model, 12);
  const auto with = [&](const std::string& name, const Tensor& t) {
    TensorMap m = good;
    m[name] = t;
    return m;
  };
  REQUIRE_THROWS_WITH(ParameterSubstitution(*model, with("1.weight", zeros({4, 3}, DType::f64))),
                      Catch::Contains("no parameter named '1.weight'"));
  REQUIRE_THROWS_WITH(ParameterSubstitution(*model, with("0.weight", zeros({3, 4}, DType::f64))),
                      Catch::Contains("'0.weight'") && Catch::Contains("[3, 4]") && Catch::Contains("[4, 3]"));
  REQUIRE_THROWS_WITH(ParameterSubstitution(*model, with("0.bias", zeros({4}, DType::f32))),
                      Catch::Contains("'0.bias'") && Catch::Contains("float32") && Catch::Contains("float64"));
  REQUIRE_THROWS_WITH(ParameterSubstitution(*model, with("0.bias", Tensor())),
                      Catch::Contains("'0.bias'") && Catch::Contains("undefined"));
  // Computed from the parameter itself, or from another substituted parameter.
  const auto parameters = model->named_parameters();
  const Tensor w0 = parameters[0].second;
  REQUIRE_THROWS_WITH(ParameterSubstitution(*model, with("0.weight", w0 * 2.0)),
                      Catch::Contains("'0.weight'") && Catch::Contains("itself") &&
                          Catch::Contains("detached_parameters"));
  REQUIRE_THROWS_WITH(ParameterSubstitution(*model, with("0.bias", zeros({4}, DType::f64) + sum(w0))),
                      Catch::Contains("'0.bias'") && Catch::Contains("'0.weight'"));
  REQUIRE_THROWS_WITH(ParameterSubstitution(*model, with("0.weight", w0)),
                      Catch::Contains("'0.weight'"));
  // Computed from a parameter that is not substituted: allowed (its impl is unchanged).
  const TensorMap from_other = {{"2.bias", zeros({2}, DType::f64) + sum(w0)}};
  with_parameters(*model, from_other, [] { return 0; });
  // Nothing was substituted by the failed attempts.
  require_allclose((*model)(x), before, 0, 0);
  for (const auto& [name, p] : model->named_parameters()) REQUIRE(p.is_leaf());
  // The empty substitution is a no-op.
  REQUIRE(ParameterSubstitution(*model, {}).size() == 0);
}
