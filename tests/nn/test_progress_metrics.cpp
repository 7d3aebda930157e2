// Training display: the progress line and its reporter, running metrics, and the
// JSON Lines metrics log.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "nn/train/metrics.hpp"
#include "nn/train/progress.hpp"
#include "support/files.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using symgrad::testing::count;
using symgrad::testing::read_text;
using symgrad::testing::temp_dir;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
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
