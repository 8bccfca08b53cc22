// Keeps the memory of freed tensors mapped between training steps (issue 6, docs/benchmarks.md).
//
// LibTorch allocates every tensor with the C library's malloc. An RLDT actor update creates and
// frees ~100 MB of activations each step (2048 rows x 512 floats = 4 MB per tensor); with glibc's
// defaults the freed top of the heap is handed back to the kernel (trim threshold 128 KB, growing
// with the mmap threshold) and the next step faults every page in again and zeroes it: 4-7% of an
// actor update's CPU samples under perf, 10-14% of a 4096-sample critic update's. Training components (ActorUpdater,
// CriticEnsemble, Sac, pretrain) therefore raise glibc's thresholds once per process:
//   M_MMAP_THRESHOLD 32 MB (glibc's maximum; larger blocks are still mmapped, e.g. replay buffers),
//   M_TRIM_THRESHOLD 512 MB, M_TOP_PAD 64 MB.
// The process then keeps its peak heap instead of returning it between steps. Arithmetic does not
// change (no result depends on where a tensor lives).
//
// Skipped, leaving malloc as it is, when the environment sets RLDT_MALLOC_TUNING=0, when the user
// tunes glibc's malloc already (GLIBC_TUNABLES naming glibc.malloc.*, or MALLOC_TRIM_THRESHOLD_,
// MALLOC_MMAP_THRESHOLD_ or MALLOC_TOP_PAD_ set), and where the C library is not glibc.
#pragma once

namespace rldt {

enum class MallocTuning {
  kApplied,      // rldt set the thresholds (in this call or an earlier one)
  kDisabled,     // RLDT_MALLOC_TUNING=0
  kUserTuned,    // the environment tunes glibc's malloc itself
  kUnsupported,  // not glibc, or mallopt refused a value
};

// Applies the tuning once per process (thread-safe; later calls return the first call's result).
// Throws ArgumentError naming RLDT_MALLOC_TUNING if it is set to anything but "0" or "1".
MallocTuning tune_malloc_for_training();

// "applied", "disabled", "user_tuned", "unsupported".
const char* to_string(MallocTuning t);

}  // namespace rldt
