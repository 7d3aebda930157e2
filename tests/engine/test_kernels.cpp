// The SIMD kernels against their scalar references (engine/kernels/elementwise.hpp).
//
// Accuracy contract, checked on every element: a float32 kernel is within 4 ulp (or
// 2e-6 relative) of the float64 reference evaluated on the same inputs; a float64
// kernel is within 1e-14 relative (float32 erf and gelu are measured at <= 7 ulp,
// which the 2e-6 bound covers). Results whose exact value is below 1e-30 in
// magnitude (float32) are compared absolutely: there the formulas' intermediates
// (e^x for x < -87) are subnormal and hold fewer bits. NaN must match NaN exactly.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/kernels/elementwise.hpp"
#include "hwy/targets.h"

namespace {

using namespace symgrad;
using kernels::Binary;
using kernels::Reduce;
using kernels::Unary;

const std::vector<std::int64_t> kSizes = {0, 1, 3, 7, 17, 33, 1000, 100003};
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Runs `checks` once for every instruction set compiled into the kernels and
// supported by this CPU (dynamic dispatch alone would only ever test the best one;
// the others differ, e.g. SSE4 has no FMA), then restores normal dispatch.
template <class Checks>
void for_each_simd_target(const Checks& checks) {
  struct Restore {
    ~Restore() { hwy::SetSupportedTargetsForTest(0); }
  } restore;
  for (const auto target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    INFO("SIMD target " << hwy::TargetName(target));
    checks();
  }
}

std::vector<double> random_values(std::size_t n, std::uint64_t seed, double low, double high) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// Values rounded to the dtype, stored as both that dtype and double.
struct Data {
  DType dtype;
  std::vector<double> wide;   // the same values as `raw`, as double
  std::vector<char> raw;      // dtype storage
  Data(DType dt, std::vector<double> values) : dtype(dt), wide(std::move(values)) {
    raw.resize(wide.size() * dtype_size(dt));
    for (std::size_t i = 0; i < wide.size(); ++i) {
      if (dt == DType::f32) {
        const float f = static_cast<float>(wide[i]);
        wide[i] = f;
        std::memcpy(raw.data() + 4 * i, &f, 4);
      } else {
        std::memcpy(raw.data() + 8 * i, &wide[i], 8);
      }
    }
  }
  explicit Data(DType dt, std::size_t n) : Data(dt, std::vector<double>(n, 0.0)) {}
  void* ptr() { return raw.data(); }
  const void* ptr() const { return raw.data(); }
  double at(std::size_t i) const {
    if (dtype == DType::f64) return reinterpret_cast<const double*>(raw.data())[i];
    return reinterpret_cast<const float*>(raw.data())[i];
  }
};

std::int64_t ulp_distance(float a, float b) {
  auto ordered = [](float f) {
    std::int32_t i;
    std::memcpy(&i, &f, 4);
    return i < 0 ? std::int64_t{INT32_MIN} - i : std::int64_t{i};
  };
  return std::llabs(ordered(a) - ordered(b));
}

bool within_contract(DType dt, double got, double want, double atol) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got);
  if (dt == DType::f32) want = static_cast<float>(want);  // may round to +-inf, as it should
  if (got == want) return true;
  if (std::isinf(want) || std::isinf(got)) return false;
  if (std::abs(got - want) <= atol) return true;
  if (dt == DType::f64) return std::abs(got - want) <= 1e-14 * std::abs(want) || std::abs(want) < 1e-300;
  if (std::abs(want) < 1e-30) return std::abs(got - want) < 1e-30;
  return ulp_distance(static_cast<float>(got), static_cast<float>(want)) <= 4 ||
         std::abs(got - want) <= 2e-6 * std::abs(want);
}

// Every element of `got` within the contract of the float64 reference `want`.
// `atol` is an extra absolute allowance, used where the reference itself is only
// accurate to that (log_softmax near 0 is -log(1 + tiny), and 1 + tiny rounds).
void require_contract(const Data& got, const std::vector<double>& want, const std::string& what,
                      const std::vector<double>* inputs = nullptr, double atol = 0) {
  REQUIRE(got.wide.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (within_contract(got.dtype, got.at(i), want[i], atol)) continue;
    std::ostringstream os;
    os.precision(17);
    os << what << " " << dtype_name(got.dtype) << " element " << i << ": got " << got.at(i)
       << ", reference " << want[i];
    if (inputs) os << " (input " << (*inputs)[i] << ")";
    FAIL(os.str());
  }
}

