// BatchNorm1d / BatchNorm2d against PyTorch 1.13 (tests/data/nn_norm_loss_reference.json,
// written by tools/make_nn_norm_loss_reference.py): three training steps with running
// statistics, then eval mode. The fused kernel is checked against the composite (values,
// first and second derivatives) and against plain loops; both are gradchecked.

#include <nlohmann/json.hpp>

#include "nn/layers/batchnorm.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using json = nlohmann::json;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

const json& reference() {
  return testing::reference_data("nn_norm_loss_reference.json", "tools/make_nn_norm_loss_reference.py");
}

struct Tolerance {
  double rtol, atol;
};
Tolerance tolerance_for(DType dtype) { return dtype == DType::f64 ? Tolerance{1e-9, 1e-11} : Tolerance{2e-4, 2e-5}; }

void require_close(const Tensor& actual, const json& expected, DType dtype) {
  const Tolerance tol = tolerance_for(dtype);
  REQUIRE(actual.defined());
  REQUIRE(actual.shape() == expected.at("shape").get<Shape>());
  require_allclose(actual, expected.at("values").get<std::vector<double>>(), tol.rtol, tol.atol);
}

std::shared_ptr<BatchNorm> make_layer(const json& c, DType dtype) {
  BatchNormOptions opts;
  opts.eps = c.at("eps");
  opts.momentum = c.at("momentum");
  opts.affine = c.at("affine");
  opts.track_running_stats = c.at("track_running_stats");
  opts.dtype = dtype;
  const std::int64_t features = c.at("features");
  std::shared_ptr<BatchNorm> layer;
  if (c.at("module") == "BatchNorm1d") layer = std::make_shared<BatchNorm1d>(features, opts);
  else layer = std::make_shared<BatchNorm2d>(features, opts);
  if (opts.affine) {
    NoGradGuard no_grad;
    copy_(layer->weight, testing::tensor_from_json(c.at("weight"), dtype));
    copy_(layer->bias, testing::tensor_from_json(c.at("bias"), dtype));
  }
  return layer;
}

// One step of a reference case through the layer: forward, backward of sum(out * R),
// and every value PyTorch recorded.
void check_step(BatchNorm& layer, const json& step, DType dtype) {
  Tensor x = testing::tensor_from_json(step.at("input"), dtype).requires_grad_();
  Tensor out = layer(x);
  require_close(out, step.at("output"), dtype);
  backward(sum(out * testing::tensor_from_json(step.at("weights"), dtype)));
  require_close(x.grad(), step.at("grad_input"), dtype);
  if (step.contains("grad_weight")) {
    require_close(layer.weight.grad(), step.at("grad_weight"), dtype);
    require_close(layer.bias.grad(), step.at("grad_bias"), dtype);
  }
  if (step.contains("running_mean")) {
    require_close(layer.running_mean, step.at("running_mean"), dtype);
    require_close(layer.running_var, step.at("running_var"), dtype);
  }
  layer.zero_grad();
}

// The same training step through the free function with a chosen kernel, with copies of
// the layer's current weight and bias.

void check_step_with_kernel(const BatchNorm& layer, const json& step, DType dtype, BatchNormKernel kernel) {
  Tensor x = testing::tensor_from_json(step.at("input"), dtype).requires_grad_();
  Tensor w = layer.weight.defined() ? layer.weight.detach().requires_grad_() : Tensor();
  Tensor b = layer.bias.defined() ? layer.bias.detach().requires_grad_() : Tensor();
  TensorList leaves = w.defined() ? TensorList{x, w, b} : TensorList{x};
  BatchNormResult r = batch_norm_batch_stats(x, w, b, layer.options().eps, kernel);
  require_close(r.out, step.at("output"), dtype);
  TensorList grads = grad({sum(r.out * testing::tensor_from_json(step.at("weights"), dtype))}, leaves);
  require_close(grads[0], step.at("grad_input"), dtype);
  if (w.defined()) {
    require_close(grads[1], step.at("grad_weight"), dtype);
    require_close(grads[2], step.at("grad_bias"), dtype);
  }
}

