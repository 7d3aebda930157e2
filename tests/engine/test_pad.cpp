// pad in its four modes: literal values (what torch.nn.functional.pad gives for the
// same input), a reference loop over random shapes, gradients of first and second
// order, edges and errors.
#include "support/testing.hpp"

using namespace symgrad;
using testing::random_input;
using testing::require_allclose;

namespace {

const DType kDtypes[] = {DType::f32, DType::f64};
const PadMode kModes[] = {PadMode::zeros, PadMode::reflect, PadMode::replicate, PadMode::circular};

// Where padded coordinate i (0 = first input element) reads from, or -1 for the fill.
// Written differently from the library on purpose: reflection as a periodic fold.
std::int64_t reference_source(PadMode mode, std::int64_t i, std::int64_t n) {
  switch (mode) {
    case PadMode::zeros: return i >= 0 && i < n ? i : -1;
    case PadMode::replicate: return std::clamp<std::int64_t>(i, 0, n - 1);
    case PadMode::circular: return ((i % n) + n) % n;
    case PadMode::reflect: {
      if (n == 1) return 0;
      const std::int64_t period = 2 * (n - 1);
      const std::int64_t j = ((i % period) + period) % period;
      return j < n ? j : period - j;
    }
  }
  return -1;
}

// Reference pad of a 3-D tensor on its last two axes.
std::vector<double> reference_pad(const Tensor& x, std::int64_t left, std::int64_t right, std::int64_t top,
                                  std::int64_t bottom, PadMode mode, double value) {
  const auto v = x.to_vector();
  const std::int64_t a = x.size(0), h = x.size(1), w = x.size(2);
  std::vector<double> out;
  for (std::int64_t i = 0; i < a; ++i)
    for (std::int64_t r = 0; r < h + top + bottom; ++r)
      for (std::int64_t c = 0; c < w + left + right; ++c) {
        const std::int64_t sr = reference_source(mode, r - top, h), sc = reference_source(mode, c - left, w);
        out.push_back(sr < 0 || sc < 0 ? value : v[static_cast<std::size_t>((i * h + sr) * w + sc)]);
      }
  return out;
}

}  // namespace

TEST_CASE("pad gives torch's values in every mode", "[pad]") {
  for (DType dt : kDtypes) {
    Tensor x = reshape(arange(0, 12, 1, dt), {1, 3, 4});
    Tensor zeros_mode = pad(x, {1, 2, 2, 0}, PadMode::zeros, 0.5);
    REQUIRE(zeros_mode.shape() == Shape{1, 5, 7});
    REQUIRE(zeros_mode.dtype() == dt);
    require_allclose(zeros_mode, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 1, 2,
                                  3, 0.5, 0.5, 0.5, 4, 5, 6, 7, 0.5, 0.5, 0.5, 8, 9, 10, 11, 0.5, 0.5});
    Tensor reflect = pad(x, {3, 1, 2, 1}, PadMode::reflect);
    REQUIRE(reflect.shape() == Shape{1, 6, 8});
    require_allclose(reflect, {11, 10, 9, 8, 9, 10, 11, 10, 7, 6, 5, 4, 5, 6, 7, 6, 3, 2, 1, 0, 1, 2, 3, 2, 7, 6, 5, 4,
                               5, 6, 7, 6, 11, 10, 9, 8, 9, 10, 11, 10, 7, 6, 5, 4, 5, 6, 7, 6});
    Tensor replicate = pad(x, {2, 1, 1, 3}, PadMode::replicate);
    REQUIRE(replicate.shape() == Shape{1, 7, 7});
    require_allclose(replicate, {0, 0, 0, 1, 2, 3, 3, 0, 0, 0, 1, 2,  3,  3,  4, 4, 4, 5, 6,  7,  7,  8, 8, 8, 9,
                                 10, 11, 11, 8, 8, 8, 9, 10, 11, 11, 8, 8, 8, 9, 10, 11, 11, 8, 8, 8, 9, 10, 11, 11});
    Tensor circular = pad(x, {4, 1, 3, 0}, PadMode::circular);  // pads equal to the size are allowed
    REQUIRE(circular.shape() == Shape{1, 6, 9});
    require_allclose(circular, {0, 1, 2,  3, 0, 1, 2, 3, 0, 4, 5, 6, 7, 4, 5, 6, 7, 4, 8, 9, 10, 11, 8, 9, 10, 11, 8,
                                0, 1, 2,  3, 0, 1, 2, 3, 0, 4, 5, 6, 7, 4, 5, 6, 7, 4, 8, 9, 10, 11, 8, 9, 10, 11, 8});
    Tensor last_axis_only = pad(reshape(arange(0, 24, 1, dt), {2, 3, 4}), {1, 2}, PadMode::reflect);
    REQUIRE(last_axis_only.shape() == Shape{2, 3, 7});
    require_allclose(last_axis_only, {1,  0,  1,  2,  3,  2,  1,  5,  4,  5,  6,  7,  6,  5,  9,  8,  9,  10, 11, 10, 9,
                                      13, 12, 13, 14, 15, 14, 13, 17, 16, 17, 18, 19, 18, 17, 21, 20, 21, 22, 23, 22, 21});
  }
}

