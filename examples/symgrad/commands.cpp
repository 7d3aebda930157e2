#include "commands.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "config.hpp"
#include "engine/engine.hpp"
#include "nn/architecture.hpp"
#include "nn/data/fashion_mnist.hpp"
#include "nn/init.hpp"
#include "nn/optim/factory.hpp"
#include "nn/serialize.hpp"
#include "nn/train/trainer.hpp"
#include "pde/fold_bn.hpp"
#include "pde/pde_resnet.hpp"
#include "symmetry/audit.hpp"
#include "symmetry/builtin_symmetries.hpp"

namespace symgrad::cli {

namespace {
using nlohmann::json;
using namespace symgrad::nn;

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Runs `build` and prefixes any error with the config and the key it came from, so
// "build_model: layers[3] ..." becomes "config cnn.json: model: build_model: layers[3] ...".
template <class Build>
auto from_config(const std::string& source, const char* key, Build&& build) {
  try {
    return build();
  } catch (const std::exception& e) {
    throw std::invalid_argument("config " + source + ": " + key + ": " + e.what());
  }
}

void apply_threads(RunConfig& c, int override_threads) {
  if (override_threads > 0) c.threads = override_threads;
  if (c.threads > 0) set_num_threads(c.threads);
  c.threads = get_num_threads();  // the resolved config says what was used
}

// The model the config describes, initialised from its seed, in its dtype.
std::shared_ptr<Module> make_model(const RunConfig& c, const std::string& source) {
  manual_seed(c.seed);
  std::shared_ptr<Module> model = from_config(source, "model", [&] { return build_model(c.model); });
  if (model->dtype() != c.dtype) model->to(c.dtype);
  return model;
}

// One example of the dataset's shape through the model, in eval mode, without a
// graph: catches a wrong Linear size before any data is loaded.
std::string shape_check(Module& model, const RunConfig& c, const std::string& source) {
  const Shape input{1, 1, 28, 28};
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  Shape output;
  try {
    output = model(zeros(input, c.dtype)).shape();
  } catch (const std::exception& e) {
    model.train(was_training);
    throw std::invalid_argument("config " + source + ": model: an input " + shape_text(input) +
                                " (one " + c.data.dataset + " image) does not go through: " + e.what());
  }
  model.train(was_training);
  return "input " + shape_text(input) + " -> output " + shape_text(output);
}

std::shared_ptr<const ImageDataset> load_split(const RunConfig& c, Split split) {
  return std::make_shared<const ImageDataset>(load_fashion_mnist(split, c.data.dir));
}

DataLoader make_loader(std::shared_ptr<const ImageDataset> data, const RunConfig& c, bool training) {
  LoaderOptions o;
  o.batch_size = training ? c.data.batch_size : c.data.test_batch_size;
  o.shuffle = training;
  o.seed = c.seed;
  o.mean = c.data.mean;
  o.std = c.data.std;
  o.crop_padding = training ? c.data.crop_padding : 0;
  o.horizontal_flip = training && c.data.horizontal_flip;
  o.dtype = c.dtype;
  return DataLoader(std::move(data), o);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::out | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write '" + path + "'");
}

// A resumed run must continue the run it resumes: everything that shapes the training
// has to match the checkpoint's config (epochs may grow, threads and out_dir may change).
void check_resumable(const std::string& checkpoint_path, const json& config) {
  const Archive archive = load_archive(checkpoint_path);
  const json stored = archive.metadata.value("user", json()).value("config", json());
  if (!stored.is_object()) return;
  for (const char* key : {"model", "optimizer", "schedule", "data", "seed", "dtype", "label_smoothing",
                          "clip_grad_norm"})
    if (stored.value(key, json()) != config.value(key, json()))
      throw std::invalid_argument("--resume: \"" + std::string(key) + "\" in the config differs from the run in " +
                                  checkpoint_path + " (was " + stored.value(key, json()).dump() + ")");
}

void print_confusion(const Predictions& p, const std::vector<std::string>& names, std::int64_t classes) {
  std::vector<std::vector<std::int64_t>> matrix(static_cast<std::size_t>(classes),
                                                std::vector<std::int64_t>(static_cast<std::size_t>(classes), 0));
  for (std::size_t i = 0; i < p.labels.size(); ++i)
    matrix[static_cast<std::size_t>(p.labels[i])][static_cast<std::size_t>(p.predicted[i])] += 1;
  auto name = [&](std::int64_t k) {
    return k < static_cast<std::int64_t>(names.size()) ? names[static_cast<std::size_t>(k)] : std::to_string(k);
  };
  std::printf("\nper class (rows: true class; most frequent wrong prediction):\n");
  for (std::int64_t t = 0; t < classes; ++t) {
    const auto& row = matrix[static_cast<std::size_t>(t)];
    std::int64_t total = 0, worst = -1;
    for (std::int64_t k = 0; k < classes; ++k) {
      total += row[static_cast<std::size_t>(k)];
      if (k != t && (worst < 0 || row[static_cast<std::size_t>(k)] > row[static_cast<std::size_t>(worst)])) worst = k;
    }
    const double acc = total ? 100.0 * static_cast<double>(row[static_cast<std::size_t>(t)]) / static_cast<double>(total) : 0.0;
    std::printf("  %-12s %6.2f%%  (%lld of %lld)", name(t).c_str(), acc,
                static_cast<long long>(row[static_cast<std::size_t>(t)]), static_cast<long long>(total));
    if (worst >= 0 && row[static_cast<std::size_t>(worst)] > 0)
      std::printf("   mistaken for %s %lld times", name(worst).c_str(),
                  static_cast<long long>(row[static_cast<std::size_t>(worst)]));
    std::printf("\n");
  }
  std::printf("\nconfusion matrix (rows: true, columns: predicted):\n      ");
  for (std::int64_t k = 0; k < classes; ++k) std::printf("%6lld", static_cast<long long>(k));
  std::printf("\n");
  for (std::int64_t t = 0; t < classes; ++t) {
    std::printf("  %2lld  ", static_cast<long long>(t));
    for (std::int64_t k = 0; k < classes; ++k)
      std::printf("%6lld", static_cast<long long>(matrix[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)]));
    std::printf("   %s\n", name(t).c_str());
  }
}
}  // namespace

