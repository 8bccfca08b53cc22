#include "rldt/util/check.hpp"

#include <torch/torch.h>

namespace rldt {

std::string shape_to_string(at::IntArrayRef shape) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) os << ", ";
    if (shape[i] < 0)
      os << "*";
    else
      os << shape[i];
  }
  if (shape.size() == 1) os << ",";
  os << ")";
  return os.str();
}

void check_tensor(const torch::Tensor& t, const std::string& name, std::vector<int64_t> shape) {
  check_arg(t.defined(), "argument '", name, "' is undefined; expected a float32 tensor of shape ",
            shape_to_string(shape));
  check_arg(t.scalar_type() == torch::kFloat32, "argument '", name, "' has dtype ",
            c10::toString(t.scalar_type()), "; expected float32");
  bool ok = t.dim() == static_cast<int64_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i)
    ok = shape[i] < 0 || shape[i] == t.size(static_cast<int64_t>(i));
  check_arg(ok, "argument '", name, "' has shape ", shape_to_string(t.sizes()), "; expected ",
            shape_to_string(shape));
}

void check_finite(const torch::Tensor& t, const std::string& name) {
  auto bad = torch::logical_not(torch::isfinite(t));
  if (bad.any().item<bool>()) {
    auto idx = bad.flatten().nonzero()[0].item<int64_t>();
    throw ArgumentError(detail::concat("argument '", name, "' contains a non-finite value (",
                                       t.flatten()[idx].item<float>(), ") at flat index ", idx));
  }
}

const std::string& check_choice(const std::string& value, const std::string& name,
                                const std::vector<std::string>& allowed) {
  for (const auto& a : allowed)
    if (a == value) return value;
  std::string list;
  for (size_t i = 0; i < allowed.size(); ++i) list += (i ? ", " : "") + ("'" + allowed[i] + "'");
  throw ArgumentError(detail::concat("option '", name, "' = '", value, "' is not valid; expected one of ", list));
}

}  // namespace rldt
