// The kernel thread pool (engine/kernels/threads.hpp): sizing, the environment
// variable, coverage of parallel_for, re-entrancy, exceptions, and results that
// do not depend on the thread count.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/kernels/elementwise.hpp"
#include "engine/kernels/threads.hpp"

extern "C" int openblas_get_num_threads(void);  // OpenBLAS is linked through the engine

namespace {

using namespace symgrad;
using kernels::parallel_for;

int default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Runs this test program again with `env` prepended, executing only the hidden probe
// below, which checks get_num_threads() at first use; returns the exit status.
int run_probe(const std::string& env, int expected) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string command = env + " SYMGRAD_TEST_EXPECTED_THREADS=" + std::to_string(expected) +
                              " '" + self + "' '[.threads_env_probe]' > /dev/null 2>&1";
  return std::system(command.c_str());
}

TEST_CASE("threads env probe (run by the environment test)", "[.threads_env_probe]") {
  const char* expected = std::getenv("SYMGRAD_TEST_EXPECTED_THREADS");
  REQUIRE(expected != nullptr);
  REQUIRE(get_num_threads() == std::atoi(expected));
  REQUIRE(openblas_get_num_threads() == std::atoi(expected));
}

TEST_CASE("SYMGRAD_NUM_THREADS sizes the pool at first use; bad values are ignored", "[threads]") {
  CHECK(run_probe("SYMGRAD_NUM_THREADS=3", 3) == 0);
  CHECK(run_probe("SYMGRAD_NUM_THREADS=1", 1) == 0);
  CHECK(run_probe("env -u SYMGRAD_NUM_THREADS", default_threads()) == 0);
  for (const char* bad : {"0", "-2", "two", "3x", "''"})
    CHECK(run_probe(std::string("SYMGRAD_NUM_THREADS=") + bad, default_threads()) == 0);
  // The probe itself must be able to fail, or the checks above prove nothing.
  CHECK(run_probe("SYMGRAD_NUM_THREADS=3", 2) != 0);
}

TEST_CASE("set_num_threads sets our pool and OpenBLAS, and rejects n < 1", "[threads]") {
  set_num_threads(2);
  REQUIRE(get_num_threads() == 2);
  REQUIRE(openblas_get_num_threads() == 2);
  set_num_threads(1);
  REQUIRE(get_num_threads() == 1);
  REQUIRE(openblas_get_num_threads() == 1);
  REQUIRE_THROWS_AS(set_num_threads(0), std::invalid_argument);
  REQUIRE_THROWS_WITH(set_num_threads(-3), Catch::Contains("set_num_threads"));
  REQUIRE(get_num_threads() == 1);
}

// Every index of [0, n) visited exactly once, in chunks of at least `grain`.
void require_exact_cover(std::int64_t n, std::int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
  std::mutex mutex;
  std::vector<std::int64_t> chunk_sizes;
  parallel_for(n, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) ++hits[static_cast<std::size_t>(i)];
    std::lock_guard<std::mutex> lock(mutex);
    chunk_sizes.push_back(end - begin);
  });
  for (std::int64_t i = 0; i < n; ++i) REQUIRE(hits[static_cast<std::size_t>(i)] == 1);
  for (auto size : chunk_sizes) REQUIRE((size >= grain || chunk_sizes.size() == 1));
}

TEST_CASE("parallel_for covers the range exactly once for any thread count", "[threads]") {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (std::int64_t n : {0, 1, 7, 100, 1000, 4097, 100003}) require_exact_cover(n, 10);
    require_exact_cover(100003, 100003);
  }
  set_num_threads(2);
}

TEST_CASE("parallel_for runs small ranges inline on the caller", "[threads]") {
  set_num_threads(2);
  int calls = 0;
  std::thread::id ran_on;
  parallel_for(99, 50, [&](std::int64_t begin, std::int64_t end) {
    ++calls;
    ran_on = std::this_thread::get_id();
    REQUIRE(begin == 0);
    REQUIRE(end == 99);
  });
  REQUIRE(calls == 1);
  REQUIRE(ran_on == std::this_thread::get_id());
  parallel_for(0, 1, [&](std::int64_t, std::int64_t) { ++calls; });
  REQUIRE(calls == 1);
}

