#include "rldt/util/rng.hpp"

#include <ATen/CPUGeneratorImpl.h>

namespace rldt {

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace rldt
