#include "engine/autograd.hpp"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "engine/creation.hpp"
#include "engine/ops/binary.hpp"
#include "engine/ops/reduce.hpp"

namespace symgrad {

// ---- grad mode ---------------------------------------------------------------
namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }
GradModeGuard::GradModeGuard(bool on) : previous_(g_grad_enabled) { g_grad_enabled = on; }
GradModeGuard::~GradModeGuard() { g_grad_enabled = previous_; }

// ---- tearing a graph down ------------------------------------------------------
// Destroying a node releases its inputs' nodes and its backward closure (which holds
// saved tensors, which hold their own nodes). Done naively that recursion is as deep
// as the graph. Instead the outermost destructor drains a work list, and nested
// destructors only append to it.
namespace {
thread_local bool t_tearing_down = false;
thread_local std::vector<std::shared_ptr<Node>> t_pending_nodes;
thread_local std::vector<BackwardFn> t_pending_closures;
}  // namespace

Node::~Node() {
  for (Edge& e : edges)
    if (e.node) t_pending_nodes.push_back(std::move(e.node));
  if (backward) t_pending_closures.push_back(std::move(backward));
  if (t_tearing_down) return;
  t_tearing_down = true;
  while (!t_pending_nodes.empty() || !t_pending_closures.empty()) {
    if (!t_pending_closures.empty()) {
      BackwardFn closure = std::move(t_pending_closures.back());
      t_pending_closures.pop_back();
    } else {
      std::shared_ptr<Node> node = std::move(t_pending_nodes.back());
      t_pending_nodes.pop_back();
    }
  }
  t_tearing_down = false;
}

const Shape& Edge::shape() const {
  if (node) return node->out_shape;
  if (leaf) return leaf->shape;
  return constant_shape;
}

// ---- recording ---------------------------------------------------------------
namespace {
// A leaf written in place after the forward pass (an optimizer step before backward,
// say) would get a gradient computed from values it no longer holds.
void check_leaf_versions(const Node& n) {
  for (std::size_t i = 0; i < n.edges.size(); ++i) {
    const Edge& e = n.edges[i];
    if (!e.leaf || e.leaf->storage->version() == e.leaf_version) continue;
    throw std::logic_error("backward: input " + std::to_string(i) + " of '" + n.name + "' (" +
                           dtype_name(e.leaf->dtype) + " " + shape_str(e.leaf->shape) +
                           ") was modified in place after the forward pass (version " +
                           std::to_string(e.leaf->storage->version()) + ", recorded " +
                           std::to_string(e.leaf_version) +
                           "); run the forward again after changing it (e.g. after "
                           "optimizer.step())");
  }
}

template <class Inputs>
std::shared_ptr<Node> record_inputs(const char* op, Tensor& out, const Inputs& inputs) {
  if (!g_grad_enabled) return nullptr;
  const bool any = std::any_of(inputs.begin(), inputs.end(),
                               [](const Tensor& t) { return t.requires_grad(); });
  if (!any) return nullptr;
  auto node = std::make_shared<Node>();
  node->name = op;
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  node->edges.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge& e = node->edges.emplace_back();
    if (!t.defined()) continue;
    e.dtype = t.dtype();
    if (!t.requires_grad()) e.constant_shape = t.shape();
    else if (t.grad_fn()) e.node = t.grad_fn();
    else {
      e.leaf = t.impl_ptr();
      e.leaf_version = t.impl()->storage->version();
    }
  }
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = node;
  return node;
}
}  // namespace

std::shared_ptr<Node> record(const char* op, Tensor& out, std::initializer_list<Tensor> inputs) {
  return record_inputs(op, out, inputs);
}
std::shared_ptr<Node> record(const char* op, Tensor& out, const TensorList& inputs) {
  return record_inputs(op, out, inputs);
}

SavedTensor SavedTensor::output(const Tensor& out, const std::shared_ptr<Node>& node) {
  SavedTensor s;
  s.storage_ = out.impl()->storage;
  s.shape_ = out.shape();
  s.dtype_ = out.dtype();
  s.node_ = node;
  s.op_ = node ? node->name : "";
  return s;
}

Tensor SavedTensor::unpack() const {
  auto node = node_.lock();
  if (!node || node->freed)
    throw std::logic_error("backward: the output saved by '" + op_ +
                           "' is gone because its graph was freed; pass retain_graph = true "
                           "to the first backward to run backward twice");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage_;
  impl->shape = shape_;
  impl->dtype = dtype_;
  impl->requires_grad = true;
  impl->grad_fn = std::move(node);
  return Tensor(std::move(impl));
}

