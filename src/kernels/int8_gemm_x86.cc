// x86 kernels of the int8-activation prefill GEMM (kernels/int8_gemm.h) on 16-row panels
// (int8_gemm_internal.h), compiled per instruction set by target attributes and chosen at run time.
// Each lane holds one row and runs the definition's steps for it in order, so the results equal the
// scalar panel kernel bit for bit:
//   VNNI:  I_b + 128·Σv = Σ_j vpdpbusd(q+128 bytes of quad j broadcast, the panel's quad-j vector),
//          starting from the panel's −128·Σv, so the int32 lane is exactly I_b;
//   AVX2:  8 rows per register (a panel's two halves); I_b = Σ_j vpmaddwd(vpmaddubsw(|v|, q·sign(v)), 1):
//          |v| ≤ 128 and |q| ≤ 127 keep every int16 pair sum ≤ 32512, so nothing saturates.
// Then G = fma(float(I_b), dx_b, G) per block, Y = fma(G, s'_g, Y) (and fma(m_g, X_g, Y)) per group.
//
// Register tiles: AVX-512 runs 2 panels × 4 tokens (8 int32 sums, 8 group accumulators, 8 outputs in
// 24 of the 32 registers), so each panel vector loaded serves 4 tokens and each broadcast q serves
// 2 panels; AVX2 runs 1 panel (2 halves) × 2 tokens in its 16 registers.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cstring>

#include "src/kernels/int8_gemm_internal.h"
#include "lowbit/numerics/packing.h"
#include "src/kernels/narrow_codes_x86.h"

