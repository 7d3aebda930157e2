// The exponential of a generator, (1 + tL/n)^n u -> exp(tL) u = u o phi_t: for translation,
// rotation and dilation of a smooth Gaussian bump, the error against the closed-form flow
// falls as n grows and as the grid refines; small t agrees with the exact flow to first
// order; L itself is exact on low-degree polynomials; the documented instability of
// central differences with explicit Euler has exactly the predicted growth; the exact
// (bilinear) transforms match closed forms (90 degree rotation = transpose + flip, integer
// translation = shift, dilation by 2 = subsampling); gradcheck in float64; errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "pde/generator_flow.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// A Gaussian bump of width sigma about (cx, cy), sampled at source coordinates
// (sx, sy) [S, S] -- so bump(x, y) is the image and bump(phi_t(x, y)) its exact flow.
Tensor bump(const Tensor& sx, const Tensor& sy, double cx, double cy, double sigma) {
  const std::int64_t S = sx.size(0);
  const Tensor r2 = square(sx - cx) + square(sy - cy);
  return reshape(exp(r2 * (-0.5 / (sigma * sigma))), {1, 1, S, S});
}

// One test problem on an S x S grid: the bump scaled with S (centre (5, -3) and width 3
// on a 32 grid), a generator, a time, and the bump at the flowed coordinates.
struct Problem {
  const char* name;
  Tensor image, exact;
  VectorField field;
  double t;
};

std::vector<Problem> problems(std::int64_t S) {
  const double scale = static_cast<double>(S) / 32.0;
  const double cx = 5 * scale, cy = -3 * scale, sigma = 3 * scale;
  const Tensor x = x_coordinates(S, S), y = y_coordinates(S, S);
  const Tensor image = bump(x, y, cx, cy, sigma);
  const double shift = 4 * scale, angle = 0.5, t_dilation = 0.3;  // dilation: zoom out by e^-0.3
  const double c = std::cos(angle), s = std::sin(angle), e = std::exp(t_dilation);
  return {
      {"translation", image, bump(x + shift, y, cx, cy, sigma), translation_field(S, S), shift},
      {"rotation", image, bump(c * x - s * y, s * x + c * y, cx, cy, sigma), rotation_field(S, S), angle},
      {"dilation", image, bump(e * x, e * y, cx, cy, sigma), dilation_field(S, S), t_dilation},
  };
}

}  // namespace

TEST_CASE("the error of (1 + tL/n)^n falls as n grows, for each generator", "[generator_flow]") {
  for (const Problem& p : problems(32)) {
    INFO(p.name);
    std::vector<double> errors;
    for (std::int64_t n : {4, 8, 16, 32, 64}) errors.push_back(relative_error(exp_generator(p.image, p.field, p.t, n), p.exact));
    for (std::size_t i = 1; i < errors.size(); ++i) {
      INFO("n = " << (4 << i) << ": " << errors[i] << " after " << errors[i - 1]);
      CHECK(errors[i] < errors[i - 1]);
    }
    CHECK(errors.back() < errors.front() / 3);
  }
}

TEST_CASE("with many steps the error falls as the grid refines (second order in space)", "[generator_flow]") {
  const auto coarse = problems(32), fine = problems(64);
  for (std::size_t i = 0; i < coarse.size(); ++i) {
    INFO(coarse[i].name);
    const double e_coarse = relative_error(exp_generator(coarse[i].image, coarse[i].field, coarse[i].t, 512), coarse[i].exact);
    const double e_fine = relative_error(exp_generator(fine[i].image, fine[i].field, fine[i].t, 512), fine[i].exact);
    INFO("32 x 32: " << e_coarse << ", 64 x 64: " << e_fine);
    CHECK(e_fine < 0.4 * e_coarse);
    CHECK(e_coarse < 0.05);
  }
}

TEST_CASE("for small t one Euler step agrees with the exact flow to first order", "[generator_flow]") {
  // On the 64 grid the bump is centred at (10, -6) with width 6 (see problems()).
  const Tensor x = x_coordinates(64, 64), y = y_coordinates(64, 64);
  const double t = 1e-3, c = std::cos(t), s = std::sin(t), e = std::exp(t);
  const std::vector<Tensor> exact{bump(x + t, y, 10, -6, 6), bump(c * x - s * y, s * x + c * y, 10, -6, 6),
                                  bump(e * x, e * y, 10, -6, 6)};
  const auto cases = problems(64);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].name);
    const double change = relative_error(cases[i].image, exact[i]);
    CHECK(change > 1e-4);  // the flow moved the image, so agreement is not trivial
    // u + t L_h u - u(phi_t) = t (L_h - L) u + O(t^2): a few percent of the change.
    CHECK(relative_error(exp_generator(cases[i].image, cases[i].field, t, 1), exact[i]) < 0.03 * change);
  }
}