std::vector<double> unary_expected(Unary op, const Data& x, double param) {
  std::vector<double> want(x.wide.size());
  kernels::unary_reference(op, DType::f64, x.wide.data(), want.data(),
                           static_cast<std::int64_t>(want.size()), param);
  return want;
}

struct UnaryCase {
  Unary op;
  const char* name;
  double low, high, param;
};

const std::vector<UnaryCase> kUnaryCases = {
    {Unary::neg, "neg", -10, 10, 0},          {Unary::abs, "abs", -10, 10, 0},
    {Unary::exp, "exp", -90, 90, 0},          {Unary::log, "log", 1e-6, 1e6, 0},
    {Unary::sqrt, "sqrt", 0, 1e4, 0},         {Unary::square, "square", -100, 100, 0},
    {Unary::sin, "sin", -100, 100, 0},        {Unary::cos, "cos", -100, 100, 0},
    {Unary::tanh, "tanh", -12, 12, 0},        {Unary::sigmoid, "sigmoid", -40, 40, 0},
    {Unary::relu, "relu", -5, 5, 0},          {Unary::gelu, "gelu", -6, 6, 0},
    {Unary::softplus, "softplus", -40, 40, 0}, {Unary::silu, "silu", -40, 40, 0},
    {Unary::erf, "erf", -4, 4, 0},            {Unary::sign, "sign", -2, 2, 0},
    {Unary::step, "step", -2, 2, 0},          {Unary::reciprocal, "reciprocal", 0.01, 100, 0},
    {Unary::pow_scalar, "pow 2", -10, 10, 2},  {Unary::pow_scalar, "pow 0.5", 0, 100, 0.5},
    {Unary::pow_scalar, "pow -1", 0.1, 10, -1}, {Unary::pow_scalar, "pow 0", -10, 10, 0},
    {Unary::pow_scalar, "pow 1", -10, 10, 1},  {Unary::pow_scalar, "pow 1.7", 0, 10, 1.7},
    {Unary::add_scalar, "add_scalar", -10, 10, 2.5}, {Unary::mul_scalar, "mul_scalar", -10, 10, -1.5},
};

TEST_CASE("unary kernels match the float64 reference at every size", "[kernels][unary]") {
  for_each_simd_target([&] {
    for (DType dt : {DType::f32, DType::f64})
      for (const auto& c : kUnaryCases)
        for (std::int64_t n : kSizes) {
          const Data x(dt, random_values(static_cast<std::size_t>(n), 11, c.low, c.high));
          Data y(dt, static_cast<std::size_t>(n));
          kernels::unary(c.op, dt, x.ptr(), y.ptr(), n, c.param);
          require_contract(y, unary_expected(c.op, x, c.param), std::string(c.name) + " n=" + std::to_string(n), &x.wide);
        }
  });
}

TEST_CASE("unary kernels agree with the reference on special values", "[kernels][unary]") {
  for_each_simd_target([&] {
    const std::vector<double> specials = {0.0,   -0.0,   kInf,  -kInf, kNaN,   1e-40,  -1e-40, 0.5,
                                          88.7,  88.73,  89.0,  100.0, 1000.0, -88.0,  -88.8,  -100.0,
                                          -104.0, -1000.0, 20.0, -20.0, 1e30,  -1e30,  39000.0, 1e6,
                                          709.0, 709.78, 710.0, -745.0, 1e300, -1e300, 1e-310, 3.0};
    for (DType dt : {DType::f32, DType::f64})
      for (const auto& c : kUnaryCases) {
        const Data x(dt, specials);
        Data y(dt, specials.size());
        kernels::unary(c.op, dt, x.ptr(), y.ptr(), static_cast<std::int64_t>(specials.size()), c.param);
        require_contract(y, unary_expected(c.op, x, c.param), std::string(c.name) + " special", &x.wide);
      }
  });
}

