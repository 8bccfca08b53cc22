// `rldt plot`: learning curves of run folders, drawn by python/rldt/plot.py (matplotlib).
#pragma once

#include <string>
#include <vector>

namespace rldt::cli {

// The plotting script: $RLDT_PLOT_SCRIPT, else <prefix>/share/rldt/plot.py next to an installed
// rldt, else the source tree's python/rldt/plot.py. "" if none exists.
std::string plot_script_path();
// The interpreter: $RLDT_PYTHON, else the one the project was built with, else /usr/bin/python3.
std::string plot_python();
// Replaces this process with `python plot.py args...`; returns 2 (with a message) if it cannot.
int run_plot(const std::vector<std::string>& args);

}  // namespace rldt::cli
