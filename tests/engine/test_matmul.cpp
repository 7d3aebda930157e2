// matmul: forward against a plain triple loop (2-D, batched, broadcast batch dims, every
// transpose combination), the BLAS door against its reference, gradcheck and
// gradgradcheck in float64, float32 against float64, empty edges and error messages.
#include <catch2/catch.hpp>

#include "engine/kernels/gemm.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// Flat offset of the matrix that batch item `item` of out_batch reads from an operand
// with batch shape `in` (NumPy broadcasting, written independently of the library).
std::int64_t batch_offset(const Shape& in, const Shape& out, std::int64_t item) {
  std::int64_t offset = 0, stride = 1;
  for (std::size_t d = out.size(); d-- > 0;) {
    const std::int64_t coord = item % out[d];
    item /= out[d];
    const std::size_t lead = out.size() - in.size();
    if (d < lead) continue;
    if (in[d - lead] != 1) offset += coord * stride;
    stride *= in[d - lead];
  }
  return offset;
}

// op(a) @ op(b) by the definition, batch dims broadcast; returns values and shape.
std::pair<std::vector<double>, Shape> matmul_reference(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const Shape as = a.shape(), bs = b.shape();
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  const std::int64_t ar = as[as.size() - 2], ac = as.back(), br = bs[bs.size() - 2], bc = bs.back();
  const std::int64_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  Shape batch(std::max(a_batch.size(), b_batch.size()), 1);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::size_t from_end = batch.size() - 1 - i;
    const std::int64_t da = from_end < a_batch.size() ? a_batch[a_batch.size() - 1 - from_end] : 1;
    const std::int64_t db = from_end < b_batch.size() ? b_batch[b_batch.size() - 1 - from_end] : 1;
    batch[i] = std::max(da, db);
  }
  const std::vector<double> av = a.to_vector(), bv = b.to_vector();
  std::vector<double> out;
  for (std::int64_t item = 0; item < shape_numel(batch); ++item) {
    const double* A = av.data() + batch_offset(a_batch, batch, item) * ar * ac;
    const double* B = bv.data() + batch_offset(b_batch, batch, item) * br * bc;
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double acc = 0.0;
        for (std::int64_t p = 0; p < k; ++p)
          acc += (ta ? A[p * ac + i] : A[i * ac + p]) * (tb ? B[j * bc + p] : B[p * bc + j]);
        out.push_back(acc);
      }
  }
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  return {out, out_shape};
}

// Stored shape of an operand whose op() is rows x cols, with the given batch dims.
Shape stored(Shape batch, std::int64_t rows, std::int64_t cols, bool transposed) {
  batch.push_back(transposed ? cols : rows);
  batch.push_back(transposed ? rows : cols);
  return batch;
}

struct BatchCase {
  Shape a_batch, b_batch;
};

const std::vector<BatchCase> kBatchCases = {
    {{}, {}},              // plain 2-D
    {{3}, {3}},            // batched, same batch
    {{2, 1}, {5}},         // both broadcast: [2, 1] x [5] -> [2, 5]
    {{4}, {}},             // rhs shared: one gemm with the batch folded into M
    {{}, {4}},             // lhs shared
    {{1}, {2, 3}},         // ranks differ
};

}  // namespace

TEST_CASE("matmul matches a triple loop for every transpose and broadcast batch", "[matmul]") {
  std::uint64_t seed = 1;
  for (const auto& c : kBatchCases)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (DType dt : {DType::f32, DType::f64}) {
          INFO("batches " << shape_str(c.a_batch) << " " << shape_str(c.b_batch) << " ta=" << ta << " tb=" << tb);
          const Tensor a = random_input(stored(c.a_batch, 3, 5, ta), seed++, -1, 1, dt).detach();
          const Tensor b = random_input(stored(c.b_batch, 5, 4, tb), seed++, -1, 1, dt).detach();
          const auto [expected, shape] = matmul_reference(a, b, ta, tb);
          const Tensor y = matmul(a, b, ta, tb);
          REQUIRE(y.shape() == shape);
          REQUIRE(y.dtype() == dt);
          require_allclose(y, expected, dt == DType::f32 ? 1e-5 : 1e-12, dt == DType::f32 ? 1e-5 : 1e-12);
        }
}

TEST_CASE("matmul broadcasts batch dims NumPy-style: [2,1,3,4] @ [5,4,6] -> [2,5,3,6]", "[matmul]") {
  const Tensor a = random_input({2, 1, 3, 4}, 10).detach();
  const Tensor b = random_input({5, 4, 6}, 11).detach();
  const Tensor y = matmul(a, b);
  REQUIRE(y.shape() == Shape{2, 5, 3, 6});
  require_allclose(y, matmul_reference(a, b, false, false).first, 1e-12, 1e-12);
}

TEST_CASE("matmul in float32 agrees with float64", "[matmul]") {
  const Tensor a = random_input({3, 40, 70}, 12).detach();
  const Tensor b = random_input({70, 30}, 13).detach();
  const Tensor y64 = matmul(a, b);
  const Tensor y32 = matmul(to_dtype(a, DType::f32), to_dtype(b, DType::f32));
  require_allclose(y32, y64, 1e-4, 1e-4);
}

