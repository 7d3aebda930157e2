#include "engine/allocator.hpp"

#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace symgrad {
namespace {

// Below this, malloc reuses memory itself. glibc serves blocks from 128 KiB up with mmap
// (or returns them to the OS by trimming the heap top), so a graph that frees and
// reallocates blocks of a few hundred KiB every step (an HNN at batch 750) page-faults on
// every touch unless such blocks stay in the cache.
constexpr std::size_t kLargeBuffer = 64 << 10;
constexpr std::size_t kGranule = 64 << 10;     // large sizes are rounded up to 64 KiB

#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kDefaultLimitMB = 0;
#else
constexpr std::size_t kDefaultLimitMB = 2048;  // see allocator.hpp
#endif

std::size_t rounded(std::size_t nbytes) { return (nbytes + kGranule - 1) / kGranule * kGranule; }

struct BufferCache {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;  // by rounded size
  std::size_t limit = 0;
  BufferCacheStats stats;

  BufferCache() {
    std::size_t mb = kDefaultLimitMB;
    if (const char* env = std::getenv("SYMGRAD_BUFFER_CACHE_MB")) mb = std::strtoull(env, nullptr, 10);
    limit = mb << 20;
  }
  ~BufferCache() { release(); }

  void release() {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) std::free(p);
    free_blocks.clear();
    stats.cached_bytes = 0;
  }
};

BufferCache& cache() {
  static BufferCache instance;
  return instance;
}

}  // namespace

void* allocate_buffer(std::size_t nbytes) {
  if (nbytes < kLargeBuffer) {
    void* p = std::malloc(nbytes ? nbytes : 1);  // 16-byte aligned; kernels load unaligned
    if (!p) throw std::bad_alloc();
    return p;
  }
  const std::size_t size = rounded(nbytes);
  BufferCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= size;
      ++c.stats.hits;
      return p;
    }
    ++c.stats.misses;
  }
  void* p = std::aligned_alloc(64, size);
  if (!p) throw std::bad_alloc();
  return p;
}

void free_buffer(void* data, std::size_t nbytes) {
  if (!data) return;
  if (nbytes >= kLargeBuffer) {
    const std::size_t size = rounded(nbytes);
    BufferCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.stats.cached_bytes + size <= c.limit) {
      c.free_blocks[size].push_back(data);
      c.stats.cached_bytes += size;
      return;
    }
  }
  std::free(data);
}

BufferCacheStats buffer_cache_stats() {
  BufferCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void set_buffer_cache_limit(std::size_t bytes) {
  BufferCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.limit = bytes;
    if (c.stats.cached_bytes <= bytes) return;
  }
  c.release();
}

void release_cached_buffers() { cache().release(); }

}  // namespace symgrad
