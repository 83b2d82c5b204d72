// Behaviour of the cuda forward beyond the table: streams, large shapes, every mask kind of
// the engine through the block-map path, and the refusals supports() must give.
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "cuda_kernels/fwd_case.h"

namespace polyhead::testing_cuda {
namespace {

TEST(CudaFwd, RunsOnTheCallersStream) {
  SKIP_WITHOUT_GPU();
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  FwdCase c;
  c.sq = c.sk = 777;
  c.mask = MaskSpec::causal();
  expect_matches(c, stream);
  c.force_block_map = true;  // the stream-ordered upload of the block map
  c.mask = MaskSpec::window(100, 0);
  expect_matches(c, stream);
  CUDA_OK(cudaStreamDestroy(stream));
}

TEST(CudaFwd, LargeCausal) {
  SKIP_WITHOUT_GPU();
  FwdCase c;
  c.sq = c.sk = 2048 + 17;
  c.hq = 2, c.hkv = 1;
  c.mask = MaskSpec::causal();
  expect_matches(c);
  c.dtype = c.o_dtype = DType::f16;
  c.dqk = c.dv = 64;
  c.mask = MaskSpec::window(1024, 0);
  expect_matches(c);
}

// Every other mask kind of the engine runs through the compiled block map. Kinds are parsed
// from their text form so this file builds whatever kinds core has; an unknown kind skips.
TEST(CudaFwd, GenericMaskKinds) {
  SKIP_WITHOUT_GPU();
  const char* specs[] = {"na:grid=16x16,kernel=5x5", "na:grid=8x8x4,kernel=3x3x3,dilation=2x1x1",
                         "s2:block=64,local=2,vstride=4",
                         "heads:causal|window:10,0|none|na:grid=16x16,kernel=7x7",
                         "window:33,0,sink=4"};
  int ran = 0;
  for (const char* text : specs) {
    const std::optional<MaskSpec> m = parse_if_built(text);
    if (!m) continue;
    for (DType t : {DType::bf16, DType::f32}) {
      FwdCase c;
      c.dtype = c.o_dtype = t;
      c.sq = c.sk = 256;
      c.hq = 4, c.hkv = 2;
      c.mask = *m;
      c.seed = uint64_t(ran + 10);
      expect_matches(c);
    }
    ++ran;
  }
  if (ran == 0) GTEST_SKIP() << "no structured mask kind beyond windows in this build";
}

// Neighborhood masks in patch order (token_order.h, the default) and in row order on the wgmma
// kernel: 2-D and 3-D grids, NATTEN borders, dilation, stride and a causal dimension, GQA,
// sinks and softcap, 64- and 128-key tiles, several items per CTA.
TEST(CudaFwd, NeighborhoodsInPatchOrder) {
  SKIP_WITHOUT_GPU();
  if (!device_is_sm90()) GTEST_SKIP() << "the wgmma kernel runs on cc 9.0 only";
  const char* specs[] = {"na:grid=16x32,kernel=5x7", "na:grid=32x16,kernel=9x9,dilation=2x1",
                         "na:grid=16x16,kernel=7x5,stride=1x3,causal=1x0",
                         "na:grid=8x8x16,kernel=3x5x3"};
  int ran = 0;
  for (const char* text : specs) {
    const std::optional<MaskSpec> m = parse_if_built(text);
    if (!m) continue;
    const auto* na = m->get_if<NeighborhoodMask>();
    ASSERT_NE(na, nullptr);
    int64_t tokens = 1;
    for (int d = 0; d < na->rank; ++d) tokens *= na->grid[size_t(d)];
    for (const auto& [d, dv] : {std::pair<int64_t, int64_t>{64, 64}, {128, 128}, {192, 128}}) {
      if (!config_compiled(DType::bf16, d, dv, cuda::FwdFamily::wgmma)) continue;
      FwdCase c;
      c.family = cuda::FwdFamily::wgmma;
      c.patch_order = true;
      c.dqk = d, c.dv = dv;
      c.batch = 2, c.sq = c.sk = tokens, c.hq = 4, c.hkv = 2;
      c.mask = *m;
      c.sinks = ran % 2 == 1;
      c.softcap = ran == 2 ? 5.0f : 0.0f;
      c.max_ctas = ran % 2 == 0 ? 3 : 0;
      c.seed = uint64_t(ran * 7 + d);
      expect_matches(c);
      c.patch_order = false;
      expect_matches(c);
    }
    ++ran;
  }
  if (ran == 0) GTEST_SKIP() << "no neighborhood masks in this build";
}

// Decode with grouped heads packed as the rows of one tile (FwdOverrides::pack_gqa, the
// default): groups of 2 to 16, no mask and the bottom-right causal mask (the same for one row),
// a softcap, LSE, a batch, keys that the tiles do not divide, each also unpacked; and the
// cases it must leave alone (ALiBi, sinks, a bounded window), which run unpacked and must
// still match.
TEST(CudaFwd, DecodePacksGroupedHeads) {
  SKIP_WITHOUT_GPU();
  struct Heads {
    int64_t hq, hkv;
  };
  int n = 0;
  for (Heads h : {Heads{8, 4}, Heads{32, 8}, Heads{16, 1}}) {
    for (int64_t d : {64, 128}) {
      for (const MaskSpec& m : {MaskSpec::none(), MaskSpec::causal()}) {
        FwdCase c;
        c.pack_gqa = true;
        c.batch = 3, c.sq = 1, c.sk = 300 + 97 * n, c.hq = h.hq, c.hkv = h.hkv;
        c.dqk = c.dv = d;
        c.mask = m;
        c.softcap = n % 3 == 1 ? 8.0f : 0.0f;
        c.seed = uint64_t(50 + n++);
        expect_matches(c);
        c.pack_gqa = false;
        expect_matches(c);
      }
    }
  }
  FwdCase c;
  c.pack_gqa = true;
  c.batch = 2, c.sq = 1, c.sk = 257, c.hq = 8, c.hkv = 2;
  c.alibi = true;
  expect_matches(c);
  c.alibi = false, c.sinks = true;
  expect_matches(c);
  c.sinks = false, c.mask = MaskSpec::window(40, 0);
  expect_matches(c);
}

// The warp-specialized kernel (FwdFamily::ws) beyond FwdTable: d128 bf16 and f16, GQA, query
// and key lengths the tiles do not divide, several sequences, LSE, sinks and a softcap; causal
// and windows with Inf in V (its own recomputation); block maps; its refusal of split-KV.
TEST(CudaFwd, WarpSpecialized) {
  SKIP_WITHOUT_GPU();
  if (!device_is_sm90() || !config_compiled(DType::bf16, 128, 128, cuda::FwdFamily::ws)) {
    GTEST_SKIP() << "needs the sm_90a kernels";
  }
  int n = 0;
  for (DType dt : {DType::bf16, DType::f16}) {
    for (int64_t sk : {128, 300, 1000}) {
      FwdCase c;
      c.family = cuda::FwdFamily::ws;
      c.dtype = c.o_dtype = dt;
      c.batch = 2, c.sq = 200 + 61 * n, c.sk = sk, c.hq = 8, c.hkv = n % 2 ? 2 : 8;
      c.sinks = n == 3;
      c.softcap = n == 4 ? 20.0f : 0.0f;
      c.seed = uint64_t(700 + n++);
      expect_matches(c);
    }
  }
  // Causal (both alignments) and a window: partial tiles, and Inf in V at a key that some
  // rows of its partial tile cannot see (the recomputation with the exact path).
  for (const MaskSpec& m :
       {MaskSpec::causal(), MaskSpec::causal(Alignment::top_left), MaskSpec::window(100, 0)}) {
    FwdCase c;
    c.family = cuda::FwdFamily::ws;
    c.mask = m;
    c.batch = 2, c.sq = 333, c.sk = 333, c.hq = 4, c.hkv = 2;
    c.seed = uint64_t(700 + n++);
    expect_matches(c);
    c.v_pokes = {{1, 200, 1, 5, INFINITY}};
    expect_matches(c);
  }
  // Forced, it runs block maps: a neighborhood whose grid no 128-token patch divides and S2
  // in token order, then 2-D neighborhoods in patch order (5-D TMA boxes of the token grid;
  // GQA, two sequences, Inf in V at a key some rows of its partial tile cannot see).
  for (const char* m : {"na:grid=24x20,kernel=7x5", "s2:block=64,local=2,vstride=4"}) {
    FwdCase c;
    c.family = cuda::FwdFamily::ws;
    c.mask = MaskSpec::parse(m);
    c.sq = c.sk = 480;
    c.seed = uint64_t(700 + n++);
    expect_matches(c);
  }
  for (auto [m, tokens] : {std::pair<const char*, int64_t>{"na:grid=32x32,kernel=7x7", 1024},
                           {"na:grid=16x24,kernel=5x9", 384}}) {
    FwdCase c;
    c.family = cuda::FwdFamily::ws;
    c.mask = MaskSpec::parse(m);
    c.sq = c.sk = tokens;
    c.batch = 2, c.hq = 4, c.hkv = 2;
    c.seed = uint64_t(700 + n++);
    expect_matches(c);
    c.v_pokes = {{1, 200, 1, 5, INFINITY}};
    expect_matches(c);
  }
  FwdCase c;
  c.family = cuda::FwdFamily::ws;
  c.kv_splits = 2;
  try {
    (void)run_case(c);
    ADD_FAILURE() << "accepted split-KV: " << c.describe();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("warp-specialized kernel cannot run this problem (split"),
              std::string::npos)
        << e.what();
  }
}

// The warp-specialized kernel's neighborhood tiles (FwdOverrides::ws_na_tiles, d128): rank-2
// neighborhoods in patch order on 64 x 64 tiles over 8 x 8 sub-patches, one consumer warpgroup
// per CTA, each query tile one sub-patch box; GQA, two sequences, sinks and softcap, Inf and NaN in
// V at keys some rows of their partial tiles cannot see (the consumers' recomputation), padded
// token strides and fp32 O, picked by the dispatcher and forced; and the same problems on the
// 128-key tiles (ws_na_tiles off).
TEST(CudaFwd, WarpSpecializedNeighborhoodTiles) {
  SKIP_WITHOUT_GPU();
  if (!device_is_sm90() || !config_compiled(DType::bf16, 128, 128, cuda::FwdFamily::ws)) {
    GTEST_SKIP() << "needs the sm_90a kernels";
  }
  int n = 0;
  for (auto [m, tokens] : {std::pair<const char*, int64_t>{"na:grid=32x32,kernel=7x7", 1024},
                           {"na:grid=16x24,kernel=5x9", 384},
                           {"na:grid=64x64,kernel=17x17", 4096}}) {
    for (auto [family, tiles] : {std::pair{cuda::FwdFamily::automatic, true},
                                 {cuda::FwdFamily::ws, true},
                                 {cuda::FwdFamily::ws, false}}) {
      FwdCase c;
      c.family = family;
      c.ws_na_tiles = tiles;
      c.mask = MaskSpec::parse(m);
      c.sq = c.sk = tokens;
      c.batch = 2, c.hq = 4, c.hkv = 2;
      c.dtype = c.o_dtype = n % 2 ? DType::f16 : DType::bf16;
      c.sinks = n == 1;
      c.softcap = n == 2 ? 20.0f : 0.0f;
      // O's TMA stores (fwd_ws/epilogue.cuh) through a padded token stride; fp32 O, which the
      // threads store.
      c.token_pad = n == 4 || n == 5 ? 1 : 0;
      if (n == 7) c.o_dtype = DType::f32;
      c.seed = uint64_t(1100 + n++);
      expect_matches(c);
      c.v_pokes = {{1, 200, 1, 5, INFINITY}, {0, 70, 0, 3, std::nanf("")}};
      expect_matches(c);
    }
  }
}

// The persistent warp-specialized kernel (FwdOverrides::ws_persistent): several items per CTA
// (3 CTAs) and one CTA per SM, every head-dim pair, masks of both kinds, varlen, score mods,
// LSE and f32 output; Inf and NaN in V at keys of partial tiles, which send items through the
// exact pass (fwd_ws/exact_items.cuh).
TEST(CudaFwd, WarpSpecializedPersistent) {
  SKIP_WITHOUT_GPU();
  if (!device_is_sm90()) GTEST_SKIP() << "needs the sm_90a kernels";
  int n = 0;
  const float inf = std::numeric_limits<float>::infinity();
  for (auto [dqk, dv] : {std::pair<int64_t, int64_t>{128, 128}, {64, 64}, {192, 128}, {256, 256}}) {
    if (!config_compiled(DType::bf16, dqk, dv, cuda::FwdFamily::ws)) continue;
    for (int ctas : {3, 0}) {
      FwdCase base;
      base.family = cuda::FwdFamily::ws;
      base.ws_persistent = true;
      base.max_ctas = ctas;
      base.dqk = dqk, base.dv = dv;
      auto run = [&](FwdCase c) {
        c.seed = uint64_t(900 + n++);
        expect_matches(c);
      };
      FwdCase c = base;
      c.batch = 2, c.sq = 300, c.sk = 1000, c.hq = 8, c.hkv = 2;
      run(c);
      c.mask = MaskSpec::causal();
      c.sinks = true;
      run(c);
      c.mask = MaskSpec::causal(Alignment::top_left);
      c.sinks = false, c.softcap = 20.0f, c.alibi = true;
      run(c);
      c = base;
      c.mask = MaskSpec::window(100, 0);
      c.sq = c.sk = 333, c.hq = 4, c.hkv = 2, c.batch = 2;
      c.o_dtype = DType::f32;
      run(c);
      c.o_dtype = DType::bf16;
      c.v_pokes = {{1, 200, 1, 5, inf}, {0, 40, 0, 3, std::nanf("")}};
      run(c);
      c.mask = MaskSpec::causal();
      run(c);
      c = base;
      awkward_varlen(c);
      c.mask = MaskSpec::causal();
      run(c);
      c.host_cu_seqlens = true;
      c.mask = MaskSpec::window(30, 0, Alignment::top_left);
      run(c);
      c = base;
      c.mask = MaskSpec::parse("na:grid=24x20,kernel=7x5");  // token order
      c.sq = c.sk = 480;
      run(c);
      c.mask = MaskSpec::parse("na:grid=32x32,kernel=7x7");  // patch order (128-key tiles)
      c.sq = c.sk = 1024, c.batch = 2, c.hq = 4, c.hkv = 2;
      run(c);
      c.v_pokes = {{1, 300, 0, 2, inf}};
      run(c);
    }
  }
  FwdCase c;
  c.family = cuda::FwdFamily::ws;
  c.ws_persistent = true;
  c.dtype = c.o_dtype = DType::f16;
  c.mask = MaskSpec::causal();
  c.v_pokes = {{0, 100, 1, 7, -inf}};
  c.seed = uint64_t(900 + n++);
  expect_matches(c);
}

// Split-KV (FwdOverrides::kv_splits) on the wgmma kernel: decode packed and unpacked, with
// sinks, softcap and LSE; prefill with causal, window and block-map masks, varlen, and more
// splits than some query tiles have key tiles (empty shares); Inf in V at a partial tile.
TEST(CudaFwd, SplitKv) {
  SKIP_WITHOUT_GPU();
  if (!device_is_sm90() || !config_compiled(DType::bf16, 128, 128, cuda::FwdFamily::wgmma)) {
    GTEST_SKIP() << "needs the wgmma kernel";
  }
  int n = 0;
  auto run = [&](FwdCase c, int splits) {
    c.family = cuda::FwdFamily::wgmma;
    c.kv_splits = splits;
    c.seed = uint64_t(300 + n++);
    expect_matches(c);
  };
  FwdCase d;  // decode
  d.batch = 3, d.sq = 1, d.sk = 1000, d.hq = 16, d.hkv = 2;
  run(d, 4);
  d.pack_gqa = false, d.sinks = true, d.softcap = 10.0f;
  run(d, 7);
  d.sinks = false, d.softcap = 0.0f, d.dqk = d.dv = 64;
  run(d, 32);
  FwdCase c;  // prefill
  c.batch = 2, c.sq = 300, c.sk = 700, c.hq = 4, c.hkv = 2;
  for (const MaskSpec& m : {MaskSpec::none(), MaskSpec::causal(), MaskSpec::window(90, 20)}) {
    c.mask = m;
    run(c, 3);
  }
  c.mask = MaskSpec::causal();
  c.sinks = true;
  run(c, 9);  // most early query tiles have fewer key tiles than splits
  c.sinks = false;
  c.force_block_map = true;
  run(c, 2);
  c.force_block_map = false;
  c.mask = MaskSpec::none();
  c.varlen_q = {1, 130, 257}, c.varlen_k = {600, 129, 300};
  run(c, 4);
  c.varlen_q.clear(), c.varlen_k.clear();
  c.mask = MaskSpec::window(50, 0);
  c.v_pokes = {{1, 333, 1, 5, std::numeric_limits<float>::infinity()}};
  run(c, 3);
}

// Builds a valid problem on the GPU whose fields a test then breaks.
struct Refusal {
  DeviceBuffer q{1 << 20}, k{1 << 20}, v{1 << 20}, o{1 << 20};
  AttentionProblem p;
  Refusal(DType t, int64_t dqk, int64_t dv) {
    const Device gpu{DeviceType::cuda, 0};
    p.q = TensorView::contiguous(q.ptr, t, {1, 16, 2, dqk}, gpu);
    p.k = TensorView::contiguous(k.ptr, t, {1, 16, 2, dqk}, gpu);
    p.v = TensorView::contiguous(v.ptr, t, {1, 16, 2, dv}, gpu);
    p.o = TensorView::contiguous(o.ptr, t, {1, 16, 2, dv}, gpu);
  }
  std::string reason() const {
    const Status s = supports(p, "cuda");
    EXPECT_FALSE(s.ok);
    return s.reason;
  }
};

TEST(CudaFwd, RefusesWithReasons) {
  SKIP_WITHOUT_GPU();
  {
    Refusal r(DType::bf16, 80, 80);
    EXPECT_NE(r.reason().find("head_dim 80 is not supported (64, 96, 128, (192, 128), 256)"),
              std::string::npos)
        << r.reason();
  }
  {
    Refusal r(DType::bf16, 128, 64);
    EXPECT_NE(r.reason().find("(128, 64)"), std::string::npos) << r.reason();
  }
  {
    Refusal r(DType::f64, 64, 64);
    EXPECT_NE(r.reason().find("f64"), std::string::npos) << r.reason();
  }
  {
    Refusal r(DType::f16, 64, 64);
    r.p.o.dtype = DType::bf16;
    EXPECT_NE(r.reason().find("o dtype bf16"), std::string::npos) << r.reason();
  }
  {
    Refusal r(DType::bf16, 64, 64);  // head dim with stride 2: a view of every other element
    r.p.q = TensorView::strided(r.q.ptr, DType::bf16, {1, 16, 2, 64}, {4096, 256, 128, 2},
                                r.p.q.device);
    EXPECT_NE(r.reason().find("contiguous"), std::string::npos) << r.reason();
  }
  {
    Refusal r(DType::bf16, 64, 64);  // token stride of 130 elements: rows not 16-byte aligned
    r.p.k =
        TensorView::strided(r.k.ptr, DType::bf16, {1, 16, 2, 64}, {2080, 130, 64, 1}, r.p.k.device);
    EXPECT_NE(r.reason().find("16-byte"), std::string::npos) << r.reason();
  }
  {
    Refusal r(DType::bf16, 64, 64);
    r.p.q.device = {};  // host memory
    r.p.k.device = r.p.v.device = r.p.o.device = {};
    std::vector<uint16_t> h(4 * 16 * 2 * 64);
    r.p.q.data = r.p.k.data = h.data();
    std::vector<uint16_t> ho(16 * 2 * 64);
    r.p.o.data = ho.data();
    EXPECT_NE(r.reason().find("GPU memory"), std::string::npos) << r.reason();
  }
  try {
    Refusal r(DType::bf16, 64, 64);
    r.p.mask = MaskSpec::parse("longheads:chunk=4,k=3");
    EXPECT_NE(r.reason().find("selects keys from q and k"), std::string::npos) << r.reason();
  } catch (const Error&) {
    // this build has no data-dependent kinds
  }
}

TEST(CudaFwd, RefusalLeavesOutputsUntouched) {
  SKIP_WITHOUT_GPU();
  Refusal r(DType::bf16, 80, 80);
  CUDA_OK(cudaMemset(r.o.ptr, 0x3c, 4096));
  EXPECT_THROW(attention(r.p, {.backend = "cuda"}), Error);
  std::vector<unsigned char> back(4096);
  CUDA_OK(cudaMemcpy(back.data(), r.o.ptr, back.size(), cudaMemcpyDeviceToHost));
  for (unsigned char b : back) ASSERT_EQ(b, 0x3c);
}

TEST(CudaFwd, AutoPicksCudaForGpuTensors) {
  SKIP_WITHOUT_GPU();
  Refusal r(DType::bf16, 128, 128);
  EXPECT_EQ(choose_backend(r.p), "cuda");
}

}  // namespace
}  // namespace polyhead::testing_cuda
