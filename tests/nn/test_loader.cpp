// DataLoader: every example once per epoch, seeded shuffles, drop_last, normalisation,
// crop and flip against hand-computed images, purity of batch(epoch, index); and
// Fashion-MNIST loading from generated IDX files and, when installed, the real files.
#include "nn/data/fashion_mnist.hpp"
#include "nn/data/idx.hpp"
#include "nn/data/loader.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "support/files.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
namespace fs = std::filesystem;

namespace {
using symgrad::testing::TempDir;
using symgrad::testing::read_bytes;
using symgrad::testing::write_bytes;
// count images of C x H x W whose pixels encode the example: pixel k of example i is
// (7 * i + k) % 256, label i % 10.
ImageDataset make_dataset(std::int64_t count, std::int64_t c = 1, std::int64_t h = 2, std::int64_t w = 3) {
  ImageDataset d;
  d.count = count;
  d.channels = c;
  d.height = h;
  d.width = w;
  for (std::int64_t i = 0; i < count; ++i) {
    for (std::int64_t k = 0; k < c * h * w; ++k)
      d.pixels.push_back(static_cast<std::uint8_t>((7 * i + k) % 256));
    d.labels.push_back(i % 10);
  }
  return d;
}

std::vector<std::uint8_t> raw(const Tensor& t) {
  const auto* p = static_cast<const std::uint8_t*>(t.raw_data());
  return {p, p + t.numel() * static_cast<std::int64_t>(dtype_size(t.dtype()))};
}

// Image b of a batch, un-normalised back to integer pixel values (std = 1, mean = 0).
std::vector<int> pixels_of(const Batch& batch, std::int64_t b) {
  const std::vector<double> v = batch.images.to_vector();
  const std::int64_t plane = batch.images.numel() / batch.images.size(0);
  std::vector<int> out;
  for (std::int64_t k = 0; k < plane; ++k)
    out.push_back(static_cast<int>(std::lround(v[b * plane + k] * 255.0)));
  return out;
}

}  // namespace

TEST_CASE("every example appears exactly once per epoch, with its label and pixels") {
  const ImageDataset data = make_dataset(23);
  DataLoader loader(data, LoaderOptions{.batch_size = 5, .seed = 11});
  CHECK(loader.num_batches() == 5);
  CHECK(loader.num_examples() == 23);
  for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::int64_t> seen;
    for (std::int64_t i = 0; i < loader.num_batches(); ++i) {
      Batch b = loader.batch(epoch, i);
      const std::int64_t n = i < 4 ? 5 : 3;  // the last batch holds the remainder
      REQUIRE(b.images.shape() == Shape{n, 1, 2, 3});
      REQUIRE(b.labels.size() == static_cast<std::size_t>(n));
      for (std::int64_t k = 0; k < n; ++k) {
        const std::int64_t example = b.indices[k];
        CHECK(b.labels[k] == example % 10);
        std::vector<int> expected;
        for (int p = 0; p < 6; ++p) expected.push_back(static_cast<int>((7 * example + p) % 256));
        CHECK(pixels_of(b, k) == expected);
        seen.push_back(example);
      }
    }
    std::vector<std::int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> all(23);
    std::iota(all.begin(), all.end(), 0);
    CHECK(sorted == all);
    CHECK(seen == loader.order(epoch));
  }
}

