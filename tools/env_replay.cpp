// rldt_env_replay: one-step replays for the alignment check against Gymnasium
// (tests/python/test_envs_gymnasium_alignment.py drives it).
//
// Reads cases from stdin, one per line:
//   <task> <nq> <qpos x nq> <nv> <qvel x nv> <nu> <action x nu>
// For each case: reset(seed 0), set_state(qpos, qvel), step(action); writes one line:
//   <obs_dim> <obs...> <reward> <terminated> <x_velocity> <reward_forward> <reward_ctrl>
//   <reward_contact> <reward_survive>
// Numbers are printed with 17 significant digits. Errors go to stderr with the line number.
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "rldt/envs/make_env.hpp"

namespace {

std::vector<double> read_block(std::istringstream& in, const char* what, int line) {
  int n = -1;
  if (!(in >> n) || n < 0) throw std::runtime_error("line " + std::to_string(line) + ": bad " + what + " size");
  std::vector<double> v(n);
  for (auto& x : v)
    if (!(in >> x)) throw std::runtime_error("line " + std::to_string(line) + ": short " + what);
  return v;
}

}  // namespace

int main() {
  std::map<std::string, std::unique_ptr<rldt::MujocoEnv>> envs;
  std::string text;
  int line = 0;
  try {
    while (std::getline(std::cin, text)) {
      ++line;
      if (text.empty()) continue;
      std::istringstream in(text);
      std::string task;
      in >> task;
      auto& env = envs[task];
      if (!env) env = rldt::make_env(task);
      auto qpos = read_block(in, "qpos", line), qvel = read_block(in, "qvel", line);
      auto action = read_block(in, "action", line);
      env->reset(0);
      env->set_state(qpos, qvel);
      auto s = env->step(action);
      std::printf("%zu", s.obs.size());
      for (double v : s.obs) std::printf(" %.17g", v);
      const auto& i = s.info;
      std::printf(" %.17g %d %.17g %.17g %.17g %.17g %.17g\n", s.reward, int(s.terminated), i.x_velocity,
                  i.reward_forward, i.reward_ctrl, i.reward_contact, i.reward_survive);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rldt_env_replay: %s\n", e.what());
    return 1;
  }
  return 0;
}
