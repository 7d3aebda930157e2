// Symmetry teleportation: on small float64 networks with random data, the teleport keeps
// the loss and the network's outputs, moves the parameters exactly as exp(xi) says
// (checked by hand for ReLU rescaling), and raises the gradient norm; the objective's
// gradient with respect to the algebra coordinates (a double backward through act, expm
// and the parameter substitution) matches central differences, for diagonal and gl(n)
// algebras; zero steps is the identity; a "symmetry" that changes the loss is detected
// and undone (negative control); the condition-number cap holds; bad inputs throw.
#include "symmetry/teleport.hpp"

#include <cmath>
#include <stdexcept>

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/linear.hpp"
#include "nn/loss.hpp"
#include "symmetry/builtin_symmetries.hpp"
#include "symmetry/expm.hpp"
#include "symmetry/svd.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::symmetry;
using symgrad::testing::require_allclose;

namespace {

using ModulePtr = std::shared_ptr<nn::Module>;

// 4 -> 6 -> 5 -> 3 with ReLU: two ReLU rescaling symmetries, diagonal(6) and diagonal(5).
std::shared_ptr<nn::Sequential> relu_mlp(std::uint64_t seed, DType dtype = DType::f64) {
  nn::manual_seed(seed);
  return std::make_shared<nn::Sequential>(std::vector<ModulePtr>{
      std::make_shared<nn::Linear>(4, 6, true, dtype), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(6, 5, true, dtype), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(5, 3, true, dtype)});
}

// 3 -> 4 -> 4 -> tanh -> 2: the first two layers form a linear pair, gl(4).
std::shared_ptr<nn::Sequential> linear_pair_mlp(std::uint64_t seed) {
  nn::manual_seed(seed);
  return std::make_shared<nn::Sequential>(std::vector<ModulePtr>{
      std::make_shared<nn::Linear>(3, 4, true, DType::f64), std::make_shared<nn::Linear>(4, 4, true, DType::f64),
      std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(4, 2, true, DType::f64)});
}

std::vector<WeightSymmetry> of_kind(const nn::Module& model, const std::string& kind) {
  std::vector<WeightSymmetry> out;
  for (const WeightSymmetry& s : symmetries_of(model))
    if (s.kind == kind) out.push_back(s);
  return out;
}

Tensor batch(const Shape& shape, std::uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return uniform(shape, -2, 2, gen, dtype);
}

std::vector<std::int64_t> labels(std::int64_t count, std::int64_t classes, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < count; ++i) out.push_back(static_cast<std::int64_t>(gen.below(classes)));
  return out;
}

Tensor copy_of(const Tensor& t) {
  NoGradGuard no_grad;
  Tensor out = zeros_like(t);
  copy_(out, t);
  return out;
}

Tensor output_of(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  return copy_of(model(x));
}

// ||grad_theta L|| by an ordinary backward into .grad: independent of teleport's grad().
double gradient_norm(nn::Module& model, const Tensor& x, const LossFn& loss) {
  model.zero_grad();
  backward(loss(model(x)));
  double total = 0.0;
  for (const Tensor& p : model.parameters())
    for (double v : p.grad().to_vector()) total += v * v;
  model.zero_grad();
  return std::sqrt(total);
}

double relative_difference(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return diff / scale;
}

}  // namespace

