// The no-broadcast entry point of the binary kernels. It describes the operands as one
// flat run and hands them to kernels::binary; the description lives in thread-local
// vectors so that a tiny op allocates nothing here.
#include "engine/kernels/elementwise.hpp"

namespace symgrad::kernels {

void binary_same_shape(Binary op, DType dt, const void* a, const void* b, void* out, std::int64_t n) {
  thread_local Shape unit_stride{1};
  thread_local Shape flat_shape{0};
  flat_shape[0] = n;
  binary(op, dt, a, unit_stride, b, unit_stride, out, flat_shape);
}

}  // namespace symgrad::kernels
