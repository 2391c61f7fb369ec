// Threads: lowbit splits large tensors over a pool of workers. By default that is one pool
// of std::thread::hardware_concurrency() workers, created on first use; set_num_threads()
// resizes it, and an engine that runs its own threads hands lowbit its parallel-for instead
// (set_parallel_for). Work is always cut into the same chunks whatever the thread count, and
// every result depends only on its inputs (stochastic rounding is keyed by element index), so
// outputs are identical for any number of threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "lowbit/core/error.hpp"

namespace lowbit {

// body(begin, end) runs the chunks [begin, end) of a range 0 .. n.
using RangeBody = std::function<void(std::int64_t begin, std::int64_t end)>;
// A parallel-for runs body over 0 .. n in `chunks` pieces, on up to `threads` threads, and
// returns when all are done (rethrowing the first exception a chunk threw).
using ParallelFor = std::function<void(std::int64_t n, std::int64_t chunks, int threads, const RangeBody& body)>;

namespace detail {
// Spins until done() or `limit` has passed; false if it timed out. A thread waiting a short
// while this way is back at work in well under a microsecond, where waking one asleep on a
// condition variable costs tens of microseconds: as long as a whole 4096 x 4096 matrix-vector
// product.
template <class Done>
bool spin_until(Done done, std::chrono::microseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (int i = 0;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > end) return false;
  }
}
inline constexpr std::chrono::microseconds kPoolSpin{200};
}  // namespace detail

class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    detail::require(threads >= 1, "ThreadPool", "thread count must be >= 1, got ", threads);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      posted_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs body over `chunks` equal pieces of 0 .. n on up to `threads` threads (the caller's
  // thread included). One job at a time: concurrent callers are serialised.
  void run(std::int64_t n, std::int64_t chunks, int threads, const RangeBody& body) {
    if (n <= 0) return;
    chunks = std::clamp<std::int64_t>(chunks, 1, n);
    threads = std::clamp(threads, 1, size());
    // A body that itself calls run() (on any thread of a job) runs its chunks inline.
    if (threads == 1 || chunks == 1 || in_job()) {
      for (std::int64_t c = 0; c < chunks; ++c) body(n * c / chunks, n * (c + 1) / chunks);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      n_ = n;
      chunks_ = chunks;
      next_.store(0);
      join_limit_ = threads - 1;
      joined_ = 0;
      done_ = 0;
      error_ = nullptr;
      active_ = true;  // workers may join only while this is set
      posted_.fetch_add(1);
    }
    wake_.notify_all();
    work();
    int joined;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      active_ = false;  // no worker joins from here on; wait for those that did
      joined = joined_;
    }
    detail::spin_until([&] { return done_.load() == joined; }, detail::kPoolSpin);
    std::unique_lock<std::mutex> lock(mutex_);
    finished_.wait(lock, [&] { return done_.load() == joined_; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static bool& in_job() {
    static thread_local bool flag = false;
    return flag;
  }

  void work() {
    in_job() = true;
    struct Reset {
      ~Reset() { in_job() = false; }
    } reset;
    while (true) {
      const std::int64_t c = next_.fetch_add(1);
      if (c >= chunks_) return;
      try {
        (*body_)(n_ * c / chunks_, n_ * (c + 1) / chunks_);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void worker_loop() {
    std::uint64_t seen = 0, posted_seen = 0;
    while (true) {
      // a new job usually follows soon (the next layer): spin a little before sleeping
      detail::spin_until([&] { return posted_.load() != posted_seen; }, detail::kPoolSpin);
      posted_seen = posted_.load();
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || (active_ && posted_.load() != seen && joined_ < join_limit_); });
        if (stop_) return;
        seen = posted_.load();
        ++joined_;
      }
      work();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++done_;
      }
      finished_.notify_all();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_, job_mutex_;
  std::condition_variable wake_, finished_;
  bool stop_ = false;
  bool active_ = false;
  const RangeBody* body_ = nullptr;
  std::int64_t n_ = 0, chunks_ = 0;
  std::atomic<std::int64_t> next_{0};
  int join_limit_ = 0, joined_ = 0;
  std::atomic<int> done_{0};            // written under mutex_, read by the spinning caller
  std::atomic<std::uint64_t> posted_{0};  // bumped under mutex_ with every job (and at stop); spinning workers poll it
  std::exception_ptr error_;
};

namespace detail {

struct ParallelState {
  std::mutex mutex;
  int threads = 0;  // 0: hardware concurrency
  std::shared_ptr<ThreadPool> pool;
  ParallelFor custom;
};

inline ParallelState& parallel_state() {
  static ParallelState s;
  return s;
}

inline int hardware_threads() {
  const unsigned h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : static_cast<int>(h);
}

}  // namespace detail

// The default number of threads lowbit uses (hardware threads unless set).
inline int num_threads() {
  auto& s = detail::parallel_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.threads > 0 ? s.threads : detail::hardware_threads();
}

// Sets the default thread count (0 = hardware threads); the pool is rebuilt on next use.
inline void set_num_threads(int threads) {
  detail::require(threads >= 0, "set_num_threads", "thread count must be >= 0, got ", threads);
  auto& s = detail::parallel_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.threads = threads;
  s.pool.reset();
}

// Hands lowbit the engine's own parallel-for (an empty function restores lowbit's pool).
inline void set_parallel_for(ParallelFor f) {
  auto& s = detail::parallel_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.custom = std::move(f);
}

// Runs body over 0 .. n in `chunks` pieces with `threads` threads (0 = the default).
inline void parallel_for(std::int64_t n, std::int64_t chunks, int threads, const RangeBody& body) {
  if (n <= 0) return;
  auto& s = detail::parallel_state();
  std::shared_ptr<ThreadPool> pool;
  ParallelFor custom;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    const int want = threads > 0 ? threads : (s.threads > 0 ? s.threads : detail::hardware_threads());
    threads = want;
    custom = s.custom;
    if (!custom && threads > 1 && chunks > 1) {
      const int pool_size = std::max(s.threads > 0 ? s.threads : detail::hardware_threads(), threads);
      if (!s.pool || s.pool->size() < pool_size) s.pool = std::make_shared<ThreadPool>(pool_size);
      pool = s.pool;
    }
  }
  if (custom) return custom(n, chunks, threads, body);
  if (pool) return pool->run(n, chunks, threads, body);
  chunks = std::clamp<std::int64_t>(chunks, 1, n);
  for (std::int64_t c = 0; c < chunks; ++c) body(n * c / chunks, n * (c + 1) / chunks);
}

}  // namespace lowbit