TEST_CASE("teleport keeps the loss and the outputs, moves the weights by exp(xi) and raises the gradient norm") {
  auto model = relu_mlp(3);
  const Tensor x = batch({32, 4}, 11);
  const std::vector<std::int64_t> y = labels(32, 3, 12);
  const LossFn loss = [&](const Tensor& out) { return nn::cross_entropy(out, y); };
  const std::vector<WeightSymmetry> relu = of_kind(*model, "relu_rescaling");
  REQUIRE(relu.size() == 2);

  const Tensor out_before = output_of(*model, x);
  const double loss_before = nn::cross_entropy(out_before, y).item();
  const double grad_before = gradient_norm(*model, x, loss);
  std::map<std::string, Tensor> old;
  for (const auto& [name, p] : model->named_parameters()) old.emplace(name, copy_of(p));

  const TeleportReport report = teleport(*model, relu, x, loss, {.steps = 8, .step_size = 0.5, .max_step_norm = 0.5});
  INFO(report.note);
  REQUIRE(report.applied);
  REQUIRE(report.steps_taken > 0);

  // Function and loss unchanged (float64 rounding, cond(g) <= 100).
  const Tensor out_after = output_of(*model, x);
  CHECK(relative_difference(out_after, out_before) <= 1e-12);
  const double loss_after = nn::cross_entropy(out_after, y).item();
  CHECK(std::abs(loss_after - loss_before) <= 1e-10 * loss_before);
  CHECK(report.loss_relative_change <= 1e-10);
  CHECK(report.loss_before == Approx(loss_before).epsilon(1e-14));

  // The gradient is steeper, and the report says by how much.
  const double grad_after = gradient_norm(*model, x, loss);
  CHECK(grad_after > 1.05 * grad_before);
  CHECK(report.grad_norm_before == Approx(grad_before).epsilon(1e-12));
  CHECK(report.grad_norm_after == Approx(grad_after).epsilon(1e-12));
  // J grows at every accepted step.
  REQUIRE(report.objective.size() == static_cast<std::size_t>(report.steps_taken) + 1);
  for (std::size_t i = 1; i < report.objective.size(); ++i) CHECK(report.objective[i] > report.objective[i - 1]);
  CHECK(report.objective.back() == Approx(grad_after * grad_after).epsilon(1e-10));

  // The weights moved as a ReLU rescaling by a = exp(xi) says, by hand: rows of layer 0
  // (and its bias) times a, columns of layer 2 divided by a; likewise b = exp(xi_2) for
  // layers 2 and 4. cond(diag(a)) = max a / min a.
  const std::vector<double> a_log = report.coordinates[0].to_vector(), b_log = report.coordinates[1].to_vector();
  REQUIRE(a_log.size() == 6);
  REQUIRE(b_log.size() == 5);
  const auto cond_of = [](const std::vector<double>& logs) {
    return std::exp(*std::max_element(logs.begin(), logs.end()) - *std::min_element(logs.begin(), logs.end()));
  };
  CHECK(report.condition_numbers[0] == Approx(cond_of(a_log)).epsilon(1e-10));
  CHECK(report.condition_numbers[1] == Approx(cond_of(b_log)).epsilon(1e-10));
  CHECK(cond_of(a_log) > 1.0);  // it really moved
  const auto params = parameter_map(*model);
  const std::vector<double> w0 = old.at("0.weight").to_vector(), b0 = old.at("0.bias").to_vector(),
                            w2 = old.at("2.weight").to_vector(), b2 = old.at("2.bias").to_vector(),
                            w4 = old.at("4.weight").to_vector();
  std::vector<double> w0_expected(w0.size()), b0_expected(6), w2_expected(w2.size()), b2_expected(5),
      w4_expected(w4.size());
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 4; ++j) w0_expected[i * 4 + j] = std::exp(a_log[i]) * w0[i * 4 + j];
    b0_expected[i] = std::exp(a_log[i]) * b0[i];
  }
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 6; ++j) w2_expected[i * 6 + j] = std::exp(b_log[i]) * w2[i * 6 + j] / std::exp(a_log[j]);
    b2_expected[i] = std::exp(b_log[i]) * b2[i];
  }
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) w4_expected[i * 5 + j] = w4[i * 5 + j] / std::exp(b_log[j]);
  require_allclose(params.at("0.weight"), w0_expected, 1e-13, 1e-15);
  require_allclose(params.at("0.bias"), b0_expected, 1e-13, 1e-15);
  require_allclose(params.at("2.weight"), w2_expected, 1e-13, 1e-15);
  require_allclose(params.at("2.bias"), b2_expected, 1e-13, 1e-15);
  require_allclose(params.at("4.weight"), w4_expected, 1e-13, 1e-15);
  require_allclose(params.at("4.bias"), old.at("4.bias"), 0, 0);  // untouched, bit for bit
}

