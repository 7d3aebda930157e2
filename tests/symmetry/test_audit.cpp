// The four gradient audits (symmetry/audit.hpp) on small models: every built-in symmetry
// holds within the float64 (and float32) tolerances, and deliberately broken ones are
// reported as broken.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "nn/nn.hpp"
#include "pde/fold_bn.hpp"
#include "pde/pde_resnet.hpp"
#include "symmetry/audit.hpp"
#include "symmetry/builtin_symmetries.hpp"

using namespace symgrad;
using namespace symgrad::symmetry;

namespace {

std::vector<std::int64_t> random_labels(std::int64_t count, std::int64_t classes, Generator& gen) {
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < count; ++i) labels.push_back(std::int64_t(gen.below(std::uint64_t(classes))));
  return labels;
}

const WeightSymmetry& find_kind(const std::vector<WeightSymmetry>& all, const std::string& kind) {
  for (const WeightSymmetry& s : all)
    if (s.kind == kind) return s;
  FAIL("no symmetry of kind " << kind);
  return all.front();
}

// Linear -> Linear -> ReLU -> Linear: a GL pair, ReLU rescaling and softmax translation.
std::shared_ptr<nn::Sequential> small_mlp(DType dtype, std::uint64_t seed) {
  nn::manual_seed(seed);
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(5, 6, true, dtype), std::make_shared<nn::Linear>(6, 6, true, dtype),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(6, 3, true, dtype)});
}

}  // namespace

TEST_CASE("audit: every symmetry of a small MLP holds in float64", "[audit]") {
  auto model = small_mlp(DType::f64, 1);
  Generator gen(2);
  const Tensor x = randn({16, 5}, gen, DType::f64);
  const std::vector<std::int64_t> labels = random_labels(16, 3, gen);
  const LossFn loss = [&](const Tensor& logits) { return nn::cross_entropy(logits, labels); };

  const std::vector<WeightSymmetry> found = symmetries_of(*model);
  REQUIRE(found.size() >= 3);
  std::vector<SymmetryAudit> audits;
  for (const WeightSymmetry& s : found) {
    audits.push_back(audit_symmetry(*model, s, x, loss));
    const SymmetryAudit& a = audits.back();
    INFO(a.symmetry.name << ": " << a.to_json().dump());
    CHECK(a.invariance.relative_loss_change <= a.invariance.bound);
    CHECK(a.orthogonality.max_relative <= 1e-12);
    CHECK(a.orbit_derivative.max_relative_disagreement <= 1e-12);
    CHECK(a.orbit_derivative.max_relative_fd <= 1e-6);
    CHECK(a.covariance.relative_residual <= 1e-12);
    CHECK(a.holds);
  }
  // The three derivatives along gl(n) directions that are not symmetries are not zero
  // (so their agreement means something), and they agree.
  const SymmetryAudit& relu = audits[&find_kind(found, "relu_rescaling") - &found[0]];
  double largest = 0;
  for (double v : relu.orbit_derivative.autodiff) largest = std::max(largest, std::abs(v));
  CHECK(largest > 1e-4);

  const std::string table = format_audit_table(audits);
  CHECK_THAT(table, Catch::Contains("HOLDS"));
  CHECK_THAT(table, Catch::Contains("linear pair"));
}

TEST_CASE("audit: float32 residuals stay within 1e-4", "[audit]") {
  auto model = small_mlp(DType::f32, 3);
  Generator gen(4);
  const Tensor x = randn({16, 5}, gen, DType::f32);
  const std::vector<std::int64_t> labels = random_labels(16, 3, gen);
  const LossFn loss = [&](const Tensor& logits) { return nn::cross_entropy(logits, labels); };
  for (const WeightSymmetry& s : symmetries_of(*model)) {
    const SymmetryAudit a = audit_symmetry(*model, s, x, loss);
    INFO(a.symmetry.name << ": " << a.to_json().dump());
    CHECK(a.tolerance == 1e-4);
    CHECK(a.holds);
  }
}

TEST_CASE("audit: GL(n) across a ReLU is reported as broken", "[audit]") {
  auto model = small_mlp(DType::f64, 5);
  Generator gen(6);
  const Tensor x = randn({16, 5}, gen, DType::f64);
  const std::vector<std::int64_t> labels = random_labels(16, 3, gen);
  const LossFn loss = [&](const Tensor& logits) { return nn::cross_entropy(logits, labels); };
  // The ReLU rescaling's actions with the full gl(6) instead of the diagonal.
  WeightSymmetry broken = find_kind(symmetries_of(*model), "relu_rescaling");
  broken.algebra = LieAlgebra::gl(6);
  broken.name = "gl(6) across the ReLU";
  const SymmetryAudit a = audit_symmetry(*model, broken, x, loss);
  INFO(a.to_json().dump());
  CHECK_FALSE(a.holds);
  CHECK(a.invariance.relative_loss_change > 1e-3);
  CHECK(a.orthogonality.max_relative > 1e-4);
  // The three ways of taking the orbit derivative still agree: they are identities.
  CHECK(a.orbit_derivative.max_relative_disagreement <= 1e-12);
  CHECK_THAT(format_audit_table({a}), Catch::Contains("BROKEN"));
}

