#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rldt/algo/svgd.hpp"
#include "rldt/util/check.hpp"
#include "rldt/util/rng.hpp"

using namespace rldt;

TEST(Svgd, Smoke) {
  auto g = make_generator(0);
  auto q = torch::randn({2, 4, 3}, g);
  auto r = svgd_direction(q, q, torch::zeros({2, 4, 3}), SvgdConfig{});
  EXPECT_EQ(r.phi.sizes(), q.sizes());
}