TEST_CASE("float32 gelu keeps its relative accuracy in the far negative tail", "[kernels][unary]") {
  for_each_simd_target([&] {
    // There 1 + erf(x / sqrt 2) cancels, even in the float64 reference formula; the
    // kernel uses erfc, so compare with 0.5 x erfc(-x / sqrt 2) in long double.
    const Data x(DType::f32, random_values(5000, 13, -13, -5));
    Data y(DType::f32, 5000);
    kernels::unary(Unary::gelu, DType::f32, x.ptr(), y.ptr(), 5000);
    std::vector<double> want(5000);
    for (std::size_t i = 0; i < want.size(); ++i) {
      const long double v = x.wide[i];
      want[i] = static_cast<double>(0.5L * v * std::erfc(-v / std::sqrt(2.0L)));
    }
    require_contract(y, want, "gelu tail", &x.wide);
  });
}

// ---- binary and where ---------------------------------------------------------

struct BroadcastCase {
  Shape a, b;
};

const std::vector<BroadcastCase> kBroadcasts = {
    {{}, {}},           {{7}, {7}},         {{1000}, {1000}},       {{100003}, {100003}},
    {{3, 1}, {1, 4}},   {{2, 3, 17}, {17}}, {{2, 3, 4}, {3, 1}},    {{}, {5, 7}},
    {{5, 7}, {}},       {{5, 1, 33}, {1, 6, 1}}, {{1}, {100003}},   {{0, 3}, {1, 3}},
    {{64, 1000}, {1000}}, {{300, 400}, {300, 1}}, {{4, 1, 3, 1}, {1, 5, 1, 7}},
};

std::vector<double> binary_expected(Binary op, const Data& a, const Shape& as, const Data& b,
                                    const Shape& bs, const Shape& out) {
  std::vector<double> want(static_cast<std::size_t>(shape_numel(out)));
  kernels::binary_reference(op, DType::f64, a.wide.data(), as, b.wide.data(), bs, want.data(), out);
  return want;
}

// Values on a grid of 0.25 so that comparisons see exact ties.
std::vector<double> grid_values(std::size_t n, std::uint64_t seed) {
  auto v = random_values(n, seed, -3, 3);
  for (auto& x : v) x = std::round(x * 4) / 4;
  return v;
}

TEST_CASE("binary kernels match the reference for every broadcast pattern", "[kernels][binary]") {
  for_each_simd_target([&] {
    const std::vector<std::pair<Binary, const char*>> ops = {
        {Binary::add, "add"}, {Binary::sub, "sub"}, {Binary::mul, "mul"}, {Binary::div, "div"},
        {Binary::pow, "pow"}, {Binary::maximum, "maximum"}, {Binary::minimum, "minimum"},
        {Binary::eq, "eq"},   {Binary::ne, "ne"},   {Binary::lt, "lt"},   {Binary::le, "le"},
        {Binary::gt, "gt"},   {Binary::ge, "ge"}};
    for (DType dt : {DType::f32, DType::f64})
      for (const auto& [op, name] : ops)
        for (const auto& bc : kBroadcasts) {
          const Shape out = broadcast_shapes(bc.a, bc.b, "test");
          auto av = grid_values(static_cast<std::size_t>(shape_numel(bc.a)), 21);
          auto bv = grid_values(static_cast<std::size_t>(shape_numel(bc.b)), 22);
          if (op == Binary::pow)
            for (auto& x : av) x = std::abs(x) + 0.1;  // real powers of a negative base are NaN
          if (op == Binary::div)
            for (auto& x : bv) x = x == 0 ? 0.5 : x;
          const Data a(dt, av), b(dt, bv);
          Data y(dt, static_cast<std::size_t>(shape_numel(out)));
          const Shape as = broadcast_strides(bc.a, out), bs = broadcast_strides(bc.b, out);
          kernels::binary(op, dt, a.ptr(), as, b.ptr(), bs, y.ptr(), out);
          require_contract(y, binary_expected(op, a, as, b, bs, out), std::string(name) + " " + shape_str(bc.a) + " " + shape_str(bc.b));
        }
  });
}

