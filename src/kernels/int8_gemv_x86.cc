// x86 kernels of the int8-activation GEMV (kernels/int8_gemv.h), each compiled for its instruction
// set by target attributes and chosen at run time (int8_gemv.cc checks the CPU first). Each adds a row's
// whole vector steps into the canonical lanes and leaves the ragged rest to int8_detail::finish_row.
//
// One step reads, per row, the codes of `step` columns (4 bits: 128 columns = 64 bytes on AVX-512,
// 64 = 32 bytes on AVX2; 8 bits: 64 and 32) and yields 16 (AVX-512) or 8 (AVX2) int32 lanes, lane j
// the exact integer sum of run j of the step:
//   4 bits: the low nibbles (even columns) and high nibbles (odd columns) become two byte vectors, each
//           multiplied with the matching half of the step's q (int8_gemv_prepare stores q that way);
//           lane j's four bytes of each are columns 8j..8j+7.
//   2 and 3 bits: the same two byte vectors, widened in registers from 32 or 48 bytes per 128 columns
//           (narrow_codes_x86.h), so the 4-bit steps, q order and runs apply unchanged.
//   8 bits: lane j's four bytes are columns 4j..4j+3.
//   Mapped 4-bit levels (e2m1): each nibble vector goes through vpshufb with the 16-byte table u = map[code].
// VNNI: vpdpbusd (u8 × s8, four products into each int32 lane, no saturation). Otherwise vpmaddubsw
// (pairs into int16) + vpmaddwd by ones: 4-bit codes keep every int16 ≤ 4·15·127; 8-bit codes go
// through |w| ≤ 128 and q with w's sign, ≤ 2·128·127, so nothing saturates and the sums stay exact.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

// GCC 12's unmasked AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge operand,
// which trips -Wmaybe-uninitialized; that value is never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>

#include "src/kernels/int8_gemv_internal.h"
#include "src/kernels/narrow_codes_x86.h"

namespace lowbit::int8_detail {
namespace {
// How far ahead of the codes being read a row prefetches (as packed_gemv's kRowPrefetchBytes), into
// L2 (_MM_HINT_T2), not L1: on Zen 4, prefetching to L1 left the 1B model's decode stalled on its code
// loads (85 % of decode time in this kernel, 6-7 GB/s of weights per core from DRAM against 19-23 from
// L3) whatever the distance (1, 4, 16 KiB) or rows per block; to L2 it streams 8.7-12 GB/s per core
// (1B uint4 g128 decode on 1 thread 11.6-13.2 -> 16.2-22.6 tok/s).
constexpr size_t kPrefetchBytes = 4096;
}  // namespace

// ---------------------------------------------------------------------------------------------- AVX2
// (Target attributes on each function rather than a target pragma: clang builds this file too.)
#define LOWBIT_AVX2 __attribute__((target("avx2,fma,bmi2")))

namespace {
// One AVX2 step's 8 run sums (columns of 2-, 3-, 4- or 8-bit codes; see the file comment).
template <int kBits, bool kFlip, bool kMap = false>
LOWBIT_AVX2 inline __m256i avx2_step_sums(const uint8_t* codes, const int8_t* q, const uint8_t* map = nullptr) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (kBits <= 4) {
    __m256i lo, hi;
    if constexpr (kBits == 4) {
      __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
      if constexpr (kFlip) b = _mm256_xor_si256(b, _mm256_set1_epi8(static_cast<char>(0x88)));
      const __m256i m4 = _mm256_set1_epi8(0x0F);
      lo = _mm256_and_si256(b, m4);
      hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
    } else {
      narrow_codes::widen_narrow_codes256<kBits, kFlip>(codes, lo, hi);
    }
    if constexpr (kMap) {  // u = map[code]: one vpshufb per nibble vector
      const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(map)));
      lo = _mm256_shuffle_epi8(table, lo);
      hi = _mm256_shuffle_epi8(table, hi);
    }
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
    const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ql), _mm256_maddubs_epi16(hi, qh));
    return _mm256_madd_epi16(pairs, ones);
  } else {
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
    // w = u − 128 as int8: the two's complement code itself, or an unsigned code with its top bit flipped.
    if constexpr (!kFlip) b = _mm256_xor_si256(b, _mm256_set1_epi8(static_cast<char>(0x80)));
    const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(b), _mm256_sign_epi8(qv, b)), ones);
  }
}

