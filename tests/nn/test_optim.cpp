// SGD, Adam, AdamW and clip_grad_norm against PyTorch 1.13 (tests/data/optim_reference.json,
// from tools/make_optim_reference.py); state_dict round trips that resume bit for bit;
// the checks that keep a bad step or a bad checkpoint from changing anything.
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/optim/adam.hpp"
#include "nn/optim/clip.hpp"
#include "nn/optim/factory.hpp"
#include "nn/optim/sgd.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using nlohmann::json;

namespace {

const json& reference() {
  return testing::reference_data("optim_reference.json", "tools/make_optim_reference.py");
}

Shape shape_of(const json& dims) { return dims.get<Shape>(); }

// The fixture's parameters as fresh leaves of dtype dt.
std::vector<Tensor> fixture_params(DType dt) {
  const json& problem = reference()["problem"];
  std::vector<Tensor> params;
  for (std::size_t i = 0; i < problem["shapes"].size(); ++i)
    params.push_back(from_vector(problem["params"][i].get<std::vector<double>>(),
                                 shape_of(problem["shapes"][i]), dt)
                         .requires_grad_());
  return params;
}

// Sets the fixture's gradients of `step` (null: no gradient) on params.
void set_fixture_grads(std::vector<Tensor>& params, std::size_t step) {
  const json& grads = reference()["problem"]["grads"][step];
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (grads[i].is_null()) {
      params[i].zero_grad();
      continue;
    }
    params[i].set_grad(from_vector(grads[i].get<std::vector<double>>(), params[i].shape(), params[i].dtype()));
  }
}

double rtol_for(DType dt) { return dt == DType::f64 ? 1e-12 : 1e-6; }
double atol_for(DType dt) { return dt == DType::f64 ? 1e-15 : 1e-7; }

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.to_vector() == b.to_vector();
}

// Deterministic pseudo-gradients for long runs: a different field per step and parameter.
Tensor synthetic_grad(const Tensor& p, int step, std::size_t index) {
  Generator gen(1000 + 17 * static_cast<std::uint64_t>(step) + index);
  return uniform(p.shape(), -1.0, 1.0, gen, p.dtype());
}

std::vector<Tensor> copies(const std::vector<Tensor>& params) {
  std::vector<Tensor> out;
  for (const Tensor& p : params) {
    Tensor c = Tensor::empty(p.shape(), p.dtype());
    copy_(c, p);
    out.push_back(c.requires_grad_());
  }
  return out;
}

// A checkpoint's trip through a file: scalars as JSON text, tensors copied.
OptimizerState through_text(const OptimizerState& state) {
  OptimizerState out;
  out.scalars = json::parse(state.scalars.dump());
  for (const auto& [name, t] : state.tensors) {
    Tensor c = Tensor::empty(t.shape(), t.dtype());
    copy_(c, t);
    out.tensors.emplace_back(name, c);
  }
  return out;
}

const Tensor* find_tensor(const OptimizerState& state, const std::string& name) {
  for (const auto& [n, t] : state.tensors)
    if (n == name) return &t;
  return nullptr;
}

}  // namespace

TEST_CASE("optimizers match PyTorch 1.13 step by step, state included", "[optim]") {
  for (const json& c : reference()["optimizers"])
    for (const DType dt : {DType::f64, DType::f32}) {
      INFO(c["name"].get<std::string>() << " " << dtype_name(dt));
      const json& expected = c[dtype_name(dt)];
      std::vector<Tensor> params = fixture_params(dt);
      std::unique_ptr<Optimizer> opt = make_optimizer(c["spec"], params);
      for (std::size_t step = 0; step < expected["params"].size(); ++step) {
        INFO("after step " << step + 1);
        set_fixture_grads(params, step);
        opt->step();
        for (std::size_t i = 0; i < params.size(); ++i) {
          INFO("parameter " << i);
          testing::require_allclose(params[i], expected["params"][step][i].get<std::vector<double>>(),
                                    rtol_for(dt), atol_for(dt));
        }
      }
      const OptimizerState state = opt->state_dict();
      REQUIRE(state.tensors.size() == expected["state"].size());
      for (const auto& [name, values] : expected["state"].items()) {
        INFO("state tensor " << name);
        const Tensor* t = find_tensor(state, name);
        REQUIRE(t != nullptr);
        CHECK(t->dtype() == dt);
        testing::require_allclose(*t, values.get<std::vector<double>>(), rtol_for(dt), atol_for(dt));
      }
      CHECK(state.scalars["step"] == expected["params"].size());
    }
}

