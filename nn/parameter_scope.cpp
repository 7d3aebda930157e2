#include "nn/parameter_scope.hpp"

#include <stdexcept>
#include <unordered_set>

namespace symgrad::nn {

namespace {

std::string describe(const Tensor& t) { return std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape()); }

// The first substituted parameter whose impl the substitute's graph reaches as a leaf
// (null if none). Iterative walk over the nodes, each visited once.
const std::string* reads_substituted_parameter(
    const Tensor& substitute, const std::map<const TensorImpl*, std::string>& parameters) {
  if (auto it = parameters.find(substitute.impl()); it != parameters.end()) return &it->second;
  std::vector<const Node*> stack;
  std::unordered_set<const Node*> seen;
  if (substitute.grad_fn()) stack.push_back(substitute.grad_fn().get());
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    for (const Edge& e : node->edges) {
      if (e.node) stack.push_back(e.node.get());
      if (e.leaf)
        if (auto it = parameters.find(e.leaf.get()); it != parameters.end()) return &it->second;
    }
  }
  return nullptr;
}

}  // namespace

ParameterSubstitution::ParameterSubstitution(Module& model, const TensorMap& substitutes) {
  std::map<std::string, Tensor> parameters;
  for (const auto& [name, p] : model.named_parameters()) parameters.emplace(name, p);

  // Validate everything (and prepare the wrapped substitutes) before touching any impl,
  // so a bad entry leaves the model as it was.
  std::map<const TensorImpl*, std::string> substituted;
  for (const auto& [name, substitute] : substitutes) {
    const auto it = parameters.find(name);
    if (it == parameters.end())
      throw std::invalid_argument("ParameterSubstitution: the model (" + model.type_name() +
                                  ") has no parameter named '" + name + "'");
    substituted.emplace(it->second.impl(), name);
  }
  std::vector<std::pair<std::string, Tensor>> prepared;
  for (const auto& [name, substitute] : substitutes) {
    const Tensor& parameter = parameters.at(name);
    if (!substitute.defined())
      throw std::invalid_argument("ParameterSubstitution: the substitute for '" + name + "' is undefined");
    if (substitute.shape() != parameter.shape() || substitute.dtype() != parameter.dtype())
      throw std::invalid_argument("ParameterSubstitution: the substitute for '" + name + "' is " +
                                  describe(substitute) + " but the parameter is " + describe(parameter));
    if (const std::string* source = reads_substituted_parameter(substitute, substituted))
      throw std::invalid_argument(
          "ParameterSubstitution: the substitute for '" + name + "' is computed from " +
          (*source == name ? "that parameter itself" : "the parameter '" + *source + "', also substituted") +
          ", whose tensor the scope overwrites (a backward would read the substitute's values); "
          "compute it from nn::detached_parameters(model) instead");
    // A leaf requiring grad gets its own node, so that gradients flow to the substitute's
    // impl rather than stopping at the parameter's (see the header).
    Tensor wrapped = substitute;
    if (substitute.requires_grad() && substitute.is_leaf()) {
      GradModeGuard recording(true);
      wrapped = reshape(substitute, substitute.shape());
    }
    prepared.emplace_back(name, wrapped);
  }

  // Save every original first (this may allocate), then swap (this cannot throw).
  swapped_.reserve(prepared.size());
  for (const auto& [name, wrapped] : prepared) {
    const std::shared_ptr<TensorImpl>& impl = parameters.at(name).impl_ptr();
    swapped_.push_back({name, impl, *impl});
  }
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    TensorImpl& impl = *swapped_[i].parameter;
    const TensorImpl& source = *prepared[i].second.impl();
    impl.storage = source.storage;
    impl.shape = source.shape;
    impl.dtype = source.dtype;
    impl.requires_grad = source.requires_grad;
    impl.grad_fn = source.grad_fn;
    impl.grad.reset();
  }
}

ParameterSubstitution::~ParameterSubstitution() {
  for (auto it = swapped_.rbegin(); it != swapped_.rend(); ++it) *it->parameter = it->original;
}

TensorMap detached_parameters(const Module& model, bool requires_grad) {
  TensorMap aliases;
  for (const auto& [name, p] : model.named_parameters()) {
    Tensor alias = p.detach();
    if (requires_grad) alias.requires_grad_(true);
    aliases.emplace(name, alias);
  }
  return aliases;
}

}  // namespace symgrad::nn
