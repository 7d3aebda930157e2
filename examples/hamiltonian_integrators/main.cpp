// hamiltonian_integrators: why symplectic integrators conserve energy and others do not.
// Every method of pde/hamiltonian/integrators.hpp integrates the exact pendulum
// H = p^2 / 2 - cos q from (q, p) = (1, 0) with h = 0.1 (background.md §2, "Symplectic
// integrators"); the table gives max_k |H(x_k) - H(x_0)| after 10^3, 10^4 and 10^5 steps
// beside the published values, and the symplecticity error max ||J^T Omega J - Omega||_F of
// one step over 100 points, with J from autodiff in float64 and float32. The implicit methods
// solve their equations to round-off (see run()).
//
//   ./build/examples/hamiltonian_integrators [--out DIR] [--json PATH] [--steps 1000,10000,100000]
//                                             [--points N]
//
// Checks (PASS/FAIL; exit code 1 if one fails): each symplectic method's energy error grows
// by at most 5% from the first checkpoint to the last; explicit Euler and RK4 drift (their
// error grows at least 10x); each symplectic step's symplecticity error is <= 1e-13 in
// float64. Pictures in DIR: energy_error.svg (|H - H0| against steps, log-log, every method;
// and over the first steps, log-linear) and phase_portraits.svg (a few methods against the exact
// flow).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/train/plot.hpp"
#include "nn/train/progress.hpp"
#include "pde/hamiltonian/datasets.hpp"
#include "pde/hamiltonian/metrics.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;

namespace {

const char* kUsage =
    "usage: hamiltonian_integrators [--out DIR] [--json PATH] [--steps LIST] [--points N]\n"
    "  --out DIR      pictures go here (default runs/hamiltonian_integrators)\n"
    "  --json PATH    the table's numbers as JSON (default DIR/results.json)\n"
    "  --steps LIST   ascending energy checkpoints (default 1000,10000,100000)\n"
    "  --points N     points for the symplecticity error (default 100)\n";

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct Options {
  std::string out = "runs/hamiltonian_integrators", json_path;
  std::vector<std::int64_t> checkpoints{1000, 10000, 100000};
  std::int64_t points = 100;
};

std::int64_t positive_integer(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1 || value > 100'000'000)
    throw UsageError(flag + " wants a positive integer, got '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag != "--out" && flag != "--json" && flag != "--steps" && flag != "--points")
      throw UsageError("unknown flag " + flag);
    if (i + 1 >= argc) throw UsageError(flag + " needs a value");
    const std::string value = argv[i + 1];
    if (flag == "--out") o.out = value;
    if (flag == "--json") o.json_path = value;
    if (flag == "--points") o.points = positive_integer(flag, value);
    if (flag == "--steps") {
      o.checkpoints.clear();
      std::stringstream in(value);
      for (std::string part; std::getline(in, part, ',');) o.checkpoints.push_back(positive_integer(flag, part));
      for (std::size_t k = 1; k < o.checkpoints.size(); ++k)
        if (o.checkpoints[k] <= o.checkpoints[k - 1]) throw UsageError("--steps must be ascending");
      if (o.checkpoints.empty()) throw UsageError("--steps wants at least one checkpoint");
    }
  }
  if (o.json_path.empty()) o.json_path = o.out + "/results.json";
  return o;
}

// background.md §2: max |H - H0| after 10^3 and 10^5 steps (none given for the 6th-order methods).
struct Published {
  double after_1e3, after_1e5;
};
const std::map<std::string, Published> kPublished{
    {"explicit_euler", {5.2, 330}},       {"symplectic_euler", {2.3e-2, 2.3e-2}},
    {"stormer_verlet", {1.1e-3, 1.1e-3}}, {"yoshida4", {3.9e-6, 3.9e-6}},
    {"implicit_midpoint", {8.8e-5, 8.8e-5}}, {"rk4", {4.7e-6, 4.6e-4}},
};

// A status line for a long rollout: redrawn in place on a terminal, a line per 25% otherwise.
class RolloutProgress {
 public:
  RolloutProgress(std::string label, std::int64_t total)
      : label_(std::move(label)), total_(total), terminal_(isatty(fileno(stderr)) != 0),
        start_(std::chrono::steady_clock::now()) {}

  void step() {
    ++done_;
    const double elapsed = seconds();
    const bool quarter = done_ * 4 / total_ != (done_ - 1) * 4 / total_;
    if (terminal_ ? elapsed - last_draw_ < 0.1 && done_ != total_ : !quarter) return;
    last_draw_ = elapsed;
    const double rate = static_cast<double>(done_) / std::max(elapsed, 1e-9);
    std::fprintf(stderr, "%s%-40s step %lld/%lld  %.0f steps/s  ETA %s%s", terminal_ ? "\r" : "", label_.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), rate,
                 nn::format_duration(static_cast<double>(total_ - done_) / rate).c_str(), terminal_ ? "  " : "\n");
    if (terminal_ && done_ == total_) std::fprintf(stderr, "\r%80s\r", "");
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::string label_;
  std::int64_t total_, done_ = 0;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  double last_draw_ = -1.0;
};

