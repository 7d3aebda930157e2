#include "nn/data/loader.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "engine/random.hpp"

namespace symgrad::nn {

namespace {
// SplitMix64's finaliser: turns nearby inputs (epoch 3, epoch 4) into unrelated seeds.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Separate PCG streams for the shuffle and the augmentation, so the two never share draws.
constexpr std::uint64_t kShuffleStream = 0x53485546464c45ULL;  // "SHUFFLE"
constexpr std::uint64_t kAugmentStream = 0x4155474d454e54ULL;  // "AUGMENT"

std::uint64_t epoch_key(std::uint64_t seed, std::int64_t epoch) {
  return mix(mix(seed) ^ static_cast<std::uint64_t>(epoch));
}

// One example, C planes of H x W bytes, written through the normalisation table with
// the crop offset (dy, dx) into the padded image and an optional mirror.
template <class T>
void write_augmented(const std::uint8_t* src, T* dst, std::int64_t channels, std::int64_t height,
                     std::int64_t width, std::int64_t pad, std::int64_t dy, std::int64_t dx, bool flip,
                     const std::array<T, 256>& table) {
  const T black = table[0];
  // Output column x reads source column x + dx - pad; these are the x where that exists.
  const std::int64_t x0 = std::clamp<std::int64_t>(pad - dx, 0, width);
  const std::int64_t x1 = std::clamp<std::int64_t>(width + pad - dx, x0, width);
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t y = 0; y < height; ++y) {
      T* row = dst + (c * height + y) * width;
      const std::int64_t sy = y + dy - pad;
      if (sy < 0 || sy >= height) {
        std::fill(row, row + width, black);
        continue;
      }
      const std::uint8_t* src_row = src + (c * height + sy) * width;
      const std::int64_t shift = dx - pad;
      std::fill(row, row + x0, black);
      for (std::int64_t x = x0; x < x1; ++x) row[x] = table[src_row[x + shift]];
      std::fill(row + x1, row + width, black);
      if (flip) std::reverse(row, row + width);
    }
  }
}
}  // namespace

struct DataLoader::OrderCache {
  std::mutex mutex;
  std::int64_t epoch = -1;
  std::shared_ptr<const std::vector<std::int64_t>> order;
};

void check_image_dataset(const ImageDataset& d, const std::string& who) {
  if (d.count < 0 || d.channels <= 0 || d.height <= 0 || d.width <= 0 || d.num_classes <= 0)
    throw std::invalid_argument(who + ": dataset has count " + std::to_string(d.count) + ", " +
                                std::to_string(d.channels) + "x" + std::to_string(d.height) + "x" +
                                std::to_string(d.width) + " images and " + std::to_string(d.num_classes) +
                                " classes; sizes must be positive (count may be 0)");
  const std::uint64_t expected = static_cast<std::uint64_t>(d.count) *
                                 static_cast<std::uint64_t>(d.channels) *
                                 static_cast<std::uint64_t>(d.height) * static_cast<std::uint64_t>(d.width);
  if (d.pixels.size() != expected)
    throw std::invalid_argument(who + ": dataset has " + std::to_string(d.pixels.size()) +
                                " pixel bytes, but " + std::to_string(d.count) + " images of " +
                                std::to_string(d.channels) + "x" + std::to_string(d.height) + "x" +
                                std::to_string(d.width) + " need " + std::to_string(expected));
  if (d.labels.size() != static_cast<std::size_t>(d.count))
    throw std::invalid_argument(who + ": dataset has " + std::to_string(d.labels.size()) + " labels for " +
                                std::to_string(d.count) + " images");
  for (std::size_t i = 0; i < d.labels.size(); ++i)
    if (d.labels[i] < 0 || d.labels[i] >= d.num_classes)
      throw std::invalid_argument(who + ": label " + std::to_string(d.labels[i]) + " of example " +
                                  std::to_string(i) + " is not a class in [0, " +
                                  std::to_string(d.num_classes) + ")");
  if (!d.class_names.empty() && d.class_names.size() != static_cast<std::size_t>(d.num_classes))
    throw std::invalid_argument(who + ": dataset has " + std::to_string(d.class_names.size()) +
                                " class names for " + std::to_string(d.num_classes) + " classes");
}

DataLoader::DataLoader(const ImageDataset& data, LoaderOptions opts)
    : DataLoader(std::make_shared<const ImageDataset>(data), opts) {}