TEST_CASE("a parameter without a gradient is skipped and gets no state", "[optim]") {
  const std::vector<json> specs = {
      {{"type", "sgd"}, {"lr", 0.1}, {"momentum", 0.9}, {"weight_decay", 0.5}},
      {{"type", "adam"}, {"lr", 0.1}, {"weight_decay", 0.5}},
      {{"type", "adamw"}, {"lr", 0.1}, {"weight_decay", 0.5}}};
  for (const json& spec : specs) {
    INFO(spec.dump());
    Tensor used = tensor({1.0, 2.0}).requires_grad_();
    Tensor unused = tensor({3.0, 4.0}).requires_grad_();
    auto opt = make_optimizer(spec, {used, unused});
    const auto version = unused.impl()->storage->version();
    used.set_grad(tensor({1.0, 1.0}));
    opt->step();
    CHECK(unused.to_vector() == std::vector<double>{3.0, 4.0});  // weight decay did not touch it
    CHECK(unused.impl()->storage->version() == version);
    CHECK(used.to_vector() != std::vector<double>{1.0, 2.0});
    for (const auto& [name, t] : opt->state_dict().tensors) CHECK(name.back() == '0');
  }
}

TEST_CASE("SGD's update on hand-computed values, with set_lr and zero_grad", "[optim]") {
  Tensor p = tensor({1.0, -2.0}, {2}, DType::f64).requires_grad_();
  SGD opt({p}, SGDOptions{0.5});
  p.set_grad(tensor({0.25, 1.0}, {2}, DType::f64));
  opt.step();
  CHECK(p.to_vector() == std::vector<double>{0.875, -2.5});
  opt.set_lr(0.25);  // used from the next step on
  opt.step();
  CHECK(p.to_vector() == std::vector<double>{0.8125, -2.75});
  CHECK(opt.step_count() == 2);
  opt.zero_grad();
  CHECK_FALSE(p.grad().defined());
  opt.step();  // nothing to do
  CHECK(p.to_vector() == std::vector<double>{0.8125, -2.75});
  CHECK_THROWS_WITH(opt.set_lr(-1.0), Catch::Contains("lr must be finite and >= 0"));
}

TEST_CASE("step() bumps the parameter's version: a graph recorded before it cannot run backward", "[optim]") {
  Tensor p = tensor({1.0, 2.0}, {2}, DType::f64).requires_grad_();
  Tensor loss = sum(p * p);
  backward(loss, Tensor(), {false, true});  // keep the graph
  Adam opt({p});
  opt.step();
  CHECK_THROWS(backward(loss));  // p * p saved the old p
  // A fresh graph after the step is fine.
  p.zero_grad();
  backward(sum(p * p));
  CHECK(p.grad().defined());
}

TEST_CASE("float64 parameters get float64 state; a dtype change after the state is refused", "[optim]") {
  const std::vector<json> specs = {{{"type", "sgd"}, {"lr", 0.1}, {"momentum", 0.9}},
                                   {{"type", "adam"}, {"lr", 0.1}}};
  for (const json& spec : specs) {
    INFO(spec.dump());
    Tensor a = zeros({3}, DType::f64).requires_grad_();
    Tensor b = zeros({2}, DType::f32).requires_grad_();
    auto opt = make_optimizer(spec, {a, b});
    a.set_grad(ones({3}, DType::f64));
    b.set_grad(ones({2}, DType::f32));
    opt->step();
    for (const auto& [name, t] : opt->state_dict().tensors)
      CHECK(t.dtype() == (name.back() == '0' ? DType::f64 : DType::f32));

    // As Module::to() does: b becomes float64 (its gradient is dropped).
    {
      NoGradGuard no_grad;
      convert_dtype_(b, DType::f64);
    }
    a.set_grad(ones({3}, DType::f64));
    b.set_grad(ones({2}, DType::f64));
    const std::vector<double> a_before = a.to_vector();
    CHECK_THROWS_WITH(opt->step(), Catch::Contains("parameter 1 [2] float64") &&
                                       Catch::Contains("float32") && Catch::Contains("Module::to()"));
    CHECK(a.to_vector() == a_before);  // checked before anything was written
    CHECK(opt->step_count() == 1);
  }
}

