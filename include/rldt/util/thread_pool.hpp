// A small fork-join thread pool for data-parallel loops (env stepping). Header-only and free of
// torch. parallel_for allocates nothing: the loop body is passed by pointer, workers wake on a
// generation counter.
//
// Scheduling: the n indices are cut into one contiguous block per thread (thread t, the caller
// being t = 0, owns [t n / T, (t + 1) n / T)), so the same env lands on the same thread call after
// call and its simulation state stays in that core's cache. A thread that finishes its block takes
// the remaining indices of the others (one atomic counter per block), so a late or slow thread
// does not hold the loop up.
//
// Waiting: between loops a worker spins for `spin_us` microseconds on the generation counter
// before it sleeps on the condition variable, and the caller spins the same way for the workers to
// finish. Env stepping calls parallel_for every millisecond or so; a sleeping thread costs a futex
// wake-up (tens of microseconds in a VM) per call, a spinning one nothing. spin_us = 0 never spins.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace rldt {

class ThreadPool {
 public:
  static constexpr int kDefaultSpinUs = 100;

  // `num_threads` threads take part in each loop, the calling thread included (so 1 means no
  // background threads); 0 means std::thread::hardware_concurrency(). `spin_us`: see above.
  explicit ThreadPool(int num_threads, int spin_us = kDefaultSpinUs) : spin_us_(std::max(0, spin_us)) {
    if (num_threads <= 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
    num_threads_ = num_threads;
    blocks_.reset(new Block[num_threads_]);
    for (int t = 1; t < num_threads_; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }
  int spin_us() const { return spin_us_; }

  // Calls fn(t) once for each thread t in [0, num_threads()), all at once, each on its own thread
  // (the caller's is t = 0), for work whose threads wait for each other (SpinBarrier). Every t
  // must pass the same barriers: a thread takes no other t until its own is done, and its own
  // cannot finish before every t has reached the barriers in it. Not reentrant.
  template <typename Fn>
  void run_team(Fn&& fn) {
    parallel_for(num_threads_, std::forward<Fn>(fn));
  }

  // Calls fn(i) for every i in [0, n), spread over the threads; returns when all calls are done.
  // If calls throw, the remaining indices are still run and the first exception is rethrown.
  // Not reentrant: one parallel_for at a time per pool.
  template <typename Fn>
  void parallel_for(int n, Fn&& fn) {
    if (n <= 0) return;
    if (num_threads_ == 1 || n == 1) {
      for (int i = 0; i < n; ++i) fn(i);
      return;
    }
    using F = std::remove_reference_t<Fn>;
    body_ = [](void* ctx, int i) { (*static_cast<F*>(ctx))(i); };
    ctx_ = const_cast<void*>(static_cast<const void*>(&fn));
    const int blocks = std::min(num_threads_, n);
    for (int t = 0; t < num_threads_; ++t) {  // threads beyond n get an empty block
      const bool owns = t < blocks;
      blocks_[t].next.store(owns ? static_cast<int>(static_cast<long>(n) * t / blocks) : n, std::memory_order_relaxed);
      blocks_[t].end = owns ? static_cast<int>(static_cast<long>(n) * (t + 1) / blocks) : n;
    }
    error_ = nullptr;
    active_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_blocks(0);
    if (!spin_until([this] { return active_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return active_.load(std::memory_order_acquire) == 0; });
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  struct alignas(64) Block {  // one cache line each: no false sharing between the counters
    std::atomic<int> next{0};
    int end = 0;
  };

  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  template <typename Pred>
  bool spin_until(Pred pred) const {
    if (pred()) return true;
    if (spin_us_ == 0) return false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
    for (int k = 1;; ++k) {
      cpu_relax();
      if (pred()) return true;
      if (k % 64 == 0 && std::chrono::steady_clock::now() >= deadline) return false;
    }
  }

  // Thread t runs its own block first, then helps with the others' remaining indices.
  void run_blocks(int t) {
    for (int k = 0; k < num_threads_; ++k) {
      Block& b = blocks_[(t + k) % num_threads_];
      for (int i = b.next.fetch_add(1, std::memory_order_relaxed); i < b.end;
           i = b.next.fetch_add(1, std::memory_order_relaxed)) {
        try {
          body_(ctx_, i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex_);
          if (!error_) error_ = std::current_exception();
        }
      }
    }
  }

  void worker_loop(int t) {
    unsigned long seen = 0;
    for (;;) {
      if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      run_blocks(t);
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  int num_threads_ = 1;
  int spin_us_ = 0;
  std::vector<std::thread> workers_;
  std::unique_ptr<Block[]> blocks_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<unsigned long> generation_{0};
  std::atomic<int> active_{0};
  std::atomic<bool> stop_{false};
  void (*body_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// A reusable barrier for the n threads of a ThreadPool::run_team: wait() returns once all n have
// called it, and what each wrote before its wait() is visible to all after theirs. A waiting thread
// spins for `spin_us` microseconds (the others are usually a few microseconds behind), then yields
// its core while it waits (a thread of the team may be descheduled on a busy machine).
class SpinBarrier {
 public:
  explicit SpinBarrier(int n, int spin_us = ThreadPool::kDefaultSpinUs) : n_(n), spin_us_(std::max(0, spin_us)) {}
  SpinBarrier(const SpinBarrier&) = delete;
  SpinBarrier& operator=(const SpinBarrier&) = delete;

  void wait() {
    if (n_ <= 1) return;
    const unsigned g = generation_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {  // the last one in opens it
      count_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
    bool spinning = spin_us_ > 0;
    for (int k = 1; generation_.load(std::memory_order_acquire) == g; ++k) {
      if (!spinning) {
        std::this_thread::yield();
        continue;
      }
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      if (k % 64 == 0 && std::chrono::steady_clock::now() >= deadline) spinning = false;
    }
  }

 private:
  int n_;
  int spin_us_;
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<unsigned> generation_{0};
};

}  // namespace rldt
