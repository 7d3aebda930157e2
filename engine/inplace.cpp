#include "engine/inplace.hpp"

#include <memory>
#include <stdexcept>
#include <string>

#include "engine/autograd.hpp"
#include "engine/kernels/elementwise.hpp"

namespace symgrad {

namespace {
void check_writable(const Tensor& t, const char* op) {
  if (!t.defined()) throw std::invalid_argument(std::string(op) + ": the tensor is undefined");
  if (grad_enabled() && t.requires_grad())
    throw std::logic_error(std::string(op) + ": a " + shape_str(t.shape()) +
                           " tensor that requires grad cannot be written in place while grad "
                           "mode is on (use a NoGradGuard)");
}
}  // namespace

void copy_(Tensor& dst, const Tensor& src) {
  check_writable(dst, "copy_");
  if (!src.defined()) throw std::invalid_argument("copy_: the source tensor is undefined");
  if (src.shape() != dst.shape())
    throw std::invalid_argument("copy_: source " + shape_str(src.shape()) +
                                " does not match destination " + shape_str(dst.shape()));
  if (src.raw_data() != dst.raw_data())
    kernels::convert(src.dtype(), src.raw_data(), dst.dtype(), dst.raw_data(), dst.numel());
  dst.impl()->storage->bump_version();
}

void fill_(Tensor& dst, double value) {
  check_writable(dst, "fill_");
  kernels::fill(dst.dtype(), dst.raw_data(), dst.numel(), value);
  dst.impl()->storage->bump_version();
}

void convert_dtype_(Tensor& t, DType dtype) {
  check_writable(t, "convert_dtype_");
  TensorImpl* impl = t.impl();
  if (impl->dtype == dtype) return;
  auto storage = std::make_shared<Storage>(static_cast<std::size_t>(t.numel()) * dtype_size(dtype));
  kernels::convert(impl->dtype, impl->storage->data(), dtype, storage->data(), t.numel());
  storage->set_version(impl->storage->version() + 1);
  impl->storage = std::move(storage);
  impl->dtype = dtype;
  impl->grad.reset();
}

}  // namespace symgrad
