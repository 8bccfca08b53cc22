#include "rldt/util/malloc_tuning.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "rldt/util/check.hpp"

namespace rldt {
namespace {

bool user_tunes_malloc() {
  const char* t = std::getenv("GLIBC_TUNABLES");
  if (t && std::strstr(t, "glibc.malloc.")) return true;
  for (const char* name : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_"})
    if (std::getenv(name)) return true;
  return false;
}

MallocTuning apply() {
  if (const char* v = std::getenv("RLDT_MALLOC_TUNING")) {
    const std::string s(v);
    check_arg(s == "0" || s == "1",
              "environment variable RLDT_MALLOC_TUNING must be 0 (leave malloc as it is) or 1, "
              "got '",
              s, "'");
    if (s == "0") return MallocTuning::kDisabled;
  }
  if (user_tunes_malloc()) return MallocTuning::kUserTuned;
#if defined(__GLIBC__)
  // All three together: setting any threshold switches off glibc's dynamic mmap threshold, so the
  // mmap threshold must be raised too, or every tensor over 128 KB would be mmapped and faulted in
  // (measured: trim threshold and top pad alone made the 256x8 actor update's page faults 17% of
  // its samples instead of 5%).
  constexpr int kMB = 1 << 20;
  if (mallopt(M_MMAP_THRESHOLD, 32 * kMB) != 1) return MallocTuning::kUnsupported;
  if (mallopt(M_TOP_PAD, 64 * kMB) != 1) return MallocTuning::kUnsupported;
  if (mallopt(M_TRIM_THRESHOLD, 512 * kMB) != 1) return MallocTuning::kUnsupported;
  return MallocTuning::kApplied;
#else
  return MallocTuning::kUnsupported;
#endif
}

}  // namespace

MallocTuning tune_malloc_for_training() {
  // A function-local static: initialised once, thread-safely; a throwing first call (a bad
  // RLDT_MALLOC_TUNING) leaves it uninitialised, so the next call throws again.
  static const MallocTuning result = apply();
  return result;
}

const char* to_string(MallocTuning t) {
  switch (t) {
    case MallocTuning::kApplied:
      return "applied";
    case MallocTuning::kDisabled:
      return "disabled";
    case MallocTuning::kUserTuned:
      return "user_tuned";
    case MallocTuning::kUnsupported:
      return "unsupported";
  }
  return "unsupported";
}

}  // namespace rldt
