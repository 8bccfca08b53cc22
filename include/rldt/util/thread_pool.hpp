// A small fork-join thread pool for data-parallel loops (env stepping). Header-only and free of
// torch. parallel_for allocates nothing: the loop body is passed by pointer, workers wake on a
// generation counter, indices are handed out by an atomic counter.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace rldt {

class ThreadPool {
 public:
  // `num_threads` threads take part in each loop, the calling thread included (so 1 means no
  // background threads); 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int num_threads) {
    if (num_threads <= 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
    num_threads_ = num_threads;
    for (int t = 1; t < num_threads_; ++t) workers_.emplace_back([this] { worker_loop(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

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
    n_ = n;
    next_.store(0);
    error_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      active_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    run_indices();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return active_ == 0; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_indices() {
    for (int i = next_.fetch_add(1); i < n_; i = next_.fetch_add(1)) {
      try {
        body_(ctx_, i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void worker_loop() {
    unsigned long seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
      }
      run_indices();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--active_ == 0) done_.notify_one();
      }
    }
  }

  int num_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  unsigned long generation_ = 0;
  int active_ = 0;
  bool stop_ = false;
  void (*body_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_{0};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace rldt
