// symmetry_pde_resnet: the seed paper's symmetry experiment (Liu, Shao & Bai 2023;
// background.md §1 and §3), reproduced and extended with symgrad's symmetry module.
//
// 1. Train (or load) a PDE ResNet on Fashion-MNIST (config G by default: one epoch takes
//    about two minutes on 2 cores), fold its BatchNorms into the convolutions.
// 2. Act on the residual streams of stages 2 and 3 with random orthogonal matrices: a
//    hardball sits at each of those stages' entry, so the group there is O(n). Test
//    accuracy stays identical and the logits move by rounding only (<= 1e-4 in float32,
//    over the 10,000 test images; <= 1e-9 in float64, over the first 2,000).
// 3. Negative control: a GL(n) element of condition number 10 on the same streams moves
//    the logits by O(1), and the audit reports that symmetry as broken.
// 4. The builder variant without stage-entry hardballs (full_gl_variant_of): there the
//    same GL(n) element leaves the logits unchanged within the same tolerances.
// 5. Audits (symmetry/audit.hpp) of every symmetry symmetries_of() finds in the folded
//    float64 model, and the discovered symmetry dimension of each residual stream
//    (symmetry/discovery.hpp): n behind the stem's ReLU (positive diagonal scalings),
//    n(n-1)/2 behind a hardball (O(n)), n^2 on the variant (GL(n)).
//
//   ./build/examples/symmetry_pde_resnet [--config G|B] [--epochs N] [--weights PATH]
//       [--variant-weights PATH] [--out DIR] [--json PATH] [--threads N] [--seed S]
//       [--no-discovery]
//
// Writes DIR/model.cbor and DIR/variant.cbor (the trained weights, reusable with
// --weights / --variant-weights), DIR/audit.json (the audit report) and the summary of
// every number printed to --json (default DIR/results.json). Exit code 1 if a check fails.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"
#include "nn/nn.hpp"
#include "pde/fold_bn.hpp"
#include "pde/pde_resnet.hpp"
#include "symmetry/audit.hpp"
#include "symmetry/builtin_symmetries.hpp"
#include "symmetry/discovery.hpp"

using namespace symgrad;
using namespace symgrad::symmetry;
using ordered_json = nlohmann::ordered_json;

namespace {

const char* kUsage =
    "usage: symmetry_pde_resnet [--config G|B] [--epochs N] [--weights PATH] [--variant-weights PATH]\n"
    "                           [--out DIR] [--json PATH] [--threads N] [--seed S] [--no-discovery]\n"
    "  --config G|B           the PDE ResNet preset (default G: a quick demo)\n"
    "  --epochs N             training epochs of each model when not loaded (default 1)\n"
    "  --weights PATH         load the model instead of training it (model.cbor of a run)\n"
    "  --variant-weights PATH the same for the variant without stage-entry hardballs\n"
    "  --out DIR              output directory (default runs/symmetry_pde_resnet)\n"
    "  --json PATH            the numbers as JSON (default DIR/results.json)\n"
    "  --threads N            worker threads (default: the library's)\n"
    "  --seed S               seed of training, group elements and audits (default 1)\n"
    "  --no-discovery         skip the null-space computation (the slowest part)\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string config = "G";
  std::int64_t epochs = 1;
  std::string weights, variant_weights;
  std::string out = "runs/symmetry_pde_resnet";
  std::string json_path;
  int threads = 0;
  std::uint64_t seed = 1;
  bool discovery = true;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      return argv[++i];
    };
    if (a == "--config") o.config = value();
    else if (a == "--epochs") o.epochs = std::stoll(value());
    else if (a == "--weights") o.weights = value();
    else if (a == "--variant-weights") o.variant_weights = value();
    else if (a == "--out") o.out = value();
    else if (a == "--json") o.json_path = value();
    else if (a == "--threads") o.threads = std::stoi(value());
    else if (a == "--seed") o.seed = std::stoull(value());
    else if (a == "--no-discovery") o.discovery = false;
    else if (a == "-h" || a == "--help") {
      std::printf("%s", kUsage);
      std::exit(0);
    } else throw UsageError("unknown argument '" + a + "'");
  }
  if (o.config != "G" && o.config != "B") throw UsageError("--config must be G or B, got " + o.config);
  if (o.epochs < 1) throw UsageError("--epochs must be at least 1");
  if (o.json_path.empty()) o.json_path = (std::filesystem::path(o.out) / "results.json").string();
  return o;
}

