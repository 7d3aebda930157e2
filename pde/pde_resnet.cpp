#include "pde/pde_resnet.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "nn/init.hpp"
#include "pde/basic_block.hpp"
#include "pde/quasi_linear_block.hpp"

namespace symgrad::pde {

// ---- presets ------------------------------------------------------------------------

PDEResNetConfig config_B() {
  PDEResNetConfig c;
  c.in_channels = 1;
  c.num_classes = 10;
  c.stem_channels = 16;
  c.stem_kernel = 3;
  c.stem_stride = 1;
  c.stem_relu = true;
  c.stem_max_pool = false;
  c.stages = {{16, 2, 1}, {32, 2, 2}, {64, 2, 2}};
  c.head_hardball = true;
  c.head_radius = 8;
  return c;
}

PDEResNetConfig config_G() {
  PDEResNetConfig c = config_B();
  c.stem_stride = 2;
  return c;
}

PDEResNetConfig config_imagenet(std::int64_t num_classes) {
  PDEResNetConfig c;
  c.in_channels = 3;
  c.num_classes = num_classes;
  c.stem_channels = 64;
  c.stem_kernel = 7;
  c.stem_stride = 2;
  c.stem_relu = true;
  c.stem_max_pool = true;
  c.stages = {{64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}};
  c.head_hardball = true;
  c.head_radius = 0;  // sqrt(512)
  return c;
}

PDEResNetConfig baseline_of(PDEResNetConfig config) {
  config.block = BlockKind::basic;
  // The quasi-linear options mean nothing to BasicBlocks; clear them so the config
  // says what the model is.
  config.width_factor = 0;
  config.stage_entry_hardball = false;
  config.variable_coefficients = false;
  config.head_hardball = false;
  config.head_radius = 0;
  return config;
}

PDEResNetConfig full_gl_variant_of(PDEResNetConfig config) {
  config.stem_relu = false;
  config.stage_entry_hardball = false;
  config.head_hardball = false;
  return config;
}

PDEResNetConfig preset(const std::string& name) {
  if (name == "B") return config_B();
  if (name == "G") return config_G();
  if (name == "imagenet") return config_imagenet();
  throw std::invalid_argument("preset: unknown name \"" + name + "\" (known: B, G, imagenet)");
}

// ---- the residual-stream structure as data ---------------------------------------------

std::string to_string(StreamBoundary boundary) {
  switch (boundary) {
    case StreamBoundary::linear: return "linear";
    case StreamBoundary::relu: return "relu";
    case StreamBoundary::hardball: return "hardball";
  }
  return "unknown";
}

namespace {
nlohmann::json axes_to_json(const std::vector<ChannelAxis>& axes) {
  nlohmann::json out = nlohmann::json::array();
  for (const ChannelAxis& a : axes) out.push_back({{"parameter", a.parameter}, {"axis", a.axis}});
  return out;
}
}  // namespace

nlohmann::json StreamStructure::to_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (const ResidualStream& s : streams) {
    out.push_back({{"name", s.name},
                   {"channels", s.channels},
                   {"producers", axes_to_json(s.producers)},
                   {"consumers", axes_to_json(s.consumers)},
                   {"blocks", s.blocks},
                   {"entry", to_string(s.entry)},
                   {"exit", to_string(s.exit)},
                   {"batch_norms", s.batch_norms}});
  }
  return {{"streams", out}};
}

// ---- the model ------------------------------------------------------------------------

