// ThreadPool: every index exactly once, errors, the block schedule, and both ways of waiting
// (spinning and sleeping on the condition variable).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rldt/util/thread_pool.hpp"

using namespace rldt;

namespace {

void expect_each_index_once(ThreadPool& pool, int n, const std::string& what) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  for (auto& h : hits) h.store(0);
  pool.parallel_for(n, [&](int i) { hits[static_cast<size_t>(i)].fetch_add(1); });
  for (int i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << what << " index " << i;
}

}  // namespace

TEST(ThreadPool, RunsEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 4})
    for (int spin_us : {0, ThreadPool::kDefaultSpinUs}) {
      ThreadPool pool(threads, spin_us);
      EXPECT_EQ(pool.num_threads(), threads);
      EXPECT_EQ(pool.spin_us(), spin_us);
      for (int round = 0; round < 20; ++round)
        for (int n : {1, 2, 3, 5, 16, 101})
          expect_each_index_once(
              pool, n,
              std::to_string(threads) + " threads, spin " + std::to_string(spin_us) + ", n " + std::to_string(n));
      pool.parallel_for(0, [](int) { FAIL() << "n = 0 runs nothing"; });
    }
}

TEST(ThreadPool, SleepingWorkersWakeForTheNextLoop) {
  // Pauses longer than the spin make the workers sleep on the condition variable.
  ThreadPool pool(2, 20);
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    expect_each_index_once(pool, 16, "after a pause, round " + std::to_string(round));
  }
}

TEST(ThreadPool, EachThreadStartsOnItsOwnBlock) {
  // Two threads, four indices: the caller owns [0, 2), the worker [2, 4). Index 0 holds the caller
  // until the worker has run something, so the caller cannot take the worker's block first, and a
  // shared counter would have handed the worker index 0 or 1: it must start at its own block.
  // (Which thread runs index 0 is not fixed: a caller descheduled right after waking the worker
  // may find its own block already taken by the worker.)
  ThreadPool pool(2, 0);
  for (int round = 0; round < 5; ++round) {
    const auto caller = std::this_thread::get_id();
    std::atomic<int> worker_first{-1};
    std::vector<std::thread::id> ran_on(4);
    pool.parallel_for(4, [&](int i) {
      ran_on[static_cast<size_t>(i)] = std::this_thread::get_id();
      if (std::this_thread::get_id() != caller) {
        int none = -1;
        worker_first.compare_exchange_strong(none, i);
      }
      if (i == 0) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (worker_first.load() < 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      }
    });
    EXPECT_EQ(worker_first.load(), 2) << "round " << round;
    EXPECT_NE(ran_on[2], caller);
  }
}

TEST(ThreadPool, AThrowingIndexDoesNotStopTheOthersAndIsRethrown) {
  for (int spin_us : {0, ThreadPool::kDefaultSpinUs}) {
    ThreadPool pool(2, spin_us);
    std::atomic<int> ran{0};
    try {
      pool.parallel_for(10, [&](int i) {
        ran.fetch_add(1);
        if (i == 3 || i == 7) throw std::runtime_error("index " + std::to_string(i));
      });
      ADD_FAILURE() << "expected the loop to throw";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_TRUE(what == "index 3" || what == "index 7") << what;
    }
    EXPECT_EQ(ran.load(), 10);
    expect_each_index_once(pool, 16, "after an error");  // the pool is still usable
  }
}

TEST(ThreadPool, ZeroThreadsMeansOnePerCore) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.num_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  EXPECT_EQ(ThreadPool(2, -5).spin_us(), 0);
  expect_each_index_once(pool, 7, "hardware threads");
}

TEST(ThreadPool, ATeamRunsEachMemberOnItsOwnThreadAndTheBarrierOrdersTheirWrites) {
  // Each round every member writes its slot, waits, then reads all slots: a barrier that let a
  // member through early, or published the writes late, shows as a stale value. Spinning and
  // yielding barriers, with members that arrive late in turn.
  for (int threads : {1, 2, 3})
    for (int spin_us : {0, ThreadPool::kDefaultSpinUs}) {
      ThreadPool pool(threads, spin_us);
      SpinBarrier barrier(threads, spin_us);
      constexpr int kRounds = 300;
      std::vector<std::atomic<int>> slot(static_cast<size_t>(threads));
      for (auto& s : slot) s.store(-1);
      std::vector<std::thread::id> ran_on(static_cast<size_t>(threads));
      std::atomic<int> stale{0};
      pool.run_team([&](int t) {
        ran_on[static_cast<size_t>(t)] = std::this_thread::get_id();
        for (int r = 0; r < kRounds; ++r) {
          if (r % 50 == t) std::this_thread::sleep_for(std::chrono::microseconds(300));  // a late member
          slot[static_cast<size_t>(t)].store(r, std::memory_order_relaxed);
          barrier.wait();
          for (int o = 0; o < threads; ++o)
            if (slot[static_cast<size_t>(o)].load(std::memory_order_relaxed) != r) stale.fetch_add(1);
          barrier.wait();  // nobody writes round r + 1 before everyone has read round r
        }
      });
      const std::string what = std::to_string(threads) + " threads, spin " + std::to_string(spin_us);
      EXPECT_EQ(stale.load(), 0) << what;
      for (int a = 0; a < threads; ++a)
        for (int b = a + 1; b < threads; ++b)
          EXPECT_NE(ran_on[static_cast<size_t>(a)], ran_on[static_cast<size_t>(b)])
              << what << ": members " << a << " and " << b;
    }
}
