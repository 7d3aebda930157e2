// WeightSymmetry's group action on hand-made parameters: act against plain loops (and a
// Gauss-Jordan inverse written here) for every factor and axis; composition of actions on
// one parameter; orbit_tangent against central differences of act(exp(t xi)) (exp by its
// power series, written here); gradcheck and gradgradcheck in g and theta; float32;
// apply; to_json; bad inputs. Last, with ParameterSubstitution, the building block of the
// Noether identity: d/dt f(act(exp(t xi), theta)) at t = 0 by autodiff in a scalar t
// equals <grad_theta f, orbit_tangent>.
#include "symmetry/weight_symmetry.hpp"

#include <cmath>

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/linear.hpp"
#include "nn/parameter_scope.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::symmetry;
using symgrad::testing::require_allclose;

namespace {

// ---- independent references -----------------------------------------------------------

// The inverse of an n x n matrix by Gauss-Jordan with partial pivoting (row-major values).
std::vector<double> inverse_reference(std::vector<double> a, std::int64_t n) {
  std::vector<double> inv(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) inv[i * n + i] = 1.0;
  for (std::int64_t col = 0; col < n; ++col) {
    std::int64_t best = col;
    for (std::int64_t r = col + 1; r < n; ++r)
      if (std::abs(a[r * n + col]) > std::abs(a[best * n + col])) best = r;
    for (std::int64_t c = 0; c < n; ++c) {
      std::swap(a[col * n + c], a[best * n + c]);
      std::swap(inv[col * n + c], inv[best * n + c]);
    }
    const double pivot = a[col * n + col];
    for (std::int64_t c = 0; c < n; ++c) {
      a[col * n + c] /= pivot;
      inv[col * n + c] /= pivot;
    }
    for (std::int64_t r = 0; r < n; ++r) {
      if (r == col) continue;
      const double f = a[r * n + col];
      for (std::int64_t c = 0; c < n; ++c) {
        a[r * n + c] -= f * a[col * n + c];
        inv[r * n + c] -= f * inv[col * n + c];
      }
    }
  }
  return inv;
}

std::vector<double> transpose_reference(const std::vector<double>& m, std::int64_t n) {
  std::vector<double> t(m.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) t[j * n + i] = m[i * n + j];
  return t;
}

// p'[o, i, r] = sum_j m[i, j] p[o, j, r] with o the axes before `axis` and r those after.
std::vector<double> along_axis_reference(const Tensor& p, std::int64_t axis, const std::vector<double>& m) {
  const std::vector<double> v = p.to_vector();
  const std::int64_t n = p.size(axis);
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= p.size(d);
  for (std::int64_t d = axis + 1; d < p.dim(); ++d) inner *= p.size(d);
  std::vector<double> out(v.size(), 0.0);
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t r = 0; r < inner; ++r) {
        double s = 0;
        for (std::int64_t j = 0; j < n; ++j) s += m[i * n + j] * v[(o * n + j) * inner + r];
        out[(o * n + i) * inner + r] = s;
      }
  return out;
}

// The factor a GroupFactor names, as values.
std::vector<double> factor_reference(const Tensor& g, GroupFactor factor) {
  const std::int64_t n = g.size(0);
  const std::vector<double> v = g.to_vector();
  switch (factor) {
    case GroupFactor::g: return v;
    case GroupFactor::g_transpose: return transpose_reference(v, n);
    case GroupFactor::g_inverse: return inverse_reference(v, n);
    case GroupFactor::g_inverse_transpose: return transpose_reference(inverse_reference(v, n), n);
    case GroupFactor::translation: break;
  }
  return {};
}

// exp(A) by its power series, fine for ||A|| well below 1.
Tensor series_exp(const Tensor& a) {
  const std::int64_t n = a.size(0);
  Tensor term = eye(n, -1, a.dtype());
  Tensor total = term;
  for (int k = 1; k <= 25; ++k) {
    term = matmul(term, a) / static_cast<double>(k);
    total = total + term;
  }
  return total;
}

// U diag(s) V^T with Haar U, V and singular values in [0.5, 2]: condition number <= 4.
Tensor random_invertible(std::int64_t n, std::uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  Tensor u = zeros({n, n}, DType::f64), v = zeros({n, n}, DType::f64);
  nn::orthogonal_(u, 1.0, &gen);
  nn::orthogonal_(v, 1.0, &gen);
  const Tensor s = uniform({n}, 0.5, 2.0, gen, DType::f64);
  return to_dtype(matmul(u * reshape(s, {1, n}), transpose(v)), dtype);
}

Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return uniform(shape, -1, 1, gen, dtype);
}