namespace {

std::string stage_name(std::size_t stage) { return "stage" + std::to_string(stage + 1); }

void check_config(const PDEResNetConfig& c) {
  const auto require_positive = [](const char* what, std::int64_t value) {
    if (value < 1)
      throw std::invalid_argument(std::string("PDEResNet: ") + what + " must be positive, got " +
                                  std::to_string(value));
  };
  require_positive("in_channels", c.in_channels);
  require_positive("num_classes", c.num_classes);
  require_positive("stem_channels", c.stem_channels);
  require_positive("stem_kernel", c.stem_kernel);
  require_positive("stem_stride", c.stem_stride);
  if (c.stages.empty()) throw std::invalid_argument("PDEResNet: needs at least one stage, got none");
  for (std::size_t s = 0; s < c.stages.size(); ++s) {
    const StageConfig& stage = c.stages[s];
    if (stage.channels < 1 || stage.blocks < 1 || stage.stride < 1)
      throw std::invalid_argument("PDEResNet: stages[" + std::to_string(s) + "] = {" +
                                  std::to_string(stage.channels) + ", " + std::to_string(stage.blocks) + ", " +
                                  std::to_string(stage.stride) +
                                  "} needs positive channels, blocks and stride");
  }
  if (c.width_factor < 0)
    throw std::invalid_argument("PDEResNet: width_factor must be >= 0 (0: the paper's rule), got " +
                                std::to_string(c.width_factor));
  if (!(c.head_radius >= 0) || !std::isfinite(c.head_radius))
    throw std::invalid_argument("PDEResNet: head_radius must be >= 0 and finite (0: sqrt(channels)), got " +
                                std::to_string(c.head_radius));
}

std::shared_ptr<nn::Module> make_block(const PDEResNetConfig& c, std::int64_t in, std::int64_t out,
                                       std::int64_t stride) {
  nn::BatchNormOptions bn = c.batch_norm;
  bn.dtype = c.dtype;
  if (c.block == BlockKind::basic) {
    return std::make_shared<BasicBlock>(BasicBlockConfig{.in_channels = in,
                                                         .out_channels = out,
                                                         .stride = stride,
                                                         .padding_mode = c.padding_mode,
                                                         .zero_init_last_bn = c.zero_init_last_bn,
                                                         .folded = c.folded,
                                                         .batch_norm = bn,
                                                         .dtype = c.dtype});
  }
  return std::make_shared<QuasiLinearBlock>(QuasiLinearBlockConfig{.in_channels = in,
                                                                   .out_channels = out,
                                                                   .stride = stride,
                                                                   .width_factor = c.width_factor,
                                                                   .padding_mode = c.padding_mode,
                                                                   .variable_coefficients = c.variable_coefficients,
                                                                   .hardball = c.stage_entry_hardball,
                                                                   .hardball_radius = 0,
                                                                   .zero_init_last_bn = c.zero_init_last_bn,
                                                                   .folded = c.folded,
                                                                   .batch_norm = bn,
                                                                   .dtype = c.dtype});
}

}  // namespace

PDEResNet::PDEResNet(PDEResNetConfig config) : config_(std::move(config)) {
  check_config(config_);
  const PDEResNetConfig& c = config_;
  nn::BatchNormOptions bn = c.batch_norm;
  bn.dtype = c.dtype;
  stem = register_module("stem", square_conv_bn(c.in_channels, c.stem_channels, c.stem_kernel, c.stem_stride, 1,
                                                c.padding_mode, c.folded, bn, c.dtype));
  // As every conv of the blocks (and torchvision's ResNet): He init for what a ReLU follows.
  stem->kaiming_fan_out_();

  std::int64_t channels = c.stem_channels;
  for (std::size_t s = 0; s < c.stages.size(); ++s) {
    const StageConfig& stage = c.stages[s];
    auto sequential = std::make_shared<nn::Sequential>();
    for (std::int64_t b = 0; b < stage.blocks; ++b) {
      sequential->push_back(make_block(c, channels, stage.channels, b == 0 ? stage.stride : 1));
      channels = stage.channels;
    }
    stages.push_back(register_module(stage_name(s), sequential));
  }
  if (c.block == BlockKind::quasi_linear && c.head_hardball)
    head_ball = register_module(
        "head_ball", std::make_shared<Hardball>(c.head_radius > 0 ? c.head_radius
                                                                  : std::sqrt(static_cast<double>(channels))));
  fc = register_module("fc", std::make_shared<nn::Linear>(channels, c.num_classes, true, c.dtype));
}

Tensor PDEResNet::forward(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != config_.in_channels)
    throw std::invalid_argument("PDEResNet: input " + shape_str(x.shape()) + " must be [N, " +
                                std::to_string(config_.in_channels) + ", H, W]");
  Tensor h = (*stem)(x);
  if (config_.stem_relu) h = relu(h);
  if (config_.stem_max_pool)
    h = max_pool2d(h, {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .padding_h = 1, .padding_w = 1});
  for (const auto& stage : stages) h = (*stage)(h);
  if (head_ball) h = (*head_ball)(h);
  // Global average pooling is linear and per channel, so it keeps the last stream's
  // symmetry: fc's weight is that stream's consumer.
  return (*fc)(mean(h, {2, 3}));
}

