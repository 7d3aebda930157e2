// Training support: progress text, metrics and their JSON Lines log, the SVG chart
// writer, and the training loop (fit / evaluate / checkpoint and resume) on a tiny
// synthetic dataset.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "nn/init.hpp"
#include "nn/layers/activation.hpp"
#include "nn/layers/batchnorm.hpp"
#include "nn/layers/flatten.hpp"
#include "nn/layers/linear.hpp"
#include "nn/optim/schedule.hpp"
#include "nn/optim/sgd.hpp"
#include "nn/serialize.hpp"
#include "nn/train/metrics.hpp"
#include "nn/train/plot.hpp"
#include "nn/train/progress.hpp"
#include "nn/train/trainer.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// A fresh, empty directory for one test's files.
std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("symgrad_test_train_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Every tag opened is closed in order (<a> ... </a>, or <a/>); comments and the XML
// declaration are skipped. Enough to catch a writer that forgets a closing tag.
bool tags_balanced(const std::string& xml) {
  std::vector<std::string> open;
  for (std::size_t at = xml.find('<'); at != std::string::npos; at = xml.find('<', at + 1)) {
    const std::size_t end = xml.find('>', at);
    if (end == std::string::npos) return false;
    const std::string tag = xml.substr(at + 1, end - at - 1);
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;  // declaration, comment
    if (tag.back() == '/') continue;                                // self-closing
    const bool closing = tag[0] == '/';
    const std::size_t name_start = closing ? 1 : 0;
    const std::string name = tag.substr(name_start, tag.find_first_of(" \t\n", name_start) - name_start);
    if (closing) {
      if (open.empty() || open.back() != name) return false;
      open.pop_back();
    } else {
      open.push_back(name);
    }
  }
  return open.empty();
}

// The d attribute of each <path> element.
std::vector<std::string> path_data(const std::string& svg) {
  std::vector<std::string> out;
  for (std::size_t at = svg.find("<path"); at != std::string::npos; at = svg.find("<path", at + 1)) {
    const std::size_t end = svg.find('>', at);
    const std::size_t d = svg.find(" d=\"", at);
    if (d == std::string::npos || d > end) continue;
    const std::size_t value = d + 4;
    out.push_back(svg.substr(value, svg.find('"', value) - value));
  }
  return out;
}

// The y coordinates of the "M x,y" and "L x,y" commands of a path's d attribute.
std::vector<double> path_y_values(const std::string& d) {
  std::vector<double> ys;
  for (std::size_t at = d.find_first_of("ML"); at != std::string::npos; at = d.find_first_of("ML", at + 1)) {
    const std::size_t comma = d.find(',', at);
    if (comma != std::string::npos) ys.push_back(std::stod(d.substr(comma + 1)));
  }
  return ys;
}
}  // namespace

// ---- progress ------------------------------------------------------------------------

TEST_CASE("format_duration writes m:ss and h:mm:ss and admits what it does not know") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(41) == "0:41");
  CHECK(format_duration(41.6) == "0:42");
  CHECK(format_duration(59.6) == "1:00");
  CHECK(format_duration(754) == "12:34");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(100 * 3600.0) == "100:00:00");
  CHECK(format_duration(-1) == "--:--");
  CHECK(format_duration(kNaN) == "--:--");
  CHECK(format_duration(kInf) == "--:--");
}

TEST_CASE("progress_line shows epoch, step, loss, accuracy, rate and ETA") {
  ProgressSnapshot s;
  s.epoch = 2;
  s.epochs = 5;
  s.step = 312;
  s.steps = 938;
  s.loss = 0.41234;
  s.accuracy = 0.8523;
  s.images_per_second = 1843.4;
  s.epoch_eta_seconds = 41;
  CHECK(progress_line(s) == "epoch 2/5  step 312/938  loss 0.4123  acc 85.2%  1843 img/s  ETA 0:41");
  s.run_eta_seconds = 185;
  CHECK(progress_line(s) == "epoch 2/5  step 312/938  loss 0.4123  acc 85.2%  1843 img/s  ETA 0:41 (run 3:05)");
  s.epoch = 5;  // the last epoch: the run ETA is the epoch ETA, not repeated
  CHECK(progress_line(s) == "epoch 5/5  step 312/938  loss 0.4123  acc 85.2%  1843 img/s  ETA 0:41");
  ProgressSnapshot early;  // before the first timing: no rate, no ETA
  early.loss = kNaN;
  early.accuracy = kNaN;
  CHECK(progress_line(early) == "epoch 1/1  step 0/0  loss nan");
}