WeightSymmetry custom(std::int64_t n, std::vector<AxisAction> actions) {
  return WeightSymmetry{.name = "test", .kind = "custom", .algebra = LieAlgebra::gl(n),
                        .actions = std::move(actions), .mode = ModeRequirement::any, .notes = {}};
}

WeightSymmetry translation_symmetry(const std::string& parameter) {
  Tensor generator = zeros({2, 2}, DType::f64);
  generator.data<double>()[1] = 1.0;
  return WeightSymmetry{.name = "shift", .kind = "softmax_translation",
                        .algebra = LieAlgebra::single(generator, "translation"),
                        .actions = {{parameter, 0, GroupFactor::translation}},
                        .mode = ModeRequirement::any, .notes = {}};
}

constexpr GroupFactor kMatrixFactors[] = {GroupFactor::g, GroupFactor::g_transpose, GroupFactor::g_inverse,
                                          GroupFactor::g_inverse_transpose};

}  // namespace

TEST_CASE("act: every factor along every axis matches a loop reference", "[weight_symmetry]") {
  const std::int64_t n = 3;
  const Tensor g = random_invertible(n, 1);
  const ParameterMap theta = {{"a", random_tensor({3, 5}, 2)},
                              {"b", random_tensor({2, 3, 4}, 3)},
                              {"c", random_tensor({4, 3}, 4)},
                              {"d", random_tensor({3}, 5)},
                              {"untouched", random_tensor({7}, 6)}};
  for (GroupFactor factor : kMatrixFactors) {
    INFO(to_string(factor));
    const WeightSymmetry s = custom(n, {{"a", 0, factor}, {"b", 1, factor}, {"c", -1, factor}, {"d", 0, factor}});
    const ParameterMap moved = act(s, g, theta);
    REQUIRE(moved.size() == 4);
    REQUIRE(moved.count("untouched") == 0);
    const std::vector<double> m = factor_reference(g, factor);
    require_allclose(moved.at("a"), along_axis_reference(theta.at("a"), 0, m), 1e-13, 1e-14);
    require_allclose(moved.at("b"), along_axis_reference(theta.at("b"), 1, m), 1e-13, 1e-14);
    require_allclose(moved.at("c"), along_axis_reference(theta.at("c"), 1, m), 1e-13, 1e-14);
    require_allclose(moved.at("d"), along_axis_reference(theta.at("d"), 0, m), 1e-13, 1e-14);
    REQUIRE(moved.at("b").shape() == Shape{2, 3, 4});
  }
  // n = 1 (a scalar group acting on a length-1 axis) and a zero-size other axis.
  const Tensor two = tensor({2.0}, {1, 1}, DType::f64);
  const ParameterMap small = {{"p", random_tensor({1, 3}, 7)}, {"empty", zeros({0, 1}, DType::f64)}};
  const ParameterMap moved = act(custom(1, {{"p", 0, GroupFactor::g_inverse}, {"empty", 1, GroupFactor::g}}), two, small);
  require_allclose(moved.at("p"), small.at("p") * 0.5, 1e-15, 0);
  REQUIRE(moved.at("empty").shape() == Shape{0, 1});
}

TEST_CASE("act: actions on one parameter compose; translation adds g[0][1]", "[weight_symmetry]") {
  const std::int64_t n = 4;
  const Tensor g = random_invertible(n, 10);
  const ParameterMap theta = {{"w", random_tensor({4, 4}, 11)}};
  // Axis 0 by g and axis 1 by g^-T: the similarity g W g^-1.
  const WeightSymmetry s = custom(n, {{"w", 0, GroupFactor::g}, {"w", 1, GroupFactor::g_inverse_transpose}});
  const std::vector<double> inverse = inverse_reference(g.to_vector(), n);
  const Tensor expected = matmul(matmul(g, theta.at("w")), from_vector(inverse, {n, n}));
  require_allclose(act(s, g, theta).at("w"), expected, 1e-13, 1e-14);

  const ParameterMap bias = {{"fc.bias", random_tensor({5}, 12)}};
  const Tensor shift = tensor({1, 0.75, 0, 1}, {2, 2}, DType::f64);
  const ParameterMap shifted = act(translation_symmetry("fc.bias"), shift, bias);
  require_allclose(shifted.at("fc.bias"), bias.at("fc.bias") + 0.75, 0, 1e-15);
}

