// lnn: a Lagrangian Neural Network learns the double pendulum (Cranmer et al. 2020,
// background.md §2) and conserves its energy over t = 100 where a plain MLP does not.
//
// Data as in the paper's double-pendulum notebook: random states (angles uniform on the
// circle, angular velocities uniform in [-10, 10]), m1 = m2 = l1 = l2 = 1, g = 9.8, targets
// the exact Euler-Lagrange accelerations; a fresh minibatch every step. Both models see
// the same features (cos q, sin q, cos and sin of q1 - q2, qdot / 5) and train the same
// way: Adam (fit.hpp), 15000 steps of 256 states, warm-up then cosine decay, on the mean
// absolute acceleration error (the paper's L1) normalised by the targets' mean absolute
// value. Training runs in float32 (about 4x faster here than float64); the trained models
// are then converted to float64 for the rollouts and the metric.
// `--features periodic` drops the q1 - q2 inputs (a plain MLP of (cos q, sin q) must build
// cos(q1 - q2) qdot1 qdot2 from products, and needs longer to do it).
//
// Evaluation: 10 starts at rest, drawn with energy low enough that no state of the true
// motion is faster than the training data (|qdot| <= 10); each model's field (qdot, qddot)
// and the exact one are integrated with RK4 to t = 100. The relative energy error is
// |E(x(t)) - E(x(0))| of the TRUE energy along each trajectory, divided by the range of the
// potential energy (V_max - V_min = 2 g ((m1 + m2) l1 + m2 l2) = 58.8, i.e. the maximum
// potential energy measured from the rest position). Target (issue 5): <= 1% at t = 100 for
// each start; the maximum over t in [0, 100] is reported too.
//
//   ./build/examples/lnn [--out DIR] [--json PATH] [--steps N] [--seed S] [--full]
//                        [--hidden W,W,...] [--batch B] [--lr LR] [--dt DT] ... (--help)
//
// Pictures in DIR: energy.svg (energy error over time, LNN vs baseline vs the exact field),
// trajectories.svg (the angles of one start over time and the outer bob's path), and
// training.svg (loss curves). Exit code 1 if the LNN misses the target.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/init.hpp"
#include "nn/train/plot.hpp"
#include "nn/train/progress.hpp"
#include "pde/hamiltonian/fit.hpp"
#include "pde/hamiltonian/integrators.hpp"
#include "pde/hamiltonian/lnn.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;

namespace {

const char* kUsage =
    "usage: lnn [--out DIR] [--json PATH] [--steps N] [--seed S] [--full] [--hidden W,W,...]\n"
    "           [--batch B] [--lr LR] [--dt DT] [--loss mse|l1]\n"
    "           [--init convex|pytorch|paper] [--beta B] [--velocity-scale S]\n"
    "           [--dtype f32|f64] [--features differences|periodic] [--warmup N] [--final-lr F]\n"
    "  --out DIR      pictures go here (default runs/lnn)\n"
    "  --json PATH    the table's numbers as JSON (default DIR/results.json)\n"
    "  --steps N      Adam steps per model (default 15000; --full 40000)\n"
    "  --seed S       seed of the models, the data and the starts (default 0)\n"
    "  --full         longer training (40000 steps)\n"
    "  --hidden LIST  hidden widths of both MLPs (default 128,128)\n"
    "  --batch B      states per minibatch (default 256)\n"
    "  --lr LR        peak Adam learning rate, cosine-decayed to 1% (default 3e-3)\n"
    "  --dt DT        RK4 step of the evaluation rollouts (default 0.01)\n"
    "  --loss KIND    training loss on qddot: l1 (the paper's, default) or mse\n"
    "  --init NAME    the LNN's initialisation: convex (default), pytorch or paper\n"
    "  --beta B       softplus sharpness of both MLPs (default 3)\n"
    "  --velocity-scale S  the networks see qdot / S (default 5)\n"
    "  --dtype T      training precision, f32 (default) or f64; rollouts are always f64\n"
    "  --features F   differences (default: cos q, sin q, cos and sin of q1 - q2) or\n"
    "                 periodic (cos q, sin q only)\n"
    "  --warmup N     steps of linear learning-rate warm-up (default 50)\n"
    "  --final-lr F   the cosine decay ends at F times the peak rate (default 0.01)\n";

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct Settings {
  std::string out = "runs/lnn", json_path;
  std::int64_t steps = 15000, batch = 256;
  std::vector<std::int64_t> hidden{128, 128};
  double lr = 3e-3, dt = 0.01;
  std::string loss = "l1";  // the paper's choice, or "mse" (a few huge errors dominate it)
  std::string init = "convex";  // LNN weights' start: pytorch, convex or paper
  double beta = 3.0, velocity_scale = 5.0;
  std::string dtype = "f32";             // training precision (the rollouts are float64)
  bool angle_differences = true;         // also feed cos, sin of q1 - q2
  double warmup = 50, final_lr_fraction = 0.01;
  std::uint64_t seed = 0;
  bool full = false;
  // Fixed by the protocol.
  double velocity_max = 10.0, t_end = 100.0, target = 0.01;
  std::int64_t starts = 10, test_states = 2000;
};

std::int64_t parse_integer(const std::string& flag, const std::string& text, std::int64_t low) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < low) throw UsageError(flag + " wants an integer >= " + std::to_string(low) + ", got '" + text + "'");
  return value;
}

