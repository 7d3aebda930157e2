// Learning-rate schedules: make_schedule specs against the lr PyTorch 1.13's schedulers
// set (tests/data/optim_reference.json, from tools/make_optim_reference.py), the closed
// forms on hand-computed values, and the errors.
#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/optim/factory.hpp"
#include "nn/optim/schedule.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using nlohmann::json;

namespace {

const json& reference() {
  return testing::reference_data("optim_reference.json", "tools/make_optim_reference.py");
}

}  // namespace

TEST_CASE("schedules match PyTorch 1.13's schedulers step by step", "[schedule]") {
  // PyTorch updates most rates recursively (lr_t from lr_{t-1}); these are closed forms,
  // so the two agree to rounding, far inside 1e-12.
  for (const json& c : reference()["schedules"]) {
    INFO(c["name"].get<std::string>() << ": " << c["spec"].dump());
    const auto schedule = make_schedule(c["spec"], c["base_lr"].get<double>(), c["total_steps"].get<std::int64_t>());
    const auto lrs = c["lrs"].get<std::vector<double>>();
    for (std::size_t step = 0; step < lrs.size(); ++step) {
      INFO("step " << step);
      CHECK(schedule->lr_at(static_cast<std::int64_t>(step)) == Approx(lrs[step]).epsilon(1e-12).margin(1e-17));
    }
  }
}

TEST_CASE("lr_at is a pure function of the step", "[schedule]") {
  const auto schedule = make_schedule({{"type", "cosine"}, {"warmup_steps", 10}}, 0.1, 100);
  std::vector<double> forward;
  for (std::int64_t step = 0; step < 100; ++step) forward.push_back(schedule->lr_at(step));
  for (std::int64_t step = 99; step >= 0; --step) CHECK(schedule->lr_at(step) == forward[static_cast<std::size_t>(step)]);
  CHECK(schedule->lr_at(37) == forward[37]);
}

TEST_CASE("closed forms on hand-computed values", "[schedule]") {
  const ConstantLR constant(0.3);
  CHECK(constant.lr_at(0) == 0.3);
  CHECK(constant.lr_at(1000000) == 0.3);

  const StepLR step(1.0, 4, 0.5);
  CHECK(step.lr_at(3) == 1.0);
  CHECK(step.lr_at(4) == 0.5);
  CHECK(step.lr_at(11) == 0.25);

  const CosineLR cosine(1.0, 8, 0.2);
  CHECK(cosine.lr_at(0) == 1.0);
  CHECK(cosine.lr_at(4) == Approx(0.6).epsilon(1e-15));  // half way: the mean
  CHECK(cosine.lr_at(2) == Approx(0.2 + 0.8 * (1 + std::cos(std::numbers::pi / 4)) / 2).epsilon(1e-15));
  CHECK(cosine.lr_at(8) == 0.2);
  CHECK(cosine.lr_at(50) == 0.2);  // stays at the minimum (PyTorch would rise again)

  const LinearWarmup warmup(std::make_unique<StepLR>(1.0, 2, 0.1), 4, 0.0);
  CHECK(warmup.lr_at(0) == 0.0);
  CHECK(warmup.lr_at(1) == 0.25);
  CHECK(warmup.lr_at(3) == 0.75);
  CHECK(warmup.lr_at(4) == 1.0);  // the inner schedule's step 0
  CHECK(warmup.lr_at(6) == Approx(0.1).epsilon(1e-15));
  const LinearWarmup no_warmup(std::make_unique<ConstantLR>(0.5), 0);
  CHECK(no_warmup.lr_at(0) == 0.5);

  const OneCycleLR one_cycle(1.0, 11, 0.5, 4.0, 10.0);  // rise over steps 0..4.5, fall to 10
  CHECK(one_cycle.lr_at(0) == 0.25);
  CHECK(one_cycle.lr_at(10) == Approx(0.025).epsilon(1e-15));
  CHECK(one_cycle.lr_at(1000) == one_cycle.lr_at(10));  // stays at the final rate
  // Rising: from 0.25 towards 1 over 4.5 steps; falling: from 1 to 0.025 over 5.5.
  const double pi = std::numbers::pi;
  CHECK(one_cycle.lr_at(2) == Approx(1.0 + (0.25 - 1.0) / 2 * (std::cos(pi * 2 / 4.5) + 1)).epsilon(1e-15));
  CHECK(one_cycle.lr_at(5) == Approx(0.025 + (1.0 - 0.025) / 2 * (std::cos(pi * 0.5 / 5.5) + 1)).epsilon(1e-15));
}

