// QuasiLinearBlock, ConvBN and BasicBlock (pde/): the forward against the block's
// equations written out as plain loops (float64, train and eval mode, every padding mode,
// stride 2 with projection and hardball, variable coefficients), gradcheck and
// gradgradcheck, the zero-init identity, parameter names and counts, the width rule,
// coordinate_field, Conv+BN folding, and errors.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/init.hpp"
#include "pde/basic_block.hpp"
#include "pde/quasi_linear_block.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// ---- plain-loop reference ---------------------------------------------------------

// An [N, C, H, W] image as plain doubles.
struct Image {
  std::int64_t n = 0, c = 0, h = 0, w = 0;
  std::vector<double> v;
  Image(std::int64_t n_, std::int64_t c_, std::int64_t h_, std::int64_t w_)
      : n(n_), c(c_), h(h_), w(w_), v(static_cast<std::size_t>(n_ * c_ * h_ * w_), 0.0) {}
  explicit Image(const Tensor& t) : Image(t.size(0), t.size(1), t.size(2), t.size(3)) { v = t.to_vector(); }
  double& at(std::int64_t b, std::int64_t ch, std::int64_t i, std::int64_t j) {
    return v[static_cast<std::size_t>(((b * c + ch) * h + i) * w + j)];
  }
  double at(std::int64_t b, std::int64_t ch, std::int64_t i, std::int64_t j) const {
    return v[static_cast<std::size_t>(((b * c + ch) * h + i) * w + j)];
  }
};

// Where a padded coordinate (-pad .. size - 1 + pad) reads from; -1 for a zero.
std::int64_t source_index(std::int64_t p, std::int64_t size, PadMode mode) {
  if (p >= 0 && p < size) return p;
  switch (mode) {
    case PadMode::zeros: return -1;
    case PadMode::reflect: return p < 0 ? -p : 2 * (size - 1) - p;
    case PadMode::replicate: return p < 0 ? 0 : size - 1;
    case PadMode::circular: return (p % size + size) % size;
  }
  return -1;
}

// Square kernel k, padding k / 2: out[b, o] = bias[o] + sum over the group's inputs.
Image conv_loop(const Image& x, const Tensor& weight, const Tensor& bias, std::int64_t stride, std::int64_t groups,
                PadMode mode) {
  const std::vector<double> wt = weight.to_vector();
  const std::vector<double> bs = bias.defined() ? bias.to_vector() : std::vector<double>();
  const std::int64_t out_c = weight.size(0), in_per_group = weight.size(1), k = weight.size(2), pad = k / 2;
  const std::int64_t out_per_group = out_c / groups;
  Image y(x.n, out_c, (x.h + 2 * pad - k) / stride + 1, (x.w + 2 * pad - k) / stride + 1);
  for (std::int64_t b = 0; b < x.n; ++b)
    for (std::int64_t o = 0; o < out_c; ++o)
      for (std::int64_t i = 0; i < y.h; ++i)
        for (std::int64_t j = 0; j < y.w; ++j) {
          double s = bs.empty() ? 0.0 : bs[static_cast<std::size_t>(o)];
          for (std::int64_t ci = 0; ci < in_per_group; ++ci)
            for (std::int64_t ki = 0; ki < k; ++ki)
              for (std::int64_t kj = 0; kj < k; ++kj) {
                const std::int64_t si = source_index(i * stride + ki - pad, x.h, mode);
                const std::int64_t sj = source_index(j * stride + kj - pad, x.w, mode);
                if (si < 0 || sj < 0) continue;
                const std::int64_t input_channel = (o / out_per_group) * in_per_group + ci;
                s += wt[static_cast<std::size_t>(((o * in_per_group + ci) * k + ki) * k + kj)] *
                     x.at(b, input_channel, si, sj);
              }
          y.at(b, o, i, j) = s;
        }
  return y;
}

