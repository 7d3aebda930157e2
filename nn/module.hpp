#pragma once
// Module: the base of every layer and model. A module owns named parameters (tensors
// an optimizer trains), named buffers (state that is saved but not trained, such as
// BatchNorm's running statistics) and named child modules. Each is registered once,
// in the constructor; the recursive views (named_parameters(), named_state(), ...)
// walk the children and join names with dots: "blocks.3.conv1.weight".
//
// Tensors are shared handles, so the registry and a layer's member (`weight`) are the
// same tensor. Change a parameter's values with copy_() or load_state(), not by
// assigning a new tensor to the member: the registry would keep the old one.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/engine.hpp"

namespace symgrad::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Modules live behind shared_ptr and are referred to by their parents: no copies.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The computation. Models with several inputs add their own call methods.
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Short type name ("Linear") and its arguments ("784 -> 256, bias"), for summary().
  virtual std::string type_name() const = 0;
  virtual std::string extra_repr() const { return {}; }

  // Training mode (Dropout drops, BatchNorm uses batch statistics) or eval mode.
  // Sets the whole subtree.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Recursive views, in registration order (depth first: a module's own tensors, then
  // each child's).
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  NamedTensors named_state() const;  // parameters then buffers: what is saved to disk
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // Every module below this one (not itself), with dotted names.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;

  std::int64_t num_parameters() const;  // total number of trainable values
  void zero_grad();                     // drops every parameter's .grad

  // Converts every parameter and buffer, in place, to dtype (float32 <-> float64).
  // Gradients are dropped; an optimizer built before must be rebuilt.
  void to(DType dtype);
  // The dtype of the parameters (and buffers); throws if they are mixed, f32 if none.
  DType dtype() const;

  // One line per module with its type, arguments and parameter count, then totals.
  std::string summary() const;

  // How the module's parameters are wired, as data, where its code knows more than its
  // children do (PDEResNet: its residual streams, pde/pde_resnet.hpp). The symmetry
  // module reads it to build group actions without depending on the model's code.
  // Null by default.
  virtual nlohmann::json weight_structure() const;

 protected:
  // Registration, for constructors. Names are unique within a module and contain no dot.
  // A parameter is marked requires_grad; an undefined tensor registers nothing
  // (an optional bias that is off).
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

  // Called by train() on each module after its flag changed (e.g. to reset state).
  virtual void on_train_changed() {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void check_new_name(const std::string& name, const char* what) const;
  template <class Visit>
  void walk(const std::string& prefix, Visit&& visit) const;

  bool training_ = true;
  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Modules in a row: forward(x) = m_n(...m_2(m_1(x))). Children are named "0", "1", ...
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);

  // Appends a module (named by its position) and returns *this for chaining.
  Sequential& push_back(std::shared_ptr<Module> module);
  std::size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](std::size_t i) const;

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace symgrad::nn
