// teleport_mlp: does symmetry teleportation (Zhao et al. 2022) speed up plain SGD?
//
//   ./build/examples/teleport_mlp [--seeds N] [--steps N] [--threshold-step N] [--every K]
//                                 [--teleport-steps N] [--teleport-lr X] [--max-cond X] [--lr X] [--out DIR]
//                                 [--json PATH] [--threads N]
//
// A 784-128-128-10 ReLU MLP (float32) on Fashion-MNIST, trained by SGD without momentum at
// a fixed rate (so no optimizer state hides or imitates the effect), twice from the same
// initialisation and the same minibatch order: once plainly, once teleported along its two
// ReLU rescaling symmetries (symmetries_of) at step 0 and every K steps, each teleport
// maximising ||grad L||^2 on one 256-example batch. The loss is measured on a fixed subset
// of the training set every 10 steps; the threshold is the loss the plain run reaches at
// --threshold-step, and the table compares the steps each run needs to get there (ratio
// < 1: teleporting helped). Writes DIR/loss_curves.svg and the numbers as JSON.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/nn.hpp"
#include "symmetry/builtin_symmetries.hpp"
#include "symmetry/teleport.hpp"

using namespace symgrad;
using ordered_json = nlohmann::ordered_json;

namespace {

const char* kUsage =
    "usage: teleport_mlp [--seeds N] [--steps N] [--threshold-step N] [--every K] [--teleport-steps N]\n"
    "                    [--teleport-lr X] [--max-cond X] [--lr X] [--out DIR] [--json PATH] [--threads N]\n"
    "  --seeds N           seeds 1..N: initialisation and minibatch order (default 3)\n"
    "  --steps N           SGD steps per run (default 1000)\n"
    "  --threshold-step N  the target loss is the plain run's at this step (default 500, a multiple of 10)\n"
    "  --every K           teleport at step 0 and every K steps; 0: at step 0 only (default 200)\n"
    "  --teleport-steps N  ascent steps per teleport (default 10)\n"
    "  --teleport-lr X     ascent step size on log ||grad L||^2 (default 1)\n"
    "  --lr X              SGD learning rate (default 0.01)\n"
    "  --max-cond X        cap on each group element's condition number (default 5)\n"
    "  --out DIR           the picture goes here (default runs/teleport_mlp)\n"
    "  --json PATH         the numbers (default DIR/results.json)\n"
    "  --threads N         worker threads (default 2)\n";

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kEvalEvery = 10;
constexpr std::int64_t kEvalSize = 2000;
constexpr std::int64_t kBatch = 64;
constexpr std::int64_t kTeleportBatch = 256;

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct Options {
  std::int64_t seeds = 3, steps = 1000, threshold_step = 500, every = 200, teleport_steps = 10, threads = 2;
  double teleport_lr = 1.0, max_cond = 5.0, lr = 0.01;
  std::string out = "runs/teleport_mlp", json_path;
};

double positive_number(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value > 0) || !std::isfinite(value))
    throw UsageError(flag + " wants a positive number, got '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw UsageError(flag + " needs a value");
    const std::string value = argv[i + 1];
    const auto integer = [&] {
      const double v = positive_number(flag, value == "0" ? "1" : value);
      if (v != std::floor(v) || v > 1e8) throw UsageError(flag + " wants an integer, got '" + value + "'");
      return value == "0" ? std::int64_t{0} : static_cast<std::int64_t>(v);
    };
    if (flag == "--seeds") o.seeds = integer();
    else if (flag == "--steps") o.steps = integer();
    else if (flag == "--threshold-step") o.threshold_step = integer();
    else if (flag == "--every") o.every = integer();
    else if (flag == "--teleport-steps") o.teleport_steps = integer();
    else if (flag == "--threads") o.threads = integer();
    else if (flag == "--teleport-lr") o.teleport_lr = positive_number(flag, value);
    else if (flag == "--lr") o.lr = positive_number(flag, value);
    else if (flag == "--max-cond") o.max_cond = positive_number(flag, value);
    else if (flag == "--out") o.out = value;
    else if (flag == "--json") o.json_path = value;
    else throw UsageError("unknown flag " + flag);
  }
  if (o.seeds < 1 || o.steps < 1 || o.threads < 1) throw UsageError("--seeds, --steps and --threads must be >= 1");
  if (o.threshold_step < kEvalEvery || o.threshold_step > o.steps || o.threshold_step % kEvalEvery != 0)
    throw UsageError("--threshold-step must be a multiple of 10 in [10, --steps]");
  if (o.max_cond < 1) throw UsageError("--max-cond must be >= 1");
  if (o.json_path.empty()) o.json_path = o.out + "/results.json";
  return o;
}