// Random [N, C, ...] input whose channels have different offsets and spreads.
Tensor channel_batch(const Shape& shape, std::uint64_t seed, DType dtype = DType::f64) {
  Generator gen(seed);
  Shape view(shape.size(), 1);
  view[1] = shape[1];
  Tensor offset = uniform(view, -3.0, 3.0, gen, dtype);
  Tensor spread = uniform(view, 0.5, 2.0, gen, dtype);
  Tensor x = uniform(shape, -1.0, 1.0, gen, dtype) * spread + offset;
  return x.detach().requires_grad_();
}

}  // namespace

TEST_CASE("BatchNorm matches PyTorch over three training steps and in eval mode") {
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const json& c : reference().at("batchnorm")) {
      INFO(c.at("id").get<std::string>() << " " << dtype_name(dtype));
      auto layer = make_layer(c, dtype);
      layer->train();
      for (const json& step : c.at("train_steps")) {
        // The free function with each kernel sees the weights the layer has now.
        for (BatchNormKernel kernel : {BatchNormKernel::fused, BatchNormKernel::composite})
          check_step_with_kernel(*layer, step, dtype, kernel);
        check_step(*layer, step, dtype);
      }
      layer->eval();
      check_step(*layer, c.at("eval_step"), dtype);
    }
  }
}

TEST_CASE("the fused kernel's statistics and output match plain double loops") {
  // Planes longer than the kernel's summation block, channels far from zero mean, float32.
  for (const Shape& shape : {Shape{2, 3, 3000}, Shape{5, 4, 3, 7}, Shape{7, 3}}) {
    INFO(shape_str(shape));
    const Tensor x = (channel_batch(shape, 11, DType::f32) + 100.0).detach();
    Tensor w = tensor({0.5, -1.5, 2.0, 1.0}, {4}, DType::f32);
    Tensor b = tensor({0.25, 0.0, -1.0, 3.0}, {4}, DType::f32);
    const std::int64_t channels = shape[1];
    w = narrow(w, 0, 0, channels);
    b = narrow(b, 0, 0, channels);
    BatchNormResult r = batch_norm_batch_stats(x, w, b, 1e-5, BatchNormKernel::fused);

    const std::vector<double> xs = x.to_vector(), ws = w.to_vector(), bs = b.to_vector();
    const std::int64_t batch = shape[0], plane = x.numel() / (batch * channels);
    std::vector<double> expected(xs.size()), means(channels), vars(channels);
    for (std::int64_t c = 0; c < channels; ++c) {
      double s = 0.0, ss = 0.0;
      for (std::int64_t n = 0; n < batch; ++n)
        for (std::int64_t i = 0; i < plane; ++i) s += xs[(n * channels + c) * plane + i];
      const double count = static_cast<double>(batch * plane), mu = s / count;
      for (std::int64_t n = 0; n < batch; ++n)
        for (std::int64_t i = 0; i < plane; ++i) ss += std::pow(xs[(n * channels + c) * plane + i] - mu, 2);
      means[c] = mu;
      vars[c] = ss / count;
      for (std::int64_t n = 0; n < batch; ++n)
        for (std::int64_t i = 0; i < plane; ++i) {
          const std::int64_t k = (n * channels + c) * plane + i;
          expected[k] = (xs[k] - mu) / std::sqrt(vars[c] + 1e-5) * ws[c] + bs[c];
        }
    }
    require_allclose(r.mean, means, 1e-6, 0.0);
    require_allclose(r.var, vars, 1e-4, 0.0);
    require_allclose(r.out, expected, 1e-4, 1e-4);
  }
}

