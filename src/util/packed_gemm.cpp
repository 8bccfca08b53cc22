#include "rldt/util/packed_gemm.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "rldt/util/check.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RLDT_PACKED_AVX2 1
#include <immintrin.h>
#endif

namespace rldt {
namespace {

constexpr int64_t kPanel = PackedWeights::kPanelWidth;  // two 8-float AVX registers
constexpr int kRows = 6;  // rows per kernel call: 6 × 2 accumulators + 2 panel + 1 broadcast registers

// acc (R × kPanel, row-major) = x[R rows] · panel, summed over kk = 0 … k−1 in order (the same
// order for every R, so a row's result does not depend on the rows computed with it). Plain
// multiply and add: std::fma is a slow library call on CPUs without FMA, which is where this runs.
template <int R>
void kernel_generic(const float* x, int64_t ldx, const float* panel, int64_t k, float* acc) {
  float c[R][kPanel] = {};
  for (int64_t kk = 0; kk < k; ++kk) {
    const float* b = panel + kk * kPanel;
    for (int r = 0; r < R; ++r) {
      const float a = x[r * ldx + kk];
      for (int64_t j = 0; j < kPanel; ++j) c[r][j] += a * b[j];
    }
  }
  std::memcpy(acc, c, sizeof(c));
}

// kernel_generic for two panels `pstride` floats apart: acc [2][R][kPanel] (the same sums).
template <int R>
void kernel_generic_pair(const float* x, int64_t ldx, const float* panel, int64_t pstride, int64_t k, float* acc) {
  kernel_generic<R>(x, ldx, panel, k, acc);
  kernel_generic<R>(x, ldx, panel + pstride, k, acc + R * kPanel);
}

#ifdef RLDT_PACKED_AVX2
// The accumulators are named registers, not an array: GCC 12 keeps an array of __m256 in memory
// and stores all twelve on every iteration (28 GFLOP/s against ~60 without the stores).
template <int R>
__attribute__((target("avx2,fma"))) void kernel_avx2(const float* x, int64_t ldx, const float* panel, int64_t k,
                                                     float* acc) {
  static_assert(R >= 1 && R <= 6, "1 to 6 rows");
  __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0, a4 = a0, b4 = a0,
         a5 = a0, b5 = a0;
  const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx, *x4 = x + 4 * ldx, *x5 = x + 5 * ldx;
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256 p0 = _mm256_load_ps(panel + kk * kPanel), p1 = _mm256_load_ps(panel + kk * kPanel + 8);
#define RLDT_ROW(r)                                  \
  if constexpr (R > r) {                             \
    const __m256 v = _mm256_broadcast_ss(x##r + kk); \
    a##r = _mm256_fmadd_ps(v, p0, a##r);             \
    b##r = _mm256_fmadd_ps(v, p1, b##r);             \
  }
    RLDT_ROW(0) RLDT_ROW(1) RLDT_ROW(2) RLDT_ROW(3) RLDT_ROW(4) RLDT_ROW(5)
#undef RLDT_ROW
  }
#define RLDT_STORE(r)                             \
  if constexpr (R > r) {                          \
    _mm256_storeu_ps(acc + r * kPanel, a##r);     \
    _mm256_storeu_ps(acc + r * kPanel + 8, b##r); \
  }
  RLDT_STORE(0) RLDT_STORE(1) RLDT_STORE(2) RLDT_STORE(3) RLDT_STORE(4) RLDT_STORE(5)
#undef RLDT_STORE
}

// R ≤ 3 rows × two panels (32 columns) `pstride` floats apart, acc [2][R][kPanel]: 4R accumulators
// where kernel_avx2<R> has 2R, so a block of 2 or 3 rows keeps the FMA units as busy as one of 4
// to 6 rows (8-12 independent sums; measured in docs/benchmarks.md). Each sum runs over kk in
// order, as in kernel_avx2: the same bits.
template <int R>
__attribute__((target("avx2,fma"))) void kernel_avx2_pair(const float* x, int64_t ldx, const float* panel,
                                                          int64_t pstride, int64_t k, float* acc) {
  static_assert(R >= 1 && R <= 3, "1 to 3 rows");
  __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0,
         c10 = c0, c11 = c0;
  const float* second = panel + pstride;
  for (int64_t kk = 0; kk < k; ++kk) {
    // The rows' values first (R registers), then the four panel vectors one at a time.
    const __m256 v0 = _mm256_broadcast_ss(x + kk);
    const __m256 v1 = R > 1 ? _mm256_broadcast_ss(x + ldx + kk) : v0;
    const __m256 v2 = R > 2 ? _mm256_broadcast_ss(x + 2 * ldx + kk) : v0;
#define RLDT_VEC(ptr, a, b, c)                          \
  {                                                     \
    const __m256 q = _mm256_load_ps(ptr);               \
    a = _mm256_fmadd_ps(v0, q, a);                      \
    if constexpr (R > 1) b = _mm256_fmadd_ps(v1, q, b); \
    if constexpr (R > 2) c = _mm256_fmadd_ps(v2, q, c); \
  }
    RLDT_VEC(panel + kk * kPanel, c0, c1, c2)
    RLDT_VEC(panel + kk * kPanel + 8, c3, c4, c5)
    RLDT_VEC(second + kk * kPanel, c6, c7, c8)
    RLDT_VEC(second + kk * kPanel + 8, c9, c10, c11)
#undef RLDT_VEC
  }
  // acc[(q·R + r)·kPanel + half·8]
  _mm256_storeu_ps(acc, c0);
  _mm256_storeu_ps(acc + 8, c3);
  _mm256_storeu_ps(acc + R * kPanel, c6);
  _mm256_storeu_ps(acc + R * kPanel + 8, c9);
  if constexpr (R > 1) {
    _mm256_storeu_ps(acc + kPanel, c1);
    _mm256_storeu_ps(acc + kPanel + 8, c4);
    _mm256_storeu_ps(acc + (R + 1) * kPanel, c7);
    _mm256_storeu_ps(acc + (R + 1) * kPanel + 8, c10);
  }
  if constexpr (R > 2) {
    _mm256_storeu_ps(acc + 2 * kPanel, c2);
    _mm256_storeu_ps(acc + 2 * kPanel + 8, c5);
    _mm256_storeu_ps(acc + (R + 2) * kPanel, c8);
    _mm256_storeu_ps(acc + (R + 2) * kPanel + 8, c11);
  }
}

bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

using KernelFn = void (*)(const float*, int64_t, const float*, int64_t, float*);
using PairKernelFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*);
constexpr int kPairRows = 3;  // blocks of up to this many rows take two panels per call

}  // namespace

// fn[R − 1] computes R rows of one panel, pair[R − 1] R ≤ kPairRows rows of two.
struct detail::PackedKernels {
  KernelFn fn[kRows];
  PairKernelFn pair[kPairRows];
  bool vectorized;
};

namespace {

const detail::PackedKernels& portable_kernels() {
  static const detail::PackedKernels k{{kernel_generic<1>, kernel_generic<2>, kernel_generic<3>, kernel_generic<4>,
                                        kernel_generic<5>, kernel_generic<6>},
                                       {kernel_generic_pair<1>, kernel_generic_pair<2>, kernel_generic_pair<3>},
                                       false};
  return k;
}

const detail::PackedKernels& best_kernels() {
#ifdef RLDT_PACKED_AVX2
  static const detail::PackedKernels avx2{
      {kernel_avx2<1>, kernel_avx2<2>, kernel_avx2<3>, kernel_avx2<4>, kernel_avx2<5>, kernel_avx2<6>},
      {kernel_avx2_pair<1>, kernel_avx2_pair<2>, kernel_avx2_pair<3>},
      true};
  static const bool has = cpu_has_avx2_fma();
  if (has) return avx2;
#endif
  return portable_kernels();
}

}  // namespace

bool PackedWeights::vectorized() { return best_kernels().vectorized; }

PackedWeights::PackedWeights(const float* w, int64_t n, int64_t k) : n_(n), k_(k) {
  check_arg(n >= 1 && k >= 1, "PackedWeights: the weight matrix must be at least 1 x 1, got ", n, " x ", k);
  check_arg(w != nullptr, "PackedWeights: the weight pointer is null");
  const int64_t panels = (n + kPanel - 1) / kPanel;
  const size_t count = static_cast<size_t>(panels * k * kPanel);
  void* p = std::aligned_alloc(32, ((count * sizeof(float) + 31) / 32) * 32);
  if (!p) throw std::bad_alloc();
  data_ = std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
  repack(w);
}

void PackedWeights::repack(const float* w) {
  check_arg(!empty(), "PackedWeights::repack: no weights (default-constructed)");
  check_arg(w != nullptr, "PackedWeights::repack: the weight pointer is null");
  // Panel by panel, step by step: the writes are sequential, the reads 16 rows' streams.
  float* d = data_.get();
  for (int64_t j0 = 0; j0 < n_; j0 += kPanel) {
    const int64_t cols = std::min(kPanel, n_ - j0);
    for (int64_t kk = 0; kk < k_; ++kk, d += kPanel) {
      int64_t j = 0;
      for (; j < cols; ++j) d[j] = w[(j0 + j) * k_ + kk];
      for (; j < kPanel; ++j) d[j] = 0.f;  // padding of the last panel
    }
  }
}

void PackedWeights::multiply(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, const float* bias,
                             bool accumulate) const {
  run(best_kernels(), x, m, ldx, y, ldy, bias, accumulate, 0, n_);
}

void PackedWeights::multiply_columns(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, int64_t j_begin,
                                     int64_t j_end, const float* bias, bool accumulate) const {
  check_arg(
      j_begin >= 0 && j_begin <= j_end && j_end <= n_ && j_begin % kPanel == 0 && (j_end % kPanel == 0 || j_end == n_),
      "PackedWeights::multiply_columns: columns [", j_begin, ", ", j_end, ") are not whole panels of ", kPanel,
      " within [0, ", n_, ")");
  run(best_kernels(), x, m, ldx, y, ldy, bias, accumulate, j_begin, j_end);
}

void PackedWeights::multiply_portable(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, const float* bias,
                                      bool accumulate) const {
  run(portable_kernels(), x, m, ldx, y, ldy, bias, accumulate, 0, n_);
}

void PackedWeights::run(const detail::PackedKernels& ks, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                        const float* bias, bool accumulate, int64_t j_begin, int64_t j_end) const {
  check_arg(!empty(), "PackedWeights::multiply: no weights (default-constructed)");
  check_arg(m >= 0 && ldx >= k_ && ldy >= n_, "PackedWeights::multiply: m = ", m, ", ldx = ", ldx, ", ldy = ", ldy,
            " (need m >= 0, ldx >= ", k_, ", ldy >= ", n_, ")");
  // Rows go in blocks of kRows, and the rest (m mod 6) in one last block. A block of up to
  // kPairRows rows takes two panels per kernel call (4R independent sums instead of 2R). Against
  // equal blocks of at most 6 rows with one panel per call: 1-3 rows ~1.3x faster, 8 rows
  // (6 + 2 against 4 + 4) level, 32-128 rows level or faster (docs/benchmarks.md, fifteenth
  // session; on this host a loop iteration at times costs the same with 8 or 12 sums).
  alignas(32) float acc[kRows * kPanel];
  const float* d = data_.get();
  const int64_t pstride = k_ * kPanel;  // floats from one panel to the next
  // y rows [i, i + rows), columns [j0, j0 + cols) = acc rows (+ bias) (+ y with accumulate).
  auto put = [&](const float* a, int64_t i, int rows, int64_t j0) {
    const int64_t cols = std::min(kPanel, n_ - j0);
    for (int r = 0; r < rows; ++r, a += kPanel) {
      float* out = y + (i + r) * ldy + j0;
      for (int64_t j = 0; j < cols; ++j) {
        float v = a[j];
        if (bias) v += bias[j0 + j];
        out[j] = accumulate ? out[j] + v : v;
      }
    }
  };
  // The last block's rows (m mod 6, or 6), and whether it takes two panels per call.
  const int last = m > 0 ? static_cast<int>(m - (m - 1) / kRows * kRows) : 0;
  for (int64_t j0 = j_begin; j0 < j_end; j0 += 2 * kPanel) {
    const float* panel = d + (j0 / kPanel) * pstride;
    const bool two = j0 + kPanel < j_end;  // a second panel in range
    const bool pair = two && last >= 1 && last <= kPairRows;
    // One panel at a time through the blocks (a panel stays in cache from one block to the next).
    for (int q = 0; q < (two ? 2 : 1); ++q)
      for (int64_t i = 0; i < m; i += kRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kRows, m - i));
        if (pair && i + rows == m) continue;  // the last block, below
        ks.fn[rows - 1](x + i * ldx, ldx, panel + q * pstride, k_, acc);
        put(acc, i, rows, j0 + q * kPanel);
      }
    if (pair) {
      const int64_t i = m - last;
      ks.pair[last - 1](x + i * ldx, ldx, panel, pstride, k_, acc);
      put(acc, i, last, j0);
      put(acc + last * kPanel, i, last, j0 + kPanel);
    }
  }
}

}  // namespace rldt
