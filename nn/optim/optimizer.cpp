#include "nn/optim/optimizer.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace symgrad::nn {

namespace optim_detail {

std::string number_text(double value) {
  std::ostringstream os;
  os << value;
  return os.str();
}

void check_nonnegative(const std::string& where, const char* option, double value) {
  if (!(value >= 0.0) || !std::isfinite(value))
    throw std::invalid_argument(where + ": " + option + " must be finite and >= 0, got " +
                                number_text(value));
}

void check_unit_interval(const std::string& where, const char* option, double value) {
  if (!(value >= 0.0 && value < 1.0))
    throw std::invalid_argument(where + ": " + option + " must be in [0, 1), got " +
                                number_text(value));
}

Tensor copy_of(const Tensor& t) {
  Tensor copy = Tensor::empty(t.shape(), t.dtype());
  copy_(copy, t);
  return copy;
}

}  // namespace optim_detail

namespace {

std::string describe(std::size_t i, const Tensor& p) {
  return "parameter " + std::to_string(i) + " " + shape_str(p.shape()) + " " + dtype_name(p.dtype());
}

// "exp_avg.12" -> ("exp_avg", 12); false unless the suffix is a canonical index.
bool split_buffer_name(const std::string& full, std::string& name, std::size_t& index) {
  const std::size_t dot = full.rfind('.');
  if (dot == std::string::npos || dot + 1 == full.size()) return false;
  const std::string digits = full.substr(dot + 1);
  if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }))
    return false;
  index = std::stoul(digits);
  if (std::to_string(index) != digits) return false;  // "07" is not parameter 7's name
  name = full.substr(0, dot);
  return true;
}

}  // namespace

Optimizer::Optimizer(std::string name, std::vector<Tensor> params, double lr)
    : name_(std::move(name)), params_(std::move(params)) {
  if (params_.empty()) throw std::invalid_argument(name_ + ": the parameter list is empty");
  std::set<const TensorImpl*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined())
      throw std::invalid_argument(name_ + ": parameter " + std::to_string(i) + " is undefined");
    if (!p.is_leaf())
      throw std::invalid_argument(name_ + ": " + describe(i, p) +
                                  " is not a leaf (an op computed it); optimize the tensors it "
                                  "was computed from");
    if (!seen.insert(p.impl()).second)
      throw std::invalid_argument(name_ + ": " + describe(i, p) +
                                  " appears twice in the parameter list");
  }
  set_lr(lr);
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) { optim_detail::check_nonnegative(name_, "lr", lr); lr_ = lr; }

Tensor Optimizer::checked_grad(std::size_t i) const {
  const Tensor& p = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  if (g.dtype() != p.dtype() || g.shape() != p.shape())
    throw std::invalid_argument(name_ + ": " + describe(i, p) + " has a gradient " +
                                shape_str(g.shape()) + " " + dtype_name(g.dtype()) +
                                "; a gradient must match its parameter's shape and dtype");
  return g;
}

void Optimizer::check_buffer(std::size_t i, const Tensor& buffer, const char* buffer_name) const {
  const Tensor& p = params_[i];
  if (!buffer.defined() || (buffer.dtype() == p.dtype() && buffer.shape() == p.shape())) return;
  throw std::invalid_argument(name_ + ": " + describe(i, p) + " has a " + buffer_name + " " +
                              shape_str(buffer.shape()) + " " + dtype_name(buffer.dtype()) +
                              " (was the model converted with Module::to() after the optimizer "
                              "made its state? build the optimizer after converting)");
}

void Optimizer::mark_updated(std::size_t i) const { params_[i].impl()->storage->bump_version(); }

std::string Optimizer::state_type() const {
  std::string type = name_;
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type;
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState state;
  state.scalars = {{"type", state_type()},
                   {"num_params", params_.size()},
                   {"step", step_count_},
                   {"lr", lr_}};
  save_state(state);
  return state;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  check_state(state);
  const double lr = state_number(state, "lr");
  optim_detail::check_nonnegative(name_ + ".load_state_dict", "lr", lr);
  const std::int64_t step = state.scalars.at("step").get<std::int64_t>();
  restore_state(state);  // validates its part, then commits; the common part last
  lr_ = lr;
  step_count_ = step;
}