// The config B recipe of examples/pde_resnet_fashion (SGD Nesterov, one-cycle 0.1).
constexpr double kMean = 0.2860, kStd = 0.3530;

nn::DataLoader make_loader(nn::ImageDataset data, bool training, std::uint64_t seed) {
  nn::LoaderOptions o;
  o.batch_size = training ? 128 : 500;
  o.shuffle = training;
  o.seed = seed;
  o.mean = kMean;
  o.std = kStd;
  return nn::DataLoader(std::make_shared<const nn::ImageDataset>(std::move(data)), o);
}

// Trains a fresh model with the recipe or loads saved weights into it.
std::shared_ptr<pde::PDEResNet> trained_model(const pde::PDEResNetConfig& config, const std::string& weights,
                                              const std::string& save_as, const Options& options,
                                              const nn::DataLoader& train, const nn::DataLoader& test) {
  nn::manual_seed(options.seed);
  auto model = std::make_shared<pde::PDEResNet>(config);
  if (!weights.empty()) {
    nn::load_state(*model, weights);
    std::printf("  loaded %s\n", weights.c_str());
    return model;
  }
  nn::SGD optimizer(model->parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true});
  const nn::OneCycleLR schedule(0.1, options.epochs * train.num_batches());
  nn::FitOptions fit;
  fit.epochs = options.epochs;
  nn::fit(*model, optimizer, &schedule, train, &test, fit);
  nn::save_state(*model, save_as);
  std::printf("  saved %s\n", save_as.c_str());
  return model;
}

// float64 passes over the whole test set take minutes on 2 cores: float64 runs on its
// first batches only (kFloat64Images), float32 on all of it.
constexpr std::int64_t kFloat64Images = 2000;

// Logits of the test set (the first `batches` batches), concatenated, as float64 values.
std::vector<double> all_logits(nn::Module& model, const nn::DataLoader& test, DType dtype, std::int64_t batches) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<double> out;
  for (std::int64_t b = 0; b < batches; ++b) {
    const Tensor logits = model(to_dtype(test.batch(0, b).images, dtype));
    const std::vector<double> v = logits.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

std::vector<std::int64_t> test_labels(const nn::DataLoader& test) {
  std::vector<std::int64_t> labels;
  for (std::int64_t b = 0; b < test.num_batches(); ++b) {
    const nn::Batch batch = test.batch(0, b);
    labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
  }
  return labels;
}

struct Comparison {
  double max_abs_logit_change = 0;
  double accuracy_before = 0, accuracy_after = 0;
  std::int64_t changed_predictions = 0;
};

Comparison compare(const std::vector<double>& before, const std::vector<double>& after,
                   const std::vector<std::int64_t>& labels, std::int64_t classes) {
  Comparison c;
  const std::size_t count = labels.size();
  std::int64_t right_before = 0, right_after = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t best_before = 0, best_after = 0;
    for (std::int64_t k = 0; k < classes; ++k) {
      const std::size_t at = i * std::size_t(classes) + std::size_t(k);
      c.max_abs_logit_change = std::max(c.max_abs_logit_change, std::abs(after[at] - before[at]));
      if (before[at] > before[i * classes + best_before]) best_before = std::size_t(k);
      if (after[at] > after[i * classes + best_after]) best_after = std::size_t(k);
    }
    right_before += std::int64_t(best_before) == labels[i];
    right_after += std::int64_t(best_after) == labels[i];
    c.changed_predictions += best_before != best_after;
  }
  c.accuracy_before = double(right_before) / double(count);
  c.accuracy_after = double(right_after) / double(count);
  return c;
}