// The header's tree over 16 lanes held as lanes 0-7 (lo) and 8-15 (hi): lo[i] + hi[i], then +4, +2, +1.
LOWBIT_AVX2 inline float avx2_tree(__m256 lo, __m256 hi) {
  const __m256 t8 = _mm256_add_ps(lo, hi);
  const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
  const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
  return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

template <int kBits, bool kFlip, bool kMap = false>
LOWBIT_AVX2 void avx2_rows(const Args& a, size_t row_begin, size_t row_end, float* y) {
  constexpr size_t step = kBits <= 4 ? 64 : 32, step_bytes = kBits <= 4 ? 8 * kBits : 32, runs_per_step = 8;
  const size_t steps = a.cols / step;
  // Lane scales without a division per step: one group spans whole steps (or the row), or a step
  // holds `per` = 2 groups (4 bits in groups of 32, 8 bits in groups of 16) or 4 (4 bits in groups of 16).
  const size_t per = a.groups > 1 && a.group < step ? step / a.group : 1;
  const size_t steps_per_group = a.groups <= 1 ? steps : per > 1 ? 1 : a.group / step;
  const __m256i quarters = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);  // lane j (run j) → group j / 2
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = a.codes + r * a.row_bytes;
    const float* scales = a.scales + r * a.groups;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t s = 0;
    for (size_t g = 0; s < steps; g += per) {
      __m256 sv = _mm256_set1_ps(scales[g] * a.factor);
      if (per == 2) sv = _mm256_insertf128_ps(sv, _mm_set1_ps(scales[g + 1] * a.factor), 1);
      if (per == 4)
        sv = _mm256_permutevar8x32_ps(
            _mm256_castps128_ps256(_mm_mul_ps(_mm_loadu_ps(scales + g), _mm_set1_ps(a.factor))), quarters);
      for (const size_t e = std::min(steps, s + steps_per_group); s < e; ++s) {
        _mm_prefetch(reinterpret_cast<const char*>(row + s * step_bytes + kPrefetchBytes), _MM_HINT_T2);
        const __m256i sums = avx2_step_sums<kBits, kFlip, kMap>(row + s * step_bytes, a.q + s * step, a.map);
        const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(a.run_scale + s * runs_per_step), sv);
        acc[s & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), d, acc[s & 1]);
      }
    }
    __m256 cor[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t g0 = 0;
    if (a.has_correction) {
      const __m256 factor = _mm256_set1_ps(a.factor);
      const __m256i offset = _mm256_set1_epi32(a.offset);
      for (size_t k = 0; g0 + 8 <= a.groups; ++k, g0 += 8) {
        __m256i z = _mm256_set1_epi32(a.implicit_zero);
        if (a.zeros) z = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a.zeros + r * a.groups + g0)));
        const __m256 sc = _mm256_mul_ps(_mm256_loadu_ps(scales + g0), factor);
        const __m256 kg = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(offset, z)), sc);
        const __m256 x = _mm256_loadu_ps(a.group_x + g0);
        cor[k & 1] = _mm256_fmadd_ps(kg, x, cor[k & 1]);
        if (a.mins) cor[k & 1] = _mm256_fmadd_ps(_mm256_loadu_ps(a.mins + r * a.groups + g0), x, cor[k & 1]);
      }
    }
    if (steps * runs_per_step == a.runs && (!a.has_correction || g0 == a.groups)) {
      y[r] = avx2_tree(acc[0], acc[1]) + avx2_tree(cor[0], cor[1]);
      continue;
    }
    alignas(32) float acc_lanes[kLanes], cor_lanes[kLanes];
    _mm256_store_ps(acc_lanes, acc[0]);
    _mm256_store_ps(acc_lanes + 8, acc[1]);
    _mm256_store_ps(cor_lanes, cor[0]);
    _mm256_store_ps(cor_lanes + 8, cor[1]);
    y[r] = finish_row(a, r, steps * runs_per_step, g0, acc_lanes, cor_lanes);
  }
}
}  // namespace