TEST_CASE("fused and composite BatchNorm agree on values, gradients and second derivatives") {
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const Shape& shape : {Shape{4, 3, 5, 6}, Shape{6, 5}, Shape{3, 2, 9}}) {
      for (bool affine : {true, false}) {
        INFO(dtype_name(dtype) << " " << shape_str(shape) << (affine ? " affine" : " no affine"));
        Tensor x = channel_batch(shape, 3, dtype);
        Generator gen(5);
        Tensor w = affine ? uniform({shape[1]}, 0.5, 1.5, gen, dtype).requires_grad_() : Tensor();
        Tensor b = affine ? uniform({shape[1]}, -0.5, 0.5, gen, dtype).requires_grad_() : Tensor();
        Tensor r = uniform(shape, -1.0, 1.0, gen, dtype);
        Tensor v = uniform(shape, -1.0, 1.0, gen, dtype);
        TensorList leaves = affine ? TensorList{x, w, b} : TensorList{x};

        struct Outcome {
          BatchNormResult result;
          TensorList first, second;
        };
        auto run = [&](BatchNormKernel kernel) {
          Outcome o;
          o.result = batch_norm_batch_stats(x, w, b, 1e-3, kernel);
          Tensor loss = sum(o.result.out * r);
          // First derivatives without create_graph (the fused node's kernel) ...
          o.first = grad({loss}, leaves, {}, {.retain_graph = true});
          // ... and with it (its backward in ops), differentiated once more.
          TensorList g = grad({loss}, leaves, {}, {.create_graph = true});
          o.second = grad({sum(g[0] * v)}, leaves, {}, {.allow_unused = true});
          // The recorded backward and the kernel are the same function.
          const Tolerance tol = tolerance_for(dtype);
          for (std::size_t i = 0; i < g.size(); ++i) require_allclose(g[i], o.first[i], tol.rtol, tol.atol);
          return o;
        };
        const Outcome fused = run(BatchNormKernel::fused);
        const Outcome composite = run(BatchNormKernel::composite);
        const Tolerance tol = tolerance_for(dtype);
        require_allclose(fused.result.out, composite.result.out, tol.rtol, tol.atol);
        require_allclose(fused.result.mean, composite.result.mean, tol.rtol, tol.atol);
        require_allclose(fused.result.var, composite.result.var, tol.rtol, tol.atol);
        for (std::size_t i = 0; i < leaves.size(); ++i) {
          require_allclose(fused.first[i], composite.first[i], tol.rtol, tol.atol);
          REQUIRE(fused.second[i].defined() == composite.second[i].defined());
          if (fused.second[i].defined())
            require_allclose(fused.second[i], composite.second[i], tol.rtol * 10, tol.atol * 10);
        }
        CHECK(fused.result.out.grad_fn()->name == "batch_norm");
        CHECK_FALSE(fused.result.mean.requires_grad());
      }
    }
  }
}

TEST_CASE("the fused kernel gives the same bits on one thread and two") {
  // Large enough that the channels are really split between the threads.
  Tensor x = channel_batch({16, 4, 32, 32}, 9, DType::f32);
  Tensor r = channel_batch({16, 4, 32, 32}, 10, DType::f32).detach();
  auto run = [&] {
    BatchNormResult out = batch_norm_batch_stats(x, Tensor(), Tensor(), 1e-5);
    return std::make_pair(out.out.to_vector(), grad({sum(out.out * r)}, {x})[0].to_vector());
  };
  const int before = get_num_threads();
  set_num_threads(1);
  const auto one = run();
  set_num_threads(2);
  const auto two = run();
  set_num_threads(before);
  CHECK(one == two);
}

