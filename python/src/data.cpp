// Datasets (D4RL layout), pretraining and recording: rldt.load_dataset, rldt.save_dataset,
// rldt.pretrain, rldt.record.
#include <pybind11/stl/filesystem.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "common.hpp"
#include "rldt/data/dataset.hpp"
#include "rldt/train/pretrain.hpp"

namespace rldt_py {

namespace {

using rldt::Dataset;

py::array floats_out(const std::vector<float>& v, std::vector<py::ssize_t> shape) {
  py::array_t<float> a(shape);
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(float));
  return a;
}

py::array flags_out(const std::vector<uint8_t>& v) {
  py::array_t<bool> a(static_cast<py::ssize_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) a.mutable_data()[i] = v[i] != 0;
  return a;
}

py::dict to_dict(const Dataset& d) {
  const auto n = static_cast<py::ssize_t>(d.size());
  py::dict out;
  out["observations"] = floats_out(d.observations, {n, static_cast<py::ssize_t>(d.obs_dim)});
  out["actions"] = floats_out(d.actions, {n, static_cast<py::ssize_t>(d.action_dim)});
  out["rewards"] = floats_out(d.rewards, {n});
  out["terminals"] = flags_out(d.terminals);
  out["timeouts"] = flags_out(d.timeouts);
  if (d.has_next_observations())
    out["next_observations"] = floats_out(d.next_observations, {n, static_cast<py::ssize_t>(d.obs_dim)});
  return out;
}

std::vector<float> floats_in(const py::dict& data, const char* key, const ShapeSpec& spec) {
  if (!data.contains(key)) throw rldt::ArgumentError(std::string("argument 'data' lacks the key '") + key + "'");
  auto t = float_arg(data[key], std::string("data['") + key + "']", spec).contiguous();
  return {t.data_ptr<float>(), t.data_ptr<float>() + t.numel()};
}

std::vector<uint8_t> flags_in(const py::dict& data, const char* key, int64_t n) {
  if (!data.contains(key)) throw rldt::ArgumentError(std::string("argument 'data' lacks the key '") + key + "'");
  auto t = mask_arg(data[key], std::string("data['") + key + "']", {{n, "N"}});
  std::vector<uint8_t> out(static_cast<size_t>(n));
  const float* p = t.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    if (p[i] != 0.0f && p[i] != 1.0f)
      throw rldt::ArgumentError(std::string("argument 'data['") + key + "']' holds " + std::to_string(p[i]) +
                                " at row " + std::to_string(i) + "; flags must be 0 or 1");
    out[static_cast<size_t>(i)] = p[i] != 0.0f;
  }
  return out;
}

Dataset from_dict(const py::dict& data) {
  if (!data.contains("observations")) throw rldt::ArgumentError("argument 'data' lacks the key 'observations'");
  py::array obs = py::module_::import("numpy").attr("asarray")(data["observations"]);
  if (obs.ndim() != 2) throw rldt::ArgumentError("argument 'data['observations']' must have shape (N, O)");
  const int64_t n = obs.shape(0), o = obs.shape(1);
  Dataset d;
  d.obs_dim = o;
  d.observations = floats_in(data, "observations", {{n, "N"}, {o, "O"}});
  if (!data.contains("actions")) throw rldt::ArgumentError("argument 'data' lacks the key 'actions'");
  py::array act = py::module_::import("numpy").attr("asarray")(data["actions"]);
  if (act.ndim() != 2) throw rldt::ArgumentError("argument 'data['actions']' must have shape (N, d)");
  d.action_dim = act.shape(1);
  d.actions = floats_in(data, "actions", {{n, "N"}, {d.action_dim, "d"}});
  d.rewards = floats_in(data, "rewards", {{n, "N"}});
  d.terminals = flags_in(data, "terminals", n);
  d.timeouts = flags_in(data, "timeouts", n);
  if (data.contains("next_observations") && !data["next_observations"].is_none())
    d.next_observations = floats_in(data, "next_observations", {{n, "N"}, {o, "O"}});
  d.validate("argument 'data'");
  return d;
}

Dataset dataset_arg(const py::object& obj) {
  if (py::isinstance<py::dict>(obj)) return from_dict(obj.cast<py::dict>());
  if (py::isinstance<py::str>(obj) || py::hasattr(obj, "__fspath__")) {
    const auto path = py::module_::import("os").attr("fspath")(obj).cast<std::string>();
    py::gil_scoped_release nogil;
    return rldt::load_dataset(path);
  }
  throw rldt::ArgumentError("argument 'dataset' must be a path or a dict of arrays (see rldt.load_dataset)");
}

py::dict log_dict(const rldt::PretrainLog& l) {
  py::dict d;
  d["update"] = l.update;
  d["epoch"] = l.epoch;
  d["train_loss"] = l.train_loss;
  d["val_loss"] = l.val_loss;
  d["val_action_mse"] = l.val_action_mse;
  d["seconds"] = l.seconds;
  return d;
}

}  // namespace