double parse_positive(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value > 0) || !std::isfinite(value))
    throw UsageError(flag + " wants a positive number, got '" + text + "'");
  return value;
}

Settings parse_settings(int argc, char** argv) {
  Settings s;
  bool steps_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--full") {
      s.full = true;
      continue;
    }
    if (flag != "--out" && flag != "--json" && flag != "--steps" && flag != "--seed" && flag != "--hidden" &&
        flag != "--batch" && flag != "--lr" && flag != "--dt" && flag != "--loss" && flag != "--init" &&
        flag != "--beta" && flag != "--velocity-scale" && flag != "--dtype" && flag != "--features" &&
        flag != "--warmup" && flag != "--final-lr")
      throw UsageError("unknown flag " + flag);
    if (i + 1 >= argc) throw UsageError(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--out") s.out = value;
    if (flag == "--json") s.json_path = value;
    if (flag == "--steps") {
      s.steps = parse_integer(flag, value, 1);
      steps_given = true;
    }
    if (flag == "--seed") s.seed = static_cast<std::uint64_t>(parse_integer(flag, value, 0));
    if (flag == "--batch") s.batch = parse_integer(flag, value, 1);
    if (flag == "--lr") s.lr = parse_positive(flag, value);
    if (flag == "--dt") s.dt = parse_positive(flag, value);
    if (flag == "--beta") s.beta = parse_positive(flag, value);
    if (flag == "--velocity-scale") s.velocity_scale = parse_positive(flag, value);
    if (flag == "--warmup") s.warmup = parse_positive(flag, value);
    if (flag == "--final-lr") s.final_lr_fraction = parse_positive(flag, value);
    if (flag == "--dtype") {
      if (value != "f32" && value != "f64") throw UsageError("--dtype wants f32 or f64, got '" + value + "'");
      s.dtype = value;
    }
    if (flag == "--features") {
      if (value != "periodic" && value != "differences")
        throw UsageError("--features wants periodic or differences, got '" + value + "'");
      s.angle_differences = value == "differences";
    }
    if (flag == "--init") {
      if (value != "pytorch" && value != "convex" && value != "paper")
        throw UsageError("--init wants pytorch, convex or paper, got '" + value + "'");
      s.init = value;
    }
    if (flag == "--loss") {
      if (value != "mse" && value != "l1") throw UsageError("--loss wants mse or l1, got '" + value + "'");
      s.loss = value;
    }
    if (flag == "--hidden") {
      s.hidden.clear();
      std::stringstream in(value);
      for (std::string part; std::getline(in, part, ',');) s.hidden.push_back(parse_integer(flag, part, 1));
      if (s.hidden.empty()) throw UsageError("--hidden wants at least one width");
    }
  }
  if (s.full && !steps_given) s.steps = 40000;
  if (s.json_path.empty()) s.json_path = s.out + "/results.json";
  const double steps_per_unit = 1.0 / s.dt;
  if (std::abs(steps_per_unit - std::round(steps_per_unit)) > 1e-9)
    throw UsageError("--dt must divide 1 (e.g. 0.01, 0.005)");
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- the system and its data ---------------------------------------------------

