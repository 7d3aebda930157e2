#pragma once
// What engine_bench and nn_bench share: the timer, the guard against dead-code
// elimination, and the command line (--threads, --repeat, --statistic, --filter).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace symgrad::bench {

// Tells the compiler that the memory behind `p` is read here, so the work that wrote
// it cannot be optimised away.
inline void keep(const void* p) { asm volatile("" : : "r"(p) : "memory"); }
inline void keep(const symgrad::Tensor& t) { keep(t.raw_data()); }

// How a workload is timed: once untimed, then `repeats` timed runs, reduced to one
// number by the median (robust to the odd slow run) or the minimum (the run least
// disturbed by other processes: useful on a busy machine).
struct Timer {
  int repeats = 5;
  bool use_minimum = false;

  double seconds(const std::function<void()>& work) const { return seconds_interleaved({work})[0]; }

  // Times several workloads in turns (a b, b a, a b, ...) so that a paired comparison
  // sees the same background load and neither always runs first; one number per workload.
  std::vector<double> seconds_interleaved(const std::vector<std::function<void()>>& works) const {
    for (const auto& work : works) work();
    std::vector<std::vector<double>> seconds(works.size());
    for (int r = 0; r < repeats; ++r)
      for (std::size_t turn = 0; turn < works.size(); ++turn) {
        const std::size_t w = r % 2 ? works.size() - 1 - turn : turn;
        const auto start = std::chrono::steady_clock::now();
        works[w]();
        const auto stop = std::chrono::steady_clock::now();
        seconds[w].push_back(std::chrono::duration<double>(stop - start).count());
      }
    std::vector<double> summary;
    for (auto& runs : seconds) summary.push_back(summarize(runs));
    return summary;
  }

  double summarize(std::vector<double>& runs) const {
    std::sort(runs.begin(), runs.end());
    if (use_minimum) return runs.front();
    const std::size_t mid = runs.size() / 2;
    return runs.size() % 2 ? runs[mid] : 0.5 * (runs[mid - 1] + runs[mid]);
  }
  const char* statistic() const { return use_minimum ? "min" : "median"; }
};

struct Options {
  int threads = 0;  // 0: leave symgrad's default
  Timer timer;
  std::string filter;
};

inline int parse_positive(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || value < 1 || value > 1'000'000)
    throw std::invalid_argument(flag + " wants a positive integer, got '" + text + "'");
  return static_cast<int>(value);
}

inline Options parse_options(int argc, char** argv) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fprintf(stderr, "usage: %s [--threads N] [--repeat R] [--statistic median|min] [--filter SUBSTR]\n",
                   argv[0]);
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value (or is unknown)");
    const std::string value = argv[++i];
    if (flag == "--threads") opts.threads = parse_positive(flag, value);
    else if (flag == "--repeat") opts.timer.repeats = parse_positive(flag, value);
    else if (flag == "--statistic" && (value == "median" || value == "min")) opts.timer.use_minimum = value == "min";
    else if (flag == "--statistic") throw std::invalid_argument("--statistic is median or min, got " + value);
    else if (flag == "--filter") opts.filter = value;
    else throw std::invalid_argument("unknown flag " + flag);
  }
  return opts;
}

}  // namespace symgrad::bench