TEST_CASE("SmoothedValue starts at its first sample and moves towards new ones") {
  SmoothedValue v(0.5);
  CHECK(v.empty());
  v.add(4.0);
  CHECK(v.value() == 4.0);
  v.add(2.0);
  CHECK(v.value() == 3.0);
  v.add(kNaN);  // ignored
  CHECK(v.value() == 3.0);
}

TEST_CASE("ProgressReporter in log mode writes a line every tenth of an epoch, then the summary") {
  std::ostringstream out;
  double clock = 0.0;
  ProgressReporter::Options opts;
  opts.mode = ProgressReporter::Mode::log;
  opts.out = &out;
  opts.clock = [&] { return clock; };
  ProgressReporter progress(2, 100, opts);
  progress.start_epoch(1);
  for (int step = 1; step <= 100; ++step) {
    clock += 0.5;  // 0.5 s per step of 32 images: 64 img/s
    progress.update(step, 32, 1.0 / step, 0.5);
  }
  progress.end_epoch("epoch 1/2 done");
  const std::string text = out.str();
  CHECK(count(text, "\n") == 10);  // 9 progress lines (10%..90%) + the summary
  CHECK(count(text, "\r") == 0);
  CHECK(text.find("epoch 1/2  step 10/100  loss 0.1000  acc 50.0%  64 img/s  ETA 0:45 (run 1:35)\n") == 0);
  CHECK(text.find("step 90/100") != std::string::npos);
  CHECK(text.substr(text.size() - 15) == "epoch 1/2 done\n");
  CHECK(progress.images_per_second() == Approx(64.0));
}

TEST_CASE("ProgressReporter on a terminal redraws one line and clears it for the summary") {
  std::ostringstream out;
  double clock = 0.0;
  ProgressReporter::Options opts;
  opts.mode = ProgressReporter::Mode::terminal;
  opts.out = &out;
  opts.clock = [&] { return clock; };
  opts.redraw_seconds = 1.0;
  ProgressReporter progress(1, 10, opts);
  progress.start_epoch(1);
  for (int step = 1; step <= 10; ++step) {
    clock += 0.25;  // a redraw every 4 steps, plus the last step
    progress.update(step, 8, 0.5, 0.25);
  }
  progress.end_epoch("summary");
  const std::string text = out.str();
  CHECK(count(text, "\rep") == 4);  // steps 1 (first), 5, 9 and 10 (last)
  CHECK(count(text, "\n") == 1);
  CHECK(text.find("step 10/10") != std::string::npos);
  CHECK(text.substr(text.size() - 8) == "summary\n");
  ProgressReporter::Options off = opts;
  off.mode = ProgressReporter::Mode::off;
  std::ostringstream silent;
  off.out = &silent;
  ProgressReporter quiet(1, 10, off);
  quiet.start_epoch(1);
  quiet.update(1, 8, 0.5, 0.5);
  quiet.end_epoch("x");
  CHECK(silent.str().empty());
}

// ---- metrics -------------------------------------------------------------------------

TEST_CASE("RunningMean weights each value by its count") {
  RunningMean m;
  CHECK(std::isnan(m.mean()));
  m.add(1.0, 3);
  m.add(3.0, 1);
  CHECK(m.mean() == 1.5);
  CHECK(m.count() == 4);
  CHECK_THROWS_WITH(m.add(1.0, -1), Catch::Contains("count -1 < 0"));
}

TEST_CASE("count_correct takes the argmax per row, first maximum on ties, NaN as the maximum") {
  const Tensor logits = tensor({0.1, 0.9, 0.0,   //
                                2.0, 2.0, 1.0,   // tie: the first maximum, class 0
                                0.0, 0.0, 3.0,   //
                                0.0, kNaN, 9.0}, // NaN wins, so class 1
                               {4, 3});
  CHECK(argmax_rows(logits) == std::vector<std::int64_t>{1, 0, 2, 1});
  CHECK(count_correct(logits, {1, 0, 2, 2}) == 3);
  CHECK(count_correct(logits, {0, 1, 0, 0}) == 0);
  CHECK(count_correct(logits.detach(), {1, 0, 2, 1}) == 4);
  const Tensor f64 = tensor({1.0, 2.0, 5.0, 4.0}, {2, 2}, DType::f64);
  CHECK(count_correct(f64, {1, 0}) == 2);
  CHECK_THROWS_WITH(count_correct(logits, {1, 0}), Catch::Contains("[4, 3] has 4 rows but there are 2 labels"));
  CHECK_THROWS_WITH(count_correct(logits, {1, 0, 3, 0}), Catch::Contains("label 3 at index 2 is outside [0, 3)"));
  CHECK_THROWS_WITH(count_correct(tensor({1.0, 2.0}), {0}), Catch::Contains("[N, C]"));
}