DataLoader::DataLoader(std::shared_ptr<const ImageDataset> data, LoaderOptions opts)
    : data_(std::move(data)), opts_(opts), cache_(std::make_shared<OrderCache>()) {
  if (!data_) throw std::invalid_argument("DataLoader: the dataset is null");
  check_image_dataset(*data_, "DataLoader");
  if (opts_.batch_size <= 0)
    throw std::invalid_argument("DataLoader: batch_size must be positive, got " +
                                std::to_string(opts_.batch_size));
  if (!std::isfinite(opts_.mean) || !std::isfinite(opts_.std) || opts_.std <= 0)
    throw std::invalid_argument(
        "DataLoader: normalisation needs a finite mean and a finite std > 0, got mean " +
        std::to_string(opts_.mean) + " and std " + std::to_string(opts_.std));
  if (opts_.crop_padding < 0)
    throw std::invalid_argument("DataLoader: crop_padding must be >= 0, got " +
                                std::to_string(opts_.crop_padding));
}

std::int64_t DataLoader::num_batches() const {
  const std::int64_t n = data_->count, b = opts_.batch_size;
  return opts_.drop_last ? n / b : (n + b - 1) / b;
}

std::int64_t DataLoader::num_examples() const {
  return opts_.drop_last ? num_batches() * opts_.batch_size : data_->count;
}

std::vector<std::int64_t> DataLoader::order(std::int64_t epoch) const {
  if (epoch < 0)
    throw std::invalid_argument("DataLoader::order: epoch must be >= 0, got " + std::to_string(epoch));
  std::vector<std::int64_t> order(static_cast<std::size_t>(data_->count));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  if (!opts_.shuffle) return order;
  // Fisher-Yates: position i takes a uniformly random one of the entries not yet placed.
  Generator gen(epoch_key(opts_.seed, epoch), kShuffleStream);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen.below(i)]);
  return order;
}

std::shared_ptr<const std::vector<std::int64_t>> DataLoader::cached_order(std::int64_t epoch) const {
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->epoch != epoch || !cache_->order) {
    cache_->order = std::make_shared<const std::vector<std::int64_t>>(order(epoch));
    cache_->epoch = epoch;
  }
  return cache_->order;
}

Batch DataLoader::batch(std::int64_t epoch, std::int64_t index) const {
  if (epoch < 0)
    throw std::invalid_argument("DataLoader::batch: epoch must be >= 0, got " + std::to_string(epoch));
  if (index < 0 || index >= num_batches())
    throw std::out_of_range("DataLoader::batch: index " + std::to_string(index) +
                            " is out of range: an epoch has " + std::to_string(num_batches()) + " batches (" +
                            std::to_string(data_->count) + " examples, batch_size " +
                            std::to_string(opts_.batch_size) + (opts_.drop_last ? ", drop_last" : "") + ")");
  const auto order = cached_order(epoch);
  const ImageDataset& d = *data_;
  const std::int64_t begin = index * opts_.batch_size;
  const std::int64_t n = std::min(opts_.batch_size, d.count - begin);
  const std::int64_t plane = d.channels * d.height * d.width;

  Batch out;
  out.images = Tensor::empty({n, d.channels, d.height, d.width}, opts_.dtype);
  out.labels.resize(static_cast<std::size_t>(n));
  out.indices.resize(static_cast<std::size_t>(n));
  const bool augment = opts_.crop_padding > 0 || opts_.horizontal_flip;
  Generator gen(mix(epoch_key(opts_.seed, epoch) ^ mix(static_cast<std::uint64_t>(index))), kAugmentStream);
  dispatch_dtype(opts_.dtype, [&](auto zero) {
    using T = decltype(zero);
    // 256 possible pixel values: normalise each once, then every pixel is a lookup.
    std::array<T, 256> table;
    for (int p = 0; p < 256; ++p) table[p] = static_cast<T>((p / 255.0 - opts_.mean) / opts_.std);
    T* images = out.images.data<T>();
    for (std::int64_t b = 0; b < n; ++b) {
      const std::int64_t example = (*order)[static_cast<std::size_t>(begin + b)];
      out.indices[b] = example;
      out.labels[b] = d.labels[static_cast<std::size_t>(example)];
      const std::uint8_t* src = d.pixels.data() + example * plane;
      T* dst = images + b * plane;
      if (!augment) {
        for (std::int64_t k = 0; k < plane; ++k) dst[k] = table[src[k]];
        continue;
      }
      // Per example, in this order: crop row offset, crop column offset, flip.
      const std::int64_t pad = opts_.crop_padding;
      const auto offsets = static_cast<std::uint64_t>(2 * pad + 1);
      const std::int64_t dy = pad > 0 ? static_cast<std::int64_t>(gen.below(offsets)) : 0;
      const std::int64_t dx = pad > 0 ? static_cast<std::int64_t>(gen.below(offsets)) : 0;
      const bool flip = opts_.horizontal_flip && gen.below(2) == 1;
      write_augmented(src, dst, d.channels, d.height, d.width, pad, dy, dx, flip, table);
    }
  });
  return out;
}

}  // namespace symgrad::nn