TEST_CASE("orbit_tangent: the closed forms match central differences of act(exp(t xi))", "[weight_symmetry]") {
  const std::int64_t n = 3;
  const Tensor xi = random_tensor({n, n}, 20);
  const ParameterMap theta = {{"a", random_tensor({3, 5}, 21)}, {"b", random_tensor({3, 3, 4}, 22)}};
  const double t = 1e-4;
  for (GroupFactor factor : kMatrixFactors) {
    INFO(to_string(factor));
    const WeightSymmetry s =
        custom(n, {{"a", 0, factor}, {"b", 1, factor}, {"b", 0, GroupFactor::g}});  // b: two actions
    const ParameterMap tangent = orbit_tangent(s, xi, theta);
    const ParameterMap plus = act(s, series_exp(xi * t), theta);
    const ParameterMap minus = act(s, series_exp(xi * -t), theta);
    REQUIRE(tangent.size() == 2);
    for (const auto& [name, value] : tangent) {
      INFO(name);
      // Central differences: error O(t^2 |xi|^3 |theta|) ~ 1e-8, rounding ~ 1e-16 / t.
      require_allclose(value, (plus.at(name) - minus.at(name)) / (2 * t), 1e-7, 1e-8);
      REQUIRE(max(abs(value)).item() > 0.1);
    }
  }
  // Translation: xi[0][1] everywhere.
  const ParameterMap bias = {{"bias", random_tensor({4}, 23)}};
  const Tensor generator = tensor({0, -1.5, 0, 0}, {2, 2}, DType::f64);
  require_allclose(orbit_tangent(translation_symmetry("bias"), generator, bias).at("bias"),
                   std::vector<double>(4, -1.5), 0, 0);
}

TEST_CASE("act and orbit_tangent: gradcheck and gradgradcheck in g and theta", "[weight_symmetry]") {
  const std::int64_t n = 2;
  for (GroupFactor factor : kMatrixFactors) {
    INFO(to_string(factor));
    const WeightSymmetry s = custom(n, {{"w", 1, factor}, {"b", 0, factor}});
    const auto acted = [&](const TensorList& in) {
      const ParameterMap moved = act(s, in[0], {{"w", in[1]}, {"b", in[2]}});
      return concat({reshape(moved.at("w"), {-1}), moved.at("b")});
    };
    const auto tangent = [&](const TensorList& in) {
      const ParameterMap moved = orbit_tangent(s, in[0], {{"w", in[1]}, {"b", in[2]}});
      return concat({reshape(moved.at("w"), {-1}), moved.at("b")});
    };
    const TensorList inputs = {(random_invertible(n, 30) + 0.0).detach().requires_grad_(),
                               random_tensor({3, 2}, 31).requires_grad_(), random_tensor({2}, 32).requires_grad_()};
    REQUIRE_GRADCHECK(acted, inputs);
    REQUIRE_GRADGRADCHECK(acted, inputs);
    REQUIRE_GRADCHECK(tangent, inputs);
  }
  const auto shifted = [&](const TensorList& in) { return act(translation_symmetry("b"), in[0], {{"b", in[1]}}).at("b"); };
  REQUIRE_GRADCHECK(shifted, (TensorList{random_tensor({2, 2}, 33).requires_grad_(), random_tensor({3}, 34).requires_grad_()}));
}

TEST_CASE("act: float32 agrees with float64", "[weight_symmetry]") {
  const WeightSymmetry s = custom(4, {{"w", 0, GroupFactor::g}, {"v", 1, GroupFactor::g_inverse_transpose}});
  const Tensor g = random_invertible(4, 40);
  const ParameterMap theta = {{"w", random_tensor({4, 6}, 41)}, {"v", random_tensor({5, 4}, 42)}};
  const ParameterMap theta32 = {{"w", to_dtype(theta.at("w"), DType::f32)}, {"v", to_dtype(theta.at("v"), DType::f32)}};
  const ParameterMap exact = act(s, g, theta), single = act(s, to_dtype(g, DType::f32), theta32);
  for (const auto& [name, value] : exact) {
    REQUIRE(single.at(name).dtype() == DType::f32);
    require_allclose(single.at(name), value, 1e-5, 1e-6);
  }
}

