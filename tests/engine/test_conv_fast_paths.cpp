// The convolution kernels written for the PDE ResNets of pde/ (see bench/pde_bench.cpp),
// each against the plain reference loops of engine/kernels/conv_reference.cpp, on every
// compiled SIMD target:
//   - the direct 1x1 product (conv_pointwise.cpp, used for widening 1x1 convs): forward
//     and input gradient, row counts that exercise its 6-, 4- and 1-row paths, pixel counts
//     with and without a partial last block, a bias, and the shapes left to BLAS;
//   - the depthwise kernels (conv_depthwise.cpp): column strides 1, 2 and 3 (the phased
//     scratch layout), channel multipliers 1, 2 and 3, odd and even widths, rows longer
//     than several vectors, and batches larger than one block of the weight gradient.
// Plus the backward of narrow (every row of the gradient written once).
#include <catch2/catch.hpp>

#include <hwy/targets.h>

#include <string>
#include <vector>

#include "engine/kernels/conv.hpp"
#include "engine/kernels/gemm.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

struct KernelCase {
  std::string name;
  Shape x, w;  // w [C_out, C_in / groups, kH, kW]
  Conv2dOptions opts;
};

kernels::ConvGeometry geometry_of(const KernelCase& c) {
  kernels::ConvGeometry g;
  g.batch = c.x[0], g.in_channels = c.x[1], g.in_h = c.x[2], g.in_w = c.x[3];
  g.out_channels = c.w[0], g.kernel_h = c.w[2], g.kernel_w = c.w[3];
  g.stride_h = c.opts.stride_h, g.stride_w = c.opts.stride_w;
  g.pad_h = c.opts.padding_h, g.pad_w = c.opts.padding_w;
  g.dilation_h = c.opts.dilation_h, g.dilation_w = c.opts.dilation_w, g.groups = c.opts.groups;
  g.out_h = (g.in_h + 2 * g.pad_h - g.dilation_h * (g.kernel_h - 1) - 1) / g.stride_h + 1;
  g.out_w = (g.in_w + 2 * g.pad_w - g.dilation_w * (g.kernel_w - 1) - 1) / g.stride_w + 1;
  return g;
}

std::vector<KernelCase> pointwise_cases() {
  return {
      {"16 -> 128 at 28x28 (6-row blocks, then 2 single rows)", {2, 16, 28, 28}, {128, 16, 1, 1}, {}},
      {"128 -> 16 at 14x14 (BLAS forward; direct input gradient with a partial last pixel block)",
       {3, 128, 14, 14}, {16, 128, 1, 1}, {}},
      {"5 -> 11 at 7x7 (a 6-row, a 4-row and a 1-row block)", {2, 5, 7, 7}, {11, 5, 1, 1}, {}},
      {"3 -> 10 at 4x5 (one pixel block at most)", {2, 3, 4, 5}, {10, 3, 1, 1}, {}},
      {"600 -> 4 (deeper than the direct kernel takes)", {1, 600, 4, 4}, {4, 600, 1, 1}, {}},
      {"1 -> 6 at 3x3 (too few pixels: BLAS)", {2, 1, 3, 3}, {6, 1, 1, 1}, {}},
  };
}

std::vector<KernelCase> depthwise_cases() {
  using O = Conv2dOptions;
  return {
      {"multiplier 2, stride 1, 14x14 (the block)", {2, 3, 14, 14}, {6, 1, 3, 3},
       O{.padding_h = 1, .padding_w = 1, .groups = 3}},
      {"multiplier 2, stride 2, 28x28 (stage entry)", {2, 2, 28, 28}, {4, 1, 3, 3},
       O{.stride_h = 2, .stride_w = 2, .padding_h = 1, .padding_w = 1, .groups = 2}},
      {"multiplier 2, stride 2, odd width 7x9", {1, 2, 7, 9}, {4, 1, 3, 3},
       O{.stride_h = 2, .stride_w = 2, .padding_h = 1, .padding_w = 1, .groups = 2}},
      {"multiplier 1, stride 2, no padding, even width", {2, 3, 8, 10}, {3, 1, 3, 3},
       O{.stride_h = 2, .stride_w = 2, .groups = 3}},
      {"multiplier 3, stride (1, 2), padding 2, wide rows", {1, 2, 5, 45}, {6, 1, 3, 3},
       O{.stride_h = 1, .stride_w = 2, .padding_h = 2, .padding_w = 2, .groups = 2}},
      {"multiplier 1, stride 3, dilation 2, 5x4 kernel", {2, 2, 13, 17}, {2, 1, 5, 4},
       O{.stride_h = 3, .stride_w = 3, .padding_h = 1, .padding_w = 3, .dilation_h = 2, .dilation_w = 2,
         .groups = 2}},
      {"multiplier 2, stride 1, 7x7, batch of 70 (several weight-gradient blocks)", {70, 2, 7, 7}, {4, 1, 3, 3},
       O{.padding_h = 1, .padding_w = 1, .groups = 2}},
      {"multiplier 1, stride 1, rows of 37, 2x2 kernel (the three-tap path)", {2, 1, 4, 37}, {1, 1, 2, 2},
       O{.groups = 1}},
  };
}

