// Loss functions against PyTorch 1.13 (tests/data/nn_norm_loss_reference.json, written by
// tools/make_nn_norm_loss_reference.py) for every reduction, label smoothing and logits
// of magnitude 1e4; gradcheck and gradgradcheck; label and shape errors.

#include <nlohmann/json.hpp>

#include "nn/loss.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using json = nlohmann::json;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

const json& reference() {
  return testing::reference_data("nn_norm_loss_reference.json", "tools/make_nn_norm_loss_reference.py");
}

void require_close(const Tensor& actual, const json& expected, DType dtype) {
  REQUIRE(actual.defined());
  REQUIRE(actual.shape() == expected.at("shape").get<Shape>());
  const auto values = expected.at("values").get<std::vector<double>>();
  if (dtype == DType::f64) require_allclose(actual, values, 1e-10, 1e-12);
  else require_allclose(actual, values, 1e-5, 1e-6);
}

Reduction reduction_named(const std::string& name) {
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  if (name == "none") return Reduction::none;
  throw std::invalid_argument("unknown reduction " + name);
}

Tensor regression_loss(const json& c, const Tensor& pred, const Tensor& target) {
  const Reduction r = reduction_named(c.at("reduction"));
  const std::string loss = c.at("loss");
  if (loss == "mse") return mse_loss(pred, target, r);
  if (loss == "l1") return l1_loss(pred, target, r);
  if (loss == "huber") return huber_loss(pred, target, c.at("delta"), r);
  throw std::invalid_argument("unknown regression loss " + loss);
}

}  // namespace

TEST_CASE("losses match PyTorch for every reduction, with gradients") {
  int regression = 0, classification = 0;
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const json& c : reference().at("losses")) {
      INFO(c.at("id").get<std::string>() << " " << dtype_name(dtype));
      const Tensor weights = testing::tensor_from_json(c.at("weights"), dtype);
      if (c.contains("pred")) {
        Tensor pred = testing::tensor_from_json(c.at("pred"), dtype).requires_grad_();
        Tensor target = testing::tensor_from_json(c.at("target"), dtype).requires_grad_();
        Tensor out = regression_loss(c, pred, target);
        require_close(out, c.at("output"), dtype);
        TensorList g = grad({sum(out * weights)}, {pred, target});
        require_close(g[0], c.at("grad_pred"), dtype);
        require_close(g[1], c.at("grad_target"), dtype);
        ++regression;
      } else {
        Tensor input = testing::tensor_from_json(c.at("input"), dtype).requires_grad_();
        const auto labels = c.at("labels").get<std::vector<std::int64_t>>();
        const Reduction r = reduction_named(c.at("reduction"));
        Tensor out = c.at("loss") == "nll"
                         ? nll_loss(input, labels, r)
                         : cross_entropy(input, labels, {.label_smoothing = c.at("label_smoothing"), .reduction = r});
        require_close(out, c.at("output"), dtype);
        require_close(grad({sum(out * weights)}, {input})[0], c.at("grad_input"), dtype);
        ++classification;
      }
    }
  }
  CHECK(regression == 2 * 12);
  CHECK(classification == 2 * 15);
}

TEST_CASE("cross_entropy is finite and exact for logits of magnitude 1e4") {
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor logits = tensor({1e4, -1e4, 0.0, 1e4, 1e4, -1e4}, {2, 3}, dtype).requires_grad_();
    Tensor loss = cross_entropy(logits, {1, 0}, {.reduction = Reduction::none});
    // Row 0: the label's logit is 2e4 below the top one; row 1: a tie of two giants.
    require_allclose(loss, std::vector<double>{2e4, std::log(2.0)}, 1e-6, 1e-6);
    Tensor g = grad({sum(loss)}, {logits})[0];
    require_allclose(g, std::vector<double>{1.0, -1.0, 0.0, -0.5, 0.5, 0.0}, 1e-6, 1e-6);
  }
}

TEST_CASE("cross_entropy equals nll_loss of log_softmax, and label smoothing mixes in the uniform loss") {
  Tensor logits = random_input({4, 5}, 3, -3.0, 3.0).detach();
  const std::vector<std::int64_t> labels{4, 0, 2, 2};
  require_allclose(cross_entropy(logits, labels), nll_loss(log_softmax(logits, 1), labels).to_vector(), 1e-14, 0.0);
  const double eps = 0.2;
  Tensor smoothed = cross_entropy(logits, labels, {.label_smoothing = eps, .reduction = Reduction::sum});
  const Tensor log_probs = log_softmax(logits, 1);
  const double expected = (1.0 - eps) * nll_loss(log_probs, labels, Reduction::sum).item() -
                          eps * sum(log_probs).item() / 5.0;
  CHECK(smoothed.item() == Approx(expected).epsilon(1e-13));
}

