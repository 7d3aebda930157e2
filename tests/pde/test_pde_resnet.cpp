// PDEResNet: the presets' parameter counts against counts written out here, forward
// shapes, forward_macs, the residual-stream structure as data *and* as a fact (acting with
// Q on producers and Q^-1 on consumers leaves the logits unchanged exactly when the
// stream's boundaries allow Q), and the "PDEResNet" JSON type.
#include "pde/pde_resnet.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>

#include "nn/architecture.hpp"
#include "nn/init.hpp"
#include "pde/fold_bn.hpp"
#include "pde/model_types.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde;
using json = nlohmann::json;

namespace {

// ---- independent parameter counts (the block formulas of docs/background.md §1) -----------

std::int64_t batch_norm_count(std::int64_t channels) { return 2 * channels; }

std::int64_t quasi_linear_count(std::int64_t in, std::int64_t out, std::int64_t stride) {
  const std::int64_t w = (in <= 128 ? 4 : 2) * in;
  std::int64_t n = in * 2 * w + batch_norm_count(2 * w)  // conv1 1x1 in -> 2w
                   + 2 * w * 9 + batch_norm_count(2 * w)  // depthwise 3x3, w -> 2w
                   + 2 * w * out + batch_norm_count(out);  // conv3 1x1 2w -> out
  if (stride > 1 || out != in) n += in * out + batch_norm_count(out);
  return n;
}

std::int64_t basic_count(std::int64_t in, std::int64_t out, std::int64_t stride) {
  std::int64_t n = 9 * in * out + batch_norm_count(out) + 9 * out * out + batch_norm_count(out);
  if (stride > 1 || out != in) n += in * out + batch_norm_count(out);
  return n;
}

std::int64_t network_count(std::int64_t in, std::int64_t stem, std::int64_t kernel,
                           const std::vector<std::array<std::int64_t, 3>>& stages, std::int64_t classes,
                           std::int64_t (*block)(std::int64_t, std::int64_t, std::int64_t)) {
  std::int64_t n = in * stem * kernel * kernel + batch_norm_count(stem);
  std::int64_t channels = stem;
  for (const auto& [out, blocks, stride] : stages) {
    for (std::int64_t b = 0; b < blocks; ++b) {
      n += block(channels, out, b == 0 ? stride : 1);
      channels = out;
    }
  }
  return n + channels * classes + classes;
}

// ---- models with non-trivial parameters ------------------------------------------------------

// Every BatchNorm gets random weights (the zero-initialised last ones too) and biases, a few
// training-mode passes give its running statistics real values, and the coefficient convs
// get random weights: nothing in the model is an identity that could hide a mistake.
void randomize(PDEResNet& model, std::uint64_t seed, std::int64_t size) {
  Generator gen(seed);
  {
    NoGradGuard no_grad;
    for (const auto& [name, module] : model.named_modules()) {
      if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm>(module)) {
        nn::uniform_(bn->weight, -1.5, 1.5, &gen);
        nn::uniform_(bn->bias, -0.5, 0.5, &gen);
      }
      if (name.size() > 13 && name.substr(name.size() - 13) == ".coefficients") {
        auto conv = std::dynamic_pointer_cast<nn::Conv2d>(module);
        nn::normal_(conv->weight, 0.0, 0.3, &gen);
      }
    }
    model.train();
    for (int pass = 0; pass < 3; ++pass)
      model(uniform({4, model.config().in_channels, size, size}, -1, 1, gen, model.dtype()));
  }
  model.eval();
}

std::shared_ptr<PDEResNet> random_folded_model(PDEResNetConfig config, std::uint64_t seed, std::int64_t size) {
  config.dtype = DType::f64;
  config.batch_norm.momentum = 0.5;  // running statistics close to the batch's after 3 passes
  nn::manual_seed(seed);
  PDEResNet model(config);
  randomize(model, seed + 1, size);
  return fold_batch_norms(model);
}

// ---- the group action -------------------------------------------------------------------------

