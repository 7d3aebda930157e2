// conv2d and its adjoints: forward against a plain loop over the definition (every
// boundary condition, stride, dilation, groups, depthwise with a channel multiplier,
// 1x1, non-square), the fast adjoint kernels against their reference loops, the adjoint
// identity, gradcheck and gradgradcheck in float64, float32 against float64, an empty
// batch, and error messages.
#include <catch2/catch.hpp>

#include <hwy/targets.h>

#include "engine/kernels/conv.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// Where padded coordinate i of an axis of length n reads, or -1 for a zero.
std::int64_t boundary_index(PadMode mode, std::int64_t i, std::int64_t n) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::zeros: return -1;
    case PadMode::reflect: return i < 0 ? -i : 2 * (n - 1) - i;
    case PadMode::replicate: return i < 0 ? 0 : n - 1;
    case PadMode::circular: return ((i % n) + n) % n;
  }
  return -1;
}

// y[n, o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] x[n, group(o) * Cg + c, i s - pad + p d, j s - pad + q d].
std::vector<double> conv2d_naive(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o,
                                 Shape* out_shape) {
  const Shape xs = x.shape(), ws = w.shape();
  const std::int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const std::int64_t OH = (H + 2 * o.padding_h - o.dilation_h * (KH - 1) - 1) / o.stride_h + 1;
  const std::int64_t OW = (W + 2 * o.padding_w - o.dilation_w * (KW - 1) - 1) / o.stride_w + 1;
  *out_shape = {N, O, OH, OW};
  const std::vector<double> xv = x.to_vector(), wv = w.to_vector();
  const std::vector<double> bv = b.defined() ? b.to_vector() : std::vector<double>(O, 0.0);
  const std::int64_t Og = O / o.groups;
  std::vector<double> y;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t oc = 0; oc < O; ++oc)
      for (std::int64_t i = 0; i < OH; ++i)
        for (std::int64_t j = 0; j < OW; ++j) {
          double acc = bv[oc];
          for (std::int64_t c = 0; c < Cg; ++c)
            for (std::int64_t p = 0; p < KH; ++p)
              for (std::int64_t q = 0; q < KW; ++q) {
                const std::int64_t r =
                    boundary_index(o.padding_mode, i * o.stride_h - o.padding_h + p * o.dilation_h, H);
                const std::int64_t s =
                    boundary_index(o.padding_mode, j * o.stride_w - o.padding_w + q * o.dilation_w, W);
                if (r < 0 || s < 0) continue;
                const std::int64_t channel = (oc / Og) * Cg + c;
                acc += wv[((oc * Cg + c) * KH + p) * KW + q] * xv[((n * C + channel) * H + r) * W + s];
              }
          y.push_back(acc);
        }
  return y;
}

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dOptions opts;
};