// ---- the engine ----------------------------------------------------------------
namespace {

// Adds g into slot (undefined slot means zero).
void accumulate(Tensor& slot, const Tensor& g) { slot = slot.defined() ? add(slot, g) : g; }

Tensor seed_for(const Tensor& root, const Tensor& grad_output, const char* caller) {
  if (!grad_output.defined()) {
    if (root.numel() != 1)
      throw std::invalid_argument(std::string(caller) + ": output of shape " +
                                  shape_str(root.shape()) +
                                  " is not a scalar; pass a grad_output of the same shape");
    return ones_like(root);
  }
  if (grad_output.shape() != root.shape() || grad_output.dtype() != root.dtype())
    throw std::invalid_argument(std::string(caller) + ": grad_output " +
                                shape_str(grad_output.shape()) + " " +
                                dtype_name(grad_output.dtype()) + " does not match output " +
                                shape_str(root.shape()) + " " + dtype_name(root.dtype()));
  return grad_output;
}

// Nodes reachable from the roots, ordered so that every node comes after all nodes
// that consume its output (Kahn's algorithm on dependency counts). Iterative: a
// chain of a million ops needs no stack.
std::vector<Node*> topological_order(const std::vector<Node*>& roots) {
  std::unordered_map<Node*, int> consumers;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (Node* r : roots)
    if (seen.insert(r).second) stack.push_back(r);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->edges) {
      if (!e.node) continue;
      ++consumers[e.node.get()];
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }
  std::vector<Node*> order;
  order.reserve(seen.size());
  for (Node* r : roots)
    if (consumers[r] == 0 && std::find(order.begin(), order.end(), r) == order.end())
      order.push_back(r);
  for (std::size_t i = 0; i < order.size(); ++i)
    for (const Edge& e : order[i]->edges)
      if (e.node && --consumers[e.node.get()] == 0) order.push_back(e.node.get());
  return order;
}

// Replaces each gradient of a once-differentiable node by a copy whose own node
// depends on everything the gradient depends on (the op's inputs and the incoming
// gradient) and whose backward refuses to run.
void guard_second_derivative(const Node& n, const Tensor& grad_output, TensorList& grads) {
  for (Tensor& gi : grads) {
    if (!gi.defined()) continue;
    Tensor guarded = gi.detach();
    auto node = std::make_shared<Node>();
    node->name = n.name + "_backward";
    node->out_shape = guarded.shape();
    node->out_dtype = guarded.dtype();
    node->edges = n.edges;
    Edge& from_grad = node->edges.emplace_back();
    from_grad.dtype = grad_output.dtype();
    if (!grad_output.requires_grad()) from_grad.constant_shape = grad_output.shape();
    else if (grad_output.grad_fn()) from_grad.node = grad_output.grad_fn();
    else from_grad.leaf = grad_output.impl_ptr();
    node->backward = [op = n.name](const Tensor&, const Node&) -> TensorList {
      throw std::logic_error("backward: '" + op + "' has a fused backward kernel that is not "
                             "differentiable, so a second derivative through it is not available");
    };
    guarded.impl()->requires_grad = true;
    guarded.impl()->grad_fn = std::move(node);
    gi = guarded;
  }
}

struct Targets {
  bool all_leaves = false;                        // backward(): every leaf is a target
  std::unordered_map<TensorImpl*, std::size_t> leaves;  // grad(): leaf -> input index
  std::unordered_map<Node*, std::size_t> nodes;          // grad(): non-leaf input -> index
};

