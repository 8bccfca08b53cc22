// `rldt plot RUN_DIR... --out FILE [--metric M] [--x env_steps|seconds_wall]`: hands over to the
// plotting script python/rldt/plot.py (matplotlib), which needs no compiled extension.
#include "plot_command.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace rldt::cli {

namespace {
fs::path executable_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p.parent_path();
}

bool is_executable(const std::string& p) { return !p.empty() && access(p.c_str(), X_OK) == 0; }
}  // namespace

std::string plot_script_path() {
  if (const char* env = std::getenv("RLDT_PLOT_SCRIPT"); env && *env) return env;
  std::vector<fs::path> candidates;
  const fs::path exe = executable_dir();
  if (!exe.empty()) candidates.push_back(exe / ".." / "share" / "rldt" / "plot.py");  // installed
#ifdef RLDT_PLOT_SCRIPT_SOURCE
  candidates.emplace_back(RLDT_PLOT_SCRIPT_SOURCE);  // build tree
#endif
  for (const auto& c : candidates)
    if (fs::is_regular_file(c)) return fs::weakly_canonical(c).string();
  return {};
}

std::string plot_python() {
  if (const char* env = std::getenv("RLDT_PYTHON"); env && *env) return env;
#ifdef RLDT_PYTHON_EXECUTABLE
  if (is_executable(RLDT_PYTHON_EXECUTABLE)) return RLDT_PYTHON_EXECUTABLE;
#endif
  // Debian's interpreter sees python3-matplotlib; a python3 earlier on PATH may not.
  if (is_executable("/usr/bin/python3")) return "/usr/bin/python3";
  return "python3";
}

int run_plot(const std::vector<std::string>& args) {
  const std::string script = plot_script_path();
  if (script.empty()) {
    std::cerr << "rldt plot: cannot find plot.py (looked next to the installed rldt in ../share/rldt/ and in the "
                 "source tree); set RLDT_PLOT_SCRIPT=/path/to/python/rldt/plot.py\n";
    return 2;
  }
  const std::string python = plot_python();
  std::vector<std::string> argv_s = {python, script};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::cout.flush();
  execvp(python.c_str(), argv.data());
  std::cerr << "rldt plot: cannot run '" << python << "': " << std::strerror(errno)
            << " (set RLDT_PYTHON to a python3 with matplotlib)\n";
  return 2;
}

}  // namespace rldt::cli
