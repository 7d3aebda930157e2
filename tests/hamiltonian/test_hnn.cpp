// HamiltonianNN and its baseline FieldMLP (pde/hamiltonian/hnn.hpp), and the training loop
// fit_adam (fit.hpp): the HNN's field is the symplectic gradient of its own H (against
// central differences of hamiltonian()), the field's loss is differentiable in the weights
// and in the inputs to second order (gradcheck / gradgradcheck in float64), a few Adam steps
// lower the field loss on the spring, and bad inputs throw.
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/init.hpp"
#include "pde/hamiltonian/fit.hpp"
#include "pde/hamiltonian/hnn.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;

namespace {

MlpOptions small_mlp(DType dtype, std::vector<std::int64_t> hidden = {8, 8}) {
  MlpOptions options;
  options.hidden = std::move(hidden);
  options.dtype = dtype;
  return options;
}

Tensor random_states(std::int64_t batch, std::int64_t dof, std::uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return uniform({batch, 2 * dof}, -1.5, 1.5, gen, dtype);
}

Tensor field_loss(const Tensor& predicted, const Tensor& target) { return mean(square(predicted - target)); }

// The spring H = q^2 + p^2: its field (2p, -2q), written out by hand.
Tensor spring_field(const Tensor& x) {
  const Tensor q = narrow(x, 1, 0, 1), p = narrow(x, 1, 1, 1);
  return concat({2.0 * p, -2.0 * q}, 1);
}

}  // namespace

TEST_CASE("HamiltonianNN: the field is (dH/dp, -dH/dq) of its own H, by central differences", "[hnn]") {
  for (std::int64_t dof : {1, 2}) {
    nn::manual_seed(11 + static_cast<std::uint64_t>(dof));
    HamiltonianNN model(dof, small_mlp(DType::f64, {16, 16}));
    const Tensor x = random_states(5, dof, 3);
    const Tensor field = model(x);
    REQUIRE(field.shape() == Shape{5, 2 * dof});

    // Central differences of H in each coordinate, row by row (plain loops).
    NoGradGuard no_grad;
    const double eps = 1e-6;
    const std::vector<double> base = x.to_vector();
    std::vector<double> expected(base.size());
    for (std::int64_t j = 0; j < 2 * dof; ++j) {
      std::vector<double> plus = base, minus = base;
      for (std::int64_t row = 0; row < 5; ++row) {
        plus[row * 2 * dof + j] += eps;
        minus[row * 2 * dof + j] -= eps;
      }
      const std::vector<double> h_plus = model.hamiltonian(from_vector(plus, x.shape())).to_vector();
      const std::vector<double> h_minus = model.hamiltonian(from_vector(minus, x.shape())).to_vector();
      for (std::int64_t row = 0; row < 5; ++row) {
        const double dh = (h_plus[row] - h_minus[row]) / (2 * eps);
        // dH/dq_i is the field's column n + i with a minus sign; dH/dp_i is column i.
        const bool is_position = j < dof;
        const std::int64_t column = is_position ? j + dof : j - dof;
        expected[row * 2 * dof + column] = is_position ? -dh : dh;
      }
    }
    testing::require_allclose(field, expected, 1e-6, 1e-8);
  }
}

TEST_CASE("HamiltonianNN: hamiltonian() is one value per state", "[hnn]") {
  HamiltonianNN model(2, small_mlp(DType::f64));
  const Tensor x = random_states(7, 2, 5);
  const Tensor h = model.hamiltonian(x);
  REQUIRE(h.shape() == Shape{7});
  // Row 3 alone gives the same H as inside the batch: the rows do not mix.
  const Tensor alone = model.hamiltonian(narrow(x, 0, 3, 1));
  REQUIRE(alone.item() == Approx(h.to_vector()[3]).epsilon(1e-14));
}

