// The optimizer kernels (engine/kernels/optim_update.hpp) against their scalar
// references, on every SIMD target this CPU runs.
//
// Tolerances:
//  - sgd_update, adam_update, scale_inplace: bit-for-bit equal. The SIMD loops do the
//    reference's IEEE operations (+, -, *, /, sqrt, each correctly rounded) in the same
//    order with contraction into FMA disabled in both files, so there is nothing to
//    tolerate; any difference is a bug (a wrong operand, order or tail).
//  - sum_of_squares: the two sum the same exactly-squared (float) or once-rounded
//    (double) terms in different orders. For n non-negative terms any order is within
//    (n - 1) u of the exact sum (u = 2^-53), so the two are within (n - 1) 2^-52 of
//    each other, relatively. Where the exact sum is representable (small integers),
//    both must give it exactly.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "engine/kernels/optim_update.hpp"
#include "engine/kernels/threads.hpp"
#include "hwy/targets.h"

namespace {

using namespace symgrad;

// Odd lengths: empty, shorter than any vector, a vector plus a tail, and large enough
// to be split over threads (chunks that end mid-vector). 4099 runs every case through
// many full vectors cheaply; the large size runs the richest cases only,
// which keeps the program fast under sanitizers.
const std::vector<std::int64_t> kSizes = {0, 1, 7, 4099, 1000003};
constexpr std::int64_t kLarge = 1000003;

// Runs `checks` once per instruction set compiled in and supported here (dynamic
// dispatch alone would only test the best), then restores normal dispatch.
template <class Checks>
void on_every_simd_target(const Checks& checks) {
  struct Restore {
    ~Restore() { hwy::SetSupportedTargetsForTest(0); }
  } restore;
  for (const auto target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    INFO("SIMD target " << hwy::TargetName(target));
    checks();
  }
}

// A buffer of n values of dtype dt, stored as raw bytes.
struct Buffer {
  DType dtype;
  std::vector<unsigned char> bytes;
  Buffer(DType dt, const std::vector<double>& values) : dtype(dt), bytes(values.size() * dtype_size(dt)) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (dt == DType::f32) {
        const float f = static_cast<float>(values[i]);
        std::memcpy(bytes.data() + 4 * i, &f, 4);
      } else {
        std::memcpy(bytes.data() + 8 * i, &values[i], 8);
      }
    }
  }
  void* data() { return bytes.data(); }
  std::int64_t size() const { return static_cast<std::int64_t>(bytes.size() / dtype_size(dtype)); }
  double at(std::size_t i) const {
    if (dtype == DType::f32) {
      float f;
      std::memcpy(&f, bytes.data() + 4 * i, 4);
      return f;
    }
    double d;
    std::memcpy(&d, bytes.data() + 8 * i, 8);
    return d;
  }
};

std::vector<double> uniform_values(std::size_t n, std::uint64_t seed, double low, double high) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

// The state an update reads and writes: parameter, gradient and up to two buffers.
// Each run works on copies.
struct UpdateInputs {
  Buffer param, grad, first, second;
  UpdateInputs(DType dt, std::int64_t n, std::uint64_t seed)
      : param(dt, uniform_values(static_cast<std::size_t>(n), seed, -2, 2)),
        grad(dt, uniform_values(static_cast<std::size_t>(n), seed + 1, -1, 1)),
        first(dt, uniform_values(static_cast<std::size_t>(n), seed + 2, -0.5, 0.5)),
        second(dt, uniform_values(static_cast<std::size_t>(n), seed + 3, 0, 0.3)) {}  // exp_avg_sq >= 0
};

// Reports the first element where two buffers differ in any bit.
void require_same_bits(const Buffer& got, const Buffer& want, const char* what) {
  REQUIRE(got.bytes.size() == want.bytes.size());
  if (got.bytes == want.bytes) return;
  const std::size_t width = dtype_size(got.dtype);
  for (std::size_t i = 0; i < got.bytes.size() / width; ++i)
    if (std::memcmp(got.bytes.data() + i * width, want.bytes.data() + i * width, width) != 0) {
      std::ostringstream os;
      os.precision(17);
      os << what << " element " << i << ": SIMD " << got.at(i) << ", reference " << want.at(i);
      FAIL(os.str());
    }
}

const std::vector<kernels::SgdStep> kSgdCases = {
    {0.1, 0.0, 0.0, 0.0, false, false},     // plain
    {0.1, 0.0, 0.0, 0.01, false, false},    // weight decay
    {0.05, 0.9, 0.0, 0.0, false, true},     // momentum, first step (buffer <- gradient)
    {0.05, 0.9, 0.0, 0.0, false, false},    // momentum
    {0.05, 0.9, 0.3, 0.001, false, false},  // momentum with dampening and decay
    {0.05, 0.9, 0.0, 0.0, true, true},      // Nesterov, first step
    {0.05, 0.9, 0.0, 0.02, true, false},    // Nesterov with decay
};

