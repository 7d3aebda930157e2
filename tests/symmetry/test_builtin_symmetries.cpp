// The built-in weight symmetries on small random float64 models -- an MLP with a linear
// pair, one with a ReLU, one with BatchNorm and a ReLU, a conv net, and tiny PDEResNets --
// checked as facts about the model's function, not about the code that lists them:
//  (a) acting with g drawn from the group (exp of a random algebra element) leaves the
//      output unchanged: logits, softmax probabilities for the translation, the
//      training-mode output for BatchNorm scale; 1e-12 relative in float64, 1e-4 in float32;
//  (b) negative controls: g outside the group (general GL across a ReLU or a hardball,
//      a positive diagonal on BN in eval mode with real running statistics, any GL on a
//      stream with unfolded BatchNorms) changes the output by 1e-2 or more;
//  (c) orbit_tangent against central differences of act(exp(t xi));
//  (e) symmetries_of lists what is expected, with names, algebras and dimensions;
//  (f) malformed structures throw naming the field.
#include "symmetry/builtin_symmetries.hpp"

#include <cmath>
#include <functional>

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/batchnorm.hpp"
#include "nn/layers/conv2d.hpp"
#include "nn/layers/dropout.hpp"
#include "nn/layers/flatten.hpp"
#include "nn/layers/linear.hpp"
#include "nn/parameter_scope.hpp"
#include "pde/fold_bn.hpp"
#include "pde/pde_resnet.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::symmetry;
using symgrad::testing::require_allclose;
using json = nlohmann::json;
using Modules = std::vector<std::shared_ptr<nn::Module>>;

namespace {

// ---- group elements ---------------------------------------------------------------------

// exp(A) by its power series (no dependence on expm); fine for ||A|| up to a few.
Tensor series_exp(const Tensor& a) {
  Tensor term = eye(a.size(0), -1, a.dtype());
  Tensor total = term;
  for (int k = 1; k <= 40; ++k) {
    term = matmul(term, a) / static_cast<double>(k);
    total = total + term;
  }
  return total;
}

// A random element of the algebra: sum_k c_k e_k with c_k uniform in [-scale, scale].
Tensor random_element(const LieAlgebra& algebra, std::uint64_t seed, double scale, DType dtype = DType::f64) {
  Generator gen(seed);
  return algebra.element(uniform({algebra.dim()}, -scale, scale, gen, dtype));
}

// exp of a random element, normalised so that ||xi||_F is about 1.5 whatever n.
Tensor random_group_element(const LieAlgebra& algebra, std::uint64_t seed, DType dtype = DType::f64) {
  const Tensor xi = random_element(algebra, seed, 1.0, dtype);
  const double norm = std::sqrt(sum(square(xi)).item());
  return series_exp(xi * (1.5 / norm));
}

// A general invertible matrix, condition number <= 4: outside every proper subgroup.
Tensor random_invertible(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  Tensor u = zeros({n, n}, DType::f64), v = zeros({n, n}, DType::f64);
  nn::orthogonal_(u, 1.0, &gen);
  nn::orthogonal_(v, 1.0, &gen);
  return matmul(u * reshape(uniform({n}, 0.5, 2.0, gen, DType::f64), {1, n}), transpose(v));
}

// ---- running a model with acted-on parameters ----------------------------------------

Tensor output_after(nn::Module& model, const WeightSymmetry& s, const Tensor& g, const Tensor& x) {
  NoGradGuard no_grad;
  const ParameterMap moved = act(s, g, parameter_map(model));
  return nn::with_parameters(model, moved, [&] { return model(x); });
}

Tensor output_of(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  return model(x);
}

double relative_change(const Tensor& after, const Tensor& before) {
  return (max(abs(after - before)) / max(abs(before))).item();
}

std::vector<std::string> names_of(const std::vector<WeightSymmetry>& all) {
  std::vector<std::string> names;
  for (const WeightSymmetry& s : all) names.push_back(s.name);
  return names;
}

Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  return uniform(shape, -1, 1, gen, dtype);
}

