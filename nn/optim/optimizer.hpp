#pragma once
// Optimizer: the base of SGD, Adam and AdamW. An optimizer holds handles to the
// parameters it trains (the same tensors a Module registered) and, per parameter,
// the state its update rule needs (momentum, moment estimates), created at the first
// step that parameter has a gradient, in the parameter's dtype.
//
// step() writes the parameters in place with the kernels of
// engine/kernels/optim_update.hpp and bumps each written buffer's version, so a
// backward through a graph built before the step throws instead of lying. A
// parameter whose gradient is undefined (unused in the last backward) is skipped.
// A step checks every parameter before it writes any, so a mismatch (a gradient of
// another shape or dtype; a model converted with Module::to() after the state was
// made) throws and leaves everything as it was.
//
// state_dict() is what a checkpoint needs to resume bit for bit:
//   scalars: {"type": "sgd" | "adam" | "adamw", "num_params", "step" (step() calls),
//             "lr", and the optimizer's hyper-parameters}
//   tensors: "<buffer>.<i>" for parameter i, e.g. "momentum_buffer.3", "exp_avg.0"
// Both directions copy: the returned tensors do not change with further steps, and
// loaded ones are not shared with the caller. load_state_dict() restores the learning
// rate and hyper-parameters too (as PyTorch does), checks every name, count, shape and
// dtype before it changes anything, and throws naming the key or tensor at fault.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"
#include "nn/module.hpp"

namespace symgrad::nn {

struct OptimizerState {
  nlohmann::json scalars;
  NamedTensors tensors;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Drops every parameter's gradient (as Module::zero_grad()).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // used from the next step on; >= 0 and finite
  const std::vector<Tensor>& params() const { return params_; }
  std::int64_t step_count() const { return step_count_; }  // step() calls so far

  // "SGD", "Adam", "AdamW": used in error messages; state "type" is its lower case.
  const std::string& type_name() const { return name_; }

  virtual OptimizerState state_dict() const;
  virtual void load_state_dict(const OptimizerState& state);

 protected:
  // Throws if params is empty, or holds an undefined tensor, a non-leaf or the same
  // tensor twice.
  Optimizer(std::string name, std::vector<Tensor> params, double lr);

  // The parameter's gradient after checking its shape and dtype, or an undefined
  // tensor when it has none (the parameter is skipped).
  Tensor checked_grad(std::size_t i) const;
  // Throws unless `buffer` (undefined: not made yet) has parameter i's dtype and shape.
  void check_buffer(std::size_t i, const Tensor& buffer, const char* buffer_name) const;
  // Tells autograd that parameter i was written in place.
  void mark_updated(std::size_t i) const;
  void count_step() { ++step_count_; }

  // The hooks state_dict() and load_state_dict() call. save_state adds the
  // optimizer's own scalars and buffers; restore_state reads them from a state whose
  // common part is already checked, and must throw before changing anything.
  virtual void save_state(OptimizerState& state) const = 0;
  virtual void restore_state(const OptimizerState& state) = 0;
  // Every scalar key the optimizer writes besides the common ones, and its buffer
  // names: load_state_dict() rejects any other.
  virtual std::vector<std::string> scalar_keys() const = 0;
  virtual std::vector<std::string> buffer_names() const = 0;

  // For restore_state: the number under `key` (throws naming it when absent or not
  // a number), and the buffers "<name>.<i>", copied, one slot per parameter
  // (undefined where the state has none). Names, shapes and dtypes are already checked.
  double state_number(const OptimizerState& state, const std::string& key) const;
  std::vector<Tensor> state_buffers(const OptimizerState& state, const std::string& name) const;
  // "<name>.<i>" for every defined buffer, copied, into state.tensors.
  static void add_buffers(OptimizerState& state, const std::string& name,
                          const std::vector<Tensor>& buffers);

 private:
  void check_state(const OptimizerState& state) const;
  std::string state_type() const;

  std::string name_;
  std::vector<Tensor> params_;
  double lr_ = 0.0;
  std::int64_t step_count_ = 0;
};

namespace optim_detail {
// A number for an error message: "1e-09", "0.5" (std::to_string would print 0.000000).
std::string number_text(double value);

// Checks shared by the optimizers' options: throws std::invalid_argument naming the
// optimizer and the option unless the value is finite and within the range.
void check_nonnegative(const std::string& where, const char* option, double value);
void check_unit_interval(const std::string& where, const char* option, double value);  // [0, 1)

// An independent copy of t's values (no history, no requires_grad).
Tensor copy_of(const Tensor& t);
}  // namespace optim_detail

}  // namespace symgrad::nn
