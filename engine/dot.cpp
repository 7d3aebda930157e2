// Graphviz export: walks the graph from the root iteratively and writes one DOT
// statement per op, leaf and constant.
#include "engine/dot.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace symgrad {

std::string to_dot(const Tensor& root, const std::string& title) {
  if (!root.defined()) throw std::invalid_argument("to_dot: the root tensor is undefined");
  std::ostringstream os;
  os << "digraph \"" << title << "\" {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  os << "  output [shape=doubleoctagon, label=\"output\\n" << shape_str(root.shape()) << " "
     << dtype_name(root.dtype()) << "\"];\n";

  std::unordered_map<const void*, std::string> ids;  // Node* or TensorImpl* -> DOT id
  auto id_of = [&ids](const void* p, const char* prefix) {
    auto it = ids.find(p);
    if (it != ids.end()) return std::make_pair(it->second, false);
    std::string id = prefix + std::to_string(ids.size());
    ids.emplace(p, id);
    return std::make_pair(id, true);
  };
  auto leaf_stmt = [&os](const std::string& id, const Shape& shape, DType dt, bool requires_grad) {
    os << "  " << id << " [shape=ellipse, style=filled, fillcolor=\""
       << (requires_grad ? "lightblue" : "gray90") << "\", label=\"" << (requires_grad ? "leaf" : "constant")
       << "\\n" << shape_str(shape) << " " << dtype_name(dt) << (requires_grad ? "\\nrequires_grad" : "")
       << "\"];\n";
  };

  std::vector<Node*> stack;
  if (Node* n = root.grad_fn().get()) {
    auto [id, fresh] = id_of(n, "op");
    (void)fresh;
    os << "  " << id << " -> output;\n";
    stack.push_back(n);
    os << "  " << id << " [shape=box, style=filled, fillcolor=\"lightyellow\", label=\"" << n->name << "\\n"
       << shape_str(n->out_shape) << "\"];\n";
  } else {
    auto [id, fresh] = id_of(root.impl(), "leaf");
    (void)fresh;
    leaf_stmt(id, root.shape(), root.dtype(), root.requires_grad());
    os << "  " << id << " -> output;\n";
  }
  std::size_t constants = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    const std::string target = ids.at(n);
    for (const Edge& e : n->edges) {
      std::string source;
      if (e.node) {
        auto [id, fresh] = id_of(e.node.get(), "op");
        source = id;
        if (fresh) {
          os << "  " << id << " [shape=box, style=filled, fillcolor=\"lightyellow\", label=\"" << e.node->name
             << "\\n" << shape_str(e.node->out_shape) << "\"];\n";
          stack.push_back(e.node.get());
        }
      } else if (e.leaf) {
        auto [id, fresh] = id_of(e.leaf.get(), "leaf");
        source = id;
        if (fresh) leaf_stmt(id, e.shape(), e.dtype, true);
      } else {
        source = "const" + std::to_string(constants++);
        leaf_stmt(source, e.shape(), e.dtype, false);
      }
      os << "  " << source << " -> " << target << ";\n";
    }
  }
  os << "}\n";
  return os.str();
}

void write_dot(const Tensor& root, const std::string& path, const std::string& title) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("write_dot: cannot open '" + path + "' for writing");
  f << to_dot(root, title);
  if (!f) throw std::runtime_error("write_dot: writing '" + path + "' failed");
}

}  // namespace symgrad