std::shared_ptr<nn::Sequential> make_mlp(std::uint64_t seed) {
  nn::manual_seed(seed);
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(784, 128), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(128, 128), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(128, 10)});
}

struct TeleportRecord {
  std::int64_t step = 0;
  symmetry::TeleportReport report;
  double seconds = 0.0;
};

struct Run {
  std::vector<double> eval_steps, eval_loss;  // every kEvalEvery steps, and after the last
  std::vector<TeleportRecord> teleports;
  double train_seconds = 0.0, teleport_seconds = 0.0;
};

double evaluate(nn::Module& model, const nn::Batch& data) {
  NoGradGuard no_grad;
  return nn::cross_entropy(model(data.images), data.labels).item();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One training run; with_teleport: at step 0, then every --every steps (if > 0).
Run train(std::uint64_t seed, const Options& o, bool with_teleport, const nn::DataLoader& loader,
          const nn::DataLoader& teleport_loader, const nn::Batch& eval_set, const std::string& label) {
  auto model = make_mlp(seed);
  std::vector<symmetry::WeightSymmetry> relu;
  for (const symmetry::WeightSymmetry& s : symmetry::symmetries_of(*model))
    if (s.kind == "relu_rescaling") relu.push_back(s);
  if (relu.size() != 2) throw std::runtime_error("expected 2 ReLU rescaling symmetries, found " + std::to_string(relu.size()));
  const symmetry::TeleportOptions teleport_options{
      .steps = o.teleport_steps, .step_size = o.teleport_lr, .max_step_norm = 2.0, .max_condition_number = o.max_cond};
  nn::SGD optimizer(model->parameters(), {.lr = o.lr});

  Run run;
  nn::ProgressReporter progress(1, o.steps);
  progress.start_epoch(1);
  nn::RunningMean loss_mean, acc_mean;
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t step = 0; step <= o.steps; ++step) {
    if (with_teleport && (step == 0 || (o.every > 0 && step % o.every == 0)) && step < o.steps) {
      const nn::Batch b = teleport_loader.batch(0, static_cast<std::int64_t>(run.teleports.size()) %
                                                       teleport_loader.num_batches());
      const auto t0 = std::chrono::steady_clock::now();
      TeleportRecord record{step, symmetry::teleport(*model, relu, b.images,
                                                      [&](const Tensor& out) { return nn::cross_entropy(out, b.labels); },
                                                      teleport_options),
                            0.0};
      record.seconds = seconds_since(t0);
      run.teleport_seconds += record.seconds;
      run.teleports.push_back(record);
    }
    if (step % kEvalEvery == 0 || step == o.steps) {
      run.eval_steps.push_back(static_cast<double>(step));
      run.eval_loss.push_back(evaluate(*model, eval_set));
    }
    if (step == o.steps) break;
    const nn::Batch b = loader.batch(step / loader.num_batches(), step % loader.num_batches());
    const Tensor logits = (*model)(b.images);
    const Tensor loss = nn::cross_entropy(logits, b.labels);
    optimizer.zero_grad();
    backward(loss);
    optimizer.step();
    loss_mean.add(loss.item());
    acc_mean.add(static_cast<double>(nn::count_correct(logits, b.labels)) / static_cast<double>(b.labels.size()));
    progress.update(step + 1, static_cast<std::int64_t>(b.labels.size()), loss_mean.mean(), acc_mean.mean());
  }
  run.train_seconds = seconds_since(start);
  char summary[160];
  std::snprintf(summary, sizeof summary, "seed %llu %-9s eval loss %.4f after %lld steps (%.1f s, teleports %.1f s)",
                static_cast<unsigned long long>(seed), label.c_str(), run.eval_loss.back(),
                static_cast<long long>(o.steps), run.train_seconds, run.teleport_seconds);
  progress.end_epoch(summary);
  return run;
}