std::vector<ConvCase> conv_cases() {
  using P = PadMode;
  return {
      {"3x3 pad 1", {2, 3, 7, 7}, {4, 3, 3, 3}, {.padding_h = 1, .padding_w = 1}},
      {"stride 2", {2, 3, 8, 7}, {4, 3, 3, 3}, {.stride_h = 2, .stride_w = 2, .padding_h = 1, .padding_w = 1}},
      {"dilation 2", {1, 2, 9, 8}, {3, 2, 3, 3}, {.padding_h = 2, .padding_w = 2, .dilation_h = 2, .dilation_w = 2}},
      {"groups 2", {2, 4, 6, 6}, {6, 2, 3, 3}, {.padding_h = 1, .padding_w = 1, .groups = 2}},
      {"groups 3, stride 2, dilation 2", {1, 6, 9, 9}, {3, 2, 3, 3},
       {.stride_h = 2, .stride_w = 2, .padding_h = 2, .padding_w = 2, .dilation_h = 2, .dilation_w = 2, .groups = 3}},
      {"depthwise", {2, 3, 6, 7}, {3, 1, 3, 3}, {.padding_h = 1, .padding_w = 1, .groups = 3}},
      {"depthwise multiplier 2", {2, 3, 6, 5}, {6, 1, 3, 3}, {.padding_h = 1, .padding_w = 1, .groups = 3}},
      {"depthwise wide rows, stride (2, 1), dilation 2", {1, 2, 5, 37}, {4, 1, 3, 3},
       {.stride_h = 2, .stride_w = 1, .padding_h = 2, .padding_w = 1, .dilation_h = 2, .dilation_w = 2, .groups = 2}},
      {"depthwise stride 2", {2, 2, 7, 9}, {2, 1, 3, 3},
       {.stride_h = 2, .stride_w = 2, .padding_h = 1, .padding_w = 1, .groups = 2}},
      {"depthwise padded beyond the kernel, 5x2 kernel", {1, 2, 4, 6}, {2, 1, 5, 2},
       {.padding_h = 5, .padding_w = 2, .groups = 2}},
      {"one input channel (depthwise path, multiplier 5)", {2, 1, 6, 6}, {5, 1, 3, 3},
       {.padding_h = 1, .padding_w = 1}},
      {"1x1", {2, 4, 5, 6}, {3, 4, 1, 1}, {}},
      {"1x1 stride 2", {2, 4, 5, 6}, {3, 4, 1, 1}, {.stride_h = 2, .stride_w = 2}},
      {"non-square kernel, stride, padding, dilation", {2, 3, 6, 9}, {4, 3, 2, 3},
       {.stride_h = 1, .stride_w = 2, .padding_h = 0, .padding_w = 1, .dilation_h = 2, .dilation_w = 1}},
      {"dense padded beyond the kernel", {1, 2, 3, 3}, {2, 2, 3, 3}, {.padding_h = 3, .padding_w = 3}},
      {"one element", {1, 1, 1, 1}, {1, 1, 1, 1}, {}},
      {"reflect", {2, 3, 6, 7}, {4, 3, 3, 3}, {.padding_h = 1, .padding_w = 2, .padding_mode = P::reflect}},
      {"replicate", {2, 3, 6, 7}, {4, 3, 3, 3}, {.padding_h = 1, .padding_w = 2, .padding_mode = P::replicate}},
      {"circular", {2, 3, 6, 7}, {4, 3, 3, 3}, {.padding_h = 2, .padding_w = 1, .padding_mode = P::circular}},
      {"depthwise reflect, stride 2", {1, 3, 5, 6}, {3, 1, 3, 3},
       {.stride_h = 2, .stride_w = 2, .padding_h = 1, .padding_w = 1, .groups = 3, .padding_mode = P::reflect}},
  };
}

double dot(const Tensor& a, const Tensor& b) { return sum(a * b).item(); }

}  // namespace

TEST_CASE("conv2d matches a loop over the definition", "[conv]") {
  std::uint64_t seed = 1;
  for (const ConvCase& c : conv_cases())
    for (bool with_bias : {false, true}) {
      INFO(c.name << (with_bias ? ", with bias" : ""));
      const Tensor x = random_input(c.x, seed++).detach();
      const Tensor w = random_input(c.w, seed++).detach();
      const Tensor b = with_bias ? random_input({c.w[0]}, seed++).detach() : Tensor();
      Shape shape;
      const std::vector<double> expected = conv2d_naive(x, w, b, c.opts, &shape);
      const Tensor y = conv2d(x, w, b, c.opts);
      REQUIRE(y.shape() == shape);
      require_allclose(y, expected, 1e-12, 1e-12);
    }
}