TEST_CASE("matmul passes gradcheck and gradgradcheck for every transpose and broadcast batch", "[matmul][gradcheck]") {
  std::uint64_t seed = 100;
  for (const auto& c : kBatchCases)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("batches " << shape_str(c.a_batch) << " " << shape_str(c.b_batch) << " ta=" << ta << " tb=" << tb);
        const Tensor a = random_input(stored(c.a_batch, 2, 3, ta), seed++);
        const Tensor b = random_input(stored(c.b_batch, 3, 2, tb), seed++);
        auto f = [ta, tb](const TensorList& xs) { return matmul(xs[0], xs[1], ta, tb); };
        REQUIRE_GRADCHECK(f, (TensorList{a, b}));
        REQUIRE_GRADGRADCHECK(f, (TensorList{a, b}));
      }
}

TEST_CASE("matmul's gradient of a broadcast operand is summed over the batch", "[matmul]") {
  const Tensor a = random_input({3, 2, 4}, 20);
  const Tensor b = random_input({4, 5}, 21);
  backward(sum(matmul(a, b)));
  REQUIRE(b.grad().shape() == Shape{4, 5});
  // d sum(A_i B) / dB[p, j] = sum_i sum_r A_i[r, p], the same for every j.
  const std::vector<double> av = a.to_vector(), gb = b.grad().to_vector();
  for (std::int64_t p = 0; p < 4; ++p) {
    double expected = 0.0;
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t r = 0; r < 2; ++r) expected += av[(i * 2 + r) * 4 + p];
    for (std::int64_t j = 0; j < 5; ++j) REQUIRE(gb[p * 5 + j] == Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("matmul handles empty and one-element operands", "[matmul]") {
  SECTION("inner dimension 0 gives zeros") {
    const Tensor y = matmul(ones({3, 0}), ones({0, 2}));
    REQUIRE(y.shape() == Shape{3, 2});
    for (double v : y.to_vector()) REQUIRE(v == 0.0);
  }
  SECTION("zero rows, columns or batch give empty results") {
    REQUIRE(matmul(ones({0, 4}), ones({4, 2})).shape() == Shape{0, 2});
    REQUIRE(matmul(ones({3, 4}), ones({4, 0})).shape() == Shape{3, 0});
    REQUIRE(matmul(ones({0, 3, 4}), ones({4, 2})).shape() == Shape{0, 3, 2});
    const Tensor a = random_input({0, 3, 4}, 30);
    const Tensor b = random_input({4, 2}, 31);
    backward(sum(matmul(a, b)));
    REQUIRE(a.grad().shape() == Shape{0, 3, 4});
    for (double v : b.grad().to_vector()) REQUIRE(v == 0.0);
  }
  SECTION("1 x 1") {
    REQUIRE(matmul(tensor({3.0}, {1, 1}), tensor({-2.0}, {1, 1})).item() == -6.0);
  }
}

TEST_CASE("matmul's errors name the op and both shapes", "[matmul][errors]") {
  REQUIRE_THROWS_WITH(matmul(zeros({32, 784}), zeros({256, 10})),
                      "matmul: lhs [32, 784] and rhs [256, 10] do not chain (784 != 256)");
  REQUIRE_THROWS_WITH(matmul(zeros({3, 4}), zeros({5, 4}), true, false),
                      "matmul: lhs [3, 4] (transposed) and rhs [5, 4] do not chain (3 != 5)");
  REQUIRE_NOTHROW(matmul(zeros({3, 4}), zeros({3, 4}), true, false));
  REQUIRE_NOTHROW(matmul(zeros({3, 4}), zeros({3, 4}), false, true));
  REQUIRE_THROWS_WITH(matmul(zeros({4}), zeros({4, 2})), Catch::Contains("matmul") && Catch::Contains("rank 1"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 4}), zeros({4}, DType::f64)), Catch::Contains("rank 1"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 4}), zeros({4, 2}, DType::f64)),
                      Catch::Contains("matmul") && Catch::Contains("float32") && Catch::Contains("float64"));
  REQUIRE_THROWS_WITH(matmul(zeros({2, 3, 4}), zeros({5, 4, 2})),
                      Catch::Contains("matmul") && Catch::Contains("[2, 3, 4]") && Catch::Contains("[5, 4, 2]") &&
                          Catch::Contains("broadcast"));
  REQUIRE_THROWS_WITH(matmul(Tensor(), zeros({2, 2})), Catch::Contains("matmul") && Catch::Contains("undefined"));
}

TEST_CASE("gemm through BLAS matches its reference loop, with alpha, beta and leading dimensions", "[matmul][gemm]") {
  for (DType dt : {DType::f32, DType::f64})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const std::int64_t m = 5, n = 7, k = 6, pad = 3;  // leading dimensions wider than the matrices
        const std::int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        const Tensor a = random_input({ta ? k : m, lda}, 40, -1, 1, dt).detach();
        const Tensor b = random_input({tb ? n : k, ldb}, 41, -1, 1, dt).detach();
        const Tensor c0 = random_input({m, ldc}, 42, -1, 1, dt).detach();
        Tensor fast = c0 * 1.0, slow = c0 * 1.0;  // two private copies of C
        kernels::gemm(dt, ta, tb, m, n, k, 0.5, a.raw_data(), lda, b.raw_data(), ldb, -2.0, fast.raw_data(), ldc);
        kernels::gemm_reference(dt, ta, tb, m, n, k, 0.5, a.raw_data(), lda, b.raw_data(), ldb, -2.0, slow.raw_data(),
                                ldc);
        require_allclose(fast, slow, dt == DType::f32 ? 1e-5 : 1e-12, 1e-6);
      }
}