// Train mode: the batch's mean and biased variance; eval mode: the running ones.
Image batch_norm_loop(Image x, const nn::BatchNorm2d& bn, bool train) {
  const std::vector<double> gamma = bn.weight.to_vector(), beta = bn.bias.to_vector();
  const std::vector<double> running_mean = bn.running_mean.to_vector(), running_var = bn.running_var.to_vector();
  const double count = static_cast<double>(x.n * x.h * x.w);
  for (std::int64_t ch = 0; ch < x.c; ++ch) {
    const std::size_t c = static_cast<std::size_t>(ch);
    double mean = 0, var = 0;
    for (std::int64_t b = 0; b < x.n; ++b)
      for (std::int64_t i = 0; i < x.h; ++i)
        for (std::int64_t j = 0; j < x.w; ++j) mean += x.at(b, ch, i, j) / count;
    for (std::int64_t b = 0; b < x.n; ++b)
      for (std::int64_t i = 0; i < x.h; ++i)
        for (std::int64_t j = 0; j < x.w; ++j) var += (x.at(b, ch, i, j) - mean) * (x.at(b, ch, i, j) - mean) / count;
    if (!train) mean = running_mean[c], var = running_var[c];
    for (std::int64_t b = 0; b < x.n; ++b)
      for (std::int64_t i = 0; i < x.h; ++i)
        for (std::int64_t j = 0; j < x.w; ++j)
          x.at(b, ch, i, j) = (x.at(b, ch, i, j) - mean) / std::sqrt(var + 1e-5) * gamma[c] + beta[c];
  }
  return x;
}

Image conv_bn_loop(const Image& x, const ConvBN& unit, std::int64_t stride, std::int64_t groups, PadMode mode, bool train) {
  return batch_norm_loop(conv_loop(x, unit.conv->weight, Tensor(), stride, groups, mode), *unit.bn, train);
}

// The block's equations (pde/quasi_linear_block.hpp), geometry from the test's config.
Image block_loop(const QuasiLinearBlock& block, const QuasiLinearBlockConfig& c, std::int64_t out, std::int64_t w,
                 Image x, bool train, double radius) {
  Image a = conv_bn_loop(x, *block.conv1, 1, 1, PadMode::zeros, train);
  Image p(a.n, w, a.h, a.w);
  for (std::int64_t b = 0; b < a.n; ++b)
    for (std::int64_t ch = 0; ch < w; ++ch)
      for (std::int64_t i = 0; i < a.h; ++i)
        for (std::int64_t j = 0; j < a.w; ++j) p.at(b, ch, i, j) = a.at(b, ch, i, j) * a.at(b, ch + w, i, j);
  Image d = conv_bn_loop(p, *block.depthwise, c.stride, w, c.padding_mode, train);
  if (c.variable_coefficients) {
    const std::vector<double> cw = block.coefficients->weight.to_vector(), cb = block.coefficients->bias.to_vector();
    for (std::int64_t i = 0; i < d.h; ++i)
      for (std::int64_t j = 0; j < d.w; ++j) {
        const double X = d.w == 1 ? 0 : 2.0 * j / (d.w - 1) - 1, Y = d.h == 1 ? 0 : 2.0 * i / (d.h - 1) - 1;
        const double field[5] = {X, Y, X * X, X * Y, Y * Y};
        for (std::int64_t ch = 0; ch < 2 * w; ++ch) {
          double coefficient = cb[static_cast<std::size_t>(ch)];
          for (std::size_t f = 0; f < 5; ++f) coefficient += cw[static_cast<std::size_t>(ch) * 5 + f] * field[f];
          for (std::int64_t b = 0; b < d.n; ++b) d.at(b, ch, i, j) *= coefficient;
        }
      }
  }
  Image y = conv_bn_loop(d, *block.conv3, 1, 1, PadMode::zeros, train);
  Image x0 = block.skip ? conv_bn_loop(x, *block.skip, c.stride, 1, PadMode::zeros, train) : x;
  for (std::int64_t b = 0; b < y.n; ++b)
    for (std::int64_t i = 0; i < y.h; ++i)
      for (std::int64_t j = 0; j < y.w; ++j) {
        double norm2 = 0;
        for (std::int64_t ch = 0; ch < out; ++ch) {
          y.at(b, ch, i, j) += x0.at(b, ch, i, j);
          norm2 += y.at(b, ch, i, j) * y.at(b, ch, i, j);
        }
        const double factor = radius > 0 && std::sqrt(norm2) > radius ? radius / std::sqrt(norm2) : 1.0;
        for (std::int64_t ch = 0; ch < out; ++ch) y.at(b, ch, i, j) *= factor;
      }
  return y;
}

