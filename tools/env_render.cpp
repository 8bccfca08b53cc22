// rldt_env_render: renders an episode of a task under random actions to a PNG image sequence.
// Usage: rldt_env_render TASK OUT_DIR [frames=30] [width=320] [height=240] [seed=0]
// Writes OUT_DIR/frame_0000.png ... (OUT_DIR is created if missing). Exits 1 if a frame is blank (all one
// colour), so ctest can use it as the C++ rendering check.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "rldt/envs/make_env.hpp"
#include "rldt/envs/renderer.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TASK OUT_DIR [frames=30] [width=320] [height=240] [seed=0]\n", argv[0]);
    return 2;
  }
  const std::string task = argv[1], dir = argv[2];
  const int frames = argc > 3 ? std::atoi(argv[3]) : 30;
  const int width = argc > 4 ? std::atoi(argv[4]) : 320;
  const int height = argc > 5 ? std::atoi(argv[5]) : 240;
  const uint64_t seed = argc > 6 ? std::strtoull(argv[6], nullptr, 10) : 0;
  try {
    std::filesystem::create_directories(dir);
    auto env = rldt::make_env(task);
    rldt::Renderer renderer(*env, width, height);
    std::mt19937_64 gen(seed);
    const auto& act = env->spec().action;
    std::vector<double> a(act.size());
    env->reset(seed);
    for (int k = 0; k < frames; ++k) {
      std::vector<uint8_t> rgb = renderer.render(*env);
      bool blank = true;
      for (size_t i = 3; i < rgb.size() && blank; ++i) blank = rgb[i] == rgb[i % 3];
      char name[64];
      std::snprintf(name, sizeof name, "/frame_%04d.png", k);
      rldt::write_png(dir + name, rgb, width, height);
      if (blank) {
        std::fprintf(stderr, "%s: frame %d is blank\n", task.c_str(), k);
        return 1;
      }
      for (size_t j = 0; j < a.size(); ++j)
        a[j] = std::uniform_real_distribution<double>(act.low[j], act.high[j])(gen);
      auto s = env->step(a);
      if (s.terminated || s.truncated) env->reset();
    }
    std::printf("%s: wrote %d frames of %dx%d to %s\n", task.c_str(), frames, width, height, dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
