#include "rldt/util/blas_threads.hpp"

#include <dlfcn.h>

#include <initializer_list>
#include <stdexcept>
#include <string>

#include "rldt/util/blas_gemm.hpp"

namespace rldt {
namespace {
using GetFn = int (*)();
using SetFn = void (*)(int);

// Finds the scope of the BLAS already loaded into the process (LibTorch loads it through
// libblas.so.3, which Debian's alternatives point at OpenBLAS) that exports every symbol in
// `names`. The global scope has it when rldt is linked into a program; Python loads extension
// modules with RTLD_LOCAL, so there the library is looked up by name among the loaded ones
// (RTLD_NOLOAD: never loads a second BLAS). False if no such scope exists.
bool find_blas_scope(std::initializer_list<const char*> names, void** scope) {
  auto exports_all = [&](void* s) {
    for (const char* n : names)
      if (!dlsym(s, n)) return false;
    return true;
  };
  if (exports_all(RTLD_DEFAULT)) {
    *scope = RTLD_DEFAULT;
    return true;
  }
  for (const char* lib_name : {"libblas.so.3", "libopenblas.so.0", "libopenblas.so"}) {
    void* lib = dlopen(lib_name, RTLD_NOW | RTLD_NOLOAD);  // a reference we keep: it is loaded anyway
    if (lib && exports_all(lib)) {
      *scope = lib;
      return true;
    }
  }
  return false;
}

// OpenBLAS's thread setting.
struct OpenBlas {
  GetFn get = nullptr;
  SetFn set = nullptr;
  OpenBlas() {
    void* s = nullptr;
    if (!find_blas_scope({"openblas_get_num_threads", "openblas_set_num_threads"}, &s)) return;
    get = reinterpret_cast<GetFn>(dlsym(s, "openblas_get_num_threads"));
    set = reinterpret_cast<SetFn>(dlsym(s, "openblas_set_num_threads"));
  }
};

const OpenBlas& openblas() {
  static const OpenBlas lib;
  return lib;
}
}  // namespace

SgemmFn blas_sgemm() {
  static const SgemmFn fn = [] {
    void* s = nullptr;
    return find_blas_scope({"sgemm_"}, &s) ? reinterpret_cast<SgemmFn>(dlsym(s, "sgemm_")) : SgemmFn{nullptr};
  }();
  return fn;
}

int blas_num_threads() { return openblas().get ? openblas().get() : 0; }

bool set_blas_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_blas_num_threads: n must be >= 1, got " + std::to_string(n));
  if (!openblas().set) return false;
  openblas().set(n);
  return true;
}

}  // namespace rldt