TEST_CASE("shuffling depends on seed and epoch only; shuffle off keeps the dataset order") {
  const ImageDataset data = make_dataset(100);
  DataLoader a(data, LoaderOptions{.batch_size = 10, .seed = 3});
  DataLoader same(data, LoaderOptions{.batch_size = 7, .seed = 3});
  DataLoader other(data, LoaderOptions{.batch_size = 10, .seed = 4});
  CHECK(a.order(0) != a.order(1));
  CHECK(a.order(1) != a.order(2));
  CHECK(a.order(5) == same.order(5));  // the order does not depend on batch_size
  CHECK(a.order(0) != other.order(0));
  const std::vector<std::int64_t> order2 = a.order(2);
  CHECK(a.batch(2, 3).indices == std::vector<std::int64_t>(order2.begin() + 30, order2.begin() + 40));

  // Shuffles are spread out: over many epochs each example visits the first slot about
  // equally often (a broken shuffle, such as a fixed swap pattern, fails this).
  std::map<std::int64_t, int> first;
  for (std::int64_t e = 0; e < 2000; ++e) ++first[a.order(e)[0] / 10];
  for (auto& [decile, hits] : first) CHECK(hits > 120);  // 200 expected per decile

  DataLoader plain(data, LoaderOptions{.batch_size = 10, .shuffle = false});
  std::vector<std::int64_t> identity(100);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(plain.order(0) == identity);
  CHECK(plain.order(7) == identity);
  CHECK(plain.batch(3, 2).indices == std::vector<std::int64_t>{20, 21, 22, 23, 24, 25, 26, 27, 28, 29});
}

TEST_CASE("drop_last drops the short final batch") {
  const ImageDataset data = make_dataset(23);
  DataLoader loader(data, LoaderOptions{.batch_size = 5, .drop_last = true, .seed = 2});
  CHECK(loader.num_batches() == 4);
  CHECK(loader.num_examples() == 20);
  std::set<std::int64_t> seen;
  for (std::int64_t i = 0; i < 4; ++i) {
    Batch b = loader.batch(1, i);
    CHECK(b.images.size(0) == 5);
    seen.insert(b.indices.begin(), b.indices.end());
  }
  CHECK(seen.size() == 20);
  CHECK_THROWS_WITH(
      loader.batch(1, 4),
      Catch::Contains(
          "index 4 is out of range: an epoch has 4 batches (23 examples, batch_size 5, drop_last)"));
  DataLoader exact(make_dataset(20), LoaderOptions{.batch_size = 5, .drop_last = true});
  CHECK(exact.num_batches() == 4);
}

TEST_CASE("normalisation is (pixel / 255 - mean) / std in the requested dtype") {
  ImageDataset data = make_dataset(1, 1, 1, 4);
  data.pixels = {0, 51, 128, 255};
  for (DType dtype : {DType::f32, DType::f64}) {
    DataLoader loader(data, LoaderOptions{.batch_size = 1, .mean = 0.5, .std = 0.25, .dtype = dtype});
    Batch b = loader.batch(0, 0);
    CHECK(b.images.dtype() == dtype);
    CHECK(b.images.shape() == Shape{1, 1, 1, 4});
    const std::vector<double> v = b.images.to_vector();
    for (int k = 0; k < 4; ++k) {
      const double expected = (data.pixels[k] / 255.0 - 0.5) / 0.25;
      CHECK(v[k] == (dtype == DType::f32 ? static_cast<double>(static_cast<float>(expected)) : expected));
    }
    CHECK(v[0] == -2.0);
    CHECK(v[3] == 2.0);
    CHECK(v[1] == Approx(-1.2));  // 51 / 255 = 0.2
  }
}

