// Kernel shapes for a small batch (issue 6: the 16-env rollout's 8 states per thread): 8 rows
// through three 512 × 512 layers whose weights sit in L3 (3 MB), on one thread, with three AVX2/FMA
// kernels over weights packed for each:
//  - 6 × 16 (PackedWeights' kernel) in two blocks of 4 rows: 8 accumulators, 16-column panels;
//  - 8 × 8 in one block of 8 rows: 8 accumulators, 8-column panels (each panel read once);
//  - 4 × 24 in two blocks of 4 rows: 12 accumulators, 24-column panels.
// Then the 6 × 16 kernel alone on one thread and on both threads at once (each its own rows, the
// same weights), with the weights in L3 and in each core's L2: how much one thread slows the other.
// Rounds alternate all of these; it prints each one's median GFLOP/s and the 3rd lowest and
// highest of the 15 rounds. Standalone (no rldt): build/rldt_bench_kernels. Needs a CPU with AVX2
// and FMA. The accumulators are stored one by one at the end: a loop over an initializer list of them makes
// GCC 12 keep them in memory through the whole kernel (a third of the speed).
#include <cstdio>

#if !(defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
int main() {
  std::fprintf(stderr, "rldt_bench_kernels: AVX2/FMA kernels, x86-64 with GCC or Clang only\n");
  return 1;
}
#else
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace {

constexpr long kN = 512, kK = 512, kLayers = 3, kM = 8;

__attribute__((target("avx2,fma"))) void kernel_4x16(const float* x, long ldx, const float* p, long k, float* acc) {
  __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  for (long kk = 0; kk < k; ++kk) {
    const __m256 p0 = _mm256_load_ps(p + kk * 16), p1 = _mm256_load_ps(p + kk * 16 + 8);
    __m256 v = _mm256_broadcast_ss(x + kk);
    a0 = _mm256_fmadd_ps(v, p0, a0);
    b0 = _mm256_fmadd_ps(v, p1, b0);
    v = _mm256_broadcast_ss(x + ldx + kk);
    a1 = _mm256_fmadd_ps(v, p0, a1);
    b1 = _mm256_fmadd_ps(v, p1, b1);
    v = _mm256_broadcast_ss(x + 2 * ldx + kk);
    a2 = _mm256_fmadd_ps(v, p0, a2);
    b2 = _mm256_fmadd_ps(v, p1, b2);
    v = _mm256_broadcast_ss(x + 3 * ldx + kk);
    a3 = _mm256_fmadd_ps(v, p0, a3);
    b3 = _mm256_fmadd_ps(v, p1, b3);
  }
  _mm256_storeu_ps(acc + 0, a0);
  _mm256_storeu_ps(acc + 8, b0);
  _mm256_storeu_ps(acc + 16, a1);
  _mm256_storeu_ps(acc + 24, b1);
  _mm256_storeu_ps(acc + 32, a2);
  _mm256_storeu_ps(acc + 40, b2);
  _mm256_storeu_ps(acc + 48, a3);
  _mm256_storeu_ps(acc + 56, b3);
}

__attribute__((target("avx2,fma"))) void kernel_8x8(const float* x, long ldx, const float* p, long k, float* acc) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (long kk = 0; kk < k; ++kk) {
    const __m256 p0 = _mm256_load_ps(p + kk * 8);
    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + kk), p0, a0);
    a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + ldx + kk), p0, a1);
    a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 2 * ldx + kk), p0, a2);
    a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 3 * ldx + kk), p0, a3);
    a4 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 4 * ldx + kk), p0, a4);
    a5 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 5 * ldx + kk), p0, a5);
    a6 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 6 * ldx + kk), p0, a6);
    a7 = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 7 * ldx + kk), p0, a7);
  }
  _mm256_storeu_ps(acc + 0, a0);
  _mm256_storeu_ps(acc + 8, a1);
  _mm256_storeu_ps(acc + 16, a2);
  _mm256_storeu_ps(acc + 24, a3);
  _mm256_storeu_ps(acc + 32, a4);
  _mm256_storeu_ps(acc + 40, a5);
  _mm256_storeu_ps(acc + 48, a6);
  _mm256_storeu_ps(acc + 56, a7);
}

__attribute__((target("avx2,fma"))) void kernel_4x24(const float* x, long ldx, const float* p, long k, float* acc) {
  __m256 a0 = _mm256_setzero_ps(), b0 = a0, c0 = a0, a1 = a0, b1 = a0, c1 = a0, a2 = a0, b2 = a0, c2 = a0, a3 = a0,
         b3 = a0, c3 = a0;
  for (long kk = 0; kk < k; ++kk) {
    const __m256 p0 = _mm256_load_ps(p + kk * 24), p1 = _mm256_load_ps(p + kk * 24 + 8),
                 p2 = _mm256_load_ps(p + kk * 24 + 16);
#define ROW(r)                                              \
  {                                                         \
    const __m256 v = _mm256_broadcast_ss(x + r * ldx + kk); \
    a##r = _mm256_fmadd_ps(v, p0, a##r);                    \
    b##r = _mm256_fmadd_ps(v, p1, b##r);                    \
    c##r = _mm256_fmadd_ps(v, p2, c##r);                    \
  }
    ROW(0) ROW(1) ROW(2) ROW(3)
#undef ROW
  }
  _mm256_storeu_ps(acc + 0, a0);
  _mm256_storeu_ps(acc + 8, b0);
  _mm256_storeu_ps(acc + 16, c0);
  _mm256_storeu_ps(acc + 24, a1);
  _mm256_storeu_ps(acc + 32, b1);
  _mm256_storeu_ps(acc + 40, c1);
  _mm256_storeu_ps(acc + 48, a2);
  _mm256_storeu_ps(acc + 56, b2);
  _mm256_storeu_ps(acc + 64, c2);
  _mm256_storeu_ps(acc + 72, a3);
  _mm256_storeu_ps(acc + 80, b3);
  _mm256_storeu_ps(acc + 88, c3);
}

