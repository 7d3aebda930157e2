#include "engine/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <ostream>
#include <stdexcept>

#include "engine/allocator.hpp"
#include "engine/autograd.hpp"

namespace symgrad {

Storage::Storage(std::size_t nbytes)
    : data_(nbytes + kTailPadding <= kInlineBytes ? inline_ : allocate_buffer(nbytes + kTailPadding)),
      nbytes_(nbytes) {}

Storage::~Storage() {
  if (data_ != inline_) free_buffer(data_, nbytes_ + kTailPadding);
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (auto d : shape)
    if (d < 0) throw std::invalid_argument("empty: negative dimension in shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype));
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

void Tensor::check_defined(const char* what) const {
  if (!impl_) throw std::logic_error(std::string(what) + ": the tensor is undefined");
}

const Shape& Tensor::shape() const {
  check_defined("shape");
  return impl_->shape;
}

std::int64_t Tensor::size(std::int64_t axis) const {
  return shape()[static_cast<std::size_t>(normalize_axis(axis, dim(), "size"))];
}

std::int64_t Tensor::numel() const { return shape_numel(shape()); }

DType Tensor::dtype() const {
  check_defined("dtype");
  return impl_->dtype;
}

template <class T>
T* Tensor::data() {
  if (dtype() != dtype_of<T>())
    throw std::invalid_argument(std::string("data: tensor is ") + dtype_name(dtype()) +
                                ", asked for " + dtype_name(dtype_of<T>()));
  return static_cast<T*>(impl_->storage->data());
}

template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;

void* Tensor::raw_data() {
  check_defined("raw_data");
  return impl_->storage->data();
}
const void* Tensor::raw_data() const {
  check_defined("raw_data");
  return impl_->storage->data();
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  check_defined("requires_grad_");
  if (impl_->grad_fn)
    throw std::logic_error("requires_grad_: only leaf tensors can change requires_grad; "
                           "use detach() to make a new leaf");
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return impl_ && !impl_->grad_fn; }

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  check_defined("grad_fn");
  return impl_->grad_fn;
}

Tensor Tensor::grad() const {
  check_defined("grad");
  return Tensor(impl_->grad);
}

void Tensor::set_grad(const Tensor& g) {
  check_defined("set_grad");
  if (g.defined() && (g.shape() != shape() || g.dtype() != dtype()))
    throw std::invalid_argument("set_grad: gradient " + shape_str(g.shape()) + " " +
                                dtype_name(g.dtype()) + " does not match tensor " +
                                shape_str(shape()) + " " + dtype_name(dtype()));
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  check_defined("zero_grad");
  impl_->grad.reset();
}

Tensor Tensor::detach() const {
  check_defined("detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

double Tensor::item() const {
  if (numel() != 1)
    throw std::invalid_argument("item: tensor of shape " + shape_str(shape()) +
                                " has " + std::to_string(numel()) + " elements, not 1");
  return dtype() == DType::f32 ? static_cast<double>(data<float>()[0]) : data<double>()[0];
}

std::vector<double> Tensor::to_vector() const {
  const auto n = static_cast<std::size_t>(numel());
  std::vector<double> out(n);
  dispatch_dtype(dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* p = data<T>();
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<double>(p[i]);
  });
  return out;
}

template <class T>
std::vector<T> Tensor::values() const {
  const T* p = data<T>();
  return std::vector<T>(p, p + numel());
}
template std::vector<float> Tensor::values<float>() const;
template std::vector<double> Tensor::values<double>() const;

}  // namespace symgrad