TEST_CASE("MetricsLog writes one JSON object per line and resume keeps the completed epochs") {
  const std::string dir = temp_dir("metrics");
  const std::string path = dir + "/metrics.jsonl";
  {
    MetricsLog log(path);
    for (int epoch = 1; epoch <= 3; ++epoch) {
      StepMetrics step;
      step.epoch = epoch;
      step.step = 5;
      step.global_step = 10 * (epoch - 1) + 5;
      step.loss = 1.0 / epoch;
      log.write(step);
      EpochMetrics m;
      m.epoch = epoch;
      m.train_loss = 1.0 / epoch;
      m.train_acc = 0.5;
      m.test_loss = epoch == 2 ? kNaN : 0.25;  // NaN becomes null and reads back as NaN
      m.test_acc = 0.75;
      m.lr = 0.1;
      m.seconds = 2.0;
      m.images_per_s = 100.0;
      log.write(m);
    }
  }
  std::vector<nlohmann::json> lines = read_json_lines(path);
  REQUIRE(lines.size() == 6);
  CHECK(lines[0]["kind"] == "step");
  CHECK(lines[0]["global_step"] == 5);
  CHECK(lines[1]["kind"] == "epoch");
  const EpochMetrics second = epoch_metrics_from_json(lines[3]);
  CHECK(second.epoch == 2);
  CHECK(second.train_loss == 0.5);
  CHECK(std::isnan(second.test_loss));
  CHECK(second.test_acc == 0.75);
  CHECK(second.images_per_s == 100.0);
  CHECK_THROWS_WITH(epoch_metrics_from_json(lines[0]), Catch::Contains("missing key 'train_loss'"));

  {
    std::ofstream torn(path, std::ios::app);
    torn << "{\"kind\": \"ep";  // a line cut short by a crash
  }
  {
    MetricsLog resumed = MetricsLog::resume(path, 2);
    EpochMetrics m;
    m.epoch = 3;
    resumed.write(m);
  }
  lines = read_json_lines(path);
  REQUIRE(lines.size() == 5);
  CHECK(lines[3]["epoch"] == 2);
  CHECK(lines[4]["epoch"] == 3);
  CHECK(lines[4]["train_loss"] == 0.0);
  std::filesystem::remove_all(dir);
}

// ---- SVG charts ----------------------------------------------------------------------

