#include "nn/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>

#include "nn/optim/clip.hpp"
#include "nn/serialize.hpp"

namespace symgrad::nn {

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Puts a module back in the train/eval mode it had, however the scope is left.
class ModeRestorer {
 public:
  explicit ModeRestorer(Module& m) : module_(m), was_training_(m.is_training()) {}
  ~ModeRestorer() { module_.train(was_training_); }
  ModeRestorer(const ModeRestorer&) = delete;
  ModeRestorer& operator=(const ModeRestorer&) = delete;

 private:
  Module& module_;
  bool was_training_;
};

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// "epoch 2/5  train loss 0.4123 acc 85.2%  test loss 0.3812 acc 86.4%  lr 0.05  14.2 s  4231 img/s"
std::string epoch_summary(const EpochMetrics& m, std::int64_t epochs) {
  char text[256];
  std::snprintf(text, sizeof text, "epoch %lld/%lld  train loss %.4f acc %.2f%%", static_cast<long long>(m.epoch),
                static_cast<long long>(epochs), m.train_loss, 100.0 * m.train_acc);
  std::string line = text;
  if (!std::isnan(m.test_loss)) {
    std::snprintf(text, sizeof text, "  test loss %.4f acc %.2f%%", m.test_loss, 100.0 * m.test_acc);
    line += text;
  }
  std::snprintf(text, sizeof text, "  lr %.4g  %.1f s  %.0f img/s", m.lr, m.seconds, m.images_per_s);
  return line + text;
}
}  // namespace

// ---- evaluation ----------------------------------------------------------------------

EvalResult evaluate(Module& model, const DataLoader& loader, std::int64_t epoch) {
  ModeRestorer restore(model);
  model.eval();
  NoGradGuard no_grad;
  RunningMean loss;
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < loader.num_batches(); ++i) {
    const Batch batch = loader.batch(epoch, i);
    const Tensor logits = model(batch.images);
    const auto size = static_cast<std::int64_t>(batch.labels.size());
    loss.add(cross_entropy(logits, batch.labels).item(), size);
    correct += count_correct(logits, batch.labels);
  }
  EvalResult result;
  result.examples = loss.count();
  result.loss = loss.mean();
  result.accuracy = result.examples > 0 ? static_cast<double>(correct) / static_cast<double>(result.examples) : kNaN;
  return result;
}

Predictions predict(Module& model, const DataLoader& loader, std::int64_t epoch) {
  ModeRestorer restore(model);
  model.eval();
  NoGradGuard no_grad;
  Predictions out;
  for (std::int64_t i = 0; i < loader.num_batches(); ++i) {
    const Batch batch = loader.batch(epoch, i);
    const std::vector<std::int64_t> predicted = argmax_rows(model(batch.images));
    out.predicted.insert(out.predicted.end(), predicted.begin(), predicted.end());
    out.labels.insert(out.labels.end(), batch.labels.begin(), batch.labels.end());
  }
  return out;
}

// ---- checkpoints ---------------------------------------------------------------------

namespace {
constexpr const char* kCheckpointKind = "symgrad.checkpoint";
const std::string kModelPrefix = "model.", kOptimizerPrefix = "optimizer.";
}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                     const Checkpoint& checkpoint) {
  const OptimizerState state = optimizer.state_dict();
  nlohmann::json history = nlohmann::json::array();
  for (const EpochMetrics& m : checkpoint.history) history.push_back(to_json(m));
  Archive archive;
  archive.metadata = {{"kind", kCheckpointKind},       {"epoch", checkpoint.epoch},
                      {"global_step", checkpoint.global_step}, {"optimizer", state.scalars},
                      {"history", history},             {"user", checkpoint.user}};
  for (const auto& [name, t] : model.named_state()) archive.tensors.emplace_back(kModelPrefix + name, t);
  for (const auto& [name, t] : state.tensors) archive.tensors.emplace_back(kOptimizerPrefix + name, t);
  save_archive(path, archive);
}

