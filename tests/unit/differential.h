// The differential suite: every backend against the fp64 reference (DESIGN.md section 6). The
// tests are parameterized by backend name; tests/unit instantiates them for "cpu" and
// tests/cuda for "cuda", so both run the same cases.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "support/testing.h"

namespace polyhead::testing {

class Differential : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (const std::string why = backend_unavailable(GetParam()); !why.empty()) GTEST_SKIP() << why;
  }
  const std::string& backend() const { return GetParam(); }
};

// A small case to vary: B=2 Sq=37 Sk=113 Hq=4 Hkv=2 Dqk=Dv=64, f32, no mask.
Case small_case(std::string_view suite, uint64_t index);

// The dtypes of the suite; cases rotate through them by index.
inline const std::vector<DType> kDtypes = {DType::f32, DType::f16, DType::bf16};

// Names instantiations "cpu", "cuda" rather than 0, 1.
struct BackendName {
  std::string operator()(const ::testing::TestParamInfo<std::string>& info) const {
    return info.param;
  }
};

}  // namespace polyhead::testing