// Forward (with a bias), input gradient and weight gradient of the dispatching kernels
// against the reference loops, in float32 and float64.
void check_against_reference(const KernelCase& c, std::uint64_t& seed) {
  const kernels::ConvGeometry g = geometry_of(c);
  const Shape y_shape{g.batch, g.out_channels, g.out_h, g.out_w};
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = random_input(c.x, seed++, -1, 1, dt).detach();
    const Tensor w = random_input(c.w, seed++, -1, 1, dt).detach();
    const Tensor b = random_input({c.w[0]}, seed++, -1, 1, dt).detach();
    const Tensor gy = random_input(y_shape, seed++, -1, 1, dt).detach();
    Tensor y = Tensor::empty(y_shape, dt), y_ref = Tensor::empty(y_shape, dt);
    Tensor gx = Tensor::empty(c.x, dt), gx_ref = Tensor::empty(c.x, dt);
    Tensor gw = Tensor::empty(c.w, dt), gw_ref = Tensor::empty(c.w, dt);
    kernels::conv2d_forward(dt, g, x.raw_data(), w.raw_data(), b.raw_data(), y.raw_data());
    kernels::conv2d_reference(dt, g, x.raw_data(), w.raw_data(), b.raw_data(), y_ref.raw_data());
    kernels::conv2d_input_grad(dt, g, gy.raw_data(), w.raw_data(), gx.raw_data());
    kernels::conv2d_input_grad_reference(dt, g, gy.raw_data(), w.raw_data(), gx_ref.raw_data());
    kernels::conv2d_weight_grad(dt, g, x.raw_data(), gy.raw_data(), gw.raw_data());
    kernels::conv2d_weight_grad_reference(dt, g, x.raw_data(), gy.raw_data(), gw_ref.raw_data());
    const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
    INFO(dtype_name(dt));
    require_allclose(y, y_ref, tol, tol);
    require_allclose(gx, gx_ref, tol, tol);
    require_allclose(gw, gw_ref, tol * 10, tol * 10);  // sums over the batch and the plane
  }
}

void check_on_every_target(const std::vector<KernelCase>& cases, std::uint64_t seed) {
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const KernelCase& c : cases) {
      INFO(hwy::TargetName(target) << ": " << c.name);
      check_against_reference(c, seed);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace

TEST_CASE("the direct 1x1 product agrees with the reference loops on every target", "[conv][simd]") {
  check_on_every_target(pointwise_cases(), 1000);
}

TEST_CASE("the direct 1x1 product matches gemm_reference with a transposed operand", "[conv][simd]") {
  // y [5, 20] = a^T x with a stored [K = 3, M = 5]: the input gradient's layout.
  const std::int64_t rows = 5, depth = 3, cols = 20;
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor a = random_input({depth, rows}, 1100, -1, 1, dt).detach();
    const Tensor x = random_input({depth, cols}, 1101, -1, 1, dt).detach();
    Tensor y = Tensor::empty({rows, cols}, dt), expected = Tensor::empty({rows, cols}, dt);
    REQUIRE(kernels::pointwise_product_fits(dt, cols));
    kernels::pointwise_product(dt, a.raw_data(), 1, rows, nullptr, rows, depth, x.raw_data(), cols, y.raw_data());
    kernels::gemm_reference(dt, true, false, rows, cols, depth, 1.0, a.raw_data(), rows, x.raw_data(), cols, 0.0,
                            expected.raw_data(), cols);
    require_allclose(y, expected, 1e-6, 1e-6);
  }
}

TEST_CASE("the depthwise kernels agree with the reference loops on every target", "[conv][simd]") {
  check_on_every_target(depthwise_cases(), 2000);
}

TEST_CASE("narrow's backward writes the gradient into its slice and zeros elsewhere", "[shape]") {
  const Tensor a = random_input({2, 6, 3}, 3000);
  const Tensor g = random_input({2, 2, 3}, 3001).detach();
  const Tensor da = grad({narrow(a, 1, 3, 2)}, {a}, {g})[0];
  const std::vector<double> gv = g.to_vector(), dv = da.to_vector();
  for (std::int64_t n = 0; n < 2; ++n)
    for (std::int64_t c = 0; c < 6; ++c)
      for (std::int64_t i = 0; i < 3; ++i) {
        const double expected = (c == 3 || c == 4) ? gv[static_cast<std::size_t>((n * 2 + c - 3) * 3 + i)] : 0.0;
        REQUIRE(dv[static_cast<std::size_t>((n * 6 + c) * 3 + i)] == expected);
      }
}