TEST_CASE("optimizer constructors and options reject bad input with a named reason", "[optim]") {
  Tensor p = zeros({2}).requires_grad_();
  CHECK_THROWS_WITH(SGD({}, SGDOptions{0.1}), Catch::Contains("SGD: the parameter list is empty"));
  CHECK_THROWS_WITH(SGD({p, p}, SGDOptions{0.1}), Catch::Contains("appears twice"));
  CHECK_THROWS_WITH(Adam({Tensor()}), Catch::Contains("Adam: parameter 0 is undefined"));
  Tensor not_leaf = p * 2.0;
  CHECK_THROWS_WITH(Adam({not_leaf}), Catch::Contains("not a leaf"));
  CHECK_THROWS_WITH(SGD({p}, SGDOptions{-0.1}), Catch::Contains("SGD: lr must be finite and >= 0"));
  CHECK_THROWS_WITH(SGD({p}, SGDOptions{0.1, 0.0, 0.0, 0.0, true}), Catch::Contains("Nesterov"));
  CHECK_THROWS_WITH(SGD({p}, SGDOptions{0.1, 0.9, 0.1, 0.0, true}), Catch::Contains("dampening 0"));
  CHECK_THROWS_WITH(Adam({p}, AdamOptions{1e-3, 1.0}), Catch::Contains("Adam: beta1 must be in [0, 1)"));
  CHECK_THROWS_WITH(AdamW({p}, AdamOptions{1e-3, 0.9, 0.999, -1.0}), Catch::Contains("AdamW: eps"));
  CHECK(AdamW({p}).options().weight_decay == 1e-2);
  CHECK(Adam({p}).options().weight_decay == 0.0);
}

TEST_CASE("save -> load into a fresh optimizer resumes bit for bit", "[optim]") {
  const std::vector<json> specs = {
      {{"type", "sgd"}, {"lr", 0.05}, {"momentum", 0.9}, {"nesterov", true}, {"weight_decay", 1e-3}},
      {{"type", "sgd"}, {"lr", 0.05}, {"momentum", 0.8}, {"dampening", 0.25}},
      {{"type", "adam"}, {"lr", 0.01}, {"weight_decay", 1e-2}},
      {{"type", "adamw"}, {"lr", 0.01}, {"betas", {0.8, 0.95}}},
  };
  for (const json& spec : specs)
    for (const DType dt : {DType::f32, DType::f64}) {
      INFO(spec.dump() << " " << dtype_name(dt));
      const auto grad_at = [](std::vector<Tensor>& params, int step) {
        for (std::size_t i = 0; i < params.size(); ++i) {
          if (i == 1 && step == 0) params[i].zero_grad();  // its state starts a step late
          else params[i].set_grad(synthetic_grad(params[i], step, i));
        }
      };
      std::vector<Tensor> straight = fixture_params(dt);
      auto uninterrupted = make_optimizer(spec, straight);
      for (int step = 0; step < 6; ++step) {
        uninterrupted->set_lr(0.01 * (step + 1));  // as a schedule would
        grad_at(straight, step);
        uninterrupted->step();
      }

      std::vector<Tensor> first = fixture_params(dt);
      auto before = make_optimizer(spec, first);
      for (int step = 0; step < 3; ++step) {
        before->set_lr(0.01 * (step + 1));
        grad_at(first, step);
        before->step();
      }
      const OptimizerState saved = through_text(before->state_dict());
      before.reset();

      std::vector<Tensor> resumed = copies(first);
      json other = spec;
      other["lr"] = 123.0;  // load restores hyper-parameters and lr
      auto after = make_optimizer(other, resumed);
      after->load_state_dict(saved);
      CHECK(after->step_count() == 3);
      CHECK(after->lr() == 0.03);
      for (int step = 3; step < 6; ++step) {
        after->set_lr(0.01 * (step + 1));
        grad_at(resumed, step);
        after->step();
      }
      for (std::size_t i = 0; i < straight.size(); ++i) CHECK(same_bits(resumed[i], straight[i]));
      const OptimizerState a = uninterrupted->state_dict(), b = after->state_dict();
      CHECK(a.scalars == b.scalars);
      REQUIRE(a.tensors.size() == b.tensors.size());
      for (std::size_t i = 0; i < a.tensors.size(); ++i) {
        CHECK(a.tensors[i].first == b.tensors[i].first);
        CHECK(same_bits(a.tensors[i].second, b.tensors[i].second));
      }
    }
}

