#include "pde/fold_bn.hpp"

#include <map>
#include <stdexcept>
#include <string>

#include "nn/init.hpp"

namespace symgrad::pde {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::shared_ptr<PDEResNet> fold_batch_norms(const PDEResNet& model) {
  if (model.config().folded)
    throw std::invalid_argument("fold_batch_norms: the model is already folded (" + model.extra_repr() + ")");

  PDEResNetConfig config = model.config();
  config.folded = true;
  config.dtype = model.dtype();  // Module::to() may have changed it since the build
  config.batch_norm.dtype = config.dtype;
  // Every value of the copy is overwritten below, so building it must not consume the
  // caller's random numbers.
  const Generator saved = nn::default_generator();
  auto folded = std::make_shared<PDEResNet>(config);
  nn::default_generator() = saved;

  // The two models have the same module tree (only the ConvBN units' insides differ), so
  // their named_modules() line up one for one.
  const auto sources = model.named_modules();
  const auto targets = folded->named_modules();
  std::vector<std::string> folded_units;
  for (std::size_t i = 0, j = 0; i < sources.size(); ++i) {
    const auto& [name, source] = sources[i];
    const auto source_unit = std::dynamic_pointer_cast<ConvBN>(source);
    if (!source_unit) continue;
    // Skip the target's modules up to the unit of the same name (the source's ConvBN has a
    // bn child that the folded one lacks, so the two lists do not advance in step).
    while (j < targets.size() && targets[j].first != name) ++j;
    if (j == targets.size())
      throw std::logic_error("fold_batch_norms: the folded model has no unit \"" + name + "\"");
    std::dynamic_pointer_cast<ConvBN>(targets[j].second)->fold_from(*source_unit);
    folded_units.push_back(name + ".");
  }

  // Everything outside the ConvBN units (fc, the coefficient convs) is copied as is.
  std::map<std::string, Tensor> source_state;
  for (const auto& [name, tensor] : model.named_state()) source_state.emplace(name, tensor);
  NoGradGuard no_grad;
  for (auto& [name, tensor] : folded->named_state()) {
    bool inside_unit = false;
    for (const std::string& prefix : folded_units) inside_unit = inside_unit || starts_with(name, prefix);
    if (inside_unit) continue;
    const auto source = source_state.find(name);
    if (source == source_state.end())
      throw std::logic_error("fold_batch_norms: the source model has no \"" + name + "\"");
    copy_(tensor, source->second);
  }
  folded->eval();
  return folded;
}

}  // namespace symgrad::pde
