// Normalisation wrappers: min-max maps, running mean/std against a direct computation, and
// save/load round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "rldt/envs/make_env.hpp"
#include "rldt/envs/wrappers.hpp"

using namespace rldt;

TEST(EnvsWrappers, MinMaxMapsActionBoxToUnitCubeAndBack) {
  auto env = make_env("InvertedPendulum-v5");  // action box [-3, 3]
  auto norm = MinMaxNormalizer::from_box(env->spec().action);
  std::vector<double> a = {-3.0, 0.0, 3.0, 1.5};
  norm.normalize(a);
  EXPECT_EQ(a, (std::vector<double>{-1.0, 0.0, 1.0, 0.5}));
  std::vector<double> y = {-2.0, 0.5, 1.0};
  norm.denormalize(y);  // clipped into the box first
  EXPECT_EQ(y, (std::vector<double>{-3.0, 1.5, 3.0}));
  MinMaxNormalizer constant({1.0, 0.0}, {1.0, 2.0});
  std::vector<double> x = {1.0, 2.0};
  constant.normalize(x);
  EXPECT_EQ(x, (std::vector<double>{0.0, 1.0}));
  EXPECT_THROW(MinMaxNormalizer::from_box(make_env("Hopper-v5")->spec().observation), EnvError);
  std::vector<double> bad(3);
  EXPECT_THROW(constant.normalize(bad), EnvError);
}

TEST(EnvsWrappers, MinMaxFitAndSaveLoadRoundTrip) {
  std::vector<double> data = {0.1, -5.0, 0.3, 7.0, -0.2, 1.0};  // [3, 2]
  auto norm = MinMaxNormalizer::fit(data, 2);
  EXPECT_EQ(norm.low(), (std::vector<double>{-0.2, -5.0}));
  EXPECT_EQ(norm.high(), (std::vector<double>{0.3, 7.0}));
  const std::string path = ::testing::TempDir() + "rldt_minmax.txt";
  norm.save(path);
  auto back = MinMaxNormalizer::load(path);
  EXPECT_EQ(back.low(), norm.low());
  EXPECT_EQ(back.high(), norm.high());
  std::remove(path.c_str());
  EXPECT_THROW(MinMaxNormalizer::load(path), EnvError);
}

TEST(EnvsWrappers, RunningMeanStdMatchesDirectStatistics) {
  std::mt19937_64 gen(0);
  std::normal_distribution<double> nd(3.0, 2.0);
  const size_t dim = 3;
  RunningMeanStd rms(dim, 1e-8, 10.0, /*initial_count=*/0.0);
  std::vector<double> all;
  for (int batch = 0; batch < 7; ++batch) {
    std::vector<double> b((batch + 1) * dim);
    for (auto& v : b) v = nd(gen);
    rms.update(b);
    all.insert(all.end(), b.begin(), b.end());
  }
  const size_t n = all.size() / dim;
  for (size_t i = 0; i < dim; ++i) {
    double m = 0, v = 0;
    for (size_t r = 0; r < n; ++r) m += all[r * dim + i];
    m /= n;
    for (size_t r = 0; r < n; ++r) v += (all[r * dim + i] - m) * (all[r * dim + i] - m);
    v /= n;
    EXPECT_NEAR(rms.mean()[i], m, 1e-12);
    EXPECT_NEAR(rms.var()[i], v, 1e-12);
  }
  EXPECT_DOUBLE_EQ(rms.count(), static_cast<double>(n));
  std::vector<double> x = {rms.mean()[0], rms.mean()[1] + std::sqrt(rms.var()[1]), 1e9};
  auto y = x;
  rms.normalize(y);
  EXPECT_NEAR(y[0], 0.0, 1e-12);
  EXPECT_NEAR(y[1], 1.0, 1e-6);
  EXPECT_EQ(y[2], 10.0);  // clipped
  const std::string path = ::testing::TempDir() + "rldt_rms.txt";
  rms.save(path);
  auto back = RunningMeanStd::load(path);
  EXPECT_EQ(back.mean(), rms.mean());
  EXPECT_EQ(back.var(), rms.var());
  EXPECT_EQ(back.count(), rms.count());
  std::remove(path.c_str());
  std::vector<double> nan_batch = {0.0, NAN, 0.0};
  EXPECT_THROW(rms.update(nan_batch), EnvError);
}