TEST_CASE("state_dict returns copies, and load_state_dict keeps none of the caller's tensors", "[optim]") {
  Tensor p = zeros({2}, DType::f64).requires_grad_();
  SGD opt({p}, SGDOptions{0.1, 0.9});
  p.set_grad(ones({2}, DType::f64));
  opt.step();
  OptimizerState state = opt.state_dict();
  const std::vector<double> saved = state.tensors[0].second.to_vector();
  opt.step();
  CHECK(state.tensors[0].second.to_vector() == saved);  // not the live buffer
  opt.load_state_dict(state);
  {
    NoGradGuard no_grad;
    fill_(state.tensors[0].second, 100.0);
  }
  CHECK(opt.state_dict().tensors[0].second.to_vector() == saved);
}

TEST_CASE("load_state_dict checks everything, names the culprit, and changes nothing on failure", "[optim]") {
  Tensor a = zeros({2, 3}, DType::f64).requires_grad_();
  Tensor b = zeros({3}, DType::f64).requires_grad_();
  Adam opt({a, b}, AdamOptions{0.1});
  a.set_grad(ones({2, 3}, DType::f64));
  b.set_grad(ones({3}, DType::f64));
  opt.step();
  const OptimizerState good = opt.state_dict();
  const json before = good.scalars;

  const auto broken = [&](auto&& change) {
    OptimizerState s = through_text(good);
    change(s);
    return s;
  };
  const auto rejects = [&](const OptimizerState& s, const std::string& message) {
    INFO(message);
    CHECK_THROWS_WITH(opt.load_state_dict(s), Catch::Contains(message));
    CHECK(opt.state_dict().scalars == before);
    CHECK(same_bits(opt.state_dict().tensors[0].second, good.tensors[0].second));
  };
  rejects(broken([](OptimizerState& s) { s.scalars["type"] = "sgd"; }), "expected \"adam\"");
  rejects(broken([](OptimizerState& s) { s.scalars["num_params"] = 3; }), "for 3 parameters");
  rejects(broken([](OptimizerState& s) { s.scalars.erase("beta2"); }), "no 'beta2'");
  rejects(broken([](OptimizerState& s) { s.scalars["beta1"] = "x"; }), "'beta1' is not a number");
  rejects(broken([](OptimizerState& s) { s.scalars["beta1"] = 1.5; }), "beta1 must be in [0, 1)");
  rejects(broken([](OptimizerState& s) { s.scalars["momentum"] = 0.9; }), "unknown scalar 'momentum'");
  rejects(broken([](OptimizerState& s) { s.scalars["step"] = -1; }), "'step' must be an integer >= 0");
  rejects(broken([](OptimizerState& s) { s.scalars["param_steps"] = {1}; }), "'param_steps' must be a list of 2");
  rejects(broken([](OptimizerState& s) { s.scalars["param_steps"][1] = 0; }),
          "'param_steps'[1] is 0 but the state has 'exp_avg.1'");
  rejects(broken([](OptimizerState& s) { s.tensors.pop_back(); }), "'exp_avg.1' or 'exp_avg_sq.1' is missing");
  const auto replace = [](OptimizerState& s, const std::string& name, const Tensor& t) {
    for (auto& [n, old] : s.tensors)
      if (n == name) old = t;
  };
  rejects(broken([&](OptimizerState& s) { replace(s, "exp_avg_sq.0", zeros({3, 2}, DType::f64)); }),
          "tensor 'exp_avg_sq.0' is [3, 2] float64, but parameter 0 [2, 3] float64");
  rejects(broken([&](OptimizerState& s) { replace(s, "exp_avg_sq.0", zeros({2, 3}, DType::f32)); }),
          "tensor 'exp_avg_sq.0' is [2, 3] float32");
  rejects(broken([](OptimizerState& s) { s.tensors[0].first = "momentum_buffer.0"; }),
          "unknown tensor 'momentum_buffer.0'");
  rejects(broken([](OptimizerState& s) { s.tensors[0].first = "exp_avg.00"; }), "unknown tensor 'exp_avg.00'");
  rejects(broken([](OptimizerState& s) { s.tensors[0].first = "exp_avg.7"; }), "is for parameter 7");
  rejects(broken([](OptimizerState& s) { s.tensors.push_back(s.tensors[0]); }), "'exp_avg.0' appears twice");
  rejects(broken([](OptimizerState& s) { s.scalars = json::array(); }), "scalars must be a JSON object");

  SGD sgd({a, b}, SGDOptions{0.1});
  OptimizerState with_buffer = sgd.state_dict();
  with_buffer.tensors.emplace_back("momentum_buffer.1", zeros({3}, DType::f64));
  CHECK_THROWS_WITH(sgd.load_state_dict(with_buffer), Catch::Contains("momentum is 0 but the state has 'momentum_buffer.1'"));
}

