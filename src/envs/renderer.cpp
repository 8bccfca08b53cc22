#include "rldt/envs/renderer.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#ifdef RLDT_HAVE_OSMESA
#include <GL/osmesa.h>
#include <dlfcn.h>
#endif
#ifdef RLDT_HAVE_ZLIB
#include <zlib.h>
#endif

namespace rldt {

namespace {

void check_size(int width, int height, const std::string& what) {
  if (width < 1 || height < 1 || width > 4096 || height > 4096)
    throw EnvError(what + ": frame size " + std::to_string(width) + "x" + std::to_string(height) +
                   " must be within 1..4096 in each dimension");
}

}  // namespace

#ifdef RLDT_HAVE_OSMESA

bool renderer_available() { return true; }

struct Renderer::Impl {
  int width = 0, height = 0, camera_id = -1;
  std::string label;             // task name, for error messages
  mjModel* model = nullptr;      // own copy: the offscreen buffer size lives in the model
  mjData* data = nullptr;        // the env's state is copied here before drawing
  OSMesaContext ctx = nullptr;
  std::vector<unsigned char> gl_buffer;  // OSMesa's default framebuffer (RGBA), unused otherwise
  std::vector<unsigned char> flipped;    // [H, W, 3] as read (bottom row first)
  mjvScene scene;
  mjvCamera cam;
  mjvOption opt;
  mjrContext con;
  bool scene_made = false, con_made = false;

  void make_current() {
    if (!OSMesaMakeCurrent(ctx, gl_buffer.data(), GL_UNSIGNED_BYTE, width, height))
      throw EnvError(label + ": OSMesaMakeCurrent failed");
  }

