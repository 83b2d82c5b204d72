// Host conversions between fp32 and fp16 / bf16: exhaustive round trips, round to nearest even
// at every tie, overflow, subnormals and NaN.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "support/testing.h"

namespace polyhead {
namespace {

// The value of an IEEE binary16 bit pattern, decoded from the format's definition.
double half_value(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0x1f) return mant ? std::nan("") : sign * std::numeric_limits<double>::infinity();
  if (exp == 0) return sign * std::ldexp(double(mant), -24);
  return sign * std::ldexp(double(1024 + mant), exp - 25);
}

bool half_is_nan(uint16_t h) {
  return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
}

bool bf16_is_nan(uint16_t b) {
  return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0;
}

float from_bits(uint32_t u) {
  return std::bit_cast<float>(u);
}

uint32_t bits(float f) {
  return std::bit_cast<uint32_t>(f);
}

TEST(Dtype, HalfToFloatIsExactForEveryPattern) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = half_to_float(uint16_t(h));
    const double want = half_value(uint16_t(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << "half 0x" << std::hex << h;
      ASSERT_EQ(bits(f) >> 31, h >> 15) << "NaN sign of half 0x" << std::hex << h;
    } else {
      ASSERT_EQ(double(f), want) << "half 0x" << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << "half 0x" << std::hex << h;
    }
  }
}

TEST(Dtype, HalfRoundTripsEveryPattern) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t back = float_to_half(half_to_float(uint16_t(h)));
    if (half_is_nan(uint16_t(h))) {
      ASSERT_TRUE(half_is_nan(back)) << "NaN 0x" << std::hex << h << " came back as 0x" << back;
    } else {
      ASSERT_EQ(back, h) << "half 0x" << std::hex << h;
    }
  }
}

// Between every pair of adjacent finite halves (subnormals included): the midpoint rounds to
// the even one, and the floats one ulp either side round to the nearer one.
TEST(Dtype, HalfRoundsToNearestEvenAtEveryTie) {
  for (uint16_t sign : {uint16_t(0), uint16_t(0x8000)}) {
    for (uint16_t h = 0; h < 0x7bff; ++h) {
      const uint16_t lo = uint16_t(sign | h), hi = uint16_t(sign | (h + 1));
      const double mid = (half_value(lo) + half_value(hi)) / 2;  // exact in float: 12 bits
      const float m = float(mid);
      ASSERT_EQ(double(m), mid);
      const uint16_t even = (h & 1) ? hi : lo;
      ASSERT_EQ(float_to_half(m), even) << "tie between 0x" << std::hex << lo << " and 0x" << hi;
      const float toward_lo = std::nextafter(m, float(half_value(lo)));
      const float toward_hi = std::nextafter(m, float(half_value(hi)));
      ASSERT_EQ(float_to_half(toward_lo), lo) << "just below the tie 0x" << std::hex << lo;
      ASSERT_EQ(float_to_half(toward_hi), hi) << "just above the tie 0x" << std::hex << lo;
    }
  }
}

TEST(Dtype, HalfOverflowsToInfinity) {
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(std::nextafter(65520.0f, 0.0f)), 0x7bff);  // below the tie
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // the tie with 65536 rounds to even: Inf
  EXPECT_EQ(float_to_half(-65520.0f), 0xfc00);
  EXPECT_EQ(float_to_half(1e10f), 0x7c00);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::max()), 0xfc00);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::infinity()), 0xfc00);
}

TEST(Dtype, HalfSubnormalsAndUnderflow) {
  const float tiny = std::ldexp(1.0f, -24);  // the smallest half subnormal
  EXPECT_EQ(float_to_half(tiny), 0x0001);
  EXPECT_EQ(float_to_half(-tiny), 0x8001);
  EXPECT_EQ(float_to_half(tiny / 2), 0x0000);  // tie with zero: even
  EXPECT_EQ(float_to_half(-tiny / 2), 0x8000);
  EXPECT_EQ(float_to_half(std::nextafter(tiny / 2, 1.0f)), 0x0001);
  EXPECT_EQ(float_to_half(3 * tiny / 2), 0x0002);              // tie between 1 and 2: even
  EXPECT_EQ(float_to_half(std::ldexp(1023.0f, -24)), 0x03ff);  // largest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
  EXPECT_EQ(float_to_half(std::ldexp(1023.5f, -24)), 0x0400);  // tie rounds up into normals
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(float_to_half(-1e-40f), 0x8000);  // float subnormal: signed zero
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
}