TEST_CASE("clip_grad_norm matches PyTorch and skips parameters without a gradient", "[optim][clip]") {
  const json& clip = reference()["clip"];
  const json& shapes = reference()["problem"]["shapes"];
  for (const json& c : clip["cases"]) {
    const DType dt = c["dtype"] == "float32" ? DType::f32 : DType::f64;
    INFO(dtype_name(dt) << " max_norm " << c["max_norm"].get<double>());
    std::vector<Tensor> params;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      params.push_back(zeros(shape_of(shapes[i]), dt).requires_grad_());
      params.back().set_grad(from_vector(clip["grads"][i].get<std::vector<double>>(), shape_of(shapes[i]), dt));
    }
    params.push_back(zeros({2}, dt).requires_grad_());  // no gradient
    const double norm = clip_grad_norm(params, c["max_norm"].get<double>());
    CHECK(norm == Approx(c["norm"].get<double>()).epsilon(rtol_for(dt)));
    for (std::size_t i = 0; i < shapes.size(); ++i)
      testing::require_allclose(params[i].grad(), c["clipped"][i].get<std::vector<double>>(), rtol_for(dt),
                                atol_for(dt));
    CHECK_FALSE(params.back().grad().defined());
  }
}

TEST_CASE("clip_grad_norm on hand-computed values; shared buffers scaled once; bad input", "[optim][clip]") {
  Tensor p = zeros({2}, DType::f64).requires_grad_();
  Tensor q = zeros({1}, DType::f64).requires_grad_();
  p.set_grad(tensor({3.0, 4.0}, {2}, DType::f64));
  q.set_grad(tensor({12.0}, {1}, DType::f64));
  CHECK(clip_grad_norm({p, q}, 26.0) == 13.0);  // below max_norm: untouched
  CHECK(p.grad().to_vector() == std::vector<double>{3.0, 4.0});
  CHECK(clip_grad_norm({p, q}, 6.5) == 13.0);
  const double factor = 6.5 / (13.0 + 1e-6);
  CHECK(p.grad().to_vector() == std::vector<double>{3.0 * factor, 4.0 * factor});
  CHECK(q.grad().to_vector() == std::vector<double>{12.0 * factor});

  // backward of a + b hands both leaves the same gradient buffer.
  Tensor a = zeros({2}, DType::f64).requires_grad_();
  Tensor b = zeros({2}, DType::f64).requires_grad_();
  backward(a + b, tensor({3.0, 4.0}, {2}, DType::f64));
  const double norm = clip_grad_norm({a, b}, 1.0);
  CHECK(norm == Approx(std::sqrt(50.0)).epsilon(1e-15));
  const double shared_factor = 1.0 / (norm + 1e-6);
  CHECK(a.grad().to_vector() == std::vector<double>{3.0 * shared_factor, 4.0 * shared_factor});
  CHECK(b.grad().to_vector() == a.grad().to_vector());

  q.set_grad(tensor({std::numeric_limits<double>::infinity()}, {1}, DType::f64));
  const std::vector<double> p_grad = p.grad().to_vector();
  CHECK(std::isinf(clip_grad_norm({p, q}, 1.0)));
  CHECK(p.grad().to_vector() == p_grad);  // a non-finite norm scales nothing

  CHECK_THROWS_WITH(clip_grad_norm({p}, 0.0), Catch::Contains("clip_grad_norm: max_norm must be finite and > 0"));
  CHECK_THROWS_WITH(clip_grad_norm({Tensor()}, 1.0), Catch::Contains("parameter 0 is undefined"));
  CHECK(clip_grad_norm({}, 1.0) == 0.0);
}

