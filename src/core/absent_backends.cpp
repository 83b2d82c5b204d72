// Backends left out of this build (CMake options or missing dependencies) are absent from the
// registry rather than present and broken.
#include "core/backend.h"

namespace polyhead::detail {

#ifndef POLYHEAD_HAVE_CPU_BACKEND
const Backend* cpu_backend() {
  return nullptr;
}
#endif

#ifndef POLYHEAD_HAVE_CUDA
const Backend* cuda_backend() {
  return nullptr;
}
#endif

}  // namespace polyhead::detail
