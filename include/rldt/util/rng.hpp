// Explicit random generators: every random draw in rldt takes one, so a run is
// reproducible from its seed and a checkpoint can store the generator state.
#pragma once

#include <ATen/core/Generator.h>

#include <cstdint>

namespace rldt {

// A CPU generator seeded with `seed`.
at::Generator make_generator(uint64_t seed);

}  // namespace rldt