// ---- helpers ----------------------------------------------------------------------

// Every parameter and running statistic random, so no term of the block is 0 or 1.
void randomize(nn::Module& model, std::uint64_t seed) {
  Generator gen(seed);
  NoGradGuard no_grad;
  for (auto& [name, t] : model.named_state()) {
    const bool positive = name.ends_with("bn.weight") || name.ends_with("running_var");
    copy_(t, uniform(t.shape(), positive ? 0.5 : -0.5, positive ? 1.5 : 0.5, gen, t.dtype()));
  }
}

std::vector<std::string> names(const nn::NamedTensors& tensors) {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors) out.push_back(name);
  return out;
}

QuasiLinearBlockConfig small_config() {
  QuasiLinearBlockConfig c;
  c.in_channels = 2;
  c.width_factor = 2;  // w = 4
  c.dtype = DType::f64;
  return c;
}

struct Variant {
  const char* name;
  QuasiLinearBlockConfig config;
};

std::vector<Variant> small_variants() {
  std::vector<Variant> variants;
  variants.push_back({"stride 1, zeros", small_config()});
  QuasiLinearBlockConfig projection = small_config();
  projection.out_channels = 3;
  projection.stride = 2;
  projection.hardball_radius = 1.0;
  projection.padding_mode = PadMode::reflect;
  variants.push_back({"stride 2, projection, hardball, reflect", projection});
  QuasiLinearBlockConfig coefficients = small_config();
  coefficients.variable_coefficients = true;
  coefficients.padding_mode = PadMode::circular;
  variants.push_back({"variable coefficients, circular", coefficients});
  QuasiLinearBlockConfig replicate = projection;
  replicate.padding_mode = PadMode::replicate;
  replicate.variable_coefficients = true;
  variants.push_back({"stride 2, variable coefficients, replicate", replicate});
  return variants;
}

}  // namespace

TEST_CASE("QuasiLinearBlock matches its equations written as loops", "[pde][block]") {
  for (const Variant& variant : small_variants()) {
    SECTION(variant.name) {
      const QuasiLinearBlockConfig& c = variant.config;
      QuasiLinearBlock block(c);
      randomize(block, 7);
      const double radius = block.has_hardball() ? c.hardball_radius : 0.0;
      const Tensor x = random_input({2, 2, 5, 5}, 8).detach();

      const Tensor train_out = block(x);
      const Image expected_train = block_loop(block, c, block.out_channels(), 4, Image(x), true, radius);
      REQUIRE(train_out.shape() == Shape{2, block.out_channels(), expected_train.h, expected_train.w});
      require_allclose(train_out, expected_train.v, 1e-10, 1e-12);

      block.eval();
      require_allclose(block(x), block_loop(block, c, block.out_channels(), 4, Image(x), false, radius).v, 1e-10,
                       1e-12);

      // float32 computes the same function.
      block.to(DType::f32);
      require_allclose(block(to_dtype(x, DType::f32)), block_loop(block, c, block.out_channels(), 4, Image(x), false, radius).v,
                       1e-3, 1e-4);
    }
  }
}