TEST_CASE("BatchNorm gradcheck and gradgradcheck in train and eval mode") {
  for (BatchNormKernel kernel : {BatchNormKernel::fused, BatchNormKernel::composite}) {
    for (const Shape& shape : {Shape{3, 2, 2, 2}, Shape{4, 3}, Shape{2, 2, 3}}) {
      INFO((kernel == BatchNormKernel::fused ? "fused " : "composite ") << shape_str(shape));
      Tensor x = channel_batch(shape, 21);
      Tensor w = random_input({shape[1]}, 22, 0.5, 1.5);
      Tensor b = random_input({shape[1]}, 23);
      auto affine = [kernel](const TensorList& in) {
        return batch_norm_batch_stats(in[0], in[1], in[2], 1e-3, kernel).out;
      };
      auto plain = [kernel](const TensorList& in) {
        return batch_norm_batch_stats(in[0], Tensor(), Tensor(), 1e-3, kernel).out;
      };
      REQUIRE_GRADCHECK(affine, (TensorList{x, w, b}));
      REQUIRE_GRADGRADCHECK(affine, (TensorList{x, w, b}));
      REQUIRE_GRADCHECK(plain, TensorList{x});
      REQUIRE_GRADGRADCHECK(plain, TensorList{x});
    }
  }
  // Eval mode: the running statistics are constants, the rest is affine in x.
  Tensor x = channel_batch({2, 3, 2, 2}, 31);
  Tensor rm = random_input({3}, 32).detach();
  Tensor rv = random_input({3}, 33, 0.5, 2.0).detach();
  Tensor w = random_input({3}, 34, 0.5, 1.5);
  Tensor b = random_input({3}, 35);
  auto eval = [&](const TensorList& in) { return batch_norm_running_stats(in[0], rm, rv, in[1], in[2], 1e-5); };
  REQUIRE_GRADCHECK(eval, (TensorList{x, w, b}));
  REQUIRE_GRADGRADCHECK(eval, (TensorList{x, w, b}));
  // The layer itself, in both modes.
  BatchNorm2d layer(3, {.dtype = DType::f64});
  auto through_layer = [&](const TensorList& in) { return layer(in[0]); };
  REQUIRE_GRADCHECK(through_layer, TensorList{x});
  REQUIRE_GRADGRADCHECK(through_layer, TensorList{x});
  layer.eval();
  REQUIRE_GRADCHECK(through_layer, TensorList{x});
  REQUIRE_GRADGRADCHECK(through_layer, TensorList{x});
}

TEST_CASE("BatchNorm registers weight and bias as parameters, running statistics as buffers") {
  BatchNorm2d layer(4);
  REQUIRE(layer.named_parameters().size() == 2);
  CHECK(layer.named_parameters()[0].first == "weight");
  CHECK(layer.named_parameters()[1].first == "bias");
  REQUIRE(layer.named_buffers().size() == 2);
  CHECK(layer.named_buffers()[0].first == "running_mean");
  CHECK(layer.named_buffers()[1].first == "running_var");
  CHECK(layer.weight.to_vector() == std::vector<double>(4, 1.0));
  CHECK(layer.bias.to_vector() == std::vector<double>(4, 0.0));
  CHECK(layer.running_mean.to_vector() == std::vector<double>(4, 0.0));
  CHECK(layer.running_var.to_vector() == std::vector<double>(4, 1.0));
  CHECK(layer.type_name() == "BatchNorm2d");
  CHECK(layer.extra_repr() == "4, eps=1e-05, momentum=0.1");

  Tensor x = channel_batch({3, 4, 2, 2}, 41, DType::f32);
  backward(sum(layer(x)));
  CHECK_FALSE(layer.running_mean.requires_grad());
  CHECK_FALSE(layer.running_var.requires_grad());
  CHECK_FALSE(layer.running_mean.grad().defined());
  CHECK(layer.running_mean.to_vector() != std::vector<double>(4, 0.0));

  BatchNorm1d bare(3, {.affine = false, .track_running_stats = false});
  CHECK(bare.named_parameters().empty());
  CHECK(bare.named_buffers().empty());
  CHECK_FALSE(bare.weight.defined());
  CHECK(bare.extra_repr() == "3, eps=1e-05, momentum=0.1, no affine, no running stats");
}

