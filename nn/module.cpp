#include "nn/module.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace symgrad::nn {

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// 1234567 -> "1,234,567"
std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::int64_t total_numel(const NamedTensors& tensors) {
  std::int64_t n = 0;
  for (const auto& [name, t] : tensors) n += t.numel();
  return n;
}
}  // namespace

// ---- registration ----------------------------------------------------------------
void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument(std::string("Module::register_") + what + ": name '" + name +
                                "' must be non-empty and contain no '.'");
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_))
    throw std::invalid_argument(std::string("Module::register_") + what + ": " + type_name() +
                                " already has a member named '" + name + "'");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  if (!t.defined()) return t;
  check_new_name(name, "parameter");
  if (!t.is_leaf())
    throw std::invalid_argument("Module::register_parameter: '" + name +
                                "' is the result of an op; register a leaf (detach() it)");
  t.requires_grad_(true);
  parameters_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  if (!t.defined()) return t;
  check_new_name(name, "buffer");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  if (!child) throw std::invalid_argument("Module::register_module: '" + name + "' is null");
  check_new_name(name, "module");
  children_.emplace_back(name, std::move(child));
}

// ---- recursive views -------------------------------------------------------------
// visit(prefix, module) for this module and every descendant, depth first. Iterative,
// so a very deep model cannot overflow the stack.
template <class Visit>
void Module::walk(const std::string& prefix, Visit&& visit) const {
  std::vector<std::pair<std::string, const Module*>> stack{{prefix, this}};
  while (!stack.empty()) {
    auto [name, m] = stack.back();
    stack.pop_back();
    visit(name, *m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(join(name, it->first), it->second.get());
  }
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  walk("", [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, t] : m.parameters_) out.emplace_back(join(prefix, name), t);
  });
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  walk("", [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, t] : m.buffers_) out.emplace_back(join(prefix, name), t);
  });
  return out;
}

NamedTensors Module::named_state() const {
  NamedTensors out = named_parameters();
  for (auto& entry : named_buffers()) out.push_back(std::move(entry));
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> stack(children_.rbegin(),
                                                                     children_.rend());
  while (!stack.empty()) {
    auto [name, m] = stack.back();
    stack.pop_back();
    out.emplace_back(name, m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(join(name, it->first), it->second);
  }
  return out;
}

std::int64_t Module::num_parameters() const { return total_numel(named_parameters()); }

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

void Module::train(bool on) {
  std::vector<Module*> stack{this};
  while (!stack.empty()) {
    Module* m = stack.back();
    stack.pop_back();
    const bool changed = m->training_ != on;
    m->training_ = on;
    if (changed) m->on_train_changed();
    for (auto& [name, child] : m->children_) stack.push_back(child.get());
  }
}

void Module::to(DType dtype) {
  NoGradGuard no_grad;
  for (auto& [name, t] : named_state()) {
    Tensor handle = t;
    convert_dtype_(handle, dtype);
  }
}

DType Module::dtype() const {
  const NamedTensors state = named_state();
  if (state.empty()) return DType::f32;
  const DType first = state.front().second.dtype();
  for (const auto& [name, t] : state)
    if (t.dtype() != first)
      throw std::logic_error("Module::dtype: '" + state.front().first + "' is " +
                             dtype_name(first) + " but '" + name + "' is " +
                             dtype_name(t.dtype()) + "; call to(dtype) to make them agree");
  return first;
}

nlohmann::json Module::weight_structure() const { return nullptr; }

std::string Module::summary() const {
  struct Row {
    std::string name, what;
    std::int64_t params;
    bool container;
  };
  std::vector<Row> rows;
  for (auto& [name, m] : named_modules()) {
    const std::string args = m->extra_repr();
    const bool container = !m->children_.empty();
    rows.push_back({name, m->type_name() + (args.empty() ? "" : "(" + args + ")"),
                    container ? m->num_parameters() : total_numel(m->parameters_), container});
  }
  std::size_t name_w = 4, what_w = 4;
  for (const Row& r : rows) {
    name_w = std::max(name_w, r.name.size());
    what_w = std::max(what_w, r.what.size());
  }
  std::ostringstream os;
  const std::string args = extra_repr();
  os << type_name() << (args.empty() ? "" : "(" + args + ")") << "  ["
     << (named_state().empty() ? "no tensors" : dtype_name(dtype())) << ", "
     << (training_ ? "train" : "eval") << " mode]\n";
  os << "  " << std::left << std::setw(static_cast<int>(name_w)) << "name" << "  "
     << std::setw(static_cast<int>(what_w)) << "layer" << "  " << std::right << std::setw(12)
     << "parameters" << "\n";
  for (const Row& r : rows) {
    // A container's count is its subtree's, in parentheses so it is not added twice.
    std::string count = with_commas(r.params);
    if (r.container) count.insert(0, 1, '(').push_back(')');
    os << "  " << std::left << std::setw(static_cast<int>(name_w)) << r.name << "  "
       << std::setw(static_cast<int>(what_w)) << r.what << "  " << std::right << std::setw(12)
       << count << "\n";
  }
  os << "  total: " << with_commas(num_parameters()) << " trainable parameters in "
     << named_parameters().size() << " tensors";
  const std::int64_t buffer_values = total_numel(named_buffers());
  if (buffer_values > 0) os << ", " << with_commas(buffer_values) << " buffer values";
  os << "\n";
  return os.str();
}

// ---- Sequential ------------------------------------------------------------------
Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules)
    : Sequential(std::vector<std::shared_ptr<Module>>(modules)) {}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

Sequential& Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
  return *this;
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t i) const {
  if (i >= modules_.size())
    throw std::out_of_range("Sequential: index " + std::to_string(i) + " out of range for " +
                            std::to_string(modules_.size()) + " modules");
  return modules_[i];
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

}  // namespace symgrad::nn