TEST_CASE("random crop with zero padding and horizontal flip, against hand-computed images") {
  // One 3x3 image with pixels 1..9, repeated so that one batch shows many draws; a
  // second channel (pixel + 10) must be cropped and flipped the same way.
  const std::vector<int> image{1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::int64_t copies = 720;
  ImageDataset data;
  data.count = copies;
  data.channels = 2;
  data.height = 3;
  data.width = 3;
  for (std::int64_t i = 0; i < copies; ++i) {
    for (int p : image) data.pixels.push_back(static_cast<std::uint8_t>(p));
    for (int p : image) data.pixels.push_back(static_cast<std::uint8_t>(p + 10));
    data.labels.push_back(0);
  }
  // Reference: pad by 1 with zeros, cut 3x3 at (dy, dx), then mirror if flip.
  auto reference = [&](int dy, int dx, bool flip) {
    std::vector<int> out;
    for (int c = 0; c < 2; ++c)
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 3; ++x) {
          const int sx = (flip ? 2 - x : x) + dx - 1, sy = y + dy - 1;
          out.push_back(sx < 0 || sx > 2 || sy < 0 || sy > 2 ? 0 : image[sy * 3 + sx] + 10 * c);
        }
    return out;
  };
  // The reference agrees with images worked out by hand (first channel shown).
  auto first_channel = [](std::vector<int> v) { return std::vector<int>(v.begin(), v.begin() + 9); };
  CHECK(first_channel(reference(0, 0, false)) == std::vector<int>{0, 0, 0, 0, 1, 2, 0, 4, 5});
  CHECK(first_channel(reference(2, 1, false)) == std::vector<int>{4, 5, 6, 7, 8, 9, 0, 0, 0});
  CHECK(first_channel(reference(1, 1, true)) == std::vector<int>{3, 2, 1, 6, 5, 4, 9, 8, 7});
  CHECK(first_channel(reference(1, 2, true)) == std::vector<int>{0, 3, 2, 0, 6, 5, 0, 9, 8});
  CHECK(reference(1, 1, false)[9] == 11);

  SECTION("crop and flip: every output is one of the 18 candidates, and all of them occur") {
    DataLoader loader(
        data, LoaderOptions{.batch_size = copies, .seed = 5, .crop_padding = 1, .horizontal_flip = true});
    std::map<std::vector<int>, int> candidates;
    for (int dy = 0; dy < 3; ++dy)
      for (int dx = 0; dx < 3; ++dx)
        for (bool flip : {false, true}) candidates[reference(dy, dx, flip)] = 0;
    REQUIRE(candidates.size() == 18);
    Batch b = loader.batch(0, 0);
    for (std::int64_t k = 0; k < copies; ++k) {
      auto it = candidates.find(pixels_of(b, k));
      REQUIRE(it != candidates.end());
      ++it->second;
    }
    for (auto& [img, hits] : candidates) CHECK(hits > 15);  // 40 expected each
  }
  SECTION("crop only never flips; flip only never shifts") {
    DataLoader crop(data, LoaderOptions{.batch_size = copies, .crop_padding = 1});
    Batch b = crop.batch(0, 0);
    std::set<std::vector<int>> got;
    for (std::int64_t k = 0; k < copies; ++k) got.insert(pixels_of(b, k));
    std::set<std::vector<int>> expected;
    for (int dy = 0; dy < 3; ++dy)
      for (int dx = 0; dx < 3; ++dx) expected.insert(reference(dy, dx, false));
    CHECK(got == expected);

    DataLoader flip(data, LoaderOptions{.batch_size = copies, .horizontal_flip = true});
    Batch f = flip.batch(0, 0);
    int flipped = 0;
    for (std::int64_t k = 0; k < copies; ++k) {
      const std::vector<int> px = pixels_of(f, k);
      if (px == reference(1, 1, true))
        ++flipped;
      else
        CHECK(px == reference(1, 1, false));
    }
    CHECK(flipped > copies * 4 / 10);
    CHECK(flipped < copies * 6 / 10);
  }
  SECTION("padding black pixels are normalised like pixel 0") {
    DataLoader loader(data, LoaderOptions{.batch_size = copies, .mean = 0.5, .std = 0.5, .crop_padding = 2});
    const std::vector<double> v = loader.batch(0, 0).images.to_vector();
    std::set<double> values(v.begin(), v.end());
    CHECK(values.count(-1.0) == 1);  // (0 / 255 - 0.5) / 0.5
  }
}

