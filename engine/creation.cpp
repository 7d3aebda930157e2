#include "engine/creation.hpp"

#include <cmath>
#include <stdexcept>

#include "engine/kernels/elementwise.hpp"

namespace symgrad {

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  kernels::fill(dtype, t.raw_data(), t.numel(), value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor arange(double start, double end, double step, DType dtype) {
  if (step == 0.0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
    throw std::invalid_argument("arange: step must be non-zero and all bounds finite (start " +
                                std::to_string(start) + ", end " + std::to_string(end) +
                                ", step " + std::to_string(step) + ")");
  const double span = (end - start) / step;
  const auto n = static_cast<std::int64_t>(span > 0 ? std::ceil(span) : 0);
  Tensor t = Tensor::empty({n}, dtype);
  dispatch_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return t;
}

Tensor linspace(double start, double end, std::int64_t count, DType dtype) {
  if (count < 0) throw std::invalid_argument("linspace: count must be >= 0, got " + std::to_string(count));
  Tensor t = Tensor::empty({count}, dtype);
  dispatch_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    const double h = count > 1 ? (end - start) / static_cast<double>(count - 1) : 0.0;
    // Fill from both ends so the last point is exactly `end`.
    for (std::int64_t i = 0; i < count; ++i)
      p[i] = static_cast<T>(count == 1 || i < count / 2 ? start + h * static_cast<double>(i)
                                                        : end - h * static_cast<double>(count - 1 - i));
  });
  return t;
}

Tensor eye(std::int64_t n, std::int64_t m, DType dtype) {
  if (m < 0) m = n;
  if (n < 0) throw std::invalid_argument("eye: n must be >= 0, got " + std::to_string(n));
  Tensor t = zeros({n, m}, dtype);
  dispatch_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  });
  return t;
}

namespace {
template <class V>
Tensor from_values(const V& values, const Shape& shape_in, DType dtype, const char* op) {
  const Shape shape = shape_in.empty() && values.size() != 1
                          ? Shape{static_cast<std::int64_t>(values.size())}
                          : shape_in;
  if (shape_numel(shape) != static_cast<std::int64_t>(values.size()))
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(values.size()) +
                                " values do not fill shape " + shape_str(shape));
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_dtype(dtype, [&](auto zero) {
    using T = decltype(zero);
    T* p = t.data<T>();
    std::size_t i = 0;
    for (auto v : values) p[i++] = static_cast<T>(v);
  });
  return t;
}
}  // namespace

Tensor tensor(std::initializer_list<double> values, const Shape& shape, DType dtype) {
  return from_values(values, shape, dtype, "tensor");
}
Tensor from_vector(const std::vector<float>& values, const Shape& shape) {
  return from_values(values, shape, DType::f32, "from_vector");
}
Tensor from_vector(const std::vector<double>& values, const Shape& shape) {
  return from_values(values, shape, DType::f64, "from_vector");
}
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  return from_values(values, shape, dtype, "from_vector");
}

}  // namespace symgrad
