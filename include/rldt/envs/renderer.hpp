// Offscreen RGB frames of a MuJoCo task: MuJoCo's renderer on an OSMesa (software OpenGL) context,
// so it works without a display or GPU. Built when CMake finds OSMesa (Debian libosmesa6-dev);
// otherwise constructing a Renderer throws EnvError saying so (renderer_available() is false).
//
//   rldt::Renderer r(*env, /*width=*/480, /*height=*/480);
//   std::vector<uint8_t> rgb = r.render(*env);   // [height, width, 3], top row first
//   rldt::write_png("frame.png", rgb, r.width(), r.height());
//
// The renderer copies the env's mjData into its own before drawing, so the env is only read.
// An OSMesa context is current on one thread at a time: use a Renderer from one thread (several
// renderers may live side by side; each makes its own context current while it draws).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rldt/envs/mujoco_env.hpp"

namespace rldt {

// True when the library was built with OSMesa rendering.
bool renderer_available();

class Renderer {
 public:
  // A renderer for `env`'s model producing width x height frames (1 <= size <= 4096).
  // camera = -1: a free camera that tracks the model's first body (the torso of the locomotion
  // tasks) from the side; camera >= 0: the model's camera with that index.
  Renderer(const MujocoEnv& env, int width, int height, int camera = -1);
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  int width() const;
  int height() const;

  // The current state of `env` (same model as at construction) as RGB bytes [height, width, 3],
  // row-major, top row first.
  std::vector<uint8_t> render(const MujocoEnv& env);
  // Same, into rgb [height * width * 3] (no allocation after the first call).
  void render_into(const MujocoEnv& env, Span<uint8_t> rgb);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes rgb [height, width, 3] (top row first) as an 8-bit RGB PNG. Throws EnvError naming the
// path if it cannot be written or the size does not match.
void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int width, int height);

}  // namespace rldt
