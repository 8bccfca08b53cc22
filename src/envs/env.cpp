#include "rldt/envs/env.hpp"

namespace rldt {

Env::Reset Env::reset(std::optional<uint64_t> seed) {
  Reset r;
  r.obs.resize(spec().observation.size());
  r.info = reset_into(seed, r.obs);
  return r;
}

Env::Step Env::step(const std::vector<double>& action) {
  Step s;
  s.obs.resize(spec().observation.size());
  StepResult res = step_into(action, s.obs);
  s.reward = res.reward;
  s.terminated = res.terminated;
  s.truncated = res.truncated;
  s.info = res.info;
  return s;
}

}  // namespace rldt
