// Element types and host conversions between fp32 and the 16-bit float formats.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace polyhead {

enum class DType : uint8_t { f32, f16, bf16, f64, i32, u8 };

std::string_view dtype_name(DType t);
int64_t dtype_size(DType t);
bool is_floating(DType t);

// IEEE binary16 <-> binary32, round to nearest even; NaN and Inf are preserved.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

// bfloat16 <-> binary32, round to nearest even; NaN stays NaN.
inline float bf16_to_float(uint16_t b) {
  return std::bit_cast<float>(uint32_t(b) << 16);
}
inline uint16_t float_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// The value `f` takes after a round trip through `t` (identity for f32 and f64).
float round_to(DType t, float f);

// The relative L2 error ||out - ref|| / ||ref|| a backend may show against the fp64 reference for
// inputs of dtype `t` (DESIGN.md section 6): f16 2e-3, bf16 1.6e-2, otherwise 1e-5.
double relative_l2_tolerance(DType t);

}  // namespace polyhead
