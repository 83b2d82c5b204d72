// Packs bytes of 0 or 1 (BlockMap::allowed_row's output) into bit words, as the GPU kernels'
// partial-tile bitmasks store them: bit c of w[c / 32] is bytes[c].
#pragma once

#include <cstdint>
#include <cstring>

namespace polyhead::detail {

// ORs count bytes into w (the caller zeroes it), eight bytes per multiply: for x holding bytes
// b0..b7 of 0 or 1, the top byte of x * 0x0102040810204080 is b0 | b1 << 1 | ... | b7 << 7,
// because the partial products below it never carry into it. The cuda dispatcher packs 128
// rows per partial tile; a loop over single bytes was most of the host compile of block masks
// finer than the tiles (a [64, 256, 256] mask of 64-blocks at 16k: 4.8 -> 1.7 s on 2 cores).
inline void pack_bits(const uint8_t* bytes, int64_t count, uint32_t* w) {
  int64_t c = 0;
  for (; c + 8 <= count; c += 8) {
    uint64_t x;
    std::memcpy(&x, bytes + c, 8);
    w[c / 32] |= uint32_t((x * 0x0102040810204080ull) >> 56) << (c % 32);
  }
  for (; c < count; ++c) w[c / 32] |= uint32_t(bytes[c] != 0) << (c % 32);
}

}  // namespace polyhead::detail
