// hamiltonian_bench: the cost of one training step of the Hamiltonian neural network
// (pde/hamiltonian/hnn.hpp) and of its baseline, at the HNN paper's size (2 -> 200 -> 200,
// tanh) on a batch of 750 float32 states (the spring's training set), printed as one JSON
// document on stdout in nn_bench's shape (progress goes to stderr).
// bench/torch_hamiltonian_bench.py runs the same workloads in PyTorch.
//
//   hamiltonian_bench [--threads N] [--repeat R] [--statistic median|min] [--filter SUBSTR]
//
// Unlike the other suites this one defaults to one thread and the minimum of the timed
// runs (the targets are one-thread figures, and the machine is often busy).
//
// Workloads (ms per iteration):
//   hnn_2_200_200_1_b750_adam_step        forward H, field = J grad H by grad with
//                                         create_graph, MSE loss, backward (a double
//                                         backward through the field), Adam step
//   mlp_field_2_200_200_2_b750_adam_step  the baseline: forward, MSE loss, backward, Adam
//   hnn_2_200_200_1_b750_field            forward H and its field with create_graph only:
//                                         how much of the HNN step is the first backward
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "nn/init.hpp"
#include "nn/optim/adam.hpp"
#include "pde/hamiltonian/hnn.hpp"
#include "bench_common.hpp"

namespace {

using namespace symgrad;
using bench::keep;
using bench::Options;
using bench::parse_options;
using bench::Timer;
using pde::hamiltonian::FieldMLP;
using pde::hamiltonian::HamiltonianNN;

constexpr std::int64_t kBatch = 750;  // the HNN paper's spring: 25 trajectories x 30 points

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

double ms_per_iteration(const Timer& timer, int iterations, const std::function<void()>& step) {
  return timer.seconds([&] {
           for (int i = 0; i < iterations; ++i) step();
         }) /
         iterations * 1e3;
}

// The states and target derivatives of one full batch: states uniform in [-1, 1]^2,
// targets the spring's field (2p, -2q) (the values do not change the cost).
struct Batch {
  Tensor x, dxdt;
};
Batch spring_batch() {
  Generator gen(5);
  Batch batch;
  batch.x = uniform({kBatch, 2}, -1.0, 1.0, gen);
  batch.dxdt = concat({2.0 * narrow(batch.x, 1, 1, 1), -2.0 * narrow(batch.x, 1, 0, 1)}, 1);
  return batch;
}

// zero_grad, loss = mean |model(x) - dxdt|^2, backward, Adam (lr 1e-3) step.
template <class Model>
double bench_adam_step(const Timer& timer) {
  nn::manual_seed(0);
  Model model(1);
  const Batch batch = spring_batch();
  nn::Adam optimizer(model.parameters());
  return ms_per_iteration(timer, 20, [&] {
    optimizer.zero_grad();
    const Tensor loss = mean(square(model(batch.x) - batch.dxdt));
    backward(loss);
    optimizer.step();
    keep(loss);
  });
}

// The HNN's field alone, recorded for a later backward (create_graph), then dropped.
double bench_hnn_field(const Timer& timer) {
  nn::manual_seed(0);
  HamiltonianNN model(1);
  const Batch batch = spring_batch();
  return ms_per_iteration(timer, 20, [&] { keep(model(batch.x)); });
}

struct Workload {
  std::string name;
  std::function<double(const Timer&)> run;  // ms
};

std::vector<Workload> all_workloads() {
  return {
      {"hnn_2_200_200_1_b750_adam_step", bench_adam_step<HamiltonianNN>},
      {"mlp_field_2_200_200_2_b750_adam_step", bench_adam_step<FieldMLP>},
      {"hnn_2_200_200_1_b750_field", bench_hnn_field},
  };
}

bool has_flag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  try {
    opts = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hamiltonian_bench: %s\n", e.what());
    return 2;
  }
  if (!has_flag(argc, argv, "--statistic")) opts.timer.use_minimum = true;
  symgrad::set_num_threads(opts.threads > 0 ? opts.threads : 1);
  const int threads = symgrad::get_num_threads();

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
