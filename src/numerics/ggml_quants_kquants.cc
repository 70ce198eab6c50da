// Decoders for ggml's 256-value super-blocks: the k-quants Q2_K … Q6_K, Q8_K and the
// ternary TQ1_0/TQ2_0. Layouts: docs/FORMATS.md, "ggml block types".
//
// Why these loops are bit-exact with ggml's dequantize_row_* however they are compiled:
// every product is exact in binary32. An f16 scale has an 11-bit significand, sub-block
// scales and mins have at most 6 (Q6_K: 7) significant bits, codes at most 5, so e.g.
// Q4_K's (d·sc)·q needs 11 + 6 + 4 = 21 bits and Q6_K's (d·sc)·q 11 + 7 + 5 = 23 bits, far
// from under- or overflow. The only rounding is the final subtraction of the min (Q2_K,
// Q4_K, Q5_K), a single operation either way — so a fused multiply-add, or a different
// association of the products, gives the same float. (Q8_K's scale is an f32, but its
// value is one product, rounded once.) The pragma below is therefore belt and braces.
#include <bit>
#include <cstdint>

#include "numerics/ggml_quants_internal.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lowbit::ggml_detail {

namespace {

// Q3_K's sixteen 6-bit scales, stored with an offset of 32: the low 4 bits of scale i are
// the low nibble of byte i (i < 8) or the high nibble of byte i − 8; its high 2 bits are bits
// 2·(i/4) … 2·(i/4)+1 of byte 8 + i % 4.
inline int q3_k_scale(const uint8_t* s, int i) {
  const int low = i < 8 ? (s[i] & 0x0F) : (s[i - 8] >> 4);
  const int high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q4_K/Q5_K's eight 6-bit (scale, min) pairs in 12 bytes: pairs 0–3 are the low 6 bits of
// bytes 0–3 (scales) and 4–7 (mins); pairs 4–7 keep their low 4 bits in the nibbles of bytes
// 8–11 (scale low, min high) and their top 2 bits in the spare top bits of bytes 0–3
// (scales) and 4–7 (mins).
inline void k4_scale_min(int j, const uint8_t* s, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

}  // namespace

// Q2_K: scales[16] (low nibble scale, high nibble min) | qs[64] | d | dmin.
// Values 128h + 32j + 16p + l (l < 16) are bits 2j…2j+1 of qs[32h + 16p + l], sub-block 8h + 2j + p.
void decode_q2_k(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 84, out += 256) {
    const uint8_t* scales = in;
    const float d = load_f16(in + 80);
    const float dmin = load_f16(in + 82);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = in + 16 + 32 * h;
      for (int j = 0; j < 4; ++j) {
        for (int p = 0; p < 2; ++p) {
          const uint8_t sc = scales[8 * h + 2 * j + p];
          const float dl = d * static_cast<float>(sc & 0x0F);
          const float ml = dmin * static_cast<float>(sc >> 4);
          float* y = out + 128 * h + 32 * j + 16 * p;
          for (int l = 0; l < 16; ++l) y[l] = dl * static_cast<float>((q[16 * p + l] >> (2 * j)) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K: hmask[32] | qs[64] | scales[12] | d. Like Q2_K's 2-bit codes, plus a high bit taken
// from hmask[16p + l], bit 4h + j; a clear bit subtracts 4 (so codes are −4 … 3).
void decode_q3_k(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 110, out += 256) {
    const uint8_t* hmask = in;
    const uint8_t* scales = in + 96;
    const float d = load_f16(in + 108);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = in + 32 + 32 * h;
      for (int j = 0; j < 4; ++j) {
        const uint8_t bit = static_cast<uint8_t>(1u << (4 * h + j));
        for (int p = 0; p < 2; ++p) {
          const float dl = d * static_cast<float>(q3_k_scale(scales, 8 * h + 2 * j + p));
          float* y = out + 128 * h + 32 * j + 16 * p;
          for (int l = 0; l < 16; ++l) {
            const int i = 16 * p + l;
            const int code = ((q[i] >> (2 * j)) & 3) - ((hmask[i] & bit) ? 0 : 4);
            y[l] = dl * static_cast<float>(code);
          }
        }
      }
    }
  }
}

// Q4_K: d | dmin | scales[12] | qs[128]. Chunk c (64 values) uses qs[32c … 32c+31]: low
// nibbles are sub-block 2c, high nibbles sub-block 2c+1; value = (d·sc)·q − dmin·m.
void decode_q4_k(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 144, out += 256) {
    const float d = load_f16(in);
    const float dmin = load_f16(in + 2);
    const uint8_t* scales = in + 4;
    for (int c = 0; c < 4; ++c) {
      int sc, m;
      k4_scale_min(2 * c, scales, sc, m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      k4_scale_min(2 * c + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      const uint8_t* q = in + 16 + 32 * c;
      float* y = out + 64 * c;
      for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: d | dmin | scales[12] | qh[32] | qs[128]. As Q4_K, with a fifth bit (worth 16) from
// qh[l]: bit 2c for the low-nibble sub-block of chunk c, bit 2c+1 for the high one.
void decode_q5_k(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 176, out += 256) {
    const float d = load_f16(in);
    const float dmin = load_f16(in + 2);
    const uint8_t* scales = in + 4;
    const uint8_t* qh = in + 16;
    for (int c = 0; c < 4; ++c) {
      int sc, m;
      k4_scale_min(2 * c, scales, sc, m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      k4_scale_min(2 * c + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      const uint8_t* ql = in + 48 + 32 * c;
      const uint8_t bit1 = static_cast<uint8_t>(1u << (2 * c));
      const uint8_t bit2 = static_cast<uint8_t>(2u << (2 * c));
      float* y = out + 64 * c;
      for (int l = 0; l < 32; ++l)
        y[l] = d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & bit1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        y[32 + l] = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & bit2) ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: ql[128] | qh[64] | scales[16] (int8) | d. Half h (128 values) uses ql[64h …],
// qh[32h …], scales[8h …]; for l < 32 the four values l, l+32, l+64, l+96 take the low
// nibble of ql[l], of ql[l+32], the high nibble of ql[l], of ql[l+32], and bit pairs 0, 2, 4, 6
// of qh[l] as their top two bits; codes are offset by 32; value l+32k uses scale 8h + l/16 + 2k.
void decode_q6_k(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 210, out += 256) {
    const float d = load_f16(in + 208);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = in + 64 * h;
      const uint8_t* qh = in + 128 + 32 * h;
      const auto* sc = reinterpret_cast<const int8_t*>(in + 192 + 8 * h);
      float* y = out + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

// Q8_K: d (f32!) | qs[256] (int8) | bsums[16] (int16 sums of 16 codes, for dot products).
// It is ggml's intermediate format for activations; value = d·q.
void decode_q8_k(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 292, out += 256) {
    const float d = std::bit_cast<float>(load_u32(in));
    for (int j = 0; j < 256; ++j) out[j] = d * static_cast<float>(static_cast<int8_t>(in[4 + j]));
  }
}

namespace {

// TQ1_0 packs five base-3 digits per byte as a fixed-point fraction: byte = ⌈digits·256/243⌉,
// where digits is the 5-digit base-3 number. Multiplying by 3^n (mod 256) shifts digit n to the
// top, and (byte·3) >> 8 reads it out.
inline float tq1_value(uint8_t byte, int n, float d) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const auto shifted = static_cast<uint8_t>(byte * kPow3[n]);
  const int digit = (shifted * 3) >> 8;
  return static_cast<float>(digit - 1) * d;
}

}  // namespace

// TQ1_0: qs[48] | qh[4] | d. Values 0–159: digit n of qs[m] (m < 32) is value 32n + m;
// 160–239: digit n of qs[32 + m] (m < 16) is value 160 + 16n + m; 240–255: digit n (< 4) of
// qh[j] is value 240 + 4n + j. Each digit 0, 1, 2 means −d, 0, +d.
void decode_tq1_0(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 54, out += 256) {
    const float d = load_f16(in + 52);
    float* y = out;
    for (int n = 0; n < 5; ++n)
      for (int m = 0; m < 32; ++m) *y++ = tq1_value(in[m], n, d);
    for (int n = 0; n < 5; ++n)
      for (int m = 0; m < 16; ++m) *y++ = tq1_value(in[32 + m], n, d);
    for (int n = 0; n < 4; ++n)
      for (int j = 0; j < 4; ++j) *y++ = tq1_value(in[48 + j], n, d);
  }
}

// TQ2_0: qs[64] | d. Value 128h + 32k + m is bits 2k…2k+1 of qs[32h + m]; codes 0…3 mean (code − 1)·d.
void decode_tq2_0(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 66, out += 256) {
    const float d = load_f16(in + 64);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int m = 0; m < 32; ++m)
          out[128 * h + 32 * k + m] = static_cast<float>(((in[32 * h + m] >> (2 * k)) & 3) - 1) * d;
  }
}

}  // namespace lowbit::ggml_detail
