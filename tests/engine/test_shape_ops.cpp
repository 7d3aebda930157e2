// Shape ops: flatten, squeeze, unsqueeze, permute, transpose, expand, narrow, slice,
// concat, stack, split, chunk. Inputs are numbered 0, 1, 2, ... in row-major order, so
// each output element names the input position it came from and the reference loops
// below only compute positions.
#include <functional>

#include "support/testing.hpp"

using namespace symgrad;
using testing::random_input;
using testing::require_allclose;

namespace {

const DType kDtypes[] = {DType::f32, DType::f64};

// 0, 1, 2, ... in row-major order.
Tensor numbered(const Shape& shape, DType dt = DType::f64) {
  return reshape(arange(0, static_cast<double>(shape_numel(shape)), 1, dt), shape);
}

// Calls fn(coord) for every coordinate of shape in row-major order.
void for_each_coord(const Shape& shape, const std::function<void(const Shape&)>& fn) {
  if (shape_numel(shape) == 0) return;
  Shape coord(shape.size(), 0);
  for (std::int64_t n = shape_numel(shape); n > 0; --n) {
    fn(coord);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++coord[d] < shape[d]) break;
      coord[d] = 0;
    }
  }
}

double flat_position(const Shape& shape, const Shape& coord) {
  std::int64_t flat = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + coord[d];
  return static_cast<double>(flat);
}

// The expected output of a copy from a numbered input: for every output coordinate,
// the flat input position that `source` maps it to.
std::vector<double> expected_positions(const Shape& out_shape, const Shape& in_shape,
                                       const std::function<Shape(const Shape&)>& source) {
  std::vector<double> expected;
  for_each_coord(out_shape, [&](const Shape& c) { expected.push_back(flat_position(in_shape, source(c))); });
  return expected;
}

}  // namespace