TEST_CASE("apply writes the action into the model without a graph", "[weight_symmetry]") {
  nn::manual_seed(50);
  nn::Linear layer(3, 4, true, DType::f64);
  const Tensor weight_before = layer.weight.detach() * 1.0;
  const void* storage = layer.weight.raw_data();
  const WeightSymmetry s = custom(4, {{"weight", 0, GroupFactor::g}, {"bias", 0, GroupFactor::g}});
  const Tensor g = random_invertible(4, 51).requires_grad_();
  apply(s, g, layer);
  REQUIRE(layer.weight.raw_data() == storage);  // written in place
  REQUIRE(layer.weight.is_leaf());
  REQUIRE(layer.weight.requires_grad());
  require_allclose(layer.weight, matmul(g, weight_before).detach(), 1e-14, 1e-15);
  // g then g^-1 is the identity.
  const Tensor g_inverse = from_vector(inverse_reference(g.to_vector(), 4), {4, 4});
  apply(s, g_inverse, layer);
  require_allclose(layer.weight, weight_before, 1e-13, 1e-14);
}

TEST_CASE("WeightSymmetry: to_string and to_json", "[weight_symmetry]") {
  REQUIRE(to_string(GroupFactor::g) == "g");
  REQUIRE(to_string(GroupFactor::g_transpose) == "g^T");
  REQUIRE(to_string(GroupFactor::g_inverse) == "g^-1");
  REQUIRE(to_string(GroupFactor::g_inverse_transpose) == "g^-T");
  REQUIRE(to_string(GroupFactor::translation) == "translation");
  REQUIRE(to_string(ModeRequirement::any) == "any");
  REQUIRE(to_string(ModeRequirement::eval) == "eval");
  REQUIRE(to_string(ModeRequirement::train) == "train");
  WeightSymmetry s = custom(3, {{"0.weight", 0, GroupFactor::g}, {"2.weight", 1, GroupFactor::g_inverse_transpose}});
  s.notes = {"a note"};
  s.mode = ModeRequirement::eval;
  const nlohmann::json j = s.to_json();
  REQUIRE(j.at("name") == "test");
  REQUIRE(j.at("kind") == "custom");
  REQUIRE(j.at("algebra") == nlohmann::json{{"name", "gl(3)"}, {"n", 3}, {"dim", 9}});
  REQUIRE(j.at("actions").size() == 2);
  REQUIRE(j.at("actions")[1] == nlohmann::json{{"parameter", "2.weight"}, {"axis", 1}, {"factor", "g^-T"}});
  REQUIRE(j.at("mode") == "eval");
  REQUIRE(j.at("notes") == nlohmann::json::array({"a note"}));
}

