#pragma once
// A small fixed thread pool for kernels, and the one knob that sizes it.
//
// The count comes from set_num_threads() or, at first use, the environment variable
// SYMGRAD_NUM_THREADS (default: all cores). OpenBLAS is given the same count, and
// BLAS is only ever called from the calling thread, never from inside parallel_for,
// so the two pools are never busy at the same time and cannot oversubscribe cores.
#include <cstdint>
#include <functional>

namespace symgrad {

void set_num_threads(int n);  // n >= 1
int get_num_threads();

namespace kernels {
// Runs fn(begin, end) over [0, n) split into contiguous chunks of at least `grain`
// items; runs inline when the work is small or the pool has one thread.
void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn);
}  // namespace kernels

}  // namespace symgrad