void rows_avx2(const Args& a, size_t row_begin, size_t row_end, float* y) {
  if (a.mapped) return avx2_rows<4, false, true>(a, row_begin, row_end, y);
  if (a.bits == 4) return a.flip ? avx2_rows<4, true>(a, row_begin, row_end, y) : avx2_rows<4, false>(a, row_begin, row_end, y);
  if (a.bits == 3) return a.flip ? avx2_rows<3, true>(a, row_begin, row_end, y) : avx2_rows<3, false>(a, row_begin, row_end, y);
  if (a.bits == 2) return a.flip ? avx2_rows<2, true>(a, row_begin, row_end, y) : avx2_rows<2, false>(a, row_begin, row_end, y);
  return a.flip ? avx2_rows<8, true>(a, row_begin, row_end, y) : avx2_rows<8, false>(a, row_begin, row_end, y);
}

// -------------------------------------------------------------------------------------------- AVX-512
// Both AVX-512 kernels are one template compiled with VNNI enabled; the kVnni = false instance
// issues only vpmaddubsw/vpmaddwd (no compiler turns those into vpdpbusd: saturation differs), and
// is chosen only where the CPU lacks VNNI.
#define LOWBIT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,bmi2")))

namespace {
// One AVX-512 step's codes, made ready for the dot products of every token: 4 bits: the low and high
// nibbles (p0, p1); 8 bits: VNNI the offset-binary bytes (p0), otherwise |w| (p0) and w's sign (neg).
struct Unpacked512 {
  __m512i p0, p1;
  __mmask64 neg;
};

template <bool kVnni, int kBits, bool kFlip, bool kMap>
LOWBIT_AVX512 inline Unpacked512 avx512_unpack(const uint8_t* codes, const uint8_t* map) {
  Unpacked512 u{};
  if constexpr (kBits < 4) {
    narrow_codes::widen_narrow_codes512<kBits, kFlip>(codes, u.p0, u.p1);
    return u;
  }
  __m512i b = _mm512_loadu_si512(codes);
  if constexpr (kBits == 4) {
    if constexpr (kFlip) b = _mm512_xor_si512(b, _mm512_set1_epi8(static_cast<char>(0x88)));
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    u.p0 = _mm512_and_si512(b, m4);
    u.p1 = _mm512_and_si512(_mm512_srli_epi16(b, 4), m4);
    if constexpr (kMap) {  // u = map[code]: one vpshufb per nibble vector (the table in every 128-bit lane)
      const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(map)));
      u.p0 = _mm512_shuffle_epi8(table, u.p0);
      u.p1 = _mm512_shuffle_epi8(table, u.p1);
    }
  } else if constexpr (kVnni) {
    u.p0 = kFlip ? _mm512_xor_si512(b, _mm512_set1_epi8(static_cast<char>(0x80))) : b;
  } else {
    const __m512i v = kFlip ? b : _mm512_xor_si512(b, _mm512_set1_epi8(static_cast<char>(0x80)));  // w = u − 128
    u.p0 = _mm512_abs_epi8(v);
    u.neg = _mm512_movepi8_mask(v);
  }
  return u;
}

// The step's 16 run sums for one token's q (and, 8 bits on VNNI, its 128·Σq per run).
template <bool kVnni, int kBits>
LOWBIT_AVX512 inline __m512i avx512_dot(const Unpacked512& u, const int8_t* q, const int32_t* bias) {
  if constexpr (kBits <= 4) {
    const __m512i ql = _mm512_loadu_si512(q), qh = _mm512_loadu_si512(q + 64);
    if constexpr (kVnni) {
      return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u.p0, ql), u.p1, qh);
    } else {
      const __m512i pairs = _mm512_add_epi16(_mm512_maddubs_epi16(u.p0, ql), _mm512_maddubs_epi16(u.p1, qh));
      return _mm512_madd_epi16(pairs, _mm512_set1_epi16(1));
    }
  } else {
    const __m512i qv = _mm512_loadu_si512(q);
    if constexpr (kVnni) {
      // Σ (u − 128)·q = Σ u·q − 128·Σ q (the run's bias, prepared per token).
      return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u.p0, qv), _mm512_loadu_si512(bias));
    } else {
      const __m512i signed_q = _mm512_mask_sub_epi8(qv, u.neg, _mm512_setzero_si512(), qv);
      return _mm512_madd_epi16(_mm512_maddubs_epi16(u.p0, signed_q), _mm512_set1_epi16(1));
    }
  }
}