TEST_CASE("QuasiLinearBlock passes gradcheck and gradgradcheck in train mode", "[pde][block]") {
  for (const Variant& variant : small_variants()) {
    SECTION(variant.name) {
      QuasiLinearBlock block(variant.config);
      randomize(block, 17);
      const Tensor x = random_input({2, 2, 5, 5}, 18);
      auto forward = [&](const TensorList& in) { return block(in[0]); };
      if (block.has_hardball()) {  // no pixel near the sphere, where hardball has a kink
        const Image before_ball = block_loop(block, variant.config, 3, 4, Image(x), true, 0.0);
        int inside = 0, outside = 0;  // both branches of the hardball are exercised
        for (std::int64_t b = 0; b < before_ball.n; ++b)
          for (std::int64_t i = 0; i < before_ball.h; ++i)
            for (std::int64_t j = 0; j < before_ball.w; ++j) {
              double norm2 = 0;
              for (std::int64_t ch = 0; ch < 3; ++ch) norm2 += std::pow(before_ball.at(b, ch, i, j), 2);
              REQUIRE(std::abs(std::sqrt(norm2) - variant.config.hardball_radius) > 1e-3);
              (std::sqrt(norm2) < variant.config.hardball_radius ? inside : outside) += 1;
            }
        CHECK(inside > 0);
        CHECK(outside > 0);
      }
      TensorList all{x};  // the input and every parameter (they are perturbed in place)
      for (const Tensor& p : block.parameters()) all.push_back(p);
      REQUIRE_GRADCHECK(forward, all);
      TensorList some{x, block.depthwise->conv->weight, block.conv3->bn->weight};
      if (block.coefficients) some.push_back(block.coefficients->weight);
      REQUIRE_GRADGRADCHECK(forward, some);
    }
  }
}

TEST_CASE("a fresh QuasiLinearBlock with an identity skip is exactly the identity", "[pde][block]") {
  nn::manual_seed(3);
  QuasiLinearBlockConfig c;
  c.in_channels = 4;
  for (bool variable : {false, true}) {
    c.variable_coefficients = variable;
    QuasiLinearBlock block(c);
    const Tensor x = random_input({3, 4, 6, 6}, 4, -3.0, 3.0, DType::f32).detach();
    REQUIRE(block(x).to_vector() == x.to_vector());
    block.eval();
    REQUIRE(block(x).to_vector() == x.to_vector());
  }
  // With a projection the fresh block is hardball(skip(x)); without zero init it is not.
  c.out_channels = 8;
  c.stride = 2;
  QuasiLinearBlock projection(c);
  const Tensor x = random_input({3, 4, 6, 6}, 4, -3.0, 3.0, DType::f32).detach();
  require_allclose(projection(x), hardball(projection.skip->forward(x), std::sqrt(8.0)), 1e-6, 1e-7);
  c.zero_init_last_bn = false;
  c.stride = 1;
  c.out_channels = 0;
  QuasiLinearBlock active(c);
  CHECK(active(x).to_vector() != x.to_vector());
}

TEST_CASE("QuasiLinearBlock initialises as specified", "[pde][block]") {
  nn::manual_seed(5);
  QuasiLinearBlockConfig c;
  c.in_channels = 16;
  c.variable_coefficients = true;
  QuasiLinearBlock block(c);
  CHECK(block.coefficients->weight.to_vector() == std::vector<double>(128 * 5, 0.0));
  CHECK(block.coefficients->bias.to_vector() == std::vector<double>(128, 1.0));
  CHECK(block.conv3->bn->weight.to_vector() == std::vector<double>(16, 0.0));
  CHECK(block.conv1->bn->weight.to_vector() == std::vector<double>(128, 1.0));
  // kaiming_normal_ fan_out for ReLU: std sqrt(2 / (out * k * k)); depthwise: 128 * 9.
  auto sample_std = [](const Tensor& t) {
    double s = 0;
    for (double v : t.to_vector()) s += v * v;
    return std::sqrt(s / static_cast<double>(t.numel()));
  };
  CHECK(sample_std(block.depthwise->conv->weight) == Approx(std::sqrt(2.0 / (128 * 9))).epsilon(0.1));
  CHECK(sample_std(block.conv1->conv->weight) == Approx(std::sqrt(2.0 / 128)).epsilon(0.1));
  CHECK(sample_std(block.conv3->conv->weight) == Approx(std::sqrt(2.0 / 16)).epsilon(0.1));
  // One seed, one block.
  nn::manual_seed(5);
  QuasiLinearBlock again(c);
  CHECK(again.conv1->conv->weight.to_vector() == block.conv1->conv->weight.to_vector());
}