// ---- the models -----------------------------------------------------------------------

std::shared_ptr<nn::Sequential> sequential(std::uint64_t seed, const std::function<Modules()>& make) {
  nn::manual_seed(seed);
  return std::make_shared<nn::Sequential>(make());
}

// Linear - Flatten (a no-op on [N, F]) - Linear.
std::shared_ptr<nn::Sequential> pair_mlp() {
  return sequential(1, [] {
    return Modules{std::make_shared<nn::Linear>(3, 4, true, DType::f64), std::make_shared<nn::Flatten>(),
                   std::make_shared<nn::Linear>(4, 3, true, DType::f64)};
  });
}

// Linear - ReLU - Dropout - Linear (eval mode: Dropout is the identity).
std::shared_ptr<nn::Sequential> relu_mlp() {
  auto m = sequential(2, [] {
    return Modules{std::make_shared<nn::Linear>(3, 5, true, DType::f64), std::make_shared<nn::ReLU>(),
                   std::make_shared<nn::Dropout>(0.3), std::make_shared<nn::Linear>(5, 2, true, DType::f64)};
  });
  m->eval();
  return m;
}

// Linear - BatchNorm1d (eps 0: the scale symmetry is then exact) - ReLU - Linear, with
// random BN weights and running statistics moved by a few training passes.
std::shared_ptr<nn::Sequential> batchnorm_mlp() {
  auto m = sequential(3, [] {
    return Modules{std::make_shared<nn::Linear>(3, 4, true, DType::f64),
                   std::make_shared<nn::BatchNorm1d>(4, nn::BatchNormOptions{.eps = 0, .momentum = 0.5, .dtype = DType::f64}),
                   std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(4, 2, true, DType::f64)};
  });
  Generator gen(30);
  NoGradGuard no_grad;
  auto bn = std::dynamic_pointer_cast<nn::BatchNorm>((*m)[1]);
  nn::uniform_(bn->weight, 0.5, 1.5, &gen);
  nn::uniform_(bn->bias, -0.5, 0.5, &gen);
  for (int pass = 0; pass < 3; ++pass) (*m)(uniform({8, 3}, -1, 1, gen, DType::f64) * 2.0 + 0.5);
  return m;
}

// conv 3x3 - conv 3x3 - ReLU - conv 3x3 - BatchNorm2d - ReLU - conv 1x1.
std::shared_ptr<nn::Sequential> conv_net() {
  const auto conv = [](std::int64_t in, std::int64_t out, std::int64_t k, PadMode mode) {
    return std::make_shared<nn::Conv2d>(nn::Conv2dConfig{.in_channels = in, .out_channels = out, .kernel_h = k,
                                                         .kernel_w = k, .padding_h = k / 2, .padding_w = k / 2,
                                                         .padding_mode = mode, .dtype = DType::f64});
  };
  return sequential(4, [&] {
    return Modules{conv(2, 3, 3, PadMode::zeros), conv(3, 4, 3, PadMode::circular), std::make_shared<nn::ReLU>(),
                   conv(4, 4, 3, PadMode::zeros),
                   std::make_shared<nn::BatchNorm2d>(4, nn::BatchNormOptions{.eps = 0, .dtype = DType::f64}),
                   std::make_shared<nn::ReLU>(), conv(4, 3, 1, PadMode::zeros)};
  });
}

// A tiny quasi-linear PDEResNet: stem 4 (+ ReLU), stage1 {4, 1, 1} (an identity block),
// stage2 {6, 1, 2} (a projection block behind a hardball), head hardball; random BN
// weights and running statistics; folded unless asked.
std::shared_ptr<pde::PDEResNet> tiny_resnet(pde::PDEResNetConfig config, bool fold, std::uint64_t seed) {
  config.dtype = DType::f64;
  config.batch_norm.momentum = 0.5;
  config.zero_init_last_bn = false;
  nn::manual_seed(seed);
  auto model = std::make_shared<pde::PDEResNet>(config);
  Generator gen(seed + 1);
  {
    NoGradGuard no_grad;
    for (const auto& [name, module] : model->named_modules())
      if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm>(module)) {
        nn::uniform_(bn->weight, 0.5, 1.5, &gen);
        nn::uniform_(bn->bias, -0.5, 0.5, &gen);
      }
    model->train();
    for (int pass = 0; pass < 3; ++pass) (*model)(uniform({4, 1, 8, 8}, -1, 1, gen, DType::f64));
  }
  model->eval();
  return fold ? pde::fold_batch_norms(*model) : model;
}

