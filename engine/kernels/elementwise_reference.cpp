// Plain scalar loops: the specification every SIMD kernel is tested against.
// Written for clarity, not speed; math comes from <cmath> in the element type.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "engine/kernels/elementwise.hpp"

namespace symgrad::kernels {
namespace {

template <class T>
T unary_scalar(Unary op, T x, T param) {
  switch (op) {
    case Unary::neg: return -x;
    case Unary::abs: return std::abs(x);
    case Unary::exp: return std::exp(x);
    case Unary::log: return std::log(x);
    case Unary::sqrt: return std::sqrt(x);
    case Unary::square: return x * x;
    case Unary::sin: return std::sin(x);
    case Unary::cos: return std::cos(x);
    case Unary::tanh: return std::tanh(x);
    case Unary::sigmoid: return T(1) / (T(1) + std::exp(-x));
    case Unary::relu: return x > T(0) ? x : T(0);
    case Unary::gelu: return T(0.5) * x * (T(1) + std::erf(x / std::sqrt(T(2))));
    case Unary::softplus:  // log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|)
      return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
    case Unary::silu: return x / (T(1) + std::exp(-x));
    case Unary::erf: return std::erf(x);
    case Unary::sign: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case Unary::step: return x > T(0) ? T(1) : T(0);
    case Unary::reciprocal: return T(1) / x;
    case Unary::pow_scalar: return std::pow(x, param);
    case Unary::add_scalar: return x + param;
    case Unary::mul_scalar: return x * param;
  }
  return x;
}

template <class T>
T binary_scalar(Binary op, T a, T b) {
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::div: return a / b;
    case Binary::pow: return std::pow(a, b);
    // NaN propagates, as in NumPy's maximum/minimum.
    case Binary::maximum: return (a != a || a > b) ? a : b;
    case Binary::minimum: return (a != a || a < b) ? a : b;
    case Binary::eq: return a == b ? T(1) : T(0);
    case Binary::ne: return a != b ? T(1) : T(0);
    case Binary::lt: return a < b ? T(1) : T(0);
    case Binary::le: return a <= b ? T(1) : T(0);
    case Binary::gt: return a > b ? T(1) : T(0);
    case Binary::ge: return a >= b ? T(1) : T(0);
  }
  return a;
}

// Visits every index of `shape` in row-major order, calling fn(offset_0, offset_1, ...)
// with one running offset per strides array. Iterative odometer, no recursion.
template <std::size_t K, class Fn>
void for_each_index(const Shape& shape, const Shape* const (&strides)[K], Fn&& fn) {
  const std::size_t rank = shape.size();
  for (auto d : shape)
    if (d == 0) return;
  std::vector<std::int64_t> idx(rank, 0);
  std::int64_t off[K] = {};
  std::int64_t total = shape_numel(shape);
  for (std::int64_t count = 0; count < total; ++count) {
    fn(off);
    for (std::size_t d = rank; d-- > 0;) {
      ++idx[d];
      for (std::size_t k = 0; k < K; ++k) off[k] += (*strides[k])[d];
      if (idx[d] < shape[d]) break;
      for (std::size_t k = 0; k < K; ++k) off[k] -= (*strides[k])[d] * shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

void unary_reference(Unary op, DType dt, const void* x, void* y, std::int64_t n, double param) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    for (std::int64_t i = 0; i < n; ++i) yp[i] = unary_scalar<T>(op, xp[i], static_cast<T>(param));
  });
}

void binary_reference(Binary op, DType dt, const void* a, const Shape& a_strides, const void* b,
                      const Shape& b_strides, void* out, const Shape& out_shape) {
  const Shape out_strides = contiguous_strides(out_shape);
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* ap = static_cast<const T*>(a);
    const T* bp = static_cast<const T*>(b);
    T* op_ = static_cast<T*>(out);
    const Shape* strides[3] = {&a_strides, &b_strides, &out_strides};
    for_each_index(out_shape, strides, [&](const std::int64_t* off) {
      op_[off[2]] = binary_scalar<T>(op, ap[off[0]], bp[off[1]]);
    });
  });
}