namespace lowbit::int8_gemm_detail {
namespace {
constexpr size_t kQuads = kBlock / kQuad;  // 8 column quads per block

inline int32_t load_quad(const int8_t* q) {
  int32_t v;
  std::memcpy(&v, q, sizeof v);
  return v;
}
}  // namespace

// -------------------------------------------------------------------------------------------- AVX-512
#define LOWBIT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")))

namespace {
// kQps: quads per segment (8, or 4 for segments of 16: then a piece is one or two segments).
template <int R, int T, bool kMin, size_t kQps>
LOWBIT_VNNI void vnni_tile(const Tokens& x, const Panel* p, size_t t0, const size_t* valid, float* y,
                           size_t y_stride) {
  const size_t width = x.blocks * kBlock;
  __m512 out[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r][t] = _mm512_setzero_ps();
  for (size_t g = 0; g < x.groups; ++g) {
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    const size_t s1 = std::min(x.segments, (g + 1) * x.segments_per_group);
    for (size_t s = g * x.segments_per_group; s < s1;) {  // one piece: a block's segments in g
      const size_t end = x.piece_end(s, s1), b = s / x.segments_per_block;
      __m512i sum[R][T];
      for (int r = 0; r < R; ++r) {
        __m512i bias = _mm512_loadu_si512(p[r].bias + s * kPanelRows);
        for (size_t k = s + 1; k < end; ++k) bias = _mm512_add_epi32(bias, _mm512_loadu_si512(p[r].bias + k * kPanelRows));
        for (int t = 0; t < T; ++t) sum[r][t] = bias;
      }
      for (; s < end; ++s) {
        const int8_t* q = x.q + t0 * width + s * kQps * kQuad;
#pragma GCC unroll 8
        for (size_t j = 0; j < kQps; ++j) {
          __m512i w[R];
          for (int r = 0; r < R; ++r) w[r] = _mm512_loadu_si512(p[r].v + (s * kQps + j) * kPanelRows * kQuad);
          for (int t = 0; t < T; ++t) {
            const __m512i xq = _mm512_set1_epi32(load_quad(q + t * width + j * kQuad));
            for (int r = 0; r < R; ++r) sum[r][t] = _mm512_dpbusd_epi32(sum[r][t], xq, w[r]);
          }
        }
      }
      for (int t = 0; t < T; ++t) {
        const __m512 dx = _mm512_set1_ps(x.block_scale[(t0 + t) * x.blocks + b]);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[r][t]), dx, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512 s = _mm512_loadu_ps(p[r].scale + g * kPanelRows);
      for (int t = 0; t < T; ++t) out[r][t] = _mm512_fmadd_ps(acc[r][t], s, out[r][t]);
      if constexpr (kMin) {
        const __m512 m = _mm512_loadu_ps(p[r].min + g * kPanelRows);
        for (int t = 0; t < T; ++t)
          out[r][t] = _mm512_fmadd_ps(m, _mm512_set1_ps(x.group_x[(t0 + t) * x.groups + g]), out[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const __mmask16 mask = static_cast<__mmask16>((1u << valid[r]) - 1);
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + (t0 + t) * y_stride + r * kPanelRows, mask, out[r][t]);
  }
}

}  // namespace

namespace {
// Block b of row r of 2- or 3-bit codes as 32 bytes in column order: widened 64 columns at a time
// (narrow_codes_x86.h) where the pair of blocks lies within the row, else code by code (no read past
// the row's bytes).
LOWBIT_VNNI __m256i narrow_block(const Codes& c, size_t r, size_t b) {
  const uint8_t* row = c.codes + r * c.row_bytes;
  const size_t pair = b & ~size_t{1};
  if ((pair + 2) * kBlock <= c.cols) {
    __m256i first, second;
    if (c.bits == 2) narrow_codes::widen_in_order<2>(row + pair * kBlock * 2 / 8, first, second);
    else narrow_codes::widen_in_order<3>(row + pair * kBlock * 3 / 8, first, second);
    return b & 1 ? second : first;
  }
  alignas(32) uint8_t codes[kBlock];
  for (size_t k = 0; k < kBlock; ++k) codes[k] = static_cast<uint8_t>(packed_code_at(row, c.row_bytes, b * kBlock + k, c.bits));
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(codes));
}
}  // namespace

LOWBIT_VNNI void pack_codes_avx512(const Codes& c, size_t row0, size_t rows, int8_t* v, int32_t* bias) {
  alignas(64) int32_t quads[kPanelRows][kQuads];  // one block of 16 rows, row-major
  // Lane i of a gather reads row i's quad: int32 index 8i (+ j through the base pointer).
  const __m512i rows_index = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120);
  const __m128i low_nibbles = _mm_set1_epi8(0x0F);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(c.flip));
  // Mapped 4-bit levels: u = map[code] by vpshufb (codes are nibbles 0..15; the table in both lanes).
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.map)));
  const size_t block_bytes = c.bits == 4 ? kBlock / 2 : kBlock;
  const size_t spb = c.segments_per_block;
  for (size_t b = 0; b < c.blocks; ++b) {
    // The block's segments' groups: one (segments of 32), or one per 16-column half.
    const size_t g_low = c.group_of_segment(b * spb), g_high = c.group_of_segment(b * spb + spb - 1);
    for (size_t i = 0; i < kPanelRows; ++i) {
      if (i >= rows) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(quads[i]), _mm256_setzero_si256());
        for (size_t k = 0; k < spb; ++k) bias[(b * spb + k) * kPanelRows + i] = 0;
        continue;
      }
      const size_t r = row0 + i;
      const uint8_t* src = c.codes + r * c.row_bytes + b * block_bytes;
      __m256i u;
      if (c.bits < 4) {
        u = narrow_block(c, r, b);
      } else if (c.bits == 4) {
        // Byte k holds columns 2k (low nibble) and 2k + 1 (high): interleaving gives column order.
        const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
        const __m128i lo = _mm_and_si128(packed, low_nibbles);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
        u = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
      } else {
        u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
      }
      u = c.mapped ? _mm256_shuffle_epi8(table, u) : _mm256_xor_si256(u, flip);
      const uint8_t z_low = c.zeros ? c.zeros[r * c.groups + g_low] : c.implicit_zero;
      const uint8_t z_high = c.zeros ? c.zeros[r * c.groups + g_high] : c.implicit_zero;
      const __m256i z = _mm256_set_m128i(_mm_set1_epi8(static_cast<char>(z_high)), _mm_set1_epi8(static_cast<char>(z_low)));
      _mm256_store_si256(reinterpret_cast<__m256i*>(quads[i]), _mm256_sub_epi8(u, z));
      // Σv = Σu − n·z per segment, Σu by sums of absolute differences against zero (one 64-bit sum
      // per 8 columns: the low 128 bits hold columns 0..15, the high 128 bits 16..31).
      const __m256i sad = _mm256_sad_epu8(u, _mm256_setzero_si256());
      const __m128i low = _mm256_castsi256_si128(sad), high = _mm256_extracti128_si256(sad, 1);
      const int64_t sum_low = _mm_cvtsi128_si64(low) + _mm_extract_epi64(low, 1);
      const int64_t sum_high = _mm_cvtsi128_si64(high) + _mm_extract_epi64(high, 1);
      if (spb == 1) {
        bias[b * kPanelRows + i] = -128 * static_cast<int32_t>(sum_low + sum_high - int64_t{32} * z_low);
      } else {
        bias[(2 * b) * kPanelRows + i] = -128 * static_cast<int32_t>(sum_low - int64_t{16} * z_low);
        bias[(2 * b + 1) * kPanelRows + i] = -128 * static_cast<int32_t>(sum_high - int64_t{16} * z_high);
      }
    }
    for (size_t j = 0; j < kQuads; ++j)
      _mm512_storeu_si512(v + (b * kQuads + j) * kPanelRows * kQuad,
                          _mm512_i32gather_epi32(rows_index, &quads[0][j], 4));
  }
}

