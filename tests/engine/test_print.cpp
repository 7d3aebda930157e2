// Tensor::to_string and operator<<. The expected tensor bodies are what PyTorch 1.13
// prints for the same values (torch's own suffixes replaced by shape and dtype).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>

#include "engine/engine.hpp"

using namespace symgrad;

TEST_CASE("print: a matrix aligns columns with 4 decimals", "[print]") {
  Tensor t = tensor({1.0, -2.5, 3.0, 4.0}, {2, 2});
  REQUIRE(t.to_string() ==
          "tensor([[ 1.0000, -2.5000],\n"
          "        [ 3.0000,  4.0000]], shape=[2, 2], dtype=float32)");
  std::ostringstream os;
  os << t;
  REQUIRE(os.str() == t.to_string());
}

TEST_CASE("print: whole numbers print without decimals", "[print]") {
  REQUIRE(tensor({1.0, -2.0, 3.0, 4.0}, {2, 2}, DType::f64).to_string() ==
          "tensor([[ 1., -2.],\n"
          "        [ 3.,  4.]], shape=[2, 2], dtype=float64)");
  REQUIRE(zeros({3}).to_string() == "tensor([0., 0., 0.], shape=[3], dtype=float32)");
}

TEST_CASE("print: scalars have no shape suffix", "[print]") {
  REQUIRE(scalar(3.5, DType::f64).to_string() == "tensor(3.5000, dtype=float64)");
  REQUIRE(scalar(-0.0).to_string() == "tensor(-0., dtype=float32)");
  REQUIRE(scalar(1e10).to_string() == "tensor(1.0000e+10, dtype=float32)");
}

TEST_CASE("print: zero-size tensors print as []", "[print]") {
  REQUIRE(zeros({0, 3}).to_string() == "tensor([], shape=[0, 3], dtype=float32)");
  REQUIRE(zeros({0}, DType::f64).to_string() == "tensor([], shape=[0], dtype=float64)");
}

TEST_CASE("print: scientific notation for wide ranges, huge and tiny values", "[print]") {
  REQUIRE(tensor({1e-5, 1.0, 3e3}).to_string() ==
          "tensor([1.0000e-05, 1.0000e+00, 3.0000e+03], shape=[3], dtype=float32)");
  REQUIRE(tensor({1e9, 1.0}).to_string() == "tensor([1.0000e+09, 1.0000e+00], shape=[2], dtype=float32)");
  REQUIRE(tensor({123456.789, -0.5}).to_string() ==
          "tensor([ 1.2346e+05, -5.0000e-01], shape=[2], dtype=float32)");
  REQUIRE(tensor({2e-5}, {1}).to_string() == "tensor([2.0000e-05], shape=[1], dtype=float32)");
}

TEST_CASE("print: nan and inf are padded to the common width", "[print]") {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor t = tensor({std::nan(""), 1.5, inf, -inf});
  REQUIRE(t.to_string() == "tensor([   nan, 1.5000,    inf,   -inf], shape=[4], dtype=float32)");
}

TEST_CASE("print: long rows wrap at 80 columns", "[print]") {
  REQUIRE(arange(0, 30).to_string() ==
          "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
          "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
          "        28., 29.], shape=[30], dtype=float32)");
  // A suffix that would pass column 80 moves to its own line.
  REQUIRE(arange(0, 14).to_string() ==
          "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.],\n"
          "       shape=[14], dtype=float32)");
}

TEST_CASE("print: higher ranks separate blocks with blank lines", "[print]") {
  Tensor t = reshape(arange(0, 24), {2, 3, 4}) / 7.0;
  REQUIRE(t.to_string() ==
          "tensor([[[0.0000, 0.1429, 0.2857, 0.4286],\n"
          "         [0.5714, 0.7143, 0.8571, 1.0000],\n"
          "         [1.1429, 1.2857, 1.4286, 1.5714]],\n"
          "\n"
          "        [[1.7143, 1.8571, 2.0000, 2.1429],\n"
          "         [2.2857, 2.4286, 2.5714, 2.7143],\n"
          "         [2.8571, 3.0000, 3.1429, 3.2857]]], shape=[2, 3, 4], dtype=float32)");
  REQUIRE(reshape(arange(0, 3), {3, 1, 1, 1}).to_string() ==
          "tensor([[[[0.]]],\n"
          "\n"
          "\n"
          "        [[[1.]]],\n"
          "\n"
          "\n"
          "        [[[2.]]]], shape=[3, 1, 1, 1], dtype=float32)");
}

TEST_CASE("print: more than 1000 elements are summarised with ...", "[print]") {
  REQUIRE(reshape(arange(0, 2000), {40, 50}).to_string() ==
          "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,\n"
          "         4.9000e+01],\n"
          "        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,\n"
          "         9.9000e+01],\n"
          "        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,\n"
          "         1.4900e+02],\n"
          "        ...,\n"
          "        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,\n"
          "         1.8990e+03],\n"
          "        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,\n"
          "         1.9490e+03],\n"
          "        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,\n"
          "         1.9990e+03]], shape=[40, 50], dtype=float32)");
  // Exactly 1000 elements are printed in full.
  const std::string full = arange(0, 1000).to_string();
  REQUIRE(full.find("...") == std::string::npos);
  REQUIRE(full.find(" 999.]") != std::string::npos);
}

TEST_CASE("print: autograd state is shown like torch", "[print]") {
  Tensor leaf = arange(0, 3).requires_grad_();
  REQUIRE(leaf.to_string() == "tensor([0., 1., 2.], shape=[3], dtype=float32, requires_grad=True)");
  REQUIRE((leaf * 2.0).to_string() == "tensor([0., 2., 4.], shape=[3], dtype=float32, grad_fn=<mul>)");
  REQUIRE(Tensor().to_string() == "tensor(undefined)");
}