TEST_CASE("loss gradcheck and gradgradcheck") {
  Tensor pred = random_input({3, 4}, 1, -2.0, 2.0);
  Tensor target = random_input({3, 4}, 2, -2.0, 2.0);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    INFO(reduction_name(r));
    auto mse = [r](const TensorList& in) { return mse_loss(in[0], in[1], r); };
    REQUIRE_GRADCHECK(mse, (TensorList{pred, target}));
    REQUIRE_GRADGRADCHECK(mse, (TensorList{pred, target}));
    // Away from the kinks: |pred - target| >= 0.1 and never within 0.1 of delta.
    Tensor far_pred = from_vector(std::vector<double>{-1.5, -0.7, -0.25, 0.2, 0.45, 0.9, 1.3, 2.1}, {2, 4},
                                  DType::f64).requires_grad_();
    Tensor zero_target = zeros({2, 4}, DType::f64).requires_grad_();
    auto l1 = [r](const TensorList& in) { return l1_loss(in[0], in[1], r); };
    REQUIRE_GRADCHECK(l1, (TensorList{far_pred, zero_target}));
    REQUIRE_GRADGRADCHECK(l1, (TensorList{far_pred, zero_target}));
    auto huber = [r](const TensorList& in) { return huber_loss(in[0], in[1], 0.6, r); };
    REQUIRE_GRADCHECK(huber, (TensorList{far_pred, zero_target}));
    REQUIRE_GRADGRADCHECK(huber, (TensorList{far_pred, zero_target}));

    Tensor logits = random_input({3, 4}, 3, -3.0, 3.0);
    const std::vector<std::int64_t> labels{2, 0, 3};
    for (double eps : {0.0, 0.1}) {
      auto ce = [&, r, eps](const TensorList& in) {
        return cross_entropy(in[0], labels, {.label_smoothing = eps, .reduction = r});
      };
      REQUIRE_GRADCHECK(ce, TensorList{logits});
      REQUIRE_GRADGRADCHECK(ce, TensorList{logits});
    }
    auto nll = [&, r](const TensorList& in) { return nll_loss(in[0], labels, r); };
    REQUIRE_GRADCHECK(nll, TensorList{logits});
    REQUIRE_GRADGRADCHECK(nll, TensorList{logits});
  }
}

TEST_CASE("huber_loss is quadratic inside delta and linear outside (plain formula)") {
  Tensor pred = tensor({-3.0, -1.0, -0.5, 0.0, 0.4, 1.0, 2.5}, {7}, DType::f64);
  Tensor target = zeros({7}, DType::f64);
  std::vector<double> expected;
  for (double d : pred.to_vector())
    expected.push_back(std::abs(d) < 0.8 ? 0.5 * d * d : 0.8 * (std::abs(d) - 0.4));
  require_allclose(huber_loss(pred, target, 0.8, Reduction::none), expected, 1e-15, 0.0);
}

TEST_CASE("loss errors name the function, the argument and the shapes") {
  CHECK_THROWS_WITH(mse_loss(zeros({4, 1}), zeros({4})),
                    Catch::Contains("mse_loss: pred [4, 1] and target [4] must have the same shape"));
  CHECK_THROWS_WITH(l1_loss(zeros({2}), zeros({2}, DType::f64)),
                    Catch::Contains("l1_loss: pred is float32 but target is float64"));
  CHECK_THROWS_WITH(huber_loss(zeros({2}), zeros({2}), 0.0), Catch::Contains("huber_loss: delta must be positive"));
  CHECK_THROWS_WITH(cross_entropy(zeros({3, 4}), {0, 1}),
                    Catch::Contains("cross_entropy: 2 labels for logits [3, 4] (expected one per row, 3)"));
  CHECK_THROWS_WITH(cross_entropy(zeros({2, 4}), {0, 4}),
                    Catch::Contains("cross_entropy: label 4 at position 1 is out of range [0, 4) for logits [2, 4]"));
  CHECK_THROWS_WITH(cross_entropy(zeros({2, 4}), {-1, 0}), Catch::Contains("label -1 at position 0 is out of range"));
  CHECK_THROWS_WITH(cross_entropy(zeros({2, 4, 1}), {0, 1}),
                    Catch::Contains("cross_entropy: logits [2, 4, 1] must be 2-D [N, C]"));
  CHECK_THROWS_WITH(cross_entropy(zeros({2, 4}), {0, 1}, {.label_smoothing = 1.5}),
                    Catch::Contains("label_smoothing must be in [0, 1]"));
  CHECK_THROWS_WITH(nll_loss(zeros({2, 3}), {0, 3}), Catch::Contains("nll_loss: label 3 at position 1 is out of range [0, 3) for log_probs [2, 3]"));
}
