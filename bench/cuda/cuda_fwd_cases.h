// The cases of the CUDA forward benchmark (DESIGN.md section 7, issue 4): bf16, 16k tokens per
// batch at hidden size 2048 (B * S = 16384, H = 2048 / D) for D = 64 / 128 / 256 and S = 512 to
// 16k, causal and not; GQA 32/8 at 8k; a causal sliding window of 1024 keys at 16k (d128, d64); 2-D
// neighborhood attention 17x17 on a 128x128 token grid; MLA prefill (Dqk 192, Dv 128) at 512, 2k
// and 8k; decode (one query row per sequence, no mask) with GQA 64/8 over a 32k cache, at batch 8
// (the grid's decode case) and 1; and the cost of a work item: 2048 items of one 128-row query
// tile each (128 sequences x 16 heads, D 128, no mask) over 1, 2, 4, 8 and 16 key tiles of 128,
// whose times against the tile count fit a fixed cost per item and a cost per tile
// (report.py). bench/anchors/ torch_sdpa.py times the same list (written to JSON by
// cuda_fwd_bench --cases) through PyTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace polyhead::bench {

struct FwdBenchCase {
  std::string name;
  std::string kind;  // dense | causal | window | na2d | decode (no mask, seqlen_q rows)
  int64_t batch = 1, seqlen = 0, heads_q = 0, heads_kv = 0, head_dim = 128;
  int64_t head_dim_v = 0;  // Dv; 0: head_dim
  int64_t seqlen_q = 0;    // query rows per sequence; 0: seqlen (decode: 1)
  int64_t window = 0;      // window: keys [i - window + 1, i]
  int64_t na_grid = 0;     // na2d: grid side (seqlen = side^2)
  int64_t na_kernel = 0;   // na2d: kernel side
};

inline std::vector<FwdBenchCase> fwd_bench_cases(bool quick) {
  std::vector<FwdBenchCase> cases;
  const std::vector<int64_t> lengths =
      quick ? std::vector<int64_t>{2048, 16384}
            : std::vector<int64_t>{512, 1024, 2048, 4096, 8192, 16384};
  for (int64_t d : {64, 128, 256}) {
    for (bool causal : {false, true}) {
      for (int64_t s : lengths) {
        FwdBenchCase c;
        c.kind = causal ? "causal" : "dense";
        c.head_dim = d;
        c.seqlen = s;
        c.batch = 16384 / s;
        c.heads_q = c.heads_kv = 2048 / d;
        c.name = c.kind + "_d" + std::to_string(d) + "_s" + std::to_string(s);
        cases.push_back(c);
      }
    }
  }
  for (bool causal : {false, true}) {
    FwdBenchCase c;
    c.kind = causal ? "causal" : "dense";
    c.name = std::string("gqa32x8_") + c.kind + "_d128_s8192";
    c.batch = 2, c.seqlen = 8192, c.heads_q = 32, c.heads_kv = 8, c.head_dim = 128;
    cases.push_back(c);
  }
  // MLA prefill (DeepSeek-V2/V3): Dqk 192 (128 + 64 rotary), Dv 128, 16 heads, 16k tokens.
  for (bool causal : {false, true}) {
    for (int64_t s : quick ? std::vector<int64_t>{8192} : std::vector<int64_t>{512, 2048, 8192}) {
      FwdBenchCase c;
      c.kind = causal ? "causal" : "dense";
      c.name = std::string("mla192x128_") + c.kind + "_s" + std::to_string(s);
      c.batch = 16384 / s, c.seqlen = s, c.heads_q = c.heads_kv = 16, c.head_dim = 192;
      c.head_dim_v = 128;
      cases.push_back(c);
    }
  }
  // The window of issue 4's target at d128, and at d64 (GPT-OSS's head size, where the cuDNN
  // frontend publishes an H200 figure for a 1024 window).
  for (int64_t d : {128, 64}) {
    FwdBenchCase c;
    c.kind = "window";
    c.name = "window1024_causal_d" + std::to_string(d) + "_s16384";
    c.batch = 1, c.seqlen = 16384, c.heads_q = c.heads_kv = 2048 / d, c.head_dim = d;
    c.window = 1024;
    cases.push_back(c);
  }
  {
    FwdBenchCase c;
    c.kind = "na2d";
    c.name = "na2d_17x17_grid128_d128";
    c.batch = 1, c.seqlen = 128 * 128, c.heads_q = c.heads_kv = 16, c.head_dim = 128;
    c.na_grid = 128, c.na_kernel = 17;
    cases.push_back(c);
  }
  for (int64_t tiles : quick ? std::vector<int64_t>{} : std::vector<int64_t>{1, 2, 4, 8, 16}) {
    FwdBenchCase c;
    c.kind = "dense";
    c.name = "items_d128_k" + std::to_string(128 * tiles);
    c.batch = 128, c.seqlen = 128 * tiles, c.seqlen_q = 128, c.heads_q = c.heads_kv = 16;
    c.head_dim = 128;
    cases.push_back(c);
  }
  for (int64_t b : {8, 1}) {
    FwdBenchCase c;
    c.kind = "decode";
    c.name = "decode_gqa64x8_d128_k32768_b" + std::to_string(b);
    c.batch = b, c.seqlen = 32768, c.seqlen_q = 1, c.heads_q = 64, c.heads_kv = 8;
    c.head_dim = 128;
    cases.push_back(c);
  }
  return cases;
}

}  // namespace polyhead::bench
