#pragma once
// Making tensors: constants, ranges, identity, and tensors from C++ containers.
// All take the dtype last, defaulting to float32. Created tensors are leaves that
// do not require grad; call .requires_grad_() to make a parameter.
#include <initializer_list>
#include <vector>

#include "engine/tensor.hpp"

namespace symgrad {

Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor ones(const Shape& shape, DType dtype = DType::f32);
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar(double value, DType dtype = DType::f32);  // shape []

// [start, end) in steps of `step` (like numpy.arange); throws on step == 0.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32);
// `count` points from start to end inclusive.
Tensor linspace(double start, double end, std::int64_t count, DType dtype = DType::f32);
// n x m identity (m defaults to n).
Tensor eye(std::int64_t n, std::int64_t m = -1, DType dtype = DType::f32);

// From values; the shape defaults to 1-D [values.size()] and must match the count.
Tensor tensor(std::initializer_list<double> values, const Shape& shape = {}, DType dtype = DType::f32);
Tensor from_vector(const std::vector<float>& values, const Shape& shape = {});
Tensor from_vector(const std::vector<double>& values, const Shape& shape = {});
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype);

}  // namespace symgrad