TEST_CASE("audit: BatchNorm scale holds in training mode and breaks in eval mode", "[audit]") {
  // eps = 0: with eps > 0 the normalisation divides by sqrt(var + eps), which a scaling of
  // the channel does not scale exactly (the symmetry's note says so, and the audit sees it).
  nn::manual_seed(7);
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(5, 6, true, DType::f64), std::make_shared<nn::BatchNorm1d>(
          6, nn::BatchNormOptions{.eps = 0.0, .dtype = DType::f64}),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(6, 3, true, DType::f64)});
  Generator gen(8);
  const Tensor x = randn({32, 5}, gen, DType::f64);
  const std::vector<std::int64_t> labels = random_labels(32, 3, gen);
  const LossFn loss = [&](const Tensor& logits) { return nn::cross_entropy(logits, labels); };
  const WeightSymmetry bn = find_kind(symmetries_of(*model), "batchnorm_scale");

  model->train();
  const SymmetryAudit holds = audit_symmetry(*model, bn, x, loss);
  INFO(holds.to_json().dump());
  CHECK(holds.holds);

  // Give the running statistics values that differ from the batch's, then evaluate.
  {
    NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i) (*model)(randn({32, 5}, gen, DType::f64) * 3.0 + 1.0);
  }
  model->eval();
  const SymmetryAudit broken = audit_symmetry(*model, bn, x, loss);
  INFO(broken.to_json().dump());
  CHECK_FALSE(broken.holds);
  bool noted = false;
  for (const std::string& note : broken.notes) noted = noted || note.find("eval mode") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("audit: residual streams of a folded PDEResNet hold; unfolded in training mode they break",
          "[audit][pde]") {
  pde::PDEResNetConfig config = pde::config_B();
  config.stages = {{4, 2, 1}, {6, 2, 2}};
  config.stem_channels = 4;
  config.width_factor = 2;
  config.dtype = DType::f64;
  nn::manual_seed(9);
  pde::PDEResNet model(config);
  Generator gen(10);
  {  // non-degenerate BatchNorms (the last one of each block starts at zero) and statistics
    NoGradGuard no_grad;
    for (const auto& [name, module] : model.named_modules())
      if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm>(module)) {
        nn::uniform_(bn->weight, -1.5, 1.5, &gen);
        nn::uniform_(bn->bias, -0.5, 0.5, &gen);
      }
    model.train();
    for (int i = 0; i < 3; ++i) model(randn({8, 1, 12, 12}, gen, DType::f64));
  }
  const Tensor x = randn({8, 1, 12, 12}, gen, DType::f64);
  const std::vector<std::int64_t> labels = random_labels(8, 10, gen);
  const LossFn loss = [&](const Tensor& logits) { return nn::cross_entropy(logits, labels); };

  model.eval();
  auto folded = pde::fold_batch_norms(model);
  folded->eval();
  const std::vector<WeightSymmetry> streams = residual_stream_symmetries(folded->weight_structure());
  REQUIRE(streams.size() == 2);
  for (const WeightSymmetry& s : streams) {
    const SymmetryAudit a = audit_symmetry(*folded, s, x, loss);
    INFO(a.to_json().dump());
    CHECK(a.holds);
  }

  // The unfolded model in training mode: batch statistics undo any scaling of a stream
  // channel before the stream sees it, so its per-channel BatchNorms break the action.
  model.train();
  const WeightSymmetry unfolded = residual_stream_symmetries(model.weight_structure()).at(1);
  CHECK_FALSE(unfolded.notes.empty());
  const SymmetryAudit a = audit_symmetry(model, unfolded, x, loss);
  INFO(a.to_json().dump());
  CHECK_FALSE(a.holds);
}

TEST_CASE("audit: random_group_element has the requested condition number", "[audit]") {
  Generator gen(11);
  for (const LieAlgebra& algebra : {LieAlgebra::gl(5), LieAlgebra::diagonal(4)}) {
    const Tensor g = random_group_element(algebra, 10.0, gen, DType::f64);
    CHECK(condition_number_2(g) == Approx(10.0).epsilon(1e-10));
  }
  const Tensor q = random_group_element(LieAlgebra::so(5), 10.0, gen, DType::f64);
  CHECK(condition_number_2(q) == Approx(1.0).epsilon(1e-12));
  REQUIRE_THROWS_WITH(random_group_element(LieAlgebra::gl(3), 0.5, gen, DType::f64),
                      Catch::Contains(">= 1"));
}
