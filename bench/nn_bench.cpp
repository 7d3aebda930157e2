// nn_bench: the cost of one training step of small image classifiers (forward,
// cross-entropy, backward, SGD with momentum), printed as one JSON document on stdout
// in engine_bench's shape (progress goes to stderr). bench/torch_nn_bench.py runs the
// same workloads in PyTorch and bench/compare_nn.py puts the two side by side.
//
//   nn_bench [--threads N] [--repeat R] [--statistic median|min] [--filter SUBSTR]
//
// Each workload runs once untimed (warm-up), then R timed runs of a fixed number of
// steps; the number reported is the median (or minimum) run time divided by the steps,
// in ms. After each workload the process's peak resident memory so far (getrusage
// ru_maxrss) is reported as "<workload>_peak_rss" in MB; compare_nn.py runs every
// workload in a process of its own, so that number is the workload's own peak.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/batchnorm.hpp"
#include "nn/layers/conv2d.hpp"
#include "nn/layers/flatten.hpp"
#include "nn/layers/linear.hpp"
#include "nn/layers/pool.hpp"
#include "nn/loss.hpp"
#include "nn/optim/sgd.hpp"
#include "bench_common.hpp"

namespace {

using namespace symgrad;
using namespace symgrad::nn;
using bench::keep;
using bench::Options;
using bench::parse_options;
using bench::Timer;

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

std::shared_ptr<Module> mlp() {
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Linear>(784, 256), std::make_shared<ReLU>(), std::make_shared<Linear>(256, 256),
      std::make_shared<ReLU>(), std::make_shared<Linear>(256, 10)});
}

// conv 3x3 (padding 1) - BatchNorm2d - ReLU - MaxPool 2, appended to `layers`.
void add_conv_block(std::int64_t in, std::int64_t out, std::vector<std::shared_ptr<Module>>& layers) {
  Conv2dConfig conv;
  conv.in_channels = in;
  conv.out_channels = out;
  conv.kernel_h = conv.kernel_w = 3;
  conv.padding_h = conv.padding_w = 1;
  layers.push_back(std::make_shared<Conv2d>(conv));
  layers.push_back(std::make_shared<BatchNorm2d>(out));
  layers.push_back(std::make_shared<ReLU>());
  layers.push_back(std::make_shared<MaxPool2d>(2));
}

// examples/configs/cnn_fashion.json without its dropout.
std::shared_ptr<Module> cnn() {
  std::vector<std::shared_ptr<Module>> layers;
  add_conv_block(1, 32, layers);
  add_conv_block(32, 64, layers);
  layers.push_back(std::make_shared<Flatten>());
  layers.push_back(std::make_shared<Linear>(64 * 7 * 7, 10));
  return std::make_shared<Sequential>(layers);
}

// Milliseconds per training step on one fixed random batch (speed does not depend on
// the values): zero_grad, forward, cross-entropy, backward, SGD step with momentum.
double bench_sgd_step(const Timer& timer, const std::shared_ptr<Module>& model, const Shape& input_shape,
                      int steps_per_run) {
  Generator gen(7);
  const Tensor x = randn(input_shape, gen);
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < input_shape[0]; ++i) labels.push_back(static_cast<std::int64_t>(gen.below(10)));
  model->train();
  SGDOptions opts;
  opts.lr = 0.01;
  opts.momentum = 0.9;
  SGD optimizer(model->parameters(), opts);
  const double t = timer.seconds([&] {
    for (int s = 0; s < steps_per_run; ++s) {
      optimizer.zero_grad();
      const Tensor loss = cross_entropy((*model)(x), labels);
      backward(loss);
      optimizer.step();
      keep(loss.raw_data());
    }
  });
  return t / steps_per_run * 1e3;
}

struct Workload {
  std::string name;
  std::function<std::shared_ptr<Module>()> model;
  Shape input;
  int steps_per_run;
};

std::vector<Workload> all_workloads() {
  return {
      {"mlp_784_256_256_10_b128_sgd_step", mlp, {128, 784}, 20},
      {"cnn_fmnist_b64_sgd_step", cnn, {64, 1, 28, 28}, 4},
  };
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  try {
    opts = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nn_bench: %s\n", e.what());
    return 2;
  }
  if (opts.threads > 0) symgrad::set_num_threads(opts.threads);
  const int threads = symgrad::get_num_threads();
  manual_seed(0);

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
    std::fprintf(stderr, "%-34s ", w.name.c_str());
    try {
      const double ms = bench_sgd_step(opts.timer, w.model(), w.input, w.steps_per_run);
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