TEST_CASE("make_schedule defaults: null is constant, warm-up starts at a third", "[schedule][factory]") {
  CHECK(make_schedule(nullptr, 0.02, 10)->lr_at(5) == 0.02);
  const auto warm = make_schedule({{"type", "constant"}, {"warmup_steps", 3}}, 0.3, 10);
  CHECK(warm->lr_at(0) == Approx(0.1).epsilon(1e-15));
  CHECK(warm->lr_at(3) == 0.3);
  const auto step = make_schedule({{"type", "step"}, {"step_size", 2}}, 1.0, 10);
  CHECK(step->lr_at(2) == Approx(0.1).epsilon(1e-15));  // gamma 0.1
  const auto one_cycle = make_schedule({{"type", "onecycle"}}, 0.5, 100);  // max_lr = base_lr
  CHECK(one_cycle->lr_at(0) == Approx(0.5 / 25).epsilon(1e-15));
  const auto cosine = make_schedule({{"type", "cosine"}, {"warmup_steps", 5}}, 1.0, 15);
  CHECK(cosine->lr_at(5) == 1.0);
  CHECK(cosine->lr_at(15) == 0.0);  // the cosine spans the 10 steps after the warm-up
  CHECK(cosine->lr_at(10) == Approx(0.5).epsilon(1e-15));
}

TEST_CASE("schedules reject bad arguments, and make_schedule names unknown keys", "[schedule][factory]") {
  CHECK_THROWS_WITH(ConstantLR(0.1).lr_at(-1), Catch::Contains("ConstantLR.lr_at: step must be >= 0, got -1"));
  CHECK_THROWS_WITH(StepLR(0.1, 0), Catch::Contains("StepLR: step_size must be >= 1, got 0"));
  CHECK_THROWS_WITH(CosineLR(0.1, 0), Catch::Contains("CosineLR: total_steps must be >= 1"));
  CHECK_THROWS_WITH(ConstantLR(-0.1), Catch::Contains("lr must be finite and >= 0"));
  CHECK_THROWS_WITH(LinearWarmup(nullptr, 3), Catch::Contains("inner schedule is null"));
  CHECK_THROWS_WITH(LinearWarmup(std::make_unique<ConstantLR>(1.0), 3, 1.5),
                    Catch::Contains("start_factor must be in [0, 1]"));
  CHECK_THROWS_WITH(OneCycleLR(0.1, 3), Catch::Contains("pct_start * total_steps must exceed 1"));
  CHECK_THROWS_WITH(OneCycleLR(0.1, 100, 1.0), Catch::Contains("pct_start must be in (0, 1)"));

  CHECK_THROWS_WITH(make_schedule({{"type", "exponential"}}, 0.1, 10), Catch::Contains("unknown type \"exponential\""));
  CHECK_THROWS_WITH(make_schedule({{"type", "cosine"}, {"T_max", 5}}, 0.1, 10),
                    Catch::Contains("unknown key \"T_max\" for type \"cosine\""));
  CHECK_THROWS_WITH(make_schedule({{"type", "step"}}, 0.1, 10), Catch::Contains("\"step_size\" is required"));
  CHECK_THROWS_WITH(make_schedule({{"type", "step"}, {"step_size", 2.5}}, 0.1, 10),
                    Catch::Contains("\"step_size\" must be an integer"));
  CHECK_THROWS_WITH(make_schedule({{"type", "onecycle"}, {"warmup_steps", 5}}, 0.1, 100),
                    Catch::Contains("takes no \"warmup_steps\""));
  CHECK_THROWS_WITH(make_schedule({{"type", "cosine"}, {"warmup_steps", 10}}, 0.1, 10),
                    Catch::Contains("leaves none after 10 warm-up steps"));
  CHECK_THROWS_WITH(make_schedule({{"type", "constant"}, {"warmup_steps", -1}}, 0.1, 10),
                    Catch::Contains("\"warmup_steps\" must be >= 0"));
  CHECK_THROWS_WITH(make_schedule("cosine", 0.1, 10), Catch::Contains("must be a JSON object"));
}
