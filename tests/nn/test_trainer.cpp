// The training loop (fit / evaluate / checkpoint and resume) on a tiny synthetic
// dataset: learning, determinism, exact resume and reload.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/batchnorm.hpp"
#include "nn/layers/flatten.hpp"
#include "nn/layers/linear.hpp"
#include "nn/optim/schedule.hpp"
#include "nn/optim/sgd.hpp"
#include "nn/serialize.hpp"
#include "nn/train/trainer.hpp"
#include "support/files.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using symgrad::testing::count;
using symgrad::testing::read_text;
using symgrad::testing::tags_balanced;
using symgrad::testing::temp_dir;


// ---- the training loop ---------------------------------------------------------------

namespace {
// Three classes of 4 x 4 grey images: class c lights up rows c and c + 1, over noise.
// Linearly separable, so a small model should get (nearly) all of them right.
ImageDataset synthetic_images(std::int64_t count, std::uint64_t seed) {
  ImageDataset data;
  data.count = count;
  data.height = data.width = 4;
  data.num_classes = 3;
  Generator gen(seed);
  for (std::int64_t i = 0; i < count; ++i) {
    const auto label = static_cast<std::int64_t>(gen.below(3));
    data.labels.push_back(label);
    for (std::int64_t row = 0; row < 4; ++row)
      for (std::int64_t col = 0; col < 4; ++col) {
        const bool lit = row == label || row == label + 1;
        data.pixels.push_back(static_cast<std::uint8_t>((lit ? 150 : 0) + gen.below(100)));
      }
  }
  return data;
}

struct Setup {
  std::shared_ptr<Sequential> model;
  std::unique_ptr<SGD> optimizer;
};

// Flatten - Linear(16, 12) - BatchNorm1d - ReLU - Linear(12, 3): BatchNorm's running
// statistics make the checkpoint carry buffers, SGD momentum makes it carry optimizer state.
Setup make_setup(std::uint64_t seed, double lr = 0.05) {
  manual_seed(seed);
  Setup s;
  s.model = std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Flatten>(), std::make_shared<Linear>(16, 12), std::make_shared<BatchNorm1d>(12),
      std::make_shared<ReLU>(), std::make_shared<Linear>(12, 3)});
  SGDOptions opts;
  opts.lr = lr;
  opts.momentum = 0.9;
  s.optimizer = std::make_unique<SGD>(s.model->parameters(), opts);
  return s;
}

LoaderOptions loader_options(bool shuffle, std::int64_t batch_size) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = shuffle;
  o.seed = 11;
  o.mean = 0.3;
  o.std = 0.3;
  return o;
}

FitOptions quiet(std::int64_t epochs) {
  FitOptions o;
  o.epochs = epochs;
  o.progress = false;
  return o;
}

std::vector<std::vector<float>> weights(const Module& m) {
  std::vector<std::vector<float>> out;
  for (const auto& [name, t] : m.named_state()) out.push_back(t.values<float>());
  return out;
}

// metrics.jsonl without the wall-clock fields.
std::vector<nlohmann::json> untimed(std::vector<nlohmann::json> lines) {
  for (nlohmann::json& line : lines) {
    line.erase("seconds");
    line.erase("images_per_s");
  }
  return lines;
}
}  // namespace

TEST_CASE("evaluate matches a plain loop over the whole test set and restores the mode") {
  const DataLoader test(synthetic_images(50, 2), loader_options(false, 16));  // batches 16, 16, 16, 2
  Setup s = make_setup(1);
  s.model->train();
  const EvalResult result = evaluate(*s.model, test);
  CHECK(s.model->is_training());
  CHECK(result.examples == 50);

  s.model->eval();
  NoGradGuard no_grad;
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < test.num_batches(); ++i) {
    const Batch b = test.batch(0, i);
    const Tensor logits = (*s.model)(b.images);
    const std::vector<float> z = logits.values<float>();
    for (std::size_t n = 0; n < b.labels.size(); ++n) {
      double top = -1e300, norm = 0.0;
      std::int64_t best = 0;
      for (std::int64_t c = 0; c < 3; ++c) {
        const double v = z[n * 3 + static_cast<std::size_t>(c)];
        if (v > top) top = v, best = c;
      }
      for (std::int64_t c = 0; c < 3; ++c) norm += std::exp(z[n * 3 + static_cast<std::size_t>(c)] - top);
      loss_sum += top + std::log(norm) - z[n * 3 + static_cast<std::size_t>(b.labels[n])];
      correct += best == b.labels[n];
    }
  }
  CHECK(result.loss == Approx(loss_sum / 50).epsilon(1e-5));
  CHECK(result.accuracy == static_cast<double>(correct) / 50);
  const Predictions p = predict(*s.model, test);
  CHECK(p.predicted.size() == 50);
  CHECK(p.labels == test.dataset().labels);
}