struct MethodResult {
  Method method;
  EnergyDrift drift;
  double growth = 0, symplecticity_f64 = 0, symplecticity_f32 = 0, seconds = 0;
  Tensor portrait;  // [steps + 1, 1, 2]
};

struct Check {
  std::string what;
  bool pass;
};

std::string number(double value) {
  if (std::isnan(value)) return "nan";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2e", value);
  return buffer;
}

nn::Series series(const std::string& label, const std::vector<double>& x, const std::vector<double>& y) {
  return {label, x, y};
}

// Column `column` of a [steps + 1, 1, 2] rollout.
std::vector<double> coordinate(const Tensor& rollout, std::int64_t column) {
  const std::vector<double> values = rollout.to_vector();
  std::vector<double> out;
  for (std::size_t k = 0; k < values.size() / 2; ++k) out.push_back(values[2 * k + static_cast<std::size_t>(column)]);
  return out;
}

void write_pictures(const std::string& dir, const std::vector<MethodResult>& results, const HamiltonianSystem& system,
                    const Tensor& exact, double h0) {
  nn::Chart loglog{"Pendulum, h = 0.1: |H(x_k) - H(x_0)| of every method", "log10(step k)", "|H - H0|", {}, true};
  for (const MethodResult& r : results) {
    std::vector<double> log_step;
    for (double s : r.drift.curve_step) log_step.push_back(std::log10(s));
    loglog.series.push_back(series(method_name(r.method), log_step, r.drift.curve_error));
  }
  nn::Chart early{"The first steps: symplectic methods oscillate, the others drift", "step k",
                  "|H - H0|", {}, true};
  std::vector<nn::Chart> portraits;
  const std::vector<double> exact_q = coordinate(exact, 0), exact_p = coordinate(exact, 1);
  for (const MethodResult& r : results) {
    if (!r.portrait.defined()) continue;
    const std::vector<double> energy = system.hamiltonian(reshape(r.portrait, {-1, 2})).to_vector();
    std::vector<double> steps, error;
    for (std::size_t k = 0; k < energy.size(); ++k) {
      steps.push_back(static_cast<double>(k));
      error.push_back(std::abs(energy[k] - h0));
    }
    early.series.push_back(series(method_name(r.method), steps, error));
    nn::Chart portrait{method_name(r.method) + ": phase portrait, " + std::to_string(energy.size() - 1) + " steps",
                       "q", "p", {}, false};
    portrait.series.push_back(series("exact (reference)", exact_q, exact_p));
    portrait.series.push_back(series(method_name(r.method), coordinate(r.portrait, 0), coordinate(r.portrait, 1)));
    portraits.push_back(portrait);
  }
  nn::write_svg(dir + "/energy_error.svg", {loglog, early});
  nn::write_svg(dir + "/phase_portraits.svg", portraits);
}