// The first evaluated step at which the loss is <= threshold (NaN if never).
double steps_to_reach(const Run& run, double threshold) {
  for (std::size_t i = 0; i < run.eval_loss.size(); ++i)
    if (run.eval_loss[i] <= threshold) return run.eval_steps[i];
  return kNaN;
}

double loss_at(const Run& run, std::int64_t step) {
  for (std::size_t i = 0; i < run.eval_steps.size(); ++i)
    if (run.eval_steps[i] == static_cast<double>(step)) return run.eval_loss[i];
  throw std::logic_error("no evaluation at step " + std::to_string(step));
}

int run(const Options& o) {
  set_num_threads(static_cast<int>(o.threads));
  std::filesystem::create_directories(o.out);
  const auto start = std::chrono::steady_clock::now();

  const auto data = std::make_shared<const nn::ImageDataset>(nn::load_fashion_mnist(nn::Split::train));
  nn::LoaderOptions eval_options{.batch_size = kEvalSize, .shuffle = false, .mean = 0.2860, .std = 0.3530};
  const nn::Batch eval_set = nn::DataLoader(data, eval_options).batch(0, 0);  // the first 2000 images

  // Thresholds at several depths of the plain run, the main one last.
  std::vector<std::int64_t> threshold_steps;
  for (std::int64_t s : {o.threshold_step / 10, o.threshold_step / 4, o.threshold_step / 2})
    if (s >= kEvalEvery) threshold_steps.push_back(s / kEvalEvery * kEvalEvery);
  threshold_steps.push_back(o.threshold_step);

  ordered_json doc{{"settings",
                    {{"model", "784-128-128-10 ReLU MLP, float32"}, {"optimizer", "SGD, no momentum, fixed lr"},
                     {"lr", o.lr}, {"batch", kBatch}, {"steps", o.steps}, {"seeds", o.seeds},
                     {"teleport_every", o.every}, {"teleport_steps", o.teleport_steps},
                     {"teleport_lr", o.teleport_lr}, {"max_condition_number", o.max_cond}, {"teleport_batch", kTeleportBatch},
                     {"eval_subset", kEvalSize}, {"threshold_step", o.threshold_step}}},
                   {"seeds", ordered_json::array()}};
  std::vector<nn::Chart> charts;
  std::vector<std::string> lines;
  std::vector<double> ratios;
  for (std::int64_t seed = 1; seed <= o.seeds; ++seed) {
    const nn::DataLoader loader(data, {.batch_size = kBatch, .seed = static_cast<std::uint64_t>(seed),
                                       .mean = 0.2860, .std = 0.3530});
    const nn::DataLoader teleport_loader(data, {.batch_size = kTeleportBatch,
                                                .seed = static_cast<std::uint64_t>(seed) + 1000, .mean = 0.2860,
                                                .std = 0.3530});
    const Run plain = train(static_cast<std::uint64_t>(seed), o, false, loader, teleport_loader, eval_set, "plain");
    const Run moved = train(static_cast<std::uint64_t>(seed), o, true, loader, teleport_loader, eval_set, "teleport");

    ordered_json thresholds = ordered_json::array();
    double main_ratio = kNaN, main_without = kNaN, main_with = kNaN, main_threshold = kNaN;
    for (std::int64_t at : threshold_steps) {
      const double threshold = loss_at(plain, at);
      const double without = steps_to_reach(plain, threshold), with = steps_to_reach(moved, threshold);
      const double ratio = with / without;
      thresholds.push_back({{"plain_step", at}, {"loss", threshold}, {"steps_without", without},
                            {"steps_with", std::isnan(with) ? ordered_json() : ordered_json(with)},
                            {"ratio", std::isnan(ratio) ? ordered_json() : ordered_json(ratio)}});
      main_ratio = ratio, main_without = without, main_with = with, main_threshold = threshold;
    }
    ratios.push_back(main_ratio);
    std::string changes;
    ordered_json teleports = ordered_json::array();
    for (const TeleportRecord& t : moved.teleports) {
      char text[64];
      std::snprintf(text, sizeof text, "%s%.1e", changes.empty() ? "" : " ", t.report.loss_relative_change);
      changes += text;
      ordered_json j = t.report.to_json();
      j["step"] = t.step;
      j["seconds"] = t.seconds;
      teleports.push_back(j);
    }
    char line[512];
    std::snprintf(line, sizeof line, "%4lld  %8.4f  %13.0f  %10s  %6.3f  %s", static_cast<long long>(seed),
                  main_threshold, main_without,
                  std::isnan(main_with) ? (">" + std::to_string(o.steps)).c_str() : std::to_string(static_cast<long long>(main_with)).c_str(),
                  main_ratio, changes.c_str());
    lines.push_back(line);
    for (const TeleportRecord& t : moved.teleports)
      std::printf("seed %lld teleport at step %4lld: %s, %lld ascent steps, grad norm %.4f -> %.4f, loss %.5f -> %.5f "
                  "(rel. change %.1e), cond %.1f / %.1f, %.2f s%s%s\n",
                  static_cast<long long>(seed), static_cast<long long>(t.step),
                  t.report.applied ? "applied" : "NOT applied", static_cast<long long>(t.report.steps_taken),
                  t.report.grad_norm_before, t.report.grad_norm_after, t.report.loss_before, t.report.loss_after,
                  t.report.loss_relative_change, t.report.condition_numbers[0], t.report.condition_numbers[1],
                  t.seconds, t.report.applied ? "" : ": ", t.report.applied ? "" : t.report.note.c_str());

    doc["seeds"].push_back({{"seed", seed}, {"thresholds", thresholds},
                            {"plain", {{"eval_steps", plain.eval_steps}, {"eval_loss", plain.eval_loss},
                                       {"seconds", plain.train_seconds}}},
                            {"teleport", {{"eval_steps", moved.eval_steps}, {"eval_loss", moved.eval_loss},
                                          {"seconds", moved.train_seconds}, {"teleport_seconds", moved.teleport_seconds},
                                          {"teleports", teleports}}}});
    nn::Chart chart{"seed " + std::to_string(seed) + ": cross-entropy on 2000 training images", "SGD step", "loss", {}, true};
    chart.series.push_back({"plain SGD", plain.eval_steps, plain.eval_loss});
    chart.series.push_back({"SGD + teleports", moved.eval_steps, moved.eval_loss});
    chart.series.push_back({"target loss",
                            {0.0, static_cast<double>(o.steps)}, {main_threshold, main_threshold}});
    charts.push_back(chart);
  }

  std::printf("\nsteps to reach the plain run's loss at step %lld (measured every %lld steps; ratio < 1: teleporting helped)\n",
              static_cast<long long>(o.threshold_step), static_cast<long long>(kEvalEvery));
  std::printf("seed  threshold  steps without  steps with   ratio  relative loss change at each teleport\n");
  for (const std::string& l : lines) std::printf("%s\n", l.c_str());
  double sum = 0.0;
  std::int64_t reached = 0;
  for (double r : ratios)
    if (!std::isnan(r)) sum += r, ++reached;
  const double mean_ratio = reached > 0 ? sum / static_cast<double>(reached) : kNaN;
  std::printf("mean ratio %.3f over %lld seeds that reached the threshold (of %lld)\n", mean_ratio,
              static_cast<long long>(reached), static_cast<long long>(o.seeds));
  doc["mean_ratio"] = std::isnan(mean_ratio) ? ordered_json() : ordered_json(mean_ratio);
  doc["seconds"] = seconds_since(start);

  nn::write_svg(o.out + "/loss_curves.svg", charts);
  const std::filesystem::path json_dir = std::filesystem::path(o.json_path).parent_path();
  if (!json_dir.empty()) std::filesystem::create_directories(json_dir);
  std::ofstream(o.json_path) << doc.dump(2) << "\n";
  std::printf("wrote %s/loss_curves.svg and %s in %s\n", o.out.c_str(), o.json_path.c_str(),
              nn::format_duration(seconds_since(start)).c_str());
  return 0;
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
    std::fprintf(stderr, "teleport_mlp: %s\n\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "teleport_mlp: %s\n", e.what());
    return 1;
  }
}