// t with M applied along `axis`: t'[.., a, ..] = sum_b M[a, b] t[.., b, ..].
Tensor multiply_along_axis(const Tensor& t, const Tensor& m, std::int64_t axis) {
  std::vector<std::int64_t> order = {axis};
  for (std::int64_t i = 0; i < t.dim(); ++i)
    if (i != axis) order.push_back(i);
  std::vector<std::int64_t> inverse(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<std::int64_t>(i);
  const Tensor moved = permute(t, order);
  const Tensor product = reshape(matmul(m, reshape(moved, {moved.size(0), -1})), moved.shape());
  return permute(product, inverse);
}

// Producers get Q along their axis, consumers Q^-1 (their inputs: W -> W Q^-1, which is
// Q^-T applied along the input axis).
void act_on_stream(PDEResNet& model, const ResidualStream& stream, const Tensor& q, const Tensor& q_inverse) {
  std::map<std::string, Tensor> parameters;
  for (const auto& [name, p] : model.named_parameters()) parameters.emplace(name, p);
  NoGradGuard no_grad;
  const auto apply = [&](const ChannelAxis& a, const Tensor& m) {
    INFO(a.parameter);
    REQUIRE(parameters.count(a.parameter) == 1);
    Tensor& p = parameters.at(a.parameter);
    REQUIRE(p.size(a.axis) == stream.channels);
    copy_(p, multiply_along_axis(p, m, a.axis));
  };
  for (const ChannelAxis& a : stream.producers) apply(a, q);
  const Tensor q_inverse_transposed = transpose(q_inverse);
  for (const ChannelAxis& a : stream.consumers) apply(a, q_inverse_transposed);
}

struct GroupElement {
  Tensor q, q_inverse;
};

// U diag(s) V^T with Haar-random U, V and singular values in [low, high]; orthogonal when
// low == high == 1. The inverse is V diag(1/s) U^T, no solver needed.
GroupElement random_group_element(std::int64_t n, double low, double high, std::uint64_t seed) {
  Generator gen(seed);
  Tensor u = zeros({n, n}, DType::f64), v = zeros({n, n}, DType::f64);
  nn::orthogonal_(u, 1.0, &gen);
  nn::orthogonal_(v, 1.0, &gen);
  const Tensor s = uniform({n}, low, high, gen, DType::f64);
  const Tensor vt = transpose(v);
  return {matmul(u * reshape(s, {1, n}), vt), matmul(v * reshape(reciprocal(s), {1, n}), transpose(u))};
}

// Positive diagonal: what passes a ReLU.
GroupElement random_positive_diagonal(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  const Tensor s = uniform({n}, 0.3, 3.0, gen, DType::f64);
  const Tensor identity = eye(n, -1, DType::f64);
  return {identity * reshape(s, {1, n}), identity * reshape(reciprocal(s), {1, n})};
}

double relative_change(const Tensor& after, const Tensor& before) {
  const Tensor scale = max(abs(before));
  return (max(abs(after - before)) / scale).item();
}

// A random folded float64 model and its logits on a fixed input; each group element acts
// on the parameters, the logits are compared, and the parameters are put back.
class SymmetryProbe {
 public:
  SymmetryProbe(const PDEResNetConfig& config, std::uint64_t seed)
      : model_(random_folded_model(config, seed, kSize)) {
    Generator gen(seed + 2);
    x_ = uniform({3, config.in_channels, kSize, kSize}, -1, 1, gen, DType::f64);
    NoGradGuard no_grad;
    logits_ = (*model_)(x_);
    for (const auto& [name, p] : model_->named_parameters()) {
      Tensor saved = zeros_like(p);
      copy_(saved, p);
      saved_.emplace_back(p, saved);
    }
  }

  // The logits' relative change when `element` acts on stream `index`.
  double logit_change(std::size_t index, const GroupElement& element) {
    act_on_stream(*model_, model_->stream_structure().streams.at(index), element.q, element.q_inverse);
    NoGradGuard no_grad;
    const double change = relative_change((*model_)(x_), logits_);
    for (auto& [p, saved] : saved_) copy_(p, saved);
    return change;
  }

 private:
  static constexpr std::int64_t kSize = 16;
  std::shared_ptr<PDEResNet> model_;
  Tensor x_, logits_;
  std::vector<std::pair<Tensor, Tensor>> saved_;
};

std::vector<std::string> parameter_names(const std::vector<ChannelAxis>& axes, std::int64_t axis) {
  std::vector<std::string> names;
  for (const ChannelAxis& a : axes) {
    REQUIRE(a.axis == axis);
    names.push_back(a.parameter);
  }
  return names;
}

using Names = std::vector<std::string>;

}  // namespace