int run_summary(const std::string& config_path) {
  RunConfig c = load_config(config_path);
  std::shared_ptr<Module> model = make_model(c, config_path);
  std::cout << model->summary() << shape_check(*model, c, config_path) << "\n";
  // A PDE ResNet also knows its cost: convolutions dominate, and their count is what
  // the stem's stride (config B vs G) changes.
  if (const auto* pde_model = dynamic_cast<const pde::PDEResNet*>(model.get()))
    std::printf("forward pass: %.2fM multiply-accumulates per 28x28 image\n",
                static_cast<double>(pde_model->forward_macs(28, 28)) / 1e6);
  return 0;
}

int run_train(const TrainArgs& args) {
  RunConfig c = load_config(args.config_path);
  if (!args.out_dir.empty()) c.out_dir = args.out_dir;
  if (args.epochs > 0) c.epochs = args.epochs;
  apply_threads(c, args.threads);
  const json resolved = to_json(c);
  const std::filesystem::path out(c.out_dir);
  const std::string checkpoint_path = (out / "checkpoint.cbor").string();
  if (args.resume && std::filesystem::exists(checkpoint_path)) check_resumable(checkpoint_path, resolved);

  // Everything the config can get wrong is checked before the summary is printed.
  std::shared_ptr<Module> model = make_model(c, args.config_path);
  const std::string summary = model->summary() + shape_check(*model, c, args.config_path) + "\n";
  std::unique_ptr<Optimizer> optimizer =
      from_config(args.config_path, "optimizer", [&] { return make_optimizer(c.optimizer, model->parameters()); });
  const auto train_data = load_split(c, Split::train);
  const auto test_data = load_split(c, Split::test);
  const DataLoader train = make_loader(train_data, c, true);
  const DataLoader test = make_loader(test_data, c, false);
  const std::int64_t total_steps = c.epochs * train.num_batches();
  std::unique_ptr<LRSchedule> schedule = from_config(
      args.config_path, "schedule", [&] { return make_schedule(c.schedule, optimizer->lr(), total_steps); });
  std::cout << summary << std::flush;
  std::printf("data: %s, %lld training images in %lld batches of %lld, %lld test images; %d threads; %s\n",
              c.data.dataset.c_str(), static_cast<long long>(train.num_examples()),
              static_cast<long long>(train.num_batches()), static_cast<long long>(c.data.batch_size),
              static_cast<long long>(test.num_examples()), c.threads, dtype_name(c.dtype));
  std::fflush(stdout);

  std::filesystem::create_directories(out);
  write_text((out / "config.json").string(), resolved.dump(2) + "\n");
  write_text((out / "summary.txt").string(), summary);

  FitOptions fit_options;
  fit_options.epochs = c.epochs;
  fit_options.log_path = (out / "metrics.jsonl").string();
  fit_options.log_every_steps = c.log_every_steps;
  fit_options.svg_path = (out / "curves.svg").string();
  fit_options.checkpoint_path = checkpoint_path;
  fit_options.resume = args.resume;
  fit_options.progress = !args.quiet;
  if (c.clip_grad_norm > 0.0) fit_options.clip_grad_norm = c.clip_grad_norm;
  fit_options.loss.label_smoothing = c.label_smoothing;
  fit_options.checkpoint_metadata = {{"config", resolved}};
  const std::vector<EpochMetrics> history = fit(*model, *optimizer, schedule.get(), train, &test, fit_options);

  const EpochMetrics& last = history.back();
  const std::string model_path = (out / "model.cbor").string();
  save_state(*model, model_path,
             {{"config", resolved}, {"epochs", last.epoch}, {"test_loss", last.test_loss}, {"test_acc", last.test_acc}});
  double seconds = 0.0;
  for (const EpochMetrics& m : history) seconds += m.seconds;
  std::printf("test accuracy %.2f%% (loss %.4f) after %lld epochs, %.1f s per epoch; wrote %s\n",
              100.0 * last.test_acc, last.test_loss, static_cast<long long>(last.epoch),
              seconds / static_cast<double>(history.size()), out.string().c_str());
  return 0;
}

