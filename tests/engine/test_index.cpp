// Integer indexing: index_select / index_add and gather / scatter_add, each checked
// against a plain loop, and each pair checked to be adjoint (<op(x), y> = <x, adj(y)>).
#include "support/testing.hpp"

using namespace symgrad;
using testing::random_input;
using testing::require_allclose;

namespace {

const DType kDtypes[] = {DType::f32, DType::f64};

double dot_values(const Tensor& a, const Tensor& b) {
  const auto u = a.to_vector(), v = b.to_vector();
  double s = 0;
  for (std::size_t i = 0; i < u.size(); ++i) s += u[i] * v[i];
  return s;
}

// Reference gather for a 3-D input along `axis`: out[i,j,k] = x[.., index[i,j,k], ..].
std::vector<double> gather_reference(const std::vector<double>& x, const Shape& xs, std::int64_t axis,
                                     const std::vector<double>& index, const Shape& is) {
  std::vector<double> out;
  for (std::int64_t i = 0; i < is[0]; ++i)
    for (std::int64_t j = 0; j < is[1]; ++j)
      for (std::int64_t k = 0; k < is[2]; ++k) {
        std::int64_t c[3] = {i, j, k};
        c[axis] = static_cast<std::int64_t>(index[static_cast<std::size_t>((i * is[1] + j) * is[2] + k)]);
        out.push_back(x[static_cast<std::size_t>((c[0] * xs[1] + c[1]) * xs[2] + c[2])]);
      }
  return out;
}

}  // namespace