TEST_CASE("teleport objective: value is ||grad L||^2 and dJ/dxi matches central differences") {
  const auto check_against_differences = [](nn::Module& model, const std::vector<WeightSymmetry>& symmetries,
                                            const Tensor& x, const LossFn& loss, std::uint64_t seed) {
    // At xi = 0 the objective is the plain squared gradient norm.
    std::vector<Tensor> zero;
    for (const WeightSymmetry& s : symmetries) zero.push_back(zeros({s.algebra.dim()}, DType::f64));
    const double g0 = gradient_norm(model, x, loss);
    CHECK(teleport_objective(model, symmetries, zero, x, loss, false).value == Approx(g0 * g0).epsilon(1e-12));

    // A generic point off the identity, so that expm's derivative is not the trivial one.
    Generator gen(seed);
    std::vector<Tensor> xi;
    for (const WeightSymmetry& s : symmetries) xi.push_back(uniform({s.algebra.dim()}, -0.3, 0.3, gen, DType::f64));
    const TeleportObjective at = teleport_objective(model, symmetries, xi, x, loss, true);
    REQUIRE(at.gradient.size() == symmetries.size());
    const double eps = 1e-5;
    double largest = 0.0;
    for (std::size_t k = 0; k < xi.size(); ++k) {
      REQUIRE(at.gradient[k].shape() == xi[k].shape());
      const std::vector<double> analytic = at.gradient[k].to_vector();
      for (std::int64_t i = 0; i < xi[k].numel(); ++i) {
        const auto shifted = [&](double h) {
          std::vector<Tensor> moved = xi;
          std::vector<double> values = xi[k].to_vector();
          values[static_cast<std::size_t>(i)] += h;
          moved[k] = from_vector(values, xi[k].shape(), DType::f64);
          return teleport_objective(model, symmetries, moved, x, loss, false).value;
        };
        const double numeric = (shifted(eps) - shifted(-eps)) / (2 * eps);
        largest = std::max(largest, std::abs(numeric));
        INFO("symmetry " << k << " coordinate " << i << ": analytic " << analytic[static_cast<std::size_t>(i)]
                         << " numeric " << numeric);
        CHECK(std::abs(analytic[static_cast<std::size_t>(i)] - numeric) <= 1e-6 * (1 + std::abs(numeric)));
      }
    }
    CHECK(largest > 1e-3);  // the check is not vacuous
  };

  SECTION("ReLU rescaling (diagonal algebras)") {
    auto model = relu_mlp(5);
    const Tensor x = batch({16, 4}, 21);
    const std::vector<std::int64_t> y = labels(16, 3, 22);
    check_against_differences(*model, of_kind(*model, "relu_rescaling"), x,
                              [&](const Tensor& out) { return nn::cross_entropy(out, y); }, 23);
  }
  SECTION("a linear pair (gl(4): g and g^-T, through expm and solve)") {
    auto model = linear_pair_mlp(6);
    const std::vector<WeightSymmetry> pair = of_kind(*model, "linear_pair");
    REQUIRE(pair.size() == 1);
    REQUIRE(pair[0].algebra.dim() == 16);
    const Tensor x = batch({12, 3}, 31);
    const Tensor target = batch({12, 2}, 32);
    check_against_differences(*model, pair, x, [&](const Tensor& out) { return nn::mse_loss(out, target); }, 33);
  }
}

TEST_CASE("teleport on a linear pair keeps the function and respects the condition-number cap") {
  auto model = linear_pair_mlp(8);
  const std::vector<WeightSymmetry> pair = of_kind(*model, "linear_pair");
  const Tensor x = batch({20, 3}, 41);
  const Tensor target = batch({20, 2}, 42);
  const LossFn loss = [&](const Tensor& out) { return nn::mse_loss(out, target); };
  const Tensor out_before = output_of(*model, x);
  const double grad_before = gradient_norm(*model, x, loss);

  // Large steps: without the cap the ascent would run off towards singular g.
  const TeleportReport report =
      teleport(*model, pair, x, loss, {.steps = 20, .step_size = 10.0, .max_condition_number = 4.0});
  INFO(report.note);
  REQUIRE(report.applied);
  CHECK(report.condition_numbers[0] <= 4.0);
  const Tensor g = expm(pair[0].algebra.element(report.coordinates[0]));
  CHECK(condition_number_2(g) == Approx(report.condition_numbers[0]).epsilon(1e-12));
  CHECK(relative_difference(output_of(*model, x), out_before) <= 1e-12);
  CHECK(report.loss_relative_change <= 1e-10);
  CHECK(gradient_norm(*model, x, loss) > grad_before);
}

TEST_CASE("a zero-step teleport is the identity") {
  auto model = relu_mlp(4);
  const Tensor x = batch({8, 4}, 51);
  const std::vector<std::int64_t> y = labels(8, 3, 52);
  const LossFn loss = [&](const Tensor& out) { return nn::cross_entropy(out, y); };
  std::vector<Tensor> old;
  for (const Tensor& p : model->parameters()) old.push_back(copy_of(p));

  const TeleportReport report = teleport(*model, of_kind(*model, "relu_rescaling"), x, loss, {.steps = 0});
  CHECK_FALSE(report.applied);
  CHECK(report.steps_taken == 0);
  CHECK(report.steps_rejected == 0);
  CHECK(report.loss_after == report.loss_before);
  CHECK(report.grad_norm_after == report.grad_norm_before);
  CHECK(report.objective.size() == 1);
  for (double c : report.condition_numbers) CHECK(c == Approx(1.0).epsilon(1e-14));
  const auto params = model->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) require_allclose(params[i], old[i], 0, 0);
}

