#pragma once
// Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 70,000 28x28 grey images of clothing
// in 10 classes, 60,000 for training and 10,000 for testing, as four IDX files:
//   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
//   t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
// Debian's package dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist.
// Uncompressed copies (the same names without .gz) are read too.
#include <string>
#include <vector>

#include "nn/data/loader.hpp"

namespace symgrad::nn {

enum class Split { train, test };

// Where load_fashion_mnist looks when given no directory: $SYMGRAD_FASHION_MNIST_DIR if
// set and non-empty, else /usr/share/datasets/fashion-mnist.
std::string fashion_mnist_default_dir();

// "T-shirt/top", "Trouser", ..., "Ankle boot": the names of labels 0..9.
const std::vector<std::string>& fashion_mnist_class_names();

// Reads one split: count images of 1 x 28 x 28 bytes and their labels. Throws
// std::runtime_error naming the missing or damaged file (and how to install the data),
// or saying how images and labels disagree.
ImageDataset load_fashion_mnist(Split split, const std::string& dir = "");

}  // namespace symgrad::nn