// The header's tree over 16 lanes: v[i] + v[i+8], then +4, +2, +1.
LOWBIT_AVX512 inline float avx512_tree(__m512 v) {
  const __m256 t8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
  const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
  return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

// What a call's rows share (from the layout alone), worked out once per call: a row of SmolLM2 is
// only 4.5 steps, and these divisions per row had cost as much as its dot products.
struct Plan512 {
  size_t steps = 0;
  // 4 bits: a trailing half step (64 columns, e.g. SmolLM2's 576 = 4.5 steps) runs as lanes 0-7 of
  // one more step instead of 64 scalar columns; lane j's group relative to the half step's first.
  bool half = false;
  size_t half_g0 = 0;
  __m512i half_spread;
  __mmask16 half_loaded = 1;
  // Lane scales without a division per step: one group spans whole steps (or the row), or a step
  // holds `per` = 2 or 4 groups, spread over its lanes by one permute.
  size_t per = 1, steps_per_group = 0;
  __m512i spread;
  __mmask16 loaded = 1;
};

template <int kBits>
LOWBIT_AVX512 Plan512 plan512(const Args& a) {
  constexpr size_t step = kBits <= 4 ? 128 : 64;
  Plan512 p;
  p.steps = a.cols / step;
  p.half = kBits <= 4 && a.cols - p.steps * step >= step / 2;
  const size_t half_c0 = p.steps * step;
  p.half_g0 = a.groups <= 1 ? 0 : half_c0 / a.group;
  alignas(64) int32_t lane_group[16] = {};
  for (size_t j = 0; j < 8 && a.groups > 1; ++j) lane_group[j] = static_cast<int32_t>((half_c0 + j * 8) / a.group - p.half_g0);
  p.half_spread = _mm512_load_si512(lane_group);
  p.half_loaded = static_cast<__mmask16>((1u << (lane_group[7] + 1)) - 1);
  p.per = a.groups > 1 && a.group < step ? step / a.group : 1;
  p.steps_per_group = a.groups <= 1 ? p.steps : p.per > 1 ? 1 : a.group / step;
  // Lane j (run j) → its group: j / 8, j / 4 or j / 2 (4 bits in groups of 16: 8 per step).
  p.spread = p.per == 2   ? _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
             : p.per == 4 ? _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0)
                          : _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  p.loaded = static_cast<__mmask16>((1u << p.per) - 1);
  return p;
}