namespace {
template <int R, bool kMin, size_t kQps>
LOWBIT_VNNI void vnni_panels(const Tokens& x, const Panel* p, const size_t* valid, float* y, size_t y_stride) {
  size_t t = 0;
  for (; t + 4 <= x.tokens; t += 4) vnni_tile<R, 4, kMin, kQps>(x, p, t, valid, y, y_stride);
  switch (x.tokens - t) {
    case 3:
      return vnni_tile<R, 3, kMin, kQps>(x, p, t, valid, y, y_stride);
    case 2:
      return vnni_tile<R, 2, kMin, kQps>(x, p, t, valid, y, y_stride);
    case 1:
      return vnni_tile<R, 1, kMin, kQps>(x, p, t, valid, y, y_stride);
    default:
      return;
  }
}

template <size_t kQps>
void vnni_dispatch(const Tokens& x, const Panel* p, size_t count, const size_t* valid, float* y, size_t y_stride) {
  const bool min = p[0].min != nullptr;
  if (count == 2)
    return min ? vnni_panels<2, true, kQps>(x, p, valid, y, y_stride) : vnni_panels<2, false, kQps>(x, p, valid, y, y_stride);
  return min ? vnni_panels<1, true, kQps>(x, p, valid, y, y_stride) : vnni_panels<1, false, kQps>(x, p, valid, y, y_stride);
}
}  // namespace

void panels_avx512_vnni(const Tokens& x, const Panel* p, size_t count, const size_t* valid, float* y,
                        size_t y_stride) {
  if (x.segments_per_block == 1) return vnni_dispatch<kQuads>(x, p, count, valid, y, y_stride);
  return vnni_dispatch<kQuads / 2>(x, p, count, valid, y, y_stride);
}

// ---------------------------------------------------------------------------------------------- AVX2
#define LOWBIT_AVX2 __attribute__((target("avx2,fma")))

namespace {
// Rows of one panel half (8 lanes) for T tokens from t0.
template <int T, bool kMin, size_t kQps>
LOWBIT_AVX2 void avx2_tile(const Tokens& x, const Panel& p, size_t half, size_t t0, size_t valid, float* y,
                           size_t y_stride) {
  const size_t width = x.blocks * kBlock, lane0 = half * 8;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 out[T];
  for (int t = 0; t < T; ++t) out[t] = _mm256_setzero_ps();
  for (size_t g = 0; g < x.groups; ++g) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const size_t s1 = std::min(x.segments, (g + 1) * x.segments_per_group);
    for (size_t s = g * x.segments_per_group; s < s1;) {  // one piece: a block's segments in g
      const size_t end = x.piece_end(s, s1), b = s / x.segments_per_block;
      __m256i sum[T];
      for (int t = 0; t < T; ++t) sum[t] = _mm256_setzero_si256();
      const int8_t* q = x.q + t0 * width + s * kQps * kQuad;
      for (size_t j = 0; j < (end - s) * kQps; ++j) {
        const __m256i w = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(p.v + ((s * kQps + j) * kPanelRows + lane0) * kQuad));
        const __m256i magnitude = _mm256_abs_epi8(w);
        for (int t = 0; t < T; ++t) {
          const __m256i xq = _mm256_set1_epi32(load_quad(q + t * width + j * kQuad));
          const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xq, w));
          sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(pairs, ones));
        }
      }
      s = end;
      for (int t = 0; t < T; ++t)
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_set1_ps(x.block_scale[(t0 + t) * x.blocks + b]),
                                 acc[t]);
    }
    const __m256 s = _mm256_loadu_ps(p.scale + g * kPanelRows + lane0);
    for (int t = 0; t < T; ++t) out[t] = _mm256_fmadd_ps(acc[t], s, out[t]);
    if constexpr (kMin) {
      const __m256 m = _mm256_loadu_ps(p.min + g * kPanelRows + lane0);
      for (int t = 0; t < T; ++t)
        out[t] = _mm256_fmadd_ps(m, _mm256_set1_ps(x.group_x[(t0 + t) * x.groups + g]), out[t]);
    }
  }
  const size_t n = valid > lane0 ? std::min<size_t>(8, valid - lane0) : 0;
  for (int t = 0; t < T; ++t) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, out[t]);
    std::memcpy(y + (t0 + t) * y_stride + lane0, lanes, n * sizeof(float));
  }
}

template <bool kMin, size_t kQps>
LOWBIT_AVX2 void avx2_panel(const Tokens& x, const Panel& p, size_t valid, float* y, size_t y_stride) {
  for (size_t half = 0; half * 8 < valid; ++half) {
    size_t t = 0;
    for (; t + 2 <= x.tokens; t += 2) avx2_tile<2, kMin, kQps>(x, p, half, t, valid, y, y_stride);
    if (t < x.tokens) avx2_tile<1, kMin, kQps>(x, p, half, t, valid, y, y_stride);
  }
}

template <size_t kQps>
void avx2_panels(const Tokens& x, const Panel* p, size_t count, const size_t* valid, float* y, size_t y_stride) {
  for (size_t k = 0; k < count; ++k) {
    float* out = y + k * kPanelRows;
    if (p[k].min) avx2_panel<true, kQps>(x, p[k], valid[k], out, y_stride);
    else avx2_panel<false, kQps>(x, p[k], valid[k], out, y_stride);
  }
}
}  // namespace

void panels_avx2(const Tokens& x, const Panel* p, size_t count, const size_t* valid, float* y, size_t y_stride) {
  if (x.segments_per_block == 1) return avx2_panels<kQuads>(x, p, count, valid, y, y_stride);
  return avx2_panels<kQuads / 2>(x, p, count, valid, y, y_stride);
}

}  // namespace lowbit::int8_gemm_detail
#endif
