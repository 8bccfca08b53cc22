#include "rldt/util/blas_threads.hpp"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

#include "rldt/util/blas_gemm.hpp"

namespace rldt {
namespace {
using GetFn = int (*)();
using SetFn = void (*)(int);

// OpenBLAS's entry points in the BLAS already loaded into the process (LibTorch loads it through
// libblas.so.3, which Debian's alternatives point at OpenBLAS). The global scope has it when rldt
// is linked into a program; Python loads extension modules with RTLD_LOCAL, so there the library
// is looked up by name among the loaded ones (RTLD_NOLOAD: never loads a second BLAS).
struct OpenBlas {
  GetFn get = nullptr;
  SetFn set = nullptr;
  OpenBlas() {
    if (find(RTLD_DEFAULT)) return;
    for (const char* name : {"libblas.so.3", "libopenblas.so.0", "libopenblas.so"}) {
      void* lib = dlopen(name, RTLD_NOW | RTLD_NOLOAD);  // a reference we keep: it is loaded anyway
      if (lib && find(lib)) return;
    }
  }
  bool find(void* scope) {
    get = reinterpret_cast<GetFn>(dlsym(scope, "openblas_get_num_threads"));
    set = reinterpret_cast<SetFn>(dlsym(scope, "openblas_set_num_threads"));
    if (get && set) return true;
    get = nullptr;
    set = nullptr;
    return false;
  }
};

const OpenBlas& openblas() {
  static const OpenBlas lib;
  return lib;
}
}  // namespace

SgemmFn blas_sgemm() {
  static const SgemmFn fn = [] {
    if (void* f = dlsym(RTLD_DEFAULT, "sgemm_")) return reinterpret_cast<SgemmFn>(f);
    for (const char* name : {"libblas.so.3", "libopenblas.so.0", "libopenblas.so"}) {
      void* lib = dlopen(name, RTLD_NOW | RTLD_NOLOAD);  // only a library that is loaded already
      if (void* f = lib ? dlsym(lib, "sgemm_") : nullptr) return reinterpret_cast<SgemmFn>(f);
    }
    return SgemmFn{nullptr};
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