TEST_CASE("conv2d in float32 agrees with float64", "[conv]") {
  std::uint64_t seed = 200;
  for (const ConvCase& c : conv_cases()) {
    INFO(c.name);
    const Tensor x = random_input(c.x, seed++).detach();
    const Tensor w = random_input(c.w, seed++).detach();
    const Tensor b = random_input({c.w[0]}, seed++).detach();
    const Tensor y64 = conv2d(x, w, b, c.opts);
    const Tensor y32 = conv2d(to_dtype(x, DType::f32), to_dtype(w, DType::f32), to_dtype(b, DType::f32), c.opts);
    REQUIRE(y32.dtype() == DType::f32);
    require_allclose(y32, y64, 1e-4, 1e-5);
    const Tensor g = random_input(y64.shape(), seed++).detach();
    const Tensor g32 = to_dtype(g, DType::f32);
    require_allclose(conv2d_input_grad(g32, to_dtype(w, DType::f32), c.x, c.opts),
                     conv2d_input_grad(g, w, c.x, c.opts), 1e-4, 1e-5);
    require_allclose(conv2d_weight_grad(to_dtype(x, DType::f32), g32, c.w, c.opts),
                     conv2d_weight_grad(x, g, c.w, c.opts), 1e-4, 1e-4);
  }
}

TEST_CASE("conv2d's adjoint kernels match their reference loops", "[conv]") {
  std::uint64_t seed = 300;
  for (const ConvCase& c : conv_cases()) {
    if (c.opts.padding_mode != PadMode::zeros) continue;  // other modes are pad() + a zero-padded conv
    INFO(c.name);
    for (DType dt : {DType::f64, DType::f32}) {
      const Tensor x = random_input(c.x, seed++, -1, 1, dt).detach();
      const Tensor w = random_input(c.w, seed++, -1, 1, dt).detach();
      const Tensor y = conv2d(x, w, Tensor(), c.opts);
      const Tensor g = random_input(y.shape(), seed++, -1, 1, dt).detach();
      kernels::ConvGeometry geo;
      geo.batch = c.x[0], geo.in_channels = c.x[1], geo.in_h = c.x[2], geo.in_w = c.x[3];
      geo.out_channels = c.w[0], geo.out_h = y.size(2), geo.out_w = y.size(3);
      geo.kernel_h = c.w[2], geo.kernel_w = c.w[3];
      geo.stride_h = c.opts.stride_h, geo.stride_w = c.opts.stride_w;
      geo.pad_h = c.opts.padding_h, geo.pad_w = c.opts.padding_w;
      geo.dilation_h = c.opts.dilation_h, geo.dilation_w = c.opts.dilation_w, geo.groups = c.opts.groups;
      Tensor gx = Tensor::empty(c.x, dt), gw = Tensor::empty(c.w, dt);
      kernels::conv2d_input_grad_reference(dt, geo, g.raw_data(), w.raw_data(), gx.raw_data());
      kernels::conv2d_weight_grad_reference(dt, geo, x.raw_data(), g.raw_data(), gw.raw_data());
      const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
      require_allclose(conv2d_input_grad(g, w, c.x, c.opts), gx, tol, tol);
      require_allclose(conv2d_weight_grad(x, g, c.w, c.opts), gw, tol, tol);
    }
  }
}

