#include "rldt/util/rng.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>

#include <mutex>
#include <stdexcept>

namespace rldt {

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

at::Tensor generator_state(const at::Generator& gen) {
  at::Generator handle = gen;  // shares the implementation; mutex() is not const
  std::lock_guard<std::mutex> lock(handle.mutex());
  return handle.get_state();
}

void set_generator_state(at::Generator& gen, const at::Tensor& state, const std::string& what) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(state);
  } catch (const c10::Error& e) {
    throw std::runtime_error(what + ": not a state of this generator: " + e.what_without_backtrace());
  }
}

}  // namespace rldt
