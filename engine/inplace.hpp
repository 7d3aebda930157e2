#pragma once
// Writes into an existing tensor's buffer. These are the only mutating operations:
// everything else returns a new tensor. They record nothing in the graph, so they
// refuse a tensor that requires grad while grad mode is on (wrap parameter updates
// in a NoGradGuard, as optimizers do), and each bumps the buffer's version so that a
// backward through a graph that saw the old values throws instead of lying.
#include "engine/tensor.hpp"

namespace symgrad {

// dst <- src, element for element (same shape; src may have the other dtype).
void copy_(Tensor& dst, const Tensor& src);
// dst <- value everywhere.
void fill_(Tensor& dst, double value);
// Converts t's values to `dtype` in place: every handle to t sees the new dtype. Its
// accumulated gradient is dropped (it has the old dtype). Used by Module::to().
void convert_dtype_(Tensor& t, DType dtype);

}  // namespace symgrad