TEST_CASE("PDEResNet: config B has 143,162 parameters, G the same", "[pde_resnet]") {
  const std::vector<std::array<std::int64_t, 3>> stages = {{16, 2, 1}, {32, 2, 2}, {64, 2, 2}};
  REQUIRE(network_count(1, 16, 3, stages, 10, quasi_linear_count) == 143162);
  REQUIRE(PDEResNet(config_B()).num_parameters() == 143162);
  REQUIRE(PDEResNet(config_G()).num_parameters() == 143162);
  REQUIRE(PDEResNet(preset("B")).num_parameters() == 143162);
  REQUIRE_THROWS_WITH(preset("b"), Catch::Contains("\"b\"") && Catch::Contains("imagenet"));
}

TEST_CASE("PDEResNet: the ReLU baseline of config B", "[pde_resnet]") {
  const PDEResNetConfig config = baseline_of(config_B());
  REQUIRE(config.block == BlockKind::basic);
  PDEResNet model(config);
  const std::vector<std::array<std::int64_t, 3>> stages = {{16, 2, 1}, {32, 2, 2}, {64, 2, 2}};
  REQUIRE(model.num_parameters() == network_count(1, 16, 3, stages, 10, basic_count));
  REQUIRE(model.head_ball == nullptr);
  REQUIRE_THROWS_WITH(model.stream_structure(), Catch::Contains("BasicBlock"));
  Generator gen(3);
  const Tensor logits = model(uniform({2, 1, 28, 28}, 0, 1, gen));
  REQUIRE(logits.shape() == Shape{2, 10});
}

TEST_CASE("PDEResNet: forward shapes and parameter names of B and G", "[pde_resnet]") {
  Generator gen(4);
  const Tensor x = uniform({2, 1, 28, 28}, 0, 1, gen);
  for (const PDEResNetConfig& config : {config_B(), config_G()}) {
    nn::manual_seed(1);
    PDEResNet model(config);
    const Tensor logits = model(x);
    REQUIRE(logits.shape() == Shape{2, 10});
    for (double v : logits.to_vector()) REQUIRE(std::isfinite(v));
  }
  PDEResNet model(config_B());
  Names children;
  for (const auto& [name, child] : model.named_children()) children.push_back(name);
  REQUIRE(children == Names{"stem", "stage1", "stage2", "stage3", "head_ball", "fc"});
  REQUIRE(model.head_ball->radius() == 8);
  const auto parameters = model.named_parameters();
  REQUIRE(parameters.front().first == "stem.conv.weight");
  REQUIRE(std::any_of(parameters.begin(), parameters.end(),
                      [](const auto& p) { return p.first == "stage2.0.skip.conv.weight"; }));
  REQUIRE(parameters.back().first == "fc.bias");
  REQUIRE_THROWS_WITH(model(uniform({2, 3, 28, 28}, 0, 1, gen)),
                      Catch::Contains("PDEResNet") && Catch::Contains("[2, 3, 28, 28]"));
  REQUIRE_THROWS_WITH(PDEResNet(PDEResNetConfig{}), Catch::Contains("stage"));
}

TEST_CASE("PDEResNet: the ImageNet layout", "[pde_resnet]") {
  const std::vector<std::array<std::int64_t, 3>> stages = {{64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}};
  const std::int64_t expected = network_count(3, 64, 7, stages, 100, quasi_linear_count);
  REQUIRE(expected > 9'400'000);
  REQUIRE(expected < 9'600'000);
  PDEResNet model(config_imagenet(100));
  REQUIRE(model.num_parameters() == expected);
  REQUIRE(model.head_ball->radius() == Approx(std::sqrt(512.0)));

  model.eval();
  Generator gen(5);
  const Tensor x = uniform({1, 3, 224, 224}, -1, 1, gen);
  const auto start = std::chrono::steady_clock::now();
  NoGradGuard no_grad;
  const Tensor logits = model(x);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "PDEResNet ImageNet layout: forward of [1, 3, 224, 224] took " << seconds << " s\n";
  REQUIRE(logits.shape() == Shape{1, 100});
  for (double v : logits.to_vector()) REQUIRE(std::isfinite(v));
}