TEST_CASE("binary_same_shape matches the reference at every size", "[kernels][binary]") {
  for (DType dt : {DType::f32, DType::f64})
    for (int op = 0; op <= static_cast<int>(Binary::ge); ++op)
      for (std::int64_t n : kSizes) {
        auto av = grid_values(static_cast<std::size_t>(n), 23), bv = grid_values(static_cast<std::size_t>(n), 24);
        if (static_cast<Binary>(op) == Binary::pow)
          for (auto& x : av) x = std::abs(x) + 0.1;
        const Data a(dt, av), b(dt, bv);
        Data y(dt, static_cast<std::size_t>(n));
        kernels::binary_same_shape(static_cast<Binary>(op), dt, a.ptr(), b.ptr(), y.ptr(), n);
        const Shape shape = {n}, strides = {1};
        require_contract(y, binary_expected(static_cast<Binary>(op), a, strides, b, strides, shape),
                         "same_shape op " + std::to_string(op) + " n=" + std::to_string(n));
      }
}

TEST_CASE("binary kernels follow C++ NaN and infinity rules", "[kernels][binary]") {
  for_each_simd_target([&] {
    // Every pair of specials, as a [k, 1] x [1, k] outer product and as flat vectors.
    const std::vector<double> s = {kNaN, kInf, -kInf, 0.0, -0.0, 1.0, -2.5, 1e-40};
    const auto k = static_cast<std::int64_t>(s.size());
    for (DType dt : {DType::f32, DType::f64})
      for (Binary op : {Binary::add, Binary::sub, Binary::mul, Binary::div, Binary::pow, Binary::maximum,
                        Binary::minimum, Binary::eq, Binary::ne, Binary::lt, Binary::le, Binary::gt, Binary::ge}) {
        const Data a(dt, s), b(dt, s);
        const Shape out = {k, k};
        const Shape as = {1, 0}, bs = {0, 1};
        Data y(dt, static_cast<std::size_t>(k * k));
        kernels::binary(op, dt, a.ptr(), as, b.ptr(), bs, y.ptr(), out);
        require_contract(y, binary_expected(op, a, as, b, bs, out), "specials op " + std::to_string(static_cast<int>(op)));
      }
  });
}

TEST_CASE("binary kernels read transposed and strided operands", "[kernels][binary]") {
  for_each_simd_target([&] {
    for (DType dt : {DType::f32, DType::f64}) {
      const Data a(dt, random_values(6 * 35, 31, -2, 2)), b(dt, random_values(35, 32, -2, 2));
      const Shape out = {5, 7};
      const Shape a_transposed = {1, 5};  // a is stored [7, 5]: a stride of 5 along the last axis
      const Shape a_every_sixth = {42, 6};  // every 6th element of rows of 42
      for (const Shape& as : {a_transposed, a_every_sixth}) {
        Data y(dt, 35);
        kernels::binary(Binary::sub, dt, a.ptr(), as, b.ptr(), Shape{7, 1}, y.ptr(), out);
        require_contract(y, binary_expected(Binary::sub, a, as, b, Shape{7, 1}, out), "strided sub");
      }
    }
  });
}

TEST_CASE("where picks by a nonzero condition with broadcasting", "[kernels][where]") {
  for_each_simd_target([&] {
    const std::vector<std::array<Shape, 3>> patterns = {
        {Shape{1000}, Shape{1000}, Shape{1000}}, {Shape{17}, Shape{}, Shape{17}},
        {Shape{3, 1}, Shape{1, 33}, Shape{}},    {Shape{100003}, Shape{100003}, Shape{1}},
        {Shape{2, 1, 7}, Shape{5, 1}, Shape{2, 5, 7}}, {Shape{0}, Shape{1}, Shape{1}}};
    for (DType dt : {DType::f32, DType::f64})
      for (const auto& [cs, as, bs] : patterns) {
        const Shape out = broadcast_shapes(broadcast_shapes(cs, as, "test"), bs, "test");
        auto cv = grid_values(static_cast<std::size_t>(shape_numel(cs)), 41);
        if (!cv.empty()) cv[0] = kNaN;  // NaN != 0: picks a
        const Data c(dt, cv), a(dt, random_values(static_cast<std::size_t>(shape_numel(as)), 42, -1, 1)),
            b(dt, random_values(static_cast<std::size_t>(shape_numel(bs)), 43, -1, 1));
        const Shape cst = broadcast_strides(cs, out), ast = broadcast_strides(as, out), bst = broadcast_strides(bs, out);
        Data y(dt, static_cast<std::size_t>(shape_numel(out)));
        kernels::where(dt, c.ptr(), cst, a.ptr(), ast, b.ptr(), bst, y.ptr(), out);
        std::vector<double> want(y.wide.size());
        kernels::where_reference(DType::f64, c.wide.data(), cst, a.wide.data(), ast, b.wide.data(), bst, want.data(), out);
        require_contract(y, want, "where " + shape_str(cs) + shape_str(as) + shape_str(bs));
      }
  });
}

