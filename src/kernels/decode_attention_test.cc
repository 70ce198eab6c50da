// Decode attention per (KV head, chunk): chunk partials merged in order equal softmax(q·Kᵀ·scale)·V
// computed in double from the same cache values, on every compiled SIMD target, for f32 and f16
// caches, group sizes 1–4, head widths below, at and above a vector (tails), and chunkings that
// leave a short last chunk.
#include "lowbit/kernels/decode_attention.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/random.h"

namespace lowbit {
namespace {

struct Case {
  int64_t group, head_dim, positions, chunk;
};

// Runs the chunks of one KV head (columns at `offset` of rows `stride` wide) and merges each query head.
std::vector<float> chunked_attention(const std::vector<float>& q, const void* keys, const void* values, DType dtype,
                                     int64_t stride, int64_t offset, const Case& c, float scale) {
  const int64_t chunks = (c.positions + c.chunk - 1) / c.chunk;
  const size_t element = dtype_size(dtype);
  std::vector<float> max_score(chunks * c.group), sum(chunks * c.group), partial(chunks * c.group * c.head_dim);
  std::vector<float> scores(c.group * c.chunk);
  for (int64_t k = 0; k < chunks; ++k) {
    AttentionChunk a;
    a.q = q.data();
    a.keys = static_cast<const uint8_t*>(keys) + (k * c.chunk * stride + offset) * element;
    a.values = static_cast<const uint8_t*>(values) + (k * c.chunk * stride + offset) * element;
    a.dtype = dtype;
    a.stride = stride;
    a.positions = std::min(c.chunk, c.positions - k * c.chunk);
    a.group = c.group;
    a.head_dim = c.head_dim;
    a.scale = scale;
    attention_chunk(a, scores.data(), &max_score[k * c.group], &sum[k * c.group], &partial[k * c.group * c.head_dim]);
  }
  std::vector<float> out(c.group * c.head_dim);
  for (int64_t h = 0; h < c.group; ++h) {
    std::vector<float> m(chunks), l(chunks);
    for (int64_t k = 0; k < chunks; ++k) m[k] = max_score[k * c.group + h], l[k] = sum[k * c.group + h];
    attention_merge(m.data(), l.data(), &partial[h * c.head_dim], c.group * c.head_dim, chunks, c.head_dim,
                    &out[h * c.head_dim]);
  }
  return out;
}

TEST(DecodeAttention, ChunksMergedEqualTheSoftmaxOnEveryTarget) {
  const Case cases[] = {{1, 8, 1, 64},   {2, 8, 37, 16},   {3, 64, 64, 64}, {3, 64, 200, 64},
                        {4, 128, 129, 32}, {2, 20, 70, 64}, {3, 64, 577, 64}};
  const CounterRng rng(11, 2);
  uint64_t counter = 0;
  for (uint64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const DType dtype : {DType::kF32, DType::kF16}) {
      for (const Case& c : cases) {
        SCOPED_TRACE(std::string(hwy::TargetName(target)) + " " + std::string(dtype_name(dtype)) + " group " +
                     std::to_string(c.group) + " head_dim " + std::to_string(c.head_dim) + " positions " +
                     std::to_string(c.positions) + " chunk " + std::to_string(c.chunk));
        // Rows of two KV heads; this one's columns start at head_dim (offset), as in the cache.
        const int64_t stride = 2 * c.head_dim, offset = c.head_dim;
        const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
        std::vector<float> q(c.group * c.head_dim), k(c.positions * stride), v(c.positions * stride);
        for (auto& x : q) x = 3.0f * (rng.uniform(counter++) * 2 - 1);
        for (auto& x : k) x = rng.uniform(counter++) * 2 - 1;
        for (auto& x : v) x = rng.uniform(counter++) * 2 - 1;
        std::vector<uint16_t> k16(k.size()), v16(v.size());
        if (dtype == DType::kF16)
          for (size_t i = 0; i < k.size(); ++i) {  // the cache holds f16: the reference reads the same values
            k16[i] = f32_to_f16_bits(k[i]), k[i] = f16_bits_to_f32(k16[i]);
            v16[i] = f32_to_f16_bits(v[i]), v[i] = f16_bits_to_f32(v16[i]);
          }
        const void* keys = dtype == DType::kF16 ? static_cast<const void*>(k16.data()) : k.data();
        const void* values = dtype == DType::kF16 ? static_cast<const void*>(v16.data()) : v.data();
        const auto out = chunked_attention(q, keys, values, dtype, stride, offset, c, scale);
        for (int64_t h = 0; h < c.group; ++h) {
          std::vector<double> s(c.positions);
          double m = -INFINITY, total = 0;
          for (int64_t p = 0; p < c.positions; ++p) {
            double dot = 0;
            for (int64_t d = 0; d < c.head_dim; ++d) dot += double(q[h * c.head_dim + d]) * k[p * stride + offset + d];
            s[p] = dot * scale;
            m = std::max(m, s[p]);
          }
          for (auto& x : s) total += (x = std::exp(x - m));
          for (int64_t d = 0; d < c.head_dim; ++d) {
            double want = 0;
            for (int64_t p = 0; p < c.positions; ++p) want += s[p] / total * v[p * stride + offset + d];
            ASSERT_NEAR(out[h * c.head_dim + d], want, 2e-6) << "head " << h << " d " << d;
          }
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(DecodeAttention, NonFiniteQueriesGiveNaNAndOtherCachesAreRefused) {
  const Case c{2, 16, 40, 64};
  std::vector<float> q(32, 0.5f), k(40 * 16, 0.25f), v(40 * 16, 1.0f);
  q[3] = std::numeric_limits<float>::quiet_NaN();  // head 0 only
  const auto out = chunked_attention(q, k.data(), v.data(), DType::kF32, 16, 0, {1, 16, 40, 64}, 0.25f);
  EXPECT_TRUE(std::isnan(out[0]));
  const auto second = chunked_attention(std::vector<float>(q.begin() + 16, q.end()), k.data(), v.data(), DType::kF32,
                                        16, 0, {1, 16, 40, 64}, 0.25f);
  EXPECT_FLOAT_EQ(second[5], 1.0f);  // equal keys: uniform weights over values of 1
  std::vector<float> scores(64), m(2), l(2), o(32);
  AttentionChunk a;
  a.q = q.data(), a.keys = k.data(), a.values = v.data(), a.dtype = DType::kBF16;
  a.stride = 16, a.positions = 40, a.group = c.group, a.head_dim = c.head_dim;
  EXPECT_THROW(attention_chunk(a, scores.data(), m.data(), l.data(), o.data()), Error);
}

}  // namespace
}  // namespace lowbit
