// fold_batch_norms: a model trained a few SGD steps (so its BatchNorms' weights, biases
// and running statistics are far from their initial values) computes in eval mode what
// its folded copy computes, within 1e-5 (float32) and 1e-12 (float64) relative, for
// quasi-linear models with and without variable coefficients, with a max-pool stem, and
// for BasicBlock models.
#include "pde/fold_bn.hpp"

#include <cmath>

#include "nn/init.hpp"
#include "nn/loss.hpp"
#include "nn/optim/sgd.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde;

namespace {

// Small enough to train in a blink, with every kind of unit: a stem, identity blocks, a
// projection block with a hardball, the head.
PDEResNetConfig small_config(DType dtype) {
  PDEResNetConfig c;
  c.in_channels = 2;
  c.num_classes = 5;
  c.stem_channels = 6;
  c.stages = {{6, 1, 1}, {10, 2, 2}};
  c.width_factor = 2;
  c.zero_init_last_bn = false;  // the last BNs start at 1, so they too are really folded
  c.batch_norm.momentum = 0.5;  // running statistics move visibly in a few steps
  c.dtype = dtype;
  return c;
}

// Three SGD steps on random data, from random BatchNorm weights and biases; the
// coefficient convs (weight 0 at first) get random weights so that they are not an identity.
std::shared_ptr<PDEResNet> trained_model(const PDEResNetConfig& config, std::uint64_t seed) {
  nn::manual_seed(seed);
  auto model = std::make_shared<PDEResNet>(config);
  Generator gen(seed + 1);
  for (const auto& [name, module] : model->named_modules()) {
    if (auto conv = std::dynamic_pointer_cast<nn::Conv2d>(module); conv && name.find("coefficients") != std::string::npos)
      nn::normal_(conv->weight, 0.0, 0.3, &gen);
    // A BN's bias gets no gradient when a conv and another BN follow (the second BN
    // subtracts the shift again), so training alone would leave the depthwise biases, and
    // with them the next running means, at 0.
    if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm>(module)) {
      nn::uniform_(bn->weight, 0.5, 1.5, &gen);
      nn::uniform_(bn->bias, -0.5, 0.5, &gen);
    }
  }
  nn::SGD sgd(model->parameters(), {.lr = 0.1, .momentum = 0.9});
  model->train();
  for (int step = 0; step < 3; ++step) {
    const Tensor x = uniform({8, config.in_channels, 12, 12}, -1, 1, gen, config.dtype);
    std::vector<std::int64_t> labels;
    for (int i = 0; i < 8; ++i) labels.push_back(static_cast<std::int64_t>(gen.below(config.num_classes)));
    sgd.zero_grad();
    backward(nn::cross_entropy((*model)(x), labels));
    sgd.step();
  }
  model->eval();
  return model;
}

double relative_difference(const Tensor& a, const Tensor& b) {
  return (max(abs(a - b)) / max(abs(b))).item();
}

void require_folding_matches(const PDEResNetConfig& config, double tolerance) {
  auto model = trained_model(config, 3);
  // Training really moved the BatchNorms (else folding them would be trivial).
  for (const auto& [name, tensor] : model->named_state()) {
    if (name.size() > 16 && name.substr(name.size() - 16) == ".bn.running_mean") {
      INFO(name);
      REQUIRE(max(abs(tensor)).item() > 1e-3);
    }
  }

  const auto folded = fold_batch_norms(*model);
  REQUIRE_FALSE(folded->is_training());
  REQUIRE(folded->config().folded);
  REQUIRE(folded->dtype() == config.dtype);
  for (const auto& [name, tensor] : folded->named_parameters()) {
    INFO(name);
    REQUIRE(name.find(".bn.") == std::string::npos);
  }
  REQUIRE(folded->named_buffers().empty());

  Generator gen(9);
  const Tensor x = uniform({4, config.in_channels, 12, 12}, -1, 1, gen, config.dtype);
  NoGradGuard no_grad;
  const Tensor expected = (*model)(x);
  const Tensor actual = (*folded)(x);
  REQUIRE(actual.shape() == expected.shape());
  const double difference = relative_difference(actual, expected);
  INFO("relative difference " << difference);
  REQUIRE(difference <= tolerance);
  // The source is untouched and still unfolded.
  REQUIRE_FALSE(model->config().folded);
  REQUIRE(relative_difference((*model)(x), expected) == 0.0);
}

}  // namespace

TEST_CASE("fold_batch_norms: quasi-linear blocks, float32 and float64", "[fold_bn]") {
  require_folding_matches(small_config(DType::f32), 1e-5);
  require_folding_matches(small_config(DType::f64), 1e-12);
}

TEST_CASE("fold_batch_norms: variable coefficients and reflect padding", "[fold_bn]") {
  for (DType dtype : {DType::f32, DType::f64}) {
    PDEResNetConfig config = small_config(dtype);
    config.variable_coefficients = true;
    config.padding_mode = PadMode::reflect;
    require_folding_matches(config, dtype == DType::f32 ? 1e-5 : 1e-12);
  }
}

TEST_CASE("fold_batch_norms: a max-pool stem without ReLU and no hardballs", "[fold_bn]") {
  PDEResNetConfig config = full_gl_variant_of(small_config(DType::f64));
  config.stem_kernel = 5;
  config.stem_max_pool = true;
  require_folding_matches(config, 1e-12);
}

TEST_CASE("fold_batch_norms: basic blocks, float32 and float64", "[fold_bn]") {
  require_folding_matches(baseline_of(small_config(DType::f32)), 1e-5);
  require_folding_matches(baseline_of(small_config(DType::f64)), 1e-12);
}

TEST_CASE("fold_batch_norms: follows Module::to and leaves the random numbers alone", "[fold_bn]") {
  auto model = trained_model(small_config(DType::f32), 4);
  model->to(DType::f64);
  nn::manual_seed(100);
  const double before = nn::default_generator().uniform();
  nn::manual_seed(100);
  const auto folded = fold_batch_norms(*model);
  REQUIRE(nn::default_generator().uniform() == before);
  REQUIRE(folded->dtype() == DType::f64);
}

TEST_CASE("fold_batch_norms: a folded model cannot be folded again", "[fold_bn]") {
  auto folded = fold_batch_norms(*trained_model(small_config(DType::f32), 5));
  REQUIRE_THROWS_WITH(fold_batch_norms(*folded), Catch::Contains("already folded"));
  PDEResNetConfig config = small_config(DType::f32);
  config.folded = true;
  REQUIRE_THROWS_AS(fold_batch_norms(PDEResNet(config)), std::invalid_argument);
}
