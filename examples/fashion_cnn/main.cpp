// fashion_cnn: the small CNN on Fashion-MNIST, written in plain C++ rather than
// a JSON config -- what a model in your own program looks like.
//
//   ./build/examples/fashion_cnn [--epochs N] [--threads N] [--out DIR]
//
// It builds 2 x [conv 3x3 - BatchNorm - ReLU - max-pool 2] with 32 and 64 channels
// and a linear head, trains it with SGD + Nesterov momentum on a warm-up + cosine
// schedule, and writes DIR/metrics.jsonl, DIR/curves.svg and DIR/model.cbor. The
// `symgrad train examples/configs/cnn_fashion.json` command trains the same model from
// its JSON description.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>

#include "nn/nn.hpp"

using namespace symgrad;
using namespace symgrad::nn;

namespace {

std::shared_ptr<Module> conv_block(std::int64_t in, std::int64_t out) {
  Conv2dConfig conv;
  conv.in_channels = in;
  conv.out_channels = out;
  conv.kernel_h = conv.kernel_w = 3;
  conv.padding_h = conv.padding_w = 1;  // keeps 28x28 (then 14x14)
  return std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
      std::make_shared<Conv2d>(conv), std::make_shared<BatchNorm2d>(out),
      std::make_shared<ReLU>(), std::make_shared<MaxPool2d>(2)});
}

int run(int argc, char** argv) {
  std::int64_t epochs = 5;
  int threads = 2;
  std::string out = "runs/fashion_cnn";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--epochs") epochs = std::atoi(argv[i + 1]);
    else if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--out") out = argv[i + 1];
    else throw std::invalid_argument("unknown flag " + flag + " (want --epochs, --threads, --out)");
  }
  if (epochs < 1 || threads < 1) throw std::invalid_argument("--epochs and --threads must be positive");
  set_num_threads(threads);
  std::filesystem::create_directories(out);

  manual_seed(1);  // every initialiser draws from the default generator
  Sequential model{conv_block(1, 32), conv_block(32, 64), std::make_shared<Flatten>(),
                   std::make_shared<Linear>(64 * 7 * 7, 10)};
  std::printf("%s\n", model.summary().c_str());

  // Fashion-MNIST from Debian's dataset-fashion-mnist package, normalised with the
  // training set's mean and standard deviation.
  LoaderOptions train_options;
  train_options.batch_size = 64;
  train_options.seed = 1;
  train_options.mean = 0.2860;
  train_options.std = 0.3530;
  LoaderOptions test_options = train_options;
  test_options.batch_size = 1000;
  test_options.shuffle = false;
  const DataLoader train(load_fashion_mnist(Split::train), train_options);
  const DataLoader test(load_fashion_mnist(Split::test), test_options);

  const double lr = 0.05;
  SGD optimizer(model.parameters(), {.lr = lr, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true});
  const std::int64_t warmup = 200, total = epochs * train.num_batches();
  const LinearWarmup schedule(std::make_unique<CosineLR>(lr, total - warmup), warmup);

  FitOptions options;
  options.epochs = epochs;
  options.log_path = out + "/metrics.jsonl";
  options.svg_path = out + "/curves.svg";
  options.loss.label_smoothing = 0.1;
  const auto history = fit(model, optimizer, &schedule, train, &test, options);

  save_state(model, out + "/model.cbor");
  std::printf("test accuracy after %lld epochs: %.2f%%  (%.1f s per epoch; %s/curves.svg)\n",
              static_cast<long long>(epochs), 100.0 * history.back().test_acc,
              history.back().seconds, out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_cnn: %s\n", e.what());
    return 1;
  }
}