TEST_CASE("batch(epoch, index) is a pure function") {
  const ImageDataset data = make_dataset(50, 1, 4, 4);
  const LoaderOptions opts{
      .batch_size = 8, .seed = 9, .mean = 0.2, .std = 0.3, .crop_padding = 2, .horizontal_flip = true};
  DataLoader loader(data, opts);
  const Batch first = loader.batch(3, 2);
  loader.batch(0, 0);
  loader.batch(5, 6);
  const Batch again = loader.batch(3, 2);
  CHECK(raw(first.images) == raw(again.images));
  CHECK(first.labels == again.labels);
  DataLoader fresh(data, opts);
  CHECK(raw(fresh.batch(3, 2).images) == raw(first.images));
  // Augmentation differs between batches and epochs.
  CHECK(raw(loader.batch(4, 2).images) != raw(first.images));
  DataLoader copy = loader;
  CHECK(raw(copy.batch(3, 2).images) == raw(first.images));
}

TEST_CASE("DataLoader refuses bad options, datasets and indices") {
  const ImageDataset data = make_dataset(10);
  CHECK_THROWS_WITH(DataLoader(data, LoaderOptions{.batch_size = 0}),
                    Catch::Contains("batch_size must be positive, got 0"));
  CHECK_THROWS_WITH(DataLoader(data, LoaderOptions{.std = 0.0}), Catch::Contains("std > 0"));
  CHECK_THROWS_WITH(DataLoader(data, LoaderOptions{.crop_padding = -1}),
                    Catch::Contains("crop_padding must be >= 0, got -1"));
  ImageDataset bad = data;
  bad.pixels.pop_back();
  CHECK_THROWS_WITH(DataLoader(bad, {}), Catch::Contains("59 pixel bytes, but 10 images of 1x2x3 need 60"));
  bad = data;
  bad.labels[4] = 10;
  CHECK_THROWS_WITH(DataLoader(bad, {}), Catch::Contains("label 10 of example 4 is not a class in [0, 10)"));
  bad = data;
  bad.labels.pop_back();
  CHECK_THROWS_WITH(DataLoader(bad, {}), Catch::Contains("9 labels for 10 images"));
  DataLoader loader(data, LoaderOptions{.batch_size = 4});
  CHECK_THROWS_WITH(loader.batch(0, 3), Catch::Contains("index 3 is out of range: an epoch has 3 batches"));
  CHECK_THROWS_WITH(loader.batch(0, -1), Catch::Contains("index -1 is out of range"));
  CHECK_THROWS_WITH(loader.batch(-1, 0), Catch::Contains("epoch must be >= 0, got -1"));
  DataLoader empty(make_dataset(0), {});
  CHECK(empty.num_batches() == 0);
}

