// Datasets (D4RL layout): .npz round trips (stored and deflated), episode splitting, errors that
// name the file and key; the policy normaliser and its storage in FlowPolicy files.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "rldt/algo/flow_policy.hpp"
#include "rldt/data/dataset.hpp"
#include "rldt/util/check.hpp"

using namespace rldt;

namespace {

// A unique path per process (ctest runs tests in parallel; other checkouts share /tmp).
std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "rldt_" + std::to_string(::getpid()) + "_" + name;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

// 7 rows, O = 3, d = 2: episodes [0, 3) (terminal), [3, 5) (timeout), [5, 7) (unfinished).
Dataset small_dataset(bool next = true) {
  Dataset d;
  d.obs_dim = 3;
  d.action_dim = 2;
  for (int i = 0; i < 7; ++i) {
    for (int j = 0; j < 3; ++j) d.observations.push_back(0.25f * i - 0.1f * j);
    for (int j = 0; j < 2; ++j) d.actions.push_back(std::sin(1.0f * i + j));
    d.rewards.push_back(1.0f + i);
    d.terminals.push_back(i == 2);
    d.timeouts.push_back(i == 4);
    if (next)
      for (int j = 0; j < 3; ++j) d.next_observations.push_back(0.25f * (i + 1) - 0.1f * j);
  }
  return d;
}

void expect_equal(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.obs_dim, b.obs_dim);
  EXPECT_EQ(a.action_dim, b.action_dim);
  EXPECT_EQ(a.observations, b.observations);
  EXPECT_EQ(a.actions, b.actions);
  EXPECT_EQ(a.rewards, b.rewards);
  EXPECT_EQ(a.terminals, b.terminals);
  EXPECT_EQ(a.timeouts, b.timeouts);
  EXPECT_EQ(a.next_observations, b.next_observations);
}

NpyArray f32(std::vector<float> v, std::vector<int64_t> shape) {
  NpyArray a;
  a.dtype = "<f4";
  a.shape = std::move(shape);
  a.data.resize(v.size() * 4);
  std::memcpy(a.data.data(), v.data(), a.data.size());
  return a;
}

std::vector<std::pair<std::string, NpyArray>> arrays_of(const Dataset& d) {
  NpyArray term, tout;
  term.dtype = tout.dtype = "|b1";
  term.shape = tout.shape = {d.size()};
  term.data = d.terminals;
  tout.data = d.timeouts;
  return {{"observations", f32(d.observations, {d.size(), d.obs_dim})},
          {"actions", f32(d.actions, {d.size(), d.action_dim})},
          {"rewards", f32(d.rewards, {d.size()})},
          {"terminals", term},
          {"timeouts", tout}};
}

}  // namespace

TEST(Dataset, NpzRoundTripStoredAndDeflated) {
  for (bool compress : {false, true}) {
    for (bool next : {false, true}) {
      const auto d = small_dataset(next);
      const std::string path = temp_path("roundtrip.npz");
      save_dataset_npz(d, path, compress);
      EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
      expect_equal(load_dataset(path), d);
      std::remove(path.c_str());
    }
  }
}

TEST(Dataset, SameDataGivesIdenticalFiles) {
  const std::string a = temp_path("same_a.npz"), b = temp_path("same_b.npz");
  save_dataset_npz(small_dataset(), a);
  save_dataset_npz(small_dataset(), b);
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  const std::string ta((std::istreambuf_iterator<char>(fa)), {}), tb((std::istreambuf_iterator<char>(fb)), {});
  EXPECT_EQ(ta, tb);
  std::remove(a.c_str());
  std::remove(b.c_str());
}

TEST(Dataset, EpisodesEndAtTerminalsAndTimeouts) {
  auto d = small_dataset();
  const auto eps = d.episodes();
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[0], std::make_pair(int64_t{0}, int64_t{3}));
  EXPECT_EQ(eps[1], std::make_pair(int64_t{3}, int64_t{5}));
  EXPECT_EQ(eps[2], std::make_pair(int64_t{5}, int64_t{7}));  // trailing rows: an unfinished episode
  d.timeouts[6] = 1;
  EXPECT_EQ(d.episodes().size(), 3u);
}