TEST_CASE("outputs too large to cache take the streaming-store path correctly", "[kernels][stream]") {
  // Over 16 MiB of output, written at an address that is not vector-aligned.
  const std::int64_t n = (std::int64_t{1} << 22) + 5;
  const Data a(DType::f32, random_values(static_cast<std::size_t>(n), 91, -3, 3));
  const Data b(DType::f32, random_values(static_cast<std::size_t>(n), 92, -3, 3));
  const auto count = static_cast<std::size_t>(n);
  Data y(DType::f32, count + 1);
  float* out = reinterpret_cast<float*>(y.ptr()) + 1;
  const auto output = [&] {
    std::vector<double> v(count);
    for (std::size_t i = 0; i < count; ++i) v[i] = out[i];
    return Data(DType::f64, v);
  };
  kernels::unary(Unary::exp, DType::f32, a.ptr(), out, n);
  require_contract(Data(DType::f32, output().wide), unary_expected(Unary::exp, a, 0), "streamed exp");
  const Shape shape = {n}, strides = {1};
  kernels::binary(Binary::mul, DType::f32, a.ptr(), strides, b.ptr(), strides, out, shape);
  require_contract(Data(DType::f32, output().wide), binary_expected(Binary::mul, a, strides, b, strides, shape), "streamed mul");
  kernels::where(DType::f32, a.ptr(), strides, a.ptr(), strides, b.ptr(), strides, out, shape);
  REQUIRE(output().wide == a.wide);  // a has no zeros, so where picks a everywhere
}

// ---- reductions ------------------------------------------------------------------

struct Slab {
  std::int64_t outer, n, inner;
};

const std::vector<Slab> kSlabs = {
    {1, 0, 1},  {1, 1, 1},   {1, 3, 1},    {1, 7, 1},       {1, 17, 1},  {1, 33, 1},   {1, 1000, 1},
    {1, 100003, 1}, {3, 17, 1}, {4, 33, 5}, {2, 1000, 7}, {5, 0, 3},  {2, 3, 1003}, {3, 257, 9},
    {1, 5000, 100}, {1000, 7, 1},  {2, 5, 8200}};  // the last spans two column chunks

TEST_CASE("sum is the double sum rounded once for float32 and tight for float64", "[kernels][reduce]") {
  for_each_simd_target([&] {
    for (DType dt : {DType::f32, DType::f64})
      for (const auto& s : kSlabs) {
        const Data x(dt, random_values(static_cast<std::size_t>(s.outer * s.n * s.inner), 51, -1, 1));
        Data y(dt, static_cast<std::size_t>(s.outer * s.inner));
        kernels::reduce(Reduce::sum, dt, x.ptr(), y.ptr(), s.outer, s.n, s.inner);
        std::vector<double> want(y.wide.size()), magnitude(y.wide.size());
        std::vector<double> abs_x(x.wide.size());
        for (std::size_t i = 0; i < abs_x.size(); ++i) abs_x[i] = std::abs(x.wide[i]);
        kernels::reduce_reference(Reduce::sum, DType::f64, x.wide.data(), want.data(), s.outer, s.n, s.inner);
        kernels::reduce_reference(Reduce::sum, DType::f64, abs_x.data(), magnitude.data(), s.outer, s.n, s.inner);
        for (std::size_t i = 0; i < want.size(); ++i) {
          INFO(dtype_name(dt) << " slab " << s.outer << "x" << s.n << "x" << s.inner << " output " << i
                              << ": got " << y.at(i) << " want " << want[i]);
          if (dt == DType::f32) REQUIRE(ulp_distance(static_cast<float>(y.at(i)), static_cast<float>(want[i])) <= 1);
          else REQUIRE(std::abs(y.at(i) - want[i]) <= 1e-15 * magnitude[i]);
        }
      }
  });
}