Checkpoint load_checkpoint(const std::string& path, Module& model, Optimizer& optimizer) {
  const std::string who = "load_checkpoint('" + path + "')";
  Archive archive = load_archive(path);
  const nlohmann::json& meta = archive.metadata;
  if (!meta.is_object() || meta.value("kind", "") != kCheckpointKind)
    throw std::runtime_error(who + ": not a training checkpoint (metadata \"kind\" is not \"" +
                             std::string(kCheckpointKind) + "\"); a file saved with save_state() holds weights only");
  for (const char* key : {"epoch", "global_step", "optimizer", "history"})
    if (!meta.contains(key)) throw std::runtime_error(who + ": metadata has no \"" + std::string(key) + "\"");

  // Split the tensors by owner.
  std::map<std::string, Tensor> model_tensors;
  OptimizerState optimizer_state;
  optimizer_state.scalars = meta.at("optimizer");
  for (auto& [name, t] : archive.tensors) {
    if (name.rfind(kModelPrefix, 0) == 0)
      model_tensors.emplace(name.substr(kModelPrefix.size()), t);
    else if (name.rfind(kOptimizerPrefix, 0) == 0)
      optimizer_state.tensors.emplace_back(name.substr(kOptimizerPrefix.size()), t);
    else
      throw std::runtime_error(who + ": tensor '" + name + "' belongs to neither \"model.\" nor \"optimizer.\"");
  }

  // Check every model tensor before anything changes.
  NamedTensors state = model.named_state();
  for (const auto& [name, t] : state) {
    const auto found = model_tensors.find(name);
    if (found == model_tensors.end()) throw std::runtime_error(who + ": no tensor for the model's '" + name + "'");
    const Tensor& saved = found->second;
    if (saved.shape() != t.shape() || saved.dtype() != t.dtype())
      throw std::runtime_error(who + ": '" + name + "' is " + dtype_name(saved.dtype()) + " " +
                               shape_text(saved.shape()) + " in the file but " + dtype_name(t.dtype()) + " " +
                               shape_text(t.shape()) + " in the model");
  }
  if (model_tensors.size() != state.size()) {
    for (const auto& [name, t] : model_tensors) {
      bool known = false;
      for (const auto& entry : state) known = known || entry.first == name;
      if (!known) throw std::runtime_error(who + ": the model has no tensor named '" + name + "'");
    }
  }
  Checkpoint checkpoint;
  try {
    checkpoint.epoch = meta.at("epoch").get<std::int64_t>();
    checkpoint.global_step = meta.at("global_step").get<std::int64_t>();
    for (const nlohmann::json& m : meta.at("history")) checkpoint.history.push_back(epoch_metrics_from_json(m));
  } catch (const std::exception& e) {
    throw std::runtime_error(who + ": bad metadata: " + e.what());
  }
  checkpoint.user = meta.value("user", nlohmann::json());

  // The optimizer checks its whole state before it changes anything; only then are
  // the model's tensors overwritten, so a failure leaves both untouched.
  optimizer.load_state_dict(optimizer_state);
  NoGradGuard no_grad;
  for (auto& [name, t] : state) copy_(t, model_tensors.at(name));
  return checkpoint;
}

// ---- charts --------------------------------------------------------------------------

std::vector<Chart> training_charts(const std::vector<EpochMetrics>& history, const std::vector<StepMetrics>& steps,
                                   std::int64_t steps_per_epoch) {
  Series train_loss{"train", {}, {}}, test_loss{"test", {}, {}};
  Series train_acc{"train", {}, {}}, test_acc{"test", {}, {}};
  for (const EpochMetrics& m : history) {
    const auto x = static_cast<double>(m.epoch);
    for (Series* s : {&train_loss, &test_loss, &train_acc, &test_acc}) s->x.push_back(x);
    train_loss.y.push_back(m.train_loss);
    test_loss.y.push_back(m.test_loss);
    train_acc.y.push_back(100.0 * m.train_acc);
    test_acc.y.push_back(100.0 * m.test_acc);
  }
  Chart loss{"Loss", "epoch", "cross-entropy", {train_loss, test_loss}, false};
  if (!steps.empty() && steps_per_epoch > 0) {
    Series running{"train (running, per step)", {}, {}};
    for (const StepMetrics& s : steps) {
      running.x.push_back(static_cast<double>(s.epoch - 1) +
                          static_cast<double>(s.step) / static_cast<double>(steps_per_epoch));
      running.y.push_back(s.loss);
    }
    loss.series.push_back(running);
  }
  Chart accuracy{"Accuracy", "epoch", "accuracy (%)", {train_acc, test_acc}, false};
  return {loss, accuracy};
}

// ---- the loop --------------------------------------------------------------------------