int run(const Options& o) {
  const auto start = std::chrono::steady_clock::now();
  const HamiltonianSystem system = pendulum();
  const double h = 0.1;
  const Tensor x0 = tensor({1.0, 0.0}, {1, 2}, DType::f64);
  const double h0 = system.hamiltonian(x0).item();
  StepOptions options;
  options.separable = system.separable;
  // The implicit methods solve to round-off in float64. Only the exact solve is symplectic: a
  // stopping error e per step is a non-symplectic perturbation of size e. With the default
  // tolerance (1e-13) implicit_midpoint's Jacobian is off by ~5e-13 (the derivative of the
  // iteration lags its value), and even at 1e-14 the stopping errors make gauss_legendre6's
  // energy error (8.6e-12 from truncation) double over 10^5 steps. If the last bits oscillate
  // instead of settling, the last iterate is kept. Float32 keeps the default (1e-6).
  options.fixed_point.tolerance = 3e-16;
  options.fixed_point.max_iterations = 60;
  options.fixed_point.throw_on_failure = false;
  StepOptions options_f32 = options;
  options_f32.fixed_point = FixedPointOptions{};
  Generator gen(0);
  const Tensor points64 = uniform({o.points, 2}, -2.0, 2.0, gen, DType::f64);  // (q, p) in [-2, 2]^2
  const Tensor points32 = to_dtype(points64, DType::f32);
  const std::vector<Method> portrait_methods{Method::explicit_euler, Method::symplectic_euler, Method::stormer_verlet,
                                             Method::rk4};
  const std::int64_t portrait_steps = 300;
  const Tensor exact = reference_trajectory(system, x0, h, portrait_steps);
  const std::int64_t last = o.checkpoints.back();

  std::printf("Pendulum H = p^2/2 - cos q, (q0, p0) = (1, 0), h = %.2g, float64 (fixed-point tolerance %.0e);\n"
              "symplecticity error over %lld points in [-2, 2]^2 in float64 and float32\n\n",
              h, options.fixed_point.tolerance, static_cast<long long>(o.points));
  std::printf("%-18s %5s %5s", "method", "order", "sympl");
  for (std::int64_t c : o.checkpoints) {
    char header[32];
    std::snprintf(header, sizeof header, "@%lld", static_cast<long long>(c));
    std::printf(" %10s", header);
  }
  std::printf(" %10s %10s %8s %10s %10s %7s\n", "paper@1e3", "paper@1e5", "growth", "J err f64", "J err f32", "seconds");

  std::vector<MethodResult> results;
  const std::vector<Method> methods = all_methods();
  for (std::size_t m = 0; m < methods.size(); ++m) {
    MethodResult r;
    r.method = methods[m];
    const std::string name = method_name(r.method);
    const StepMap step_map = integrator_map(r.method, system.field, h, options);
    char label[64];
    std::snprintf(label, sizeof label, "[%zu/%zu] %s", m + 1, methods.size(), name.c_str());
    RolloutProgress progress(label, last);
    const StepMap counted = [&step_map, &progress](const Tensor& x) {
      Tensor y = step_map(x);
      progress.step();
      return y;
    };
    r.drift = energy_drift(counted, system.hamiltonian, x0, o.checkpoints);
    r.seconds = progress.seconds();
    r.growth = r.drift.max_error.back() / r.drift.max_error.front();
    r.symplecticity_f64 = symplecticity_error(step_map, points64);
    r.symplecticity_f32 = symplecticity_error(integrator_map(r.method, system.field, h, options_f32), points32);
    if (std::find(portrait_methods.begin(), portrait_methods.end(), r.method) != portrait_methods.end())
      r.portrait = rollout_map(step_map, x0, portrait_steps);

    const auto published = kPublished.find(name);
    std::printf("%-18s %5d %5s", name.c_str(), method_order(r.method), is_symplectic(r.method) ? "yes" : "no");
    for (double e : r.drift.max_error) std::printf(" %10s", number(e).c_str());
    std::printf(" %10s %10s %8.3f %10s %10s %7.1f\n",
                published == kPublished.end() ? "-" : number(published->second.after_1e3).c_str(),
                published == kPublished.end() ? "-" : number(published->second.after_1e5).c_str(), r.growth,
                number(r.symplecticity_f64).c_str(), number(r.symplecticity_f32).c_str(), r.seconds);
    std::fflush(stdout);
    results.push_back(r);
  }

  const std::string span = std::to_string(o.checkpoints.front()) + " to " + std::to_string(last) + " steps";
  std::vector<Check> checks;
  for (const MethodResult& r : results) {
    const std::string name = method_name(r.method);
    if (is_symplectic(r.method)) {
      checks.push_back({name + ": energy error grows <= 5% from " + span, r.growth <= 1.05});
      checks.push_back({name + ": symplecticity error <= 1e-13 (float64)", r.symplecticity_f64 <= 1e-13});
    } else {
      checks.push_back({name + ": energy error drifts (grows >= 10x from " + span + ")", r.growth >= 10});
    }
  }
  std::printf("\n");
  bool all_pass = true;
  for (const Check& c : checks) {
    std::printf("%s  %s\n", c.pass ? "PASS" : "FAIL", c.what.c_str());
    all_pass = all_pass && c.pass;
  }

  std::filesystem::create_directories(o.out);
  write_pictures(o.out, results, system, exact, h0);
  nlohmann::ordered_json doc{{"system", system.name}, {"x0", {1.0, 0.0}}, {"h", h}, {"H0", h0},
                             {"fixed_point_tolerance_f64", options.fixed_point.tolerance},
                             {"checkpoints", o.checkpoints}, {"symplecticity_points", o.points},
                             {"methods", nlohmann::ordered_json::array()}, {"checks", nlohmann::ordered_json::array()}};
  for (const MethodResult& r : results) {
    const auto published = kPublished.find(method_name(r.method));
    nlohmann::ordered_json row{{"method", method_name(r.method)}, {"order", method_order(r.method)},
                               {"symplectic", is_symplectic(r.method)}, {"max_energy_error", r.drift.max_error},
                               {"growth", r.growth}, {"symplecticity_error_f64", r.symplecticity_f64},
                               {"symplecticity_error_f32", r.symplecticity_f32}, {"seconds", r.seconds},
                               {"curve", {{"step", r.drift.curve_step}, {"error", r.drift.curve_error}}}};
    if (published != kPublished.end())
      row["published"] = {{"after_1e3", published->second.after_1e3}, {"after_1e5", published->second.after_1e5}};
    doc["methods"].push_back(row);
  }
  for (const Check& c : checks) doc["checks"].push_back({{"check", c.what}, {"pass", c.pass}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  doc["all_passed"] = all_pass;
  doc["seconds"] = seconds;
  const std::filesystem::path json_dir = std::filesystem::path(o.json_path).parent_path();
  if (!json_dir.empty()) std::filesystem::create_directories(json_dir);
  std::ofstream(o.json_path) << doc.dump(2) << "\n";
  std::printf("\nwrote %s/energy_error.svg, %s/phase_portraits.svg and %s in %s\n", o.out.c_str(), o.out.c_str(),
              o.json_path.c_str(), nn::format_duration(seconds).c_str());
  return all_pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      }
    return run(parse_options(argc, argv));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "hamiltonian_integrators: %s\n\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hamiltonian_integrators: %s\n", e.what());
    return 1;
  }
}