pde::PDEResNetConfig tiny_config() {
  pde::PDEResNetConfig c;
  c.in_channels = 1;
  c.num_classes = 3;
  c.stem_channels = 4;
  c.stages = {{4, 1, 1}, {6, 1, 2}};
  c.width_factor = 1;
  c.head_radius = 0.3;  // small enough that the head's hardball really projects
  return c;
}

}  // namespace

TEST_CASE("symmetries_of: what each small model carries", "[builtin_symmetries]") {
  const auto pair = symmetries_of(*pair_mlp());
  REQUIRE(names_of(pair) == std::vector<std::string>{"0-2 linear pair", "2 softmax translation"});
  REQUIRE(pair[0].kind == "linear_pair");
  REQUIRE(pair[0].algebra.name() == "gl(4)");
  REQUIRE(pair[0].algebra.dim() == 16);
  REQUIRE(pair[0].mode == ModeRequirement::any);
  REQUIRE(pair[0].to_json().at("actions") ==
          json::parse(R"([{"parameter": "0.weight", "axis": 0, "factor": "g"},
                          {"parameter": "0.bias", "axis": 0, "factor": "g"},
                          {"parameter": "2.weight", "axis": 1, "factor": "g^-T"}])"));
  REQUIRE(pair[1].kind == "softmax_translation");
  REQUIRE(pair[1].algebra.dim() == 1);
  REQUIRE(pair[1].algebra.n() == 2);
  REQUIRE(pair[1].actions.size() == 1);
  REQUIRE(pair[1].actions[0].parameter == "2.bias");
  REQUIRE(pair[1].notes.at(0).find("softmax probabilities") != std::string::npos);

  const auto relu = symmetries_of(*relu_mlp());
  REQUIRE(names_of(relu) == std::vector<std::string>{"1 relu rescaling", "3 softmax translation"});
  REQUIRE(relu[0].algebra.name() == "diagonal(5)");
  REQUIRE(relu[0].algebra.dim() == 5);
  REQUIRE(relu[0].actions.back().parameter == "3.weight");

  const auto bn = symmetries_of(*batchnorm_mlp());
  REQUIRE(names_of(bn) ==
          std::vector<std::string>{"1 batchnorm scale", "2 relu rescaling", "3 softmax translation"});
  REQUIRE(bn[0].mode == ModeRequirement::train);
  REQUIRE(bn[0].algebra.dim() == 4);
  REQUIRE(bn[0].actions.size() == 2);  // 0.weight and 0.bias
  REQUIRE(bn[1].actions[0].parameter == "1.weight");  // the BN's own scale and shift feed the ReLU
  REQUIRE(bn[1].actions[1].parameter == "1.bias");

  const auto conv = symmetries_of(*conv_net());
  REQUIRE(names_of(conv) == std::vector<std::string>{"0-1 linear pair", "2 relu rescaling", "4 batchnorm scale",
                                                     "5 relu rescaling"});
  REQUIRE(conv[0].algebra.dim() == 9);
  REQUIRE(conv[1].algebra.dim() == 4);
  // The default eps of a BatchNorm makes the scale symmetry approximate: a note says so.
  auto eps_net = sequential(5, [] {
    return Modules{std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::BatchNorm1d>(4)};
  });
  const auto approximate = symmetries_of(*eps_net);
  REQUIRE(names_of(approximate) == std::vector<std::string>{"1 batchnorm scale"});
  bool mentions_eps = false;
  for (const std::string& note : approximate[0].notes) mentions_eps |= note.find("eps = 1e-05") != std::string::npos;
  REQUIRE(mentions_eps);
  // Nothing to find: a lone ReLU, a Linear without bias at the end, a grouped conv pair.
  REQUIRE(symmetries_of(nn::ReLU()).empty());
  auto bare = sequential(6, [] { return Modules{std::make_shared<nn::Linear>(3, 4, false)}; });
  REQUIRE(symmetries_of(*bare).empty());
  auto grouped = sequential(7, [] {
    return Modules{std::make_shared<nn::Conv2d>(nn::Conv2dConfig{.in_channels = 4, .out_channels = 4, .kernel_h = 1,
                                                                 .kernel_w = 1, .groups = 2}),
                   std::make_shared<nn::Conv2d>(nn::Conv2dConfig{.in_channels = 4, .out_channels = 4, .kernel_h = 1,
                                                                 .kernel_w = 1})};
  });
  REQUIRE(symmetries_of(*grouped).empty());
}

