// Named numeric options for environments ("ctrl_cost_weight" = 1e-3, "max_episode_steps" = 500).
// Each task binds its config fields to names; unknown names and wrong values are errors that list
// the valid names.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace rldt {

// option name -> value; booleans are 0/1, integers must be integral.
using EnvOptions = std::map<std::string, double>;

// Binds option names to config fields and applies an EnvOptions map to them.
class OptionBinder {
 public:
  explicit OptionBinder(std::string owner) : owner_(std::move(owner)) {}
  OptionBinder& add(const std::string& name, double& field);
  OptionBinder& add(const std::string& name, int& field);
  OptionBinder& add(const std::string& name, bool& field);
  // Sets every bound field named in `options`; throws EnvError naming the owner and key for an
  // unknown key (listing the valid ones) or a value of the wrong kind.
  void apply(const EnvOptions& options) const;
  std::vector<std::string> names() const;

 private:
  enum class Kind { kDouble, kInt, kBool };
  struct Entry {
    std::string name;
    Kind kind;
    void* field;
  };
  std::string owner_;
  std::vector<Entry> entries_;
};

}  // namespace rldt