TEST_CASE("PDEResNet: forward_macs of B and G (docs/background.md: about 21M and 5.6M)", "[pde_resnet]") {
  const double b = static_cast<double>(PDEResNet(config_B()).forward_macs(28, 28));
  const double g = static_cast<double>(PDEResNet(config_G()).forward_macs(28, 28));
  REQUIRE(std::abs(b - 21e6) <= 0.1 * 21e6);
  REQUIRE(std::abs(g - 5.6e6) <= 0.1 * 5.6e6);
  // The stem alone, counted by hand: 16 filters of 3x3 over 28x28 outputs.
  PDEResNetConfig tiny = config_B();
  tiny.stages = {{16, 1, 1}};
  const std::int64_t w = 64;  // 4 * 16
  const std::int64_t block = (2 * w * 16 + 2 * w * 9 + 16 * 2 * w) * 28 * 28;
  REQUIRE(PDEResNet(tiny).forward_macs(28, 28) == 16 * 9 * 28 * 28 + block + 16 * 10);
}

TEST_CASE("PDEResNet: the residual streams of config B", "[pde_resnet][symmetry]") {
  const PDEResNet model(config_B());
  const StreamStructure structure = model.stream_structure();
  REQUIRE(structure.streams.size() == 3);
  const ResidualStream& s1 = structure.streams[0];
  const ResidualStream& s2 = structure.streams[1];
  const ResidualStream& s3 = structure.streams[2];

  REQUIRE(s1.name == "stage1");
  REQUIRE(s1.channels == 16);
  REQUIRE(s1.entry == StreamBoundary::relu);
  REQUIRE(s1.exit == StreamBoundary::linear);
  REQUIRE(parameter_names(s1.producers, 0) ==
          Names{"stem.conv.weight", "stage1.0.conv3.conv.weight", "stage1.1.conv3.conv.weight"});
  REQUIRE(parameter_names(s1.consumers, 1) == Names{"stage1.0.conv1.conv.weight", "stage1.1.conv1.conv.weight",
                                                    "stage2.0.conv1.conv.weight", "stage2.0.skip.conv.weight"});
  REQUIRE(s1.blocks == Names{"stage1.0", "stage1.1"});
  REQUIRE(s1.batch_norms == Names{"stem.bn", "stage1.0.conv3.bn", "stage1.1.conv3.bn"});

  REQUIRE(s2.name == "stage2");
  REQUIRE(s2.channels == 32);
  REQUIRE(s2.entry == StreamBoundary::hardball);
  REQUIRE(s2.exit == StreamBoundary::linear);
  REQUIRE(parameter_names(s2.producers, 0) ==
          Names{"stage2.0.conv3.conv.weight", "stage2.0.skip.conv.weight", "stage2.1.conv3.conv.weight"});
  REQUIRE(parameter_names(s2.consumers, 1) ==
          Names{"stage2.1.conv1.conv.weight", "stage3.0.conv1.conv.weight", "stage3.0.skip.conv.weight"});
  REQUIRE(s2.blocks == Names{"stage2.1"});
  REQUIRE(s2.batch_norms == Names{"stage2.0.conv3.bn", "stage2.0.skip.bn", "stage2.1.conv3.bn"});

  REQUIRE(s3.name == "stage3");
  REQUIRE(s3.channels == 64);
  REQUIRE(s3.entry == StreamBoundary::hardball);
  REQUIRE(s3.exit == StreamBoundary::hardball);  // the head's hardball
  REQUIRE(parameter_names(s3.producers, 0) ==
          Names{"stage3.0.conv3.conv.weight", "stage3.0.skip.conv.weight", "stage3.1.conv3.conv.weight"});
  REQUIRE(parameter_names(s3.consumers, 1) == Names{"stage3.1.conv1.conv.weight", "fc.weight"});
  REQUIRE(s3.blocks == Names{"stage3.1"});

  const json j = structure.to_json();
  REQUIRE(j.at("streams").size() == 3);
  REQUIRE(j["streams"][0]["entry"] == "relu");
  REQUIRE(j["streams"][2]["exit"] == "hardball");
  REQUIRE(j["streams"][1]["producers"][1] == json{{"parameter", "stage2.0.skip.conv.weight"}, {"axis", 0}});
  REQUIRE(j["streams"][2]["consumers"][1] == json{{"parameter", "fc.weight"}, {"axis", 1}});
  REQUIRE(to_string(StreamBoundary::linear) == "linear");
}

