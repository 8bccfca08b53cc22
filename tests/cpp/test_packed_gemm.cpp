// PackedWeights (util/packed_gemm.hpp): the product against a double-precision reference for
// shapes around the kernels' blocks (6 rows × 16 columns; a last block of 1-3 rows × 32
// columns), bias and accumulation, row independence (a row's bits do not depend on the batch it
// is in), both kernel sets, and the argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "expect_error.hpp"
#include "rldt/util/packed_gemm.hpp"

using namespace rldt;

namespace {

std::vector<float> randn(size_t n, std::mt19937& g) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// y = x · Wᵀ (+ bias) in double: x (m × ldx), W (n × k), y (m × n).
std::vector<double> reference(const std::vector<float>& x, int64_t m, int64_t ldx, const std::vector<float>& w,
                              int64_t n, int64_t k, const float* bias) {
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = bias ? bias[j] : 0.0;
      for (int64_t kk = 0; kk < k; ++kk) s += static_cast<double>(x[i * ldx + kk]) * w[j * k + kk];
      y[i * n + j] = s;
    }
  return y;
}

}  // namespace

TEST(PackedWeights, MultipliesLikeTheReferenceForEveryBlockShape) {
  std::mt19937 g(0);
  for (bool portable : {false, true}) {
    for (int64_t n : {1, 12, 16, 17, 40}) {
      for (int64_t k : {1, 11, 64}) {
        const auto w = randn(static_cast<size_t>(n * k), g), bias = randn(static_cast<size_t>(n), g);
        const PackedWeights p(w.data(), n, k);
        EXPECT_EQ(p.out(), n);
        EXPECT_EQ(p.in(), k);
        for (int64_t m : {0, 1, 2, 3, 5, 6, 7, 9, 13, 32}) {
          SCOPED_TRACE(::testing::Message()
                       << (portable ? "portable" : "best") << " m=" << m << " n=" << n << " k=" << k);
          const int64_t ldx = k + 3, ldy = n + 2;  // strided rows on both sides
          const auto x = randn(static_cast<size_t>(std::max<int64_t>(m, 1) * ldx), g);
          const auto ref = reference(x, m, ldx, w, n, k, bias.data());
          std::vector<float> y(static_cast<size_t>(std::max<int64_t>(m, 1) * ldy), 7.f);
          if (portable) {
            p.multiply_portable(x.data(), m, ldx, y.data(), ldy, bias.data());
          } else {
            p.multiply(x.data(), m, ldx, y.data(), ldy, bias.data());
          }
          // Float sums of k products of unit normals: error ~ sqrt(k) ulps of the partial sums.
          const double tol = 1e-5 * (1.0 + std::sqrt(static_cast<double>(k))) * 4;
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) ASSERT_NEAR(y[i * ldy + j], ref[i * n + j], tol) << i << "," << j;
            for (int64_t j = n; j < ldy; ++j) ASSERT_EQ(y[i * ldy + j], 7.f) << "wrote past column n";
          }
          // Accumulating adds the same product (no bias) to what y holds.
          if (m > 0) {
            std::vector<float> acc(y);
            if (portable) {
              p.multiply_portable(x.data(), m, ldx, acc.data(), ldy, nullptr, /*accumulate=*/true);
            } else {
              p.multiply(x.data(), m, ldx, acc.data(), ldy, nullptr, /*accumulate=*/true);
            }
            const auto plain = reference(x, m, ldx, w, n, k, nullptr);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j)
                ASSERT_NEAR(acc[i * ldy + j], y[i * ldy + j] + plain[i * n + j], 2 * tol) << i << "," << j;
          }
        }
      }
    }
  }
}

TEST(PackedWeights, ARowsResultDoesNotDependOnTheBatch) {
  std::mt19937 g(1);
  const int64_t n = 40, k = 70, m = 23;
  const auto w = randn(static_cast<size_t>(n * k), g), x = randn(static_cast<size_t>(m * k), g);
  const PackedWeights p(w.data(), n, k);
  std::vector<float> all(static_cast<size_t>(m * n));
  p.multiply(x.data(), m, k, all.data(), n);
  // Every split of the rows (1, 2, 5, 6, 9 rows at a time) gives the same bits.
  for (int64_t chunk : {1, 2, 5, 6, 9}) {
    std::vector<float> parts(all.size());
    for (int64_t i = 0; i < m; i += chunk)
      p.multiply(x.data() + i * k, std::min(chunk, m - i), k, parts.data() + i * n, n);
    EXPECT_EQ(parts, all) << "rows " << chunk << " at a time";
  }
}

TEST(PackedWeights, AColumnRangeGetsTheBitsOfTheWholeProductAndTouchesNothingElse) {
  std::mt19937 g(2);
  const int64_t n = 40, k = 33, m = 7;  // panels [0, 16), [16, 32), [32, 40)
  const auto w = randn(static_cast<size_t>(n * k), g), x = randn(static_cast<size_t>(m * k), g),
             bias = randn(static_cast<size_t>(n), g);
  const PackedWeights p(w.data(), n, k);
  std::vector<float> all(static_cast<size_t>(m * n));
  p.multiply(x.data(), m, k, all.data(), n, bias.data());
  for (auto [j0, j1] : {std::pair<int64_t, int64_t>{0, 16}, {16, 40}, {32, 40}, {0, 40}, {16, 16}}) {
    std::vector<float> part(all.size(), 7.f);
    p.multiply_columns(x.data(), m, k, part.data(), n, j0, j1, bias.data());
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(part[i * n + j], j >= j0 && j < j1 ? all[i * n + j] : 7.f)
            << "columns [" << j0 << ", " << j1 << "), row " << i << ", column " << j;
  }
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto [j0, j1] : {std::pair<int64_t, int64_t>{8, 16}, {0, 24}, {16, 48}, {-16, 16}, {32, 16}})
    expect_argument_error([&] { p.multiply_columns(x.data(), m, k, y.data(), n, j0, j1); }, "whole panels of 16");
}

TEST(PackedWeights, ErrorsNameTheProblem) {
  std::vector<float> w(6, 1.f), x(6, 1.f), y(6);
  expect_argument_error([&] { PackedWeights(w.data(), 0, 3); }, "at least 1 x 1");
  expect_argument_error([&] { PackedWeights(nullptr, 2, 3); }, "null");
  expect_argument_error([&] { PackedWeights().multiply(x.data(), 1, 3, y.data(), 2); }, "no weights");
  const PackedWeights p(w.data(), 2, 3);
  expect_argument_error([&] { p.multiply(x.data(), 1, 2, y.data(), 2); }, "ldx >= 3");
  expect_argument_error([&] { p.multiply(x.data(), 1, 3, y.data(), 1); }, "ldy >= 2");
  expect_argument_error([&] { p.multiply(x.data(), -1, 3, y.data(), 2); }, "m >= 0");
}
