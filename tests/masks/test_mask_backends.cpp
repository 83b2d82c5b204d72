// Every mask kind on the cpu backend against the reference, and the structured spec against
// the same mask materialized densely (a 1x1-block mask).
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "masks/mask_oracles.h"

namespace polyhead::masktest {
namespace {

struct Case {
  std::string mask;
  int64_t sq, sk, hq, hkv, d;
};

void check(const MaskSpec& spec, const Case& c, uint32_t seed) {
  // cpu vs reference on the same spec
  const Diff same = run_vs_reference(spec, c.sq, c.sk, c.hq, c.hkv, c.d, "cpu", seed);
  EXPECT_GE(same.o_rel, 0) << c.mask << ": an output element was left unwritten";
  EXPECT_LT(same.o_rel, 1e-5) << c.mask;
  EXPECT_LT(same.lse_abs, 1e-4) << c.mask;
  EXPECT_TRUE(same.lse_inf_match) << c.mask;
  // cpu on the structured spec vs the reference on the dense materialization
  const Tensors t = random_qkv(c.sq, c.sk, c.hq, c.hkv, c.d, seed);
  MaskInputs in;
  in.q = TensorView::contiguous(const_cast<float*>(t.q.data()), DType::f32, {c.sq, c.hq, c.d});
  in.k = TensorView::contiguous(const_cast<float*>(t.k.data()), DType::f32, {c.sk, c.hkv, c.d});
  const BlockMap map = BlockMap::compile(spec, {c.sq, c.sk, c.hq, c.hkv}, {64, 64},
                                         spec.is_dynamic() ? &in : nullptr);
  const MaskSpec dense = materialize(map);
  const Diff mat = run_vs_reference(spec, c.sq, c.sk, c.hq, c.hkv, c.d, "cpu", seed, &dense);
  EXPECT_LT(mat.o_rel, 1e-5) << c.mask << " vs its dense materialization";
  EXPECT_TRUE(mat.lse_inf_match) << c.mask;
}

TEST(MaskBackends, EveryKindMatchesTheReference) {
  std::vector<float> scores(3 * 239);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (float& x : scores) x = nd(rng);
  const std::vector<Case> cases = {
      {"window:40,0,sink=4", 239, 239, 4, 2, 32},
      {"window:7,3,topleft,sink=2", 113, 239, 2, 1, 16},
      {"na:grid=239,kernel=31", 239, 239, 2, 2, 24},
      {"na:grid=13x17,kernel=5x4,dilation=2x1,stride=1x2", 221, 221, 3, 1, 16},
      {"na:grid=6x7x5,kernel=3x3x2,causal=1x0x0,stride=1x3x1", 210, 210, 2, 2, 8},
      {"s2:block=16,local=2,vstride=4,offset=1,dense_heads=1", 239, 239, 8, 4, 16},
      {"heads:causal|window:20,0,sink=3|na:grid=150,kernel=9|s2:block=8,local=1,vstride=3", 150,
       150, 4, 2, 16},
      {"longheads:chunk=16,k=5", 150, 239, 4, 2, 16},
      {"dhsa:chunk=16,k=3,recent=20", 239, 239, 4, 2, 16},
      {"slices:0,100,0,100,causal|100,239,0,40,full|100,239,100,239,causal|30,90,120,200,bicausal",
       239, 239, 2, 2, 16},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) check(MaskSpec::parse(c.mask), c, ++seed);

  TopKMask top;
  top.k = 9;
  top.window = 50;
  top.scores.view = TensorView::contiguous(scores.data(), DType::f32, {1, 3, 239});
  check(MaskSpec(top), {"topk:k=9,window=50", 200, 239, 6, 3, 16}, ++seed);

  auto bits = std::make_shared<std::vector<uint8_t>>(size_t(2 * 8 * 15));
  for (auto& b : *bits) b = std::uniform_int_distribution<int>(0, 2)(rng) == 0;
  BlockMask blocks;
  blocks.block_q = 30, blocks.block_k = 16;
  blocks.bits.view = TensorView::contiguous(bits->data(), DType::u8, {2, 8, 15});
  blocks.bits.owner = bits;
  check(MaskSpec(blocks), {"blocks", 239, 239, 2, 1, 16}, ++seed);
}

}  // namespace
}  // namespace polyhead::masktest
