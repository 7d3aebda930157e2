#pragma once
// Where tensor buffers come from.
//
// Small buffers (under 64 KiB) come from malloc. Larger ones are kept in a cache when
// freed (sizes rounded up to 64 KiB) and handed out again for the next request of the
// same size: glibc serves and returns big blocks through mmap/trim, and a fresh block
// costs one page fault per 4 KiB page on first touch -- for a 64 MB tensor that is more
// time than a tanh over it. Training loops allocate the same sizes every step, so
// exact-size reuse is enough.
#include <cstddef>
#include <cstdint>

namespace symgrad {

void* allocate_buffer(std::size_t nbytes);
void free_buffer(void* data, std::size_t nbytes);

struct BufferCacheStats {
  std::size_t cached_bytes = 0;  // held for reuse right now
  std::uint64_t hits = 0;        // large allocations served from the cache
  std::uint64_t misses = 0;      // large allocations that went to the system
};
BufferCacheStats buffer_cache_stats();

// Upper bound on the bytes the cache may hold (default 2 GiB, or the environment
// variable SYMGRAD_BUFFER_CACHE_MB; 0 disables caching; builds with AddressSanitizer
// default to 0 so that use-after-free of a large buffer is still caught). The default
// is sized so that a training step whose activations reach a gigabyte or more (the
// PDE ResNet of pde/ at batch 128 peaks near 1.2 GB) gets all of them back from the
// cache on the next step: with 1 GiB, the overflow went back to the system at the end of
// every step and its pages were faulted in again, about 8% of the step.
void set_buffer_cache_limit(std::size_t bytes);
void release_cached_buffers();  // returns every cached block to the system

}  // namespace symgrad
