// Argument validation helpers. Every error names the argument (or key) that is
// wrong and what was expected, so a user can fix the call without reading code.
#pragma once

#include <torch/types.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace rldt {

// Thrown for bad arguments, shapes, dtypes and option values. Derives from
// std::invalid_argument so pybind11 maps it to Python's ValueError.
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// Throws ArgumentError with the concatenated message when `cond` is false.
template <typename... Args>
inline void check_arg(bool cond, const Args&... msg) {
  if (!cond) throw ArgumentError(detail::concat(msg...));
}

// Shape spec for check_shape: -1 matches any size.
std::string shape_to_string(at::IntArrayRef shape);

// Checks `t` is a defined float32 tensor of rank shape.size() whose sizes match
// `shape` (entries of -1 are free). `name` is the argument name in the message.
void check_tensor(const torch::Tensor& t, const std::string& name, std::vector<int64_t> shape);

// Checks every entry of `t` is finite; the message names the argument and the
// first offending flat index.
void check_finite(const torch::Tensor& t, const std::string& name);

// Returns `value` if it is one of `allowed`, else throws naming `name` and the
// valid choices.
const std::string& check_choice(const std::string& value, const std::string& name,
                                const std::vector<std::string>& allowed);

}  // namespace rldt
