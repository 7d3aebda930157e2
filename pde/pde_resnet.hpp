#pragma once
// PDEResNet: a ResNet whose blocks are quasi-linear hyperbolic PDE steps (or, for the
// baseline, BasicBlocks with ReLU), built from a config:
//
//   stem:   conv k x k (in -> stem_channels, stride, no bias) + BN [+ ReLU] [+ maxpool 3/2]
//   stages: for each {channels, blocks, stride}: `blocks` blocks; the first takes the
//           previous width to `channels` with the stage's stride (a projection skip, and a
//           hardball at the stage entry when it changes shape); the rest keep the shape
//   head:   [hardball r] -> global average pool -> linear (channels -> num_classes)
//
// Children: "stem" (ConvBN), "stage1", "stage2", ... (nn::Sequential of blocks named "0",
// "1", ...), "head_ball" (Hardball, when on), "fc" (Linear). Parameter names such as
// "stage2.0.conv1.conv.weight" follow.
//
// Presets (docs/pde.md): config B for 28x28 Fashion-MNIST (143,162 parameters), config G
// (B with a stride-2 stem, for quick runs), and the paper's ImageNet layout (stages of
// 64/128/256/512 channels with 3/4/6/3 blocks at 224x224, about 9.5M parameters for 100
// classes).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/layers/batchnorm.hpp"
#include "nn/layers/linear.hpp"
#include "pde/conv_bn.hpp"
#include "pde/hardball.hpp"

namespace symgrad::pde {

enum class BlockKind { quasi_linear, basic };

struct StageConfig {
  std::int64_t channels = 0;
  std::int64_t blocks = 0;
  std::int64_t stride = 1;  // of the stage's first block
};

struct PDEResNetConfig {
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 10;

  std::int64_t stem_channels = 16;
  std::int64_t stem_kernel = 3;  // padding kernel / 2
  std::int64_t stem_stride = 1;
  bool stem_relu = true;         // off: the stage-1 stream is linear from the input on
  bool stem_max_pool = false;    // 3x3, stride 2, padding 1 (the ImageNet stem)

  std::vector<StageConfig> stages;
  BlockKind block = BlockKind::quasi_linear;

  // Quasi-linear blocks only.
  std::int64_t width_factor = 0;       // 0: the paper's rule (4 if in <= 128 else 2)
  bool stage_entry_hardball = true;    // hardball (r = sqrt(channels)) on shape-changing blocks
  bool variable_coefficients = false;
  bool head_hardball = true;
  double head_radius = 0;              // 0: sqrt(channels of the last stage)

