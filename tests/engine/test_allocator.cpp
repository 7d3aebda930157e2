// The large-buffer cache: same-size allocations are reused, the limit is respected.
#include "support/testing.hpp"

using namespace symgrad;

TEST_CASE("a freed large buffer is reused for the next tensor of the same size", "[allocator]") {
  set_buffer_cache_limit(std::size_t(64) << 20);
  release_cached_buffers();
  const auto before = buffer_cache_stats();
  { Tensor a = zeros({1 << 20}); }  // 4 MiB, freed at the end of the scope
  REQUIRE(buffer_cache_stats().cached_bytes >= (std::size_t(4) << 20));
  Tensor b = ones({1 << 20});
  const auto after = buffer_cache_stats();
  REQUIRE(after.hits == before.hits + 1);
  REQUIRE(after.cached_bytes == 0);
  // The reused buffer holds the new values, not the old ones.
  REQUIRE(sum(b).item() == Approx(double(1 << 20)));
  release_cached_buffers();
}

TEST_CASE("the cache never holds more than its limit", "[allocator]") {
  set_buffer_cache_limit(std::size_t(6) << 20);
  release_cached_buffers();
  {
    Tensor a = zeros({1 << 20}), b = zeros({1 << 20});  // 2 x 4 MiB; only one fits
  }
  REQUIRE(buffer_cache_stats().cached_bytes <= (std::size_t(6) << 20));
  set_buffer_cache_limit(0);
  REQUIRE(buffer_cache_stats().cached_bytes == 0);
  set_buffer_cache_limit(std::size_t(1) << 30);
}
