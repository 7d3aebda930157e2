// The Noether ledger (symmetry/noether.hpp) on small float64 MLPs trained with nn's SGD:
//  (1) per step the charge changes by exactly ((1 - eta lambda)^2 - 1) C + eta^2 S
//      (machine precision);
//  (2) over a fixed time T = eta * steps its drift shrinks linearly as eta -> 0;
//  (3) with weight decay it decays as (1 - eta lambda)^(2k) ~ exp(-2 lambda t);
//  (4) negative control: the gl charge across a ReLU is no symmetry's, and changes at
//      first order in eta.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <memory>

#include "nn/nn.hpp"
#include "symmetry/noether.hpp"

using namespace symgrad;
using namespace symgrad::symmetry;

namespace {

constexpr std::int64_t kIn = 4, kHidden = 5, kClasses = 3, kBatch = 16;

enum class Middle { none, relu, batchnorm_relu };

// Linear(4 -> 5) [BN(5, eps 0, train)] [ReLU] Linear(5 -> 3). BatchNorm's eps breaks the
// scale symmetry at the 1e-5 level (sqrt(a^2 var + eps) != a sqrt(var + eps)), so 0 here.
std::shared_ptr<nn::Sequential> mlp(Middle middle, std::uint64_t seed) {
  nn::manual_seed(seed);
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Linear>(kIn, kHidden, true, DType::f64));
  if (middle == Middle::batchnorm_relu)
    model->push_back(std::make_shared<nn::BatchNorm1d>(kHidden, nn::BatchNormOptions{.eps = 0.0, .dtype = DType::f64}));
  if (middle != Middle::none) model->push_back(std::make_shared<nn::ReLU>());
  model->push_back(std::make_shared<nn::Linear>(kHidden, kClasses, true, DType::f64));
  model->train();
  return model;
}

// Producers (axis 0 by g) and a consumer (axis 1 by g^-T) of the hidden channels.
WeightSymmetry hidden_symmetry(const std::string& name, LieAlgebra algebra, const std::string& producer,
                               const std::string& consumer) {
  return WeightSymmetry{name,
                        "custom",
                        std::move(algebra),
                        {{producer + ".weight", 0, GroupFactor::g},
                         {producer + ".bias", 0, GroupFactor::g},
                         {consumer + ".weight", 1, GroupFactor::g_inverse_transpose}},
                        ModeRequirement::any,
                        {}};
}

// Adding c to every logit leaves softmax (and cross entropy) unchanged.
WeightSymmetry translation_symmetry(const std::string& last) {
  Tensor e01 = zeros({2, 2}, DType::f64);
  e01.data<double>()[1] = 1.0;
  return WeightSymmetry{"softmax translation", "softmax_translation", LieAlgebra::single(e01, "translation"),
                        {{last + ".bias", 0, GroupFactor::translation}}, ModeRequirement::any, {}};
}

struct Data {
  Tensor x;
  std::vector<std::int64_t> labels;
};

Data make_data(std::uint64_t seed) {
  Generator gen(seed);
  Data d{randn({kBatch, kIn}, gen, DType::f64), {}};
  for (std::int64_t i = 0; i < kBatch; ++i) d.labels.push_back(std::int64_t(gen.below(kClasses)));
  return d;
}

// `steps` full-batch steps of nn's SGD (no momentum), each recorded in the ledger.
void train(nn::Sequential& model, NoetherLedger& ledger, const Data& data, double lr, int steps,
           double weight_decay = 0.0) {
  nn::SGD sgd(model.parameters(), {.lr = lr, .weight_decay = weight_decay});
  for (int k = 0; k < steps; ++k) {
    const ParameterMap before = snapshot(model);
    sgd.zero_grad();
    backward(nn::cross_entropy(model(data.x), data.labels));
    const ParameterMap grads = gradients(model);
    sgd.step();
    ledger.record_sgd_step(before, grads, snapshot(model), lr, weight_decay);
  }
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// max over steps of ||measured - predicted|| / charge_scale: the residual in units of
// the charge's own rounding level (relative to |eta^2 S| it grows as 1/eta^2).
double worst_scaled_residual(const NoetherLedger& ledger, std::size_t symmetry) {
  double worst = 0;
  for (const LedgerStep& step : ledger.steps(symmetry)) worst = std::max(worst, step.residual / step.charge_scale);
  return worst;
}

std::vector<double> difference(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d;
  for (std::size_t i = 0; i < a.size(); ++i) d.push_back(a[i] - b[i]);
  return d;
}

}  // namespace