std::string PDEResNet::extra_repr() const {
  const PDEResNetConfig& c = config_;
  std::ostringstream os;
  os << (c.block == BlockKind::basic ? "basic" : "quasi-linear") << " blocks, " << c.in_channels << " -> "
     << c.num_classes << " classes, stem " << c.stem_channels << " (" << c.stem_kernel << "x" << c.stem_kernel
     << ", stride " << c.stem_stride << (c.stem_relu ? ", ReLU" : "") << (c.stem_max_pool ? ", max pool" : "")
     << "), stages [";
  for (std::size_t s = 0; s < c.stages.size(); ++s)
    os << (s ? ", " : "") << c.stages[s].channels << " x " << c.stages[s].blocks << " /" << c.stages[s].stride;
  os << "]";
  if (c.block == BlockKind::quasi_linear) {
    if (c.width_factor > 0) os << ", width factor " << c.width_factor;
    if (c.stage_entry_hardball) os << ", entry hardball";
    if (c.variable_coefficients) os << ", variable coefficients";
  }
  if (head_ball) os << ", head hardball r = " << head_ball->radius();
  os << ", padding " << pad_mode_name(c.padding_mode);
  if (c.folded) os << ", folded";
  return os.str();
}

// ---- the residual streams --------------------------------------------------------------

namespace {

// Builds the streams while walking the model from input to output: each identity-skip
// block reads the current stream (conv1) and adds to it (conv3); a projection block reads
// it (conv1, skip), closes it, and opens the next one with its own outputs (conv3, skip).
class StreamWalk {
 public:
  explicit StreamWalk(bool folded) : folded_(folded) {}

  void open(std::string name, std::int64_t channels, StreamBoundary entry) {
    current_ = ResidualStream{};
    current_.name = std::move(name);
    current_.channels = channels;
    current_.entry = entry;
  }
  // A ConvBN unit ("stage2.0.conv3") that writes the stream: its outputs are axis 0 of the
  // conv's weight and bias. Unfolded, its BatchNorm stands between it and the stream.
  void add_producer(const std::string& unit) {
    current_.producers.push_back({unit + ".conv.weight", 0});
    if (folded_) current_.producers.push_back({unit + ".conv.bias", 0});
    else current_.batch_norms.push_back(unit + ".bn");
  }
  // A unit that reads the stream: axis 1 of its conv's weight (its inputs).
  void add_consumer(const std::string& unit) { current_.consumers.push_back({unit + ".conv.weight", 1}); }
  void add_consumer(ChannelAxis axis) { current_.consumers.push_back(std::move(axis)); }
  void add_block(const std::string& block) { current_.blocks.push_back(block); }
  void close(StreamBoundary exit) {
    current_.exit = exit;
    structure_.streams.push_back(std::move(current_));
  }
  StreamStructure result() { return std::move(structure_); }

 private:
  bool folded_;
  ResidualStream current_;
  StreamStructure structure_;
};

}  // namespace

namespace {

// Inside a folded quasi-linear block, the depthwise conv's 2w outputs (two per input
// channel) reach the last 1x1 conv through nothing but a linear map: an interface whose
// symmetries symmetry/discovery.hpp measures. Unfolded, a BatchNorm stands between; with
// variable coefficients a per-channel field multiplies, so neither is listed.
nlohmann::json block_interfaces(const PDEResNet& model) {
  nlohmann::json out = nlohmann::json::array();
  const PDEResNetConfig& c = model.config();
  if (!c.folded || c.variable_coefficients) return out;
  for (std::size_t s = 0; s < model.stages.size(); ++s) {
    for (std::size_t b = 0; b < model.stages[s]->size(); ++b) {
      const auto block = std::dynamic_pointer_cast<QuasiLinearBlock>((*model.stages[s])[b]);
      if (!block) continue;
      const std::string name = stage_name(s) + "." + std::to_string(b);
      out.push_back({{"name", name + " depthwise -> conv3"},
                     {"channels", 2 * block->width()},
                     {"producers", {{{"parameter", name + ".depthwise.conv.weight"}, {"axis", 0}},
                                    {{"parameter", name + ".depthwise.conv.bias"}, {"axis", 0}}}},
                     {"consumers", {{{"parameter", name + ".conv3.conv.weight"}, {"axis", 1}}}},
                     {"between", "depthwise groups: output channels 2c and 2c+1 read input channel c"}});
    }
  }
  return out;
}

}  // namespace

nlohmann::json PDEResNet::weight_structure() const {
  if (config_.block != BlockKind::quasi_linear) return nullptr;
  nlohmann::json structure = stream_structure().to_json();
  structure["interfaces"] = block_interfaces(*this);
  return structure;
}