void where_reference(DType dt, const void* cond, const Shape& cond_strides, const void* a,
                     const Shape& a_strides, const void* b, const Shape& b_strides, void* out,
                     const Shape& out_shape) {
  const Shape out_strides = contiguous_strides(out_shape);
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* cp = static_cast<const T*>(cond);
    const T* ap = static_cast<const T*>(a);
    const T* bp = static_cast<const T*>(b);
    T* op_ = static_cast<T*>(out);
    const Shape* strides[4] = {&cond_strides, &a_strides, &b_strides, &out_strides};
    for_each_index(out_shape, strides, [&](const std::int64_t* off) {
      op_[off[3]] = cp[off[0]] != T(0) ? ap[off[1]] : bp[off[2]];
    });
  });
}

void reduce_reference(Reduce op, DType dt, const void* x, void* out, std::int64_t outer,
                      std::int64_t n, std::int64_t inner) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(out);
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        T acc = op == Reduce::sum ? T(0)
              : op == Reduce::max ? -std::numeric_limits<T>::infinity()
                                  : std::numeric_limits<T>::infinity();
        for (std::int64_t k = 0; k < n; ++k) {
          const T v = xp[(o * n + k) * inner + i];
          if (op == Reduce::sum) acc += v;
          else if (op == Reduce::max) acc = (v != v || v > acc) ? v : acc;
          else acc = (v != v || v < acc) ? v : acc;
          if (acc != acc && op != Reduce::sum) break;  // NaN wins
        }
        yp[o * inner + i] = acc;
      }
  });
}

void softmax_reference(DType dt, const void* x, void* y, std::int64_t outer, std::int64_t n,
                       std::int64_t inner, bool log) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        auto at = [&](std::int64_t k) { return (o * n + k) * inner + i; };
        T m = -std::numeric_limits<T>::infinity();
        for (std::int64_t k = 0; k < n; ++k) m = std::max(m, xp[at(k)]);
        T s = 0;
        for (std::int64_t k = 0; k < n; ++k) s += std::exp(xp[at(k)] - m);
        for (std::int64_t k = 0; k < n; ++k)
          yp[at(k)] = log ? xp[at(k)] - m - std::log(s) : std::exp(xp[at(k)] - m) / s;
      }
  });
}

void logsumexp_reference(DType dt, const void* x, void* out, std::int64_t outer, std::int64_t n,
                         std::int64_t inner) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(out);
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        auto at = [&](std::int64_t k) { return (o * n + k) * inner + i; };
        T m = -std::numeric_limits<T>::infinity();
        for (std::int64_t k = 0; k < n; ++k) m = std::max(m, xp[at(k)]);
        if (std::isinf(m)) {  // all -inf (or an empty range): the sum is m itself
          yp[o * inner + i] = m;
          continue;
        }
        T s = 0;
        for (std::int64_t k = 0; k < n; ++k) s += std::exp(xp[at(k)] - m);
        yp[o * inner + i] = m + std::log(s);
      }
  });
}

void copy_strided_reference(DType dt, const void* src, std::int64_t src_offset,
                            const Shape& src_strides, void* dst, const Shape& shape) {
  const Shape dst_strides = contiguous_strides(shape);
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* s = static_cast<const T*>(src) + src_offset;
    T* d = static_cast<T*>(dst);
    const Shape* strides[2] = {&src_strides, &dst_strides};
    for_each_index(shape, strides, [&](const std::int64_t* off) { d[off[1]] = s[off[0]]; });
  });
}

void convert(DType from, const void* src, DType to, void* dst, std::int64_t n) {
  dispatch_dtype(from, [&](auto zf) {
    using F = decltype(zf);
    dispatch_dtype(to, [&](auto zt) {
      using T = decltype(zt);
      const F* s = static_cast<const F*>(src);
      T* d = static_cast<T*>(dst);
      for (std::int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(s[i]);
    });
  });
}

void fill(DType dt, void* dst, std::int64_t n, double value) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    std::fill_n(static_cast<T*>(dst), n, static_cast<T>(value));
  });
}

}  // namespace symgrad::kernels