TEST_CASE("the generators are exact on low-degree polynomials in the interior", "[generator_flow]") {
  const std::int64_t S = 7;
  const Tensor x = x_coordinates(S, S), y = y_coordinates(S, S);
  // rotation: L x = -y;  dilation: L (x^2 + y) = 2 x^2 + y;  translation (2, -1): L (x y) = 2 y - x.
  const Tensor rot = apply_generator(reshape(x, {1, 1, S, S}), rotation_field(S, S));
  const Tensor dil = apply_generator(reshape(square(x) + y, {1, 1, S, S}), dilation_field(S, S));
  const Tensor tra = apply_generator(reshape(x * y, {1, 1, S, S}), translation_field(S, S, 2.0, -1.0));
  const std::vector<double> xs = x.to_vector(), ys = y.to_vector();
  const std::vector<double> r = rot.to_vector(), d = dil.to_vector(), t = tra.to_vector();
  for (std::int64_t row = 1; row < S - 1; ++row)
    for (std::int64_t col = 1; col < S - 1; ++col) {
      const auto i = static_cast<std::size_t>(row * S + col);
      CHECK(r[i] == Approx(-ys[i]).margin(1e-12));
      CHECK(d[i] == Approx(2 * xs[i] * xs[i] + ys[i]).margin(1e-12));
      CHECK(t[i] == Approx(2 * ys[i] - xs[i]).margin(1e-12));
    }
}

TEST_CASE("central differences with explicit Euler amplify the 4-pixel mode by sqrt(1 + s^2) per step",
          "[generator_flow][stability]") {
  // u = cos(pi col / 2) on a periodic grid: D_x u = -sin(pi col / 2), so each step
  // u + s D_x u rotates (cos, sin) and stretches by sqrt(1 + s^2): over n steps of
  // s = t/n the norm grows by (1 + (t/n)^2)^(n/2), which tends to 1 as n grows.
  const std::int64_t S = 8;
  std::vector<double> pattern;
  for (std::int64_t row = 0; row < S; ++row)
    for (std::int64_t col = 0; col < S; ++col) pattern.push_back(std::cos(M_PI * static_cast<double>(col) / 2));
  const Tensor u = from_vector(pattern, {1, 1, S, S}, DType::f64);
  const double norm0 = std::sqrt(sum(square(u)).item());
  const double t = 4.0;
  for (std::int64_t n : {2, 8, 64}) {
    const Tensor out = exp_generator(u, translation_field(S, S), t, n, {PadMode::circular, 2});
    const double growth = std::sqrt(sum(square(out)).item()) / norm0;
    const double s = t / static_cast<double>(n);
    CHECK(growth == Approx(std::pow(1 + s * s, static_cast<double>(n) / 2)).epsilon(1e-12));
  }
}

TEST_CASE("exp_generator returns the n + 1 frames and passes gradcheck", "[generator_flow][gradcheck]") {
  const Tensor image = random_input({1, 2, 5, 5}, 21);
  const VectorField L = rotation_field(5, 5);
  std::vector<Tensor> frames;
  const Tensor out = exp_generator(image, L, 0.3, 3, {}, &frames);
  REQUIRE(frames.size() == 4);
  require_allclose(frames.front(), image.to_vector(), 0, 0);
  require_allclose(frames.back(), out.to_vector(), 0, 0);
  require_allclose(frames[1], (image + 0.1 * apply_generator(image, L)).to_vector(), 1e-14, 1e-14);

  const Tensor a = random_input({5, 5}, 22), b = random_input({5, 5}, 23);
  for (PadMode mode : {PadMode::zeros, PadMode::replicate}) {
    INFO(pad_mode_name(mode));
    const auto f = [mode](const TensorList& in) {
      return exp_generator(in[0], VectorField{in[1], in[2]}, 0.5, 2, {mode, 2});
    };
    REQUIRE_GRADCHECK(f, (TensorList{image, a, b}));
  }
  const auto order4 = [](const TensorList& in) { return apply_generator(in[0], VectorField{in[1], in[2]}, {PadMode::zeros, 4}); };
  REQUIRE_GRADGRADCHECK(order4, (TensorList{image, a, b}));
}

