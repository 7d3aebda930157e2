#pragma once
// Parameter-update kernels for the optimizers in nn/optim/, on dense buffers of n
// elements, in place. No autograd here: the optimizer calls these on the raw
// parameter, gradient and state buffers and bumps the parameter's version itself.
//
// As in elementwise.hpp, each kernel has two implementations with the same signature:
//   kernels::X            -- Highway SIMD (dynamic dispatch), split over the thread pool
//   kernels::X_reference  -- a plain scalar loop, the specification the tests compare to
//
// Hyper-parameters arrive as doubles and are rounded to the buffer's dtype once, as
// PyTorch does with a Python float scalar; derived scalars (1 - beta1, lr / bias
// correction) are formed in double first. The element formulas follow PyTorch 1.13's
// single-tensor optimizers operation for operation (see optim_update_reference.cpp),
// with no fused multiply-add, so the SIMD kernels give the reference's bits exactly.
#include <cstdint>

#include "engine/dtype.hpp"

namespace symgrad::kernels {

// One SGD step. With momentum, `momentum_buffer` holds the velocity (n elements);
// it may be null when momentum == 0.
struct SgdStep {
  double lr = 0.0;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  // The buffer has no value yet: it is set to the (decayed) gradient, undampened.
  bool first_step = false;
};
void sgd_update(DType dt, void* param, const void* grad, void* momentum_buffer, std::int64_t n,
                const SgdStep& s);
void sgd_update_reference(DType dt, void* param, const void* grad, void* momentum_buffer,
                          std::int64_t n, const SgdStep& s);

// One Adam (or AdamW) step on the first and second moments exp_avg and exp_avg_sq.
// The bias corrections depend only on the step number, so the caller computes them
// once: bias_correction1 = 1 - beta1^t, bias_correction2_sqrt = sqrt(1 - beta2^t).
struct AdamStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;  // AdamW: p *= 1 - lr * wd, instead of g += wd * p
  double bias_correction1 = 1.0;
  double bias_correction2_sqrt = 1.0;
};
void adam_update(DType dt, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                 std::int64_t n, const AdamStep& s);
void adam_update_reference(DType dt, void* param, const void* grad, void* exp_avg,
                           void* exp_avg_sq, std::int64_t n, const AdamStep& s);

// sum_i x[i]^2, squared and summed in double (float values square exactly). The SIMD
// kernel sums fixed chunks of kSquaresChunk elements and combines the chunk sums in
// a fixed order, so its result does not depend on the number of threads.
constexpr std::int64_t kSquaresChunk = 4096;
double sum_of_squares(DType dt, const void* x, std::int64_t n);
double sum_of_squares_reference(DType dt, const void* x, std::int64_t n);

// x[i] *= factor (factor rounded to the dtype first).
void scale_inplace(DType dt, void* x, std::int64_t n, double factor);
void scale_inplace_reference(DType dt, void* x, std::int64_t n, double factor);

}  // namespace symgrad::kernels