TEST_CASE("QuasiLinearBlock parameter names, shapes and counts", "[pde][block]") {
  QuasiLinearBlockConfig c;
  c.in_channels = 16;
  QuasiLinearBlock same(c);
  CHECK(same.num_parameters() == 5792);
  CHECK(same.width() == 64);
  CHECK_FALSE(same.has_projection());
  CHECK_FALSE(same.has_hardball());
  CHECK(names(same.named_parameters()) ==
        std::vector<std::string>{"conv1.conv.weight", "conv1.bn.weight", "conv1.bn.bias", "depthwise.conv.weight",
                                 "depthwise.bn.weight", "depthwise.bn.bias", "conv3.conv.weight", "conv3.bn.weight",
                                 "conv3.bn.bias"});
  CHECK(names(same.named_buffers()) ==
        std::vector<std::string>{"conv1.bn.running_mean", "conv1.bn.running_var", "depthwise.bn.running_mean",
                                 "depthwise.bn.running_var", "conv3.bn.running_mean", "conv3.bn.running_var"});
  CHECK(same.depthwise->conv->weight.shape() == Shape{128, 1, 3, 3});

  c.out_channels = 32;
  c.stride = 2;
  c.variable_coefficients = true;
  QuasiLinearBlock down(c);
  CHECK(down.num_parameters() == 8448 + 128 * 5 + 128);
  CHECK(down.has_projection());
  REQUIRE(down.has_hardball());
  CHECK(down.ball->radius() == Approx(std::sqrt(32.0)));
  CHECK(names(down.named_parameters()) ==
        std::vector<std::string>{"conv1.conv.weight", "conv1.bn.weight", "conv1.bn.bias", "depthwise.conv.weight",
                                 "depthwise.bn.weight", "depthwise.bn.bias", "coefficients.weight",
                                 "coefficients.bias", "conv3.conv.weight", "conv3.bn.weight", "conv3.bn.bias",
                                 "skip.conv.weight", "skip.bn.weight", "skip.bn.bias"});
  CHECK(down.extra_repr() == "16 -> 32, w 64, stride 2, hardball r 5.657, variable coefficients");
  CHECK(down(zeros({2, 16, 7, 7})).shape() == Shape{2, 32, 4, 4});

  c.variable_coefficients = false;
  QuasiLinearBlock plain_down(c);
  CHECK(plain_down.num_parameters() == 8448);
  c.hardball = false;
  CHECK_FALSE(QuasiLinearBlock(c).has_hardball());

  c.folded = true;
  QuasiLinearBlock folded(c);
  CHECK(names(folded.named_parameters()) ==
        std::vector<std::string>{"conv1.conv.weight", "conv1.conv.bias", "depthwise.conv.weight",
                                 "depthwise.conv.bias", "conv3.conv.weight", "conv3.conv.bias", "skip.conv.weight",
                                 "skip.conv.bias"});
  CHECK(folded.named_buffers().empty());
}