TEST(Dataset, ErrorsNameTheFileAndKey) {
  const std::string path = temp_path("bad.npz");
  const auto d = small_dataset(false);
  // Missing key.
  auto arrays = arrays_of(d);
  arrays.pop_back();
  write_npz(path, arrays, true);
  auto msg = error_of([&] { load_dataset(path); });
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "key 'timeouts': missing");
  // Length mismatch.
  arrays = arrays_of(d);
  arrays[1].second = f32(std::vector<float>(12, 0.0f), {6, 2});
  write_npz(path, arrays, false);
  msg = error_of([&] { load_dataset(path); });
  EXPECT_HAS(msg, path + ": key 'actions': has shape (6, 2), expected (7, 2)");
  // NaN.
  arrays = arrays_of(d);
  auto r = d.rewards;
  r[4] = std::numeric_limits<float>::quiet_NaN();
  arrays[2].second = f32(r, {7});
  write_npz(path, arrays, false);
  msg = error_of([&] { load_dataset(path); });
  EXPECT_HAS(msg, "key 'rewards': row 4");
  EXPECT_HAS(msg, "finite");
  // Unknown dtype.
  arrays = arrays_of(d);
  arrays[2].second.dtype = "<c8";
  arrays[2].second.data.resize(7 * 8);
  write_npz(path, arrays, false);
  msg = error_of([&] { load_dataset(path); });
  EXPECT_HAS(msg, path + ": key 'rewards': unsupported dtype '<c8'");
  // Flags other than 0/1.
  arrays = arrays_of(d);
  arrays[3].second = f32(std::vector<float>(7, 0.5f), {7});
  write_npz(path, arrays, false);
  EXPECT_HAS(error_of([&] { load_dataset(path); }), "key 'terminals': row 0 holds 0.5");
  // Truncated file.
  save_dataset_npz(d, path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  msg = error_of([&] { load_dataset(path); });
  EXPECT_HAS(msg, path);
  EXPECT_THROW(load_dataset(path), DatasetError);
  std::remove(path.c_str());
  // Missing file, unknown extension, not an HDF5 file.
  EXPECT_HAS(error_of([] { load_dataset("no/such/file.npz"); }), "no/such/file.npz: the dataset file does not exist");
  EXPECT_HAS(error_of([] { load_dataset("data.csv"); }), "unknown dataset extension '.csv'");
  const std::string fake = temp_path("fake.hdf5");
  std::ofstream(fake) << "not hdf5";
  EXPECT_HAS(error_of([&] { load_dataset(fake); }), fake + ": not an HDF5 file");
  std::remove(fake.c_str());
}

TEST(Dataset, AppendAndValidate) {
  const auto d = small_dataset();
  Dataset e;
  e.append(d, 0, 3);
  e.append(d, 5, 7);
  EXPECT_EQ(e.size(), 5);
  EXPECT_EQ(e.episodes().size(), 2u);
  EXPECT_NO_THROW(e.validate());
  e.actions.pop_back();
  EXPECT_HAS(error_of([&] { e.validate("x"); }), "x: key 'actions'");
}

TEST(PolicyNormalizer, MapsDataBoundsToUnitBoxAndBack) {
  PolicyNormalizer n;
  n.obs = MinMaxNormalizer({-2.0, 0.0, 5.0}, {2.0, 10.0, 5.0});  // last coordinate constant
  n.action = MinMaxNormalizer({-0.5, 0.0}, {0.5, 2.0});
  auto o = torch::tensor({-2.0f, 10.0f, 5.0f, 0.0f, 5.0f, 5.0f}).view({2, 3});
  auto y = n.normalize_obs(o);
  EXPECT_TRUE(torch::allclose(y, torch::tensor({-1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({2, 3})));
  BoxSpec env_box{{-1.0, -1.0}, {1.0, 1.0}};
  auto a = torch::tensor({-1.0f, 1.0f, 0.0f, 3.0f}).view({2, 2});
  auto e = n.action_to_env(a, env_box);  // the stored bounds, not the env box; clipped to [-1, 1]
  EXPECT_TRUE(torch::allclose(e, torch::tensor({-0.5f, 2.0f, 0.0f, 2.0f}).view({2, 2})));
  EXPECT_TRUE(torch::allclose(n.action_from_env(e, env_box), a.clamp(-1, 1)));
  // Without stored bounds: identity observations, the env box for actions.
  PolicyNormalizer none;
  EXPECT_TRUE(torch::equal(none.normalize_obs(o), o));
  EXPECT_TRUE(torch::allclose(none.action_to_env(a, BoxSpec{{-3.0, -3.0}, {3.0, 3.0}}),
                              torch::tensor({-3.0f, 3.0f, 0.0f, 3.0f}).view({2, 2})));
  EXPECT_THROW(none.action_to_env(a, BoxSpec{{-INFINITY, 0.0}, {1.0, 1.0}}), ArgumentError);
  EXPECT_THROW(n.normalize_obs(torch::zeros({2, 4})), ArgumentError);
}

TEST(PolicyNormalizer, StoredInThePolicyFile) {
  FlowPolicyConfig c;
  c.obs_dim = 3;
  c.action_dim = 2;
  c.horizon_steps = 2;
  c.mlp_dims = {16, 16, 16};
  FlowPolicy p(c, 1);
  const std::string plain = temp_path("plain_policy.pt"), normed = temp_path("normed_policy.pt");
  p.save(plain);  // no normaliser: the format of files written before normalisers existed
  auto q = FlowPolicy::load(plain);
  EXPECT_FALSE(q.normalizer().has_obs());
  EXPECT_FALSE(q.normalizer().has_action());
  PolicyNormalizer n;
  n.obs = MinMaxNormalizer({-1.0, 0.1, 3.0}, {1.0, 0.7, 3.0});
  n.action = MinMaxNormalizer({-0.4, -1.0}, {0.9, 1.0});
  p.set_normalizer(n);
  p.save(normed);
  auto r = FlowPolicy::load(normed);
  ASSERT_TRUE(r.normalizer().has_obs() && r.normalizer().has_action());
  EXPECT_EQ(r.normalizer().obs->low(), n.obs->low());
  EXPECT_EQ(r.normalizer().obs->high(), n.obs->high());
  EXPECT_EQ(r.normalizer().action->low(), n.action->low());
  EXPECT_EQ(r.normalizer().action->high(), n.action->high());
  PolicyNormalizer wrong;
  wrong.obs = MinMaxNormalizer({0.0}, {1.0});
  EXPECT_THROW(p.set_normalizer(wrong), ArgumentError);
  std::remove(plain.c_str());
  std::remove(normed.c_str());
}