  ~Impl() {
    if (ctx) {
      if (con_made) {
        OSMesaMakeCurrent(ctx, gl_buffer.data(), GL_UNSIGNED_BYTE, width, height);
        mjr_freeContext(&con);
      }
      OSMesaDestroyContext(ctx);
    }
    if (scene_made) mjv_freeScene(&scene);
    if (data) mj_deleteData(data);
    if (model) mj_deleteModel(model);
  }
};

Renderer::Renderer(const MujocoEnv& env, int width, int height, int camera) : impl_(std::make_unique<Impl>()) {
  Impl& r = *impl_;
  r.label = "Renderer(" + env.spec().name + ")";
  check_size(width, height, r.label);
  const mjModel* m = env.model();
  if (camera < -1 || camera >= m->ncam)
    throw EnvError(r.label + ": camera " + std::to_string(camera) + " out of range [-1, " +
                   std::to_string(m->ncam) + ")");
  r.width = width;
  r.height = height;
  r.camera_id = camera;
  // MuJoCo's GL loader looks the OSMesa entry points up in the global symbol scope; when this
  // library was loaded locally (e.g. by a Python extension) OSMesa is not there yet.
  if (!dlopen("libOSMesa.so.8", RTLD_NOW | RTLD_GLOBAL) && !dlopen("libOSMesa.so", RTLD_NOW | RTLD_GLOBAL))
    throw EnvError(r.label + ": cannot load libOSMesa (" + std::string(dlerror()) + ")");

  r.model = mj_copyModel(nullptr, m);
  r.model->vis.global.offwidth = width;
  r.model->vis.global.offheight = height;
  r.data = mj_makeData(r.model);

  r.ctx = OSMesaCreateContextExt(OSMESA_RGBA, 24, 8, 8, nullptr);
  if (!r.ctx) throw EnvError(r.label + ": OSMesaCreateContextExt failed (no software OpenGL?)");
  r.gl_buffer.assign(static_cast<size_t>(width) * height * 4, 0);
  r.make_current();

  mjv_defaultCamera(&r.cam);
  mjv_defaultOption(&r.opt);
  mjv_defaultScene(&r.scene);
  mjr_defaultContext(&r.con);
  mjv_makeScene(r.model, &r.scene, 2000);
  r.scene_made = true;
  mjr_makeContext(r.model, &r.con, mjFONTSCALE_150);
  r.con_made = true;
  mjr_setBuffer(mjFB_OFFSCREEN, &r.con);
  if (r.con.currentBuffer != mjFB_OFFSCREEN)
    throw EnvError(r.label + ": MuJoCo could not select its offscreen framebuffer");

  if (camera >= 0) {
    r.cam.type = mjCAMERA_FIXED;
    r.cam.fixedcamid = camera;
  } else {
    // Free camera aimed at the torso's subtree centre of mass in every frame (set in render_into;
    // MuJoCo's tracking camera filters its motion, so its frames would depend on earlier calls).
    mjv_defaultFreeCamera(r.model, &r.cam);
    r.cam.azimuth = 90.0;
    r.cam.elevation = -20.0;
    // Gymnasium's default cameras stand 2-4 m away; the extent of models with a large floor
    // would put the camera much further.
    r.cam.distance = std::min(1.2 * r.model->stat.extent, 4.0);
  }
  r.flipped.assign(static_cast<size_t>(width) * height * 3, 0);
}

Renderer::~Renderer() = default;

int Renderer::width() const { return impl_->width; }
int Renderer::height() const { return impl_->height; }

std::vector<uint8_t> Renderer::render(const MujocoEnv& env) {
  std::vector<uint8_t> rgb(static_cast<size_t>(impl_->width) * impl_->height * 3);
  render_into(env, rgb);
  return rgb;
}

void Renderer::render_into(const MujocoEnv& env, Span<uint8_t> rgb) {
  Impl& r = *impl_;
  const mjModel* m = env.model();
  if (m->nq != r.model->nq || m->nv != r.model->nv || m->nbody != r.model->nbody || m->ngeom != r.model->ngeom)
    throw EnvError(r.label + ": env " + env.label() + " (" + env.spec().name + ") has a different model");
  const size_t row = static_cast<size_t>(r.width) * 3;
  if (rgb.size() != row * r.height)
    throw EnvError(r.label + ": rgb buffer has " + std::to_string(rgb.size()) + " bytes; expected " +
                   std::to_string(row * r.height) + " = height x width x 3");
  mj_copyData(r.data, r.model, env.data());
  if (r.camera_id < 0 && r.model->nbody > 1)  // follow the first body (the torso), from the side
    for (int k = 0; k < 3; ++k) r.cam.lookat[k] = r.data->subtree_com[3 + k];
  r.make_current();
  mjr_setBuffer(mjFB_OFFSCREEN, &r.con);
  mjv_updateScene(r.model, r.data, &r.opt, nullptr, &r.cam, mjCAT_ALL, &r.scene);
  const mjrRect viewport = {0, 0, r.width, r.height};
  mjr_render(viewport, &r.scene, &r.con);
  mjr_readPixels(r.flipped.data(), nullptr, viewport, &r.con);
  for (int y = 0; y < r.height; ++y)  // OpenGL reads bottom row first
    std::memcpy(rgb.data() + static_cast<size_t>(y) * row, r.flipped.data() + static_cast<size_t>(r.height - 1 - y) * row,
                row);
}

#else  // no OSMesa

bool renderer_available() { return false; }
struct Renderer::Impl {
  int width = 0, height = 0;
};
Renderer::Renderer(const MujocoEnv& env, int, int, int) {
  throw EnvError("Renderer(" + env.spec().name +
                 "): rldt was built without OSMesa; install libosmesa6-dev and reconfigure to render");
}
Renderer::~Renderer() = default;
int Renderer::width() const { return impl_->width; }
int Renderer::height() const { return impl_->height; }
std::vector<uint8_t> Renderer::render(const MujocoEnv&) { return {}; }
void Renderer::render_into(const MujocoEnv&, Span<uint8_t>) {}

#endif

// ---------------------------------------------------------------------------------------------
// PNG writing: 8-bit RGB, filter 0 on every row, zlib stream (zlib's deflate when available,
// else uncompressed "stored" deflate blocks).
// ---------------------------------------------------------------------------------------------
namespace {

uint32_t crc32_of(const unsigned char* p, size_t n, uint32_t crc = 0) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void put_u32(std::vector<unsigned char>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

void put_chunk(std::vector<unsigned char>& out, const char* type, const std::vector<unsigned char>& body) {
  put_u32(out, static_cast<uint32_t>(body.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), body.begin(), body.end());
  put_u32(out, crc32_of(out.data() + start, out.size() - start));
}

std::vector<unsigned char> zlib_stream(const std::vector<unsigned char>& raw) {
#ifdef RLDT_HAVE_ZLIB
  uLongf len = compressBound(raw.size());
  std::vector<unsigned char> out(len);
  if (compress2(out.data(), &len, raw.data(), raw.size(), 6) != Z_OK) throw EnvError("write_png: zlib failed");
  out.resize(len);
  return out;
#else
  std::vector<unsigned char> out = {0x78, 0x01};
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    out.push_back(pos + n == raw.size() ? 1 : 0);
    out.push_back(n & 0xFF);
    out.push_back(n >> 8);
    out.push_back(~n & 0xFF);
    out.push_back((~n >> 8) & 0xFF);
    out.insert(out.end(), raw.begin() + pos, raw.begin() + pos + n);
    pos += n;
  } while (pos < raw.size());
  put_u32(out, (b << 16) | a);
  return out;
#endif
}

}  // namespace

void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int width, int height) {
  check_size(width, height, "write_png(" + path + ")");
  const size_t row = static_cast<size_t>(width) * 3;
  if (rgb.size() != row * height)
    throw EnvError("write_png(" + path + "): rgb has " + std::to_string(rgb.size()) + " bytes; expected " +
                   std::to_string(row * height) + " = height x width x 3");
  std::vector<unsigned char> raw;
  raw.reserve((row + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), rgb.begin() + y * row, rgb.begin() + (y + 1) * row);
  }
  std::vector<unsigned char> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<unsigned char> ihdr;
  put_u32(ihdr, width);
  put_u32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit, RGB, deflate, adaptive filters, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", zlib_stream(raw));
  put_chunk(png, "IEND", {});
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw EnvError("write_png: cannot open " + path + " for writing");
  const bool ok = std::fwrite(png.data(), 1, png.size(), f) == png.size();
  if (std::fclose(f) != 0 || !ok) throw EnvError("write_png: writing " + path + " failed");
}

}  // namespace rldt