TEST_CASE("the width rule and coordinate_field", "[pde][block]") {
  CHECK(default_width_factor(1) == 4);
  CHECK(default_width_factor(128) == 4);
  CHECK(default_width_factor(129) == 2);
  CHECK_THROWS_AS(default_width_factor(0), std::invalid_argument);
  QuasiLinearBlockConfig c;
  c.in_channels = 129;
  CHECK(QuasiLinearBlock(c).width() == 258);
  c.in_channels = 128;
  CHECK(QuasiLinearBlock(c).width() == 512);
  c.width_factor = 1;
  CHECK(QuasiLinearBlock(c).width() == 128);

  const Tensor field = coordinate_field(3, 5, DType::f64);
  REQUIRE(field.shape() == Shape{1, 5, 3, 5});
  const std::vector<double> x{-1, -0.5, 0, 0.5, 1}, y{-1, 0, 1};
  std::vector<double> expected;
  for (int channel = 0; channel < 5; ++channel)
    for (double yi : y)
      for (double xj : x) {
        const double values[5] = {xj, yi, xj * xj, xj * yi, yi * yi};
        expected.push_back(values[channel]);
      }
  require_allclose(field, expected, 0, 0);
  CHECK(coordinate_field(3, 5, DType::f32).dtype() == DType::f32);
  // A single row or column sits at 0.
  require_allclose(coordinate_field(1, 1, DType::f64), {0, 0, 0, 0, 0}, 0, 0);
  require_allclose(coordinate_field(1, 2, DType::f64), {-1, 1, 0, 0, 1, 1, 0, 0, 0, 0}, 0, 0);
  CHECK_THROWS_AS(coordinate_field(0, 3, DType::f64), std::invalid_argument);
}

TEST_CASE("ConvBN folds into one conv that computes its eval mode", "[pde][block]") {
  const nn::Conv2dConfig depthwise{.in_channels = 4, .out_channels = 8, .kernel_h = 3, .kernel_w = 3,
                                   .stride_h = 2, .stride_w = 2, .padding_h = 1, .padding_w = 1, .groups = 4,
                                   .padding_mode = PadMode::reflect, .dtype = DType::f64};
  const nn::Conv2dConfig pointwise{.in_channels = 4, .out_channels = 3, .kernel_h = 1, .kernel_w = 1,
                                   .dtype = DType::f64};
  for (const nn::Conv2dConfig& geometry : {depthwise, pointwise}) {
    ConvBN unfolded(geometry, false);
    ConvBN folded(geometry, true);
    CHECK_FALSE(unfolded.folded());
    CHECK(folded.folded());
    CHECK_FALSE(unfolded.conv->bias.defined());
    randomize(unfolded, 31);
    unfolded.eval();
    folded.fold_from(unfolded);
    const Tensor x = random_input({2, 4, 7, 7}, 32).detach();
    require_allclose(folded(x), unfolded(x), 1e-12, 1e-12);
    CHECK(folded.extra_repr().ends_with(", folded"));
  }
  // A whole block, folded unit by unit.
  QuasiLinearBlockConfig c = small_config();
  c.out_channels = 3;
  c.stride = 2;
  c.variable_coefficients = true;
  QuasiLinearBlock block(c);
  randomize(block, 33);
  block.eval();
  c.folded = true;
  QuasiLinearBlock folded_block(c);
  folded_block.eval();
  folded_block.conv1->fold_from(*block.conv1);
  folded_block.depthwise->fold_from(*block.depthwise);
  folded_block.conv3->fold_from(*block.conv3);
  folded_block.skip->fold_from(*block.skip);
  {
    NoGradGuard no_grad;
    copy_(folded_block.coefficients->weight, block.coefficients->weight);
    copy_(folded_block.coefficients->bias, block.coefficients->bias);
  }
  const Tensor x = random_input({2, 2, 5, 5}, 34).detach();
  require_allclose(folded_block(x), block(x), 1e-12, 1e-12);
}

TEST_CASE("ConvBN::fold_from rejects what it cannot fold", "[pde][block]") {
  const nn::Conv2dConfig a{.in_channels = 2, .out_channels = 3, .kernel_h = 1, .kernel_w = 1, .dtype = DType::f64};
  nn::Conv2dConfig b = a;
  b.stride_h = b.stride_w = 2;
  ConvBN unfolded(a, false), folded(a, true), other_geometry(b, true);
  CHECK_THROWS_WITH(unfolded.fold_from(unfolded), Catch::Contains("not folded"));
  CHECK_THROWS_WITH(folded.fold_from(folded), Catch::Contains("already folded"));
  CHECK_THROWS_WITH(other_geometry.fold_from(unfolded), Catch::Contains("different"));
  nn::BatchNormOptions no_stats;
  no_stats.track_running_stats = false;
  ConvBN batch_only(a, false, no_stats);
  CHECK_THROWS_WITH(folded.fold_from(batch_only), Catch::Contains("running statistics"));
}