const DoublePendulumParameters kPendulum{1, 1, 1, 1, 9.8};

// V_max - V_min = 2 g ((m1 + m2) l1 + m2 l2): the normalisation of the energy error.
double potential_energy_range(const DoublePendulumParameters& p) {
  return 2 * p.g * ((p.m1 + p.m2) * p.l1 + p.m2 * p.l2);
}

// Random states as the paper samples them: angles uniform on the circle, velocities
// uniform in [-velocity_max, velocity_max].
Tensor sample_states(std::int64_t count, double velocity_max, Generator& gen) {
  const Tensor angles = uniform({count, 2}, -M_PI, M_PI, gen, DType::f64);
  const Tensor velocities = uniform({count, 2}, -velocity_max, velocity_max, gen, DType::f64);
  return concat({angles, velocities}, 1);
}

// Starts at rest whose true motion stays inside the training data's velocity range:
// T = qdot^T M qdot / 2 >= lambda_min |qdot|^2 / 2, with lambda_min the smallest eigenvalue
// of the mass matrix M = [[a, b c], [b c, d]] over all angles (|c| = 1), so
// E - V_min <= lambda_min v_max^2 / 2 keeps |qdot| <= v_max along the whole trajectory.
Tensor sample_starts(const LagrangianSystem& system, const Settings& s, Generator& gen) {
  const DoublePendulumParameters& p = kPendulum;
  const double a = (p.m1 + p.m2) * p.l1 * p.l1, b = p.m2 * p.l1 * p.l2, d = p.m2 * p.l2 * p.l2;
  const double lambda_min = ((a + d) - std::sqrt((a - d) * (a - d) + 4 * b * b)) / 2;
  const double v_min = -((p.m1 + p.m2) * p.l1 + p.m2 * p.l2) * p.g;
  const double energy_cap = v_min + lambda_min * s.velocity_max * s.velocity_max / 2;
  std::vector<double> starts;
  while (static_cast<std::int64_t>(starts.size()) < 4 * s.starts) {
    const Tensor candidate = concat({uniform({1, 2}, -M_PI, M_PI, gen, DType::f64), zeros({1, 2}, DType::f64)}, 1);
    if (system.energy(candidate).item() > energy_cap) continue;
    const std::vector<double> values = candidate.to_vector();
    starts.insert(starts.end(), values.begin(), values.end());
  }
  return from_vector(starts, {s.starts, 4});
}

Tensor true_acceleration(const LagrangianSystem& system, const Tensor& x) { return narrow(system.field(x), 1, 2, 2); }

// ---- training --------------------------------------------------------------------

// Mean squared acceleration error divided by the targets' mean square (1 = predicting 0).
Tensor relative_mse(const Tensor& predicted, const Tensor& target, double target_mean_square) {
  return mean(square(predicted - target)) / target_mean_square;
}

// Mean absolute error divided by the targets' mean absolute value (the paper trains on L1,
// which a few huge accelerations of a nearly singular learned Hessian cannot dominate).
Tensor relative_l1(const Tensor& predicted, const Tensor& target, double target_mean_abs) {
  return mean(abs(predicted - target)) / target_mean_abs;
}

struct Trained {
  FitHistory history;
  double test_relative_mse = 0;
};

