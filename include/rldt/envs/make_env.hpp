// Task registry: creating environments by Gymnasium id.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rldt/envs/env.hpp"
#include "rldt/envs/mujoco_env.hpp"
#include "rldt/envs/options.hpp"

namespace rldt {

// Valid task ids: "Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5",
// "InvertedPendulum-v5".
std::vector<std::string> env_names();

// Option names accepted by `task` (each task's config fields; see tasks/*.hpp).
std::vector<std::string> env_option_names(const std::string& task);

// Loads the task's model file (found with find_asset). Throws EnvError listing the valid ids.
std::shared_ptr<const MujocoModel> load_env_model(const std::string& task);

// Creates `task` with `options` applied to its config. With `model` (from load_env_model for the
// same task) the compiled model is shared instead of loaded again. Errors name the task and
// list the valid ids or option names.
std::unique_ptr<MujocoEnv> make_env(const std::string& task, const EnvOptions& options = {},
                                    std::shared_ptr<const MujocoModel> model = nullptr);

}  // namespace rldt