TEST_CASE("noether: charges against plain loops", "[noether]") {
  SECTION("gl pair: W1 W1^T + b1 b1^T - W2^T W2") {
    auto model = mlp(Middle::none, 1);
    const WeightSymmetry s = hidden_symmetry("pair", LieAlgebra::gl(kHidden), "0", "1");
    const ParameterMap theta = parameter_map(*model);
    const std::vector<double> w1 = theta.at("0.weight").to_vector(), b1 = theta.at("0.bias").to_vector(),
                              w2 = theta.at("1.weight").to_vector();
    const std::vector<double> c = charges(s, theta);
    REQUIRE(c.size() == std::size_t(kHidden * kHidden));
    for (std::int64_t i = 0; i < kHidden; ++i) {
      for (std::int64_t j = 0; j < kHidden; ++j) {
        double expected = b1[i] * b1[j];
        for (std::int64_t a = 0; a < kIn; ++a) expected += w1[i * kIn + a] * w1[j * kIn + a];
        for (std::int64_t o = 0; o < kClasses; ++o) expected -= w2[o * kHidden + i] * w2[o * kHidden + j];
        CHECK(c[i * kHidden + j] == Approx(expected).epsilon(1e-14).margin(1e-15));
      }
    }
  }
  SECTION("diagonal: ||incoming||^2 - ||outgoing||^2 per unit; translation: the sum") {
    auto model = mlp(Middle::relu, 2);
    const ParameterMap theta = parameter_map(*model);
    const std::vector<double> c = charges(hidden_symmetry("relu", LieAlgebra::diagonal(kHidden), "0", "2"), theta);
    REQUIRE(c.size() == std::size_t(kHidden));
    const std::vector<double> full = charges(hidden_symmetry("gl", LieAlgebra::gl(kHidden), "0", "2"), theta);
    for (std::int64_t i = 0; i < kHidden; ++i) CHECK(c[i] == Approx(full[i * kHidden + i]).epsilon(1e-14));
    const std::vector<double> t = charges(translation_symmetry("2"), theta);
    const std::vector<double> b = theta.at("2.bias").to_vector();
    REQUIRE(t.size() == 1);
    CHECK(t[0] == Approx(b[0] + b[1] + b[2]).epsilon(1e-14));
  }
  SECTION("one channel") {
    nn::manual_seed(3);
    auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Linear>(3, 1, true, DType::f64), std::make_shared<nn::Linear>(1, 2, true, DType::f64)});
    const ParameterMap theta = parameter_map(*model);
    double expected = 0;
    for (double v : theta.at("0.weight").to_vector()) expected += v * v;
    for (double v : theta.at("0.bias").to_vector()) expected += v * v;
    for (double v : theta.at("1.weight").to_vector()) expected -= v * v;
    const std::vector<double> c = charges(hidden_symmetry("one", LieAlgebra::gl(1), "0", "1"), theta);
    REQUIRE(c.size() == 1);
    CHECK(c[0] == Approx(expected).epsilon(1e-14));
  }
  SECTION("bad input") {
    auto model = mlp(Middle::none, 4);
    const ParameterMap theta = parameter_map(*model);
    CHECK_THROWS_WITH(charges(hidden_symmetry("x", LieAlgebra::gl(kHidden), "0", "9"), theta),
                      Catch::Contains("9.weight"));
    CHECK_THROWS_WITH(charges(hidden_symmetry("x", LieAlgebra::gl(4), "0", "1"), theta), Catch::Contains("[5, 4]"));
    // E_01 alone: its transpose is not in the algebra, so no conserved charge.
    Tensor e01 = zeros({kHidden, kHidden}, DType::f64);
    e01.data<double>()[1] = 1.0;
    CHECK_THROWS_WITH(charges(hidden_symmetry("x", LieAlgebra::single(e01), "0", "1"), theta),
                      Catch::Contains("transposition"));
    WeightSymmetry mixed = translation_symmetry("1");
    mixed.actions.push_back({"0.weight", 0, GroupFactor::g});
    CHECK_THROWS_WITH(charges(mixed, theta), Catch::Contains("mixes"));
  }
}