// kRows rows × kTokens tokens side by side: more weight streams in flight per core (one token), or
// each row's codes unpacked once for several tokens (prefill). Every (row, token) is computed exactly
// as it would be alone.
template <bool kVnni, int kBits, bool kFlip, bool kMap, size_t kRows, size_t kTokens>
LOWBIT_AVX512 void avx512_block(const Args& a, const Plan512& plan, const TokenX* tok, size_t r0) {
  constexpr size_t step = kBits <= 4 ? 128 : 64, step_bytes = kBits <= 4 ? 16 * kBits : 64, runs_per_step = 16;
  const size_t steps = plan.steps, per = plan.per, steps_per_group = plan.steps_per_group, half_g0 = plan.half_g0;
  const bool half = plan.half;
  const __m512i spread = plan.spread, half_spread = plan.half_spread;
  const __mmask16 loaded = plan.loaded, half_loaded = plan.half_loaded;
  const __m512 factor = _mm512_set1_ps(a.factor);
  const uint8_t* rows[kRows];
  const float* scales[kRows];
  __m512 acc[kRows][kTokens];
  for (size_t k = 0; k < kRows; ++k) {
    rows[k] = a.codes + (r0 + k) * a.row_bytes;
    scales[k] = a.scales + (r0 + k) * a.groups;
    for (size_t t = 0; t < kTokens; ++t) acc[k][t] = _mm512_setzero_ps();
  }
  size_t s = 0;
  for (size_t g = 0; s < steps; g += per) {
    __m512 sv[kRows];
    for (size_t k = 0; k < kRows; ++k)
      sv[k] = per == 1 ? _mm512_set1_ps(scales[k][g] * a.factor)
                       : _mm512_mul_ps(_mm512_permutexvar_ps(spread, _mm512_maskz_loadu_ps(loaded, scales[k] + g)), factor);
    for (const size_t e = std::min(steps, s + steps_per_group); s < e; ++s) {
      for (size_t k = 0; k < kRows; ++k) {
        _mm_prefetch(reinterpret_cast<const char*>(rows[k] + s * step_bytes + kPrefetchBytes), _MM_HINT_T2);
        const Unpacked512 u = avx512_unpack<kVnni, kBits, kFlip, kMap>(rows[k] + s * step_bytes, a.map);
        for (size_t t = 0; t < kTokens; ++t) {
          const __m512i sums = avx512_dot<kVnni, kBits>(u, tok[t].q + s * step, tok[t].run_bias + s * runs_per_step);
          const __m512 d = _mm512_mul_ps(_mm512_loadu_ps(tok[t].run_scale + s * runs_per_step), sv[k]);
          acc[k][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), d, acc[k][t]);
        }
      }
    }
  }
  if (half) {
    // The half step's codes (64 columns: 32 bytes at 4 bits) give lanes 0-7; q holds its evens then
    // odds (prepare).
    for (size_t k = 0; k < kRows; ++k) {
      __m256i lo, hi;
      if constexpr (kBits == 4) {
        __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k] + steps * step_bytes));
        if constexpr (kFlip) b = _mm256_xor_si256(b, _mm256_set1_epi8(static_cast<char>(0x88)));
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        lo = _mm256_and_si256(b, m4);
        hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
      } else {
        narrow_codes::widen_narrow_codes256<kBits, kFlip>(rows[k] + steps * step_bytes, lo, hi);
      }
      if constexpr (kMap) {
        const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.map)));
        lo = _mm256_shuffle_epi8(table, lo);
        hi = _mm256_shuffle_epi8(table, hi);
      }
      const __m512 sv = _mm512_mul_ps(
          _mm512_permutexvar_ps(half_spread, _mm512_maskz_loadu_ps(half_loaded, scales[k] + half_g0)), factor);
      for (size_t t = 0; t < kTokens; ++t) {
        const int8_t* q = tok[t].q + steps * step;
        const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
        __m256i sums;
        if constexpr (kVnni) {
          sums = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, ql), hi, qh);
        } else {
          sums = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, ql), _mm256_maddubs_epi16(hi, qh)),
                                   _mm256_set1_epi16(1));
        }
        const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(tok[t].run_scale + steps * runs_per_step), _mm512_castps512_ps256(sv));
        // Lanes 8-15 untouched (masked), as the definition leaves them.
        acc[k][t] = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(_mm256_cvtepi32_ps(sums)),
                                          _mm512_castps256_ps512(d), acc[k][t], 0x00FF);
      }
    }
  }
  const size_t runs_done = steps * runs_per_step + (half ? runs_per_step / 2 : 0);
  const __m512i offset = _mm512_set1_epi32(a.offset);
  for (size_t k = 0; k < kRows; ++k) {
    const size_t r = r0 + k;
    for (size_t t = 0; t < kTokens; ++t) {
      __m512 cor = _mm512_setzero_ps();
      if (a.has_correction) {
        // 16 groups at a time, the last ones masked (group g in lane g mod 16, as the definition).
        for (size_t g0 = 0; g0 < a.groups; g0 += 16) {
          const size_t n = std::min<size_t>(16, a.groups - g0);
          const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
          __m512i z = _mm512_set1_epi32(a.implicit_zero);
          if (a.zeros) z = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, a.zeros + r * a.groups + g0));
          const __m512 sc = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, scales[k] + g0), factor);
          const __m512 kg = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(offset, z)), sc);
          const __m512 x = _mm512_maskz_loadu_ps(m, tok[t].group_x + g0);
          cor = _mm512_mask3_fmadd_ps(kg, x, cor, m);
          if (a.mins) cor = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(m, a.mins + r * a.groups + g0), x, cor, m);
        }
      }
      if (runs_done == a.runs) {
        tok[t].y[r] = avx512_tree(acc[k][t]) + avx512_tree(cor);
        continue;
      }
      alignas(64) float acc_lanes[kLanes], cor_lanes[kLanes];
      _mm512_store_ps(acc_lanes, acc[k][t]);
      _mm512_store_ps(cor_lanes, cor);
      tok[t].y[r] = finish_row(with_token(a, tok[t]), r, runs_done, a.groups, acc_lanes, cor_lanes);
    }
  }
}

