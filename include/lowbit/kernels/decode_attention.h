// Decode attention (one new query per head) for grouped-query attention, split over the KV cache's
// positions so that the work divides into fixed items whatever the thread count.
//
// One call covers one KV head, the `group` query heads that read it (Llama's GQA: query head h reads
// KV head h / group), and one chunk of cache positions. It reads each key and value row once for all
// `group` heads, and returns per query head the chunk's partial softmax — the flash-decoding split
// (Dao et al., "Flash-Decoding for long-context inference", 2023):
//     s_p = scale · q·k_p,   m = max_p s_p,   l = Σ_p e^(s_p − m),   o = Σ_p e^(s_p − m) · v_p
// (o unnormalized). attention_merge then combines the chunks in order:
//     M = max_c m_c,   out = Σ_c e^(m_c − M) · o_c  /  Σ_c e^(m_c − M) · l_c.
// Vectorized with Highway (run-time dispatch; exp by Highway's contrib Exp); a fixed chunking gives
// the same bits on any thread count, and the result is softmax(q·Kᵀ·scale)·V within f32 rounding.
#pragma once

#include <cstdint>

#include "lowbit/core/dtype.h"

namespace lowbit {

struct AttentionChunk {
  const float* q = nullptr;      // group × head_dim, contiguous (the query heads of one KV head)
  const void* keys = nullptr;    // the chunk's first key row at this KV head's columns
  const void* values = nullptr;  // likewise for values
  DType dtype = DType::kF32;     // the cache's elements: kF32 or kF16 (widened in registers)
  int64_t stride = 0;            // elements between consecutive positions' rows (the cache's kv_dim)
  int64_t positions = 0, group = 0, head_dim = 0;
  float scale = 1.0f;
};

// Writes max_score[group], sum[group] and out[group × head_dim] for one chunk (positions ≥ 1);
// `scores` is scratch of group × positions floats. Error for another cache dtype.
void attention_chunk(const AttentionChunk& c, float* scores, float* max_score, float* sum, float* out);

// out[head_dim] ← the softmax-weighted value of `chunks` partials of one query head, in chunk order:
// max_score[k], sum[k], partial[k·partial_stride + d].
void attention_merge(const float* max_score, const float* sum, const float* partial, int64_t partial_stride,
                     int64_t chunks, int64_t head_dim, float* out);

}  // namespace lowbit
