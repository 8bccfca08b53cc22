// The BLAS library's own thread count (OpenBLAS's pthreads, which LibTorch's matmuls use on this
// kind of machine; docs/benchmarks.md, issue 6). Looked up at run time, so rldt links against any
// BLAS, and these are no-ops where the loaded one has no such setting.
#pragma once

namespace rldt {

// Threads the loaded BLAS uses per call; 0 if it exposes no setting (not OpenBLAS).
int blas_num_threads();
// Sets it (n >= 1); returns false, changing nothing, if the loaded BLAS has no such setting.
bool set_blas_num_threads(int n);

// Sets the BLAS thread count for a scope and restores the previous one on exit. Used where
// several threads each run their own small matmuls (grouped rollouts): one BLAS thread per caller,
// so BLAS workers spinning after a call do not take the cores the other callers need.
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int n) : previous_(blas_num_threads()) {
    if (previous_ > 0 && previous_ != n) set_blas_num_threads(n);
  }
  ~ScopedBlasThreads() {
    if (previous_ > 0 && blas_num_threads() != previous_) set_blas_num_threads(previous_);
  }
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int previous_;
};

}  // namespace rldt
