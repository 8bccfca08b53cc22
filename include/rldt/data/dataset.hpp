// Offline datasets in the D4RL layout: one row per environment step, episodes stored one after
// another. Read from numpy's .npz (stored or deflated members) and from HDF5 as D4RL ships it;
// written as .npz. docs/datasets.md describes the formats and the episode rule.
//
// Shapes: N rows (env steps), O = obs_dim, d = action_dim.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rldt {

// Thrown for unreadable, malformed or inconsistent dataset files. The message names the file and,
// where one is at fault, the key (e.g. "data/x.npz: key 'actions': has 999 rows, expected 1000").
class DatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One row per env step: the observation the action was taken in, the action as executed (env
// units), the reward received, and whether the episode ended at this step by the task
// (terminals) or by a time limit (timeouts).
struct Dataset {
  int64_t obs_dim = 0;
  int64_t action_dim = 0;
  std::vector<float> observations;       // (N, O)
  std::vector<float> actions;            // (N, d)
  std::vector<float> rewards;            // (N,)
  std::vector<uint8_t> terminals;        // (N,) 0/1
  std::vector<uint8_t> timeouts;         // (N,) 0/1
  std::vector<float> next_observations;  // (N, O), or empty when the file has none

  int64_t size() const { return static_cast<int64_t>(rewards.size()); }
  bool has_next_observations() const { return !next_observations.empty(); }

  // Episodes as [begin, end) row ranges: an episode ends after every row with terminals or
  // timeouts set; rows after the last such row form a final (unfinished) episode.
  std::vector<std::pair<int64_t, int64_t>> episodes() const;

  // Checks sizes agree with N, O and d (N >= 1), flags are 0/1 and every float is finite.
  // Throws DatasetError starting with `source` and naming the key.
  void validate(const std::string& source = "dataset") const;

  // Appends rows [begin, end) of `other` (same dims; next_observations on both or on neither).
  void append(const Dataset& other, int64_t begin, int64_t end);
};

// Reads `path` by its extension: .npz (numpy), .hdf5 / .h5 (D4RL). Required keys:
// observations (N, O), actions (N, d), rewards (N,) or (N, 1), terminals (N,), timeouts (N,);
// optional next_observations (N, O); other keys are ignored. Floats may be float32 or float64,
// flags bool, uint8 or any float/int 0/1 type. Throws DatasetError naming the file and key.
Dataset load_dataset(const std::string& path);
Dataset load_dataset_npz(const std::string& path);
Dataset load_dataset_hdf5(const std::string& path);

// Writes `data` as .npz (float32 arrays, bool flags; deflated with zlib when `compress`) through
// a temporary file and a rename. Validates first. Throws DatasetError naming the file.
void save_dataset_npz(const Dataset& data, const std::string& path, bool compress = true);

// ---------------------------------------------------------------------------------------------
// Lower level: one array of an .npz / .npy file.
struct NpyArray {
  std::string dtype;           // numpy descr, e.g. "<f4", "|b1"
  std::vector<int64_t> shape;  // C order
  std::vector<uint8_t> data;   // raw little-endian bytes, C order
  int64_t numel() const;
  // Values converted to double (float32/float64/bool/uint8/int8/int32/int64 descrs).
  std::vector<double> to_double() const;
};

// All members of an .npz file, by key (member name without ".npy"), in file order.
std::vector<std::pair<std::string, NpyArray>> read_npz(const std::string& path);
// Writes arrays as an .npz (atomically; deflated when `compress`).
void write_npz(const std::string& path, const std::vector<std::pair<std::string, NpyArray>>& arrays, bool compress);

}  // namespace rldt
