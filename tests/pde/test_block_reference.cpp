// QuasiLinearBlock, hardball and softball against PyTorch 1.13 in float64: one training-mode
// forward with every parameter and BatchNorm buffer set to random values, the gradients of
// sum(output * weighting) with respect to the input and every parameter, the running
// statistics that forward leaves, and an eval-mode forward afterwards. The cases cover the
// identity and projection skips, the hardball (default and given radius, pixels on both
// sides of the sphere), variable coefficients (stride 1 and on a stride-2 grid) and the
// zeros, reflect, replicate and circular boundaries.
// Reference values: tests/data/pde_block_reference.json, written by
// tools/make_pde_reference.py with the PyTorch models of tools/torch_pde.py.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "engine/inplace.hpp"
#include "pde/hardball.hpp"
#include "pde/quasi_linear_block.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using json = nlohmann::json;

namespace {

const json& reference() {
  return testing::reference_data("pde_block_reference.json", "tools/make_pde_reference.py");
}

Tensor stored(const json& packed) { return testing::tensor_from_json(packed, DType::f64); }

// Relative agreement to 1e-10: each element within 1e-10 of its expected value relative to
// the expected tensor's largest magnitude, or to 1 when that is smaller (every stored value
// is computed from inputs and parameters of order 1; sums whose terms cancel, such as a
// gradient that is 0 in exact arithmetic, are off in the last bits of their terms).
void require_matches(const Tensor& actual, const json& expected_packed) {
  const Tensor expected = stored(expected_packed);
  double scale = 1.0;
  for (double v : expected.to_vector()) scale = std::max(scale, std::abs(v));
  testing::require_allclose(actual, expected, 1e-10, 1e-10 * scale);
}

double largest_magnitude(const Tensor& t) {
  double largest = 0;
  for (double v : t.to_vector()) largest = std::max(largest, std::abs(v));
  return largest;
}

PadMode pad_mode_named(const std::string& name) {
  for (PadMode m : {PadMode::zeros, PadMode::reflect, PadMode::replicate, PadMode::circular})
    if (name == pad_mode_name(m)) return m;
  throw std::invalid_argument("unknown padding mode " + name);
}

pde::QuasiLinearBlockConfig block_config(const json& stored_config) {
  pde::QuasiLinearBlockConfig config;
  config.in_channels = stored_config.at("in_channels");
  config.out_channels = stored_config.at("out_channels");
  config.stride = stored_config.at("stride");
  config.width_factor = stored_config.at("width_factor");
  config.padding_mode = pad_mode_named(stored_config.at("padding_mode"));
  config.variable_coefficients = stored_config.value("variable_coefficients", false);
  config.hardball = stored_config.value("hardball", true);
  config.hardball_radius = stored_config.value("hardball_radius", 0.0);
  config.dtype = DType::f64;  // batch_norm keeps PyTorch's defaults: eps 1e-5, momentum 0.1
  return config;
}

// Copies the case's state into the block by name; the two sets of names must be equal.
void load_state(pde::QuasiLinearBlock& block, const json& state) {
  nn::NamedTensors named = block.named_state();
  std::set<std::string> ours, theirs;
  for (const auto& [name, t] : named) ours.insert(name);
  for (const auto& item : state.items()) theirs.insert(item.key());
  REQUIRE(ours == theirs);
  NoGradGuard no_grad;
  for (auto& [name, t] : named) copy_(t, stored(state.at(name)));
}

}  // namespace

