// pde_bench: the cost of the quasi-linear PDE models (pde/): one block forward and
// backward, one training step of config B, and the ops the block is made of, printed as
// one JSON document on stdout in nn_bench's shape (progress goes to stderr).
// bench/torch_pde_bench.py runs the same workloads in PyTorch (on tools/torch_pde.py's
// models) and `bench/compare_nn.py --suite pde` puts the two side by side.
//
//   pde_bench [--threads N] [--repeat R] [--statistic median|min] [--filter SUBSTR]
//
// Each workload runs once untimed (warm-up), then R timed runs of a fixed number of
// iterations; the number reported is the median (or minimum) run time divided by the
// iterations, in ms. After each workload the process's peak resident memory so far is
// reported as "<workload>_peak_rss" in MB (compare_nn.py runs every workload in a
// process of its own, so that is the workload's own peak).
//
// The shapes are config B's on Fashion-MNIST batches of 128: the block with 32 stream
// channels (w = 128) runs at 14 x 14; the stride-2 depthwise conv is the one entering
// stage 2 (w = 64, 28 x 28 -> 14 x 14).
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "nn/init.hpp"
#include "nn/layers/batchnorm.hpp"
#include "nn/loss.hpp"
#include "nn/optim/sgd.hpp"
#include "pde/hardball.hpp"
#include "pde/pde_resnet.hpp"
#include "pde/quasi_linear_block.hpp"
#include "bench_common.hpp"

namespace {

using namespace symgrad;
using bench::keep;
using bench::Options;
using bench::parse_options;
using bench::Timer;

constexpr std::int64_t kBatch = 128;

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// ms per iteration of `step`, run `iterations` times per timed run.
double ms_per_iteration(const Timer& timer, int iterations, const std::function<void()>& step) {
  return timer.seconds([&] {
           for (int i = 0; i < iterations; ++i) step();
         }) /
         iterations * 1e3;
}

// Leaves (requires_grad) of the given shapes, drawn from one generator.
Tensor random_leaf(const Shape& shape, Generator& gen) { return randn(shape, gen).requires_grad_(); }

// One non-downsampling block, 32 stream channels (w = 128), on [128, 32, 14, 14]:
// forward in training mode, then the backward of the output's sum.
double bench_block(const Timer& timer) {
  Generator gen(3);
  pde::QuasiLinearBlockConfig config;
  config.in_channels = 32;
  pde::QuasiLinearBlock block(config);
  block.train();
  Tensor x = random_leaf({kBatch, 32, 14, 14}, gen);
  return ms_per_iteration(timer, 4, [&] {
    block.zero_grad();
    x.zero_grad();
    backward(sum(block(x)));
  });
}

// Config B, batch 128 of 1 x 28 x 28: zero_grad, forward, cross-entropy, backward, SGD
// with momentum (the training example's step).
double bench_train_step(const Timer& timer) {
  Generator gen(7);
  nn::manual_seed(0);
  pde::PDEResNet model(pde::config_B());
  model.train();
  const Tensor x = randn({kBatch, 1, 28, 28}, gen);
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < kBatch; ++i) labels.push_back(static_cast<std::int64_t>(gen.below(10)));
  nn::SGDOptions opts;
  opts.lr = 0.05;
  opts.momentum = 0.9;
  nn::SGD optimizer(model.parameters(), opts);
  return ms_per_iteration(timer, 2, [&] {
    optimizer.zero_grad();
    const Tensor loss = nn::cross_entropy(model(x), labels);
    backward(loss);
    optimizer.step();
    keep(loss);
  });
}

// The depthwise conv of a block (3x3, groups w, multiplier 2, padding 1) on
// [128, w, size, size]: forward and the gradients of input and weight.
double bench_depthwise(const Timer& timer, std::int64_t w, std::int64_t size, std::int64_t stride) {
  Generator gen(11);
  const Tensor p = random_leaf({kBatch, w, size, size}, gen);
  const Tensor weight = random_leaf({2 * w, 1, 3, 3}, gen);
  Conv2dOptions opts;
  opts.groups = w;
  opts.padding_h = opts.padding_w = 1;
  opts.stride_h = opts.stride_w = stride;
  const Tensor g = randn(conv2d(p.detach(), weight.detach(), Tensor(), opts).shape(), gen);
  return ms_per_iteration(timer, 4, [&] {
    const TensorList grads = grad({conv2d(p, weight, Tensor(), opts)}, {p, weight}, {g});
    keep(grads[0]);
  });
}