TEST_CASE("pad matches a reference loop in every mode", "[pad]") {
  const Shape shapes[] = {{2, 3, 4}, {1, 5, 2}, {3, 2, 6}};
  for (DType dt : kDtypes)
    for (PadMode mode : kModes)
      for (std::size_t s = 0; s < std::size(shapes); ++s) {
        Tensor x = random_input(shapes[s], 40 + s, -1, 1, dt).detach();
        const std::int64_t h = x.size(1), w = x.size(2);
        // The largest pads each mode allows, and a lopsided smaller one.
        const bool reflect = mode == PadMode::reflect;
        const std::int64_t left = reflect ? w - 1 : w, right = 1, top = 0, bottom = reflect ? h - 1 : h;
        const double value = mode == PadMode::zeros ? -2.0 : 0.0;
        INFO("mode " << pad_mode_name(mode) << ", shape " << shape_str(x.shape()));
        require_allclose(pad(x, {left, right, top, bottom}, mode, value),
                         reference_pad(x, left, right, top, bottom, mode, value));
      }
}

TEST_CASE("pad is differentiable twice in every mode", "[pad]") {
  for (PadMode mode : kModes) {
    INFO("mode " << pad_mode_name(mode));
    Tensor x = random_input({2, 3, 4}, 50);
    auto f = [mode](const TensorList& in) { return square(pad(in[0], {3, 2, 1, 2}, mode)) * 0.5; };
    REQUIRE_GRADCHECK(f, TensorList{x});
    REQUIRE_GRADGRADCHECK(f, TensorList{x});
    auto three_axes = [mode](const TensorList& in) { return pad(in[0], {1, 0, 0, 2, 1, 1}, mode) * 2.0; };
    REQUIRE_GRADCHECK(three_axes, TensorList{x});
    REQUIRE_GRADGRADCHECK(three_axes, TensorList{x});
  }
  // The constant fill has no gradient: only interior positions reach x.
  Tensor x = ones({2, 2}, DType::f64).requires_grad_();
  backward(sum(pad(x, {1, 1, 1, 1}, PadMode::zeros, 7.0)));
  require_allclose(x.grad(), {1, 1, 1, 1});
  // Reflection sends each border gradient to its mirror image.
  Tensor y = tensor({1, 2, 3}, {3}, DType::f64).requires_grad_();
  backward(sum(pad(y, {2, 1}, PadMode::reflect) * tensor({1, 10, 100, 1000, 10000, 100000}, {6}, DType::f64)));
  require_allclose(y.grad(), {100, 10 + 1000 + 100000, 1 + 10000});
}

TEST_CASE("pad edges: empty and size-1 axes, empty pads", "[pad]") {
  require_allclose(pad(zeros({2, 0}), {1, 1}, PadMode::zeros, 3.0), {3, 3, 3, 3});
  require_allclose(pad(tensor({5}, {1}), {2, 2}, PadMode::replicate), {5, 5, 5, 5, 5});
  require_allclose(pad(tensor({5}, {1}), {1, 1}, PadMode::circular), {5, 5, 5});
  require_allclose(pad(tensor({5}, {1}), {0, 0}, PadMode::reflect), {5});
  REQUIRE(pad(zeros({0, 3}), {1, 1}, PadMode::reflect).shape() == Shape{0, 5});
  Tensor x = tensor({1, 2});
  REQUIRE(pad(x, {}).shape() == Shape{2});
  REQUIRE(pad(scalar(2.0), {}).item() == 2.0);
  REQUIRE(std::string(pad_mode_name(PadMode::zeros)) == "zeros");
  REQUIRE(std::string(pad_mode_name(PadMode::reflect)) == "reflect");
  REQUIRE(std::string(pad_mode_name(PadMode::replicate)) == "replicate");
  REQUIRE(std::string(pad_mode_name(PadMode::circular)) == "circular");
}

TEST_CASE("pad rejects what it cannot do, naming mode and shapes", "[pad]") {
  Tensor x = zeros({2, 3});
  REQUIRE_THROWS_WITH(pad(x, {1}), Catch::Contains("pad") && Catch::Contains("[1]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(pad(x, {1, 1, 1, 1, 1, 1}), Catch::Contains("pad") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(pad(x, {-1, 0}), Catch::Contains("pad") && Catch::Contains("negative"));
  REQUIRE_THROWS_WITH(pad(x, {3, 0}, PadMode::reflect),
                      Catch::Contains("reflect") && Catch::Contains("size 3") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(pad(x, {0, 0, 0, 2}, PadMode::reflect), Catch::Contains("reflect") && Catch::Contains("axis 0"));
  REQUIRE_THROWS_WITH(pad(x, {4, 0}, PadMode::circular), Catch::Contains("circular") && Catch::Contains("size 3"));
  REQUIRE_THROWS_WITH(pad(zeros({2, 0}), {1, 0}, PadMode::replicate),
                      Catch::Contains("replicate") && Catch::Contains("[2, 0]"));
  REQUIRE_THROWS_WITH(pad(x, {1, 1}, PadMode::reflect, 2.0), Catch::Contains("pad") && Catch::Contains("reflect"));
  REQUIRE_THROWS_WITH(pad(Tensor(), {1, 1}), Catch::Contains("pad"));
}
