#include "rldt/envs/options.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "rldt/envs/env.hpp"

namespace rldt {

OptionBinder& OptionBinder::add(const std::string& name, double& field) {
  entries_.push_back({name, Kind::kDouble, &field});
  return *this;
}
OptionBinder& OptionBinder::add(const std::string& name, int& field) {
  entries_.push_back({name, Kind::kInt, &field});
  return *this;
}
OptionBinder& OptionBinder::add(const std::string& name, bool& field) {
  entries_.push_back({name, Kind::kBool, &field});
  return *this;
}

std::vector<std::string> OptionBinder::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

void OptionBinder::apply(const EnvOptions& options) const {
  for (const auto& [key, value] : options) {
    const Entry* found = nullptr;
    for (const auto& e : entries_)
      if (e.name == key) found = &e;
    std::ostringstream err;
    err << owner_ << ": option '" << key << "' = " << value;
    if (!found) {
      err << " is unknown; valid options: ";
      for (size_t i = 0; i < entries_.size(); ++i) err << (i ? ", " : "") << entries_[i].name;
      throw EnvError(err.str());
    }
    if (std::isnan(value)) throw EnvError(err.str() + " is NaN");
    switch (found->kind) {
      case Kind::kDouble:
        *static_cast<double*>(found->field) = value;
        break;
      case Kind::kInt:
        if (value != std::floor(value) || std::fabs(value) > std::numeric_limits<int>::max())
          throw EnvError(err.str() + " must be an integer");
        *static_cast<int*>(found->field) = static_cast<int>(value);
        break;
      case Kind::kBool:
        if (value != 0.0 && value != 1.0) throw EnvError(err.str() + " must be 0 or 1 (a boolean)");
        *static_cast<bool*>(found->field) = value != 0.0;
        break;
    }
  }
}

}  // namespace rldt
