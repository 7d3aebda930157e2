#include "symmetry/builtin_symmetries.hpp"

#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "nn/layers/activation.hpp"
#include "nn/layers/batchnorm.hpp"
#include "nn/layers/conv2d.hpp"
#include "nn/layers/dropout.hpp"
#include "nn/layers/flatten.hpp"
#include "nn/layers/linear.hpp"

namespace symgrad::symmetry {

using json = nlohmann::json;

// ---- residual streams, from the structure a model describes -----------------------------

namespace {

const json& field(const json& object, const char* key, const std::string& context) {
  if (!object.is_object() || !object.contains(key))
    throw std::invalid_argument("residual_stream_symmetries: " + context + " has no \"" + key + "\"");
  return object.at(key);
}

std::vector<AxisAction> axes_from_json(const json& list, GroupFactor factor, const std::string& context) {
  if (!list.is_array())
    throw std::invalid_argument("residual_stream_symmetries: " + context + " must be an array, got " + list.dump());
  std::vector<AxisAction> actions;
  for (const json& entry : list) {
    const json& parameter = field(entry, "parameter", context);
    const json& axis = field(entry, "axis", context);
    if (!parameter.is_string() || !axis.is_number_integer())
      throw std::invalid_argument("residual_stream_symmetries: " + context +
                                  " entries need a string \"parameter\" and an integer \"axis\", got " +
                                  entry.dump());
    actions.push_back({parameter.get<std::string>(), axis.get<std::int64_t>(), factor});
  }
  return actions;
}

enum class Boundary { linear, relu, hardball };

Boundary boundary_from_json(const json& value, const std::string& context) {
  if (value == "linear") return Boundary::linear;
  if (value == "relu") return Boundary::relu;
  if (value == "hardball") return Boundary::hardball;
  throw std::invalid_argument("residual_stream_symmetries: " + context + " is " + value.dump() +
                              " (known: \"linear\", \"relu\", \"hardball\")");
}

}  // namespace

std::vector<WeightSymmetry> residual_stream_symmetries(const json& structure) {
  std::vector<WeightSymmetry> symmetries;
  if (structure.is_null()) return symmetries;
  const json& streams = field(structure, "streams", "the structure");
  if (!streams.is_array())
    throw std::invalid_argument("residual_stream_symmetries: \"streams\" must be an array, got " + streams.dump());
  for (std::size_t index = 0; index < streams.size(); ++index) {
    const json& stream = streams[index];
    const std::string context = "streams[" + std::to_string(index) + "]";
    const json& name_json = field(stream, "name", context);
    const json& channels_json = field(stream, "channels", context);
    if (!name_json.is_string() || !channels_json.is_number_integer() || channels_json.get<std::int64_t>() < 1)
      throw std::invalid_argument("residual_stream_symmetries: " + context +
                                  " needs a string \"name\" and a positive integer \"channels\"");
    const std::string name = name_json.get<std::string>();
    const std::int64_t n = channels_json.get<std::int64_t>();
    const Boundary entry = boundary_from_json(field(stream, "entry", context), context + ".entry");
    const Boundary exit = boundary_from_json(field(stream, "exit", context), context + ".exit");
    const bool relu = entry == Boundary::relu || exit == Boundary::relu;
    const bool hardball = entry == Boundary::hardball || exit == Boundary::hardball;

    // What commutes with both ends: a ReLU passes positive diagonals, a hardball
    // orthogonal matrices, so both together pass only the identity (positive diagonal and
    // orthogonal means I): such a stream, like a one-channel stream behind a hardball, has
    // no continuous symmetry and is left out.
    if ((relu && hardball) || (hardball && n < 2)) continue;
    std::vector<std::string> notes;
    std::optional<LieAlgebra> algebra;
    if (relu) {
      algebra = LieAlgebra::diagonal(n);
      notes.push_back("a ReLU at the stream's " + std::string(entry == Boundary::relu ? "entry" : "exit") +
                      " passes only positive diagonal g");
    } else if (hardball) {
      algebra = LieAlgebra::so(n);
      notes.push_back("a hardball at the stream's " + std::string(entry == Boundary::hardball ? "entry" : "exit") +
                      " passes only orthogonal g");
    } else {
      algebra = LieAlgebra::gl(n);
    }

    std::vector<AxisAction> actions = axes_from_json(field(stream, "producers", context),
                                                     GroupFactor::g, context + ".producers");
    const std::vector<AxisAction> consumers = axes_from_json(field(stream, "consumers", context),
                                                             GroupFactor::g_inverse_transpose, context + ".consumers");
    actions.insert(actions.end(), consumers.begin(), consumers.end());

    if (stream.contains("batch_norms")) {
      for (const json& bn : stream.at("batch_norms")) {
        notes.push_back("unfolded BatchNorm " + (bn.is_string() ? bn.get<std::string>() : bn.dump()) +
                        " between a producer and the stream: its per-channel affine map breaks the action; "
                        "fold BN (pde/fold_bn.hpp) before acting");
      }
    }
    symmetries.push_back(WeightSymmetry{.name = name + " stream",
                                        .kind = "residual_stream",
                                        .algebra = *algebra,
                                        .actions = std::move(actions),
                                        .mode = ModeRequirement::eval,
                                        .notes = std::move(notes)});
  }
  return symmetries;
}

// ---- symmetries found in a module tree ------------------------------------------------

namespace {

// Where a layer's output channels live: Linear and BatchNorm1d ([N, C]) on the last
// axis, Conv2d and BatchNorm2d on axis 1. A consumer reads a producer's channels only
// if they sit where it contracts (a Flatten turns a [N, C, 1, 1] into [N, C]).
enum class Layout { features, channels };

// A layer whose output channel c is an affine function that a per-channel factor can
// scale: weight (and bias) axis 0.
struct Producer {
  std::string weight, bias;  // full parameter names; bias empty when absent
  std::int64_t channels = 0;
  Layout layout = Layout::features;
  bool mixes_all_inputs = false;  // Linear, or Conv2d with groups 1: a GL(n) producer
  bool is_batch_norm = false;
};

// A layer that reads its input channels linearly: weight axis 1. Any Conv2d with groups 1
// qualifies, not only 1x1 ones: a change of channel basis commutes with every kernel,
// stride, dilation and padding mode (padding copies or zeroes whole channel vectors).
struct Consumer {
  std::string weight;
  std::int64_t channels = 0;
  Layout layout = Layout::features;
};

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

std::optional<Producer> as_producer(const std::string& name, const std::shared_ptr<nn::Module>& m) {
  if (auto linear = std::dynamic_pointer_cast<nn::Linear>(m))
    return Producer{join(name, "weight"), linear->bias.defined() ? join(name, "bias") : "",
                    linear->out_features(), Layout::features, true};
  if (auto conv = std::dynamic_pointer_cast<nn::Conv2d>(m))
    return Producer{join(name, "weight"), conv->bias.defined() ? join(name, "bias") : "",
                    conv->config().out_channels, Layout::channels, conv->config().groups == 1};
  if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm>(m); bn && bn->weight.defined())
    return Producer{join(name, "weight"), join(name, "bias"), bn->num_features(),
                    std::dynamic_pointer_cast<nn::BatchNorm1d>(m) ? Layout::features : Layout::channels, false,
                    true};
  return std::nullopt;
}

std::optional<Consumer> as_consumer(const std::string& name, const std::shared_ptr<nn::Module>& m) {
  if (auto linear = std::dynamic_pointer_cast<nn::Linear>(m))
    return Consumer{join(name, "weight"), linear->in_features(), Layout::features};
  if (auto conv = std::dynamic_pointer_cast<nn::Conv2d>(m); conv && conv->config().groups == 1)
    return Consumer{join(name, "weight"), conv->config().in_channels, Layout::channels};
  return std::nullopt;
}

// Layers a channel action passes through unchanged in shape and meaning.
struct Gap {
  bool dropout = false;
  bool flatten = false;
};
bool is_transparent(const std::shared_ptr<nn::Module>& m, Gap& gap) {
  if (std::dynamic_pointer_cast<nn::Dropout>(m)) return gap.dropout = true;
  if (std::dynamic_pointer_cast<nn::Flatten>(m)) return gap.flatten = true;
  return false;
}

// Whether the consumer contracts exactly the producer's channels.
bool reads(const Producer& p, const Consumer& c, const Gap& gap) {
  if (p.channels != c.channels) return false;
  if (p.layout == c.layout) return !(gap.flatten && c.layout == Layout::channels);
  // Channels first into a Linear: only through a Flatten, and the equal counts above mean
  // the spatial size was 1 x 1.
  return p.layout == Layout::channels && c.layout == Layout::features && gap.flatten;
}

void add_producer_actions(std::vector<AxisAction>& actions, const Producer& p) {
  actions.push_back({p.weight, 0, GroupFactor::g});
  if (!p.bias.empty()) actions.push_back({p.bias, 0, GroupFactor::g});
}

// Finds, among a Sequential's consecutive children (Dropout and Flatten skipped):
//   producer, consumer               -> linear pair (GL needs a Linear or groups-1 Conv2d producer);
//   Linear/Conv2d, BatchNorm         -> batchnorm scale;
//   producer, ReLU, consumer         -> relu rescaling (an affine BatchNorm counts as a producer:
//                                       its weight and bias scale the channel).
// Pairs that straddle a nested Sequential's boundary are not looked for.
class SequentialScan {
 public:
  SequentialScan(std::string prefix, const nn::Sequential& sequential) : prefix_(std::move(prefix)) {
    for (std::size_t i = 0; i < sequential.size(); ++i)
      children_.emplace_back(join(prefix_, std::to_string(i)), sequential[i]);
  }