std::vector<EpochMetrics> fit(Module& model, Optimizer& optimizer, const LRSchedule* schedule,
                              const DataLoader& train, const DataLoader* test, const FitOptions& options) {
  if (options.epochs < 1)
    throw std::invalid_argument("fit: epochs must be >= 1, got " + std::to_string(options.epochs));
  if (train.num_batches() < 1) throw std::invalid_argument("fit: the training loader has no batches");
  if (options.resume && options.checkpoint_path.empty())
    throw std::invalid_argument("fit: resume needs a checkpoint_path");
  if (options.clip_grad_norm && !(*options.clip_grad_norm > 0.0 && std::isfinite(*options.clip_grad_norm)))
    throw std::invalid_argument("fit: clip_grad_norm must be finite and > 0, got " +
                                std::to_string(*options.clip_grad_norm));
  const std::int64_t steps_per_epoch = train.num_batches();

  std::vector<EpochMetrics> history;
  std::vector<StepMetrics> step_history;
  std::int64_t completed = 0, global_step = 0;
  if (options.resume && std::filesystem::exists(options.checkpoint_path)) {
    Checkpoint checkpoint = load_checkpoint(options.checkpoint_path, model, optimizer);
    history = std::move(checkpoint.history);
    completed = checkpoint.epoch;
    global_step = checkpoint.global_step;
  }

  std::optional<MetricsLog> log;
  if (!options.log_path.empty()) {
    if (completed > 0) {
      log.emplace(MetricsLog::resume(options.log_path, completed));
      for (const nlohmann::json& line : read_json_lines(options.log_path))
        if (line.value("kind", "") == "step")
          step_history.push_back({line.at("epoch").get<std::int64_t>(), line.at("step").get<std::int64_t>(),
                                  line.at("global_step").get<std::int64_t>(), line.value("loss", kNaN),
                                  line.value("acc", kNaN), line.value("lr", kNaN)});
    } else {
      log.emplace(options.log_path);
    }
  }

  ProgressReporter::Options progress_options = options.progress_options;
  if (!options.progress) progress_options.mode = ProgressReporter::Mode::off;
  ProgressReporter progress(options.epochs, steps_per_epoch, progress_options);
  if (completed > 0)
    progress.message("resumed from " + options.checkpoint_path + " after epoch " + std::to_string(completed));

  for (std::int64_t epoch = completed + 1; epoch <= options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    model.train();
    progress.start_epoch(epoch);
    RunningMean loss_mean;
    std::int64_t correct = 0;
    for (std::int64_t index = 0; index < steps_per_epoch; ++index) {
      const Batch batch = train.batch(epoch - 1, index);
      if (schedule) optimizer.set_lr(schedule->lr_at(global_step));
      optimizer.zero_grad();
      const Tensor logits = model(batch.images);
      const Tensor loss = cross_entropy(logits, batch.labels, options.loss);
      const double value = loss.item();
      if (!std::isfinite(value)) {
        char text[160];
        std::snprintf(text, sizeof text, "fit: the training loss is %g at epoch %lld, step %lld (lr %g)", value,
                      static_cast<long long>(epoch), static_cast<long long>(index + 1), optimizer.lr());
        throw std::runtime_error(std::string(text) + "; lower the learning rate or set clip_grad_norm");
      }
      backward(loss);
      if (options.clip_grad_norm) clip_grad_norm(optimizer.params(), *options.clip_grad_norm);
      optimizer.step();
      ++global_step;

      const auto size = static_cast<std::int64_t>(batch.labels.size());
      loss_mean.add(value, size);
      correct += count_correct(logits, batch.labels);
      const double accuracy = static_cast<double>(correct) / static_cast<double>(loss_mean.count());
      progress.update(index + 1, size, loss_mean.mean(), accuracy);
      if (log && options.log_every_steps > 0 && (index + 1) % options.log_every_steps == 0) {
        const StepMetrics step{epoch, index + 1, global_step, loss_mean.mean(), accuracy, optimizer.lr()};
        log->write(step);
        step_history.push_back(step);
      }
    }
    const double train_seconds = seconds_since(start);

    EpochMetrics m;
    m.epoch = epoch;
    m.train_loss = loss_mean.mean();
    m.train_acc = static_cast<double>(correct) / static_cast<double>(loss_mean.count());
    m.test_loss = m.test_acc = kNaN;
    if (test) {
      const EvalResult result = evaluate(model, *test);
      m.test_loss = result.loss;
      m.test_acc = result.accuracy;
    }
    m.lr = optimizer.lr();
    m.seconds = seconds_since(start);
    m.images_per_s = static_cast<double>(loss_mean.count()) / train_seconds;
    history.push_back(m);

    if (log) log->write(m);
    if (!options.checkpoint_path.empty())
      save_checkpoint(options.checkpoint_path, model, optimizer, {epoch, global_step, history, options.checkpoint_metadata});
    if (!options.svg_path.empty()) write_svg(options.svg_path, training_charts(history, step_history, steps_per_epoch));
    progress.end_epoch(epoch_summary(m, options.epochs));
    if (options.on_epoch_end) options.on_epoch_end(m);
  }
  return history;
}

}  // namespace symgrad::nn