// Tokens 4 at a time sharing each row's unpacked codes, then the rest one at a time, 2 rows at once.
template <bool kVnni, int kBits, bool kFlip, bool kMap = false>
LOWBIT_AVX512 void avx512_rows(const Args& a, const TokenX* tok, size_t tokens, size_t row_begin, size_t row_end) {
  const Plan512 plan = plan512<kBits>(a);
  size_t t = 0;
  for (; t + 4 <= tokens; t += 4)
    for (size_t r = row_begin; r < row_end; ++r) avx512_block<kVnni, kBits, kFlip, kMap, 1, 4>(a, plan, tok + t, r);
  for (; t < tokens; ++t) {
    size_t r = row_begin;
    for (; r + 2 <= row_end; r += 2) avx512_block<kVnni, kBits, kFlip, kMap, 2, 1>(a, plan, tok + t, r);
    for (; r < row_end; ++r) avx512_block<kVnni, kBits, kFlip, kMap, 1, 1>(a, plan, tok + t, r);
  }
}

template <bool kVnni>
void avx512_dispatch(const Args& a, const TokenX* tok, size_t tokens, size_t row_begin, size_t row_end) {
  if (a.mapped) return avx512_rows<kVnni, 4, false, true>(a, tok, tokens, row_begin, row_end);
  if (a.bits == 4)
    return a.flip ? avx512_rows<kVnni, 4, true>(a, tok, tokens, row_begin, row_end)
                  : avx512_rows<kVnni, 4, false>(a, tok, tokens, row_begin, row_end);
  if (a.bits == 3)
    return a.flip ? avx512_rows<kVnni, 3, true>(a, tok, tokens, row_begin, row_end)
                  : avx512_rows<kVnni, 3, false>(a, tok, tokens, row_begin, row_end);
  if (a.bits == 2)
    return a.flip ? avx512_rows<kVnni, 2, true>(a, tok, tokens, row_begin, row_end)
                  : avx512_rows<kVnni, 2, false>(a, tok, tokens, row_begin, row_end);
  return a.flip ? avx512_rows<kVnni, 8, true>(a, tok, tokens, row_begin, row_end)
                : avx512_rows<kVnni, 8, false>(a, tok, tokens, row_begin, row_end);
}
}  // namespace

// ------------------------------------------------------------------------- preparing x on AVX-512BW
// x's preparation runs once per linear layer and token on one thread while the others wait; scalar, it
// cost 10 µs per 4096 columns, a fifth of a 2048-row layer's GEMV (1B decode calls 155 of them per
// token). These give the scalar code's values bit for bit (int8_gemv_test checks them against it).
#define LOWBIT_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi2")))

