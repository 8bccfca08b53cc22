// tune_malloc_for_training (include/rldt/util/malloc_tuning.hpp): after it, a freed large block
// stays in the heap instead of going back to the kernel, so the next step does not fault it in.
// The environment cases (RLDT_MALLOC_TUNING, GLIBC_TUNABLES) need fresh processes: see
// tests/python/test_malloc_tuning.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "rldt/util/malloc_tuning.hpp"

namespace {

TEST(MallocTuning, FreedLargeBlocksStayInTheHeap) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const auto r = rldt::tune_malloc_for_training();
  if (r != rldt::MallocTuning::kApplied)
    GTEST_SKIP() << "malloc tuning is '" << rldt::to_string(r) << "' in this environment";
  EXPECT_EQ(rldt::tune_malloc_for_training(), rldt::MallocTuning::kApplied);  // idempotent
  // 24 MB: over glibc's default mmap threshold (128 KB at start), under the tuned one (32 MB).
  constexpr size_t n = size_t{24} << 20;
  const auto start = mallinfo2();
  auto* p = static_cast<char*>(std::malloc(n));
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, n);
  const auto held = mallinfo2();
  EXPECT_EQ(held.hblkhd, start.hblkhd) << "the block was mmapped";
  std::free(p);
  const auto after = mallinfo2();
  EXPECT_GE(after.fordblks, n) << "the freed block went back to the kernel";
  EXPECT_EQ(after.hblkhd, start.hblkhd);
#else
  GTEST_SKIP() << "needs glibc >= 2.33 (mallinfo2)";
#endif
}

TEST(MallocTuning, NamesEveryState) {
  EXPECT_STREQ(rldt::to_string(rldt::MallocTuning::kApplied), "applied");
  EXPECT_STREQ(rldt::to_string(rldt::MallocTuning::kDisabled), "disabled");
  EXPECT_STREQ(rldt::to_string(rldt::MallocTuning::kUserTuned), "user_tuned");
  EXPECT_STREQ(rldt::to_string(rldt::MallocTuning::kUnsupported), "unsupported");
}

}  // namespace