  void find(std::vector<WeightSymmetry>& out) const {
    for (std::size_t i = 0; i < children_.size(); ++i) {
      const auto producer = as_producer(children_[i].first, children_[i].second);
      if (!producer) continue;
      Gap gap;
      std::size_t j = skip_transparent(i + 1, gap);
      if (j >= children_.size()) continue;
      const auto& [next_name, next] = children_[j];
      if (const auto consumer = as_consumer(next_name, next)) {
        if (producer->mixes_all_inputs && reads(*producer, *consumer, gap))
          out.push_back(linear_pair(children_[i].first, next_name, *producer, *consumer, gap));
      } else if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm>(next);
                 bn && !producer->is_batch_norm && !gap.flatten && bn->num_features() == producer->channels) {
        out.push_back(batchnorm_scale(next_name, *bn, *producer));
      } else if (std::dynamic_pointer_cast<nn::ReLU>(next)) {
        Gap after;
        after.flatten = gap.flatten;
        after.dropout = gap.dropout;
        const std::size_t k = skip_transparent(j + 1, after);
        if (k >= children_.size()) continue;
        if (const auto consumer = as_consumer(children_[k].first, children_[k].second);
            consumer && reads(*producer, *consumer, after))
          out.push_back(relu_rescaling(next_name, *producer, *consumer));
      }
    }
  }