// A 1x1 convolution (no bias) from `in` to `out` channels on [128, in, 14, 14]: forward
// and the gradients of input and weight.
double bench_pointwise(const Timer& timer, std::int64_t in, std::int64_t out) {
  Generator gen(13);
  const Tensor x = random_leaf({kBatch, in, 14, 14}, gen);
  const Tensor weight = random_leaf({out, in, 1, 1}, gen);
  const Tensor g = randn({kBatch, out, 14, 14}, gen);
  return ms_per_iteration(timer, 4, [&] {
    const TensorList grads = grad({conv2d(x, weight)}, {x, weight}, {g});
    keep(grads[0]);
  });
}

// The quadratic coupling p = a[:, :w] * a[:, w:] on a = [128, 256, 14, 14], with its backward.
double bench_coupling(const Timer& timer) {
  Generator gen(17);
  const std::int64_t w = 128;
  const Tensor a = random_leaf({kBatch, 2 * w, 14, 14}, gen);
  const Tensor g = randn({kBatch, w, 14, 14}, gen);
  return ms_per_iteration(timer, 4, [&] {
    const Tensor p = mul(narrow(a, 1, 0, w), narrow(a, 1, w, w));
    keep(grad({p}, {a}, {g})[0]);
  });
}

// Training-mode BatchNorm of the block's widest activation, [128, 256, 14, 14], with its backward.
double bench_batch_norm(const Timer& timer) {
  Generator gen(19);
  const Tensor a = random_leaf({kBatch, 256, 14, 14}, gen);
  const Tensor weight = ones({256}).requires_grad_(), bias = zeros({256}).requires_grad_();
  const Tensor g = randn(a.shape(), gen);
  return ms_per_iteration(timer, 4, [&] {
    const Tensor y = nn::batch_norm_batch_stats(a, weight, bias, 1e-5).out;
    keep(grad({y}, {a, weight, bias}, {g})[0]);
  });
}

// The hardball at a stage entry, [128, 32, 14, 14], r = sqrt(32), with its backward.
double bench_hardball(const Timer& timer) {
  Generator gen(23);
  const Tensor v = random_leaf({kBatch, 32, 14, 14}, gen);
  const Tensor g = randn(v.shape(), gen);
  return ms_per_iteration(timer, 8, [&] { keep(grad({pde::hardball(v, std::sqrt(32.0))}, {v}, {g})[0]); });
}

struct Workload {
  std::string name;
  std::function<double(const Timer&)> run;  // ms
};

std::vector<Workload> all_workloads() {
  return {
      {"pde_block_c32_14_b128_fwd_bwd", bench_block},
      {"pde_resnet_B_b128_train_step", bench_train_step},
      {"pde_depthwise_w128_14_b128_fwd_bwd", [](const Timer& t) { return bench_depthwise(t, 128, 14, 1); }},
      {"pde_depthwise_s2_w64_28_b128_fwd_bwd", [](const Timer& t) { return bench_depthwise(t, 64, 28, 2); }},
      {"pde_conv1x1_32_256_14_b128_fwd_bwd", [](const Timer& t) { return bench_pointwise(t, 32, 256); }},
      {"pde_conv1x1_256_32_14_b128_fwd_bwd", [](const Timer& t) { return bench_pointwise(t, 256, 32); }},
      {"pde_coupling_w128_14_b128_fwd_bwd", bench_coupling},
      {"pde_batchnorm_256_14_b128_fwd_bwd", bench_batch_norm},
      {"pde_hardball_c32_14_b128_fwd_bwd", bench_hardball},
  };
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  try {
    opts = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pde_bench: %s\n", e.what());
    return 2;
  }
  if (opts.threads > 0) symgrad::set_num_threads(opts.threads);
  const int threads = symgrad::get_num_threads();
  nn::manual_seed(0);

  std::string results;
  int failures = 0;
  auto add_result = [&](const std::string& name, double value, const char* unit) {
    char entry[256];
    std::snprintf(entry, sizeof entry, "%s\n    {\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}",
                  results.empty() ? "" : ",", name.c_str(), value, unit);
    results += entry;
  };
  for (const Workload& w : all_workloads()) {
    if (w.name.find(opts.filter) == std::string::npos) continue;
    std::fprintf(stderr, "%-40s ", w.name.c_str());
    try {
      const double ms = w.run(opts.timer);
      const double rss = peak_rss_mb();
      std::fprintf(stderr, "%10.4g ms  peak RSS %.1f MB\n", ms, rss);
      add_result(w.name, ms, "ms");
      add_result(w.name + "_peak_rss", rss, "MB");
    } catch (const std::exception& e) {  // report it, keep the other numbers
      std::fprintf(stderr, "failed: %s\n", e.what());
      failures += 1;
    }
  }
  std::printf("{\"threads\": %d, \"repeat\": %d, \"statistic\": \"%s\", \"results\": [%s\n]}\n", threads,
              opts.timer.repeats, opts.timer.statistic(), results.c_str());
  return failures == 0 ? 0 : 1;
}