TEST_CASE("the depthwise SIMD kernels agree with the reference on every compiled target", "[conv][simd]") {
  std::uint64_t seed = 350;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const ConvCase& c : conv_cases()) {
      if (c.opts.groups != c.x[1] || c.opts.padding_mode != PadMode::zeros) continue;
      INFO(hwy::TargetName(target) << ": " << c.name);
      for (DType dt : {DType::f32, DType::f64}) {
        const Tensor x = random_input(c.x, seed++, -1, 1, dt).detach();
        const Tensor w = random_input(c.w, seed++, -1, 1, dt).detach();
        const Tensor b = random_input({c.w[0]}, seed++, -1, 1, dt).detach();
        const Tensor y = conv2d(x, w, b, c.opts);
        const Tensor g = random_input(y.shape(), seed++, -1, 1, dt).detach();
        const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
        Shape shape;
        require_allclose(y, conv2d_naive(x, w, b, c.opts, &shape), tol, tol);
        const Tensor x64 = to_dtype(x, DType::f64), w64 = to_dtype(w, DType::f64), g64 = to_dtype(g, DType::f64);
        hwy::SetSupportedTargetsForTest(0);  // the float64 comparison values from the default target
        const Tensor gx_expected = conv2d_input_grad(g64, w64, c.x, c.opts);
        const Tensor gw_expected = conv2d_weight_grad(x64, g64, c.w, c.opts);
        hwy::SetSupportedTargetsForTest(target);
        require_allclose(conv2d_input_grad(g, w, c.x, c.opts), gx_expected, tol, tol);
        require_allclose(conv2d_weight_grad(x, g, c.w, c.opts), gw_expected, tol, tol * 10);
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST_CASE("conv2d's adjoints satisfy <conv(x, w), g> = <x, input_grad(g, w)> = <w, weight_grad(x, g)>", "[conv]") {
  std::uint64_t seed = 400;
  for (const ConvCase& c : conv_cases()) {
    INFO(c.name);
    const Tensor x = random_input(c.x, seed++).detach();
    const Tensor w = random_input(c.w, seed++).detach();
    const Tensor y = conv2d(x, w, Tensor(), c.opts);
    const Tensor g = random_input(y.shape(), seed++).detach();
    const double lhs = dot(y, g);
    REQUIRE(dot(x, conv2d_input_grad(g, w, c.x, c.opts)) == Approx(lhs).epsilon(1e-10).margin(1e-10));
    REQUIRE(dot(w, conv2d_weight_grad(x, g, c.w, c.opts)) == Approx(lhs).epsilon(1e-10).margin(1e-10));
  }
}

TEST_CASE("conv2d passes gradcheck and gradgradcheck", "[conv][gradcheck]") {
  std::uint64_t seed = 500;
  for (const ConvCase& c : conv_cases()) {
    INFO(c.name);
    const Tensor x = random_input(c.x, seed++);
    const Tensor w = random_input(c.w, seed++);
    const Tensor b = random_input({c.w[0]}, seed++);
    auto f = [&c](const TensorList& xs) { return conv2d(xs[0], xs[1], xs[2], c.opts); };
    REQUIRE_GRADCHECK(f, (TensorList{x, w, b}));
    REQUIRE_GRADGRADCHECK(f, (TensorList{x, w, b}));
  }
}

TEST_CASE("conv2d_input_grad and conv2d_weight_grad are differentiable ops", "[conv][gradcheck]") {
  std::uint64_t seed = 600;
  for (const ConvCase& c : conv_cases()) {
    const std::string name = c.name;
    if (name != "stride 2" && name != "groups 2" && name != "depthwise multiplier 2" &&
        name != "depthwise wide rows, stride (2, 1), dilation 2" && name != "reflect")
      continue;
    INFO(c.name);
    const Tensor x = random_input(c.x, seed++);
    const Tensor w = random_input(c.w, seed++);
    const Tensor g = random_input(conv2d(x, w, Tensor(), c.opts).shape(), seed++);
    auto input_grad = [&c](const TensorList& xs) { return conv2d_input_grad(xs[0], xs[1], c.x, c.opts); };
    auto weight_grad = [&c](const TensorList& xs) { return conv2d_weight_grad(xs[0], xs[1], c.w, c.opts); };
    REQUIRE_GRADCHECK(input_grad, (TensorList{g, w}));
    REQUIRE_GRADGRADCHECK(input_grad, (TensorList{g, w}));
    REQUIRE_GRADCHECK(weight_grad, (TensorList{x, g}));
    REQUIRE_GRADGRADCHECK(weight_grad, (TensorList{x, g}));
  }
}

TEST_CASE("conv2d with an empty batch gives empty outputs and zero weight gradients", "[conv]") {
  for (std::int64_t groups : {1, 3}) {
    const Tensor x = random_input({0, 3, 5, 5}, 700);
    const Tensor w = random_input({6, 3 / groups, 3, 3}, 701);
    const Tensor b = random_input({6}, 702);
    const Tensor y = conv2d(x, w, b, {.padding_h = 1, .padding_w = 1, .groups = groups});
    REQUIRE(y.shape() == Shape{0, 6, 5, 5});
    backward(sum(y));
    REQUIRE(x.grad().shape() == Shape{0, 3, 5, 5});
    REQUIRE(w.grad().shape() == w.shape());
    for (double v : w.grad().to_vector()) REQUIRE(v == 0.0);
    for (double v : b.grad().to_vector()) REQUIRE(v == 0.0);
  }
}

TEST_CASE("conv2d's errors name the op and the shapes", "[conv][errors]") {
  const Tensor x = zeros({2, 6, 8, 8});
  const Tensor w = zeros({4, 6, 3, 3});
  REQUIRE_THROWS_WITH(conv2d(zeros({6, 8, 8}), w),
                      Catch::Contains("conv2d") && Catch::Contains("[6, 8, 8]") && Catch::Contains("4-D"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros({4, 6, 3})), Catch::Contains("conv2d") && Catch::Contains("[4, 6, 3]"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros({4, 5, 3, 3})),
                      Catch::Contains("conv2d") && Catch::Contains("[4, 5, 3, 3]") && Catch::Contains("[2, 6, 8, 8]"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros({4, 2, 3, 3}), Tensor(), {.groups = 4}),
                      Catch::Contains("conv2d") && Catch::Contains("not divisible by groups 4"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros({5, 2, 3, 3}), Tensor(), {.groups = 3}),
                      Catch::Contains("conv2d") && Catch::Contains("[5, 2, 3, 3]") &&
                          Catch::Contains("not divisible by groups 3"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros({4, 6, 9, 3})),
                      Catch::Contains("conv2d") && Catch::Contains("larger than input [2, 6, 8, 8]"));
  REQUIRE_NOTHROW(conv2d(x, zeros({4, 6, 9, 3}), Tensor(), {.padding_h = 1}));
  REQUIRE_THROWS_WITH(conv2d(x, zeros({4, 6, 3, 3}), Tensor(), {.dilation_h = 4, .dilation_w = 4}),
                      Catch::Contains("conv2d") && Catch::Contains("dilation 4x4"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {.stride_h = 0}), Catch::Contains("conv2d: stride 0x1 must be positive"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {.dilation_w = -1}), Catch::Contains("conv2d: dilation 1x-1"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {.padding_h = -1}), Catch::Contains("conv2d: padding -1x0"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {.groups = 0}), Catch::Contains("conv2d: groups 0"));
  REQUIRE_THROWS_WITH(conv2d(x, w, zeros({3})), Catch::Contains("conv2d: bias [3] must be [4]"));
  REQUIRE_THROWS_WITH(conv2d(x, zeros({4, 6, 3, 3}, DType::f64)),
                      Catch::Contains("conv2d") && Catch::Contains("float64") && Catch::Contains("float32"));
  REQUIRE_THROWS_WITH(conv2d(x, w, zeros({4}, DType::f64)), Catch::Contains("conv2d: bias"));
  REQUIRE_THROWS_WITH(conv2d(Tensor(), w), Catch::Contains("conv2d: input is undefined"));
  REQUIRE_THROWS_WITH(conv2d(x, w, Tensor(), {.padding_h = 8, .padding_w = 1, .padding_mode = PadMode::reflect}),
                      Catch::Contains("conv2d") && Catch::Contains("reflect") && Catch::Contains("[2, 6, 8, 8]"));
  REQUIRE_THROWS_WITH(conv2d_input_grad(zeros({2, 4, 5, 5}), w, x.shape(), {}),
                      Catch::Contains("conv2d_input_grad") && Catch::Contains("[2, 4, 5, 5]") &&
                          Catch::Contains("[2, 4, 6, 6]"));
  REQUIRE_THROWS_WITH(conv2d_weight_grad(x, zeros({2, 4, 6, 6}), {4, 3, 3, 3}, {}),
                      Catch::Contains("conv2d_weight_grad") && Catch::Contains("[4, 3, 3, 3]"));
}