std::vector<kernels::AdamStep> adam_cases() {
  std::vector<kernels::AdamStep> cases;
  for (int variant = 0; variant < 3; ++variant) {
    kernels::AdamStep s;
    s.lr = 0.01;
    s.beta1 = 0.8;
    s.beta2 = 0.95;
    s.eps = 1e-6;
    s.weight_decay = variant == 0 ? 0.0 : 0.05;
    s.decoupled_weight_decay = variant == 2;
    const int step = 3;
    s.bias_correction1 = 1 - std::pow(s.beta1, step);
    s.bias_correction2_sqrt = std::sqrt(1 - std::pow(s.beta2, step));
    cases.push_back(s);
  }
  return cases;
}

}  // namespace

TEST_CASE("sgd_update equals its reference bit for bit", "[optim_kernels]") {
  for (const std::int64_t n : kSizes)
    for (const DType dt : {DType::f32, DType::f64}) {
      UpdateInputs in(dt, n, 10);
      for (std::size_t c = 0; c < kSgdCases.size(); ++c) {
        if (n == kLarge && c != 4 && c != 6) continue;  // dampening + decay; Nesterov + decay
        const kernels::SgdStep& s = kSgdCases[c];
        INFO("n = " << n << ", " << dtype_name(dt) << ", case " << c);
        Buffer want_param = in.param, want_buffer = in.first;
        kernels::sgd_update_reference(dt, want_param.data(), in.grad.data(), want_buffer.data(), n, s);
        on_every_simd_target([&] {
          Buffer param = in.param, buffer = in.first;
          kernels::sgd_update(dt, param.data(), in.grad.data(), buffer.data(), n, s);
          require_same_bits(param, want_param, "param");
          require_same_bits(buffer, want_buffer, "momentum buffer");
        });
      }
  }
}

TEST_CASE("sgd_update follows PyTorch's formula on a hand-computed element", "[optim_kernels]") {
  // p = 1, g = 0.5, buf = 0.2; lr 0.1, momentum 0.9, dampening 0.5, wd 0.1, Nesterov:
  // d = 0.5 + 0.1 * 1 = 0.6; buf = 0.2 * 0.9 + 0.5 * 0.6 = 0.48; d = 0.6 + 0.9 * 0.48 = 1.032;
  // p = 1 - 0.1 * 1.032 = 0.8968.
  double p = 1.0, g = 0.5, buf = 0.2;
  kernels::sgd_update(DType::f64, &p, &g, &buf, 1, {0.1, 0.9, 0.5, 0.1, true, false});
  CHECK(buf == Approx(0.48).epsilon(1e-15));
  CHECK(p == Approx(0.8968).epsilon(1e-15));
  // First step: the buffer takes the decayed gradient, undampened.
  double p2 = 1.0, g2 = 0.5, buf2 = 123.0;
  kernels::sgd_update(DType::f64, &p2, &g2, &buf2, 1, {0.1, 0.9, 0.5, 0.1, false, true});
  CHECK(buf2 == Approx(0.6).epsilon(1e-15));
  CHECK(p2 == Approx(0.94).epsilon(1e-15));
  // Momentum without a buffer is refused, not dereferenced.
  CHECK_THROWS_AS(kernels::sgd_update(DType::f64, &p, &g, nullptr, 1, {0.1, 0.9, 0, 0, false, false}),
                  std::invalid_argument);
}

TEST_CASE("adam_update equals its reference bit for bit (Adam, Adam + L2, AdamW)", "[optim_kernels]") {
  const std::vector<kernels::AdamStep> cases = adam_cases();
  for (const std::int64_t n : kSizes)
    for (const DType dt : {DType::f32, DType::f64}) {
      UpdateInputs in(dt, n, 20);
      for (std::size_t c = 0; c < cases.size(); ++c) {
        if (n == kLarge && c == 0) continue;  // Adam + L2 decay and AdamW cover its lines
        const kernels::AdamStep& s = cases[c];
        INFO("n = " << n << ", " << dtype_name(dt) << ", case " << c);
        Buffer want_param = in.param, want_m = in.first, want_v = in.second;
        kernels::adam_update_reference(dt, want_param.data(), in.grad.data(), want_m.data(),
                                       want_v.data(), n, s);
        on_every_simd_target([&] {
          Buffer param = in.param, m = in.first, v = in.second;
          kernels::adam_update(dt, param.data(), in.grad.data(), m.data(), v.data(), n, s);
          require_same_bits(param, want_param, "param");
          require_same_bits(m, want_m, "exp_avg");
          require_same_bits(v, want_v, "exp_avg_sq");
        });
      }
  }
}