TEST_CASE("nice_ticks covers the range with round steps") {
  const std::vector<double> unit = nice_ticks(0.0, 1.0, 5);
  REQUIRE(unit.size() == 6);
  for (std::size_t i = 0; i < unit.size(); ++i) CHECK(unit[i] == Approx(0.2 * static_cast<double>(i)));
  const std::vector<double> t = nice_ticks(0.13, 0.92, 5);
  CHECK(t.front() <= 0.13);
  CHECK(t.back() >= 0.92);
  CHECK(t[1] - t[0] == Approx(0.2));
  CHECK(nice_ticks(1.0, 10.0, 5) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(nice_ticks(-3.0, 17.0, 4) == std::vector<double>{-5, 0, 5, 10, 15, 20});
  const std::vector<double> constant = nice_ticks(2.0, 2.0, 5);  // widened around the value
  CHECK(constant.front() < 2.0);
  CHECK(constant.back() > 2.0);
  CHECK(nice_ticks(0.0, 0.0).size() >= 2);
  CHECK_THROWS_WITH(nice_ticks(0.0, kInf), Catch::Contains("not finite"));
  CHECK(tick_label(0.4, 0.2) == "0.4");
  CHECK(tick_label(15, 5) == "15");
  CHECK(tick_label(0.05, 0.05) == "0.05");
  CHECK(tick_label(-0.0, 0.1) == "0");
  CHECK(tick_label(0.30000000000000004, 0.1) == "0.3");
  CHECK(tick_label(2e7, 1e7) == "2e+07");
}

TEST_CASE("render_svg draws one path per series, skips NaN and breaks the line there") {
  Chart loss{"loss", "epoch", "cross-entropy", {}, false};
  loss.series.push_back({"train", {1, 2, 3, 4, 5}, {2.0, 1.0, kNaN, 0.5, 0.4}});
  loss.series.push_back({"test <held out>", {1, 2, 3, 4, 5}, {2.1, 1.2, 0.9, kInf, 0.6}});
  Chart acc{"accuracy", "epoch", "%", {}, false};
  acc.series.push_back({"single", {3}, {0.5}});          // one point: a dot
  acc.series.push_back({"constant", {1, 2, 3}, {7, 7, 7}});
  acc.series.push_back({"nothing", {1, 2}, {kNaN, kNaN}});
  const std::string svg = render_svg({loss, acc});

  CHECK(svg.rfind("<?xml", 0) == 0);
  // The checker itself: it must see a missing or misordered closing tag.
  CHECK_FALSE(tags_balanced("<svg><g></svg>"));
  CHECK_FALSE(tags_balanced("<svg><g><text>a</g></text></svg>"));
  CHECK(tags_balanced("<?xml version=\"1.0\"?><svg><rect width=\"1\"/><g></g></svg>"));
  CHECK(tags_balanced(svg));
  CHECK(count(svg, "<svg") == 1);
  CHECK(count(svg, "<g class=\"panel\">") == 2);
  CHECK(count(svg, "<path") == 5);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  CHECK(svg.find("test &lt;held out&gt;") != std::string::npos);  // escaped label in the legend
  const std::vector<std::string> d = path_data(svg);
  REQUIRE(d.size() == 5);
  CHECK(count(d[0], "M") == 2);  // NaN at x = 3 splits the train curve in two
  CHECK(count(d[0], "L") == 2);
  CHECK(count(d[1], "M") == 2);  // inf at x = 4: the last point stands alone
  CHECK(count(d[1], "L") == 2);
  CHECK(count(d[2], "M") == 1);
  CHECK(count(d[3], "L") == 2);
  CHECK(d[4].empty());
  CHECK(count(svg, "<circle") == 2);  // the single point and the lone point after inf
}

TEST_CASE("render_svg maps points inside the plot area and handles log axes") {
  Chart chart{"energy", "t", "E", {{"E", {0.0, 1.0, 2.0}, {1e-3, 1e-1, 10.0}}}, true};
  const std::string svg = render_svg({chart});
  CHECK(tags_balanced(svg));
  const std::vector<std::string> d = path_data(svg);
  REQUIRE(d.size() == 1);
  // Equal steps in log10(y) (1e-3, 1e-1, 10) are equal steps on screen.
  const std::vector<double> ys = path_y_values(d[0]);
  REQUIRE(ys.size() == 3);
  CHECK(ys[0] - ys[1] == Approx(ys[1] - ys[2]).margin(0.02));
  CHECK(ys[0] > ys[2]);  // larger values are higher up (smaller y)
  CHECK(svg.find(">0.001<") != std::string::npos);
  CHECK(svg.find(">10<") != std::string::npos);
  // Non-positive values cannot sit on a log axis: skipped like NaN.
  Chart bad{"x", "t", "E", {{"E", {0, 1, 2}, {-1.0, 0.0, 5.0}}}, true};
  CHECK(count(path_data(render_svg({bad}))[0], "M") == 1);
}

TEST_CASE("write_svg writes atomically and refuses bad input") {
  const std::string dir = temp_dir("svg");
  const std::string path = dir + "/curves.svg";
  Chart chart{"t", "x", "y", {{"s", {1, 2}, {3, 4}}}, false};
  write_svg(path, {chart});
  CHECK(read_text(path) == render_svg({chart}));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);  // no temporary left behind
  Chart uneven{"t", "x", "y", {{"s", {1, 2}, {3}}}, false};
  CHECK_THROWS_WITH(write_svg(path, {uneven}), Catch::Contains("series 's' of chart 't' has 2 x values but 1 y values"));
  CHECK_THROWS_WITH(write_svg(path, {}), Catch::Contains("no panels"));
  CHECK_THROWS_WITH(write_svg(dir + "/missing/curves.svg", {chart}), Catch::Contains("cannot"));
  std::filesystem::remove_all(dir);
}

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
