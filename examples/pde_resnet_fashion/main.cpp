// pde_resnet_fashion: the PDE ResNet of Liu, Shao and Bai (arXiv 2308.01621) -- a ResNet
// whose blocks are quasi-linear hyperbolic PDE steps with no activation on the residual
// stream -- trained on Fashion-MNIST next to the ReLU ResNet of the same layout.
//
//   ./build/examples/pde_resnet_fashion                 config G, 1 epoch: a few minutes
//   ./build/examples/pde_resnet_fashion --config B --epochs 10 --json runs/pde_B_10.json
//
// On two cores the two models train faster as two single-thread processes than one after the
// other with two threads each (--only pde --threads 1 beside --only baseline --threads 1).
//
// Flags: --config B|G (G), --epochs N (1), --no-baseline, --only pde|baseline, --threads N (2), --seed N (1),
// --out DIR (runs/pde_resnet_fashion), --json PATH (DIR/results.json),
// --limit-batches N (train on N batches per epoch and test on N test batches: smoke tests).
//
// Both models get the same recipe, the one the background's PyTorch reference used: SGD
// with Nesterov momentum 0.9 and weight decay 5e-4, a one-cycle schedule up to lr 0.1 over
// the whole run, batch 128, no augmentation, inputs normalised with the training set's
// mean and standard deviation, float32. Per model, DIR/<pde|baseline>/ gets metrics.jsonl,
// curves.svg and model.cbor; DIR/curves.svg puts both models' test accuracy and training
// loss side by side. After training, each model's weights are loaded into a freshly built
// model, whose test-set predictions must be identical (the exit code is 1 if not).
//
// `symgrad train examples/configs/pde_B_fashion.json` trains config B from its JSON
// description with the same recipe.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/nn.hpp"
#include "pde/pde_resnet.hpp"
#include "report.hpp"

using namespace symgrad;
using namespace symgrad::example;

namespace {

const char* kUsage =
    "usage: pde_resnet_fashion [--config B|G] [--epochs N] [--no-baseline | --only pde|baseline]\n"
    "                          [--threads N] [--seed N]\n"
    "                          [--out DIR] [--json PATH] [--limit-batches N]\n"
    "  --config B|G        B: stride-1 stem, 28x28 stages (143,162 parameters); G: B with a\n"
    "                      stride-2 stem, about 4x cheaper (default G)\n"
    "  --epochs N          epochs of the one-cycle schedule (default 1)\n"
    "  --no-baseline       skip the ReLU ResNet (BasicBlocks) of the same layout\n"
    "  --only pde|baseline train only that model (e.g. two single-thread processes side by side)\n"
    "  --threads N         worker threads (default 2)\n"
    "  --seed N            initialisation and shuffling seed (default 1)\n"
    "  --out DIR           output directory (default runs/pde_resnet_fashion)\n"
    "  --json PATH         the printed numbers as JSON (default DIR/results.json)\n"
    "  --limit-batches N   only N training and N test batches per epoch (smoke tests)\n"
    "The full result: --config B --epochs 10 (and --epochs 3 for the 3-epoch schedule).\n";

struct Options {
  std::string config = "G";
  std::int64_t epochs = 1;
  bool pde = true;
  bool baseline = true;
  int threads = 2;
  std::uint64_t seed = 1;
  std::string out = "runs/pde_resnet_fashion";
  std::string json_path;  // "" -> out/results.json
  std::int64_t limit_batches = 0;  // 0: every batch
};

// The training recipe of background.md section 1 (its PyTorch 1.13 reference of config B).
struct Recipe {
  std::int64_t batch_size = 128;
  std::int64_t test_batch_size = 100;  // larger batches only cost memory (and page faults)
  double max_lr = 0.1;  // one-cycle peak: from max_lr / 25 up over 30% of the steps, then down
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double mean = 0.2860, std = 0.3530;  // Fashion-MNIST training pixels, in [0, 1]