TEST_CASE("flatten, squeeze and unsqueeze only relabel the shape", "[shape_ops]") {
  Tensor x = numbered({2, 3, 4});
  REQUIRE(flatten(x).shape() == Shape{24});
  REQUIRE(flatten(x, 1).shape() == Shape{2, 12});
  REQUIRE(flatten(x, 0, 1).shape() == Shape{6, 4});
  REQUIRE(flatten(x, -2, -1).shape() == Shape{2, 12});
  REQUIRE(flatten(x, 1, 1).shape() == Shape{2, 3, 4});
  REQUIRE(flatten(scalar(2.0)).shape() == Shape{1});
  require_allclose(flatten(x), x.to_vector());
  REQUIRE(unsqueeze(x, 0).shape() == Shape{1, 2, 3, 4});
  REQUIRE(unsqueeze(x, 3).shape() == Shape{2, 3, 4, 1});
  REQUIRE(unsqueeze(x, -1).shape() == Shape{2, 3, 4, 1});
  REQUIRE(unsqueeze(x, -2).shape() == Shape{2, 3, 1, 4});
  REQUIRE(unsqueeze(scalar(1.0), 0).shape() == Shape{1});
  REQUIRE(squeeze(unsqueeze(x, 2), 2).shape() == Shape{2, 3, 4});
  REQUIRE(squeeze(numbered({1}), 0).shape() == Shape{});
  REQUIRE(squeeze(numbered({0, 1}), -1).shape() == Shape{0});
  require_allclose(squeeze(unsqueeze(x, 1), 1), x.to_vector());

  REQUIRE_THROWS_WITH(flatten(x, 2, 1), Catch::Contains("flatten") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(flatten(x, 3), Catch::Contains("flatten") && Catch::Contains("axis 3"));
  REQUIRE_THROWS_WITH(squeeze(x, 1), Catch::Contains("squeeze") && Catch::Contains("[2, 3, 4]") &&
                                         Catch::Contains("size 3"));
  REQUIRE_THROWS_WITH(squeeze(scalar(1.0), 0), Catch::Contains("squeeze"));
  REQUIRE_THROWS_WITH(unsqueeze(x, 4), Catch::Contains("unsqueeze") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(unsqueeze(x, -5), Catch::Contains("unsqueeze"));
  REQUIRE_THROWS_WITH(flatten(Tensor()), Catch::Contains("flatten"));

  Tensor p = random_input({2, 3, 2}, 1);
  auto f = [](const TensorList& in) { return square(unsqueeze(squeeze(flatten(unsqueeze(in[0], 1), 2), 1), 0)); };
  REQUIRE_GRADCHECK(f, TensorList{p});
  REQUIRE_GRADGRADCHECK(f, TensorList{p});
}

TEST_CASE("permute matches a reference loop", "[shape_ops]") {
  for (DType dt : kDtypes) {
    const Shape in_shape{2, 3, 4};
    Tensor y = permute(numbered(in_shape, dt), {2, 0, 1});
    REQUIRE(y.shape() == Shape{4, 2, 3});
    REQUIRE(y.dtype() == dt);
    require_allclose(y, expected_positions(y.shape(), in_shape, [](const Shape& c) { return Shape{c[1], c[2], c[0]}; }));
    Tensor z = permute(numbered(in_shape, dt), {-1, 1, 0});
    require_allclose(z, expected_positions(z.shape(), in_shape, [](const Shape& c) { return Shape{c[2], c[1], c[0]}; }));
  }
  REQUIRE(permute(numbered({2, 0, 3}), {2, 1, 0}).shape() == Shape{3, 0, 2});
  REQUIRE(permute(scalar(4.0), {}).item() == 4.0);

  Tensor x = numbered({2, 3});
  REQUIRE_THROWS_WITH(permute(x, {0}), Catch::Contains("permute") && Catch::Contains("[2, 3]") && Catch::Contains("[0]"));
  REQUIRE_THROWS_WITH(permute(x, {1, 1}), Catch::Contains("permute") && Catch::Contains("[1, 1]"));
  REQUIRE_THROWS_WITH(permute(x, {0, 2}), Catch::Contains("not a permutation"));

  Tensor p = random_input({2, 3, 4}, 2);
  auto f = [](const TensorList& in) { return square(permute(in[0], {1, 2, 0})); };
  REQUIRE_GRADCHECK(f, TensorList{p});
  REQUIRE_GRADGRADCHECK(f, TensorList{p});
  REQUIRE(permute(p, {1, 2, 0}).grad_fn()->name == "permute");
}

TEST_CASE("transpose swaps two axes", "[shape_ops]") {
  for (DType dt : kDtypes) {
    Tensor y = transpose(numbered({3, 4}, dt));
    REQUIRE(y.shape() == Shape{4, 3});
    require_allclose(y, expected_positions(y.shape(), {3, 4}, [](const Shape& c) { return Shape{c[1], c[0]}; }));
    Tensor z = transpose(numbered({2, 3, 4}, dt), 0, 2);
    REQUIRE(z.shape() == Shape{4, 3, 2});
    require_allclose(z, expected_positions(z.shape(), {2, 3, 4}, [](const Shape& c) { return Shape{c[2], c[1], c[0]}; }));
  }
  REQUIRE(transpose(numbered({1, 0})).shape() == Shape{0, 1});
  REQUIRE_THROWS_WITH(transpose(numbered({3})), Catch::Contains("transpose") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(transpose(numbered({3, 2}), 0, 2), Catch::Contains("transpose") && Catch::Contains("axis 2"));

  Tensor p = random_input({2, 3, 4}, 3);
  auto f = [](const TensorList& in) { return square(transpose(in[0], 0, 2)); };
  REQUIRE_GRADCHECK(f, TensorList{p});
  REQUIRE_GRADGRADCHECK(f, TensorList{p});
  REQUIRE(transpose(p).grad_fn()->name == "transpose");
}

TEST_CASE("expand broadcasts and sums its gradient back", "[shape_ops]") {
  Tensor y = expand(numbered({3, 1}), {2, 3, 4});
  require_allclose(y, expected_positions(y.shape(), {3, 1}, [](const Shape& c) { return Shape{c[1], 0}; }));
  Tensor p = random_input({3, 1}, 4);
  auto f = [](const TensorList& in) { return square(expand(in[0], {2, 3, 4})); };
  REQUIRE_GRADCHECK(f, TensorList{p});
  REQUIRE_GRADGRADCHECK(f, TensorList{p});
}

TEST_CASE("narrow takes a contiguous range of one axis", "[shape_ops]") {
  for (DType dt : kDtypes) {
    Tensor y = narrow(numbered({3, 5, 2}, dt), 1, 1, 3);
    REQUIRE(y.shape() == Shape{3, 3, 2});
    require_allclose(y, expected_positions(y.shape(), {3, 5, 2}, [](const Shape& c) { return Shape{c[0], c[1] + 1, c[2]}; }));
    Tensor z = narrow(numbered({3, 5, 2}, dt), -1, -1, 1);  // negative start counts from the end
    require_allclose(z, expected_positions(z.shape(), {3, 5, 2}, [](const Shape& c) { return Shape{c[0], c[1], 1}; }));
  }
  REQUIRE(narrow(numbered({3, 5}), 1, 5, 0).shape() == Shape{3, 0});
  REQUIRE(narrow(numbered({0, 5}), 1, 2, 2).shape() == Shape{0, 2});

  Tensor x = numbered({3, 5});
  REQUIRE_THROWS_WITH(narrow(x, 1, 3, 3), Catch::Contains("narrow") && Catch::Contains("[3, 5]") &&
                                              Catch::Contains("size 5"));
  REQUIRE_THROWS_WITH(narrow(x, 0, 0, -1), Catch::Contains("narrow") && Catch::Contains("length -1"));
  REQUIRE_THROWS_WITH(narrow(x, 0, -4, 1), Catch::Contains("narrow"));
  REQUIRE_THROWS_WITH(narrow(x, 2, 0, 1), Catch::Contains("narrow") && Catch::Contains("axis 2"));

  Tensor p = random_input({3, 5, 2}, 5);
  auto f = [](const TensorList& in) { return square(narrow(in[0], 1, 1, 3)); };
  REQUIRE_GRADCHECK(f, TensorList{p});
  REQUIRE_GRADGRADCHECK(f, TensorList{p});
}

TEST_CASE("slice follows Python's clamping and steps", "[shape_ops]") {
  struct Case {
    std::int64_t start, end, step;
    std::vector<double> picked;  // positions along an axis of size 7
  };
  const Case cases[] = {
      {1, 6, 2, {1, 3, 5}},   {0, 7, 3, {0, 3, 6}},  {-3, 100, 1, {4, 5, 6}}, {-100, 2, 1, {0, 1}},
      {5, 2, 1, {}},          {6, -1, 1, {}},        {-1, 7, 1, {6}},         {0, 100, 10, {0}},
      {7, 9, 1, {}},          {2, -2, 2, {2, 4}},
  };
  for (DType dt : kDtypes)
    for (const Case& c : cases) {
      Tensor y = slice(numbered({7}, dt), 0, c.start, c.end, c.step);
      REQUIRE(y.shape() == Shape{static_cast<std::int64_t>(c.picked.size())});
      require_allclose(y, c.picked);
    }
  Tensor y = slice(numbered({2, 7, 3}), 1, 1, 7, 3);
  REQUIRE(y.shape() == Shape{2, 2, 3});
  require_allclose(y, expected_positions(y.shape(), {2, 7, 3}, [](const Shape& c) { return Shape{c[0], 1 + 3 * c[1], c[2]}; }));

  REQUIRE_THROWS_WITH(slice(numbered({7}), 0, 0, 7, 0), Catch::Contains("slice") && Catch::Contains("step 0"));
  REQUIRE_THROWS_WITH(slice(numbered({7}), 0, 7, 0, -1), Catch::Contains("slice") && Catch::Contains("[7]"));
  REQUIRE_THROWS_WITH(slice(numbered({7}), 1, 0, 7), Catch::Contains("slice") && Catch::Contains("axis 1"));

  Tensor p = random_input({2, 7, 3}, 6);
  auto f = [](const TensorList& in) { return square(slice(in[0], 1, 1, 7, 3)); };
  REQUIRE_GRADCHECK(f, TensorList{p});
  REQUIRE_GRADGRADCHECK(f, TensorList{p});
  // The gradient lands only on the picked positions.
  Tensor q = numbered({7}).detach().requires_grad_();
  backward(sum(slice(q, 0, 1, 7, 2) * 3.0));
  require_allclose(q.grad(), {0, 3, 0, 3, 0, 3, 0});
  // An empty slice still gives a (zero) gradient of the input's shape.
  Tensor r = numbered({4}).detach().requires_grad_();
  backward(sum(slice(r, 0, 3, 1)) + sum(r) * 0.0);
  require_allclose(r.grad(), {0, 0, 0, 0});
}

TEST_CASE("concat joins along an axis", "[shape_ops]") {
  for (DType dt : kDtypes) {
    Tensor a = numbered({2, 1, 3}, dt), b = numbered({2, 2, 3}, dt) + 100.0, c = numbered({2, 0, 3}, dt);
    Tensor y = concat({a, c, b}, 1);
    REQUIRE(y.shape() == Shape{2, 3, 3});
    REQUIRE(y.dtype() == dt);
    std::vector<double> expected;
    for_each_coord(y.shape(), [&](const Shape& k) {
      expected.push_back(k[1] == 0 ? flat_position({2, 1, 3}, {k[0], 0, k[2]})
                                   : 100.0 + flat_position({2, 2, 3}, {k[0], k[1] - 1, k[2]}));
    });
    require_allclose(y, expected);
    require_allclose(concat({a, a}, -1), expected_positions({2, 1, 6}, {2, 1, 3}, [](const Shape& k) {
                       return Shape{k[0], 0, k[2] % 3};
                     }));
  }
  REQUIRE(concat({numbered({0, 2}), numbered({0, 2})}).shape() == Shape{0, 2});
  require_allclose(concat({numbered({2})}), {0, 1});

  Tensor a = numbered({2, 3});
  REQUIRE_THROWS_WITH(concat({}), Catch::Contains("concat"));
  REQUIRE_THROWS_WITH(concat({a, numbered({2, 4})}, 0),
                      Catch::Contains("concat") && Catch::Contains("[2, 4]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(concat({a, numbered({2, 3, 1})}, 0), Catch::Contains("concat") && Catch::Contains("[2, 3, 1]"));
  REQUIRE_THROWS_WITH(concat({a, numbered({2, 3}, DType::f32)}),
                      Catch::Contains("concat") && Catch::Contains("float32") && Catch::Contains("float64"));
  REQUIRE_THROWS_WITH(concat({a, a}, 2), Catch::Contains("concat") && Catch::Contains("axis 2"));
  REQUIRE_THROWS_WITH(concat({scalar(1.0), scalar(2.0)}), Catch::Contains("concat") && Catch::Contains("stack"));
  REQUIRE_THROWS_WITH(concat({a, Tensor()}), Catch::Contains("concat") && Catch::Contains("undefined"));

  TensorList ps{random_input({2, 1, 3}, 7), random_input({2, 2, 3}, 8), random_input({2, 3, 3}, 9)};
  auto f = [](const TensorList& in) { return square(concat({in[0], in[1], in[2]}, 1)) * in[0]; };
  REQUIRE_GRADCHECK(f, ps);
  REQUIRE_GRADGRADCHECK(f, ps);
  // An input that does not need a gradient is skipped.
  Tensor fixed = numbered({2, 2, 3});
  auto g = [&](const TensorList& in) { return square(concat({fixed, in[0]}, 1)); };
  REQUIRE_GRADCHECK(g, TensorList{ps[1]});
}

TEST_CASE("stack adds a new axis", "[shape_ops]") {
  for (DType dt : kDtypes) {
    Tensor a = numbered({2, 3}, dt), b = numbered({2, 3}, dt) + 10.0;
    Tensor y = stack({a, b}, 1);
    REQUIRE(y.shape() == Shape{2, 2, 3});
    std::vector<double> expected;
    for_each_coord(y.shape(), [&](const Shape& k) { expected.push_back(10.0 * k[1] + flat_position({2, 3}, {k[0], k[2]})); });
    require_allclose(y, expected);
    REQUIRE(stack({a, b}, -1).shape() == Shape{2, 3, 2});
    REQUIRE(stack({a, b}).shape() == Shape{2, 2, 3});
  }
  require_allclose(stack({scalar(1.0), scalar(2.0)}), {1, 2});
  REQUIRE(stack({numbered({0})}).shape() == Shape{1, 0});

  REQUIRE_THROWS_WITH(stack({}), Catch::Contains("stack"));
  REQUIRE_THROWS_WITH(stack({numbered({2, 3}), numbered({3, 2})}),
                      Catch::Contains("stack") && Catch::Contains("[3, 2]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(stack({numbered({2}), numbered({2}, DType::f32)}), Catch::Contains("stack") && Catch::Contains("float32"));
  REQUIRE_THROWS_WITH(stack({numbered({2})}, 2), Catch::Contains("stack") && Catch::Contains("axis 2"));

  TensorList ps{random_input({2, 3}, 10), random_input({2, 3}, 11)};
  auto f = [](const TensorList& in) { return square(stack({in[0], in[1], in[0]}, 1)); };
  REQUIRE_GRADCHECK(f, ps);
  REQUIRE_GRADGRADCHECK(f, ps);
}

TEST_CASE("split and chunk cut an axis into pieces", "[shape_ops]") {
  for (DType dt : kDtypes) {
    auto pieces = split(numbered({2, 6}, dt), {1, 0, 5}, 1);
    REQUIRE(pieces.size() == 3);
    REQUIRE(pieces[0].shape() == Shape{2, 1});
    REQUIRE(pieces[1].shape() == Shape{2, 0});
    REQUIRE(pieces[2].shape() == Shape{2, 5});
    require_allclose(pieces[0], {0, 6});
    require_allclose(pieces[2], {1, 2, 3, 4, 5, 7, 8, 9, 10, 11});
  }
  auto sizes_of = [](const std::vector<Tensor>& pieces) {
    std::vector<std::int64_t> sizes;
    for (const Tensor& p : pieces) sizes.push_back(p.size(0));
    return sizes;
  };
  REQUIRE(sizes_of(chunk(numbered({6}), 4)) == std::vector<std::int64_t>{2, 2, 2});  // fewer chunks
  REQUIRE(sizes_of(chunk(numbered({5}), 3)) == std::vector<std::int64_t>{2, 2, 1});
  REQUIRE(sizes_of(chunk(numbered({6}), 3)) == std::vector<std::int64_t>{2, 2, 2});
  REQUIRE(sizes_of(chunk(numbered({2}), 5)) == std::vector<std::int64_t>{1, 1});
  REQUIRE(sizes_of(chunk(numbered({0}), 3)) == std::vector<std::int64_t>{0, 0, 0});
  require_allclose(chunk(numbered({5}), 3)[2], {4});
  auto by_column = chunk(numbered({2, 5}), 2, -1);
  require_allclose(by_column[1], {3, 4, 8, 9});

  Tensor x = numbered({2, 6});
  REQUIRE_THROWS_WITH(split(x, {2, 3}, 1), Catch::Contains("split") && Catch::Contains("[2, 6]") && Catch::Contains("5"));
  REQUIRE_THROWS_WITH(split(x, {7, -1}, 1), Catch::Contains("split") && Catch::Contains("negative"));
  REQUIRE_THROWS_WITH(split(x, {2}, 2), Catch::Contains("split") && Catch::Contains("axis 2"));
  REQUIRE_THROWS_WITH(chunk(x, 0), Catch::Contains("chunk") && Catch::Contains("[2, 6]"));

  Tensor p = random_input({2, 6}, 12);
  auto f = [](const TensorList& in) {
    auto pieces = split(in[0], {1, 3, 2}, 1);
    return concat({square(pieces[2]), pieces[0] * 2.0, pieces[1]}, 1);
  };
  REQUIRE_GRADCHECK(f, TensorList{p});
  REQUIRE_GRADGRADCHECK(f, TensorList{p});
  auto g = [](const TensorList& in) {
    auto pieces = chunk(in[0], 4, 1);
    return square(pieces[1]) * pieces[2];
  };
  REQUIRE_GRADCHECK(g, TensorList{p});
  REQUIRE_GRADGRADCHECK(g, TensorList{p});
}
