// engine_bench: throughput and latency of symgrad's core kernels, printed as one JSON
// document on stdout (progress goes to stderr). bench/torch_bench.py runs the same
// workloads in PyTorch and bench/compare.py puts the two side by side.
//
//   engine_bench [--threads N] [--repeat R] [--statistic median|min] [--filter SUBSTR]
//
// Every workload runs once untimed (warm-up: page faults, BLAS thread start-up,
// caches), then R times under std::chrono::steady_clock; the reported number comes
// from the median (default) or the minimum of those R times. bench/README.md says
// what each number means.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/kernels/elementwise.hpp"
#include "bench_common.hpp"

namespace {

using namespace symgrad;
using bench::keep;
using bench::Options;
using bench::parse_options;
using bench::Timer;

constexpr std::int64_t kStreamElements = std::int64_t{1} << 24;  // 16M floats = 64 MB
constexpr std::int64_t kMatmulSize = 1024;
constexpr int kTinyOpCallsPerRepeat = 200'000;  // 1e6 calls at the default 5 repeats

double gigabytes_per_second(double bytes, double seconds) { return bytes / seconds / 1e9; }
double gigaflops(double flops, double seconds) { return flops / seconds / 1e9; }

// ---- streaming kernels (GB/s; bytes read + written by one call) -------------------

double bench_copy(const Timer& timer) {
  // Both buffers are written once first so no page fault lands inside the timing.
  std::vector<float> src(kStreamElements, 1.0f), dst(kStreamElements, 0.0f);
  // Split over the same pool the kernels use, so the ceiling matches their thread count.
  const double t = timer.seconds([&] {
    kernels::parallel_for(kStreamElements, std::int64_t{1} << 16, [&](std::int64_t begin, std::int64_t end) {
      const auto bytes = static_cast<std::size_t>(end - begin) * sizeof(float);
      std::memcpy(dst.data() + begin, src.data() + begin, bytes);
    });
    keep(dst.data());
  });
  return gigabytes_per_second(2.0 * kStreamElements * sizeof(float), t);
}

double bench_unary(const Timer& timer, Tensor (*op)(const Tensor&)) {
  Generator gen(1);
  const Tensor x = uniform({kStreamElements}, -2.0, 2.0, gen);
  const double t = timer.seconds([&] { keep(op(x)); });
  return gigabytes_per_second(2.0 * kStreamElements * sizeof(float), t);
}

double bench_add(const Timer& timer) {
  Generator gen(2);
  const Tensor a = uniform({kStreamElements}, -1.0, 1.0, gen);
  const Tensor b = uniform({kStreamElements}, -1.0, 1.0, gen);
  const double t = timer.seconds([&] { keep(add(a, b)); });
  return gigabytes_per_second(3.0 * kStreamElements * sizeof(float), t);
}

// The same kernels writing into an output allocated (and touched) once, outside the
// timing: without the page faults of a fresh 64 MB output on every call, these are the
// numbers to hold against copy_f32_16M.
double bench_unary_kernel(const Timer& timer, kernels::Unary op) {
  Generator gen(1);
  const Tensor x = uniform({kStreamElements}, -2.0, 2.0, gen);
  Tensor y = zeros({kStreamElements});
  const double t = timer.seconds([&] {
    kernels::unary(op, DType::f32, x.raw_data(), y.raw_data(), kStreamElements);
    keep(y);
  });
  return gigabytes_per_second(2.0 * kStreamElements * sizeof(float), t);
}

double bench_add_kernel(const Timer& timer) {
  Generator gen(2);
  const Tensor a = uniform({kStreamElements}, -1.0, 1.0, gen);
  const Tensor b = uniform({kStreamElements}, -1.0, 1.0, gen);
  Tensor out = zeros({kStreamElements});
  const double t = timer.seconds([&] {
    kernels::binary(kernels::Binary::add, DType::f32, a.raw_data(), {1}, b.raw_data(), {1}, out.raw_data(),
                    {kStreamElements});
    keep(out);
  });
  return gigabytes_per_second(3.0 * kStreamElements * sizeof(float), t);
}

double bench_sum(const Timer& timer) {
  Generator gen(3);
  const Tensor x = uniform({kStreamElements}, -1.0, 1.0, gen);
  const double t = timer.seconds([&] { keep(sum(x)); });
  return gigabytes_per_second(1.0 * kStreamElements * sizeof(float), t);
}

// ---- matmul (GFLOP/s = 2 n^3 / t) ----------------------------------------------------

double matmul_flops() { return 2.0 * kMatmulSize * kMatmulSize * kMatmulSize; }

// symgrad::matmul, and the same product as one bare cblas call into a preallocated C
// (what matmul would reach with no overhead of its own), timed in turns.
std::vector<double> bench_matmul_and_openblas_direct(const Timer& timer, DType dtype) {
  Generator gen(4);
  const Tensor a = randn({kMatmulSize, kMatmulSize}, gen, dtype);
  const Tensor b = randn({kMatmulSize, kMatmulSize}, gen, dtype);
  Tensor c = zeros({kMatmulSize, kMatmulSize}, dtype);
  const int n = static_cast<int>(kMatmulSize);
  const auto through_symgrad = [&] { keep(matmul(a, b)); };
  const auto direct = [&] {
    if (dtype == DType::f32)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data<float>(), n,
                  b.data<float>(), n, 0.0f, c.data<float>(), n);
    else
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a.data<double>(), n,
                  b.data<double>(), n, 0.0, c.data<double>(), n);
    keep(c);
  };
  const std::vector<double> t = timer.seconds_interleaved({through_symgrad, direct});
  return {gigaflops(matmul_flops(), t[0]), gigaflops(matmul_flops(), t[1])};
}