TEST_CASE("HamiltonianNN: the field loss's gradient in the weights is right (double backward)", "[hnn]") {
  nn::manual_seed(21);
  HamiltonianNN model(1, small_mlp(DType::f64, {6, 5}));
  const Tensor x = random_states(4, 1, 7);
  const Tensor target = spring_field(x);
  const std::vector<Tensor> weights = model.parameters();
  // gradcheck perturbs the parameters in place, so the function reads them through the model.
  auto loss_of_weights = [&](const TensorList&) { return field_loss(model(x), target); };
  REQUIRE_GRADCHECK(loss_of_weights, weights);
}

TEST_CASE("HamiltonianNN: gradgradcheck of the field in the inputs and the weights", "[hnn]") {
  nn::manual_seed(31);
  HamiltonianNN model(1, small_mlp(DType::f64, {5, 4}));
  Tensor x = random_states(3, 1, 9).requires_grad_();
  TensorList inputs = {x};
  for (const Tensor& w : model.parameters()) inputs.push_back(w);
  // x requires grad, so the model differentiates with respect to x itself and keeps the
  // field differentiable in x: the path a backpropagated rollout takes.
  auto field_of = [&](const TensorList& xs) { return model(xs[0]); };
  REQUIRE_GRADCHECK(field_of, inputs);
  REQUIRE_GRADGRADCHECK(field_of, inputs);
}

TEST_CASE("HamiltonianNN: evaluated without grad mode, the field is a plain tensor with the same values", "[hnn]") {
  nn::manual_seed(41);
  HamiltonianNN model(2, small_mlp(DType::f64));
  const Tensor x = random_states(6, 2, 13);
  const Tensor recorded = model(x);
  REQUIRE(recorded.requires_grad());  // through the weights
  Tensor plain;
  {
    NoGradGuard no_grad;
    plain = model.field()(x);
  }
  REQUIRE_FALSE(plain.requires_grad());
  testing::require_allclose(plain, recorded.to_vector(), 0, 0);
  REQUIRE_FALSE(x.requires_grad());  // the caller's tensor is left as it was
}

TEST_CASE("HamiltonianNN and FieldMLP: the weights start orthogonal, the output layer has no bias", "[hnn]") {
  nn::manual_seed(51);
  HamiltonianNN model(1, small_mlp(DType::f64, {6, 6}));
  const auto named = model.named_parameters();
  REQUIRE(named.size() == 5);  // two hidden layers with bias, the output without
  REQUIRE(named.back().first == "mlp.4.weight");
  const Tensor w = named[2].second;  // mlp.2.weight [6, 6]
  REQUIRE(w.shape() == Shape{6, 6});
  testing::require_allclose(matmul(w, w, false, true).detach(), eye(6, 6, DType::f64), 1e-12, 1e-12);
}

TEST_CASE("FieldMLP: the field has the state's shape and float32 models work", "[hnn]") {
  nn::manual_seed(61);
  FieldMLP baseline(2, small_mlp(DType::f32));
  const Tensor x = random_states(9, 2, 17, DType::f32);
  const Tensor f = baseline(x);
  REQUIRE(f.shape() == Shape{9, 4});
  REQUIRE(f.dtype() == DType::f32);
  REQUIRE(baseline.field()(x).shape() == Shape{9, 4});
  REQUIRE(baseline.extra_repr() == "dof 2, 4 -> 8 -> 8 -> 4, tanh");
}

TEST_CASE("HamiltonianNN: float32 agrees with the same weights in float64", "[hnn]") {
  nn::manual_seed(71);
  HamiltonianNN model(1, small_mlp(DType::f32, {32, 32}));
  const Tensor x32 = random_states(8, 1, 19, DType::f32);
  const Tensor field32 = model(x32);
  REQUIRE(field32.dtype() == DType::f32);
  model.to(DType::f64);
  const Tensor field64 = model(to_dtype(x32, DType::f64));
  testing::require_allclose(field32, field64.to_vector(), 1e-4, 1e-5);
}