TEST_CASE("make_optimizer builds each type with defaults and rejects unknown input by name", "[optim][factory]") {
  Tensor p = zeros({2}).requires_grad_();
  auto sgd = make_optimizer({{"type", "sgd"}, {"lr", 0.2}, {"momentum", 0.5}}, {p});
  REQUIRE(dynamic_cast<SGD*>(sgd.get()) != nullptr);
  CHECK(sgd->type_name() == "SGD");
  CHECK(dynamic_cast<SGD&>(*sgd).options().momentum == 0.5);
  auto adam = make_optimizer({{"type", "adam"}}, {p});
  CHECK(adam->lr() == 1e-3);
  CHECK(dynamic_cast<Adam&>(*adam).options().weight_decay == 0.0);
  auto adamw = make_optimizer({{"type", "adamw"}, {"betas", {0.5, 0.6}}, {"eps", 1e-4}}, {p});
  CHECK(adamw->type_name() == "AdamW");
  const AdamOptions& o = dynamic_cast<Adam&>(*adamw).options();
  CHECK((o.beta1 == 0.5 && o.beta2 == 0.6 && o.eps == 1e-4 && o.weight_decay == 1e-2));

  CHECK_THROWS_WITH(make_optimizer({{"type", "rmsprop"}}, {p}), Catch::Contains("unknown type \"rmsprop\""));
  CHECK_THROWS_WITH(make_optimizer({{"type", "sgd"}, {"lr", 0.1}, {"betas", {0.9, 0.99}}}, {p}),
                    Catch::Contains("unknown key \"betas\" for type \"sgd\""));
  CHECK_THROWS_WITH(make_optimizer({{"type", "adam"}, {"momentum", 0.9}}, {p}),
                    Catch::Contains("unknown key \"momentum\""));
  CHECK_THROWS_WITH(make_optimizer({{"type", "sgd"}}, {p}), Catch::Contains("\"lr\" is required"));
  CHECK_THROWS_WITH(make_optimizer({{"type", "sgd"}, {"lr", "fast"}}, {p}),
                    Catch::Contains("\"lr\" must be a number, got \"fast\""));
  CHECK_THROWS_WITH(make_optimizer({{"type", "sgd"}, {"lr", 0.1}, {"nesterov", 1}}, {p}),
                    Catch::Contains("\"nesterov\" must be true or false"));
  CHECK_THROWS_WITH(make_optimizer({{"type", "adam"}, {"betas", {0.9}}}, {p}),
                    Catch::Contains("\"betas\" must be a list of two numbers"));
  CHECK_THROWS_WITH(make_optimizer(json::array(), {p}), Catch::Contains("must be a JSON object"));
  CHECK_THROWS_WITH(make_optimizer({{"lr", 0.1}}, {p}), Catch::Contains("needs a \"type\""));
}