TEST_CASE("exact transforms match closed forms", "[generator_flow][exact]") {
  for (std::int64_t S : {5, 6}) {
    INFO("S = " << S);
    const Tensor u = random_input({2, 1, S, S}, 31).detach();
    const std::vector<double> v = u.to_vector();
    const auto at = [&](std::int64_t plane, std::int64_t row, std::int64_t col) {
      return v[static_cast<std::size_t>((plane * S + row) * S + col)];
    };
    // rotate by 90 degrees: out(x, y) = u(-y, x), i.e. out[r][c] = u[c][S - 1 - r].
    std::vector<double> turned, shifted, halved;
    for (std::int64_t plane = 0; plane < 2; ++plane)
      for (std::int64_t r = 0; r < S; ++r)
        for (std::int64_t c = 0; c < S; ++c) {
          turned.push_back(at(plane, c, S - 1 - r));
          // translate by (2, -1): out[r][c] = u[r - 1][c + 2], 0 off the grid.
          const bool inside = r - 1 >= 0 && c + 2 < S;
          shifted.push_back(inside ? at(plane, r - 1, c + 2) : 0.0);
        }
    require_allclose(rotate(u, M_PI / 2), turned, 1e-12, 1e-12);
    require_allclose(translate(u, 2, -1), shifted, 1e-12, 1e-12);
    require_allclose(rotate(u, 2 * M_PI), v, 1e-12, 1e-12);
    require_allclose(dilate(u, 0.0), v, 1e-12, 1e-12);
  }
  // dilate by e^t = 2 on an odd grid (the centre is a pixel): out[r][c] = u[2r - m][2c - m].
  const std::int64_t S = 7, m = 3;
  const Tensor u = random_input({1, 1, S, S}, 32).detach();
  const std::vector<double> v = u.to_vector();
  std::vector<double> zoomed;
  for (std::int64_t r = 0; r < S; ++r)
    for (std::int64_t c = 0; c < S; ++c) {
      const std::int64_t rr = 2 * r - m, cc = 2 * c - m;
      zoomed.push_back(rr >= 0 && rr < S && cc >= 0 && cc < S ? v[static_cast<std::size_t>(rr * S + cc)] : 0.0);
    }
  require_allclose(dilate(u, std::log(2.0)), zoomed, 1e-12, 1e-12);
  // Bilinear sampling of a smooth bump converges to the bump at the rotated position (h^2).
  double previous = 1.0;
  for (std::int64_t size : {32, 64}) {
    const Tensor x = x_coordinates(size, size), y = y_coordinates(size, size);
    const double k = static_cast<double>(size) / 32.0, angle = 0.7;
    const Tensor sampled = rotate(bump(x, y, 5 * k, -3 * k, 3 * k), angle);
    const Tensor closed = bump(std::cos(angle) * x - std::sin(angle) * y, std::sin(angle) * x + std::cos(angle) * y,
                               5 * k, -3 * k, 3 * k);
    const double error = relative_error(sampled, closed);
    CHECK(error < 0.3 * previous);
    previous = error;
  }
}

TEST_CASE("generator flow errors name the function and the shapes", "[generator_flow][errors]") {
  const Tensor image = zeros({1, 1, 4, 4}, DType::f64);
  REQUIRE_THROWS_WITH(exp_generator(image, rotation_field(4, 5), 0.1, 2),
                      Catch::Contains("apply_generator") && Catch::Contains("[4, 5]") && Catch::Contains("[1, 1, 4, 4]"));
  REQUIRE_THROWS_WITH(exp_generator(image, rotation_field(4, 4), 0.1, 0), Catch::Contains("n = 0"));
  REQUIRE_THROWS_WITH(apply_generator(zeros({4, 4}, DType::f64), rotation_field(4, 4)), Catch::Contains("[N, C, H, W]"));
  REQUIRE_THROWS_WITH(sample_bilinear(image, zeros({4, 4}, DType::f64), zeros({3, 4}, DType::f64)),
                      Catch::Contains("[3, 4]"));
  REQUIRE_THROWS_WITH(relative_error(image, zeros({4, 4}, DType::f64)), Catch::Contains("differ"));
  REQUIRE_THROWS_WITH(x_coordinates(0, 3), Catch::Contains("0 x 3"));
}