TEST_CASE("index_select picks slices along an axis", "[index]") {
  for (DType dt : kDtypes) {
    Tensor x = reshape(arange(0, 24, 1, dt), {2, 3, 4});
    const std::vector<std::int64_t> index{2, 0, 2, 1};
    Tensor y = index_select(x, 1, index);
    REQUIRE(y.shape() == Shape{2, 4, 4});
    REQUIRE(y.dtype() == dt);
    std::vector<double> expected;
    for (std::int64_t i = 0; i < 2; ++i)
      for (std::int64_t k : index)
        for (std::int64_t j = 0; j < 4; ++j) expected.push_back(static_cast<double>((i * 3 + k) * 4 + j));
    require_allclose(y, expected);
    require_allclose(index_select(x, -1, {3}), {3, 7, 11, 15, 19, 23});
    REQUIRE(index_select(x, 0, {}).shape() == Shape{0, 3, 4});
  }
  REQUIRE(index_select(zeros({0, 3}), 1, {2, 2}).shape() == Shape{0, 2});

  Tensor x = zeros({2, 3});
  REQUIRE_THROWS_WITH(index_select(x, 1, {0, 3}), Catch::Contains("index_select") && Catch::Contains("index 3") &&
                                                      Catch::Contains("axis 1") && Catch::Contains("size 3") &&
                                                      Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(index_select(x, 0, {-1}), Catch::Contains("index_select") && Catch::Contains("index -1"));
  REQUIRE_THROWS_WITH(index_select(x, 2, {0}), Catch::Contains("index_select") && Catch::Contains("axis 2"));
}

TEST_CASE("index_add accumulates repeated indices", "[index]") {
  for (DType dt : kDtypes) {
    Tensor src = reshape(arange(1, 7, 1, dt), {2, 3});
    Tensor y = index_add({2, 4}, 1, {3, 0, 3}, src);
    REQUIRE(y.dtype() == dt);
    require_allclose(y, {2, 0, 0, 1 + 3, 5, 0, 0, 4 + 6});
  }
  REQUIRE_THROWS_WITH(index_add({2, 4}, 1, {0, 1}, zeros({2, 3})),
                      Catch::Contains("index_add") && Catch::Contains("[2, 3]") && Catch::Contains("[2, 2]"));
  REQUIRE_THROWS_WITH(index_add({2, 4}, 1, {0, 4}, zeros({2, 2})), Catch::Contains("index_add") && Catch::Contains("index 4"));
  REQUIRE_THROWS_WITH(index_add({2, -4}, 1, {0}, zeros({2, 1})), Catch::Contains("index_add") && Catch::Contains("negative"));
}

TEST_CASE("index_select and index_add are adjoint and differentiable twice", "[index]") {
  const std::vector<std::int64_t> index{1, 1, 0, 3};
  Tensor x = random_input({3, 4, 2}, 21), y = random_input({3, 4, 2}, 22);
  REQUIRE(dot_values(index_select(x, 1, index), y) == Approx(dot_values(x, index_add({3, 4, 2}, 1, index, y))));

  auto f = [&](const TensorList& in) { return square(index_select(in[0], 1, index)); };
  REQUIRE_GRADCHECK(f, TensorList{x});
  REQUIRE_GRADGRADCHECK(f, TensorList{x});
  auto g = [&](const TensorList& in) { return square(index_add({3, 5, 2}, 1, index, in[0])); };
  REQUIRE_GRADCHECK(g, TensorList{y});
  REQUIRE_GRADGRADCHECK(g, TensorList{y});
}

TEST_CASE("gather matches a reference loop", "[index]") {
  for (DType dt : kDtypes)
    for (std::int64_t axis = 0; axis < 3; ++axis) {
      const Shape xs{3, 4, 5};
      Tensor x = reshape(arange(0, 60, 1, dt), xs);
      const Shape is{2, 3, 4};  // no larger than x off the axis
      std::vector<double> index;
      for (std::int64_t i = 0; i < shape_numel(is); ++i) index.push_back(static_cast<double>((i * 7 + 3) % xs[axis]));
      for (DType index_dt : kDtypes) {
        Tensor idx = from_vector(index, is, index_dt);
        Tensor y = gather(x, axis, idx);
        REQUIRE(y.shape() == is);
        REQUIRE(y.dtype() == dt);
        require_allclose(y, gather_reference(x.to_vector(), xs, axis, index, is));
      }
    }
  // A larger index along the axis itself repeats elements.
  require_allclose(gather(tensor({10, 20}), 0, tensor({1, 1, 0, 1}, {4})), {20, 20, 10, 20});
  REQUIRE(gather(zeros({2, 3}), 1, zeros({2, 0})).shape() == Shape{2, 0});
}

TEST_CASE("gather and scatter_add validate their index", "[index]") {
  Tensor x = zeros({2, 3});
  REQUIRE_THROWS_WITH(gather(x, 1, tensor({0, 3}, {1, 2})),
                      Catch::Contains("gather") && Catch::Contains("index 3") && Catch::Contains("axis 1") &&
                          Catch::Contains("size 3") && Catch::Contains("[0, 1]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(gather(x, 1, tensor({0, 1.5}, {1, 2})),
                      Catch::Contains("gather") && Catch::Contains("1.5") && Catch::Contains("whole number"));
  REQUIRE_THROWS_WITH(gather(x, 1, tensor({-1}, {1, 1})), Catch::Contains("gather") && Catch::Contains("index -1"));
  REQUIRE_THROWS_WITH(gather(x, 1, tensor({std::nan("")}, {1, 1})), Catch::Contains("gather") && Catch::Contains("nan"));
  REQUIRE_THROWS_WITH(gather(x, 1, zeros({3, 1})), Catch::Contains("gather") && Catch::Contains("[3, 1]") &&
                                                       Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(gather(x, 0, zeros({2})), Catch::Contains("gather") && Catch::Contains("[2]"));
  REQUIRE_THROWS_WITH(gather(x, 2, zeros({2, 3})), Catch::Contains("gather") && Catch::Contains("axis 2"));
  REQUIRE_THROWS_WITH(gather(x, 0, Tensor()), Catch::Contains("gather") && Catch::Contains("index"));

  REQUIRE_THROWS_WITH(scatter_add({2, 3}, 1, zeros({2, 2}), zeros({2, 1})),
                      Catch::Contains("scatter_add") && Catch::Contains("[2, 2]") && Catch::Contains("[2, 1]"));
  REQUIRE_THROWS_WITH(scatter_add({2, 3}, 1, tensor({5}, {1, 1}), zeros({1, 1})),
                      Catch::Contains("scatter_add") && Catch::Contains("index 5") && Catch::Contains("size 3"));
  REQUIRE_THROWS_WITH(scatter_add({2, 3}, 1, zeros({3, 1}), zeros({3, 1})),
                      Catch::Contains("scatter_add") && Catch::Contains("[3, 1]") && Catch::Contains("[2, 3]"));
}

TEST_CASE("scatter_add accumulates into zeros", "[index]") {
  for (DType dt : kDtypes) {
    Tensor index = tensor({2, 0, 2, 1, 1, 1}, {2, 3}, dt);
    Tensor src = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
    Tensor along_columns = scatter_add({2, 4}, 1, index, src);
    require_allclose(along_columns, {2, 0, 1 + 3, 0, 0, 4 + 5 + 6, 0, 0});
    Tensor along_rows = scatter_add({3, 3}, 0, index, src);  // out[index[i,j], j] += src[i,j]
    require_allclose(along_rows, {0, 2, 0, 4, 5, 6, 1, 0, 3});
  }
  REQUIRE(scatter_add({2, 3}, 0, zeros({0, 3}), zeros({0, 3})).to_vector() == std::vector<double>(6, 0.0));
}

TEST_CASE("gather and scatter_add are adjoint and differentiable twice", "[index]") {
  Tensor index = tensor({3, 0, 1, 1, 2, 3}, {2, 3}, DType::f64);  // repeats along the axis
  Tensor x = random_input({4, 3}, 31), y = random_input({2, 3}, 32);
  REQUIRE(dot_values(gather(x, 0, index), y) == Approx(dot_values(x, scatter_add({4, 3}, 0, index, y))));

  Tensor column_index = tensor({2, 0, 2, 1}, {4, 1}, DType::f32);
  auto f = [&](const TensorList& in) {
    Tensor per_row = gather(in[0], 1, column_index) * narrow(in[0], 1, 0, 1);
    return concat({flatten(square(gather(in[0], 0, index))), flatten(per_row)});
  };
  auto g = [&](const TensorList& in) { return square(scatter_add({4, 3}, 0, index, in[0])); };
  REQUIRE_GRADCHECK(f, TensorList{x});
  REQUIRE_GRADGRADCHECK(f, TensorList{x});
  REQUIRE_GRADCHECK(g, TensorList{y});
  REQUIRE_GRADGRADCHECK(g, TensorList{y});
}