  nlohmann::json to_json() const {
    return {{"optimizer", "sgd"},      {"momentum", momentum},   {"nesterov", true},
            {"weight_decay", weight_decay}, {"schedule", "onecycle"}, {"max_lr", max_lr},
            {"pct_start", 0.3},         {"div_factor", 25.0},     {"final_div_factor", 1e4},
            {"batch_size", batch_size}, {"test_batch_size", test_batch_size},
            {"mean", mean},             {"std", std},             {"augmentation", "none"},
            {"label_smoothing", 0.0},   {"dtype", "float32"}};
  }
};

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

std::int64_t positive_integer(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1 || value > 1'000'000)
    throw UsageError(flag + " wants a positive integer, got '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--no-baseline") {
      o.baseline = false;
      continue;
    }
    if (i + 1 >= argc) throw UsageError("unknown flag or missing value: " + flag);
    const std::string value = argv[++i];
    if (flag == "--config") o.config = value;
    else if (flag == "--epochs") o.epochs = positive_integer(flag, value);
    else if (flag == "--threads") o.threads = static_cast<int>(positive_integer(flag, value));
    else if (flag == "--seed") o.seed = static_cast<std::uint64_t>(positive_integer(flag, value));
    else if (flag == "--out") o.out = value;
    else if (flag == "--json") o.json_path = value;
    else if (flag == "--limit-batches") o.limit_batches = positive_integer(flag, value);
    else if (flag == "--only") {
      if (value != "pde" && value != "baseline") throw UsageError("--only wants pde or baseline, got '" + value + "'");
      o.pde = value == "pde";
      o.baseline = value == "baseline";
    } else throw UsageError("unknown flag " + flag);
  }
  if (o.config != "B" && o.config != "G") throw UsageError("--config wants B or G, got '" + o.config + "'");
  // OneCycleLR rises over the first 30% of the steps and needs two of them for that.
  if (o.limit_batches > 0 && o.limit_batches * o.epochs < 4)
    throw UsageError("--limit-batches " + std::to_string(o.limit_batches) + " with " + std::to_string(o.epochs) +
                     " epoch(s) is too short for the one-cycle schedule: it needs at least 4 steps in all");
  if (o.json_path.empty()) o.json_path = (std::filesystem::path(o.out) / "results.json").string();
  return o;
}

// The first `count` examples of `data` (all of them if it has fewer).
nn::ImageDataset first_examples(const nn::ImageDataset& data, std::int64_t count) {
  if (count >= data.count) return data;
  nn::ImageDataset head = data;
  head.count = count;
  head.pixels.resize(static_cast<std::size_t>(count * data.channels * data.height * data.width));
  head.labels.resize(static_cast<std::size_t>(count));
  return head;
}

nn::DataLoader make_loader(nn::ImageDataset data, const Recipe& recipe, const Options& options, bool training) {
  nn::LoaderOptions o;
  o.batch_size = training ? recipe.batch_size : recipe.test_batch_size;
  o.shuffle = training;
  o.seed = options.seed;
  o.mean = recipe.mean;
  o.std = recipe.std;
  if (options.limit_batches > 0) data = first_examples(data, options.limit_batches * o.batch_size);
  return nn::DataLoader(std::make_shared<const nn::ImageDataset>(std::move(data)), o);
}

// Runs both models over the test set in eval mode and compares their logits.
ReloadCheck compare_predictions(nn::Module& trained, nn::Module& reloaded, const nn::DataLoader& test) {
  trained.eval();
  reloaded.eval();
  NoGradGuard no_grad;
  ReloadCheck check;
  for (std::int64_t index = 0; index < test.num_batches(); ++index) {
    const nn::Batch batch = test.batch(0, index);
    const Tensor a = trained(batch.images), b = reloaded(batch.images);
    const std::vector<std::int64_t> predicted_a = nn::argmax_rows(a), predicted_b = nn::argmax_rows(b);
    for (std::size_t i = 0; i < predicted_a.size(); ++i) check.differing_predictions += predicted_a[i] != predicted_b[i];
    const std::vector<double> logits_a = a.to_vector(), logits_b = b.to_vector();
    for (std::size_t i = 0; i < logits_a.size(); ++i)
      check.max_abs_logit_difference = std::max(check.max_abs_logit_difference, std::abs(logits_a[i] - logits_b[i]));
    check.examples += static_cast<std::int64_t>(batch.labels.size());
  }
  return check;
}