TEST_CASE("running statistics move in train mode only, with or without grad mode") {
  BatchNorm1d layer(2, {.momentum = 0.5, .dtype = DType::f64});
  Tensor x = tensor({1.0, 10.0, 3.0, 20.0}, {2, 2}, DType::f64);  // means 2, 15; unbiased vars 2, 50
  {
    NoGradGuard no_grad;
    layer(x);
  }
  require_allclose(layer.running_mean, std::vector<double>{1.0, 7.5});
  require_allclose(layer.running_var, std::vector<double>{1.5, 25.5});
  layer.eval();
  Tensor y = layer(x);
  require_allclose(layer.running_mean, std::vector<double>{1.0, 7.5});
  require_allclose(y, std::vector<double>{0.0, 2.5 / std::sqrt(25.5 + 1e-5), 2.0 / std::sqrt(1.5 + 1e-5),
                                          12.5 / std::sqrt(25.5 + 1e-5)});
  // A batch of one is fine in eval mode: nothing is estimated from it.
  CHECK(layer(tensor({1.0, 2.0}, {1, 2}, DType::f64)).shape() == Shape{1, 2});
}

TEST_CASE("BatchNorm errors name the layer, the argument and the shapes") {
  BatchNorm2d bn2(3);
  CHECK_THROWS_WITH(bn2(zeros({2, 4, 5, 5})),
                    Catch::Contains("BatchNorm2d(3): input [2, 4, 5, 5] has 4 channels, expected 3"));
  CHECK_THROWS_WITH(bn2(zeros({2, 3, 5})),
                    Catch::Contains("BatchNorm2d(3): expected a 4-D [N, C, H, W] input, got [2, 3, 5]"));
  CHECK_THROWS_WITH(bn2(zeros({1, 3, 1, 1})),
                    Catch::Contains("BatchNorm2d(3): expected more than 1 value per channel when training, "
                                    "got input [1, 3, 1, 1]"));
  CHECK_NOTHROW(bn2(zeros({1, 3, 1, 2})));  // two values per channel are enough
  CHECK_THROWS_WITH(bn2(zeros({2, 3, 2, 2}, DType::f64)),
                    Catch::Contains("BatchNorm2d(3): input is float64 but the layer is float32"));

  BatchNorm1d bn1(3);
  CHECK_THROWS_WITH(bn1(zeros({3})), Catch::Contains("BatchNorm1d(3): expected a 2-D [N, C] or 3-D [N, C, L] input, got [3]"));
  CHECK_THROWS_WITH(bn1(zeros({2, 3, 4, 5})), Catch::Contains("got [2, 3, 4, 5]"));
  CHECK_THROWS_WITH(bn1(zeros({1, 3})), Catch::Contains("expected more than 1 value per channel when training"));
  BatchNorm1d untracked(3, {.track_running_stats = false});
  untracked.eval();  // still batch statistics, so still needs a batch
  CHECK_THROWS_WITH(untracked(zeros({1, 3})), Catch::Contains("expected more than 1 value per channel"));

  CHECK_THROWS_WITH(BatchNorm1d(0), Catch::Contains("BatchNorm1d: the number of features must be positive, got 0"));
  CHECK_THROWS_WITH(BatchNorm1d(2, {.momentum = 1.5}), Catch::Contains("BatchNorm1d(2): momentum must be in [0, 1]"));
  CHECK_THROWS_WITH(batch_norm_batch_stats(zeros({4, 3}), zeros({2}), Tensor(), 1e-5),
                    Catch::Contains("batch_norm: weight [2] does not match the 3 channels of input [4, 3]"));
  CHECK_THROWS_WITH(batch_norm_running_stats(zeros({4, 3}), Tensor(), Tensor(), Tensor(), Tensor(), 1e-5),
                    Catch::Contains("eval mode needs running_mean and running_var"));
}
