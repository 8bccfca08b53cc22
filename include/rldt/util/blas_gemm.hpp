// The single-precision GEMM of the BLAS already loaded into the process (OpenBLAS through
// libblas.so.3 on Debian, the one LibTorch's matmuls use), looked up at run time like the thread
// setting in blas_threads.hpp, so rldt links against no BLAS itself. InferencePolicy uses it for
// batches (issue 6): it is multi-threaded and faster than Eigen's single-threaded product there.
#pragma once

#include <cstddef>

namespace rldt {

// The Fortran interface `sgemm_` (column-major): C = alpha·op(A)·op(B) + beta·C with
// op(A) m×k, op(B) k×n, C m×n; the two trailing lengths are those of the trans strings.
using SgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                         const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                         const float* beta, float* c, const int* ldc, std::size_t transa_len, std::size_t transb_len);

// nullptr when no loaded library exports `sgemm_`.
SgemmFn blas_sgemm();

}  // namespace rldt
