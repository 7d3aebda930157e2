#pragma once
// A "functional call": run a model with some of its parameters replaced by other
// tensors, which may carry graph history. With theta' = act(g, theta) substituted,
// f(theta', x) is an ordinary forward pass whose graph runs back to g, so d f / d g (and
// second derivatives) come from the usual grad(); teleportation and symmetry audits are
// built on it.
//
//   auto theta = nn::detached_parameters(model);          // leaf aliases, see below
//   auto moved = symmetry::act(sym, g, theta);            // has history in g
//   {
//     nn::ParameterSubstitution scope(model, moved);
//     Tensor loss = loss_fn(model(x), y);
//     TensorList dg = grad({loss}, {g});                  // inside the scope
//   }                                                     // parameters are back
//
// How: layers hold their parameters as Tensor members that share one TensorImpl with the
// module's registry, so the only way to make every layer see another tensor is to
// change that impl. The scope saves each named parameter's impl contents (storage,
// shape, dtype, requires_grad, grad_fn, grad), writes the substitute's in, and writes
// the saved contents back in its destructor, also when an exception unwinds.
//
// Rules (each enforced where it can be, documented where it cannot):
//  - Names come from named_parameters(); an unknown name, an undefined substitute, or a
//    shape or dtype that differs from the parameter's throws std::invalid_argument
//    naming the parameter, and nothing is substituted.
//  - A substitute that is a leaf requiring grad is first passed through a recorded
//    identity op (a reshape to its own shape). Otherwise the parameter's impl would
//    itself become that leaf's twin, and gradients would be delivered into the
//    parameter's impl (and then thrown away on restore) instead of into the substitute.
//  - A substitute must not be computed from a parameter it replaces (or from another
//    parameter substituted in the same scope): that graph reads the parameter's impl,
//    which inside the scope holds the substitute, so its backward would use the wrong
//    values. The constructor walks each substitute's graph and throws if it finds one.
//    Compute substitutes from detached_parameters(model) instead: leaf aliases that
//    share the parameters' storage but not their impls.
//  - Every use of a graph built inside the scope -- backward(), grad(), create_graph,
//    a second backward -- must happen inside the scope. Ops built there saved handles
//    to the parameters' impls for their backward; once the scope has restored the
//    original contents, those handles read the original values (and history), and the
//    derivatives would silently be those of a different function.
//  - While the scope lives, do not convert the model (Module::to), load state into it or
//    step an optimizer on it; whatever happens to the parameters' own .grad inside the
//    scope is discarded on restore (the original .grad comes back).
//  - Scopes nest (restore is LIFO, as destructors run); the object cannot be copied or
//    moved.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.hpp"
#include "nn/module.hpp"

namespace symgrad::nn {

using TensorMap = std::map<std::string, Tensor>;

class ParameterSubstitution {
 public:
  ParameterSubstitution(Module& model, const TensorMap& substitutes);
  ~ParameterSubstitution();
  ParameterSubstitution(const ParameterSubstitution&) = delete;
  ParameterSubstitution& operator=(const ParameterSubstitution&) = delete;
  ParameterSubstitution(ParameterSubstitution&&) = delete;
  ParameterSubstitution& operator=(ParameterSubstitution&&) = delete;

  std::size_t size() const { return swapped_.size(); }

 private:
  struct Swapped {
    std::string name;
    std::shared_ptr<TensorImpl> parameter;  // the impl shared by registry and layers
    TensorImpl original;                    // its contents before the scope
  };
  std::vector<Swapped> swapped_;
};

// Runs fn() with the substitutes in place and returns what it returns; the parameters
// are restored however fn() ends. Everything that differentiates the graph fn() builds
// belongs inside fn().
template <class Fn>
decltype(auto) with_parameters(Module& model, const TensorMap& substitutes, Fn&& fn) {
  ParameterSubstitution scope(model, substitutes);
  return std::forward<Fn>(fn)();
}

// The model's parameters as leaf aliases: the same storage (no copy; in-place writes to
// the parameters show through), fresh impls, requires_grad as asked. A graph built from
// them does not refer to the parameters' impls, so it survives a ParameterSubstitution,
// and grad() with respect to an alias is the gradient with respect to that parameter.
TensorMap detached_parameters(const Module& model, bool requires_grad = true);

}  // namespace symgrad::nn