TEST_CASE("parallel_for inside parallel_for runs inline instead of deadlocking", "[threads]") {
  set_num_threads(2);
  std::atomic<std::int64_t> total{0};
  parallel_for(64, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i)
      parallel_for(1000, 1, [&](std::int64_t b, std::int64_t e) { total += e - b; });
  });
  REQUIRE(total == 64 * 1000);
}

TEST_CASE("an exception in any chunk reaches the caller and the pool survives", "[threads]") {
  set_num_threads(2);
  for (std::int64_t bad_index : {0, 999}) {  // first chunk (caller) and last chunk (a worker)
    REQUIRE_THROWS_WITH(parallel_for(1000, 10,
                                     [&](std::int64_t begin, std::int64_t end) {
                                       if (bad_index >= begin && bad_index < end)
                                         throw std::runtime_error("chunk failed at " + std::to_string(bad_index));
                                     }),
                        "chunk failed at " + std::to_string(bad_index));
  }
  REQUIRE_THROWS_AS(parallel_for(1000, 10, [](std::int64_t, std::int64_t) { set_num_threads(3); }),
                    std::logic_error);
  require_exact_cover(10000, 10);
}

TEST_CASE("two user threads can use the pool at once", "[threads]") {
  set_num_threads(2);
  std::atomic<std::int64_t> sums[2] = {0, 0};
  auto user = [&](int id) {
    for (int rep = 0; rep < 200; ++rep)
      parallel_for(10000, 100, [&](std::int64_t begin, std::int64_t end) { sums[id] += end - begin; });
  };
  std::thread first(user, 0), second(user, 1);
  first.join();
  second.join();
  REQUIRE(sums[0] == 200 * 10000);
  REQUIRE(sums[1] == 200 * 10000);
}

// Runs `kernel` with 1 and with 2 threads and requires bit-identical outputs.
template <class Kernel>
void require_same_for_one_and_two_threads(const Kernel& kernel) {
  set_num_threads(1);
  const std::vector<float> one = kernel();
  set_num_threads(2);
  const std::vector<float> two = kernel();
  REQUIRE(one == two);
}

TEST_CASE("kernel results do not depend on the thread count", "[threads][kernels]") {
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> dist(-3, 3);
  std::vector<float> x((1 << 20) + 7);
  for (auto& v : x) v = dist(gen);
  const auto n = static_cast<std::int64_t>(x.size());

  SECTION("unary") {
    require_same_for_one_and_two_threads([&] {
      std::vector<float> y(x.size());
      kernels::unary(kernels::Unary::tanh, DType::f32, x.data(), y.data(), n);
      return y;
    });
  }
  SECTION("broadcast binary") {
    require_same_for_one_and_two_threads([&] {
      std::vector<float> y(x.size() - 7);
      kernels::binary(kernels::Binary::mul, DType::f32, x.data(), {1024, 1}, x.data() + 5, {0, 1},
                      y.data(), {1024, 1024});
      return y;
    });
  }
  SECTION("sum of one long row, of rows and of columns") {
    for (auto [outer, len, inner] : {std::array<std::int64_t, 3>{1, n, 1}, {1024, 1024, 1}, {1, 64, 16384}})
      require_same_for_one_and_two_threads([&, outer = outer, len = len, inner = inner] {
        std::vector<float> y(static_cast<std::size_t>(outer * inner));
        kernels::reduce(kernels::Reduce::sum, DType::f32, x.data(), y.data(), outer, len, inner);
        return y;
      });
  }
  SECTION("softmax") {
    require_same_for_one_and_two_threads([&] {
      std::vector<float> y(1 << 20);
      kernels::softmax(DType::f32, x.data(), y.data(), 1024, 1024, 1, false);
      return y;
    });
  }
  SECTION("copy_strided transpose") {
    require_same_for_one_and_two_threads([&] {
      std::vector<float> y(1 << 20);
      kernels::copy_strided(DType::f32, x.data(), 3, {1, 1024}, y.data(), {1024, 1024});
      return y;
    });
  }
}

}  // namespace