TEST_CASE("adam_update follows PyTorch's formula on a hand-computed element", "[optim_kernels]") {
  // First step from zero moments: m = 0.1 g, v = 0.001 g^2, bias corrections 0.1 and
  // sqrt(0.001), so the step is lr * g / (|g| + eps) = lr * sign(g), up to eps.
  kernels::AdamStep s;
  s.lr = 0.01;
  s.bias_correction1 = 1 - 0.9;
  s.bias_correction2_sqrt = std::sqrt(1 - 0.999);
  double p = 2.0, g = -4.0, m = 0.0, v = 0.0;
  kernels::adam_update(DType::f64, &p, &g, &m, &v, 1, s);
  CHECK(m == Approx(-0.4).epsilon(1e-14));
  CHECK(v == Approx(0.016).epsilon(1e-14));
  CHECK(p == Approx(2.0 + 0.01 * 4.0 / (4.0 + 1e-8)).epsilon(1e-14));
  // AdamW shrinks the parameter by 1 - lr * wd before the step.
  s.weight_decay = 0.5;
  s.decoupled_weight_decay = true;
  p = 2.0, m = 0.0, v = 0.0;
  kernels::adam_update(DType::f64, &p, &g, &m, &v, 1, s);
  CHECK(p == Approx(2.0 * (1 - 0.005) + 0.01 * 4.0 / (4.0 + 1e-8)).epsilon(1e-14));
}

TEST_CASE("sum_of_squares agrees with its reference within the summation-order bound", "[optim_kernels]") {
  for (const std::int64_t n : kSizes)
    for (const DType dt : {DType::f32, DType::f64}) {
      INFO("n = " << n << ", " << dtype_name(dt));
      Buffer x(dt, uniform_values(static_cast<std::size_t>(n), 30, -3, 3));
      const double want = kernels::sum_of_squares_reference(dt, x.data(), n);
      const double bound = static_cast<double>(std::max<std::int64_t>(n - 1, 0)) * std::ldexp(1.0, -52);
      on_every_simd_target([&] {
        const double got = kernels::sum_of_squares(dt, x.data(), n);
        CHECK(std::abs(got - want) <= bound * want);
      });
    }
}

TEST_CASE("sum_of_squares is exact where the sum is representable", "[optim_kernels]") {
  // x[i] = (i mod 7) - 3: squares 9, 4, 1, 0, 1, 4, 9 (28 per period), all sums exact.
  for (const std::int64_t n : kSizes)
    for (const DType dt : {DType::f32, DType::f64}) {
      std::vector<double> values(static_cast<std::size_t>(n));
      double exact = 0;
      for (std::size_t i = 0; i < values.size(); ++i) {
        values[i] = static_cast<double>(i % 7) - 3;
        exact += values[i] * values[i];
      }
      Buffer x(dt, values);
      INFO("n = " << n << ", " << dtype_name(dt));
      CHECK(kernels::sum_of_squares_reference(dt, x.data(), n) == exact);
      on_every_simd_target([&] { CHECK(kernels::sum_of_squares(dt, x.data(), n) == exact); });
    }
  // A float32 square is formed in double: 3e20^2 overflows float but not double.
  const float big[2] = {3e20f, -4e20f};
  CHECK(kernels::sum_of_squares(DType::f32, big, 2) == Approx(25e40).epsilon(1e-7));
}

TEST_CASE("scale_inplace equals its reference bit for bit", "[optim_kernels]") {
  for (const std::int64_t n : kSizes)
    for (const DType dt : {DType::f32, DType::f64}) {
      INFO("n = " << n << ", " << dtype_name(dt));
      const std::vector<double> values = uniform_values(static_cast<std::size_t>(n), 40, -5, 5);
      Buffer want(dt, values);
      kernels::scale_inplace_reference(dt, want.data(), n, 0.3337);
      on_every_simd_target([&] {
        Buffer got(dt, values);
        kernels::scale_inplace(dt, got.data(), n, 0.3337);
        require_same_bits(got, want, "scaled");
      });
    }
}

TEST_CASE("optimizer kernels give the same bits with 1 and 3 threads", "[optim_kernels][threads]") {
  const int previous = get_num_threads();
  const std::int64_t n = kLarge;
  const kernels::AdamStep adam = adam_cases()[1];
  for (const DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    const UpdateInputs in(dt, n, 50);
    std::vector<Buffer> results;
    std::vector<double> norms;
    for (const int threads : {1, 3}) {  // 3: uneven chunks that end mid-vector
      set_num_threads(threads);
      Buffer p_sgd = in.param, buf = in.first, p_adam = in.param, m = in.first, v = in.second,
             grad = in.grad;
      kernels::sgd_update(dt, p_sgd.data(), grad.data(), buf.data(), n, kSgdCases[4]);
      kernels::adam_update(dt, p_adam.data(), grad.data(), m.data(), v.data(), n, adam);
      kernels::scale_inplace(dt, grad.data(), n, 0.7);
      norms.push_back(kernels::sum_of_squares(dt, p_sgd.data(), n));
      results.insert(results.end(), {p_sgd, buf, p_adam, m, v, grad});
    }
    set_num_threads(previous);
    CHECK(norms[0] == norms[1]);
    for (std::size_t k = 0; k < 6; ++k) require_same_bits(results[6 + k], results[k], "3 threads vs 1");
  }
}
