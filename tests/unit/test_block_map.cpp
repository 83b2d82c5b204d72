// BlockMap against brute force: every row's visited and full tiles, allowed(), allowed_row(),
// pair_count(), visited_tiles() and full_tiles() over random geometries and tile shapes.
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "support/testing.h"

namespace polyhead {
namespace {

using testing::mask_allows;

std::string where(const MaskSpec& spec, const MaskGeometry& g, TileShape t) {
  std::ostringstream os;
  os << "mask " << spec.to_string() << ", Sq=" << g.seqlen_q << " Sk=" << g.seqlen_k
     << " Hq=" << g.heads_q << " Hkv=" << g.heads_kv << ", tile " << t.m << "x" << t.n;
  return os.str();
}

// Checks the whole map against enumeration of its own allowed(): the structure (rows, full
// flags, totals) must describe exactly the element rule.
void expect_consistent(const MaskSpec& spec, const MaskGeometry& g, TileShape t) {
  SCOPED_TRACE(where(spec, g, t));
  const BlockMap map = BlockMap::compile(spec, g, t);
  ASSERT_EQ(map.q_tiles(), (g.seqlen_q + t.m - 1) / t.m);
  ASSERT_EQ(map.k_tiles(), (g.seqlen_k + t.n - 1) / t.n);
  int64_t pairs = 0, visited = 0, full = 0;
  std::vector<KeyTile> row;
  std::vector<uint8_t> bits(size_t(g.seqlen_k) + 1);
  for (int64_t h = 0; h < g.heads_q; ++h) {
    for (int64_t qt = 0; qt < map.q_tiles(); ++qt) {
      const int64_t i0 = qt * t.m, i1 = std::min(g.seqlen_q, i0 + t.m);
      std::vector<KeyTile> want;
      for (int64_t kt = 0; kt < map.k_tiles(); ++kt) {
        const int64_t j0 = kt * t.n, j1 = std::min(g.seqlen_k, j0 + t.n);
        int64_t seen = 0;
        for (int64_t i = i0; i < i1; ++i) {
          for (int64_t j = j0; j < j1; ++j) seen += map.allowed(h, i, j) ? 1 : 0;
        }
        if (seen > 0) want.push_back({kt, seen == (i1 - i0) * (j1 - j0)});
        pairs += seen;
      }
      map.row(h, qt, row);
      ASSERT_EQ(row.size(), want.size()) << "head " << h << " q tile " << qt;
      for (size_t n = 0; n < want.size(); ++n) {
        ASSERT_EQ(row[n].index, want[n].index) << "head " << h << " q tile " << qt;
        ASSERT_EQ(row[n].full, want[n].full)
            << "head " << h << " q tile " << qt << " key tile " << want[n].index;
        full += want[n].full ? 1 : 0;
      }
      visited += int64_t(want.size());
    }
    // allowed_row over a few sub-ranges of every row.
    for (int64_t i = 0; i < g.seqlen_q; ++i) {
      for (int64_t j0 : {int64_t{0}, g.seqlen_k / 3, g.seqlen_k}) {
        const int64_t count = g.seqlen_k - j0;
        bits.assign(bits.size(), 7);
        map.allowed_row(h, i, j0, count, bits.data());
        for (int64_t n = 0; n < count; ++n) {
          ASSERT_EQ(bits[size_t(n)], map.allowed(h, i, j0 + n) ? 1 : 0)
              << "allowed_row head " << h << " row " << i << " key " << j0 + n;
        }
        ASSERT_EQ(bits[size_t(count)], 7) << "allowed_row wrote past count";
      }
    }
  }
  EXPECT_EQ(map.pair_count(), pairs);
  EXPECT_EQ(map.visited_tiles(), visited);
  EXPECT_EQ(map.full_tiles(), full);
}

// allowed() against the rule of DESIGN.md section 2, and pair_count() against its count.
void expect_semantics(const MaskSpec& spec, const MaskGeometry& g) {
  SCOPED_TRACE(where(spec, g, {1, 1}));
  const BlockMap map = BlockMap::compile(spec, g, {16, 16});
  int64_t pairs = 0;
  for (int64_t i = 0; i < g.seqlen_q; ++i) {
    for (int64_t j = 0; j < g.seqlen_k; ++j) {
      const bool want = mask_allows(spec, g.seqlen_q, g.seqlen_k, i, j);
      pairs += want ? 1 : 0;
      for (int64_t h : {int64_t{0}, g.heads_q - 1}) {
        ASSERT_EQ(map.allowed(h, i, j), want) << "head " << h << " row " << i << " key " << j;
      }
    }
  }
  EXPECT_EQ(map.pair_count(), pairs * g.heads_q);
}

MaskSpec random_window(testing::Rng& rng) {
  auto side = [&] {
    const int64_t kind = rng.uniform_int(0, 5);
    if (kind == 0) return int64_t{-1};
    if (kind == 1) return int64_t{0};
    if (kind == 2) return int64_t{1000};  // wider than any sequence here
    return rng.uniform_int(1, 40);
  };
  const Alignment align = rng.chance(0.5) ? Alignment::top_left : Alignment::bottom_right;
  const int64_t left = side(), right = side();
  const int64_t sink = rng.chance(0.2) ? rng.uniform_int(1, 9) : 0;
  return MaskSpec::window(left, right, align, sink);
}

TEST(BlockMap, RandomWindowsMatchBruteForce) {
  testing::Rng rng(2024);
  const int cases = testing::kExtended ? 2000 : 300;
  const std::vector<int64_t> tiles = {1, 3, 7, 16, 64, 200};
  for (int n = 0; n < cases; ++n) {
    const MaskSpec spec = rng.chance(0.15) ? MaskSpec::none() : random_window(rng);
    const int64_t hkv = rng.uniform_int(1, 2);
    MaskGeometry g{rng.uniform_int(0, 130), rng.uniform_int(0, 130), hkv * rng.uniform_int(1, 2),
                   hkv};
    if (rng.chance(0.3)) g.seqlen_k = g.seqlen_q;
    const TileShape t{rng.pick(tiles), rng.pick(tiles)};
    expect_consistent(spec, g, t);
    expect_semantics(spec, g);
    if (HasFatalFailure() || HasFailure()) return;  // one reproducible failure is enough
  }
}

TEST(BlockMap, CausalBothAlignmentsBothShapes) {
  for (auto [sq, sk] : {std::pair<int64_t, int64_t>{100, 37},
                        {37, 100},
                        {64, 64},
                        {1, 50},
                        {50, 1},
                        {65, 64},
                        {64, 65}}) {
    for (Alignment a : {Alignment::bottom_right, Alignment::top_left}) {
      const MaskSpec spec = MaskSpec::causal(a);
      const MaskGeometry g{sq, sk, 2, 1};
      for (TileShape t : {TileShape{64, 64}, TileShape{16, 32}, TileShape{7, 5}}) {
        expect_consistent(spec, g, t);
      }
      expect_semantics(spec, g);
      // Closed forms: bottom-right row i sees min(Sk, max(0, i + Sk - Sq + 1)) keys.
      int64_t pairs = 0;
      for (int64_t i = 0; i < sq; ++i) {
        const int64_t pos = a == Alignment::top_left ? i : i + sk - sq;
        pairs += std::clamp<int64_t>(pos + 1, 0, sk);
      }
      EXPECT_EQ(BlockMap::compile(spec, g, {64, 64}).pair_count(), 2 * pairs)
          << spec.to_string() << " Sq=" << sq << " Sk=" << sk;
    }
  }
}

TEST(BlockMap, WindowsWiderThanTheSequenceAreDense) {
  for (const char* text : {"window:10000,10000", "window:-1,5000", "window:5000,-1",
                           "window:10000,10000,topleft", "window:2147483647,2147483647"}) {
    const MaskSpec spec = MaskSpec::parse(text);
    for (auto [sq, sk] : {std::pair<int64_t, int64_t>{100, 37}, {37, 100}, {130, 130}}) {
      const MaskGeometry g{sq, sk, 3, 1};
      const BlockMap map = BlockMap::compile(spec, g, {64, 64});
      EXPECT_EQ(map.pair_count(), 3 * sq * sk) << text << " Sq=" << sq << " Sk=" << sk;
      EXPECT_EQ(map.full_tiles(), map.visited_tiles()) << text;
      EXPECT_EQ(map.visited_tiles(), 3 * map.q_tiles() * map.k_tiles()) << text;
    }
  }
}

// A window of 2^63 - 1 keys is valid (>= -1) and wider than any sequence: it must act as an
// unbounded side, not overflow pos(i) + right + 1.
TEST(BlockMap, HugeWindowsDoNotOverflow) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (const MaskSpec& spec :
       {MaskSpec::window(kMax, kMax), MaskSpec::window(kMax, 0), MaskSpec::window(0, kMax),
        MaskSpec::window(kMax, kMax, Alignment::top_left)}) {
    for (auto [sq, sk] : {std::pair<int64_t, int64_t>{50, 20}, {20, 50}}) {
      const MaskGeometry g{sq, sk, 1, 1};
      expect_semantics(spec, g);
      expect_consistent(spec, g, {16, 16});
    }
  }
}

TEST(BlockMap, DenseMapsHaveEveryTileFull) {
  const MaskGeometry g{239, 113, 4, 2};
  const BlockMap map = BlockMap::compile(MaskSpec::none(), g, {64, 32});
  EXPECT_EQ(map.q_tiles(), 4);
  EXPECT_EQ(map.k_tiles(), 4);
  EXPECT_EQ(map.visited_tiles(), 4 * 16);
  EXPECT_EQ(map.full_tiles(), 4 * 16);
  EXPECT_EQ(map.pair_count(), 4 * 239 * 113);
}

TEST(BlockMap, EmptySequences) {
  for (const MaskSpec& spec : {MaskSpec::none(), MaskSpec::causal(), MaskSpec::window(3, 3)}) {
    for (auto [sq, sk] : {std::pair<int64_t, int64_t>{0, 0}, {0, 9}, {9, 0}}) {
      const MaskGeometry g{sq, sk, 2, 2};
      expect_consistent(spec, g, {4, 4});
      const BlockMap map = BlockMap::compile(spec, g, {4, 4});
      EXPECT_EQ(map.pair_count(), 0);
      EXPECT_EQ(map.visited_tiles(), 0);
      std::vector<KeyTile> row;
      for (int64_t qt = 0; qt < map.q_tiles(); ++qt) {
        map.row(0, qt, row);
        EXPECT_TRUE(row.empty()) << spec.to_string() << " Sq=" << sq << " Sk=" << sk;
      }
    }
  }
}

// Windows whose rows are all empty in part of the sequence (fully masked rows).
TEST(BlockMap, FullyMaskedRows) {
  // Bottom-right causal with Sq > Sk: rows 0 .. Sq - Sk - 1 see nothing.
  const BlockMap causal = BlockMap::compile(MaskSpec::causal(), {70, 20, 1, 1}, {16, 16});
  std::vector<KeyTile> row;
  causal.row(0, 0, row);  // rows 0..15, all below the first visible row 50
  EXPECT_TRUE(row.empty());
  // Top-left (0, 0) with Sq > Sk: rows >= Sk see nothing.
  const BlockMap diag =
      BlockMap::compile(MaskSpec::window(0, 0, Alignment::top_left), {70, 20, 1, 1}, {16, 16});
  diag.row(0, 3, row);  // rows 48..63
  EXPECT_TRUE(row.empty());
  EXPECT_EQ(diag.pair_count(), 20);
}

TEST(BlockMap, InvalidArgumentsThrowNamingTheField) {
  const MaskGeometry g{10, 10, 2, 1};
  POLYHEAD_EXPECT_ERROR(BlockMap::compile(MaskSpec::window(-2, 0), g, {16, 16}), "left");
  POLYHEAD_EXPECT_ERROR(BlockMap::compile(MaskSpec::window(0, -7), g, {16, 16}), "right");
  POLYHEAD_EXPECT_ERROR(BlockMap::compile(MaskSpec::none(), g, {0, 16}), "tile");
  POLYHEAD_EXPECT_ERROR(BlockMap::compile(MaskSpec::none(), g, {16, -1}), "tile");
  POLYHEAD_EXPECT_ERROR(BlockMap::compile(MaskSpec::none(), {10, 10, 3, 2}, {16, 16}), "heads");
  POLYHEAD_EXPECT_ERROR(BlockMap::compile(MaskSpec::none(), {-1, 10, 1, 1}, {16, 16}), "seqlen_q");
}

}  // namespace
}  // namespace polyhead
