// The TMA tensor-map encoder's refusals (src/cuda/tma/tensor_map.cpp), on the host: every rule
// is checked before the driver is asked, so these run without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "cuda/tma/tensor_map.h"
#include "polyhead/error.h"

namespace polyhead {
namespace {

cuda::TmaTensor valid() {
  cuda::TmaTensor t;
  t.base = reinterpret_cast<const void*>(uintptr_t(1) << 20);
  t.rank = 4;
  t.dims = {128, 8, 4096, 2, 0};
  t.strides = {256, 2048, 8388608, 0};
  t.box = {64, 1, 64, 1, 0};
  return t;
}

void expect_refused(const cuda::TmaTensor& t, const std::string& says) {
  try {
    (void)cuda::make_tensor_map_sw128(t);
    FAIL() << "accepted; expected a refusal saying '" << says << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

TEST(TensorMap, RefusesWhatTmaCannotCopy) {
  cuda::TmaTensor t = valid();
  t.rank = 6;
  expect_refused(t, "1 to 5 dimensions");
  t = valid();
  t.base = reinterpret_cast<const void*>(uintptr_t(1) << 20 | 8);
  expect_refused(t, "16-byte aligned");
  t = valid();
  t.strides[1] = 2056;
  expect_refused(t, "multiple of 16");
  t = valid();
  t.box[2] = 257;
  expect_refused(t, "allowed 1 to 256");
  t = valid();
  t.box[0] = 128;
  expect_refused(t, "at most 64");
  t = valid();
  t.dims[3] = 0;
  expect_refused(t, "allowed 1 to 2^32");
}

}  // namespace
}  // namespace polyhead
