// Builds a small expression with an installed symgrad, backpropagates, and checks
// the gradient against the formula: exits non-zero if anything is off, so it tests
// that the installed headers, library and link dependencies (hwy, OpenBLAS) all
// work together in a project that is not symgrad's own build; then the same for nn
// (nlohmann_json, zlib): a model built from JSON, saved, and loaded into another;
// and for pde: config G built, folded, and checked against its eval-mode self.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

// The installed headers are reachable both as <symgrad/engine/...> and as
// "engine/..."; this spelling needs both include directories of the package.
#include <symgrad/engine/engine.hpp>
#include <symgrad/nn/nn.hpp>
#include <symgrad/pde/fold_bn.hpp>
#include <symgrad/pde/pde_resnet.hpp>

using namespace symgrad;

namespace {

// Largest |actual - expected|, or infinity when the sizes differ.
double largest_error(const Tensor& actual, const std::vector<double>& expected) {
  const std::vector<double> values = actual.to_vector();
  if (values.size() != expected.size()) {
    std::printf("install_consumer: %s has %zu entries, expected %zu\n",
                shape_str(actual.shape()).c_str(), values.size(), expected.size());
    return INFINITY;
  }
  double error = 0.0;
  for (std::size_t i = 0; i < values.size(); ++i) error = std::max(error, std::abs(values[i] - expected[i]));
  return error;
}

}  // namespace

int main() {
  try {
    // loss = sum(tanh(x * w)) + sum(x * x) + sum(a @ b), with w [2, 1] broadcast
    // against x [n]; the matmul goes through OpenBLAS.
    const std::int64_t n = 37;  // odd, so SIMD kernels run their tail loops too
    Tensor x = linspace(-1.5, 2.5, n, DType::f64).requires_grad_();
    Tensor w = tensor({1.5, -0.5}, {2, 1}, DType::f64).requires_grad_();
    Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64).requires_grad_();
    Tensor b = tensor({0.5, -1, 2, 0.25, -3, 1}, {3, 2}, DType::f64).requires_grad_();
    Tensor loss = sum(tanh(x * w)) + sum(x * x) + sum(matmul(a, b));
    backward(loss);

    // d/dx_j = sum_i w_i (1 - tanh^2(x_j w_i)) + 2 x_j
    // d/dw_i = sum_j x_j (1 - tanh^2(x_j w_i))
    const std::vector<double> xs = x.to_vector(), ws = w.to_vector();
    std::vector<double> expected_dx(xs.size()), expected_dw(ws.size());
    double expected_loss = 0.0;
    for (std::size_t j = 0; j < xs.size(); ++j) {
      expected_dx[j] = 2.0 * xs[j];
      expected_loss += xs[j] * xs[j];
      for (std::size_t i = 0; i < ws.size(); ++i) {
        const double t = std::tanh(xs[j] * ws[i]);
        expected_loss += t;
        expected_dx[j] += ws[i] * (1.0 - t * t);
        expected_dw[i] += xs[j] * (1.0 - t * t);
      }
    }
    // sum(a @ b) = sum_ik a_ik (sum_j b_kj): d/da_ik = sum_j b_kj, d/db_kj = sum_i a_ik
    const std::vector<double> as = a.to_vector(), bs = b.to_vector();
    std::vector<double> expected_da(6), expected_db(6);
    for (std::size_t i = 0; i < 2; ++i) {
      for (std::size_t k = 0; k < 3; ++k) {
        const double b_row_sum = bs[k * 2] + bs[k * 2 + 1];
        expected_da[i * 3 + k] = b_row_sum;
        expected_loss += as[i * 3 + k] * b_row_sum;
        for (std::size_t j = 0; j < 2; ++j) expected_db[k * 2 + j] += as[i * 3 + k];
      }
    }

    std::printf("loss = %.12f\ndloss/dw = %s\n", loss.item(), shape_str(w.grad().shape()).c_str());
    for (double g : w.grad().to_vector()) std::printf("  %.12f\n", g);
    const double error = std::max({std::abs(loss.item() - expected_loss),
                                   largest_error(x.grad(), expected_dx), largest_error(w.grad(), expected_dw),
                                   largest_error(a.grad(), expected_da), largest_error(b.grad(), expected_db)});
    if (!(error < 1e-10)) {
      std::printf("install_consumer: FAILED: largest error %.3g\n", error);
      return 1;
    }
    std::printf("install_consumer: engine OK (largest error %.3g)\n", error);

    // Two differently seeded copies of one architecture; loading the first's weights
    // (CBOR with zlib's CRC-32) into the second must make them compute the same.
    const auto spec = nlohmann::json::parse(
        R"({"type": "Sequential", "layers": [{"type": "Linear", "in": 4, "out": 3}, {"type": "Tanh"}]})");
    nn::manual_seed(3);
    const auto first = nn::build_model(spec);
    nn::manual_seed(4);
    const auto second = nn::build_model(spec);
    const std::string path =
        (std::filesystem::temp_directory_path() / "symgrad_install_consumer.cbor").string();
    nn::save_state(*first, path);
    nn::load_state(*second, path);
    std::filesystem::remove(path);
    const Tensor input = reshape(linspace(-1.0, 1.0, 8), {2, 4});
    if ((*first)(input).to_vector() != (*second)(input).to_vector()) {
      std::printf("install_consumer: FAILED: the reloaded nn model computes something else\n");
      return 1;
    }
    std::printf("install_consumer: nn OK (%lld parameters saved and reloaded)\n",
                static_cast<long long>(second->num_parameters()));

    // pde: a PDE ResNet (config G) in float64; its folded copy must compute what the
    // model computes in eval mode.
    pde::PDEResNetConfig config = pde::preset("G");
    config.dtype = DType::f64;
    nn::manual_seed(5);
    pde::PDEResNet model(config);
    model.eval();
    const Tensor images = reshape(linspace(-1.0, 1.0, 2 * 28 * 28, DType::f64), {2, 1, 28, 28});
    const Tensor logits = model(images);
    const Tensor folded_logits = (*pde::fold_batch_norms(model))(images);
    const double fold_error = largest_error(folded_logits, logits.to_vector());
    if (!(fold_error < 1e-10)) {
      std::printf("install_consumer: FAILED: folded PDE ResNet differs by %.3g\n", fold_error);
      return 1;
    }
    std::printf("install_consumer: pde OK (%lld parameters, folded copy within %.3g)\n",
                static_cast<long long>(model.num_parameters()), fold_error);
    return 0;
  } catch (const std::exception& e) {
    std::printf("install_consumer: FAILED with exception: %s\n", e.what());
    return 1;
  }
}