Trained train(nn::Module& model, const std::function<Tensor(const Tensor&)>& acceleration,
              const LagrangianSystem& system, const Settings& s, const std::string& label, std::uint64_t data_seed) {
  Generator test_gen(data_seed + 1000);
  const Tensor test_x = sample_states(s.test_states, s.velocity_max, test_gen);
  const Tensor test_target = true_acceleration(system, test_x);
  const double scale = mean(square(test_target)).item();
  const double l1_scale = mean(abs(test_target)).item();
  Generator train_gen(data_seed);
  const DType dtype = s.dtype == "f32" ? DType::f32 : DType::f64;
  auto train_loss = [&](std::int64_t) {
    const Tensor x = sample_states(s.batch, s.velocity_max, train_gen);
    const Tensor predicted = acceleration(to_dtype(x, dtype)), target = to_dtype(true_acceleration(system, x), dtype);
    return s.loss == "l1" ? relative_l1(predicted, target, l1_scale) : relative_mse(predicted, target, scale);
  };
  auto test_loss = [&] {
    NoGradGuard no_grad;
    return relative_mse(to_dtype(acceleration(to_dtype(test_x, dtype)), DType::f64), test_target, scale).item();
  };
  FitOptions options;
  options.steps = s.steps;
  options.log_every = std::max<std::int64_t>(1, s.steps / 30);
  options.label = label;
  // Cosine decay from lr to lr / 100 (a short warm-up keeps the first steps of the
  // randomly initialised Hessian from throwing the weights far).
  options.lr_at = [s](std::int64_t step) {
    const double warmup = std::min(1.0, static_cast<double>(step + 1) / s.warmup);
    const double progress = static_cast<double>(step) / static_cast<double>(s.steps);
    const double floor = s.final_lr_fraction;
    return warmup * s.lr * (floor + (1 - floor) * 0.5 * (1 + std::cos(M_PI * progress)));
  };
  Trained result;
  result.history = fit_adam(model, train_loss, test_loss, options);
  result.test_relative_mse = test_loss();
  return result;
}

// ---- evaluation ------------------------------------------------------------------

// A status line for a long rollout: redrawn on a terminal, a line per quarter otherwise.
void rollout_progress(const std::string& label, std::int64_t done, std::int64_t total, double elapsed) {
  static double last_draw = -1;
  const bool terminal = isatty(STDERR_FILENO) != 0;
  const bool quarter = done * 4 / total != (done - 1) * 4 / total;
  if (terminal ? (elapsed - last_draw < 0.1 && done != total) : !quarter) return;
  last_draw = elapsed;
  const double rate = done / std::max(elapsed, 1e-9);
  std::fprintf(stderr, "%srollout %-9s step %lld/%lld  %.0f steps/s  ETA %s%s", terminal ? "\r" : "", label.c_str(),
               static_cast<long long>(done), static_cast<long long>(total), rate,
               nn::format_duration(static_cast<double>(total - done) / rate).c_str(), terminal ? "   " : "\n");
  if (terminal && done == total) std::fprintf(stderr, "\r%90s\r", "");
}

struct Rollout {
  std::string label;
  std::vector<double> time;                // every step
  std::vector<std::vector<double>> error;  // [start][step]: |E(x_k) - E(x_0)| / range (NaN once diverged)
  std::vector<std::vector<double>> states; // [recorded step] -> starts x 4, every `record_every` steps
  std::vector<double> recorded_time;
  std::vector<double> final_error, max_error;  // per start
  double seconds = 0;
};

// The largest value, with NaN counted as infinite (a diverged trajectory).
double nan_max(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::infinity();
  return std::max(a, b);
}

Rollout integrate(const std::string& label, const VectorField& field, const LagrangianSystem& system,
                  const Tensor& x0, const Settings& s) {
  NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t steps = static_cast<std::int64_t>(std::llround(s.t_end / s.dt));
  const std::int64_t record_every = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::llround(0.05 / s.dt)));
  const double range = potential_energy_range(kPendulum);
  const std::vector<double> e0 = system.energy(x0).to_vector();
  Rollout r;
  r.label = label;
  r.error.assign(static_cast<std::size_t>(s.starts), {});
  Tensor x = x0;
  for (std::int64_t k = 0; k <= steps; ++k) {
    if (k > 0) {
      try {
        x = rk4_step(field, x, s.dt);
      } catch (const std::invalid_argument& error) {
        // A learned L whose mass matrix turns singular on the way: the model has failed
        // there; the rest of the batch's rollout counts as diverged (NaN).
        std::fprintf(stderr, "rollout %s stopped at t = %g: %s\n", label.c_str(), static_cast<double>(k) * s.dt,
                     error.what());
        x = full_like(x, std::numeric_limits<double>::quiet_NaN());
      }
    }
    const std::vector<double> e = system.energy(x).to_vector();
    r.time.push_back(static_cast<double>(k) * s.dt);
    for (std::int64_t i = 0; i < s.starts; ++i)
      r.error[static_cast<std::size_t>(i)].push_back(std::abs(e[static_cast<std::size_t>(i)] - e0[static_cast<std::size_t>(i)]) / range);
    if (k % record_every == 0) {
      r.states.push_back(x.to_vector());
      r.recorded_time.push_back(static_cast<double>(k) * s.dt);
    }
    if (k > 0) rollout_progress(label, k, steps, seconds_since(start));
  }
  for (const std::vector<double>& curve : r.error) {
    r.final_error.push_back(std::isnan(curve.back()) ? std::numeric_limits<double>::infinity() : curve.back());
    double largest = 0;
    for (double v : curve) largest = nan_max(largest, v);
    r.max_error.push_back(largest);
  }
  r.seconds = seconds_since(start);
  return r;
}

