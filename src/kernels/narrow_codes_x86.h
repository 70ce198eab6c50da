// 2- and 3-bit codes widened in registers to the 4-bit kernels' byte vectors, shared by the int8 GEMV
// (int8_gemv_x86.cc) and the int8 GEMM's panel repack (int8_gemm_x86.cc). x86 only; each function
// carries its target attribute, so it inlines into callers compiled for that set or a wider one.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cstdint>

namespace lowbit::narrow_codes {

#define LOWBIT_NARROW_AVX2 __attribute__((target("avx2,fma,bmi2")))
#define LOWBIT_NARROW_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi2")))

// Codes 0, 2, 4, 6 of each 32-bit lane's 24 bits (3 bits each, 6 bits apart) into its bytes 0..3.
LOWBIT_NARROW_AVX2 inline __m256i spread_3bit256(__m256i x) {
  return _mm256_or_si256(
      _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi32(0x7)), _mm256_and_si256(_mm256_slli_epi32(x, 2), _mm256_set1_epi32(0x700))),
      _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi32(x, 4), _mm256_set1_epi32(0x70000)),
                      _mm256_and_si256(_mm256_slli_epi32(x, 6), _mm256_set1_epi32(0x7000000))));
}
LOWBIT_NARROW_AVX512 inline __m512i spread_3bit512(__m512i x) {
  return _mm512_or_si512(
      _mm512_or_si512(_mm512_and_si512(x, _mm512_set1_epi32(0x7)), _mm512_and_si512(_mm512_slli_epi32(x, 2), _mm512_set1_epi32(0x700))),
      _mm512_or_si512(_mm512_and_si512(_mm512_slli_epi32(x, 4), _mm512_set1_epi32(0x70000)),
                      _mm512_and_si512(_mm512_slli_epi32(x, 6), _mm512_set1_epi32(0x7000000))));
}

// 64 columns of 2- or 3-bit codes (16 or 24 bytes, nothing read past them) as the 4-bit kernels'
// two byte vectors: lo byte i of 32-bit lane j = the code of column 8j + 2i, hi that of 8j + 2i + 1.
//   2 bits: byte b holds columns 4b..4b+3 (2 bits each); widened to 16-bit lane b, columns 4b and
//           4b+2 go to lo's bytes 2b and 2b+1, columns 4b+1 and 4b+3 to hi's.
//   3 bits: lane j's 8 codes are the 24 bits of bytes 3j..3j+2 (gathered by a dword permute and an
//           in-lane byte shuffle); code k at bit 3k, so lo takes codes 0, 2, 4, 6 and hi 1, 3, 5, 7.
// kFlip: two's complement codes turned to offset binary (code XOR 2^(b−1)).
template <int kBits, bool kFlip = false>
LOWBIT_NARROW_AVX2 inline void widen_narrow_codes256(const uint8_t* codes, __m256i& lo, __m256i& hi) {
  if constexpr (kBits == 2) {
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes)));
    const __m256i low2 = _mm256_set1_epi16(0x0003), high2 = _mm256_set1_epi16(0x0300);
    lo = _mm256_or_si256(_mm256_and_si256(w, low2), _mm256_and_si256(_mm256_slli_epi16(w, 4), high2));
    hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(w, 2), low2), _mm256_and_si256(_mm256_slli_epi16(w, 2), high2));
  } else {
    const __m256i v = _mm256_set_m128i(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 16)),
                                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes)));
    const __m256i lanes = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6));
    const __m256i w = _mm256_shuffle_epi8(
        lanes, _mm256_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1, 0, 1, 2, -1, 3, 4, 5, -1, 6, 7,
                                8, -1, 9, 10, 11, -1));
    lo = spread_3bit256(w);
    hi = spread_3bit256(_mm256_srli_epi32(w, 3));
  }
  if constexpr (kFlip) {
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(1 << (kBits - 1)));
    lo = _mm256_xor_si256(lo, flip);
    hi = _mm256_xor_si256(hi, flip);
  }
}

// The same for 128 columns (32 or 48 bytes, nothing read past them): lane j of the result holds
// columns 8j..8j+7, as the 4-bit unpacking gives them.
template <int kBits, bool kFlip = false>
LOWBIT_NARROW_AVX512 inline void widen_narrow_codes512(const uint8_t* codes, __m512i& lo, __m512i& hi) {
  if constexpr (kBits == 2) {
    const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes)));
    const __m512i low2 = _mm512_set1_epi16(0x0003), high2 = _mm512_set1_epi16(0x0300);
    lo = _mm512_or_si512(_mm512_and_si512(w, low2), _mm512_and_si512(_mm512_slli_epi16(w, 4), high2));
    hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(w, 2), low2), _mm512_and_si512(_mm512_slli_epi16(w, 2), high2));
  } else {
    const __m512i v = _mm512_maskz_loadu_epi8(0x0000FFFFFFFFFFFFull, codes);  // 48 bytes
    const __m512i lanes =
        _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12), v);
    const __m512i w = _mm512_shuffle_epi8(
        lanes, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1)));
    lo = spread_3bit512(w);
    hi = spread_3bit512(_mm512_srli_epi32(w, 3));
  }
  if constexpr (kFlip) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(1 << (kBits - 1)));
    lo = _mm512_xor_si512(lo, flip);
    hi = _mm512_xor_si512(hi, flip);
  }
}

// 64 columns of 2- or 3-bit codes as bytes in column order: block0 = columns 0..31, block1 = 32..63
// (the widened even/odd vectors interleaved back).
template <int kBits>
LOWBIT_NARROW_AVX2 inline void widen_in_order(const uint8_t* codes, __m256i& block0, __m256i& block1) {
  __m256i lo, hi;
  widen_narrow_codes256<kBits>(codes, lo, hi);
  // unpacklo: each 128-bit lane's 8 first lo/hi bytes interleaved = its first 16 columns.
  const __m256i first = _mm256_unpacklo_epi8(lo, hi), second = _mm256_unpackhi_epi8(lo, hi);
  block0 = _mm256_permute2x128_si256(first, second, 0x20);
  block1 = _mm256_permute2x128_si256(first, second, 0x31);
}

#undef LOWBIT_NARROW_AVX2
#undef LOWBIT_NARROW_AVX512

}  // namespace lowbit::narrow_codes
#endif
