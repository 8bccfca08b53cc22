// rldt._core.RunConfig and load_run_config: the YAML run configs of the `rldt` command
// (include/rldt/train/config_io.hpp), for notebooks and scripts.
#include <torch/torch.h>

#include "common.hpp"
#include "rldt/train/config_io.hpp"

namespace rldt_py {

void bind_run_config(py::module_& m) {
  py::class_<rldt::RunConfig>(m, "RunConfig", R"doc(A run configuration as the `rldt` command reads it.

trainer: RldtTrainerConfig; base_policy: FlowPolicy file to fine-tune ("" = none); pretrain:
PretrainConfig (`rldt pretrain`, rldt.pretrain); source: the file it came from. Load one with rldt.load_config(path, overrides); to_yaml() writes text that loads
back to an identical config.)doc")
      .def(py::init([](const rldt::RldtTrainerConfig& trainer, std::string base_policy) {
             rldt::RunConfig c;
             c.trainer = trainer;
             c.base_policy = std::move(base_policy);
             return c;
           }),
           py::arg("trainer") = rldt::RldtTrainerConfig{}, py::arg("base_policy") = "")
      .def_readwrite("trainer", &rldt::RunConfig::trainer)
      .def_readwrite("base_policy", &rldt::RunConfig::base_policy)
      .def_readwrite("pretrain", &rldt::RunConfig::pretrain, "PretrainConfig (the `pretrain:` section)")
      .def_readonly("source", &rldt::RunConfig::source)
      .def_property_readonly(
          "explicit_keys",
          [](const rldt::RunConfig& c) {
            std::vector<std::string> keys;
            for (const auto& kv : c.origins) keys.push_back(kv.first);
            return keys;
          },
          "Key paths the file or an override set explicitly (sorted); the rest hold their defaults.")
      .def(
          "to_yaml", [](const rldt::RunConfig& c, const std::string& header) { return rldt::to_yaml(c, header); },
          py::arg("header") = "", "YAML text (every key) that rldt.load_config reads back to this config.")
      .def(
          "validate", [](const rldt::RunConfig& c) { rldt::validate_run_config(c); },
          "Raises rldt.ArgumentError naming the key (and its origin) of the first invalid value.")
      .def("__repr__", [](const rldt::RunConfig& c) {
        return "RunConfig(source='" + c.source + "', env='" + c.trainer.env + "', base_policy='" + c.base_policy + "')";
      });
  m.def(
      "load_run_config",
      [](const std::string& path, const std::vector<std::string>& overrides) {
        return rldt::load_run_config(path, overrides);
      },
      py::arg("path"), py::arg("overrides") = std::vector<std::string>{},
      "Reads a YAML run config, applies overrides 'key.path=value' in order and validates; errors "
      "(rldt.ArgumentError) name the file or override and the key.");
}

}  // namespace rldt_py