double worst(const std::vector<double>& values) {
  double largest = 0;
  for (double v : values) largest = nan_max(largest, v);
  return largest;
}

// ---- pictures --------------------------------------------------------------------

// Every `every`-th point of a curve (the energy curves have 10^4 points per start).
nn::Series thin(const std::string& label, const std::vector<double>& x, const std::vector<double>& y, std::size_t every) {
  nn::Series series{label, {}, {}};
  for (std::size_t i = 0; i < x.size(); i += every) {
    series.x.push_back(x[i]);
    series.y.push_back(y[i]);
  }
  return series;
}

void write_pictures(const Settings& s, const std::vector<Rollout>& rollouts, const std::vector<Trained>& trained) {
  const std::size_t every = static_cast<std::size_t>(std::max<std::int64_t>(1, std::llround(0.1 / s.dt)));
  // Energy: start 0 on a linear axis; the worst start at each time on a log axis.
  nn::Chart one{"double pendulum, start 0: |E(x(t)) - E(x(0))| / (V_max - V_min)", "t", "relative energy error", {}, false};
  nn::Chart all{"worst of the 10 starts, and the 1% target", "t", "relative energy error (log)", {}, true};
  for (const Rollout& r : rollouts) {
    one.series.push_back(thin(r.label, r.time, r.error[0], every));
    std::vector<double> worst_at(r.time.size(), 0.0);
    for (const std::vector<double>& curve : r.error)
      for (std::size_t k = 0; k < curve.size(); ++k) worst_at[k] = nan_max(worst_at[k], curve[k]);
    all.series.push_back(thin(r.label, r.time, worst_at, every));
  }
  all.series.push_back({"target 1%", {0.0, s.t_end}, {s.target, s.target}});
  nn::write_svg(s.out + "/energy.svg", {one, all});

  // Trajectories of start 0: both angles over the first 20 time units (the motion is
  // chaotic, so any model's trajectory parts from the truth eventually), and the outer
  // bob's path over the first 10.
  nn::Chart theta1{"start 0: theta1(t)", "t", "theta1 (rad)", {}, false};
  nn::Chart theta2{"start 0: theta2(t)", "t", "theta2 (rad)", {}, false};
  nn::Chart bob{"start 0: path of the outer bob, t in [0, 10]", "x", "y", {}, false};
  for (const Rollout& r : rollouts) {
    nn::Series t1{r.label, {}, {}}, t2{r.label, {}, {}}, path{r.label, {}, {}};
    for (std::size_t k = 0; k < r.recorded_time.size(); ++k) {
      const double t = r.recorded_time[k];
      const double a1 = r.states[k][0], a2 = r.states[k][1];
      if (t <= 20.0) {
        t1.x.push_back(t);
        t1.y.push_back(a1);
        t2.x.push_back(t);
        t2.y.push_back(a2);
      }
      if (t <= 10.0) {
        path.x.push_back(kPendulum.l1 * std::sin(a1) + kPendulum.l2 * std::sin(a2));
        path.y.push_back(-kPendulum.l1 * std::cos(a1) - kPendulum.l2 * std::cos(a2));
      }
    }
    theta1.series.push_back(t1);
    theta2.series.push_back(t2);
    bob.series.push_back(path);
  }
  nn::write_svg(s.out + "/trajectories.svg", {theta1, theta2, bob});

  nn::Chart losses{"training: relative MSE of the accelerations", "step", "relative MSE (log)", {}, true};
  const char* names[] = {"LNN", "baseline"};
  for (std::size_t m = 0; m < trained.size(); ++m) {
    const FitHistory& h = trained[m].history;
    std::vector<double> steps(h.step.begin(), h.step.end());
    losses.series.push_back({std::string(names[m]) + " train", steps, h.train_loss});
    losses.series.push_back({std::string(names[m]) + " test", steps, h.test_loss});
  }
  nn::write_svg(s.out + "/training.svg", {losses});
}

