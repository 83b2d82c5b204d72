// Every configuration of the forward dispatch table against the fp64 reference: each dtype x
// head-dim pair with every feature (masks of both alignments, softcap, ALiBi, sinks, GQA,
// varlen with device and host offsets, fp32 output, strided views, the block-map path), on
// sizes the tiles do not divide.
#include <cmath>
#include <limits>
#include <tuple>

#include "cuda_kernels/fwd_case.h"

namespace polyhead::testing_cuda {
namespace {

struct HeadDims {
  int64_t dqk, dv;
};
constexpr HeadDims kHeadDims[] = {{64, 64}, {96, 96}, {128, 128}, {192, 128}, {256, 256}};
constexpr DType kDtypes[] = {DType::bf16, DType::f16, DType::f32};
// Each 16-bit configuration runs on every tensor-core family where the device has it;
// f32 runs its SIMT kernel under the "mma_sync" parameter.
constexpr cuda::FwdFamily kFamilies[] = {cuda::FwdFamily::mma_sync, cuda::FwdFamily::wgmma,
                                         cuda::FwdFamily::ws};

class FwdTable : public ::testing::TestWithParam<std::tuple<DType, int, cuda::FwdFamily>> {
 protected:
  FwdCase base() const {
    FwdCase c;
    c.dtype = c.o_dtype = std::get<0>(GetParam());
    c.dqk = kHeadDims[std::get<1>(GetParam())].dqk;
    c.dv = kHeadDims[std::get<1>(GetParam())].dv;
    c.family = std::get<2>(GetParam());
    // The persistent wgmma kernel with 3 CTAs: each walks several work items (the cross-item
    // prefetch, the snake order, varlen tiles skipped mid-schedule). The suites that dispatch
    // automatically (tests/cuda) run it with one CTA per SM.
    if (c.family == cuda::FwdFamily::wgmma) c.max_ctas = 3;
    c.seed = uint64_t(std::get<1>(GetParam())) * 100 + uint64_t(c.dtype);
    return c;
  }
  // Skips configurations trimmed out of this build by POLYHEAD_CUDA_HEADDIMS/DTYPES or
  // POLYHEAD_CUDA_ARCHS, and the wgmma family on devices other than cc 9.0.
  bool compiled() const {
    const FwdCase c = base();
    return config_compiled(c.dtype, c.dqk, c.dv,
                           c.dtype == DType::f32 ? cuda::FwdFamily::mma_sync : c.family);
  }
};

#define SKIP_UNLESS_COMPILED() \
  SKIP_WITHOUT_GPU();          \
  if (!compiled()) GTEST_SKIP() << "not compiled in this build"

TEST_P(FwdTable, DenseAndCausal) {
  SKIP_UNLESS_COMPILED();
  FwdCase c = base();
  expect_matches(c);
  c.mask = MaskSpec::causal();
  expect_matches(c);
  c.mask = MaskSpec::causal(Alignment::top_left);
  c.sq = 239, c.sk = 113;  // top-left with Sq > Sk: the last rows see every key
  expect_matches(c);
  c.sq = 300, c.sk = 77;  // bottom-right with Sq > Sk: the first rows are fully masked
  c.mask = MaskSpec::causal();
  expect_matches(c);
}

TEST_P(FwdTable, SlidingWindow) {
  SKIP_UNLESS_COMPILED();
  FwdCase c = base();
  c.sq = 257, c.sk = 301;
  c.mask = MaskSpec::window(37, 5);
  expect_matches(c);
  c.mask = MaskSpec::window(100, -1, Alignment::top_left);
  expect_matches(c);
  c.mask = MaskSpec::window(0, 0);
  expect_matches(c);
}

TEST_P(FwdTable, ScoreModsSinksAndOutputs) {
  SKIP_UNLESS_COMPILED();
  FwdCase c = base();
  c.softcap = 5.0f;
  c.mask = MaskSpec::causal();
  expect_matches(c);
  c.softcap = 0.0f;
  c.alibi = true;
  c.sinks = true;
  expect_matches(c);
  c.alibi = false;
  c.scale = -0.05f;  // a negative scale reverses the order of scores
  c.mask = MaskSpec::window(20, 20, Alignment::top_left);
  c.o_dtype = DType::f32;
  expect_matches(c);
  c.scale.reset();
  c.lse = false;
  c.hkv = 1;  // MQA
  c.batch = 3;
  expect_matches(c);
}

TEST_P(FwdTable, VarlenAndStrides) {
  SKIP_UNLESS_COMPILED();
  FwdCase c = base();
  awkward_varlen(c);
  c.mask = MaskSpec::causal();
  expect_matches(c);
  c.host_cu_seqlens = true;
  c.mask = MaskSpec::window(30, 0, Alignment::top_left);
  c.sinks = true;
  expect_matches(c);
  c.varlen_q.clear();
  c.varlen_k.clear();
  c.token_pad = 1;  // q, k, v, o are views into tensors with one extra head per token
  c.mask = MaskSpec::none();
  expect_matches(c);
  c.o_offset = 2;  // O rows 4-byte but not 16-byte aligned: the ws kernel's register epilogue
  c.mask = MaskSpec::causal();
  expect_matches(c);
}

TEST_P(FwdTable, BlockMapPath) {
  SKIP_UNLESS_COMPILED();
  FwdCase c = base();
  c.force_block_map = true;
  c.sq = 250, c.sk = 250;
  for (const MaskSpec& m :
       {MaskSpec::none(), MaskSpec::causal(), MaskSpec::window(45, 3, Alignment::top_left),
        MaskSpec::window(17, 17, Alignment::bottom_right, 9)}) {
    c.mask = m;
    expect_matches(c);
  }
  c.varlen_q = {70, 0, 190};
  c.varlen_k = {100, 20, 190};
  c.host_cu_seqlens = true;
  c.mask = MaskSpec::window(60, 0);
  c.alibi = true;
  expect_matches(c);
}

// Inf and NaN in V at keys of partial tiles: rows that cannot see the key stay finite (the
// exact P V path of exact_pv.cuh), rows that see it get the reference's non-finite value.
TEST_P(FwdTable, NonFiniteValues) {
  SKIP_UNLESS_COMPILED();
  FwdCase c = base();
  c.sq = c.sk = 150;
  c.batch = 2;
  const float inf = std::numeric_limits<float>::infinity();
  c.v_pokes = {{1, 140, 0, 3, std::nanf("")}, {1, 133, 1, c.dv - 1, inf}, {0, 7, 1, 9, -inf}};
  for (const MaskSpec& m :
       {MaskSpec::causal(), MaskSpec::window(20, 20), MaskSpec::none(), MaskSpec::window(0, 0)}) {
    c.mask = m;
    expect_matches(c);
  }
}

std::string name(const ::testing::TestParamInfo<std::tuple<DType, int, cuda::FwdFamily>>& info) {
  const HeadDims d = kHeadDims[std::get<1>(info.param)];
  const cuda::FwdFamily f = std::get<2>(info.param);
  return std::string(dtype_name(std::get<0>(info.param))) + "_" + std::to_string(d.dqk) + "x" +
         std::to_string(d.dv) +
         (f == cuda::FwdFamily::ws      ? "_ws"
          : f == cuda::FwdFamily::wgmma ? "_wgmma"
                                        : "_mma");
}

INSTANTIATE_TEST_SUITE_P(Cuda, FwdTable,
                         ::testing::Combine(::testing::ValuesIn(kDtypes), ::testing::Range(0, 5),
                                            ::testing::ValuesIn(kFamilies)),
                         name);

}  // namespace
}  // namespace polyhead::testing_cuda
