// The thread pool and the pluggable parallel-for.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "lowbit/lowbit.hpp"

namespace {

TEST(Parallel, ChunksCoverTheRangeExactlyOnce) {
  lowbit::ThreadPool pool(3);
  for (std::int64_t n : {1, 7, 100, 1001}) {
    for (std::int64_t chunks : {1, 2, 5, 64, 5000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      pool.run(n, chunks, 3, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)]++;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << n << " " << chunks;
    }
  }
}

TEST(Parallel, UsesSeveralThreadsAndPropagatesExceptions) {
  lowbit::ThreadPool pool(2);
  std::mutex m;
  std::set<std::thread::id> ids;
  pool.run(64, 64, 2, [&](std::int64_t, std::int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::lock_guard<std::mutex> lock(m);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_THROW(pool.run(10, 10, 2, [](std::int64_t b, std::int64_t) {
    if (b == 5) throw std::runtime_error("chunk 5");
  }),
               std::runtime_error);
  int after = 0;
  pool.run(4, 4, 2, [&](std::int64_t, std::int64_t) {
    std::lock_guard<std::mutex> lock(m);
    ++after;
  });
  EXPECT_EQ(after, 4);  // the pool still works after an exception
}

TEST(Parallel, EngineSuppliedParallelForIsUsed) {
  std::atomic<int> calls{0};
  lowbit::set_parallel_for([&](std::int64_t n, std::int64_t chunks, int, const lowbit::RangeBody& body) {
    ++calls;
    for (std::int64_t c = 0; c < chunks; ++c) body(n * c / chunks, n * (c + 1) / chunks);
  });
  std::vector<float> x(512 * 512, 0.25f), y(x.size());
  lowbit::QuantOptions opt;
  opt.threads = 2;
  lowbit::Quantizer("mxfp4").fake_quant(lowbit::MatrixRef<const float>::row_major(x.data(), 512, 512),
                                        lowbit::MatrixRef<float>::row_major(y.data(), 512, 512), opt);
  lowbit::set_parallel_for({});
  EXPECT_GE(calls.load(), 1);
  EXPECT_EQ(y[12345], 0.25f);
}

TEST(Parallel, ThreadCountSettings) {
  lowbit::set_num_threads(3);
  EXPECT_EQ(lowbit::num_threads(), 3);
  lowbit::set_num_threads(0);
  EXPECT_GE(lowbit::num_threads(), 1);
  EXPECT_THROW(lowbit::set_num_threads(-1), lowbit::Error);
  EXPECT_THROW(lowbit::ThreadPool(0), lowbit::Error);
  // more threads than work
  std::vector<float> x(10, 1.0f), y(10);
  lowbit::QuantOptions opt;
  opt.threads = 64;
  lowbit::Quantizer("bfp8_b16").fake_quant(lowbit::MatrixRef<const float>::row_major(x.data(), 1, 10),
                                           lowbit::MatrixRef<float>::row_major(y.data(), 1, 10), opt);
  EXPECT_EQ(y, x);
}

}  // namespace

namespace {

void benchmark_sink(int v) {
  static std::atomic<int> sink{0};
  sink.store(v, std::memory_order_relaxed);
}

// Many short jobs back to back: workers that wake late must never join a finished job or
// count towards the next one (this hung once).
TEST(Parallel, ManyShortJobsDoNotHang) {
  lowbit::ThreadPool pool(2);
  std::atomic<std::int64_t> total{0};
  for (int i = 0; i < 20000; ++i)
    pool.run(2, 2, 2, [&](std::int64_t b, std::int64_t e) {
      for (int spin = 0; spin < 200 * (i % 7); ++spin) benchmark_sink(spin);
      total += e - b;
    });
  EXPECT_EQ(total.load(), 40000);
}

TEST(Parallel, NestedRunsExecuteInline) {
  lowbit::ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.run(4, 4, 2, [&](std::int64_t, std::int64_t) {
    pool.run(3, 3, 2, [&](std::int64_t b, std::int64_t e) { inner += static_cast<int>(e - b); });
  });
  EXPECT_EQ(inner.load(), 12);
}

}  // namespace