void bind_data(py::module_& m) {
  // DatasetError (unreadable or inconsistent dataset files) → RuntimeError subclass.
  py::register_exception<rldt::DatasetError>(m, "DatasetError", PyExc_RuntimeError);

  m.def(
      "load_dataset",
      [](const std::filesystem::path& path) {
        Dataset d;
        {
          py::gil_scoped_release nogil;
          d = rldt::load_dataset(path.string());
        }
        return to_dict(d);
      },
      py::arg("path"),
      R"doc(Reads a D4RL-layout dataset (.npz, or .hdf5/.h5 as D4RL ships it) into a dict of numpy arrays:
observations (N, O) float32, actions (N, d) float32, rewards (N,) float32, terminals (N,) bool,
timeouts (N,) bool, and next_observations (N, O) float32 when the file has them. Raises
rldt.DatasetError (a RuntimeError) naming the file and key for missing keys, length mismatches,
unsupported dtypes or non-finite values.)doc");

  m.def(
      "save_dataset",
      [](const std::filesystem::path& path, const py::dict& data, bool compress) {
        Dataset d = from_dict(data);
        py::gil_scoped_release nogil;
        rldt::save_dataset_npz(d, path.string(), compress);
      },
      py::arg("path"), py::arg("data"), py::arg("compress") = true,
      R"doc(Writes a dict with the keys of load_dataset as .npz (float32 arrays, bool flags; deflated
unless compress=False), atomically. np.load reads the file.)doc");

  m.def(
      "dataset_episodes",
      [](const py::dict& data) {
        const Dataset d = from_dict(data);
        py::list out;
        for (const auto& [b, e] : d.episodes()) out.append(py::make_tuple(b, e));
        return out;
      },
      py::arg("data"),
      "Episodes of a dataset dict as [(begin, end), ...] row ranges: an episode ends after each row with "
      "terminals or timeouts set; trailing rows form a last, unfinished episode.");

  m.def(
      "pretrain",
      [](const py::object& dataset, const rldt::PretrainConfig& cfg, const rldt::FlowPolicyConfig& policy_cfg,
         const py::object& callback) {
        Dataset d = dataset_arg(dataset);
        rldt::PretrainConfig c = cfg;
        if (c.dataset.empty() && !py::isinstance<py::dict>(dataset))
          c.dataset = py::module_::import("os").attr("fspath")(dataset).cast<std::string>();
        py::list history;
        rldt::PretrainCallbacks cb;
        cb.on_log = [&](const rldt::PretrainLog& l) {
          py::gil_scoped_acquire gil;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();  // Ctrl-C
          py::dict row = log_dict(l);
          history.append(row);
          if (!callback.is_none()) {
            py::object r = callback(row);
            if (!r.is_none() && !r.cast<bool>()) return false;
          }
          return true;
        };
        rldt::PretrainResult r;
        {
          py::gil_scoped_release nogil;
          r = rldt::pretrain(d, c, policy_cfg, cb);
        }
        auto handle = std::make_shared<PolicyHandle>(r.policy, c.seed);
        py::dict info;
        info["history"] = history;
        info["train_episodes"] = r.train_episodes;
        info["val_episodes"] = r.val_episodes;
        info["train_chunks"] = r.train_chunks;
        info["val_chunks"] = r.val_chunks;
        info["stopped_early"] = r.stopped_early;
        return py::make_tuple(handle, info);
      },
      py::arg("dataset"), py::arg("config"), py::arg("policy_config"), py::arg("callback") = py::none(),
      R"doc(Behaviour-cloning (flow matching) pretraining of a new FlowPolicy on a dataset (a path or a
dict as from load_dataset). policy_config: the architecture (its obs_dim/action_dim are taken from
the data). callback(row) is called every config.log_freq updates with {update, epoch, train_loss,
val_loss, val_action_mse, seconds}; returning False stops early. Returns (policy, info): the
policy holds the EMA weights in every network and the dataset's min/max normaliser; info has
'history' (the rows), the episode/chunk counts of the train/validation split and 'stopped_early'.)doc");

  m.def(
      "record",
      [](std::shared_ptr<PolicyHandle> policy, const std::string& env, int64_t episodes, int64_t steps, double noise,
         bool deterministic, uint64_t seed, int64_t n_envs, int64_t env_threads, int64_t act_steps,
         const rldt::EnvOptions& env_options) {
        if (!policy) throw rldt::ArgumentError("argument 'policy' is None; expected a FlowPolicy");
        rldt::RecordConfig rc;
        rc.env = env;
        rc.env_options = env_options;
        rc.episodes = episodes;
        rc.steps = steps;
        rc.noise = noise;
        rc.deterministic = deterministic;
        rc.seed = seed;
        rc.n_envs = n_envs;
        rc.env_threads = env_threads;
        rc.act_steps = act_steps > 0 ? act_steps : policy->policy->config().horizon_steps;
        Dataset d;
        {
          py::gil_scoped_release nogil;
          auto lock = policy->usage.read();
          d = rldt::record_dataset(*policy->policy, rc);
        }
        return to_dict(d);
      },
      py::arg("policy"), py::arg("env"), py::arg("episodes") = 0, py::arg("steps") = 0, py::arg("noise") = 0.0,
      py::arg("deterministic") = false, py::arg("seed") = 0, py::arg("n_envs") = 1, py::arg("env_threads") = 1,
      py::arg("act_steps") = 0, py::arg("env_options") = rldt::EnvOptions{},
      R"doc(Rolls out `policy` (through its normaliser) in the native env `env` and returns a dataset dict
(as load_dataset) with one row per executed env step. Give exactly one of episodes (finished
episodes kept) or steps (rows kept; an episode cut by the budget ends with timeouts = True).
noise: sigma of Gaussian noise on policy actions in [-1, 1] units; act_steps: actions executed per
chunk (0: the policy's horizon_steps).)doc");
}

}  // namespace rldt_py
