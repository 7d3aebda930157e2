#pragma once
// An in-memory image dataset and the DataLoader that turns it into training batches:
// shuffled (per epoch), normalised, optionally augmented (random crop, horizontal flip).
//
// Reproducibility: batch(epoch, index) is a pure function of (options, epoch, index).
// The epoch's order is a Fisher-Yates shuffle drawn from a Generator seeded by
// (seed, epoch); each batch's augmentation comes from a Generator seeded by
// (seed, epoch, index). So batches can be produced in any order, by any thread, or
// again after a restart, and are the same every time.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace symgrad::nn {

// `count` images of channels x height x width bytes, stored one after the other
// (pixels.size() == count * channels * height * width), with a class label each.
struct ImageDataset {
  std::int64_t count = 0, channels = 1, height = 0, width = 0, num_classes = 10;
  std::vector<std::uint8_t> pixels;
  std::vector<std::int64_t> labels;
  std::vector<std::string> class_names;  // optional; num_classes entries when given
};

// Throws std::invalid_argument, naming `who`, unless the sizes agree and every label is
// in [0, num_classes).
void check_image_dataset(const ImageDataset& data, const std::string& who);

struct Batch {
  Tensor images;                      // [B, C, H, W]
  std::vector<std::int64_t> labels;   // B class labels
  std::vector<std::int64_t> indices;  // which dataset examples these are
};

struct LoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;  // drop the last, smaller batch of an epoch
  std::uint64_t seed = 0;
  double mean = 0.0, std = 1.0;  // x = (pixel / 255 - mean) / std
  // Random crop: pad each side with crop_padding black pixels (value 0 before
  // normalisation, as torchvision pads before Normalize), then cut height x width at a
  // uniformly random offset. 0 turns it off.
  std::int64_t crop_padding = 0;
  bool horizontal_flip = false;  // mirror left-right with probability 1/2
  DType dtype = DType::f32;
};

class DataLoader {
 public:
  // Copies the dataset, so the loader stays valid whatever happens to `data`.
  DataLoader(const ImageDataset& data, LoaderOptions opts);
  // Shares it (no copy of the pixels).
  DataLoader(std::shared_ptr<const ImageDataset> data, LoaderOptions opts);

  std::int64_t num_batches() const;   // per epoch
  std::int64_t num_examples() const;  // per epoch: the dataset's count, less a dropped tail
  Batch batch(std::int64_t epoch, std::int64_t index) const;

  // The epoch's example order (the identity without shuffle); batch i takes entries
  // [i * batch_size, (i + 1) * batch_size).
  std::vector<std::int64_t> order(std::int64_t epoch) const;

  const ImageDataset& dataset() const { return *data_; }
  const LoaderOptions& options() const { return opts_; }

 private:
  struct OrderCache;
  std::shared_ptr<const std::vector<std::int64_t>> cached_order(std::int64_t epoch) const;

  std::shared_ptr<const ImageDataset> data_;
  LoaderOptions opts_;
  // The last epoch's order, so that 938 batches of an epoch shuffle 60000 indices once
  // rather than 938 times. Shared by copies of the loader (same options, same orders).
  std::shared_ptr<OrderCache> cache_;
};

}  // namespace symgrad::nn