void Optimizer::check_state(const OptimizerState& state) const {
  const std::string where = name_ + ".load_state_dict: ";
  const nlohmann::json& scalars = state.scalars;
  if (!scalars.is_object()) throw std::invalid_argument(where + "scalars must be a JSON object");
  const auto integer = [&](const char* key) {
    if (!scalars.contains(key)) throw std::invalid_argument(where + "scalars has no '" + key + "'");
    const nlohmann::json& v = scalars.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0)
      throw std::invalid_argument(where + "'" + key + "' must be an integer >= 0, got " + v.dump());
    return v.get<std::int64_t>();
  };
  if (!scalars.contains("type") || scalars.at("type") != state_type())
    throw std::invalid_argument(where + "'type' is " +
                                (scalars.contains("type") ? scalars.at("type").dump() : "missing") +
                                ", expected \"" + state_type() + "\"");
  const std::int64_t count = integer("num_params");
  if (count != static_cast<std::int64_t>(params_.size()))
    throw std::invalid_argument(where + "the state is for " + std::to_string(count) +
                                " parameters, this optimizer has " + std::to_string(params_.size()));
  integer("step");

  std::vector<std::string> known = {"type", "num_params", "step", "lr"};
  for (const std::string& key : scalar_keys()) known.push_back(key);
  for (const auto& item : scalars.items())
    if (std::find(known.begin(), known.end(), item.key()) == known.end())
      throw std::invalid_argument(where + "unknown scalar '" + item.key() + "'");

  const std::vector<std::string> names = buffer_names();
  std::set<std::string> seen;
  for (const auto& [full_name, t] : state.tensors) {
    std::string name;
    std::size_t index = 0;
    if (!split_buffer_name(full_name, name, index) ||
        std::find(names.begin(), names.end(), name) == names.end())
      throw std::invalid_argument(where + "unknown tensor '" + full_name + "'");
    if (index >= params_.size())
      throw std::invalid_argument(where + "tensor '" + full_name + "' is for parameter " +
                                  std::to_string(index) + ", but there are only " +
                                  std::to_string(params_.size()));
    if (!seen.insert(full_name).second)
      throw std::invalid_argument(where + "tensor '" + full_name + "' appears twice");
    if (!t.defined()) throw std::invalid_argument(where + "tensor '" + full_name + "' is undefined");
    const Tensor& p = params_[index];
    if (t.shape() != p.shape() || t.dtype() != p.dtype())
      throw std::invalid_argument(where + "tensor '" + full_name + "' is " + shape_str(t.shape()) +
                                  " " + dtype_name(t.dtype()) + ", but " + describe(index, p));
  }
}

double Optimizer::state_number(const OptimizerState& state, const std::string& key) const {
  const std::string where = name_ + ".load_state_dict: ";
  if (!state.scalars.is_object() || !state.scalars.contains(key))
    throw std::invalid_argument(where + "scalars has no '" + key + "'");
  const nlohmann::json& v = state.scalars.at(key);
  if (!v.is_number()) throw std::invalid_argument(where + "'" + key + "' is not a number: " + v.dump());
  return v.get<double>();
}

std::vector<Tensor> Optimizer::state_buffers(const OptimizerState& state, const std::string& name) const {
  std::vector<Tensor> buffers(params_.size());
  for (const auto& [full_name, t] : state.tensors) {
    std::string buffer_name;
    std::size_t index = 0;
    if (split_buffer_name(full_name, buffer_name, index) && buffer_name == name)
      buffers[index] = optim_detail::copy_of(t);
  }
  return buffers;
}

void Optimizer::add_buffers(OptimizerState& state, const std::string& name,
                            const std::vector<Tensor>& buffers) {
  for (std::size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i].defined())
      state.tensors.emplace_back(name + "." + std::to_string(i), optim_detail::copy_of(buffers[i]));
}

}  // namespace symgrad::nn