TEST_CASE("max and min are exact and propagate NaN", "[kernels][reduce]") {
  for_each_simd_target([&] {
    for (DType dt : {DType::f32, DType::f64})
      for (Reduce op : {Reduce::max, Reduce::min})
        for (const auto& s : kSlabs)
          for (bool with_nan : {false, true}) {
            auto values = random_values(static_cast<std::size_t>(s.outer * s.n * s.inner), 61, -5, 5);
            if (with_nan && values.size() > 2) values[values.size() / 2] = kNaN;
            if (values.size() > 3) values[1] = op == Reduce::max ? kInf : -kInf;
            const Data x(dt, values);
            Data y(dt, static_cast<std::size_t>(s.outer * s.inner));
            kernels::reduce(op, dt, x.ptr(), y.ptr(), s.outer, s.n, s.inner);
            std::vector<double> want(y.wide.size());
            kernels::reduce_reference(op, DType::f64, x.wide.data(), want.data(), s.outer, s.n, s.inner);
            for (std::size_t i = 0; i < want.size(); ++i) {
              INFO(dtype_name(dt) << " slab " << s.outer << "x" << s.n << "x" << s.inner << " output " << i);
              if (std::isnan(want[i])) REQUIRE(std::isnan(y.at(i)));
              else REQUIRE(y.at(i) == want[i]);
            }
          }
  });
}

// ---- softmax family ----------------------------------------------------------------

// An accurate softmax in long double, for float64 results: the float64 reference
// sums 100003 terms naively and is itself only good to ~1e-14 there.
std::vector<double> softmax_oracle(const std::vector<double>& x, Slab s, int what) {
  std::vector<double> out(static_cast<std::size_t>(what == 2 ? s.outer * s.inner : s.outer * s.n * s.inner));
  for (std::int64_t o = 0; o < s.outer; ++o)
    for (std::int64_t i = 0; i < s.inner; ++i) {
      auto at = [&](std::int64_t k) { return static_cast<std::size_t>((o * s.n + k) * s.inner + i); };
      long double m = -INFINITY, sum = 0;
      for (std::int64_t k = 0; k < s.n; ++k) m = std::max<long double>(m, x[at(k)]);
      for (std::int64_t k = 0; k < s.n; ++k) sum += std::exp(x[at(k)] - m);
      if (what == 2) out[static_cast<std::size_t>(o * s.inner + i)] = static_cast<double>(m + std::log(sum));
      for (std::int64_t k = 0; k < s.n && what != 2; ++k)
        out[at(k)] = static_cast<double>(what == 1 ? x[at(k)] - m - std::log(sum) : std::exp(x[at(k)] - m) / sum);
    }
  return out;
}

TEST_CASE("softmax, log_softmax and logsumexp match the reference", "[kernels][softmax]") {
  for_each_simd_target([&] {
    for (DType dt : {DType::f32, DType::f64})
      for (const auto& s : kSlabs)
        for (double range : {10.0, 60.0}) {  // 60: |x - m| up to 120 rounds in float32
          const Data x(dt, random_values(static_cast<std::size_t>(s.outer * s.n * s.inner), 71, -range, range));
          const std::string where = std::string(" slab ") + std::to_string(s.outer) + "x" + std::to_string(s.n) + "x" + std::to_string(s.inner);
          auto expected = [&](int what) {
            if (dt == DType::f64) return softmax_oracle(x.wide, s, what);
            std::vector<double> want(static_cast<std::size_t>(what == 2 ? s.outer * s.inner : s.outer * s.n * s.inner));
            if (what == 2) kernels::logsumexp_reference(DType::f64, x.wide.data(), want.data(), s.outer, s.n, s.inner);
            else kernels::softmax_reference(DType::f64, x.wide.data(), want.data(), s.outer, s.n, s.inner, what == 1);
            return want;
          };
          for (bool log : {false, true}) {
            Data y(dt, x.wide.size());
            kernels::softmax(dt, x.ptr(), y.ptr(), s.outer, s.n, s.inner, log);
            require_contract(y, expected(log ? 1 : 0), (log ? "log_softmax" : "softmax") + where, nullptr, log ? 1e-15 : 0);
          }
          Data lse(dt, static_cast<std::size_t>(s.outer * s.inner));
          kernels::logsumexp(dt, x.ptr(), lse.ptr(), s.outer, s.n, s.inner);
          // m + log(s) cancels when the result is near 0, so allow log(s)'s absolute
          // error: float32 e^(x - m) terms carry ~1 ulp each.
          require_contract(lse, expected(2), "logsumexp" + where, nullptr, dt == DType::f32 ? 2.5e-7 : 1e-15 * range);
        }
  });
}