TEST_CASE("a transformation that is not a symmetry is caught and undone (negative control)") {
  auto model = relu_mlp(9);
  const Tensor x = batch({16, 4}, 61);
  const std::vector<std::int64_t> y = labels(16, 3, 62);
  const LossFn loss = [&](const Tensor& out) { return nn::cross_entropy(out, y); };
  // Scales the first layer's units without compensating in the second: changes f.
  const WeightSymmetry broken{.name = "uncompensated scaling",
                              .kind = "custom",
                              .algebra = LieAlgebra::diagonal(6),
                              .actions = {{"0.weight", 0, GroupFactor::g}, {"0.bias", 0, GroupFactor::g}},
                              .mode = ModeRequirement::any,
                              .notes = {}};
  std::vector<Tensor> old;
  for (const Tensor& p : model->parameters()) old.push_back(copy_of(p));

  const TeleportReport report = teleport(*model, broken, x, loss, {.steps = 3, .step_size = 0.1});
  INFO(report.note);
  REQUIRE(report.steps_taken > 0);
  CHECK_FALSE(report.applied);
  CHECK(report.loss_relative_change > 1e-6);
  CHECK(report.note.find("not applied") != std::string::npos);
  const auto params = model->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) require_allclose(params[i], old[i], 0, 0);
}

TEST_CASE("teleport in float32 keeps the loss to about rounding") {
  auto model = relu_mlp(10, DType::f32);
  const Tensor x = batch({64, 4}, 71, DType::f32);
  const std::vector<std::int64_t> y = labels(64, 3, 72);
  const LossFn loss = [&](const Tensor& out) { return nn::cross_entropy(out, y); };
  const TeleportReport report =
      teleport(*model, of_kind(*model, "relu_rescaling"), x, loss, {.steps = 5, .step_size = 0.5, .max_step_norm = 0.5});
  INFO(report.note);
  REQUIRE(report.applied);
  CHECK(report.loss_relative_change <= 1e-6);
  CHECK(report.grad_norm_after > report.grad_norm_before);
}

TEST_CASE("teleport rejects bad input and leaves the model alone") {
  auto model = relu_mlp(12);
  const Tensor x = batch({8, 4}, 81);
  const std::vector<std::int64_t> y = labels(8, 3, 82);
  const LossFn loss = [&](const Tensor& out) { return nn::cross_entropy(out, y); };
  const std::vector<WeightSymmetry> relu = of_kind(*model, "relu_rescaling");
  std::vector<Tensor> old;
  for (const Tensor& p : model->parameters()) old.push_back(copy_of(p));

  CHECK_THROWS_AS(teleport(*model, std::vector<WeightSymmetry>{}, x, loss), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, Tensor(), loss), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, x, loss, {.steps = -1}), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, x, loss, {.step_size = 0.0}), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, x, loss, {.step_size = std::nan("")}), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, x, loss, {.max_step_norm = -1.0}), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, x, loss, {.backtrack_factor = 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, x, loss, {.max_condition_number = 0.5}), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, x, loss, {.max_relative_loss_change = -1.0}), std::invalid_argument);
  // The loss must be a scalar with a graph.
  CHECK_THROWS_AS(teleport(*model, relu, x, [&](const Tensor& out) { return out; }), std::invalid_argument);
  CHECK_THROWS_AS(teleport(*model, relu, x, [&](const Tensor& out) { return nn::cross_entropy(out.detach(), y); }),
                  std::invalid_argument);
  // A symmetry that names a parameter the model does not have (act's error).
  WeightSymmetry stranger = relu[0];
  stranger.actions[0].parameter = "7.weight";
  CHECK_THROWS_WITH(teleport(*model, stranger, x, loss), Catch::Contains("7.weight"));
  // A symmetry that needs training-mode BatchNorm, on a model in eval mode.
  WeightSymmetry needs_train = relu[0];
  needs_train.mode = ModeRequirement::train;
  model->eval();
  CHECK_THROWS_WITH(teleport(*model, needs_train, x, loss), Catch::Contains("eval mode"));
  model->train();
  // A default-constructed symmetry has no algebra.
  CHECK_THROWS_AS(teleport(*model, WeightSymmetry{}, x, loss), std::invalid_argument);
  // teleport_objective: coordinates must match the algebras.
  CHECK_THROWS_AS(teleport_objective(*model, relu, {zeros({6}, DType::f64)}, x, loss), std::invalid_argument);
  CHECK_THROWS_WITH(teleport_objective(*model, relu, {zeros({5}, DType::f64), zeros({5}, DType::f64)}, x, loss),
                    Catch::Contains("[6]"));
  CHECK_THROWS_AS(teleport_objective(*model, relu, {zeros({6}), zeros({5})}, x, loss), std::invalid_argument);

  const auto params = model->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) require_allclose(params[i], old[i], 0, 0);
}