TEST_CASE("noether: per SGD step the charge changes by exactly eta^2 S", "[noether]") {
  // Linear-Linear (gl), Linear-ReLU-Linear (diagonal, softmax translation),
  // Linear-BN(train)-ReLU-Linear (BN scale and ReLU rescaling, both diagonal).
  const Data data = make_data(10);
  struct Run {
    std::shared_ptr<nn::Sequential> model;
    std::vector<WeightSymmetry> symmetries;
  };
  std::vector<Run> runs;
  runs.push_back({mlp(Middle::none, 11), {hidden_symmetry("gl pair", LieAlgebra::gl(kHidden), "0", "1")}});
  runs.push_back({mlp(Middle::relu, 12),
                  {hidden_symmetry("relu rescaling", LieAlgebra::diagonal(kHidden), "0", "2"), translation_symmetry("2")}});
  runs.push_back({mlp(Middle::batchnorm_relu, 13),
                  {WeightSymmetry{"bn scale", "batchnorm_scale", LieAlgebra::diagonal(kHidden),
                                  {{"0.weight", 0, GroupFactor::g}, {"0.bias", 0, GroupFactor::g}},
                                  ModeRequirement::train, {}},
                   hidden_symmetry("bn-relu rescaling", LieAlgebra::diagonal(kHidden), "1", "3")}});
  for (Run& run : runs) {
    NoetherLedger ledger(run.symmetries);
    train(*run.model, ledger, data, 0.2, 20);
    for (std::size_t i = 0; i < run.symmetries.size(); ++i) {
      const LedgerTotals t = ledger.totals(i);
      const double worst_scaled = worst_scaled_residual(ledger, i);
      double smallest_second = 1e300;
      for (const LedgerStep& step : ledger.steps(i)) {
        smallest_second = std::min(smallest_second, norm(step.prediction.second_order));
        // predicted + first_order is the exact change whatever the symmetry; the first
        // order vanishes because the symmetry is one.
        CHECK(norm(step.prediction.first_order) <= 1e-13 * step.charge_scale);
      }
      std::printf("%-20s per-step |measured - predicted| <= %.2e |eta^2 S| (%.2e of sum ||P||^2); "
                  "drift %.3e, update residual %.1e\n",
                  run.symmetries[i].name.c_str(), t.max_relative_residual, worst_scaled, norm(t.measured_change),
                  t.max_update_residual);
      CHECK(t.max_update_residual <= 1e-15);  // nn's SGD is the step the prediction assumes
      CHECK(worst_scaled <= 1e-14);
      if (run.symmetries[i].kind == "softmax_translation") {
        CHECK(norm(t.measured_change) <= 1e-14);  // linear charge: no eta^2 term at all
      } else {
        CHECK(smallest_second > 0);
        CHECK(t.max_relative_residual <= 1e-11);
        CHECK(norm(difference(t.measured_change, t.predicted_change)) <= 1e-12 * norm(t.measured_change));
      }
    }
  }
}

TEST_CASE("noether: over a fixed time the drift shrinks linearly with eta", "[noether]") {
  // The drift is sum_k eta^2 S_k = eta * (integral of S dt) + O(eta^2): halving eta at a
  // fixed T = eta * steps halves it.
  const Data data = make_data(20);
  const double t_final = 2.0;
  std::vector<double> drift;
  for (double lr : {0.2, 0.1, 0.05}) {
    auto model = mlp(Middle::relu, 21);
    NoetherLedger ledger({hidden_symmetry("relu rescaling", LieAlgebra::diagonal(kHidden), "0", "2")});
    train(*model, ledger, data, lr, static_cast<int>(std::lround(t_final / lr)));
    drift.push_back(norm(ledger.totals(0).measured_change));
    std::printf("eta %.2f: per-step |measured - predicted| <= %.2e |eta^2 S|, %.2e sum ||P||^2\n", lr,
                ledger.totals(0).max_relative_residual, worst_scaled_residual(ledger, 0));
    CHECK(worst_scaled_residual(ledger, 0) <= 1e-14);
  }
  std::printf("drift over T = 2 at eta 0.2, 0.1, 0.05: %.4e %.4e %.4e (ratios %.3f, %.3f)\n", drift[0], drift[1],
              drift[2], drift[0] / drift[1], drift[1] / drift[2]);
  CHECK(drift[0] / drift[1] == Approx(2.0).epsilon(0.15));
  CHECK(drift[1] / drift[2] == Approx(2.0).epsilon(0.15));
}

