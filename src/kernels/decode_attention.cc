// Decode attention per (KV head, chunk of positions): kernels/decode_attention.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/decode_attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <algorithm>
#include <cmath>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/kernels/decode_attention.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Cache elements as f32: loaded, or f16 widened.
template <class D>
HWY_INLINE hn::Vec<D> LoadCache(D df, const float* p) {
  return hn::LoadU(df, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadCache(D df, const hwy::float16_t* p) {
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, p));
}
inline float Scalar(const float* p, size_t i) { return p[i]; }
inline float Scalar(const hwy::float16_t* p, size_t i) {
  return f16_bits_to_f32(reinterpret_cast<const uint16_t*>(p)[i]);
}

// Σ a[d]·b[d]: two vector accumulators, their lane sum, then the scalar tail.
template <class T>
HWY_INLINE float Dot(const float* a, const T* b, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t lanes = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df);
  size_t d = 0;
  for (; d + 2 * lanes <= n; d += 2 * lanes) {
    a0 = hn::MulAdd(hn::LoadU(df, a + d), LoadCache(df, b + d), a0);
    a1 = hn::MulAdd(hn::LoadU(df, a + d + lanes), LoadCache(df, b + d + lanes), a1);
  }
  for (; d + lanes <= n; d += lanes) a0 = hn::MulAdd(hn::LoadU(df, a + d), LoadCache(df, b + d), a0);
  float total = d > 0 ? hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, a1))) : 0.0f;
  for (; d < n; ++d) total += a[d] * Scalar(b, d);
  return total;
}

// row[0 .. n) ← e^(row − m) with m = max(row); returns m and writes Σ e^(row − m) to *sum.
HWY_INLINE float ExpShifted(float* row, size_t n, float* sum) {
  const hn::ScalableTag<float> df;
  const size_t lanes = hn::Lanes(df);
  float m = row[0];
  for (size_t p = 1; p < n; ++p) m = std::max(m, row[p]);
  const auto vm = hn::Set(df, m);
  auto total = hn::Zero(df);
  size_t p = 0;
  for (; p + lanes <= n; p += lanes) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, row + p), vm));
    hn::StoreU(e, df, row + p);
    total = hn::Add(total, e);
  }
  float s = p > 0 ? hn::GetLane(hn::SumOfLanes(df, total)) : 0.0f;
  for (; p < n; ++p) {
    row[p] = std::exp(row[p] - m);
    s += row[p];
  }
  *sum = s;
  return m;
}

// o[0 .. n) += w · v[0 .. n).
template <class T>
HWY_INLINE void AddScaled(float w, const T* v, float* o, size_t n) {
  const hn::ScalableTag<float> df;
  const size_t lanes = hn::Lanes(df);
  const auto vw = hn::Set(df, w);
  size_t d = 0;
  for (; d + lanes <= n; d += lanes) hn::StoreU(hn::MulAdd(vw, LoadCache(df, v + d), hn::LoadU(df, o + d)), df, o + d);
  for (; d < n; ++d) o[d] += w * Scalar(v, d);
}

template <class T>
void ChunkOf(const AttentionChunk& c, float* scores, float* max_score, float* sum, float* out) {
  const size_t positions = static_cast<size_t>(c.positions), group = static_cast<size_t>(c.group);
  const size_t dim = static_cast<size_t>(c.head_dim), stride = static_cast<size_t>(c.stride);
  // Scores, each key row read once for the group's heads.
  for (size_t p = 0; p < positions; ++p) {
    const T* k = static_cast<const T*>(c.keys) + p * stride;
    for (size_t h = 0; h < group; ++h) scores[h * positions + p] = Dot(c.q + h * dim, k, dim) * c.scale;
  }
  for (size_t h = 0; h < group; ++h) max_score[h] = ExpShifted(scores + h * positions, positions, sum + h);
  // o_h = Σ_p e_h,p · v_p, each value row read once for the group's heads.
  std::fill(out, out + group * dim, 0.0f);
  for (size_t p = 0; p < positions; ++p) {
    const T* v = static_cast<const T*>(c.values) + p * stride;
    for (size_t h = 0; h < group; ++h) AddScaled(scores[h * positions + p], v, out + h * dim, dim);
  }
}

void Chunk(const AttentionChunk& c, float* scores, float* max_score, float* sum, float* out) {
  if (c.dtype == DType::kF16) return ChunkOf<hwy::float16_t>(c, scores, max_score, sum, out);
  return ChunkOf<float>(c, scores, max_score, sum, out);
}

void Merge(const float* max_score, const float* sum, const float* partial, size_t partial_stride, size_t chunks,
           size_t dim, float* out) {
  float m = max_score[0];
  for (size_t k = 1; k < chunks; ++k) m = std::max(m, max_score[k]);
  std::fill(out, out + dim, 0.0f);
  double total = 0;
  for (size_t k = 0; k < chunks; ++k) {
    const float w = std::exp(max_score[k] - m);
    total += static_cast<double>(w) * sum[k];
    AddScaled(w, partial + k * partial_stride, out, dim);
  }
  const float inverse = static_cast<float>(1.0 / total);
  for (size_t d = 0; d < dim; ++d) out[d] *= inverse;
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {
HWY_EXPORT(Chunk);
HWY_EXPORT(Merge);

void attention_chunk(const AttentionChunk& c, float* scores, float* max_score, float* sum, float* out) {
  if (c.dtype != DType::kF32 && c.dtype != DType::kF16)
    throw Error("decode attention", "a KV cache of F32 or F16, not " + std::string(dtype_name(c.dtype)));
  HWY_DYNAMIC_DISPATCH(Chunk)(c, scores, max_score, sum, out);
}

void attention_merge(const float* max_score, const float* sum, const float* partial, int64_t partial_stride,
                     int64_t chunks, int64_t head_dim, float* out) {
  HWY_DYNAMIC_DISPATCH(Merge)(max_score, sum, partial, static_cast<size_t>(partial_stride),
                              static_cast<size_t>(chunks), static_cast<size_t>(head_dim), out);
}
}  // namespace lowbit
#endif