TEST_CASE("fit_adam: a few Adam steps lower the HNN's field loss on the spring", "[hnn][fit]") {
  nn::manual_seed(81);
  HamiltonianNN model(1, small_mlp(DType::f32, {32, 32}));
  const Tensor x = random_states(64, 1, 23, DType::f32);
  const Tensor target = spring_field(x);
  auto loss = [&](std::int64_t) { return field_loss(model(x), target); };
  const double before = loss(0).item();
  FitOptions options;
  options.steps = 30;
  options.lr = 1e-2;
  options.log_every = 10;
  options.progress = false;
  const FitHistory history = fit_adam(model, loss, {}, options);
  REQUIRE(history.step == std::vector<std::int64_t>{10, 20, 30});
  REQUIRE(std::isnan(history.final_test_loss()));
  REQUIRE(history.final_train_loss() < 0.5 * before);
  REQUIRE(loss(0).item() < 0.5 * before);
  REQUIRE(history.to_json()["test_loss"][0].is_null());
}

TEST_CASE("fit_adam: history at every log_every steps and the last, test metric and schedule", "[fit]") {
  nn::manual_seed(91);
  FieldMLP model(1, small_mlp(DType::f64, {4}));
  const Tensor x = random_states(16, 1, 29);
  const Tensor target = spring_field(x);
  std::vector<double> rates;
  FitOptions options;
  options.steps = 7;
  options.log_every = 3;
  options.progress = false;
  options.lr_at = [&](std::int64_t step) {
    rates.push_back(1e-3 / (1 + static_cast<double>(step)));
    return rates.back();
  };
  int tests = 0;
  const FitHistory history = fit_adam(
      model, [&](std::int64_t) { return field_loss(model(x), target); },
      [&] {
        ++tests;
        return 0.25;
      },
      options);
  REQUIRE(history.step == std::vector<std::int64_t>{3, 6, 7});
  REQUIRE(tests == 3);
  REQUIRE(history.final_test_loss() == 0.25);
  REQUIRE(history.train_loss.size() == 3);
  REQUIRE(rates.size() >= 7);  // asked once per step
}

TEST_CASE("fit_adam: a non-finite loss stops the run naming the step", "[fit]") {
  FieldMLP model(1, small_mlp(DType::f64, {4}));
  const Tensor x = random_states(4, 1, 31);
  FitOptions options;
  options.steps = 10;
  options.progress = false;
  auto loss = [&](std::int64_t step) {
    const Tensor value = mean(square(model(x)));
    return step == 4 ? value * std::numeric_limits<double>::quiet_NaN() : value;
  };
  REQUIRE_THROWS_WITH(fit_adam(model, loss, {}, options), Catch::Contains("at step 4"));
  options.steps = 0;
  REQUIRE_THROWS_AS(fit_adam(model, loss, {}, options), std::invalid_argument);
}

TEST_CASE("HamiltonianNN and FieldMLP: bad states and options throw naming the problem", "[hnn]") {
  HamiltonianNN model(1, small_mlp(DType::f64));
  FieldMLP baseline(1, small_mlp(DType::f64));
  const Tensor wide = random_states(4, 2, 37);  // [4, 4] for a dof-1 model
  REQUIRE_THROWS_WITH(model(wide), Catch::Contains("HamiltonianNN::forward") && Catch::Contains("[4, 4]"));
  REQUIRE_THROWS_WITH(model.hamiltonian(wide), Catch::Contains("[batch, 2]"));
  REQUIRE_THROWS_WITH(baseline(wide), Catch::Contains("FieldMLP::forward"));
  REQUIRE_THROWS_AS(model(zeros({2}, DType::f64)), std::invalid_argument);
  REQUIRE_THROWS_WITH(model(random_states(4, 1, 41, DType::f32)), Catch::Contains("float32"));
  REQUIRE_THROWS_AS(model(Tensor()), std::invalid_argument);
  REQUIRE_THROWS_AS(HamiltonianNN(0), std::invalid_argument);
  REQUIRE_THROWS_AS(FieldMLP(1, small_mlp(DType::f64, {})), std::invalid_argument);
  REQUIRE_THROWS_AS(HamiltonianNN(1, small_mlp(DType::f64, {8, 0})), std::invalid_argument);
  REQUIRE_THROWS_WITH(activation_from_name("relu"), Catch::Contains("tanh"));
  REQUIRE(activation_from_name("softplus") == HiddenActivation::softplus);
}
