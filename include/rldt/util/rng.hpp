// Explicit random generators: every random draw in rldt takes one, so a run is
// reproducible from its seed and a checkpoint can store the generator state.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace rldt {

// A CPU generator seeded with `seed`.
at::Generator make_generator(uint64_t seed);

// The generator's complete state (CPUGeneratorImpl: the mt19937 state and the cached normal
// samples) as a uint8 tensor, and its exact restore. set_generator_state throws
// std::runtime_error naming `what` if the state does not fit the generator.
at::Tensor generator_state(const at::Generator& gen);
void set_generator_state(at::Generator& gen, const at::Tensor& state, const std::string& what);

}  // namespace rldt