TEST_CASE("symmetries_of: the residual streams of tiny PDEResNets", "[builtin_symmetries][pde]") {
  const auto streams = symmetries_of(*tiny_resnet(tiny_config(), true, 1));
  REQUIRE(names_of(streams) == std::vector<std::string>{"stage1 stream", "stage2 stream"});
  REQUIRE(streams[0].algebra.name() == "diagonal(4)");  // the stem's ReLU
  REQUIRE(streams[1].algebra.name() == "so(6)");        // hardballs at both ends
  REQUIRE(streams[1].algebra.dim() == 15);
  for (const WeightSymmetry& s : streams) {
    REQUIRE(s.kind == "residual_stream");
    REQUIRE(s.mode == ModeRequirement::eval);
  }
  const auto full = symmetries_of(*tiny_resnet(pde::full_gl_variant_of(tiny_config()), true, 2));
  REQUIRE(full.size() == 2);
  REQUIRE(full[0].algebra.name() == "gl(4)");
  REQUIRE(full[1].algebra.name() == "gl(6)");
  REQUIRE(full[1].algebra.dim() == 36);
  // Unfolded: a note per BatchNorm between a producer and the stream.
  const auto unfolded = symmetries_of(*tiny_resnet(pde::full_gl_variant_of(tiny_config()), false, 2));
  REQUIRE(unfolded[1].notes.size() == 2);
  REQUIRE(unfolded[1].notes[0].find("stage2.0.conv3.bn") != std::string::npos);
  REQUIRE(unfolded[1].notes[0].find("fold") != std::string::npos);
  // One stage with a ReLU at its entry and the head's hardball at its exit: only the
  // identity commutes with both, so the stream is left out.
  pde::PDEResNetConfig one_stage = tiny_config();
  one_stage.stages = {{4, 1, 1}};
  REQUIRE(symmetries_of(*tiny_resnet(one_stage, true, 3)).empty());
}

TEST_CASE("built-in symmetries leave the function unchanged for g in the group", "[builtin_symmetries]") {
  const Tensor x = random_tensor({6, 3}, 40) * 2.0;
  struct Case {
    std::shared_ptr<nn::Module> model;
    Tensor x;
  };
  const Tensor images = random_tensor({2, 2, 5, 5}, 41);
  for (const Case& c : {Case{pair_mlp(), x}, Case{relu_mlp(), x}, Case{batchnorm_mlp(), x}, Case{conv_net(), images}}) {
    std::uint64_t seed = 100;
    for (const WeightSymmetry& s : symmetries_of(*c.model)) {
      INFO(s.name);
      c.model->train(s.mode == ModeRequirement::train);
      const Tensor before = output_of(*c.model, c.x);
      const Tensor g = random_group_element(s.algebra, seed++);
      const Tensor after = output_after(*c.model, s, g, c.x);
      if (s.kind == "softmax_translation") {
        // The logits move by c = g[0][1]; the probabilities do not.
        REQUIRE(std::abs(g.to_vector()[1]) > 0.1);
        require_allclose(after - before, std::vector<double>(before.numel(), g.to_vector()[1]), 0, 1e-12);
        REQUIRE(relative_change(softmax(after), softmax(before)) <= 1e-12);
      } else {
        const double change = relative_change(after, before);
        INFO("relative change " << change);
        REQUIRE(change <= 1e-12);
      }
    }
  }
}

