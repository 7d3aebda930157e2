#pragma once
// The dynamic graph: nodes recorded by ops, and the engine that walks them backward.
//
// Each differentiable op that sees an input requiring grad records one Node for its
// (single) output. The node holds an Edge per input -- the input's own node, or the
// input itself when it is a leaf -- and a backward function written with ordinary
// ops. Because the backward is made of ops, running it with grad mode on
// (create_graph = true) records a new graph, and gradients of gradients follow.
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace symgrad {

using TensorList = std::vector<Tensor>;

// Where an input's gradient goes: into its producing node, or into a leaf's .grad.
struct Edge {
  std::shared_ptr<Node> node;         // set for non-leaf inputs that require grad
  std::shared_ptr<TensorImpl> leaf;   // set for leaf inputs that require grad
  Shape constant_shape;               // for inputs that need no grad (shown by to_dot)
  DType dtype = DType::f32;
  std::uint64_t leaf_version = 0;     // the leaf's storage version when the op ran
  bool requires_grad() const { return node || leaf; }
  // The input's shape, which gradients are summed back to. Not stored for inputs that
  // need grad: their node's output shape or the leaf's shape is it (one allocation
  // fewer per recorded op, which is most of the cost of a tiny op).
  const Shape& shape() const;
};

// Backward rule: given dL/d(output), return dL/d(input_i) for each input, in the
// output's (broadcast) shape or the input's shape; an undefined tensor means zero.
// The engine reduces broadcast gradients to the input shape (one central place).
using BackwardFn = std::function<TensorList(const Tensor& grad_output, const Node& node)>;

struct Node {
  std::string name;          // the op, e.g. "mul"
  std::vector<Edge> edges;   // one per input, in the op's argument order
  Shape out_shape;
  DType out_dtype = DType::f32;
  BackwardFn backward;       // null once the graph is freed
  bool freed = false;
  // Set by ops whose backward is a fused kernel rather than differentiable ops. With
  // create_graph, the gradients it returns are marked so that differentiating them
  // again throws a clear error instead of silently giving zero.
  bool once_differentiable = false;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();  // iterative: dropping a million-node graph must not recurse

  // Set by the engine only while this node's backward runs: which inputs' gradients the
  // current pass delivers anywhere. grad() asks for some inputs only (an HNN's field
  // needs dH/dx, not dH/dW), and a backward rule that checks needs_grad() skips the rest.
  // Empty means every input that requires grad.
  std::vector<char> wanted;

  bool needs_grad(std::size_t input) const {
    return input < edges.size() && edges[input].requires_grad() &&
           (wanted.empty() || wanted[input]);
  }
};

// A tensor an op keeps for its backward. Saving an op's own *output* strongly would
// make a cycle (output -> node -> saved output), so outputs are saved with a weak
// link to their node and re-attached to it when unpacked: exp's backward, g * y,
// then still differentiates through y = exp(x).
class SavedTensor {
 public:
  SavedTensor() = default;
  static SavedTensor output(const Tensor& out, const std::shared_ptr<Node>& node);
  Tensor unpack() const;

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  DType dtype_ = DType::f32;
  std::weak_ptr<Node> node_;
  std::string op_;
};

// ---- grad mode ---------------------------------------------------------------
bool grad_enabled();
class NoGradGuard {  // within its scope ops record nothing
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
 private:
  bool previous_;
};
class GradModeGuard {  // sets grad mode to `on` within its scope
 public:
  explicit GradModeGuard(bool on);
  ~GradModeGuard();
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;
 private:
  bool previous_;
};

// ---- recording (used by op implementations) -----------------------------------
// If grad mode is on and any input requires grad, marks `out` as produced by a new
// node named `op` and returns it so the caller can set node->backward. Otherwise
// returns null and records nothing.
std::shared_ptr<Node> record(const char* op, Tensor& out, std::initializer_list<Tensor> inputs);
std::shared_ptr<Node> record(const char* op, Tensor& out, const TensorList& inputs);

// ---- running the graph backward ----------------------------------------------
struct BackwardOptions {
  bool create_graph = false;  // record the backward itself (grad of grad)
  bool retain_graph = false;  // keep saved tensors for another backward (implied by create_graph)
};

// Accumulates d(root)/d(leaf) into every leaf's .grad. A non-scalar root needs
// grad_output (same shape and dtype as root).
void backward(const Tensor& root, const Tensor& grad_output = Tensor(), BackwardOptions opts = {});

struct GradOptions {
  bool create_graph = false;
  bool retain_graph = false;  // implied by create_graph
  bool allow_unused = false;  // an input the outputs do not depend on gets an undefined
                              // tensor instead of an error
};

// Like torch.autograd.grad: returns sum_k d(outputs[k])/d(inputs) weighted by
// grad_outputs[k] (ones for scalar outputs), without touching any .grad.
TensorList grad(const TensorList& outputs, const TensorList& inputs,
                const TensorList& grad_outputs = {}, GradOptions opts = {});

}  // namespace symgrad