// W (n × k, row-major) in panels of P columns: d[(p·k + kk)·P + j] = W[p·P + j][kk], zero-padded.
float* pack(const std::vector<float>& w, long n, long k, long P) {
  const long panels = (n + P - 1) / P;
  auto* d = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * panels * k * P));
  for (long p = 0; p < panels; ++p)
    for (long kk = 0; kk < k; ++kk)
      for (long j = 0; j < P; ++j) d[(p * k + kk) * P + j] = p * P + j < n ? w[(p * P + j) * k + kk] : 0.f;
  return d;
}

// y (m × n) = x (m × k) · Wᵀ for one layer, with one kernel shape: rows in blocks of R, columns
// in panels of P (w packed for P).
void layer(int shape, const float* w, long n, const float* x, float* y) {
  const long P = shape == 0 ? 16 : shape == 1 ? 8 : 24, R = shape == 1 ? 8 : 4;
  alignas(32) float acc[12 * 8];
  for (long p = 0; p * P < n; ++p)
    for (long r0 = 0; r0 < kM; r0 += R) {
      const float* xr = x + r0 * kK;
      if (shape == 0) kernel_4x16(xr, kK, w + p * kK * P, kK, acc);
      if (shape == 1) kernel_8x8(xr, kK, w + p * kK * P, kK, acc);
      if (shape == 2) kernel_4x24(xr, kK, w + p * kK * P, kK, acc);
      const long cols = std::min(P, n - p * P);
      for (long r = 0; r < R; ++r) std::memcpy(y + (r0 + r) * n + p * P, acc + r * P, sizeof(float) * cols);
    }
}

// GFLOP/s of `calls` products through the layers in turn.
double rate(int shape, float* const* w, long n, const float* x, float* y, int calls) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) layer(shape, w[i % kLayers], n, x, y);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls;
  return 2.0 * kM * n * kK / s / 1e9;
}

void print(const char* name, std::vector<double> r) {
  std::sort(r.begin(), r.end());
  const size_t n = r.size();
  std::printf("%-44s median %5.1f GFLOP/s  [%.1f, %.1f]\n", name, r[n / 2], r[2], r[n - 3]);
}

}  // namespace

int main() {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::fprintf(stderr, "rldt_bench_kernels: this CPU has no AVX2/FMA\n");
    return 1;
  }
  std::mt19937 g(1);
  std::normal_distribution<float> nd(0.f, 0.05f);
  auto random = [&](size_t n) {
    std::vector<float> v(n);
    for (auto& e : v) e = nd(g);
    return v;
  };
  const auto x = random(kM * kK), x2 = random(kM * kK);
  std::vector<float> y(kM * kN), y2(kM * kN);
  // Weights for each kernel shape (512 outputs: 3 MB, in L3), and 64-output layers for the 6 × 16
  // kernel (3 × 128 KB: in each core's L2).
  float *p16[kLayers], *p8[kLayers], *p24[kLayers], *small[kLayers];
  for (long l = 0; l < kLayers; ++l) {
    const auto w = random(kN * kK);
    p16[l] = pack(w, kN, kK, 16);
    p8[l] = pack(w, kN, kK, 8);
    p24[l] = pack(w, kN, kK, 24);
    small[l] = pack(random(64 * kK), 64, kK, 16);
  }
  constexpr int kRounds = 15, kCalls = 600;
  std::vector<double> shapes[3], alone[2], pair[2];
  for (int round = 0; round < kRounds; ++round) {
    for (int shape = 0; shape < 3; ++shape)
      shapes[shape].push_back(rate(shape, shape == 0 ? p16 : shape == 1 ? p8 : p24, kN, x.data(), y.data(), kCalls));
    // The 6 × 16 kernel on one thread, then on two threads at once (each its own rows, the same
    // weights; the mean of the two threads' rates), with the weights in L3 and in L2.
    for (int where = 0; where < 2; ++where) {
      float* const* w = where == 0 ? p16 : small;
      const long n = where == 0 ? kN : 64;
      const int calls = where == 0 ? kCalls : kCalls * 8;
      alone[where].push_back(rate(0, w, n, x.data(), y.data(), calls));
      double other = 0;
      std::thread t([&] { other = rate(0, w, n, x2.data(), y2.data(), calls); });
      const double mine = rate(0, w, n, x.data(), y.data(), calls);
      t.join();
      pair[where].push_back(0.5 * (mine + other));
    }
  }
  print("6x16 kernel, 4 + 4 rows", shapes[0]);
  print("8x8 kernel, 8 rows", shapes[1]);
  print("4x24 kernel, 4 + 4 rows", shapes[2]);
  print("6x16, weights in L3, one thread", alone[0]);
  print("6x16, weights in L3, two threads (each)", pair[0]);
  print("6x16, weights in L2, one thread", alone[1]);
  print("6x16, weights in L2, two threads (each)", pair[1]);
  return 0;
}
#endif