// Runs the backward pass from `roots` seeded with `seeds`. In backward() mode the
// leaves' .grad are accumulated; in grad() mode the results for `targets` are
// returned (indexed as the inputs).
TensorList run_backward(const TensorList& roots, const TensorList& seeds, const Targets& targets,
                        std::size_t n_results, bool create_graph, bool retain_graph) {
  TensorList results(n_results);
  std::unordered_map<Node*, Tensor> grads;
  std::vector<Node*> root_nodes;
  GradModeGuard mode(create_graph);

  auto deliver_to_leaf = [&](const std::shared_ptr<TensorImpl>& leaf, const Tensor& g) {
    if (targets.all_leaves) {
      Tensor gg = create_graph ? g : g.detach();
      leaf->grad = leaf->grad ? add(Tensor(leaf->grad), gg).impl_ptr() : gg.impl_ptr();
    } else if (auto it = targets.leaves.find(leaf.get()); it != targets.leaves.end()) {
      accumulate(results[it->second], g);
    }
  };

  for (std::size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    if (Node* n = r.grad_fn().get()) {
      accumulate(grads[n], seeds[i]);
      root_nodes.push_back(n);
    } else {
      deliver_to_leaf(r.impl_ptr(), seeds[i]);
    }
  }

  const std::vector<Node*> order = topological_order(root_nodes);

  // A node is worth running when some target lies below it.
  std::unordered_set<Node*> useful;
  if (targets.all_leaves) {
    useful.insert(order.begin(), order.end());
  } else {
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node* n = *it;
      for (const Edge& e : n->edges)
        if ((e.node && (useful.count(e.node.get()) || targets.nodes.count(e.node.get()))) ||
            (e.leaf && targets.leaves.count(e.leaf.get()))) {
          useful.insert(n);
          break;
        }
    }
  }

  for (Node* n : order) {
    auto git = grads.find(n);
    if (git == grads.end()) continue;  // no gradient reached this node
    Tensor g = std::move(git->second);
    grads.erase(git);
    if (auto t = targets.nodes.find(n); t != targets.nodes.end()) accumulate(results[t->second], g);
    if (!useful.count(n)) continue;
    if (n->freed || !n->backward)
      throw std::logic_error("backward: the graph through '" + n->name +
                             "' was already freed by an earlier backward; pass retain_graph = "
                             "true to the first call to run backward twice");
    check_leaf_versions(*n);
    // Tell the backward rule which input gradients go somewhere in this pass.
    n->wanted.assign(n->edges.size(), 1);
    if (!targets.all_leaves)
      for (std::size_t i = 0; i < n->edges.size(); ++i) {
        const Edge& e = n->edges[i];
        n->wanted[i] = e.node ? (useful.count(e.node.get()) || targets.nodes.count(e.node.get()))
                              : (e.leaf && targets.leaves.count(e.leaf.get()));
      }
    struct ClearWanted {  // also when the backward throws
      Node* node;
      ~ClearWanted() { node->wanted.clear(); }
    } clear_wanted{n};
    TensorList input_grads = n->backward(g, *n);
    if (create_graph && n->once_differentiable) guard_second_derivative(*n, g, input_grads);
    if (input_grads.size() != n->edges.size())
      throw std::logic_error("backward: '" + n->name + "' returned " +
                             std::to_string(input_grads.size()) + " gradients for " +
                             std::to_string(n->edges.size()) + " inputs");
    for (std::size_t i = 0; i < n->edges.size(); ++i) {
      const Edge& e = n->edges[i];
      Tensor gi = std::move(input_grads[i]);
      if (!e.requires_grad() || !gi.defined()) continue;
      if (gi.shape() != e.shape()) gi = sum_to(gi, e.shape());  // the one broadcast reduction
      if (gi.dtype() != e.dtype)
        throw std::logic_error("backward: '" + n->name + "' returned a " + dtype_name(gi.dtype()) +
                               " gradient for a " + dtype_name(e.dtype) + " input");
      if (e.node) {
        if (useful.count(e.node.get()) || targets.nodes.count(e.node.get()))
          accumulate(grads[e.node.get()], gi);
      } else {
        deliver_to_leaf(e.leaf, gi);
      }
    }
    if (!retain_graph) {
      n->backward = nullptr;  // releases the saved tensors
      n->freed = true;
    }
  }
  return results;
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_output, BackwardOptions opts) {
  if (!root.defined()) throw std::invalid_argument("backward: the output tensor is undefined");
  if (!root.requires_grad())
    throw std::invalid_argument("backward: the output does not require grad (no input of the "
                                "computation has requires_grad set, or it ran under NoGradGuard)");
  const Tensor seed = seed_for(root, grad_output, "backward");
  Targets targets;
  targets.all_leaves = true;
  run_backward({root}, {seed}, targets, 0, opts.create_graph,
               opts.retain_graph || opts.create_graph);
}

TensorList grad(const TensorList& outputs, const TensorList& inputs,
                const TensorList& grad_outputs, GradOptions opts) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw std::invalid_argument("grad: got " + std::to_string(grad_outputs.size()) +
                                " grad_outputs for " + std::to_string(outputs.size()) + " outputs");
  TensorList roots, seeds;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    if (!o.defined()) throw std::invalid_argument("grad: output " + std::to_string(i) + " is undefined");
    if (!o.requires_grad())
      throw std::invalid_argument("grad: output " + std::to_string(i) +
                                  " does not require grad, so no input can influence it");
    roots.push_back(o);
    seeds.push_back(seed_for(o, grad_outputs.empty() ? Tensor() : grad_outputs[i], "grad"));
  }
  Targets targets;
  std::vector<std::pair<std::size_t, std::size_t>> repeats;  // (input, its first occurrence)
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad())
      throw std::invalid_argument("grad: input " + std::to_string(i) + " does not require grad");
    // The same tensor passed twice gets the same gradient twice.
    if (x.grad_fn()) {
      const auto [it, fresh] = targets.nodes.emplace(x.grad_fn().get(), i);
      if (!fresh) repeats.emplace_back(i, it->second);
    } else {
      const auto [it, fresh] = targets.leaves.emplace(x.impl(), i);
      if (!fresh) repeats.emplace_back(i, it->second);
    }
  }
  TensorList results = run_backward(roots, seeds, targets, inputs.size(), opts.create_graph,
                                    opts.retain_graph || opts.create_graph);
  for (const auto& [repeat, first] : repeats) results[repeat] = results[first];
  for (std::size_t i = 0; i < results.size(); ++i)
    if (!results[i].defined() && !opts.allow_unused)
      throw std::invalid_argument("grad: input " + std::to_string(i) +
                                  " was not used to compute the outputs; pass allow_unused = "
                                  "true to get an undefined gradient for it");
  return results;
}

}  // namespace symgrad