TEST_CASE("noether: weight decay makes charges decay as (1 - eta lambda)^2k ~ exp(-2 lambda t)", "[noether]") {
  const Data data = make_data(30);
  const double lr = 0.01, lambda = 0.5;
  const int steps = 200;  // t = 2
  auto model = mlp(Middle::batchnorm_relu, 31);
  NoetherLedger ledger({WeightSymmetry{"bn scale", "batchnorm_scale", LieAlgebra::diagonal(kHidden),
                                       {{"0.weight", 0, GroupFactor::g}, {"0.bias", 0, GroupFactor::g}},
                                       ModeRequirement::train, {}},
                        translation_symmetry("3")});
  train(*model, ledger, data, lr, steps, lambda);

  // The exact recursion C_{k+1} = (1 - eta lambda)^2 C_k + eta^2 S_k holds every step.
  for (const LedgerStep& step : ledger.steps(0)) CHECK(step.residual <= 1e-14 * step.charge_scale);
  const LedgerTotals bn = ledger.totals(0);
  const double shrink = std::pow(1 - lr * lambda, 2 * steps), decay = std::exp(-2 * lambda * lr * steps);
  std::vector<double> by_shrink, by_exp;
  for (double c : bn.initial) {
    by_shrink.push_back(c * shrink);
    by_exp.push_back(c * decay);
  }
  // Without the eta^2 S terms the charge is exactly (1 - eta lambda)^2k C_0; they add
  // sum_k (1 - eta lambda)^(2(K-k)) eta^2 S_k, which the ledger also predicts.
  std::vector<double> with_second(by_shrink);
  for (std::size_t j = 0; j < with_second.size(); ++j) {
    double accumulated = 0;
    for (const LedgerStep& step : ledger.steps(0))
      accumulated = accumulated * (1 - lr * lambda) * (1 - lr * lambda) + step.prediction.second_order[j];
    with_second[j] += accumulated;
  }
  const double c0 = norm(bn.initial);
  const double exact_error = norm(difference(bn.final, with_second)) / c0;
  const double shrink_error = norm(difference(bn.final, by_shrink)) / c0;
  const double exp_error = norm(difference(bn.final, by_exp)) / c0;
  std::printf("bn scale charge, t = 2, lambda = 0.5: ||C_K|| / ||C_0|| = %.6f, (1 - eta lambda)^2K = %.6f, "
              "exp(-2 lambda t) = %.6f; relative errors: exact recursion %.1e, (1 - eta lambda)^2K %.1e, exp %.1e\n",
              norm(bn.final) / c0, shrink, decay, exact_error, shrink_error, exp_error);
  CHECK(exact_error <= 1e-13);
  CHECK(shrink_error <= 1e-3);  // the eta^2 S terms, O(eta T) (measured 8.6e-5)
  // (1 - eta lambda)^2K = exp(-2 lambda t - K eta^2 lambda^2 + ...): relative 5e-3 here,
  // times ||C_K|| / ||C_0|| = 0.135 (measured 6.3e-4).
  CHECK(exp_error <= 2e-3);

  // The translation charge is linear: it decays by (1 - eta lambda) per step, not squared.
  const LedgerTotals translation = ledger.totals(1);
  CHECK(translation.final[0] == Approx(translation.initial[0] * std::pow(1 - lr * lambda, steps)).epsilon(1e-10));
}

TEST_CASE("noether: negative control, the gl charge across a ReLU changes at first order", "[noether]") {
  // gl(n) is no symmetry across a ReLU: <grad L, xi . theta> != 0 off the diagonal, so the
  // first-order term -eta (M + M^T) survives and the eta^2 prediction misses.
  const Data data = make_data(40);
  std::vector<double> first_change, second_term;
  for (double lr : {0.02, 0.01}) {
    auto model = mlp(Middle::relu, 41);
    NoetherLedger ledger({hidden_symmetry("false gl", LieAlgebra::gl(kHidden), "0", "2")});
    train(*model, ledger, data, lr, 1);
    const LedgerStep& step = ledger.steps(0).front();
    // The exact identity still holds: measured = predicted + first order.
    const std::vector<double> unexplained = difference(step.measured, step.prediction.predicted);
    CHECK(norm(difference(unexplained, step.prediction.first_order)) <= 1e-14 * step.charge_scale);
    CHECK(step.residual > 100 * norm(step.prediction.second_order));
    first_change.push_back(norm(step.measured));
    second_term.push_back(norm(step.prediction.second_order));
  }
  std::printf("false gl charge, one step at eta 0.02 / 0.01: |change| ratio %.3f (first order: 2), "
              "|eta^2 S| ratio %.3f (4)\n",
              first_change[0] / first_change[1], second_term[0] / second_term[1]);
  CHECK(first_change[0] / first_change[1] == Approx(2.0).epsilon(0.02));
  CHECK(second_term[0] / second_term[1] == Approx(4.0).epsilon(1e-12));
}
