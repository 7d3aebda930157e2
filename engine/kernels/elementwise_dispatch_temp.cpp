// Temporary: routes the fast entry points to the reference loops until the Highway
// kernels land (replaced in the same series of commits).
#include "engine/kernels/elementwise.hpp"
#include "engine/kernels/threads.hpp"

namespace symgrad {
void set_num_threads(int) {}
int get_num_threads() { return 1; }
namespace kernels {
void parallel_for(std::int64_t n, std::int64_t, const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n > 0) fn(0, n);
}
void unary(Unary op, DType dt, const void* x, void* y, std::int64_t n, double param) {
  unary_reference(op, dt, x, y, n, param);
}
void binary(Binary op, DType dt, const void* a, const Shape& as, const void* b, const Shape& bs,
            void* out, const Shape& os) {
  binary_reference(op, dt, a, as, b, bs, out, os);
}
void where(DType dt, const void* c, const Shape& cs, const void* a, const Shape& as, const void* b,
           const Shape& bs, void* out, const Shape& os) {
  where_reference(dt, c, cs, a, as, b, bs, out, os);
}
void reduce(Reduce op, DType dt, const void* x, void* out, std::int64_t o, std::int64_t n, std::int64_t i) {
  reduce_reference(op, dt, x, out, o, n, i);
}
void softmax(DType dt, const void* x, void* y, std::int64_t o, std::int64_t n, std::int64_t i, bool log) {
  softmax_reference(dt, x, y, o, n, i, log);
}
void logsumexp(DType dt, const void* x, void* out, std::int64_t o, std::int64_t n, std::int64_t i) {
  logsumexp_reference(dt, x, out, o, n, i);
}
void copy_strided(DType dt, const void* src, std::int64_t off, const Shape& st, void* dst, const Shape& shape) {
  copy_strided_reference(dt, src, off, st, dst, shape);
}
}  // namespace kernels
}  // namespace symgrad