// ---- the run -----------------------------------------------------------------------

nlohmann::ordered_json rollout_json(const Rollout& r) {
  auto finite_or_null = [](const std::vector<double>& v) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (double x : v) list.push_back(std::isfinite(x) ? nlohmann::ordered_json(x) : nlohmann::ordered_json(nullptr));
    return list;
  };
  return {{"final_relative_energy_error", finite_or_null(r.final_error)},
          {"max_relative_energy_error", finite_or_null(r.max_error)},
          {"worst_final", std::isfinite(worst(r.final_error)) ? nlohmann::ordered_json(worst(r.final_error)) : nullptr},
          {"worst_max", std::isfinite(worst(r.max_error)) ? nlohmann::ordered_json(worst(r.max_error)) : nullptr},
          {"seconds", r.seconds}};
}

int run(const Settings& s) {
  const auto start = std::chrono::steady_clock::now();
  std::filesystem::create_directories(s.out);
  const LagrangianSystem system = double_pendulum_lagrangian(kPendulum);

  LnnOptions options;
  options.hidden = s.hidden;
  options.dtype = s.dtype == "f32" ? DType::f32 : DType::f64;
  options.periodic_positions = true;
  options.angle_differences = s.angle_differences;
  options.velocity_scale = s.velocity_scale;
  options.softplus_beta = s.beta;
  options.init = s.init == "pytorch" ? LnnInit::pytorch : s.init == "paper" ? LnnInit::paper : LnnInit::convex;
  nn::manual_seed(s.seed);
  LagrangianNN lnn(2, options);
  // The baseline's outputs are scaled to the accelerations' RMS (an MLP starts at order 1;
  // the LNN needs no such scale: its qddot is a ratio of derivatives of L).
  Generator scale_gen(s.seed + 30);
  const double acceleration_rms =
      std::sqrt(mean(square(true_acceleration(system, sample_states(s.test_states, s.velocity_max, scale_gen)))).item());
  LnnOptions baseline_options = options;
  baseline_options.init = LnnInit::pytorch;  // no Hessian to keep definite
  nn::manual_seed(s.seed + 1);
  AccelerationMLP baseline(2, baseline_options, acceleration_rms);
  std::printf("double pendulum (m = l = 1, g = 9.8); LNN %s, baseline %s; %lld Adam steps, batch %lld, lr %g, %s loss, "
              "trained in %s\n",
              lnn.extra_repr().c_str(), baseline.extra_repr().c_str(), static_cast<long long>(s.steps),
              static_cast<long long>(s.batch), s.lr, s.loss.c_str(), s.dtype == "f32" ? "float32" : "float64");

  std::vector<Trained> trained;
  trained.push_back(train(lnn, [&](const Tensor& x) { return lnn.acceleration(x); }, system, s, "lnn", s.seed + 10));
  trained.push_back(train(baseline, [&](const Tensor& x) { return baseline.acceleration(x); }, system, s, "baseline",
                          s.seed + 10));
  // The rollouts and the energy metric are float64 whatever the training precision.
  lnn.to(DType::f64);
  baseline.to(DType::f64);
  std::printf("test relative MSE of qddot: LNN %.3e (%.0f s), baseline %.3e (%.0f s)\n", trained[0].test_relative_mse,
              trained[0].history.seconds, trained[1].test_relative_mse, trained[1].history.seconds);

  Generator start_gen(s.seed + 20);
  const Tensor x0 = sample_starts(system, s, start_gen);
  std::vector<Rollout> rollouts;
  rollouts.push_back(integrate("LNN", lnn.field(), system, x0, s));
  rollouts.push_back(integrate("baseline", baseline.field(), system, x0, s));
  rollouts.push_back(integrate("exact", system.field, system, x0, s));

  std::printf("\nrelative energy error |E(x(t)) - E(x(0))| / (V_max - V_min = %.1f), RK4 dt = %g, t = %g\n",
              potential_energy_range(kPendulum), s.dt, s.t_end);
  std::printf("%-6s %-24s %-22s %-22s %-22s\n", "start", "(theta1, theta2)", "LNN t=100 [max]", "baseline t=100 [max]",
              "exact field t=100 [max]");
  const std::vector<double> starts = x0.to_vector();
  for (std::int64_t i = 0; i < s.starts; ++i) {
    const std::size_t k = static_cast<std::size_t>(i);
    char angles[48];
    std::snprintf(angles, sizeof angles, "(%+.3f, %+.3f)", starts[4 * k], starts[4 * k + 1]);
    std::printf("%-6lld %-24s", static_cast<long long>(i), angles);
    for (const Rollout& r : rollouts) {
      char cell[48];
      std::snprintf(cell, sizeof cell, "%.2e [%.2e]", r.final_error[k], r.max_error[k]);
      std::printf(" %-22s", cell);
    }
    std::printf("\n");
  }
  const bool lnn_pass = worst(rollouts[0].final_error) <= s.target;
  const bool contrast = worst(rollouts[1].final_error) > worst(rollouts[0].final_error);
  std::printf("\n%s  LNN relative energy error at t = 100 <= 1%% for all %lld starts (worst %.3e; worst over t in "
              "[0, 100] %.3e)\n",
              lnn_pass ? "PASS" : "FAIL", static_cast<long long>(s.starts), worst(rollouts[0].final_error),
              worst(rollouts[0].max_error));
  std::printf("%s  the baseline MLP's worst error at t = 100 is larger (%.3e; over t in [0, 100] %.3e)\n",
              contrast ? "PASS" : "FAIL", worst(rollouts[1].final_error), worst(rollouts[1].max_error));
  std::printf("      (the exact field under the same RK4: worst %.3e at t = 100)\n", worst(rollouts[2].final_error));

  write_pictures(s, rollouts, trained);
  const double seconds = seconds_since(start);
  nlohmann::ordered_json doc{
      {"system", "double_pendulum"},
      {"parameters", {{"m1", kPendulum.m1}, {"m2", kPendulum.m2}, {"l1", kPendulum.l1}, {"l2", kPendulum.l2}, {"g", kPendulum.g}}},
      {"settings",
       {{"steps", s.steps}, {"batch", s.batch}, {"hidden", s.hidden}, {"lr", s.lr}, {"loss", s.loss}, {"init", s.init}, {"softplus_beta", s.beta}, {"velocity_scale", s.velocity_scale}, {"seed", s.seed}, {"full", s.full},
        {"velocity_max", s.velocity_max}, {"dt", s.dt}, {"t_end", s.t_end}, {"starts", s.starts},
        {"features", s.angle_differences ? "(cos q, sin q, cos(q1 - q2), sin(q1 - q2), qdot / velocity_scale)"
                                         : "(cos q, sin q, qdot / velocity_scale)"},
        {"training_dtype", s.dtype == "f32" ? "float32" : "float64"}, {"rollout_dtype", "float64"},
        {"warmup", s.warmup}, {"final_lr_fraction", s.final_lr_fraction}}},
      {"energy_normalisation", potential_energy_range(kPendulum)},
      {"starts", starts},
      {"lnn", {{"test_relative_mse", trained[0].test_relative_mse}, {"training", trained[0].history.to_json()},
               {"energy", rollout_json(rollouts[0])}}},
      {"baseline", {{"test_relative_mse", trained[1].test_relative_mse}, {"training", trained[1].history.to_json()},
                    {"energy", rollout_json(rollouts[1])}}},
      {"exact_field", {{"energy", rollout_json(rollouts[2])}}},
      {"target", s.target},
      {"pass", {{"lnn_energy_at_t100", lnn_pass}, {"baseline_worse", contrast}}},
      {"seconds", seconds}};
  std::ofstream(s.json_path) << doc.dump(2) << "\n";
  std::printf("\nwrote %s/{energy,trajectories,training}.svg and %s in %s\n", s.out.c_str(), s.json_path.c_str(),
              nn::format_duration(seconds).c_str());
  return lnn_pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      }
    return run(parse_settings(argc, argv));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "lnn: %s\n\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lnn: %s\n", e.what());
    return 1;
  }
}