// The residual-stream symmetries of stages 2 and 3, with their algebra replaced by
// `algebra_of(n)` when given (the negative control acts with GL(n) where only O(n) holds).
std::vector<WeightSymmetry> stage_streams(const nn::Module& folded) {
  std::vector<WeightSymmetry> out;
  for (const WeightSymmetry& s : residual_stream_symmetries(folded.weight_structure()))
    if (s.name.rfind("stage2", 0) == 0 || s.name.rfind("stage3", 0) == 0) out.push_back(s);
  if (out.size() != 2) throw std::runtime_error("expected the streams of stages 2 and 3");
  return out;
}

WeightSymmetry with_gl(WeightSymmetry s) {
  s.algebra = LieAlgebra::gl(s.algebra.n());
  s.name += " as GL(" + std::to_string(s.algebra.n()) + ")";
  return s;
}

std::string short_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

struct Check {
  std::string what;
  bool passed = false;
};

// Acts with one random element per stream (of the algebra's group, or of GL(n) with
// condition number 10) on float32 and float64 copies of the folded model, and compares
// the test set's logits before and after.
ordered_json act_and_compare(const std::string& title, const pde::PDEResNet& trained, bool use_gl,
                             const nn::DataLoader& test, const std::vector<std::int64_t>& labels,
                             std::uint64_t seed, double tol32, double tol64, bool expect_invariant,
                             std::vector<Check>& checks) {
  ordered_json out;
  out["title"] = title;
  std::printf("\n%s\n", title.c_str());
  std::printf("  dtype     test images   max |delta logit|   accuracy before -> after   changed predictions\n");
  for (const DType dtype : {DType::f32, DType::f64}) {
    auto folded = pde::fold_batch_norms(trained);
    if (dtype == DType::f64) folded->to(DType::f64);
    folded->eval();
    const std::int64_t batches =
        dtype == DType::f32 ? test.num_batches()
                            : std::min(test.num_batches(), kFloat64Images / test.batch(0, 0).images.size(0));
    const std::vector<double> before = all_logits(*folded, test, dtype, batches);
    Generator gen(seed);
    ordered_json elements = ordered_json::array();
    for (WeightSymmetry s : stage_streams(*folded)) {
      if (use_gl) s = with_gl(s);
      const Tensor g = random_group_element(s.algebra, 10.0, gen, dtype);
      apply(s, g, *folded);
      elements.push_back({{"stream", s.name}, {"algebra", s.algebra.name()}, {"condition", condition_number_2(g)}});
    }
    const std::vector<double> after = all_logits(*folded, test, dtype, batches);
    const std::vector<std::int64_t> seen(labels.begin(),
                                         labels.begin() + std::int64_t(before.size()) / trained.config().num_classes);
    const Comparison c = compare(before, after, seen, trained.config().num_classes);
    const double tol = dtype == DType::f32 ? tol32 : tol64;
    std::printf("  %-8s  %-12zu  %-18.3g  %.2f%% -> %.2f%%           %lld\n", dtype_name(dtype), seen.size(),
                c.max_abs_logit_change, 100 * c.accuracy_before, 100 * c.accuracy_after,
                static_cast<long long>(c.changed_predictions));
    const bool passed = expect_invariant ? (c.max_abs_logit_change <= tol && c.accuracy_after == c.accuracy_before)
                                         : c.max_abs_logit_change > 0.1;
    checks.push_back({title + " (" + dtype_name(dtype) + "): " +
                          (expect_invariant ? "max |delta logit| <= " + short_number(tol) + ", accuracy identical"
                                            : "logits change by O(1) (> 0.1)"),
                      passed});
    out[std::string(dtype_name(dtype))] = {{"test_images", seen.size()},
                                           {"max_abs_logit_change", c.max_abs_logit_change},
                              {"accuracy_before", c.accuracy_before},
                              {"accuracy_after", c.accuracy_after},
                              {"changed_predictions", c.changed_predictions},
                              {"group_elements", elements}};
  }
  return out;
}

