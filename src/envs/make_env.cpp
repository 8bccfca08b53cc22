#include "rldt/envs/make_env.hpp"

#include <functional>

#include "rldt/envs/assets.hpp"
#include "rldt/envs/tasks/ant.hpp"
#include "rldt/envs/tasks/half_cheetah.hpp"
#include "rldt/envs/tasks/hopper.hpp"
#include "rldt/envs/tasks/humanoid.hpp"
#include "rldt/envs/tasks/inverted_pendulum.hpp"
#include "rldt/envs/tasks/walker2d.hpp"

namespace rldt {
namespace {

struct Task {
  const char* name;
  const char* model_file;
  std::function<std::unique_ptr<MujocoEnv>(std::shared_ptr<const MujocoModel>, const EnvOptions&)>
      create;
  std::function<std::vector<std::string>()> option_names;
};

template <typename EnvT, typename ConfigT>
Task task() {
  return Task{EnvT::kName, EnvT::kModelFile,
              [](std::shared_ptr<const MujocoModel> model, const EnvOptions& options) {
                ConfigT cfg;
                OptionBinder binder(EnvT::kName);
                cfg.bind(binder);
                binder.apply(options);
                return std::unique_ptr<MujocoEnv>(new EnvT(std::move(model), cfg));
              },
              [] {
                ConfigT cfg;
                OptionBinder binder(EnvT::kName);
                cfg.bind(binder);
                return binder.names();
              }};
}

const std::vector<Task>& tasks() {
  static const std::vector<Task> all = {
      task<HopperEnv, HopperConfig>(),
      task<Walker2dEnv, Walker2dConfig>(),
      task<HalfCheetahEnv, HalfCheetahConfig>(),
      task<AntEnv, AntConfig>(),
      task<HumanoidEnv, HumanoidConfig>(),
      task<InvertedPendulumEnv, InvertedPendulumConfig>(),
  };
  return all;
}

const Task& find_task(const std::string& name) {
  for (const auto& t : tasks())
    if (name == t.name) return t;
  std::string msg = "unknown environment '" + name + "'; valid ones: ";
  for (size_t i = 0; i < tasks().size(); ++i) msg += (i ? ", " : "") + std::string(tasks()[i].name);
  throw EnvError(msg);
}

}  // namespace

std::vector<std::string> env_names() {
  std::vector<std::string> out;
  for (const auto& t : tasks()) out.emplace_back(t.name);
  return out;
}

std::vector<std::string> env_option_names(const std::string& task) {
  return find_task(task).option_names();
}

std::shared_ptr<const MujocoModel> load_env_model(const std::string& task) {
  return MujocoModel::load(find_asset(find_task(task).model_file));
}

std::unique_ptr<MujocoEnv> make_env(const std::string& task, const EnvOptions& options,
                                    std::shared_ptr<const MujocoModel> model) {
  const Task& t = find_task(task);
  if (!model) model = MujocoModel::load(find_asset(t.model_file));
  return t.create(std::move(model), options);
}

}  // namespace rldt