 private:
  std::size_t skip_transparent(std::size_t j, Gap& gap) const {
    while (j < children_.size() && is_transparent(children_[j].second, gap)) ++j;
    return j;
  }

  static WeightSymmetry linear_pair(const std::string& from, const std::string& to, const Producer& p,
                                    const Consumer& c, const Gap& gap) {
    WeightSymmetry s{.name = from + "-" + to + " linear pair",
                     .kind = "linear_pair",
                     .algebra = LieAlgebra::gl(p.channels),
                     .actions = {},
                     .mode = ModeRequirement::any,
                     .notes = {}};
    add_producer_actions(s.actions, p);
    s.actions.push_back({c.weight, 1, GroupFactor::g_inverse_transpose});
    if (gap.dropout) {
      // A training-mode mask multiplies each value by 0 or 1/(1-p): it commutes with
      // diagonal g only.
      s.mode = ModeRequirement::eval;
      s.notes.push_back("a Dropout between the two layers: GL(n) holds in eval mode only");
    }
    return s;
  }

  static WeightSymmetry relu_rescaling(const std::string& relu, const Producer& p, const Consumer& c) {
    // relu(a z) = a relu(z) for a > 0: the incoming weights and bias scale by a, the
    // outgoing weights by 1/a.
    WeightSymmetry s{.name = relu + " relu rescaling",
                     .kind = "relu_rescaling",
                     .algebra = LieAlgebra::diagonal(p.channels),
                     .actions = {},
                     .mode = ModeRequirement::any,
                     .notes = {"only positive diagonal g (exp of a diagonal xi) commute with the ReLU"}};
    add_producer_actions(s.actions, p);
    s.actions.push_back({c.weight, 1, GroupFactor::g_inverse_transpose});
    return s;
  }