TEST_CASE("load_fashion_mnist reads generated IDX files and explains what is missing") {
  TempDir dir("loader");
  auto write_split = [&](const std::string& prefix, std::int64_t count, std::vector<double> labels,
                         bool gzip) {
    IdxArray images;
    images.dims = {count, 2, 3};
    for (std::int64_t i = 0; i < count * 6; ++i) images.bytes.push_back(static_cast<std::uint8_t>(i));
    IdxArray lab;
    lab.dims = {static_cast<std::int64_t>(labels.size())};
    lab.bytes.assign(labels.begin(), labels.end());
    const std::string ext = gzip ? ".gz" : "";
    write_idx(dir.file(prefix + "-images-idx3-ubyte" + ext), images, gzip);
    write_idx(dir.file(prefix + "-labels-idx1-ubyte" + ext), lab, gzip);
  };
  write_split("train", 4, {9, 0, 3, 7}, true);
  write_split("t10k", 2, {1, 2}, false);  // uncompressed copies are read too

  ImageDataset train = load_fashion_mnist(Split::train, dir.path.string());
  CHECK(train.count == 4);
  CHECK((train.channels == 1 && train.height == 2 && train.width == 3 && train.num_classes == 10));
  CHECK(train.labels == std::vector<std::int64_t>{9, 0, 3, 7});
  CHECK(train.pixels.size() == 24);
  CHECK(train.pixels[23] == 23);
  CHECK(train.class_names.size() == 10);
  CHECK(train.class_names[0] == "T-shirt/top");
  CHECK(train.class_names[9] == "Ankle boot");
  CHECK(load_fashion_mnist(Split::test, dir.path.string()).labels == std::vector<std::int64_t>{1, 2});

  // The environment variable replaces the default directory.
  ::setenv("SYMGRAD_FASHION_MNIST_DIR", dir.path.c_str(), 1);
  CHECK(fashion_mnist_default_dir() == dir.path.string());
  CHECK(load_fashion_mnist(Split::train).count == 4);
  ::unsetenv("SYMGRAD_FASHION_MNIST_DIR");
  CHECK(fashion_mnist_default_dir() == "/usr/share/datasets/fashion-mnist");

  CHECK_THROWS_WITH(load_fashion_mnist(Split::train, dir.file("nowhere")),
                    Catch::Contains(dir.file("nowhere/train-images-idx3-ubyte.gz") + " is missing") &&
                        Catch::Contains("apt-get install dataset-fashion-mnist") &&
                        Catch::Contains("pass the directory"));
  fs::remove(dir.file("t10k-labels-idx1-ubyte"));
  CHECK_THROWS_WITH(load_fashion_mnist(Split::test, dir.path.string()),
                    Catch::Contains("t10k-labels-idx1-ubyte.gz is missing"));

  write_split("train", 4, {9, 0, 3}, true);
  CHECK_THROWS_WITH(load_fashion_mnist(Split::train, dir.path.string()),
                    Catch::Contains("has 4 images but") && Catch::Contains("has 3 labels"));
  write_split("train", 4, {9, 0, 10, 1}, true);
  CHECK_THROWS_WITH(load_fashion_mnist(Split::train, dir.path.string()),
                    Catch::Contains("label 10 of example 2 is not a class in [0, 10)"));
  write_idx(dir.file("train-labels-idx1-ubyte.gz"), IdxArray{IdxType::i32, {4}, {}, {1, 2, 3, 4}}, true);
  CHECK_THROWS_WITH(load_fashion_mnist(Split::train, dir.path.string()),
                    Catch::Contains("expected labels as rank-1 u8"));
}

TEST_CASE("the installed Fashion-MNIST has 60000 + 10000 images and the known first labels") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/train-images-idx3-ubyte.gz")) {
    WARN("skipped: Fashion-MNIST is not installed in " << dir << " (apt-get install dataset-fashion-mnist)");
    SUCCEED();
    return;
  }
  // The expected labels and pixel sums were read once from the Debian files with
  //   python3 -c "import gzip; d = gzip.open(F).read(); print(list(d[8:28]))"   (labels)
  //   python3 -c "import gzip; d = gzip.open(F).read(); print(sum(d[16:16+784]))" (image 0)
  const ImageDataset train = load_fashion_mnist(Split::train, dir);
  CHECK(train.count == 60000);
  CHECK((train.channels == 1 && train.height == 28 && train.width == 28));
  CHECK(std::vector<std::int64_t>(train.labels.begin(), train.labels.begin() + 20) ==
        std::vector<std::int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9, 5, 5, 7, 9, 1, 0, 6, 4});
  CHECK(std::accumulate(train.pixels.begin(), train.pixels.begin() + 784, 0) == 76247);

  const ImageDataset test = load_fashion_mnist(Split::test, dir);
  CHECK(test.count == 10000);
  CHECK(std::vector<std::int64_t>(test.labels.begin(), test.labels.begin() + 20) ==
        std::vector<std::int64_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0});
  CHECK(std::accumulate(test.pixels.begin(), test.pixels.begin() + 784, 0) == 33456);
  std::vector<int> per_class(10);
  for (std::int64_t label : test.labels) ++per_class[label];
  CHECK(per_class == std::vector<int>(10, 1000));  // the test split is balanced

  DataLoader loader(test, LoaderOptions{.batch_size = 64, .shuffle = false, .mean = 0.2860, .std = 0.3530});
  CHECK(loader.num_batches() == 157);
  Batch b = loader.batch(0, 0);
  CHECK(b.images.shape() == Shape{64, 1, 28, 28});
  CHECK(b.labels[0] == 9);
}
