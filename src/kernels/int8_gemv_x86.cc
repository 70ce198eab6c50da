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
//   8 bits: lane j's four bytes are columns 4j..4j+3.
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

namespace lowbit::int8_detail {
namespace {
// How far ahead of the codes being read a row prefetches (as packed_gemv's kRowPrefetchBytes).
constexpr size_t kPrefetchBytes = 4096;
}  // namespace

// ---------------------------------------------------------------------------------------------- AVX2
// (Target attributes on each function rather than a target pragma: clang builds this file too.)
#define LOWBIT_AVX2 __attribute__((target("avx2,fma,bmi2")))

namespace {
// 8 lanes of one AVX2 step: the group scale s' of each lane (lanes 0-3 / 4-7 may be two groups).
LOWBIT_AVX2 inline __m256 avx2_lane_scales(const Args& a, const float* scales, size_t c0) {
  const size_t step = a.step_cols;
  if (a.groups <= 1) return _mm256_set1_ps(scales[0] * a.factor);
  if (a.group % step == 0) return _mm256_set1_ps(scales[c0 / a.group] * a.factor);
  const size_t g = c0 / a.group;  // two groups per step (4 bits, groups of 32)
  const __m128 lo = _mm_set1_ps(scales[g] * a.factor), hi = _mm_set1_ps(scales[g + 1] * a.factor);
  return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

LOWBIT_AVX2 inline __m256i avx2_step_sums(const Args& a, const uint8_t* codes, const int8_t* q) {
  const __m256i ones = _mm256_set1_epi16(1);
  if (a.bits == 4) {
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
    if (a.flip) b = _mm256_xor_si256(b, _mm256_set1_epi8(static_cast<char>(0x88)));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(b, m4), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
    const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32));
    const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ql), _mm256_maddubs_epi16(hi, qh));
    return _mm256_madd_epi16(pairs, ones);
  }
  __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));  // w = u − 128 as int8
  if (a.flip == 0) v = _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80)));
  const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(v), _mm256_sign_epi8(qv, v)), ones);
}
}  // namespace

LOWBIT_AVX2 void rows_avx2(const Args& a, size_t row_begin, size_t row_end, float* y) {
  const size_t step = a.step_cols, steps = a.cols / step, step_bytes = step * static_cast<size_t>(a.bits) / 8;
  const size_t runs_per_step = step / a.run_cols;  // 8
  const size_t group_steps = a.groups / 8;
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = a.codes + r * a.row_bytes;
    const float* scales = a.scales + r * a.groups;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (size_t s = 0; s < steps; ++s) {
      _mm_prefetch(reinterpret_cast<const char*>(row + s * step_bytes + kPrefetchBytes), _MM_HINT_T0);
      const __m256i sums = avx2_step_sums(a, row + s * step_bytes, a.q + s * step);
      const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(a.run_scale + s * runs_per_step), avx2_lane_scales(a, scales, s * step));
      acc[s & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), d, acc[s & 1]);
    }
    __m256 cor[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t g0 = 0;
    if (a.has_correction) {
      const __m256 factor = _mm256_set1_ps(a.factor);
      const __m256i offset = _mm256_set1_epi32(a.offset);
      for (size_t k = 0; k < group_steps; ++k, g0 += 8) {
        __m256i z = _mm256_set1_epi32(a.flip);
        if (a.zeros) z = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a.zeros + r * a.groups + g0)));
        const __m256 sc = _mm256_mul_ps(_mm256_loadu_ps(scales + g0), factor);
        const __m256 kg = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(offset, z)), sc);
        const __m256 x = _mm256_loadu_ps(a.group_x + g0);
        cor[k & 1] = _mm256_fmadd_ps(kg, x, cor[k & 1]);
        if (a.mins) cor[k & 1] = _mm256_fmadd_ps(_mm256_loadu_ps(a.mins + r * a.groups + g0), x, cor[k & 1]);
      }
    }
    alignas(32) float acc_lanes[kLanes], cor_lanes[kLanes];
    _mm256_store_ps(acc_lanes, acc[0]);
    _mm256_store_ps(acc_lanes + 8, acc[1]);
    _mm256_store_ps(cor_lanes, cor[0]);
    _mm256_store_ps(cor_lanes + 8, cor[1]);
    y[r] = finish_row(a, r, steps * runs_per_step, g0, acc_lanes, cor_lanes);
  }
}

// -------------------------------------------------------------------------------------------- AVX-512
// Both AVX-512 kernels are one template compiled with VNNI enabled; the kVnni = false instance
// issues only vpmaddubsw/vpmaddwd (no compiler turns those into vpdpbusd: saturation differs), and
// is chosen only where the CPU lacks VNNI.
#define LOWBIT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,bmi2")))