// round_blocks: the block's max |x| is exact in any order; a lane of x·0 is NaN exactly where x is
// Inf or NaN (the scalar code's "poison"); each q is the same rounded product, rounded to an integer by
// the same separate add and subtract of 1.5·2^23 (this file is compiled without contraction).
LOWBIT_AVX512BW void round_blocks_avx512(const float* x, size_t cols, int8_t* q, float* dx) {
  const __m512 zero = _mm512_setzero_ps(), magic = _mm512_set1_ps(12582912.0f);
  const __m512 low = _mm512_set1_ps(-127.0f), high = _mm512_set1_ps(127.0f);
  const size_t blocks = (cols + kBlock - 1) / kBlock;
  for (size_t b = 0; b < blocks; ++b) {
    const size_t c0 = b * kBlock, n = std::min(kBlock, cols - c0);
    const __mmask16 m0 = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
    const __mmask16 m1 = n >= 32 ? 0xFFFF : n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1) : 0;
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + c0), v1 = _mm512_maskz_loadu_ps(m1, x + c0 + 16);
    const bool poison = (_mm512_cmp_ps_mask(_mm512_mul_ps(v0, zero), zero, _CMP_NEQ_UQ) |
                         _mm512_cmp_ps_mask(_mm512_mul_ps(v1, zero), zero, _CMP_NEQ_UQ)) != 0;
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127.0f;
    if (poison || !(d > 0.0f)) {
      dx[b] = poison ? __builtin_nanf("") : 0.0f;
      std::fill(q + c0, q + c0 + n, int8_t{0});
      continue;
    }
    dx[b] = d;
    const __m512 inverse = _mm512_set1_ps(127.0f / amax);
    for (int half = 0; half < 2; ++half) {
      const __m512 r = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(half ? v1 : v0, inverse), magic), magic);
      _mm512_mask_cvtsepi32_storeu_epi8(q + c0 + 16 * half, half ? m1 : m0,
                                        _mm512_cvttps_epi32(_mm512_min_ps(high, _mm512_max_ps(low, r))));
    }
  }
}

// Σq of each run of 8 columns (the 4-bit runs): vpsadbw of q + 128 against zero sums 8 bytes at once.
LOWBIT_AVX512BW void run_sums8_avx512(const int8_t* q, size_t cols, int32_t* sums) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80)), bias = _mm512_set1_epi64(8 * 128);
  size_t c = 0;
  for (; c + 64 <= cols; c += 64) {
    const __m512i u = _mm512_xor_si512(_mm512_loadu_si512(q + c), flip);
    const __m512i s = _mm512_sub_epi64(_mm512_sad_epu8(u, _mm512_setzero_si512()), bias);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + c / 8), _mm512_cvtepi64_epi32(s));
  }
  for (; c < cols; c += 8) {
    int32_t sum = 0;
    for (size_t i = c; i < std::min(cols, c + 8); ++i) sum += q[i];
    sums[c / 8] = sum;
  }
}

// The 4-bit AVX-512 step order: each 128 columns' q as its 64 even columns then its 64 odd ones, and a
// trailing 64 likewise (int8_gemv_prepare); vpmovwb of a word's low byte and of its high byte splits them.
namespace {
LOWBIT_AVX512BW inline void split(const int8_t* in, int8_t* evens, int8_t* odds) {
  const __m512i v = _mm512_loadu_si512(in);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(evens),
                      _mm512_cvtepi16_epi8(_mm512_and_si512(v, _mm512_set1_epi16(0x00FF))));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(odds), _mm512_cvtepi16_epi8(_mm512_srli_epi16(v, 8)));
}
}  // namespace

LOWBIT_AVX512BW void permute_steps_avx512(const int8_t* natural, size_t cols, int8_t* out) {
  size_t c = 0;
  for (; c + 128 <= cols; c += 128) {
    split(natural + c, out + c, out + c + 64);
    split(natural + c + 64, out + c + 32, out + c + 96);
  }
  if (c + 64 <= cols) {
    split(natural + c, out + c, out + c + 32);
    c += 64;
  }
  std::copy(natural + c, natural + cols, out + c);
}

void rows_avx512(const Args& a, const TokenX* tok, size_t tokens, size_t row_begin, size_t row_end) {
  avx512_dispatch<false>(a, tok, tokens, row_begin, row_end);
}
void rows_avx512_vnni(const Args& a, const TokenX* tok, size_t tokens, size_t row_begin, size_t row_end) {
  avx512_dispatch<true>(a, tok, tokens, row_begin, row_end);
}

}  // namespace lowbit::int8_detail
#endif
