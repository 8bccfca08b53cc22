#include "rldt/envs/assets.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "rldt/envs/env.hpp"

// Set by CMake (see the envs block of the top-level CMakeLists.txt).
#ifndef RLDT_SOURCE_ASSET_DIR
#error "RLDT_SOURCE_ASSET_DIR must be defined by the build"
#endif
#ifndef RLDT_INSTALL_ASSET_DIR
#error "RLDT_INSTALL_ASSET_DIR must be defined by the build"
#endif
#ifndef RLDT_LIB_TO_ASSET_DIR
#error "RLDT_LIB_TO_ASSET_DIR must be defined by the build"
#endif
#ifndef RLDT_BUILD_LIBRARY_DIR
#error "RLDT_BUILD_LIBRARY_DIR must be defined by the build"
#endif

namespace rldt {
namespace fs = std::filesystem;

namespace {

// Directory holding the shared library this function is linked into ("" if unknown).
fs::path this_library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&this_library_dir), &info) == 0 || !info.dli_fname) return {};
  std::error_code ec;
  fs::path p = fs::canonical(info.dli_fname, ec);
  return ec ? fs::path() : p.parent_path();
}

bool same_dir(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return !a.empty() && fs::equivalent(a, b, ec) && !ec;
}

}  // namespace

std::vector<std::string> asset_search_dirs() {
  std::vector<std::string> dirs;
  auto add = [&dirs](const std::string& d) {
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  };
  if (const char* env = std::getenv("RLDT_ASSET_DIR"); env && *env) add(env);
  const fs::path lib_dir = this_library_dir();
  if (same_dir(lib_dir, RLDT_BUILD_LIBRARY_DIR)) add(RLDT_SOURCE_ASSET_DIR);
  if (!lib_dir.empty()) add((lib_dir / RLDT_LIB_TO_ASSET_DIR).lexically_normal().string());
  add(RLDT_INSTALL_ASSET_DIR);
  add(RLDT_SOURCE_ASSET_DIR);
  return dirs;
}

std::string find_asset(const std::string& file) {
  const auto dirs = asset_search_dirs();
  for (const auto& d : dirs) {
    std::error_code ec;
    const fs::path p = fs::path(d) / file;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  std::string msg = "model file '" + file + "' not found; searched:";
  for (const auto& d : dirs) msg += " " + d;
  throw EnvError(msg);
}

}  // namespace rldt