TEST_CASE("fit learns a separable problem: loss falls, accuracy is high, files are written") {
  const std::string dir = temp_dir("fit");
  const DataLoader train(synthetic_images(192, 3), loader_options(true, 32));
  const DataLoader test(synthetic_images(96, 4), loader_options(false, 64));
  Setup s = make_setup(5);
  FitOptions opts = quiet(6);
  opts.log_path = dir + "/metrics.jsonl";
  opts.log_every_steps = 2;
  opts.svg_path = dir + "/curves.svg";
  int callbacks = 0;
  opts.on_epoch_end = [&](const EpochMetrics& m) { CHECK(m.epoch == ++callbacks); };
  const CosineLR schedule(0.05, 6 * train.num_batches());
  const std::vector<EpochMetrics> history = fit(*s.model, *s.optimizer, &schedule, train, &test, opts);

  REQUIRE(history.size() == 6);
  CHECK(callbacks == 6);
  CHECK(history.back().train_loss < 0.5 * history.front().train_loss);
  CHECK(history.back().test_acc >= 0.95);
  CHECK(history.back().test_loss < history.front().test_loss);
  CHECK(history.back().lr == Approx(schedule.lr_at(6 * 6 - 1)));  // the rate of the last step
  for (const EpochMetrics& m : history) CHECK(m.seconds > 0.0);
  const std::vector<nlohmann::json> lines = read_json_lines(opts.log_path);
  CHECK(lines.size() == 6 + 6 * 3);  // 6 batches per epoch, a step line every 2
  CHECK(lines[3]["kind"] == "epoch");
  CHECK(epoch_metrics_from_json(lines.back()).test_acc == history.back().test_acc);
  const std::string svg = read_text(opts.svg_path);
  CHECK(tags_balanced(svg));
  CHECK(count(svg, "<path") == 5);  // loss: train, test, per step; accuracy: train, test
  std::filesystem::remove_all(dir);
}

TEST_CASE("fit with the same seeds gives bitwise identical weights") {
  const DataLoader train(synthetic_images(96, 3), loader_options(true, 32));
  Setup a = make_setup(9), b = make_setup(9), c = make_setup(10);
  fit(*a.model, *a.optimizer, nullptr, train, nullptr, quiet(2));
  fit(*b.model, *b.optimizer, nullptr, train, nullptr, quiet(2));
  fit(*c.model, *c.optimizer, nullptr, train, nullptr, quiet(2));
  CHECK(weights(*a.model) == weights(*b.model));
  CHECK(weights(*a.model) != weights(*c.model));
}

TEST_CASE("a run resumed from its checkpoint equals the uninterrupted run") {
  const std::string dir = temp_dir("resume");
  const DataLoader train(synthetic_images(96, 3), loader_options(true, 32));
  const DataLoader test(synthetic_images(40, 4), loader_options(false, 64));
  const std::int64_t total_steps = 4 * train.num_batches();
  const CosineLR schedule(0.05, total_steps);

  Setup whole = make_setup(21);
  FitOptions whole_opts = quiet(4);
  whole_opts.log_path = dir + "/whole.jsonl";
  whole_opts.log_every_steps = 1;
  whole_opts.checkpoint_path = dir + "/whole.cbor";
  const std::vector<EpochMetrics> whole_history = fit(*whole.model, *whole.optimizer, &schedule, train, &test, whole_opts);

  // Two epochs, "interrupted", then a new process: a fresh model (other init) and
  // optimizer, resumed from the checkpoint and run to 4 epochs.
  FitOptions part_opts = quiet(2);
  part_opts.log_path = dir + "/part.jsonl";
  part_opts.log_every_steps = 1;
  part_opts.checkpoint_path = dir + "/part.cbor";
  part_opts.checkpoint_metadata = {{"note", "kept"}};
  {
    Setup first = make_setup(21);
    fit(*first.model, *first.optimizer, &schedule, train, &test, part_opts);
  }
  Setup resumed = make_setup(99);
  part_opts.epochs = 4;
  part_opts.resume = true;
  const std::vector<EpochMetrics> resumed_history = fit(*resumed.model, *resumed.optimizer, &schedule, train, &test, part_opts);

  CHECK(weights(*resumed.model) == weights(*whole.model));
  REQUIRE(resumed_history.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(resumed_history[i].train_loss == whole_history[i].train_loss);
    CHECK(resumed_history[i].test_acc == whole_history[i].test_acc);
    CHECK(resumed_history[i].lr == whole_history[i].lr);
  }
  CHECK(untimed(read_json_lines(part_opts.log_path)) == untimed(read_json_lines(whole_opts.log_path)));
  CHECK(resumed.optimizer->step_count() == whole.optimizer->step_count());

  // The checkpoint also restores into a model by itself, and keeps the caller's metadata.
  Setup loaded = make_setup(7);
  const Checkpoint checkpoint = load_checkpoint(part_opts.checkpoint_path, *loaded.model, *loaded.optimizer);
  CHECK(checkpoint.epoch == 4);
  CHECK(checkpoint.global_step == total_steps);
  CHECK(checkpoint.history.size() == 4);
  CHECK(checkpoint.user["note"] == "kept");
  CHECK(weights(*loaded.model) == weights(*whole.model));

  // Resuming a finished run does nothing more.
  const std::vector<EpochMetrics> again = fit(*resumed.model, *resumed.optimizer, &schedule, train, &test, part_opts);
  CHECK(again.size() == 4);
  CHECK(weights(*resumed.model) == weights(*whole.model));
  std::filesystem::remove_all(dir);
}