TEST_CASE("PDEResNet: folded streams list the conv biases, and no BatchNorms", "[pde_resnet][symmetry]") {
  PDEResNetConfig config = config_B();
  config.folded = true;
  const PDEResNet model(config);
  const ResidualStream s1 = model.stream_structure().streams[0];
  REQUIRE(parameter_names(s1.producers, 0) ==
          Names{"stem.conv.weight", "stem.conv.bias", "stage1.0.conv3.conv.weight", "stage1.0.conv3.conv.bias",
                "stage1.1.conv3.conv.weight", "stage1.1.conv3.conv.bias"});
  REQUIRE(s1.batch_norms.empty());
}

TEST_CASE("PDEResNet: full_gl_variant_of(B) has only linear stream boundaries", "[pde_resnet][symmetry]") {
  const PDEResNetConfig config = full_gl_variant_of(config_B());
  REQUIRE_FALSE(config.stem_relu);
  const PDEResNet model(config);
  REQUIRE(model.head_ball == nullptr);
  const StreamStructure structure = model.stream_structure();
  REQUIRE(structure.streams.size() == 3);
  for (const ResidualStream& s : structure.streams) {
    INFO(s.name);
    REQUIRE(s.entry == StreamBoundary::linear);
    REQUIRE(s.exit == StreamBoundary::linear);
  }
  REQUIRE(model.num_parameters() == 143162);  // the same layout
}

TEST_CASE("PDEResNet: every stream of the folded full-GL variant carries GL(n)", "[pde_resnet][symmetry]") {
  const PDEResNetConfig config = full_gl_variant_of(config_B());
  SymmetryProbe probe(config, 10);
  for (std::size_t index = 0; index < 3; ++index) {
    const std::int64_t n = config.stages[index].channels;
    INFO("stream " << index);
    REQUIRE(probe.logit_change(index, random_group_element(n, 0.5, 2.0, 20 + index)) < 1e-10);
  }
}

TEST_CASE("PDEResNet: a hardball stream of config B carries O(n), not GL(n)", "[pde_resnet][symmetry]") {
  const PDEResNetConfig config = config_B();
  SymmetryProbe probe(config, 11);
  for (std::size_t index : {1, 2}) {
    const std::int64_t n = config.stages[index].channels;
    INFO("stream " << index);
    REQUIRE(probe.logit_change(index, random_group_element(n, 1.0, 1.0, 30 + index)) < 1e-10);
    // A non-orthogonal element (condition number 10) changes what the hardball sees, so
    // the logits move.
    REQUIRE(probe.logit_change(index, random_group_element(n, 0.5, 5.0, 40 + index)) > 1e-3);
    // Put back, the orthogonal element passes again: the probe restored the parameters.
    REQUIRE(probe.logit_change(index, random_group_element(n, 1.0, 1.0, 30 + index)) < 1e-10);
  }
}

TEST_CASE("PDEResNet: the ReLU stream of config B carries positive rescalings only", "[pde_resnet][symmetry]") {
  SymmetryProbe probe(config_B(), 11);
  REQUIRE(probe.logit_change(0, random_positive_diagonal(16, 50)) < 1e-10);
  REQUIRE(probe.logit_change(0, random_group_element(16, 1.0, 1.0, 51)) > 1e-3);
}