TEST_CASE("built-in symmetries: float32 invariance within 1e-4", "[builtin_symmetries]") {
  const Tensor x = random_tensor({6, 3}, 42, DType::f32);
  for (const auto& model : {std::shared_ptr<nn::Module>(pair_mlp()), std::shared_ptr<nn::Module>(relu_mlp())}) {
    model->to(DType::f32);
    for (const WeightSymmetry& s : symmetries_of(*model)) {
      if (s.kind == "softmax_translation") continue;
      INFO(s.name);
      const Tensor g = random_group_element(s.algebra, 7, DType::f32);
      REQUIRE(g.dtype() == DType::f32);
      REQUIRE(relative_change(output_after(*model, s, g, x), output_of(*model, x)) <= 1e-4);
    }
  }
}

TEST_CASE("residual streams: invariance in the group, and negative controls outside it", "[builtin_symmetries][pde]") {
  const Tensor x = random_tensor({3, 1, 8, 8}, 50);
  // Full-GL variant, folded: any invertible g on either stream.
  auto full = tiny_resnet(pde::full_gl_variant_of(tiny_config()), true, 4);
  const Tensor full_logits = output_of(*full, x);
  for (const WeightSymmetry& s : symmetries_of(*full)) {
    INFO(s.name);
    const double by_exp = relative_change(output_after(*full, s, random_group_element(s.algebra, 60), x), full_logits);
    const double by_svd = relative_change(output_after(*full, s, random_invertible(s.algebra.n(), 61), x), full_logits);
    INFO("relative change " << by_exp << " (exp), " << by_svd << " (U S V^T)");
    REQUIRE(by_exp <= 1e-12);
    REQUIRE(by_svd <= 1e-12);
  }
  // Unfolded, the same streams' GL action changes the output: its BatchNorms stand between.
  auto unfolded = tiny_resnet(pde::full_gl_variant_of(tiny_config()), false, 4);
  for (const WeightSymmetry& s : symmetries_of(*unfolded)) {
    INFO(s.name);
    REQUIRE(relative_change(output_after(*unfolded, s, random_group_element(s.algebra, 62), x),
                            output_of(*unfolded, x)) >= 1e-2);
  }
  // Config-B-like: a ReLU stream (positive diagonals pass, general GL does not) and a
  // hardball stream (rotations pass, general GL does not).
  auto model = tiny_resnet(tiny_config(), true, 5);
  const Tensor logits = output_of(*model, x);
  for (const WeightSymmetry& s : symmetries_of(*model)) {
    INFO(s.name);
    const double in_group = relative_change(output_after(*model, s, random_group_element(s.algebra, 63), x), logits);
    const double outside = relative_change(output_after(*model, s, random_invertible(s.algebra.n(), 64), x), logits);
    INFO("relative change in the group " << in_group << ", outside " << outside);
    REQUIRE(in_group <= 1e-12);
    REQUIRE(outside >= 1e-2);
  }
}

TEST_CASE("built-in symmetries: negative controls on the small models", "[builtin_symmetries]") {
  const Tensor x = random_tensor({6, 3}, 70) * 2.0;
  // General GL across a ReLU.
  auto relu = relu_mlp();
  const WeightSymmetry rescaling = symmetries_of(*relu).at(0);
  REQUIRE(relative_change(output_after(*relu, rescaling, random_invertible(5, 71), x), output_of(*relu, x)) >= 1e-2);
  // A positive diagonal on the BN scale symmetry in eval mode: the running statistics do
  // not follow the scaling.
  auto bn = batchnorm_mlp();
  const WeightSymmetry scale = symmetries_of(*bn).at(0);
  const Tensor g = random_group_element(scale.algebra, 72);
  bn->train();
  REQUIRE(relative_change(output_after(*bn, scale, g, x), output_of(*bn, x)) <= 1e-12);
  bn->eval();
  REQUIRE(relative_change(output_after(*bn, scale, g, x), output_of(*bn, x)) >= 1e-2);
  // The translation is no symmetry of the logits themselves.
  auto pair = pair_mlp();
  const WeightSymmetry shift = symmetries_of(*pair).at(1);
  REQUIRE(relative_change(output_after(*pair, shift, random_group_element(shift.algebra, 73), x),
                          output_of(*pair, x)) >= 1e-2);
}