  PadMode padding_mode = PadMode::zeros;  // every 3x3 conv's boundary condition
  bool zero_init_last_bn = true;
  bool folded = false;                    // build with folded ConvBN units (fold_bn.hpp)
  nn::BatchNormOptions batch_norm;
  DType dtype = DType::f32;
};

// Config B: stem 3x3 1 -> 16 + BN + ReLU, stages {16, 2, 1}, {32, 2, 2}, {64, 2, 2},
// head hardball r = 8, 10 classes.
PDEResNetConfig config_B();
// Config G: config B with a stride-2 stem.
PDEResNetConfig config_G();
// The paper's ImageNet layout: 3 input channels, stem 7x7 stride 2 -> 64 + BN + ReLU +
// maxpool, stages {64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}.
PDEResNetConfig config_imagenet(std::int64_t num_classes = 100);
// The same layout with BasicBlocks: the ReLU baseline of a similar size.
PDEResNetConfig baseline_of(PDEResNetConfig config);
// The same layout without the stem's ReLU and without any hardball: every residual
// stream then carries the full GL(n) symmetry, except one that starts behind a max-pool
// stem (the ImageNet layout keeps its max pool, which passes only what a ReLU passes).
PDEResNetConfig full_gl_variant_of(PDEResNetConfig config);
// "B", "G", "imagenet" (case-sensitive); throws listing the names otherwise.
PDEResNetConfig preset(const std::string& name);

// ---- The residual-stream structure, as data --------------------------------------
// What the symmetry module needs to build the group action on a model's parameters
// without knowing its code. A residual stream is the run of channels that identity
// skips carry through a stage; an invertible Q acts on it by
//   producers: weight/bias multiplied by Q along `axis` (their outputs are the stream),
//   consumers: weight multiplied by Q^-1 along `axis` (their inputs are the stream),
// and the stream's values become Q x. Whether that leaves the model's function unchanged
// depends on what sits at its ends (`entry`, `exit`) and on `batch_norms`.

// One axis of one parameter that indexes the stream's channels.
struct ChannelAxis {
  std::string parameter;  // a name from named_parameters()
  std::int64_t axis = 0;
};

// What stands between a stream and the layers on its other side.
enum class StreamBoundary {
  linear,    // nothing: any invertible Q passes
  relu,      // a ReLU: only positive diagonal Q (and permutations) pass
  hardball,  // a hardball: only orthogonal Q pass
};
std::string to_string(StreamBoundary boundary);

struct ResidualStream {
  std::string name;  // "stage2"
  std::int64_t channels = 0;
  std::vector<ChannelAxis> producers;
  std::vector<ChannelAxis> consumers;
  // The blocks with identity skips that the stream runs through, in order; the first
  // block of a stage is its producer (listed here only if its skip is the identity).
  std::vector<std::string> blocks;
  StreamBoundary entry = StreamBoundary::linear;  // between the first producer and the stream
  StreamBoundary exit = StreamBoundary::linear;   // between the stream and the last consumers
  // BatchNorm modules between a producer and the stream (unfolded models): their
  // per-channel scaling breaks the GL(n) action until they are folded (fold_bn.hpp).
  std::vector<std::string> batch_norms;
};

struct StreamStructure {
  std::vector<ResidualStream> streams;
  nlohmann::json to_json() const;
};

// ---- The model ----------------------------------------------------------------------
class PDEResNet : public nn::Module {
 public:
  // Parameters come from nn::default_generator() in module order: seed it first.
  explicit PDEResNet(PDEResNetConfig config);

  Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> logits [N, num_classes]
  std::string type_name() const override { return "PDEResNet"; }
  std::string extra_repr() const override;  // block kind, stages, options

  const PDEResNetConfig& config() const { return config_; }

  // The residual streams of a quasi-linear model (throws for BasicBlock models: their
  // ReLUs after every addition leave no linear stream).
  StreamStructure stream_structure() const;
  // For quasi-linear models: stream_structure().to_json() plus "interfaces", the
  // block-internal channel interfaces (depthwise conv -> last 1x1 conv of each block, in
  // folded models without variable coefficients) for symmetry discovery. Null for
  // BasicBlock models.
  nlohmann::json weight_structure() const override;

  // Multiply-accumulates of one forward pass on an in_channels x height x width image
  // (convolutions and the linear head; elementwise work not counted).
  std::int64_t forward_macs(std::int64_t height, std::int64_t width) const;

  std::shared_ptr<ConvBN> stem;
  std::vector<std::shared_ptr<nn::Sequential>> stages;
  std::shared_ptr<Hardball> head_ball;  // null when off
  std::shared_ptr<nn::Linear> fc;

 private:
  PDEResNetConfig config_;
};

// From JSON (the "PDEResNet" type of nn::build_model once register_model_types() ran):
//   {"type": "PDEResNet", "preset": "B"} plus any overrides: "block" ("quasi_linear" |
//   "basic"), "in_channels", "num_classes", "stem_channels", "stem_kernel", "stem_stride",
//   "stem_relu", "stem_max_pool", "stages" ([[channels, blocks, stride], ...]),
//   "width_factor", "stage_entry_hardball", "variable_coefficients", "head_hardball",
//   "head_radius", "padding_mode", "zero_init_last_bn", "bn_eps", "bn_momentum".
// Unknown keys are errors naming the key.
PDEResNetConfig pde_resnet_config_from_json(const nlohmann::json& spec, DType dtype);

}  // namespace symgrad::pde