TEST_CASE("PDEResNet: built from JSON", "[pde_resnet][json]") {
  register_model_types();
  register_model_types();  // harmless twice
  nn::manual_seed(7);
  auto model = nn::build_model({{"type", "PDEResNet"}, {"preset", "B"}});
  REQUIRE(model->num_parameters() == 143162);
  REQUIRE(model->type_name() == "PDEResNet");
  // The same seed gives the same model as the C++ constructor.
  nn::manual_seed(7);
  PDEResNet direct(config_B());
  REQUIRE(direct.named_parameters()[0].second.to_vector() == model->named_parameters()[0].second.to_vector());

  auto custom = std::dynamic_pointer_cast<PDEResNet>(nn::build_model(json::parse(R"({
    "type": "PDEResNet", "preset": "G", "block": "basic", "num_classes": 3, "stem_channels": 8,
    "stages": [[8, 1, 1], [12, 1, 2]], "padding_mode": "circular", "bn_eps": 0.001,
    "bn_momentum": 0.2, "zero_init_last_bn": false})")));
  REQUIRE(custom);
  const PDEResNetConfig& c = custom->config();
  REQUIRE(c.block == BlockKind::basic);
  REQUIRE(c.stem_stride == 2);
  REQUIRE(c.num_classes == 3);
  REQUIRE(c.stages.size() == 2);
  REQUIRE(c.stages[1].channels == 12);
  REQUIRE(c.padding_mode == PadMode::circular);
  REQUIRE(c.batch_norm.eps == 0.001);
  REQUIRE(c.batch_norm.momentum == 0.2);
  REQUIRE_FALSE(c.zero_init_last_bn);
  REQUIRE(custom->num_parameters() ==
          network_count(1, 8, 3, {{8, 1, 1}, {12, 1, 2}}, 3, basic_count));

  auto wide = std::dynamic_pointer_cast<PDEResNet>(nn::build_model(
      {{"type", "PDEResNet"}, {"stages", {{4, 1, 1}}}, {"stem_channels", 4}, {"width_factor", 2},
       {"variable_coefficients", true}, {"head_hardball", false}, {"stem_relu", false}}));
  REQUIRE(wide->head_ball == nullptr);
  REQUIRE(wide->config().variable_coefficients);
  REQUIRE(wide->config().width_factor == 2);

  auto f64 = nn::build_model({{"type", "PDEResNet"}, {"preset", "G"}, {"dtype", "float64"}});
  REQUIRE(f64->dtype() == DType::f64);
  Generator gen(8);
  REQUIRE((*f64)(uniform({1, 1, 28, 28}, 0, 1, gen, DType::f64)).dtype() == DType::f64);
}

TEST_CASE("PDEResNet: JSON errors name the key and the value", "[pde_resnet][json]") {
  register_model_types();
  const auto build = [](const std::string& text) { return nn::build_model(json::parse(text)); };
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "stem_kernal": 3})"),
                      Catch::Contains("unknown key \"stem_kernal\"") && Catch::Contains("stem_kernel"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "C"})"), Catch::Contains("\"C\""));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet"})"), Catch::Contains("preset"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "stem_stride": 0})"),
                      Catch::Contains("stem_stride") && Catch::Contains("positive"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "block": "bottleneck"})"),
                      Catch::Contains("block") && Catch::Contains("bottleneck"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "padding_mode": "mirror"})"),
                      Catch::Contains("padding_mode") && Catch::Contains("mirror"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "stages": [[16, 2]]})"),
                      Catch::Contains("stages[0]"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "stages": [[16, 0, 1]]})"),
                      Catch::Contains("stages[0][1]"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "head_radius": -1})"),
                      Catch::Contains("head_radius"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "stem_relu": 1})"),
                      Catch::Contains("stem_relu") && Catch::Contains("true or false"));
  REQUIRE_THROWS_WITH(build(R"({"type": "PDEResNet", "preset": "B", "bn_momentum": 2})"),
                      Catch::Contains("bn_momentum"));
  REQUIRE_THROWS_WITH(pde_resnet_config_from_json(json::array(), DType::f32), Catch::Contains("object"));
}
