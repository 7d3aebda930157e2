#pragma once
// Graphviz DOT export of the graph behind a tensor, for teaching: one box per op
// with its output shape, one ellipse per leaf (filled when it requires grad).
#include <string>

#include "engine/autograd.hpp"

namespace symgrad {

std::string to_dot(const Tensor& root, const std::string& title = "symgrad");
void write_dot(const Tensor& root, const std::string& path, const std::string& title = "symgrad");

}  // namespace symgrad