TEST_CASE("QuasiLinearBlock matches PyTorch: output, gradients, running stats, eval output", "[pde][reference]") {
  const json& cases = reference().at("blocks");
  REQUIRE(cases.size() >= 5);
  for (const json& c : cases) {
    DYNAMIC_SECTION(c.at("id").get<std::string>()) {
      pde::QuasiLinearBlock block(block_config(c.at("config")));
      REQUIRE(block.width() == c.at("width").get<std::int64_t>());
      REQUIRE(block.has_hardball() == c.contains("hardball_radius"));
      if (block.has_hardball()) REQUIRE(block.ball->radius() == c.at("hardball_radius").get<double>());
      load_state(block, c.at("state"));

      block.train();
      Tensor x = stored(c.at("input")).requires_grad_();
      const Tensor out = block.forward(x);
      {
        INFO("training-mode output");
        require_matches(out, c.at("output"));
      }

      backward(sum(mul(out, stored(c.at("weighting")))));
      {
        INFO("gradient of the input");
        require_matches(x.grad(), c.at("grads").at("input"));
      }
      const nn::NamedTensors params = block.named_parameters();
      REQUIRE(params.size() + 1 == c.at("grads").size());
      for (const auto& [name, p] : params) {
        INFO("gradient of " << name);
        REQUIRE(p.grad().defined());
        require_matches(p.grad(), c.at("grads").at(name));
      }

      // In exact arithmetic: with constant coefficients a shift of d by the depthwise BN's
      // bias is a per-channel constant after conv3, which conv3's training-mode BN removes;
      // variable coefficients make it vary over the grid, so it reaches the output.
      if (!block.coefficients) CHECK(largest_magnitude(block.depthwise->bn->bias.grad()) < 1e-12);
      if (block.coefficients) CHECK(largest_magnitude(block.depthwise->bn->bias.grad()) > 1e-3);

      const nn::NamedTensors buffers = block.named_buffers();
      REQUIRE(buffers.size() == c.at("running_stats").size());
      for (const auto& [name, t] : buffers) {
        INFO("running statistic " << name);
        require_matches(t, c.at("running_stats").at(name));
      }

      block.eval();
      NoGradGuard no_grad;
      INFO("eval-mode output");
      require_matches(block.forward(stored(c.at("input"))), c.at("eval_output"));
    }
  }
}

TEST_CASE("the hardball cases put pixels on both sides of the sphere", "[pde][reference]") {
  // Without this the hardball comparisons above could pass with a ball that never bites
  // (or always does). Outside pixels land on the sphere ||v|| = r.
  int cases_with_ball = 0;
  for (const json& c : reference().at("blocks")) {
    if (!c.contains("hardball_radius")) continue;
    ++cases_with_ball;
    const double radius = c.at("hardball_radius");
    const Tensor out = stored(c.at("output"));
    const Tensor norms = sqrt(sum(mul(out, out), {1}));
    int inside = 0, on_sphere = 0;
    for (double n : norms.to_vector()) {
      if (std::abs(n - radius) <= 1e-12 * radius) ++on_sphere;
      else if (n < radius) ++inside;
    }
    INFO(c.at("id").get<std::string>());
    CHECK(inside > 0);
    CHECK(on_sphere > 0);
    CHECK(inside + on_sphere == static_cast<int>(norms.numel()));
  }
  CHECK(cases_with_ball >= 2);
}

TEST_CASE("hardball and softball match PyTorch, with identity gradients inside and on the boundary",
          "[pde][reference][hardball]") {
  const json& c = reference().at("balls").at(0);
  const json& hard = c.at("hardball");
  const json& soft = c.at("softball");
  const Tensor weighting = stored(c.at("weighting"));

  SECTION("hardball") {
    Tensor x = stored(c.at("input")).requires_grad_();
    const Tensor out = pde::hardball(x, hard.at("radius").get<double>());
    require_matches(out, hard.at("output"));
    backward(sum(mul(out, weighting)));
    require_matches(x.grad(), hard.at("input_grad"));

    // Independently of PyTorch: the zero pixel (0, :, 0, 0) and the boundary pixel
    // (1, :, 1, 0) = (3, 4, 0, 0, 0) with r = 5 pass the gradient unchanged.
    const Shape shape = x.shape();
    const std::vector<double> grad = x.grad().to_vector(), w = weighting.to_vector();
    auto at = [&](std::int64_t n, std::int64_t ch, std::int64_t i, std::int64_t j) {
      return static_cast<std::size_t>(((n * shape[1] + ch) * shape[2] + i) * shape[3] + j);
    };
    for (std::int64_t ch = 0; ch < shape[1]; ++ch) {
      CHECK(grad[at(0, ch, 0, 0)] == w[at(0, ch, 0, 0)]);
      CHECK(grad[at(1, ch, 1, 0)] == w[at(1, ch, 1, 0)]);
    }
  }

  SECTION("softball") {
    Tensor x = stored(c.at("input")).requires_grad_();
    const Tensor out = pde::softball(x, soft.at("radius").get<double>());
    require_matches(out, soft.at("output"));
    backward(sum(mul(out, weighting)));
    require_matches(x.grad(), soft.at("input_grad"));
  }

  SECTION("the modules compute the functions") {
    const Tensor x = stored(c.at("input"));
    pde::Hardball hardball(hard.at("radius").get<double>());
    pde::Softball softball(soft.at("radius").get<double>());
    require_matches(hardball.forward(x), hard.at("output"));
    require_matches(softball.forward(x), soft.at("output"));
  }
}