TEST_CASE("softmax handles infinite and NaN entries like the reference", "[kernels][softmax]") {
  for_each_simd_target([&] {
    const std::vector<std::vector<double>> rows = {
        {1, -kInf, 2, -kInf, 0},     {-kInf, -kInf, -kInf, -kInf, -kInf}, {1, kInf, 2, 3, 4},
        {1, kNaN, 2, 3, 4},          {kNaN, kInf, 0, 0, 0},               {-1000, 0, 1000, 3, -3}};
    for (DType dt : {DType::f32, DType::f64})
      for (const auto& row : rows)
        for (std::int64_t inner : {1, 3}) {  // as a row, and as 3 identical columns
          std::vector<double> values;
          for (double v : row) values.insert(values.end(), static_cast<std::size_t>(inner), v);
          const Data x(dt, values);
          const std::int64_t n = 5;
          for (bool log : {false, true}) {
            Data y(dt, values.size());
            kernels::softmax(dt, x.ptr(), y.ptr(), 1, n, inner, log);
            std::vector<double> want(values.size());
            kernels::softmax_reference(DType::f64, x.wide.data(), want.data(), 1, n, inner, log);
            require_contract(y, want, log ? "log_softmax specials" : "softmax specials", nullptr, log ? 1e-15 : 0);
          }
          Data lse(dt, static_cast<std::size_t>(inner));
          kernels::logsumexp(dt, x.ptr(), lse.ptr(), 1, n, inner);
          std::vector<double> want(static_cast<std::size_t>(inner));
          kernels::logsumexp_reference(DType::f64, x.wide.data(), want.data(), 1, n, inner);
          require_contract(lse, want, "logsumexp specials");
        }
  });
}

// ---- copy_strided --------------------------------------------------------------------

TEST_CASE("copy_strided gathers permuted, sliced and broadcast views exactly", "[kernels][copy]") {
  struct View {
    const char* name;
    std::int64_t offset;
    Shape strides, shape;
  };
  // The source is a contiguous [6, 7, 8] buffer (336 elements).
  const std::vector<View> views = {
      {"identity", 0, {56, 8, 1}, {6, 7, 8}},      {"transpose last two", 0, {56, 1, 8}, {6, 8, 7}},
      {"reverse axes", 0, {1, 8, 56}, {8, 7, 6}},  {"slice rows", 8, {56, 8, 1}, {6, 3, 8}},
      {"slice columns", 2, {56, 8, 1}, {6, 7, 5}}, {"every other", 1, {112, 16, 2}, {3, 4, 4}},
      {"broadcast inner", 5, {8, 0}, {7, 33}},     {"broadcast outer", 0, {0, 1}, {17, 336}},
      {"scalar", 100, {}, {}},                     {"empty", 0, {8, 1}, {0, 8}},
      {"single column", 3, {8}, {42}}};
  for (DType dt : {DType::f32, DType::f64}) {
    const Data src(dt, random_values(336, 81, -1, 1));
    for (const auto& v : views) {
      Data y(dt, static_cast<std::size_t>(shape_numel(v.shape)));
      Data want(dt, static_cast<std::size_t>(shape_numel(v.shape)));
      kernels::copy_strided(dt, src.ptr(), v.offset, v.strides, y.ptr(), v.shape);
      kernels::copy_strided_reference(dt, src.ptr(), v.offset, v.strides, want.ptr(), v.shape);
      INFO(v.name << " " << dtype_name(dt));
      REQUIRE(y.raw == want.raw);
    }
  }
  SECTION("a large copy with a contiguous inner dimension") {
    const Data src(DType::f32, random_values(512 * 1024, 82, -1, 1));
    const Shape shape = {1024, 511}, strides = {512, 1};
    Data y(DType::f32, 1024 * 511), want(DType::f32, 1024 * 511);
    kernels::copy_strided(DType::f32, src.ptr(), 1, strides, y.ptr(), shape);
    kernels::copy_strided_reference(DType::f32, src.ptr(), 1, strides, want.ptr(), shape);
    REQUIRE(y.raw == want.raw);
  }
}

}  // namespace