// The channels a stream symmetry acts on, as an interface for discovery: its producers
// (multiplied by g) and consumers (by g^-T).
Interface interface_of(const WeightSymmetry& stream) {
  Interface interface;
  interface.name = stream.name.substr(0, stream.name.find(' '));
  interface.channels = stream.algebra.n();
  for (const AxisAction& a : stream.actions)
    (a.factor == GroupFactor::g ? interface.producers : interface.consumers).push_back({a.parameter, a.axis});
  return interface;
}

}  // namespace

int run(const Options& options) {
  const auto start = std::chrono::steady_clock::now();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines appear as they are printed, also in a pipe
  if (options.threads > 0) set_num_threads(options.threads);
  std::filesystem::create_directories(options.out);
  std::vector<Check> checks;
  ordered_json report;

  const pde::PDEResNetConfig config = pde::preset(options.config);
  const pde::PDEResNetConfig variant = pde::full_gl_variant_of(config);
  const nn::DataLoader train = make_loader(nn::load_fashion_mnist(nn::Split::train), true, options.seed);
  const nn::DataLoader test = make_loader(nn::load_fashion_mnist(nn::Split::test), false, options.seed);
  const std::vector<std::int64_t> labels = test_labels(test);

  std::printf("config %s (%s), Fashion-MNIST, float32 training\n", options.config.c_str(),
              pde::PDEResNet(config).extra_repr().c_str());
  std::printf("\nthe model:\n");
  auto model = trained_model(config, options.weights, (std::filesystem::path(options.out) / "model.cbor").string(),
                             options, train, test);
  std::printf("\nthe variant without stage-entry hardballs:\n");
  auto variant_model = trained_model(variant, options.variant_weights,
                                     (std::filesystem::path(options.out) / "variant.cbor").string(), options, train, test);
  const nn::EvalResult acc = nn::evaluate(*model, test), variant_acc = nn::evaluate(*variant_model, test);
  std::printf("\ntest accuracy: model %.2f%%, variant %.2f%%\n", 100 * acc.accuracy, 100 * variant_acc.accuracy);
  report["config"] = options.config;
  report["test_accuracy"] = acc.accuracy;
  report["variant_test_accuracy"] = variant_acc.accuracy;

  report["orthogonal_on_stages_2_3"] =
      act_and_compare("O(n) on the streams of stages 2 and 3 (hardball at their entry): must leave the logits unchanged",
                      *model, false, test, labels, options.seed, 1e-4, 1e-9, true, checks);
  report["gl_on_stages_2_3"] =
      act_and_compare("negative control: GL(n), cond 10, on the same streams: must change the logits", *model, true,
                      test, labels, options.seed, 0, 0, false, checks);
  report["gl_on_variant"] =
      act_and_compare("the variant without stage-entry hardballs: the same GL(n) must leave the logits unchanged",
                      *variant_model, true, test, labels, options.seed, 1e-4, 1e-9, true, checks);

  // Audits in float64 on a batch of test images.
  auto folded64 = pde::fold_batch_norms(*model);
  folded64->to(DType::f64);
  folded64->eval();
  const nn::Batch batch = test.batch(0, 0);
  const Tensor x = to_dtype(narrow(batch.images, 0, 0, 32), DType::f64);
  const std::vector<std::int64_t> batch_labels(batch.labels.begin(), batch.labels.begin() + 32);
  const LossFn loss = [&](const Tensor& logits) { return nn::cross_entropy(logits, batch_labels); };
  AuditOptions audit_options;
  audit_options.seed = options.seed;
  std::vector<SymmetryAudit> audits;
  for (const WeightSymmetry& s : symmetries_of(*folded64)) audits.push_back(audit_symmetry(*folded64, s, x, loss, audit_options));
  for (const WeightSymmetry& s : stage_streams(*folded64)) {
    audits.push_back(audit_symmetry(*folded64, with_gl(s), x, loss, audit_options));
    checks.push_back({"audit reports " + audits.back().symmetry.name + " as broken", !audits.back().holds});
  }
  for (std::size_t i = 0; i + 2 < audits.size(); ++i)
    checks.push_back({"audit: " + audits[i].symmetry.name + " holds", audits[i].holds});
  std::printf("\naudit of the folded float64 model (32 test images, cross-entropy):\n%s",
              format_audit_table(audits).c_str());
  {
    ordered_json a = ordered_json::array();
    for (const SymmetryAudit& audit : audits) a.push_back(ordered_json::parse(audit.to_json().dump()));
    std::ofstream((std::filesystem::path(options.out) / "audit.json").string()) << a.dump(2) << "\n";
    report["audit"] = a;
  }

  if (options.discovery) {
    std::printf("\ndiscovered symmetry dimension per residual stream (null space over gl(n), float64):\n");
    std::printf("  %-10s %-8s %5s  %9s %9s  %9s  %s\n", "model", "stream", "n", "expected", "found", "gap", "rows");
    ordered_json found = ordered_json::array();
    auto folded_variant = pde::fold_batch_norms(*variant_model);
    folded_variant->to(DType::f64);
    folded_variant->eval();
    // Rows come one sample at a time, at most 10 (logits) per sample: 500 images give up
    // to 5000 independent rows, more than the 4160 the largest stream is asked for.
    const Tensor xd = to_dtype(batch.images, DType::f64);
    for (auto [label, net] : {std::pair<std::string, nn::Module*>{"model", folded64.get()},
                              std::pair<std::string, nn::Module*>{"variant", folded_variant.get()}}) {
      for (const WeightSymmetry& stream : residual_stream_symmetries(net->weight_structure())) {
        const Interface interface = interface_of(stream);
        DiscoveryOptions d;
        d.seed = options.seed;
        const auto rows_start = std::chrono::steady_clock::now();
        d.progress = [&](std::int64_t done, std::int64_t total) {
          if (!isatty(fileno(stderr))) return;  // a line per update would flood a log
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - rows_start).count();
          const double rate = done / std::max(seconds, 1e-9);
          std::fprintf(stderr, "\r  %s %s: row %lld/%lld  %.0f rows/s  ETA %.0f s   ", label.c_str(),
                       interface.name.c_str(), static_cast<long long>(done), static_cast<long long>(total), rate,
                       (total - done) / std::max(rate, 1e-9));
          if (done == total) std::fprintf(stderr, "\r%80s\r", "");
        };
        const std::int64_t n = interface.channels;
        d.rows = std::min<std::int64_t>(2 * n * n, n * n + 64);
        const DiscoveryResult r = discover_symmetries(*net, xd, interface, d);
        const std::int64_t expected = stream.algebra.dim();
        std::printf("  %-10s %-8s %5lld  %9lld %9lld  %9.2e  %lld\n", label.c_str(), interface.name.c_str(),
                    static_cast<long long>(n), static_cast<long long>(expected),
                    static_cast<long long>(r.moving_dim), r.gap, static_cast<long long>(r.rows));
        checks.push_back({"discovery: " + label + " " + interface.name + " has dimension " + std::to_string(expected),
                          r.moving_dim == expected});
        ordered_json j = r.to_json();
        j["model"] = label;
        j["expected"] = expected;
        found.push_back(j);
      }
    }
    report["discovery"] = found;
  }

  std::printf("\nchecks:\n");
  bool all = true;
  ordered_json check_json = ordered_json::array();
  for (const Check& c : checks) {
    std::printf("  %s  %s\n", c.passed ? "PASS" : "FAIL", c.what.c_str());
    check_json.push_back({{"check", c.what}, {"passed", c.passed}});
    all = all && c.passed;
  }
  report["checks"] = check_json;
  report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ofstream(options.json_path) << report.dump(2) << "\n";
  std::printf("\nwrote %s and %s (%.0f s)\n", options.json_path.c_str(),
              (std::filesystem::path(options.out) / "audit.json").string().c_str(), report["seconds"].get<double>());
  return all ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "symmetry_pde_resnet: %s\n\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "symmetry_pde_resnet: error: %s\n", e.what());
    return 1;
  }
}
