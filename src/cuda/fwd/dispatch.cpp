// Forward dispatch: the support checks that name every refusal, and the call: the kernel
// configuration (select.h), parameters, small uploads, launch.
#include "cuda/fwd/dispatch.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/problem_access.h"
#include "cuda/cuda_check.h"
#include "cuda/device_upload.h"
#include "cuda/fwd/block_map_cache.h"
#include "cuda/fwd/block_map_device.h"
#include "cuda/fwd/kernel_table.h"
#include "cuda/fwd/launch.h"
#include "cuda/fwd/patch_map.h"
#include "cuda/fwd/schedule.h"
#include "cuda/fwd/select.h"
#include "cuda/fwd/split_combine.h"
#include "cuda/fwd/tile_size.h"
#include "fwd_table.inc"
#include "polyhead/error.h"

namespace polyhead::cuda {
Status fwd_supports(const AttentionProblem& p, const ProblemShape& s) {
  if (p.q.device.type != DeviceType::cuda) {
    return Status::no("tensors are on " + to_string(p.q.device) +
                      "; the cuda backend needs GPU memory");
  }
  int cc = 0;
  try {
    cc = compute_capability(p.q.device.index);
  } catch (const Error& e) {
    return Status::no(std::string("cannot query ") + to_string(p.q.device) + ": " + e.what());
  }
  if (cc < 80) {
    return Status::no("compute capability " + std::to_string(cc / 10) + "." +
                      std::to_string(cc % 10) + " of " + to_string(p.q.device) +
                      " is below 8.0; the forward kernels need sm_80 or newer");
  }

  const DType dt = p.q.dtype;
  if (dt != DType::f16 && dt != DType::bf16 && dt != DType::f32) {
    return Status::no("q, k, v dtype " + std::string(dtype_name(dt)) +
                      " is not supported (f16, bf16, f32)");
  }
  if (p.o.dtype != dt && p.o.dtype != DType::f32) {
    return Status::no("o dtype " + std::string(dtype_name(p.o.dtype)) + " is not supported for " +
                      std::string(dtype_name(dt)) + " inputs (" + std::string(dtype_name(dt)) +
                      " or f32)");
  }
  if (p.lse && p.lse->dtype != DType::f32) {
    return Status::no("lse dtype " + std::string(dtype_name(p.lse->dtype)) +
                      " is not supported (f32)");
  }

  const int64_t dqk = s.head_dim_qk, dv = s.head_dim_v;
  std::string key = ",";
  key += std::to_string(dqk);
  key += ':';
  key += std::to_string(dv);
  key += ',';
  const bool family_has =
      std::string_view(POLYHEAD_FWD_ALL_PAIRS_CSV).find(key) != std::string_view::npos;
  if (!family_has) {
    return Status::no("head_dim " + head_dims(dqk, dv) + " is not supported (" +
                      POLYHEAD_FWD_ALL_HEADDIMS + ")");
  }
  const bool compiled = dt == DType::f32 ? simt_pair(dqk, dv) : find_tc(dt, dqk, dv) != nullptr;
  if (!compiled) {
    return Status::no(
        std::string(dtype_name(dt)) + " head_dim " + head_dims(dqk, dv) +
        " is not compiled in this build (POLYHEAD_CUDA_HEADDIMS=" + POLYHEAD_FWD_OPTION_HEADDIMS +
        ", POLYHEAD_CUDA_DTYPES=" + POLYHEAD_FWD_OPTION_DTYPES + ")");
  }

  for (auto [t, name] :
       {std::pair{&p.q, "q"}, std::pair{&p.k, "k"}, std::pair{&p.v, "v"}, std::pair{&p.o, "o"}}) {
    if (t->stride[3] != 1) {
      return Status::no(std::string(name) + " head dimension has stride " +
                        std::to_string(t->stride[3]) + "; the cuda backend needs it contiguous " +
                        "(stride 1): " + t->describe());
    }
  }
  if (dt != DType::f32) {
    for (auto [t, name] : {std::pair{&p.q, "q"}, std::pair{&p.k, "k"}, std::pair{&p.v, "v"}}) {
      if (!aligned(*t, 16)) {
        return Status::no(std::string(name) +
                          " rows are not 16-byte aligned (pointer and batch, token and head "
                          "strides must be multiples of 8 elements for 16-byte loads): " +
                          t->describe());
      }
    }
    if (!aligned(p.o, p.o.dtype == DType::f32 ? 8 : 4)) {
      return Status::no(
          "o rows are not aligned for 2-element stores (pointer and strides must be even): " +
          p.o.describe());
    }
  }

  const int64_t total_q = p.q.shape[1], total_k = p.k.shape[1];
  constexpr int64_t kMax32 = std::numeric_limits<int32_t>::max();
  if (total_q >= kMax32 || total_k >= kMax32) {
    return Status::no("sequence length " + std::to_string(std::max(total_q, total_k)) +
                      " does not fit the kernels' int32 token indices");
  }
  if (s.heads_q > 65535 || (!s.varlen && s.batch > 65535)) {
    return Status::no("grid limits: at most 65535 query heads and 65535 sequences (got " +
                      std::to_string(s.heads_q) + " heads, " + std::to_string(s.batch) +
                      " sequences)");
  }
  // Query tiles of the smallest tile height (32 rows) x heads x sequences: the persistent
  // kernels index work items in 32 bits.
  const int64_t items =
      (s.varlen ? total_q / 32 + s.batch : (s.seqlen_q + 31) / 32 * s.batch) * s.heads_q;
  if (items >= kMax32) {
    return Status::no("too much work for one call: " + std::to_string(items) +
                      " (32-row query tile, head) pairs; at most 2^31 - 1 (split the batch)");
  }

  if (!formula_mask(p.mask)) {
    if (p.mask.is_dynamic()) {
      return Status::no("mask '" + p.mask.to_string() +
                        "' selects keys from q and k on the host; the cuda backend would have "
                        "to copy them from the GPU and synchronize (not supported)");
    }
    if (s.varlen && p.cu_seqlens_q->device.type != DeviceType::cpu) {
      return Status::no("mask '" + p.mask.to_string() +
                        "' compiles a block map per sequence on the host; with a packed batch "
                        "it needs cu_seqlens on the host (they are on the GPU)");
    }
  }
  return Status::yes();
}

void fwd_run(const AttentionProblem& p, const ProblemShape& s, void* stream_ptr,
             const FwdOverrides& overrides) {
  const DeviceGuard guard(p.q.device.index);
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const bool simt = p.q.dtype == DType::f32;
  const TcConfig* tc = nullptr;
  std::optional<TokenOrder> order;       // patch order (token_order.h), wgmma only
  std::optional<CachedBlockMap> cached;  // the block map, when the device cache holds it
  if (!simt) tc = select_tc(p, s, stream, overrides, order, cached);
  POLYHEAD_CHECK(simt || tc != nullptr, "cuda backend: no kernel for this problem");
  const TileShape tile = simt ? TileShape{kSimtBlockM, kSimtBlockN} : tc->tile;

  FwdParams f;
  f.q = p.q.data;
  f.k = p.k.data;
  f.v = p.v.data;
  f.o = p.o.data;
  f.q_batch_stride = p.q.stride[0], f.q_row_stride = p.q.stride[1];
  f.q_head_stride = p.q.stride[2];
  f.k_batch_stride = p.k.stride[0], f.k_row_stride = p.k.stride[1];
  f.k_head_stride = p.k.stride[2];
  f.v_batch_stride = p.v.stride[0], f.v_row_stride = p.v.stride[1];
  f.v_head_stride = p.v.stride[2];
  f.o_batch_stride = p.o.stride[0], f.o_row_stride = p.o.stride[1];
  f.o_head_stride = p.o.stride[2];
  if (p.lse) {
    f.lse = static_cast<float*>(p.lse->data);
    f.lse_batch_stride = p.lse->stride[0], f.lse_head_stride = p.lse->stride[1];
    f.lse_row_stride = p.lse->stride[2];
  }
  f.batch = int32_t(s.batch);
  f.seqlen_q = int32_t(s.seqlen_q);
  f.seqlen_k = int32_t(s.seqlen_k);
  f.rows_q = p.q.shape[1];
  f.rows_k = p.k.shape[1];
  f.heads_q = int32_t(s.heads_q);
  f.group = int32_t(s.heads_q / s.heads_kv);
  f.scale = s.scale;
  f.scale_log2 = float(double(s.scale) * 1.4426950408889634);
  f.softcap = p.softcap;
  f.softcap_inv = p.softcap > 0.0f ? float(1.0 / double(p.softcap)) : 0.0f;
  if (p.alibi_slopes) {
    f.alibi = static_cast<const float*>(p.alibi_slopes->data);
    f.alibi_stride = p.alibi_slopes->stride[0];
  }
  if (p.sinks) {
    f.sinks = static_cast<const float*>(p.sinks->data);
    f.sinks_stride = p.sinks->stride[0];
  }
  // The plain path keeps raw dot products and needs scale > 0 to take their max.
  f.transform = p.softcap > 0.0f || p.alibi_slopes.has_value() || !(s.scale > 0.0f);
  f.o_f32 = p.o.dtype == DType::f32;
  f.top_left = p.mask.alignment() == Alignment::top_left;

  DeviceUpload upload(stream);
  size_t off_cu_q = 0, off_cu_k = 0;
  const bool host_cu = s.varlen && p.cu_seqlens_q->device.type == DeviceType::cpu;
  if (host_cu) {
    std::vector<int32_t> cq(size_t(s.batch + 1)), ck(size_t(s.batch + 1));
    for (int64_t b = 0; b <= s.batch; ++b) {
      cq[size_t(b)] =
          static_cast<const int32_t*>(p.cu_seqlens_q->data)[b * p.cu_seqlens_q->stride[0]];
      ck[size_t(b)] =
          static_cast<const int32_t*>(p.cu_seqlens_k->data)[b * p.cu_seqlens_k->stride[0]];
    }
    off_cu_q = upload.append(cq);
    off_cu_k = upload.append(ck);
  } else if (s.varlen) {
    f.cu_seqlens_q = static_cast<const int32_t*>(p.cu_seqlens_q->data);
    f.cu_seqlens_k = static_cast<const int32_t*>(p.cu_seqlens_k->data);
    f.cu_q_stride = p.cu_seqlens_q->stride[0];
    f.cu_k_stride = p.cu_seqlens_k->stride[0];
  }

  const bool use_map = overrides.force_block_map || !formula_mask(p.mask);
  POLYHEAD_CHECK(!use_map || !s.varlen || host_cu, "cuda backend: mask '", p.mask.to_string(),
                 "' needs cu_seqlens on the host to compile its block map");
  size_t off_rs = 0, off_rp = 0, off_tiles = 0, off_bits = 0;
  if (use_map) {
    f.mask_mode = FwdMaskMode::kBlockMap;
    if (!cached) {  // fit_block_map may have looked it up already
      cached = cached_block_map(p, s, tile, p.q.device.index, stream, order ? &*order : nullptr);
    }
    if (cached) {
      f.block_map = cached->map;
    } else {
      const HostBlockMap map = order ? build_patch_block_map(p, s, *order, tile)
                                     : build_block_map(p, s, detail::sequences(p, s), tile);
      off_rs = upload.append(map.row_start);
      off_rp = upload.append(map.row_ptr);
      off_tiles = upload.append(map.tiles);
      off_bits = upload.append(map.bits);
    }
    if (order) f.order = *order;
  } else if (const auto* w = p.mask.get_if<WindowMask>()) {
    f.window_left = w->left;
    f.window_right = w->right;
  }
  int64_t seqlen_q = s.seqlen_q, heads_q = s.heads_q;
  if (overrides.pack_gqa && packable_decode(p, s)) {
    // The group's query heads become the rows of one query tile: head h = kv * g + r is row r
    // of packed head kv, so rows step by the head stride and packed heads by g of them.
    const int64_t g = s.heads_q / s.heads_kv;
    f.seqlen_q = int32_t(g);
    f.heads_q = int32_t(s.heads_kv);
    f.group = 1;
    f.q_row_stride = p.q.stride[2], f.q_head_stride = g * p.q.stride[2];
    f.o_row_stride = p.o.stride[2], f.o_head_stride = g * p.o.stride[2];
    if (p.lse) {
      f.lse_row_stride = p.lse->stride[1];
      f.lse_head_stride = g * p.lse->stride[1];
    }
    f.window_left = f.window_right = -1;  // the one query row sees every key (packable_decode)
    seqlen_q = g;
    heads_q = s.heads_kv;
  }

  if (char* base = upload.upload()) {
    if (host_cu) {
      f.cu_seqlens_q = reinterpret_cast<const int32_t*>(base + off_cu_q);
      f.cu_seqlens_k = reinterpret_cast<const int32_t*>(base + off_cu_k);
    }
    if (use_map && !cached) {
      f.block_map.row_start = reinterpret_cast<const int32_t*>(base + off_rs);
      f.block_map.row_ptr = reinterpret_cast<const int32_t*>(base + off_rp);
      f.block_map.tiles = reinterpret_cast<const int32_t*>(base + off_tiles);
      f.block_map.bits = reinterpret_cast<const uint32_t*>(base + off_bits);
    }
  }

  const int64_t q_tiles = query_tiles(p, s, seqlen_q, tile);
  POLYHEAD_CHECK(q_tiles < std::numeric_limits<int32_t>::max(), "cuda backend: ", q_tiles,
                 " query tiles exceed the grid");
  f.q_tiles = int32_t(q_tiles);
  f.max_ctas = overrides.max_ctas;
#if POLYHEAD_CUDA_TIMELINE
  f.timeline = overrides.timeline;
#endif
  const int64_t seqs = s.varlen ? 1 : s.batch;
  POLYHEAD_CHECK(q_tiles * heads_q * seqs < std::numeric_limits<int32_t>::max(),
                 "cuda backend: ", q_tiles * heads_q * seqs,
                 " (query tile, head, sequence) work items exceed 2^31 - 1");
  const int32_t splits =
      simt || tc->kind != TcKind::wgmma || order
          ? 1
          : kv_splits(overrides, q_tiles * heads_q * seqs, s, tile, p.q.device.index);
  POLYHEAD_CHECK(q_tiles * heads_q * seqs * splits < std::numeric_limits<int32_t>::max(),
                 "cuda backend: ", splits, " key splits of ", q_tiles * heads_q * seqs,
                 " work items exceed 2^31 - 1");
  // Under a mask or varlen the cost of a query tile varies with its position.
  set_work_list(f, q_tiles, heads_q, seqs, s.varlen || p.mask.get_if<NoMask>() == nullptr, splits);
#if POLYHEAD_FWD_SIMT_F32
  if (simt) {
    launch_fwd_simt_f32(f, int(s.head_dim_qk), int(s.head_dim_v), stream);
    return;
  }
#endif
  if (tc->kind == TcKind::ws && overrides.ws_persistent) {
    // The list for the exact pass (fwd_ws/exact_items.cuh): a count, zeroed here, and room
    // for every consumer warpgroup of every item (at most 2 per item, tile_size.h), in one
    // stream-ordered allocation freed once both kernels are queued.
    void* work = nullptr;
    POLYHEAD_CUDA_CHECK(
        cudaMallocAsync(&work, sizeof(int32_t) * (2 * size_t(f.work_items) + 4), stream));
    POLYHEAD_CUDA_CHECK(cudaMemsetAsync(work, 0, sizeof(int32_t), stream));
    f.redo_count = static_cast<int32_t*>(work);
    f.redo_items = reinterpret_cast<uint32_t*>(f.redo_count + 4);
    tc->launch(f, stream);
    POLYHEAD_CUDA_CHECK(cudaFreeAsync(work, stream));
    return;
  }
  if (splits == 1) {
    tc->launch(f, stream);
    return;
  }
  // The shares' O and LSE live in one stream-ordered allocation, freed on the stream once the
  // combine is queued.
  const int64_t q_rows = s.varlen ? p.q.shape[1] : int64_t(s.batch) * seqlen_q;
  f.split_rows = q_rows * heads_q;
  const size_t bytes = size_t(splits) * size_t(f.split_rows) * size_t(s.head_dim_v + 1) * 4;
  void* work = nullptr;
  POLYHEAD_CUDA_CHECK(cudaMallocAsync(&work, bytes, stream));
  f.split_o = static_cast<float*>(work);
  f.split_lse = f.split_o + size_t(splits) * size_t(f.split_rows) * size_t(s.head_dim_v);
  tc->launch(f, stream);
  launch_split_combine(f, int(s.head_dim_v), p.o.dtype, stream);
  POLYHEAD_CUDA_CHECK(cudaFreeAsync(work, stream));
}

}  // namespace polyhead::cuda