TEST_CASE("act, orbit_tangent, apply: bad inputs name the parameter and the shapes", "[weight_symmetry]") {
  const ParameterMap theta = {{"w", random_tensor({3, 5}, 60)}, {"s", scalar(1.0, DType::f64)}};
  const Tensor g = random_invertible(3, 61);
  const auto act_with = [&](std::vector<AxisAction> actions, const Tensor& m) {
    return act(custom(3, std::move(actions)), m, theta);
  };
  REQUIRE_THROWS_WITH(act_with({{"w", 0, GroupFactor::g}}, zeros({3, 4}, DType::f64)),
                      Catch::Contains("act(test)") && Catch::Contains("[3, 4]") && Catch::Contains("gl(3)"));
  REQUIRE_THROWS_WITH(act_with({{"w", 0, GroupFactor::g}}, random_invertible(4, 62)),
                      Catch::Contains("[4, 4]") && Catch::Contains("[3, 3]"));
  REQUIRE_THROWS_WITH(act_with({{"w", 0, GroupFactor::g}}, Tensor()), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(act_with({{"v", 0, GroupFactor::g}}, g), Catch::Contains("'v'"));
  REQUIRE_THROWS_WITH(act_with({{"w", 2, GroupFactor::g}}, g),
                      Catch::Contains("axis 2") && Catch::Contains("'w'") && Catch::Contains("[3, 5]"));
  REQUIRE_THROWS_WITH(act_with({{"w", -3, GroupFactor::g}}, g), Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(act_with({{"s", 0, GroupFactor::g}}, g), Catch::Contains("'s'") && Catch::Contains("out of range"));
  REQUIRE_THROWS_WITH(act_with({{"w", 1, GroupFactor::g}}, g),
                      Catch::Contains("axis 1") && Catch::Contains("length 5") && Catch::Contains("3 channels"));
  REQUIRE_THROWS_WITH(act_with({{"w", 0, GroupFactor::g}}, to_dtype(g, DType::f32)),
                      Catch::Contains("'w'") && Catch::Contains("float64") && Catch::Contains("float32"));
  REQUIRE_THROWS_WITH(act_with({{"w", 0, GroupFactor::translation}}, g),
                      Catch::Contains("translation") && Catch::Contains("[2, 2]"));
  REQUIRE_THROWS_WITH(act_with({{"w", 0, GroupFactor::g_inverse}}, zeros({3, 3}, DType::f64)),
                      Catch::Contains("'w'") && Catch::Contains("g^-1"));
  REQUIRE_THROWS_WITH(orbit_tangent(custom(3, {{"w", 1, GroupFactor::g}}), g, theta),
                      Catch::Contains("orbit_tangent(test)") && Catch::Contains("length 5"));
  nn::Linear layer(5, 3, true, DType::f64);
  const Tensor before = layer.weight.detach() * 1.0;
  REQUIRE_THROWS_WITH(apply(custom(3, {{"weight", 0, GroupFactor::g}, {"bias", 0, GroupFactor::g}, {"nope", 0, GroupFactor::g}}), g, layer),
                      Catch::Contains("'nope'"));
  require_allclose(layer.weight, before, 0, 0);  // nothing was written
}

TEST_CASE("Noether building block: d/dt f(act(exp(t xi))) at 0 equals <grad f, orbit_tangent>",
          "[weight_symmetry][parameter_scope]") {
  nn::manual_seed(70);
  nn::Sequential model(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(3, 4, true, DType::f64), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(4, 2, true, DType::f64)});
  const Tensor x = random_tensor({10, 3}, 71) * 3.0;
  const auto f = [&] { return sum(square(model(x))); };
  backward(f());
  ParameterMap gradients;
  for (const auto& [name, p] : model.named_parameters()) gradients.emplace(name, p.grad());

  // Across the ReLU: GL(4) is no symmetry (a non-zero derivative); positive diagonals are.
  const std::vector<AxisAction> actions = {{"0.weight", 0, GroupFactor::g}, {"0.bias", 0, GroupFactor::g},
                                           {"2.weight", 1, GroupFactor::g_inverse_transpose}};
  WeightSymmetry pair = custom(4, actions);
  WeightSymmetry rescaling = pair;
  rescaling.algebra = LieAlgebra::diagonal(4);
  const Tensor general = random_tensor({4, 4}, 72);
  const Tensor diagonal = eye(4, -1, DType::f64) * random_tensor({1, 4}, 73);

  for (const auto& [s, xi, invariant] : {std::tuple{pair, general, false}, std::tuple{rescaling, diagonal, true}}) {
    INFO(s.algebra.name());
    // g = I + t xi has the derivative xi at t = 0, as exp(t xi) does.
    const Tensor t = scalar(0.0, DType::f64).requires_grad_();
    const Tensor g = eye(4, -1, DType::f64) + t * xi;
    const ParameterMap moved = act(s, g, nn::detached_parameters(model, false));
    const double by_autodiff = nn::with_parameters(model, moved, [&] { return grad({f()}, {t})[0].item(); });

    double by_tangent = 0;
    for (const auto& [name, tangent] : orbit_tangent(s, xi, parameter_map(model)))
      by_tangent += sum(gradients.at(name) * tangent).item();
    const double scale = std::abs(by_tangent) + 1e-300;
    INFO("autodiff " << by_autodiff << ", <grad, tangent> " << by_tangent);
    if (invariant) {
      REQUIRE(std::abs(by_autodiff) < 1e-12);
      REQUIRE(std::abs(by_tangent) < 1e-12);
    } else {
      REQUIRE(std::abs(by_tangent) > 1e-3);
      REQUIRE(std::abs(by_autodiff - by_tangent) <= 1e-12 * scale);
    }
  }
}