// Trains one model with the recipe, saves it, reloads it into a fresh model and checks
// that the predictions survive. `on_epoch` sees the partial result after every epoch.
TrainedModel train_model(const std::string& name, const std::string& label, const pde::PDEResNetConfig& config,
                         const Options& options, const Recipe& recipe, const nn::DataLoader& train,
                         const nn::DataLoader& test, const std::function<void(const TrainedModel&)>& on_epoch) {
  const std::filesystem::path dir = std::filesystem::path(options.out) / name;
  std::filesystem::create_directories(dir);
  nn::manual_seed(options.seed);  // the constructor draws every initial weight from it
  pde::PDEResNet model(config);

  TrainedModel result;
  result.name = name;
  result.label = label;
  result.block = config.block == pde::BlockKind::quasi_linear ? "quasi_linear" : "basic";
  result.parameters = model.num_parameters();
  result.macs_per_image = model.forward_macs(28, 28);
  result.steps_per_epoch = train.num_batches();
  std::printf("\n%s: %s\n  %lld parameters, %.1fM multiply-accumulates per image\n", label.c_str(),
              model.extra_repr().c_str(), static_cast<long long>(result.parameters),
              static_cast<double>(result.macs_per_image) / 1e6);
  std::fflush(stdout);

  nn::SGD optimizer(model.parameters(), {.lr = recipe.max_lr,
                                         .momentum = recipe.momentum,
                                         .weight_decay = recipe.weight_decay,
                                         .nesterov = true});
  const nn::OneCycleLR schedule(recipe.max_lr, options.epochs * train.num_batches());

  nn::FitOptions fit_options;
  fit_options.epochs = options.epochs;
  fit_options.log_path = (dir / "metrics.jsonl").string();
  fit_options.log_every_steps = std::max<std::int64_t>(1, train.num_batches() / 50);  // ~50 points per epoch
  fit_options.svg_path = (dir / "curves.svg").string();
  fit_options.on_epoch_end = [&](const nn::EpochMetrics& m) {
    result.history.push_back(m);
    result.steps = read_step_metrics(fit_options.log_path);
    on_epoch(result);
  };
  nn::fit(model, optimizer, &schedule, train, &test, fit_options);

  const std::string weights = (dir / "model.cbor").string();
  nn::save_state(model, weights,
                 {{"model", label}, {"epochs", options.epochs}, {"test_acc", result.history.back().test_acc}});
  // A different seed, so that a weight the file failed to restore would show.
  nn::manual_seed(options.seed + 1);
  pde::PDEResNet reloaded(config);
  nn::load_state(reloaded, weights);
  result.reload = compare_predictions(model, reloaded, test);
  result.reload.weights_path = weights;
  const std::string verdict = result.reload.identical()
                                  ? "identical predictions"
                                  : std::to_string(result.reload.differing_predictions) + " predictions differ";
  std::printf("%s: saved %s and loaded it into a fresh model: %s on %lld test images (max |logit difference| %g)\n",
              label.c_str(), weights.c_str(), verdict.c_str(), static_cast<long long>(result.reload.examples),
              result.reload.max_abs_logit_difference);
  return result;
}

int run(const Options& options) {
  set_num_threads(options.threads);
  std::filesystem::create_directories(options.out);
  const Recipe recipe;
  const nn::DataLoader train = make_loader(nn::load_fashion_mnist(nn::Split::train), recipe, options, true);
  const nn::DataLoader test = make_loader(nn::load_fashion_mnist(nn::Split::test), recipe, options, false);
  std::printf("Fashion-MNIST: %lld training images in %lld batches of %lld, %lld test images; %d threads%s\n",
              static_cast<long long>(train.num_examples()), static_cast<long long>(train.num_batches()),
              static_cast<long long>(recipe.batch_size), static_cast<long long>(test.num_examples()),
              options.threads, options.limit_batches > 0 ? " (--limit-batches: a smoke test)" : "");

  const pde::PDEResNetConfig config = pde::preset(options.config);
  struct Entry {
    std::string name, label;
    pde::PDEResNetConfig config;
  };
  std::vector<Entry> entries;
  if (options.pde) entries.push_back({"pde", "PDEResNet-" + options.config, config});
  if (options.baseline) entries.push_back({"baseline", "ReLU ResNet-" + options.config, pde::baseline_of(config)});

  const std::string curves = (std::filesystem::path(options.out) / "curves.svg").string();
  std::vector<TrainedModel> done;
  for (const Entry& entry : entries) {
    // Redraw the shared chart after every epoch, so a long run can be watched.
    const auto redraw = [&](const TrainedModel& partial) {
      std::vector<TrainedModel> models = done;
      models.push_back(partial);
      write_curves(curves, models);
    };
    done.push_back(train_model(entry.name, entry.label, entry.config, options, recipe, train, test, redraw));
  }
  write_curves(curves, done);

  const nlohmann::json run_info = {{"config", options.config},
                                   {"epochs", options.epochs},
                                   {"threads", options.threads},
                                   {"seed", options.seed},
                                   {"limit_batches", options.limit_batches},
                                   {"train_examples", train.num_examples()},
                                   {"test_examples", test.num_examples()},
                                   {"out", options.out},
                                   {"recipe", recipe.to_json()}};
  write_json(options.json_path, results_json(run_info, done));
  std::printf("\n%s\nwrote %s/curves.svg and %s\n", results_table(done).c_str(), options.out.c_str(),
              options.json_path.c_str());

  for (const TrainedModel& model : done)
    if (!model.reload.identical()) {
      std::fprintf(stderr, "pde_resnet_fashion: %s: the reloaded model predicts differently\n", model.label.c_str());
      return 1;
    }
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
    std::fprintf(stderr, "pde_resnet_fashion: %s\n\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pde_resnet_fashion: %s\n", e.what());
    return 1;
  }
}
