// Module registry, recursive names, train/eval, dtype conversion, summary, Sequential;
// and the in-place writes with their version check.
#include "nn/module.hpp"

#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;

namespace {
// A layer written the way users write one: y = x * scale + shift, with a counter buffer.
class Affine : public Module {
 public:
  explicit Affine(std::int64_t n, bool with_shift = true) {
    scale = register_parameter("scale", ones({n}));
    shift = register_parameter("shift", with_shift ? zeros({n}) : Tensor());
    calls = register_buffer("calls", zeros({1}));
  }
  Tensor forward(const Tensor& x) override {
    return shift.defined() ? x * scale + shift : x * scale;
  }
  std::string type_name() const override { return "Affine"; }
  std::string extra_repr() const override { return std::to_string(scale.numel()); }
  Tensor scale, shift, calls;
  int train_changes = 0;

 protected:
  void on_train_changed() override { ++train_changes; }
};

class Block : public Module {
 public:
  Block() {
    first = register_module("first", std::make_shared<Affine>(3));
    second = register_module("second", std::make_shared<Affine>(3, false));
  }
  Tensor forward(const Tensor& x) override { return second->forward(first->forward(x)); }
  std::string type_name() const override { return "Block"; }
  std::shared_ptr<Affine> first, second;
};

std::vector<std::string> names(const NamedTensors& list) {
  std::vector<std::string> out;
  for (auto& [n, t] : list) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("parameters, buffers and children have dotted names in registration order") {
  Sequential model{std::make_shared<Affine>(3), std::make_shared<Block>()};
  CHECK(names(model.named_parameters()) ==
        std::vector<std::string>{"0.scale", "0.shift", "1.first.scale", "1.first.shift",
                                 "1.second.scale"});
  CHECK(names(model.named_buffers()) ==
        std::vector<std::string>{"0.calls", "1.first.calls", "1.second.calls"});
  CHECK(model.named_state().size() == 8);
  CHECK(model.num_parameters() == 15);
  std::vector<std::string> module_names;
  for (auto& [n, m] : model.named_modules()) module_names.push_back(n);
  CHECK(module_names == std::vector<std::string>{"0", "1", "1.first", "1.second"});
  for (const Tensor& p : model.parameters()) CHECK(p.requires_grad());
  for (auto& [n, b] : model.named_buffers()) CHECK_FALSE(b.requires_grad());
}

TEST_CASE("registration rejects duplicate and dotted names") {
  class Bad : public Module {
   public:
    explicit Bad(int which) {
      register_parameter("w", zeros({1}));
      if (which == 0) register_buffer("w", zeros({1}));
      if (which == 1) register_parameter("a.b", zeros({1}));
      if (which == 2) register_module<Module>("m", nullptr);
    }
    Tensor forward(const Tensor& x) override { return x; }
    std::string type_name() const override { return "Bad"; }
  };
  CHECK_THROWS_WITH(Bad(0), Catch::Contains("already has a member named 'w'"));
  CHECK_THROWS_WITH(Bad(1), Catch::Contains("contain no '.'"));
  CHECK_THROWS_WITH(Bad(2), Catch::Contains("is null"));
}

TEST_CASE("train() and eval() reach every module and call the hook only on change") {
  auto block = std::make_shared<Block>();
  Sequential model{block};
  CHECK(block->first->is_training());
  model.eval();
  CHECK_FALSE(model.is_training());
  CHECK_FALSE(block->second->is_training());
  CHECK(block->first->train_changes == 1);
  model.eval();
  CHECK(block->first->train_changes == 1);
  model.train();
  CHECK(block->first->is_training());
  CHECK(block->first->train_changes == 2);
}

TEST_CASE("zero_grad drops every parameter gradient") {
  Block block;
  Tensor x = ones({2, 3});
  backward(sum(block(x)));
  for (const Tensor& p : block.parameters()) REQUIRE(p.grad().defined());
  block.zero_grad();
  for (const Tensor& p : block.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("to(dtype) converts every tensor in place, members included") {
  Block block;
  {
    NoGradGuard no_grad;
    Tensor s = block.first->scale;
    copy_(s, tensor({0.1, 0.2, 0.3}, {3}));
  }
  backward(sum(block(ones({1, 3}))));
  block.to(DType::f64);
  CHECK(block.dtype() == DType::f64);
  CHECK(block.first->scale.dtype() == DType::f64);   // the member sees it
  CHECK(block.first->calls.dtype() == DType::f64);   // buffers too
  CHECK_FALSE(block.first->scale.grad().defined());  // old-dtype gradient dropped
  CHECK(block.first->scale.to_vector()[1] == static_cast<double>(0.2f));
  Tensor y = block(ones({1, 3}, DType::f64));
  CHECK(y.dtype() == DType::f64);
  block.to(DType::f32);
  CHECK(block.dtype() == DType::f32);
}

TEST_CASE("summary lists one line per module with parameter counts") {
  Sequential model{std::make_shared<Affine>(3), std::make_shared<Block>()};
  const std::string s = model.summary();
  INFO(s);
  CHECK(s.find("Sequential  [float32, train mode]") == 0);
  CHECK(s.find("1.first") != std::string::npos);
  CHECK(s.find("Affine(3)") != std::string::npos);
  CHECK(s.find("(9)") != std::string::npos);  // Block's subtree
  CHECK(s.find("total: 15 trainable parameters in 5 tensors, 3 buffer values") != std::string::npos);
}

TEST_CASE("Sequential chains its modules and checks indices") {
  Sequential model;
  model.push_back(std::make_shared<Affine>(2)).push_back(std::make_shared<Affine>(2));
  CHECK(model.size() == 2);
  testing::require_allclose(model(tensor({1.0, 2.0}, {2})), std::vector<double>{1.0, 2.0});
  CHECK_THROWS_WITH(model[2], Catch::Contains("index 2 out of range for 2 modules"));
}

TEST_CASE("copy_ and fill_ refuse a tensor that requires grad under grad mode") {
  Tensor w = zeros({2}).requires_grad_();
  CHECK_THROWS_WITH(fill_(w, 1.0), Catch::Contains("use a NoGradGuard"));
  NoGradGuard no_grad;
  fill_(w, 2.0);
  CHECK(w.to_vector() == std::vector<double>{2.0, 2.0});
  CHECK_THROWS_WITH(copy_(w, zeros({3})), Catch::Contains("source [3] does not match destination [2]"));
}

TEST_CASE("backward refuses a parameter that was written after the forward pass") {
  Tensor w = ones({3}).requires_grad_();
  Tensor loss = sum(w * w);
  {
    NoGradGuard no_grad;
    fill_(w, 5.0);  // an optimizer step between forward and backward
  }
  CHECK_THROWS_WITH(backward(loss), Catch::Contains("modified in place after the forward pass"));
  Tensor again = sum(w * w);  // a fresh forward is fine
  backward(again);
  CHECK(w.grad().to_vector() == std::vector<double>{10.0, 10.0, 10.0});
}
