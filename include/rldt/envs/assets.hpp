// Locating the MJCF model files installed with rldt (no environment variable needed).
#pragma once

#include <string>
#include <vector>

namespace rldt {

// Directories searched for model files, in order:
//   1. <source tree>/assets/mjcf when this library is the one in its build tree;
//   2. <directory of the rldt_envs shared library>/<libdir-to-datadir>/rldt/mjcf (an install,
//      also when relocated; e.g. ../share/rldt/mjcf);
//   3. <install prefix>/share/rldt/mjcf as configured at build time;
//   4. <source tree>/assets/mjcf.
// RLDT_ASSET_DIR, when set, is searched before all of them (an override, never required).
std::vector<std::string> asset_search_dirs();

// Full path of the model file `file` (e.g. "hopper.xml"); throws EnvError listing the
// directories searched when it is found nowhere.
std::string find_asset(const std::string& file);

}  // namespace rldt