TEST_CASE("load_checkpoint refuses weights-only files and mismatched models, changing nothing") {
  const std::string dir = temp_dir("checkpoint");
  Setup s = make_setup(1);
  save_state(*s.model, dir + "/weights.cbor");
  Setup target = make_setup(2);
  const auto before = weights(*target.model);
  CHECK_THROWS_WITH(load_checkpoint(dir + "/weights.cbor", *target.model, *target.optimizer),
                    Catch::Contains("not a training checkpoint"));
  save_checkpoint(dir + "/checkpoint.cbor", *s.model, *s.optimizer, {});
  manual_seed(3);
  Sequential other{std::make_shared<Flatten>(), std::make_shared<Linear>(16, 5)};
  SGD other_optimizer(other.parameters(), SGDOptions{0.1});
  CHECK_THROWS_WITH(load_checkpoint(dir + "/checkpoint.cbor", other, other_optimizer),
                    Catch::Contains("'1.weight' is float32 [12, 16] in the file but float32 [5, 16] in the model"));
  CHECK(weights(*target.model) == before);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a saved and reloaded model predicts bit for bit the same") {
  const std::string dir = temp_dir("reload");
  const DataLoader train(synthetic_images(96, 3), loader_options(true, 32));
  const DataLoader test(synthetic_images(40, 4), loader_options(false, 40));
  Setup s = make_setup(4);
  fit(*s.model, *s.optimizer, nullptr, train, nullptr, quiet(2));
  save_state(*s.model, dir + "/model.cbor");
  Setup fresh = make_setup(8);
  load_state(*fresh.model, dir + "/model.cbor");
  s.model->eval();
  fresh.model->eval();
  NoGradGuard no_grad;
  const Tensor images = test.batch(0, 0).images;
  CHECK((*s.model)(images).values<float>() == (*fresh.model)(images).values<float>());
  CHECK(evaluate(*s.model, test).loss == evaluate(*fresh.model, test).loss);
  std::filesystem::remove_all(dir);
}

TEST_CASE("fit stops with a clear error when the loss diverges, and checks its options") {
  const DataLoader train(synthetic_images(96, 3), loader_options(true, 32));
  Setup s = make_setup(4, 1e30);
  CHECK_THROWS_WITH(fit(*s.model, *s.optimizer, nullptr, train, nullptr, quiet(3)),
                    Catch::Contains("fit: the training loss is") && Catch::Contains("lower the learning rate"));
  Setup t = make_setup(4);
  CHECK_THROWS_WITH(fit(*t.model, *t.optimizer, nullptr, train, nullptr, quiet(0)), Catch::Contains("epochs must be >= 1"));
  FitOptions resume = quiet(1);
  resume.resume = true;
  CHECK_THROWS_WITH(fit(*t.model, *t.optimizer, nullptr, train, nullptr, resume), Catch::Contains("resume needs a checkpoint_path"));
  // With the gradient norm clipped to 1e-6, three SGD steps (lr 0.05, momentum 0.9)
  // move each parameter by at most 0.05 * 1e-6 * (1 + 1.9 + 2.71) < 3e-7.
  FitOptions clip = quiet(1);
  clip.clip_grad_norm = 1e-6;
  std::vector<std::vector<double>> before;
  for (const Tensor& p : t.model->parameters()) before.push_back(p.to_vector());
  CHECK(fit(*t.model, *t.optimizer, nullptr, train, nullptr, clip).size() == 1);
  double largest_change = 0.0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const std::vector<double> after = t.model->parameters()[i].to_vector();
    for (std::size_t j = 0; j < after.size(); ++j) largest_change = std::max(largest_change, std::abs(after[j] - before[i][j]));
  }
  CHECK(largest_change > 0.0);
  CHECK(largest_change < 3e-7);
  clip.clip_grad_norm = -1.0;
  CHECK_THROWS_WITH(fit(*t.model, *t.optimizer, nullptr, train, nullptr, clip), Catch::Contains("clip_grad_norm must be"));
}
