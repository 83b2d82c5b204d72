#include <vector>

#include "core/backend.h"

namespace polyhead::detail {

std::span<const Backend* const> all_backends() {
  static const std::vector<const Backend*> list = [] {
    std::vector<const Backend*> v;
    if (const Backend* b = cuda_backend()) v.push_back(b);
    if (const Backend* b = cpu_backend()) v.push_back(b);
    v.push_back(&reference_backend());
    return v;
  }();
  return list;
}

const Backend* find_backend(std::string_view name) {
  for (const Backend* b : all_backends()) {
    if (b->name() == name) return b;
  }
  return nullptr;
}

}  // namespace polyhead::detail