int run_eval(const std::string& model_path, const std::string& config_path, int threads) {
  RunConfig c = load_config(config_path);
  apply_threads(c, threads);
  std::shared_ptr<Module> model = make_model(c, config_path);
  load_state(*model, model_path);
  const auto test_data = load_split(c, Split::test);
  const DataLoader test = make_loader(test_data, c, false);
  const EvalResult result = evaluate(*model, test);
  const Predictions predictions = predict(*model, test);
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < predictions.labels.size(); ++i) correct += predictions.predicted[i] == predictions.labels[i];
  std::printf("%s on the %s test set: loss %.4f, accuracy %.2f%% (%lld of %lld)\n", model_path.c_str(),
              c.data.dataset.c_str(), result.loss, 100.0 * result.accuracy, static_cast<long long>(correct),
              static_cast<long long>(result.examples));
  print_confusion(predictions, test_data->class_names, test_data->num_classes);
  return 0;
}

int run_audit(const AuditArgs& args) {
  RunConfig c = load_config(args.config_path);
  apply_threads(c, args.threads);
  std::shared_ptr<Module> model = make_model(c, args.config_path);
  load_state(*model, args.model_path);
  std::string prepared = "as saved";
  if (auto pde_model = std::dynamic_pointer_cast<pde::PDEResNet>(model); pde_model && args.fold) {
    pde_model->eval();
    model = pde::fold_batch_norms(*pde_model);
    prepared = "BatchNorms folded into the convolutions";
  }
  const DType dtype = args.float64 ? DType::f64 : DType::f32;
  model->to(dtype);

  const auto test_data = load_split(c, Split::test);
  RunConfig eval_config = c;
  eval_config.data.test_batch_size = args.batch;
  const Batch batch = make_loader(test_data, eval_config, false).batch(0, 0);
  const Tensor x = to_dtype(batch.images, dtype);
  const std::vector<std::int64_t> labels = batch.labels;
  const symmetry::LossFn loss = [&](const Tensor& logits) { return cross_entropy(logits, labels); };

  symmetry::AuditOptions options;
  options.condition_number = args.condition_number;
  options.seed = c.seed;
  std::vector<symmetry::SymmetryAudit> audits;
  for (const symmetry::WeightSymmetry& s : symmetry::symmetries_of(*model)) {
    // Each symmetry in the mode it is a symmetry of: BatchNorm scale with batch
    // statistics, everything else with fixed ones.
    model->train(s.mode == symmetry::ModeRequirement::train);
    audits.push_back(symmetry::audit_symmetry(*model, s, x, loss, options));
  }
  model->eval();

  std::printf("symmetry audit of %s (%s, %s), %s on %lld test images, group elements of condition number %g\n\n",
              args.model_path.c_str(), args.config_path.c_str(), prepared.c_str(), dtype_name(dtype),
              static_cast<long long>(x.size(0)), args.condition_number);
  if (audits.empty()) std::printf("no symmetries found in this model\n");
  else std::printf("%s", symmetry::format_audit_table(audits).c_str());
  for (const symmetry::SymmetryAudit& a : audits)
    for (const std::string& note : a.notes) std::printf("  note (%s): %s\n", a.symmetry.name.c_str(), note.c_str());

  json report = {{"model", args.model_path}, {"config", args.config_path}, {"prepared", prepared},
                 {"dtype", dtype_name(dtype)}, {"images", x.size(0)},
                 {"condition_number", args.condition_number}, {"audits", json::array()}};
  for (const symmetry::SymmetryAudit& a : audits) report["audits"].push_back(a.to_json());
  const std::string json_path = args.json_path.empty()
                                    ? (std::filesystem::path(args.model_path).parent_path() / "audit.json").string()
                                    : args.json_path;
  std::ofstream(json_path) << report.dump(2) << "\n";
  std::printf("\nwrote %s\n", json_path.c_str());
  const bool all_hold = std::all_of(audits.begin(), audits.end(), [](const auto& a) { return a.holds; });
  return all_hold ? 0 : 1;
}

}  // namespace symgrad::cli
