// A weight matrix stored once for many products with few rows (issue 6: rollout inference).
//
// For Y (M×N) = X (M×K) · Wᵀ with M of 8-64 rows and W a 512×512 layer, a BLAS GEMM copies ("packs")
// all of W into its own panel layout on every call: 1 MB written and read again per call, about
// half the kernel's own time at 32 rows (perf, twelfth and fourteenth sessions). PackedWeights
// does that copy once, when the weights are loaded, and its product reads the panels directly.
//
// The product runs on the calling thread only (callers split rows over their own threads), with
// AVX2/FMA kernels when the CPU has them (checked at run time) and plain C++ otherwise: blocks of 6
// rows × one 16-column panel, and the last m mod 6 rows as one block, which for 1 to 3 rows takes
// two panels per call (as many independent sums as 2-6 rows of one). Each output
// row is accumulated in the same order whatever M is and whichever rows come with it, so a row's
// result does not depend on how a batch is split: a grouped rollout computes what an ungrouped one
// does, bit for bit (unlike the BLAS, whose rounding depends on the block sizes of the call).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace rldt {

namespace detail {
struct PackedKernels;  // the kernel set multiply runs (packed_gemm.cpp)
}

class PackedWeights {
 public:
  static constexpr int64_t kPanelWidth = 16;  // output columns per panel

  PackedWeights() = default;
  // w: [n·k] row-major (n outputs × k inputs: torch's Linear weight layout).
  PackedWeights(const float* w, int64_t n, int64_t k);

  // Packs w (the same n × k shape) into this object's panels, in place (no allocation). Copies of
  // a PackedWeights share their panels, so they all see the new weights.
  void repack(const float* w);

  int64_t out() const { return n_; }
  int64_t in() const { return k_; }
  bool empty() const { return n_ == 0; }

  // y[i·ldy + j] = Σ_k x[i·ldx + k] · W[j][k] (+ bias[j] when bias is not null) for i < m, j < n;
  // with accumulate, the sum is added to y instead. x: (m, ≥k) rows ldx apart, y: (m, ≥n) rows
  // ldy apart; y must not overlap x.
  void multiply(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, const float* bias = nullptr,
                bool accumulate = false) const;

  // multiply for output columns [j_begin, j_end) only (y's other columns are not touched), e.g. a
  // thread's share of a small batch: the same bits in those columns as multiply. j_begin and
  // j_end must lie on panel bounds (multiples of kPanelWidth; j_end may also be out()).
  void multiply_columns(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, int64_t j_begin, int64_t j_end,
                        const float* bias = nullptr, bool accumulate = false) const;

  // multiply with the plain C++ kernel whatever the CPU has (what runs where AVX2/FMA is missing;
  // tests compare the two).
  void multiply_portable(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, const float* bias = nullptr,
                         bool accumulate = false) const;

  // Whether multiply runs the AVX2/FMA kernel on this CPU.
  static bool vectorized();

 private:
  void run(const detail::PackedKernels& kernels, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
           const float* bias, bool accumulate, int64_t j_begin, int64_t j_end) const;

  int64_t n_ = 0, k_ = 0;
  // Panels of kPanelWidth (16) output columns, each k × 16 contiguous (W transposed, zero-padded
  // to a whole panel): data_[p·k·16 + kk·16 + j] = W[p·16 + j][kk]. 32-byte aligned.
  std::shared_ptr<float> data_;
};

}  // namespace rldt