TEST_CASE("BasicBlock matches its equations and passes gradcheck", "[pde][block]") {
  BasicBlockConfig c;
  c.in_channels = 2;
  c.out_channels = 3;
  c.stride = 2;
  c.padding_mode = PadMode::circular;
  c.dtype = DType::f64;
  BasicBlock block(c);
  REQUIRE(block.skip);
  CHECK(block.num_parameters() == (2 * 3 * 9 + 6) + (3 * 3 * 9 + 6) + (2 * 3 + 6));
  randomize(block, 41);
  const Tensor x = random_input({2, 2, 5, 5}, 42);
  Image hidden = conv_bn_loop(Image(x), *block.conv1, 2, 1, PadMode::circular, true);
  for (double& v : hidden.v) v = std::max(v, 0.0);
  Image y = conv_bn_loop(hidden, *block.conv2, 1, 1, PadMode::circular, true);
  const Image x0 = conv_bn_loop(Image(x), *block.skip, 2, 1, PadMode::zeros, true);
  for (std::size_t i = 0; i < y.v.size(); ++i) y.v[i] = std::max(y.v[i] + x0.v[i], 0.0);
  const Tensor out = block(x);
  REQUIRE(out.shape() == Shape{2, 3, 3, 3});
  require_allclose(out, y.v, 1e-10, 1e-12);
  auto forward = [&](const TensorList& in) { return block(in[0]); };
  REQUIRE_GRADCHECK(forward, (TensorList{x, block.conv1->conv->weight, block.conv2->bn->weight}));

  // Fresh, with an identity skip: relu(x).
  BasicBlockConfig identity;
  identity.in_channels = 3;
  BasicBlock fresh(identity);
  const Tensor z = random_input({2, 3, 4, 4}, 43, -1.0, 1.0, DType::f32).detach();
  CHECK_FALSE(fresh.skip);
  CHECK(fresh(z).to_vector() == relu(z).to_vector());
  CHECK(fresh.extra_repr() == "3 -> 3, stride 1");
}

TEST_CASE("the blocks reject bad configs and inputs with clear messages", "[pde][block]") {
  QuasiLinearBlockConfig c;
  c.in_channels = 16;
  QuasiLinearBlock block(c);
  CHECK_THROWS_WITH(block(zeros({8, 3, 14, 14})), Catch::Contains("[8, 3, 14, 14] has 3 channels, expected 16"));
  CHECK_THROWS_WITH(block(zeros({16, 14, 14})), Catch::Contains("4-D"));
  CHECK_THROWS_WITH(block(zeros({2, 16, 4, 4}, DType::f64)), Catch::Contains("float64"));
  CHECK_THROWS_AS(block(Tensor()), std::invalid_argument);
  for (auto breaks : std::vector<void (*)(QuasiLinearBlockConfig&)>{
           [](QuasiLinearBlockConfig& b) { b.in_channels = 0; }, [](QuasiLinearBlockConfig& b) { b.stride = 0; },
           [](QuasiLinearBlockConfig& b) { b.out_channels = -1; },
           [](QuasiLinearBlockConfig& b) { b.width_factor = -2; },
           [](QuasiLinearBlockConfig& b) { b.hardball_radius = -1; }}) {
    QuasiLinearBlockConfig bad = c;
    breaks(bad);
    CHECK_THROWS_WITH(QuasiLinearBlock(bad), Catch::Contains("QuasiLinearBlock"));
  }
  BasicBlockConfig basic;
  basic.in_channels = 4;
  BasicBlock basic_block(basic);
  CHECK_THROWS_WITH(basic_block(zeros({1, 3, 4, 4})), Catch::Contains("has 3 channels, expected 4"));
  basic.stride = 0;
  CHECK_THROWS_AS(BasicBlock(basic), std::invalid_argument);
}
