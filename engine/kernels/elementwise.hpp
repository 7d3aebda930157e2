#pragma once
// Elementwise, reduction and softmax kernels on dense buffers. No autograd here:
// ops (engine/ops/) call these and record the graph themselves.
//
// Each kernel has two implementations with the same signature:
//   kernels::X            -- Highway SIMD (dynamic dispatch), split over the thread pool
//   kernels::X_reference  -- a plain scalar loop, the specification the tests compare to
#include <cstdint>

#include "engine/dtype.hpp"
#include "engine/shape.hpp"

namespace symgrad::kernels {

enum class Unary {
  neg, abs, exp, log, sqrt, square, sin, cos, tanh, sigmoid, relu, gelu, softplus, silu,
  erf,         // used by gelu's backward
  sign,        // -1, 0, 1 (abs's backward)
  step,        // 1 where x > 0 else 0 (relu's backward)
  reciprocal,  // 1 / x
  pow_scalar,  // x ^ param
  add_scalar,  // x + param
  mul_scalar,  // x * param
};

// y[i] = op(x[i]) for i < n. `param` is used by the *_scalar ops only.
void unary(Unary op, DType dt, const void* x, void* y, std::int64_t n, double param = 0.0);
void unary_reference(Unary op, DType dt, const void* x, void* y, std::int64_t n, double param = 0.0);

// Comparisons return 1 or 0 in the inputs' dtype (symgrad has no bool dtype).
enum class Binary { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge };

// out[idx] = op(a[idx . a_strides], b[idx . b_strides]) over every index of out_shape.
// Strides are in elements; a stride of 0 broadcasts. All three shapes have the same rank.
void binary(Binary op, DType dt, const void* a, const Shape& a_strides, const void* b,
            const Shape& b_strides, void* out, const Shape& out_shape);
void binary_reference(Binary op, DType dt, const void* a, const Shape& a_strides, const void* b,
                      const Shape& b_strides, void* out, const Shape& out_shape);

// The same for operands and output that all have n elements in the same layout.
void binary_same_shape(Binary op, DType dt, const void* a, const void* b, void* out, std::int64_t n);

// out = cond != 0 ? a : b, with broadcasting strides as in binary().
void where(DType dt, const void* cond, const Shape& cond_strides, const void* a,
           const Shape& a_strides, const void* b, const Shape& b_strides, void* out,
           const Shape& out_shape);
void where_reference(DType dt, const void* cond, const Shape& cond_strides, const void* a,
                     const Shape& a_strides, const void* b, const Shape& b_strides, void* out,
                     const Shape& out_shape);

// Reductions see the input as [outer, n, inner] and reduce the middle axis:
// out[o * inner + i] = reduce_k x[(o * n + k) * inner + i]. n == 0 gives the identity
// for sum (0); max and min of an empty range are rejected by the op layer.
enum class Reduce { sum, max, min };
void reduce(Reduce op, DType dt, const void* x, void* out, std::int64_t outer, std::int64_t n,
            std::int64_t inner);
void reduce_reference(Reduce op, DType dt, const void* x, void* out, std::int64_t outer,
                      std::int64_t n, std::int64_t inner);

// Numerically stable softmax / log_softmax along the middle axis of [outer, n, inner]
// (subtract the max first), and logsumexp (out has outer * inner elements).
void softmax(DType dt, const void* x, void* y, std::int64_t outer, std::int64_t n,
             std::int64_t inner, bool log);
void softmax_reference(DType dt, const void* x, void* y, std::int64_t outer, std::int64_t n,
                       std::int64_t inner, bool log);
void logsumexp(DType dt, const void* x, void* out, std::int64_t outer, std::int64_t n,
               std::int64_t inner);
void logsumexp_reference(DType dt, const void* x, void* out, std::int64_t outer, std::int64_t n,
                         std::int64_t inner);

// Gathers a strided view into a contiguous buffer: dst (row-major over `shape`) =
// src[offset + idx . src_strides]. Zero strides broadcast; permuted strides transpose.
// Every copying shape op (expand, permute, slice, ...) is one call of this.
void copy_strided(DType dt, const void* src, std::int64_t src_offset, const Shape& src_strides,
                  void* dst, const Shape& shape);
void copy_strided_reference(DType dt, const void* src, std::int64_t src_offset,
                            const Shape& src_strides, void* dst, const Shape& shape);

// dst[i] = src[i] converted between dtypes (same dtype: a copy).
void convert(DType from, const void* src, DType to, void* dst, std::int64_t n);
// dst[i] = value
void fill(DType dt, void* dst, std::int64_t n, double value);

}  // namespace symgrad::kernels