  static WeightSymmetry batchnorm_scale(const std::string& bn_name, const nn::BatchNorm& bn, const Producer& p) {
    // Training-mode BN divides each channel by its batch standard deviation, so scaling a
    // channel's incoming weight and bias by a > 0 cancels (exactly when eps = 0).
    WeightSymmetry s{.name = bn_name + " batchnorm scale",
                     .kind = "batchnorm_scale",
                     .algebra = LieAlgebra::diagonal(p.channels),
                     .actions = {},
                     .mode = ModeRequirement::train,
                     .notes = {}};
    add_producer_actions(s.actions, p);
    std::ostringstream eps;
    eps << bn.options().eps;
    s.notes.push_back("holds with batch statistics (train mode); eval mode uses running statistics, which "
                      "the scaling does not move");
    if (bn.options().eps > 0)
      s.notes.push_back("exact only for eps = 0: " + bn_name + " has eps = " + eps.str() +
                        ", so the output changes by about eps / (2 var) relative per channel");
    if (bn.options().track_running_stats)
      s.notes.push_back("later training-mode passes record scaled running statistics in " + bn_name);
    return s;
  }

  std::string prefix_;
  std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> children_;
};

// The Linear a Sequential ends in (descending into a trailing Sequential), with its name.
std::optional<std::pair<std::string, std::shared_ptr<nn::Linear>>> final_linear(const nn::Module& model) {
  const nn::Module* current = &model;
  std::string prefix;
  while (const auto* sequential = dynamic_cast<const nn::Sequential*>(current)) {
    if (sequential->size() == 0) return std::nullopt;
    const std::size_t last = sequential->size() - 1;
    prefix = join(prefix, std::to_string(last));
    const std::shared_ptr<nn::Module>& child = (*sequential)[last];
    if (auto linear = std::dynamic_pointer_cast<nn::Linear>(child)) return std::make_pair(prefix, linear);
    current = child.get();
  }
  return std::nullopt;
}

WeightSymmetry softmax_translation(const std::string& name) {
  // [[1, c], [0, 1]] = exp(c E_01): the additive group as 2 x 2 matrices.
  Tensor generator = zeros({2, 2}, DType::f64);
  generator.data<double>()[1] = 1.0;
  return WeightSymmetry{
      .name = name + " softmax translation",
      .kind = "softmax_translation",
      .algebra = LieAlgebra::single(generator, "translation"),
      .actions = {{join(name, "bias"), 0, GroupFactor::translation}},
      .mode = ModeRequirement::any,
      .notes = {"every logit moves by c: the logits change, the softmax probabilities and the "
                "cross-entropy do not"}};
}

}  // namespace

std::vector<WeightSymmetry> symmetries_of(const nn::Module& model) {
  std::vector<WeightSymmetry> found = residual_stream_symmetries(model.weight_structure());

  if (const auto* root = dynamic_cast<const nn::Sequential*>(&model)) SequentialScan("", *root).find(found);
  for (const auto& [name, module] : model.named_modules())
    if (const auto* sequential = dynamic_cast<const nn::Sequential*>(module.get()))
      SequentialScan(name, *sequential).find(found);

  if (const auto last = final_linear(model); last && last->second->bias.defined())
    found.push_back(softmax_translation(last->first));
  return found;
}

}  // namespace symgrad::symmetry