namespace {
// 16 lanes of one AVX-512 step: the group scale s' of each lane (1, 2 or 4 groups per step).
LOWBIT_AVX512 inline __m512 avx512_lane_scales(const Args& a, const float* scales, size_t c0) {
  const size_t step = a.step_cols;
  if (a.groups <= 1) return _mm512_set1_ps(scales[0] * a.factor);
  if (a.group % step == 0) return _mm512_set1_ps(scales[c0 / a.group] * a.factor);
  const size_t per = step / a.group, g = c0 / a.group;  // 2 or 4 groups per step
  const __m512 loaded = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << per) - 1), scales + g);
  const __m512i index = per == 2 ? _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
                                 : _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  return _mm512_mul_ps(_mm512_permutexvar_ps(index, loaded), _mm512_set1_ps(a.factor));
}

template <bool kVnni>
LOWBIT_AVX512 inline __m512i avx512_step_sums(const Args& a, const uint8_t* codes, const int8_t* q, const int32_t* bias) {
  if (a.bits == 4) {
    __m512i b = _mm512_loadu_si512(codes);
    if (a.flip) b = _mm512_xor_si512(b, _mm512_set1_epi8(static_cast<char>(0x88)));
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i lo = _mm512_and_si512(b, m4), hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), m4);
    const __m512i ql = _mm512_loadu_si512(q), qh = _mm512_loadu_si512(q + 64);
    if constexpr (kVnni) {
      return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, ql), hi, qh);
    } else {
      const __m512i pairs = _mm512_add_epi16(_mm512_maddubs_epi16(lo, ql), _mm512_maddubs_epi16(hi, qh));
      return _mm512_madd_epi16(pairs, _mm512_set1_epi16(1));
    }
  }
  const __m512i b = _mm512_loadu_si512(codes);
  const __m512i qv = _mm512_loadu_si512(q);
  if constexpr (kVnni) {
    // Σ (u − 128)·q = Σ u·q − 128·Σ q (the run's bias, prepared per token).
    const __m512i u = a.flip ? _mm512_xor_si512(b, _mm512_set1_epi8(static_cast<char>(0x80))) : b;
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, qv), _mm512_loadu_si512(bias));
  } else {
    const __m512i v = a.flip ? b : _mm512_xor_si512(b, _mm512_set1_epi8(static_cast<char>(0x80)));
    const __mmask64 negative = _mm512_movepi8_mask(v);
    const __m512i signed_q = _mm512_mask_sub_epi8(qv, negative, _mm512_setzero_si512(), qv);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(v), signed_q), _mm512_set1_epi16(1));
  }
}

template <bool kVnni>
LOWBIT_AVX512 void rows_avx512_impl(const Args& a, size_t row_begin, size_t row_end, float* y) {
  const size_t step = a.step_cols, steps = a.cols / step, step_bytes = step * static_cast<size_t>(a.bits) / 8;
  const size_t runs_per_step = step / a.run_cols;  // 16
  const size_t group_steps = a.groups / 16;
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = a.codes + r * a.row_bytes;
    const float* scales = a.scales + r * a.groups;
    __m512 acc = _mm512_setzero_ps();
    for (size_t s = 0; s < steps; ++s) {
      _mm_prefetch(reinterpret_cast<const char*>(row + s * step_bytes + kPrefetchBytes), _MM_HINT_T0);
      const __m512i sums = avx512_step_sums<kVnni>(a, row + s * step_bytes, a.q + s * step, a.run_bias + s * runs_per_step);
      const __m512 d = _mm512_mul_ps(_mm512_loadu_ps(a.run_scale + s * runs_per_step), avx512_lane_scales(a, scales, s * step));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), d, acc);
    }
    __m512 cor = _mm512_setzero_ps();
    size_t g0 = 0;
    if (a.has_correction) {
      const __m512 factor = _mm512_set1_ps(a.factor);
      const __m512i offset = _mm512_set1_epi32(a.offset);
      for (size_t k = 0; k < group_steps; ++k, g0 += 16) {
        __m512i z = _mm512_set1_epi32(a.flip);
        if (a.zeros) z = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a.zeros + r * a.groups + g0)));
        const __m512 sc = _mm512_mul_ps(_mm512_loadu_ps(scales + g0), factor);
        const __m512 kg = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(offset, z)), sc);
        const __m512 x = _mm512_loadu_ps(a.group_x + g0);
        cor = _mm512_fmadd_ps(kg, x, cor);
        if (a.mins) cor = _mm512_fmadd_ps(_mm512_loadu_ps(a.mins + r * a.groups + g0), x, cor);
      }
    }
    alignas(64) float acc_lanes[kLanes], cor_lanes[kLanes];
    _mm512_store_ps(acc_lanes, acc);
    _mm512_store_ps(cor_lanes, cor);
    y[r] = finish_row(a, r, steps * runs_per_step, g0, acc_lanes, cor_lanes);
  }
}
}  // namespace

void rows_avx512(const Args& a, size_t row_begin, size_t row_end, float* y) {
  rows_avx512_impl<false>(a, row_begin, row_end, y);
}
void rows_avx512_vnni(const Args& a, size_t row_begin, size_t row_end, float* y) {
  rows_avx512_impl<true>(a, row_begin, row_end, y);
}

}  // namespace lowbit::int8_detail
#endif