StreamStructure PDEResNet::stream_structure() const {
  if (config_.block != BlockKind::quasi_linear)
    throw std::invalid_argument(
        "PDEResNet::stream_structure: a BasicBlock model has no linear residual stream (a ReLU follows "
        "every addition)");
  StreamWalk walk(config_.folded);
  const auto block_at = [this](std::size_t s, std::size_t b) {
    return std::dynamic_pointer_cast<QuasiLinearBlock>((*stages[s])[b]);
  };
  // The stem's output is the first stream. A max pool, like a ReLU, commutes with positive
  // diagonal scalings and permutations of the channels only.
  const bool stage1_continues_stem = !block_at(0, 0)->has_projection();
  walk.open(stage1_continues_stem ? stage_name(0) : "stem", config_.stem_channels,
            config_.stem_relu || config_.stem_max_pool ? StreamBoundary::relu : StreamBoundary::linear);
  walk.add_producer("stem");
  for (std::size_t s = 0; s < stages.size(); ++s) {
    for (std::size_t b = 0; b < stages[s]->size(); ++b) {
      const auto block = block_at(s, b);
      const std::string name = stage_name(s) + "." + std::to_string(b);
      walk.add_consumer(name + ".conv1");
      if (block->has_projection()) {
        walk.add_consumer(name + ".skip");
        walk.close(StreamBoundary::linear);
        walk.open(stage_name(s), block->out_channels(),
                  block->has_hardball() ? StreamBoundary::hardball : StreamBoundary::linear);
        walk.add_producer(name + ".conv3");
        walk.add_producer(name + ".skip");
      } else {
        walk.add_producer(name + ".conv3");
        walk.add_block(name);
      }
    }
  }
  // The head: (hardball), global average pool, fc.
  walk.add_consumer(ChannelAxis{"fc.weight", 1});
  walk.close(head_ball ? StreamBoundary::hardball : StreamBoundary::linear);
  return walk.result();
}

// ---- cost -------------------------------------------------------------------------------

namespace {
std::int64_t conv_output_size(std::int64_t size, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  return (size + 2 * padding - kernel) / stride + 1;
}
}  // namespace

std::int64_t PDEResNet::forward_macs(std::int64_t height, std::int64_t width) const {
  const PDEResNetConfig& c = config_;
  const std::int64_t k = c.stem_kernel;
  std::int64_t h = conv_output_size(height, k, c.stem_stride, k / 2);
  std::int64_t w = conv_output_size(width, k, c.stem_stride, k / 2);
  if (height < 1 || width < 1 || h < 1 || w < 1)
    throw std::invalid_argument("PDEResNet::forward_macs: a " + std::to_string(height) + " x " +
                                std::to_string(width) + " image is too small for the stem");
  std::int64_t macs = c.stem_channels * c.in_channels * k * k * h * w;
  if (c.stem_max_pool) {
    h = conv_output_size(h, 3, 2, 1);
    w = conv_output_size(w, 3, 2, 1);
  }
  for (const auto& stage : stages) {
    for (std::size_t b = 0; b < stage->size(); ++b) {
      const std::shared_ptr<nn::Module>& module = (*stage)[b];
      if (const auto block = std::dynamic_pointer_cast<QuasiLinearBlock>(module)) {
        const std::int64_t in = block->in_channels(), out = block->out_channels(), two_w = 2 * block->width();
        const std::int64_t s = block->config().stride;
        const std::int64_t ho = conv_output_size(h, 3, s, 1), wo = conv_output_size(w, 3, s, 1);
        macs += two_w * in * h * w;            // conv1, before the stride
        macs += two_w * 9 * ho * wo;           // depthwise: one input channel per output
        if (block->coefficients) macs += two_w * 5 * ho * wo;
        macs += out * two_w * ho * wo;         // conv3
        if (block->has_projection()) macs += out * in * ho * wo;
        h = ho;
        w = wo;
      } else {
        const auto basic = std::dynamic_pointer_cast<BasicBlock>(module);
        const BasicBlockConfig& bc = basic->config();
        const std::int64_t in = bc.in_channels, out = bc.out_channels > 0 ? bc.out_channels : in;
        const std::int64_t ho = conv_output_size(h, 3, bc.stride, 1), wo = conv_output_size(w, 3, bc.stride, 1);
        macs += out * in * 9 * ho * wo + out * out * 9 * ho * wo;
        if (basic->skip) macs += out * in * ho * wo;
        h = ho;
        w = wo;
      }
    }
  }
  return macs + fc->in_features() * fc->out_features();
}

}  // namespace symgrad::pde
