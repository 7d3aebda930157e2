// The kernel thread pool: a fixed set of workers woken by a condition variable.
//
// One job runs at a time. The calling thread takes part in its own job, so a pool
// of n threads has n - 1 workers. Work is split into at most n contiguous chunks
// that every participant claims from an atomic counter; the caller returns only
// after every worker has left the job, because the job lives on the caller's stack.
//
// Rules that keep this simple and safe:
//   - parallel_for inside a job (a kernel calling a kernel) runs inline.
//   - parallel_for from a second user thread while a job runs also runs inline
//     (the pool is busy), rather than waiting.
//   - the first exception thrown by any chunk cancels the chunks not yet started
//     and is rethrown on the caller.
//
// SYMGRAD_NUM_THREADS is read once, at the first use of the pool. A value that is
// not a whole number >= 1 is ignored with a warning on stderr, and the default
// (std::thread::hardware_concurrency(), or 1 if unknown) is used.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/kernels/threads.hpp"

namespace symgrad {
namespace {

using RangeFn = std::function<void(std::int64_t, std::int64_t)>;

// True on pool workers always, and on a caller while it runs its own job.
thread_local bool inside_parallel_region = false;

int default_thread_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  int count = hw == 0 ? 1 : static_cast<int>(hw);
  const char* env = std::getenv("SYMGRAD_NUM_THREADS");
  if (env == nullptr || *env == '\0') return count;
  char* end = nullptr;
  const long parsed = std::strtol(env, &end, 10);
  if (*end != '\0' || parsed < 1 || parsed > 4096) {
    std::fprintf(stderr, "symgrad: ignoring SYMGRAD_NUM_THREADS=\"%s\" (want a whole number >= 1)\n",
                 env);
    return count;
  }
  return static_cast<int>(parsed);
}

// Both pools get the same count. BLAS is only ever called from the calling thread,
// never from inside parallel_for, so OpenBLAS's threads and ours are never busy at
// the same moment and together never ask for more than `count` cores.
void apply_to_blas(int count) { openblas_set_num_threads(count); }

struct Job {
  const RangeFn* fn = nullptr;
  std::int64_t n = 0;
  std::int64_t chunks = 0;
  std::atomic<std::int64_t> next_chunk{0};
  std::atomic<bool> cancelled{false};
  std::exception_ptr first_error;  // guarded by Pool::mutex
};

class Pool {
 public:
  ~Pool() { stop_workers(); }

  int thread_count() {
    std::call_once(configured_, [this] {
      count_ = default_thread_count();
      apply_to_blas(count_);
    });
    return count_;
  }

  void resize(int count) {
    if (count < 1)
      throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(count));
    if (inside_parallel_region)
      throw std::logic_error("set_num_threads: cannot resize the pool from inside parallel_for");
    thread_count();  // settle the environment default first so it cannot override `count` later
    std::lock_guard<std::mutex> busy(dispatch_mutex_);
    stop_workers();
    count_ = count;
    apply_to_blas(count);
  }

  void run(std::int64_t n, std::int64_t grain, const RangeFn& fn) {
    if (n <= 0) return;
    grain = std::max<std::int64_t>(grain, 1);
    const int threads = thread_count();
    if (threads == 1 || n < 2 * grain || inside_parallel_region) {
      fn(0, n);
      return;
    }
    std::unique_lock<std::mutex> busy(dispatch_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) {  // another user thread's job is running
      fn(0, n);
      return;
    }
    start_workers();

    Job job;
    job.fn = &fn;
    job.n = n;
    job.chunks = std::min<std::int64_t>(threads, n / grain);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      workers_in_job_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();

    inside_parallel_region = true;
    work_on(job);
    inside_parallel_region = false;

    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return workers_in_job_ == 0; });
    job_ = nullptr;
    if (job.first_error) std::rethrow_exception(job.first_error);
  }

 private:
  // Claims chunks until none are left; chunk c covers [n*c/chunks, n*(c+1)/chunks).
  void work_on(Job& job) {
    for (;;) {
      const std::int64_t c = job.next_chunk.fetch_add(1);
      if (c >= job.chunks || job.cancelled.load()) return;
      const std::int64_t begin = job.n * c / job.chunks;
      const std::int64_t end = job.n * (c + 1) / job.chunks;
      try {
        (*job.fn)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!job.first_error) job.first_error = std::current_exception();
        job.cancelled = true;
      }
    }
  }

  // `seen` starts at the generation current when the worker was made, so that a new
  // worker waits for the next job instead of taking an old generation for a job.
  void worker_loop(std::uint64_t seen) {
    inside_parallel_region = true;
    for (;;) {
      Job* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        job = job_;
      }
      work_on(*job);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --workers_in_job_;
      }
      done_.notify_one();
    }
  }

  // Called with dispatch_mutex_ held, so no job is running.
  void start_workers() {
    const std::size_t wanted = static_cast<std::size_t>(count_ - 1);
    if (workers_.size() == wanted) return;
    stop_workers();
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
    for (std::size_t i = 0; i < wanted; ++i)
      workers_.emplace_back([this, now = generation_] { worker_loop(now); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::once_flag configured_;
  std::atomic<int> count_{1};
  std::mutex dispatch_mutex_;  // held by the caller of the running job
  std::mutex mutex_;           // guards everything below
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  Job* job_ = nullptr;
  std::uint64_t generation_ = 0;
  int workers_in_job_ = 0;
  bool stopping_ = false;
};

Pool& pool() {
  static Pool instance;
  return instance;
}

}  // namespace

void set_num_threads(int n) { pool().resize(n); }
int get_num_threads() { return pool().thread_count(); }

namespace kernels {
void parallel_for(std::int64_t n, std::int64_t grain, const RangeFn& fn) { pool().run(n, grain, fn); }
}  // namespace kernels

}  // namespace symgrad
