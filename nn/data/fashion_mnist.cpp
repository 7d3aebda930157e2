#include "nn/data/fashion_mnist.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "nn/data/idx.hpp"

namespace symgrad::nn {

namespace {
constexpr const char* kDebianDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kDirVariable = "SYMGRAD_FASHION_MNIST_DIR";

// The .gz file if present, else the uncompressed one; throws if neither exists.
std::string find_file(const std::string& dir, const std::string& stem, const std::string& who) {
  const std::filesystem::path base(dir);
  const std::string gz = (base / (stem + ".gz")).string();
  const std::string plain = (base / stem).string();
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  if (std::filesystem::exists(plain, ec)) return plain;
  throw std::runtime_error(who + ": " + gz + " is missing (nor is there an uncompressed " + stem +
                           "); install the Debian package dataset-fashion-mnist (apt-get install "
                           "dataset-fashion-mnist) or pass the directory that holds the files (or set " +
                           kDirVariable + ")");
}

IdxArray read(const std::string& path, const std::string& who) {
  try {
    return read_idx(path);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(who + ": " + e.what());
  }
}
}  // namespace

std::string fashion_mnist_default_dir() {
  const char* env = std::getenv(kDirVariable);
  return env && *env ? std::string(env) : std::string(kDebianDir);
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

ImageDataset load_fashion_mnist(Split split, const std::string& dir) {
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string who =
      std::string("load_fashion_mnist(") + (split == Split::train ? "train" : "test") + ")";
  const std::string where = dir.empty() ? fashion_mnist_default_dir() : dir;
  const std::string images_path = find_file(where, prefix + "-images-idx3-ubyte", who);
  const std::string labels_path = find_file(where, prefix + "-labels-idx1-ubyte", who);
  IdxArray images = read(images_path, who);
  IdxArray labels = read(labels_path, who);

  if (images.type != IdxType::u8 || images.dims.size() != 3)
    throw std::runtime_error(who + ": " + images_path + " holds a rank-" +
                             std::to_string(images.dims.size()) + " " + idx_type_name(images.type) +
                             " array; expected images as rank-3 u8 [count, rows, columns]");
  if (labels.type != IdxType::u8 || labels.dims.size() != 1)
    throw std::runtime_error(who + ": " + labels_path + " holds a rank-" +
                             std::to_string(labels.dims.size()) + " " + idx_type_name(labels.type) +
                             " array; expected labels as rank-1 u8 [count]");
  if (images.dims[0] != labels.dims[0])
    throw std::runtime_error(who + ": " + images_path + " has " + std::to_string(images.dims[0]) +
                             " images but " + labels_path + " has " + std::to_string(labels.dims[0]) +
                             " labels");

  ImageDataset data;
  data.count = images.dims[0];
  data.channels = 1;
  data.height = images.dims[1];
  data.width = images.dims[2];
  data.num_classes = 10;
  data.class_names = fashion_mnist_class_names();
  data.labels.reserve(labels.bytes.size());
  for (std::size_t i = 0; i < labels.bytes.size(); ++i) {
    if (labels.bytes[i] >= 10)
      throw std::runtime_error(who + ": " + labels_path + ": label " + std::to_string(labels.bytes[i]) +
                               " of example " + std::to_string(i) + " is not a class in [0, 10)");
    data.labels.push_back(labels.bytes[i]);
  }
  data.pixels = std::move(images.bytes);
  return data;
}

}  // namespace symgrad::nn