TEST_CASE("built-in symmetries: orbit_tangent matches central differences of act(exp(t xi))",
          "[builtin_symmetries]") {
  const double t = 1e-4;
  std::uint64_t seed = 200;
  for (const auto& model : {std::shared_ptr<nn::Module>(batchnorm_mlp()), std::shared_ptr<nn::Module>(conv_net()),
                            std::shared_ptr<nn::Module>(pair_mlp()),
                            std::shared_ptr<nn::Module>(tiny_resnet(tiny_config(), true, 6))}) {
    const ParameterMap theta = parameter_map(*model);
    for (const WeightSymmetry& s : symmetries_of(*model)) {
      INFO(s.name);
      const Tensor xi = random_element(s.algebra, seed++, 1.0);
      const ParameterMap tangent = orbit_tangent(s, xi, theta);
      const ParameterMap plus = act(s, series_exp(xi * t), theta), minus = act(s, series_exp(xi * -t), theta);
      REQUIRE(tangent.size() == plus.size());
      for (const auto& [name, value] : tangent) {
        INFO(name);
        require_allclose(value.detach(), ((plus.at(name) - minus.at(name)) / (2 * t)).detach(), 1e-6, 1e-7);
      }
    }
  }
}

TEST_CASE("residual_stream_symmetries: null, and malformed structures", "[builtin_symmetries]") {
  REQUIRE(residual_stream_symmetries(json()).empty());
  REQUIRE(residual_stream_symmetries(json{{"streams", json::array()}}).empty());
  const json stream = json::parse(R"({"name": "s", "channels": 3, "producers": [{"parameter": "a", "axis": 0}],
      "consumers": [{"parameter": "b", "axis": 1}], "blocks": [], "entry": "linear", "exit": "relu",
      "batch_norms": []})");
  const auto one = residual_stream_symmetries(json{{"streams", {stream}}});
  REQUIRE(one.size() == 1);
  REQUIRE(one[0].algebra.name() == "diagonal(3)");  // a ReLU at the exit counts too
  REQUIRE(one[0].actions[1].factor == GroupFactor::g_inverse_transpose);
  const auto broken = [&](const char* key, const json& value) {
    json s = stream;
    if (value.is_discarded()) s.erase(key);
    else s[key] = value;
    return json{{"streams", {s}}};
  };
  REQUIRE_THROWS_WITH(residual_stream_symmetries(json{{"stream", 1}}), Catch::Contains("\"streams\""));
  REQUIRE_THROWS_WITH(residual_stream_symmetries(json{{"streams", 1}}), Catch::Contains("array"));
  REQUIRE_THROWS_WITH(residual_stream_symmetries(broken("channels", json(json::value_t::discarded))),
                      Catch::Contains("streams[0]") && Catch::Contains("\"channels\""));
  REQUIRE_THROWS_WITH(residual_stream_symmetries(broken("channels", 0)), Catch::Contains("positive"));
  REQUIRE_THROWS_WITH(residual_stream_symmetries(broken("entry", "sigmoid")),
                      Catch::Contains("streams[0].entry") && Catch::Contains("sigmoid"));
  REQUIRE_THROWS_WITH(residual_stream_symmetries(broken("producers", json::array({{{"parameter", "a"}}}))),
                      Catch::Contains("streams[0].producers") && Catch::Contains("\"axis\""));
  REQUIRE_THROWS_WITH(residual_stream_symmetries(broken("consumers", 5)),
                      Catch::Contains("streams[0].consumers") && Catch::Contains("array"));
}