// ---- latency -------------------------------------------------------------------------

// Microseconds per add of two 8-element tensors that require grad: the fixed cost of
// one op (allocation, dispatch, recording a node and freeing it), not its arithmetic.
double bench_tiny_op_overhead(const Timer& timer) {
  Generator gen(5);
  const Tensor a = randn({8}, gen).requires_grad_();
  const Tensor b = randn({8}, gen).requires_grad_();
  const double t = timer.seconds([&] {
    for (int i = 0; i < kTinyOpCallsPerRepeat; ++i) keep(add(a, b));
  });
  return t / kTinyOpCallsPerRepeat * 1e6;
}

// Milliseconds for conv2d forward plus both adjoints (input and weight gradients),
// 3x3 kernel, padding 1, no bias. The output gradient is a fixed random tensor, as
// if the loss were sum(y * g).
double bench_conv2d_forward_backward(const Timer& timer, std::int64_t batch, std::int64_t channels,
                                     std::int64_t size, std::int64_t groups) {
  Generator gen(6);
  Conv2dOptions opts;
  opts.padding_h = opts.padding_w = 1;
  opts.groups = groups;
  const Tensor x = randn({batch, channels, size, size}, gen).requires_grad_();
  const Tensor w = randn({channels, channels / groups, 3, 3}, gen).requires_grad_();
  const Tensor g = randn({batch, channels, size, size}, gen);
  const double t = timer.seconds([&] {
    const Tensor y = conv2d(x, w, Tensor(), opts);
    const TensorList grads = grad({y}, {x, w}, {g});
    keep(grads[0]);
    keep(grads[1]);
  });
  return t * 1e3;
}

// ---- driver --------------------------------------------------------------------------

struct Benchmark {
  std::vector<std::string> names;  // one, or two for a paired measurement
  std::string unit;
  std::function<std::vector<double>(const Timer& timer)> run;
};

// Wraps a one-number benchmark.
template <class Fn>
std::function<std::vector<double>(const Timer&)> one(Fn fn) {
  return [fn](const Timer& t) { return std::vector<double>{fn(t)}; };
}

std::vector<Benchmark> all_benchmarks() {
  return {
      {{"copy_f32_16M"}, "GB/s", one(bench_copy)},
      {{"tanh_f32_16M"}, "GB/s", one([](const Timer& t) { return bench_unary(t, symgrad::tanh); })},
      {{"exp_f32_16M"}, "GB/s", one([](const Timer& t) { return bench_unary(t, symgrad::exp); })},
      {{"add_f32_16M"}, "GB/s", one(bench_add)},
      {{"sum_f32_16M"}, "GB/s", one(bench_sum)},
      {{"tanh_f32_16M_kernel"}, "GB/s",
       one([](const Timer& t) { return bench_unary_kernel(t, kernels::Unary::tanh); })},
      {{"exp_f32_16M_kernel"}, "GB/s",
       one([](const Timer& t) { return bench_unary_kernel(t, kernels::Unary::exp); })},
      {{"add_f32_16M_kernel"}, "GB/s", one(bench_add_kernel)},
      {{"matmul_f32_1024", "matmul_f32_1024_openblas_direct"}, "GFLOP/s",
       [](const Timer& t) { return bench_matmul_and_openblas_direct(t, DType::f32); }},
      {{"matmul_f64_1024", "matmul_f64_1024_openblas_direct"}, "GFLOP/s",
       [](const Timer& t) { return bench_matmul_and_openblas_direct(t, DType::f64); }},
      {{"tiny_op_overhead"}, "us", one(bench_tiny_op_overhead)},
      {{"conv2d_3x3_b64_c32_28_fwd_bwd"}, "ms",
       one([](const Timer& t) { return bench_conv2d_forward_backward(t, 64, 32, 28, 1); })},
      {{"depthwise3x3_b64_c128_14_fwd_bwd"}, "ms",
       one([](const Timer& t) { return bench_conv2d_forward_backward(t, 64, 128, 14, 128); })},
  };
}

bool matches(const Benchmark& bench, const std::string& filter) {
  return std::any_of(bench.names.begin(), bench.names.end(),
                     [&](const std::string& name) { return name.find(filter) != std::string::npos; });
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  try {
    opts = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_bench: %s\n", e.what());
    return 2;
  }
  if (opts.threads > 0) {
    symgrad::set_num_threads(opts.threads);
    // symgrad sizes OpenBLAS too; set it here as well so the direct cblas baseline
    // runs with this count even if that ever changes.
    openblas_set_num_threads(opts.threads);
  }
  const int threads = symgrad::get_num_threads();

  std::string results;
  int failures = 0;
  for (const Benchmark& bench : all_benchmarks()) {
    if (!matches(bench, opts.filter)) continue;
    std::fprintf(stderr, "%-34s ", bench.names.front().c_str());
    std::vector<double> values;
    try {
      values = bench.run(opts.timer);
    } catch (const std::exception& e) {  // report it, keep the other numbers
      std::fprintf(stderr, "failed: %s\n", e.what());
      failures += 1;
      continue;
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) std::fprintf(stderr, "%-34s ", bench.names[i].c_str());
      std::fprintf(stderr, "%10.4g %s\n", values[i], bench.unit.c_str());
      char entry[256];
      std::snprintf(entry, sizeof entry, "%s\n    {\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}",
                    results.empty() ? "" : ",", bench.names[i].c_str(), values[i], bench.unit.c_str());
      results += entry;
    }
  }
  std::printf("{\"threads\": %d, \"repeat\": %d, \"statistic\": \"%s\", \"results\": [%s\n]}\n",
              threads, opts.timer.repeats, opts.timer.statistic(), results.c_str());
  return failures == 0 ? 0 : 1;
}