TEST(Dtype, NanStaysNan) {
  for (uint32_t u : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0x7fa00000u,
                     0x7f802000u, 0x7f800fffu}) {
    const float f = from_bits(u);
    EXPECT_TRUE(half_is_nan(float_to_half(f))) << "float 0x" << std::hex << u;
    EXPECT_TRUE(bf16_is_nan(float_to_bf16(f))) << "float 0x" << std::hex << u;
    EXPECT_TRUE(std::isnan(round_to(DType::f16, f))) << "float 0x" << std::hex << u;
    EXPECT_TRUE(std::isnan(round_to(DType::bf16, f))) << "float 0x" << std::hex << u;
  }
}

TEST(Dtype, Bf16RoundTripsEveryPattern) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float f = bf16_to_float(uint16_t(b));
    ASSERT_EQ(bits(f), b << 16) << "bf16 0x" << std::hex << b;
    const uint16_t back = float_to_bf16(f);
    if (bf16_is_nan(uint16_t(b))) {
      ASSERT_TRUE(bf16_is_nan(back)) << "NaN 0x" << std::hex << b << " came back as 0x" << back;
    } else {
      ASSERT_EQ(back, b) << "bf16 0x" << std::hex << b;
    }
  }
}

TEST(Dtype, Bf16RoundsToNearestEvenAtEveryTie) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    if ((b & 0x7fff) >= 0x7f7f) continue;  // the tie above 0x7f7f rounds to Inf (tested below)
    const uint32_t tie = (b << 16) | 0x8000u;
    const uint16_t lo = uint16_t(b), hi = uint16_t(b + 1);
    const uint16_t even = (b & 1) ? hi : lo;
    ASSERT_EQ(float_to_bf16(from_bits(tie)), even) << "tie above bf16 0x" << std::hex << b;
    ASSERT_EQ(float_to_bf16(from_bits(tie - 1)), lo) << "below the tie above 0x" << std::hex << b;
    ASSERT_EQ(float_to_bf16(from_bits(tie + 1)), hi) << "above the tie above 0x" << std::hex << b;
  }
}

TEST(Dtype, Bf16OverflowAndSubnormals) {
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // above the last tie
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(float_to_bf16(from_bits(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(float_to_bf16(from_bits(0x7f7f8000u)), 0x7f80);  // tie, odd below: rounds to Inf
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);  // tie with 0
  EXPECT_EQ(float_to_bf16(from_bits(0x00008001u)), 0x0001);  // float subnormal rounds up
  EXPECT_EQ(float_to_bf16(from_bits(0x00018000u)), 0x0002);  // tie: even
  EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
}

TEST(Dtype, RoundToMatchesTheConversions) {
  testing::Rng rng(7);
  for (int n = 0; n < 100000; ++n) {
    const float f = from_bits(uint32_t(rng.next()));
    if (std::isnan(f)) continue;
    ASSERT_EQ(bits(round_to(DType::f16, f)), bits(half_to_float(float_to_half(f))));
    ASSERT_EQ(bits(round_to(DType::bf16, f)), bits(bf16_to_float(float_to_bf16(f))));
    ASSERT_EQ(bits(round_to(DType::f32, f)), bits(f));
    ASSERT_EQ(bits(round_to(DType::f64, f)), bits(f));
  }
  EXPECT_THROW(round_to(DType::i32, 1.0f), Error);
  EXPECT_THROW(round_to(DType::u8, 1.0f), Error);
}

TEST(Dtype, NamesSizesAndKinds) {
  struct Row {
    DType t;
    const char* name;
    int64_t size;
    bool floating;
  };
  for (const Row& r : {Row{DType::f32, "f32", 4, true}, Row{DType::f16, "f16", 2, true},
                       Row{DType::bf16, "bf16", 2, true}, Row{DType::f64, "f64", 8, true},
                       Row{DType::i32, "i32", 4, false}, Row{DType::u8, "u8", 1, false}}) {
    EXPECT_EQ(dtype_name(r.t), r.name);
    EXPECT_EQ(dtype_size(r.t), r.size) << r.name;
    EXPECT_EQ(is_floating(r.t), r.floating) << r.name;
  }
}

}  // namespace
}  // namespace polyhead
