// Decoders for ggml's table-driven 4-bit codes: IQ4_NL, IQ4_XS (the same 16 non-uniform
// levels, per 32 values or with 6-bit sub-block scales in a 256-value super-block) and MXFP4
// (OCP E2M1 levels with an E8M0 power-of-two scale). Layouts: docs/FORMATS.md.
//
// As in the k-quants, every product is exact in binary32 (11-bit f16 scale × IQ4_XS's
// sub-block scale ls − 32, at most 5 significant bits × a level of at most 7 = 23 bits;
// MXFP4's scale is a power of two), so the result does not depend on contraction or
// association.
#include <bit>
#include <cstdint>

#include <cmath>

#include "numerics/ggml_quants_internal.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lowbit::ggml_detail {

namespace {

// ggml's kvalues_iq4nl: 16 levels fitted to the distribution of weights (denser near zero,
// asymmetric: −127 … 113), used with a per-block scale.
constexpr float kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// ggml's kvalues_mxfp4: the E2M1 values {0, 0.5, 1, 1.5, 2, 3, 4, 6} doubled (to integers)
// with sign; the scale below is halved to compensate.
constexpr float kMxfp4Levels[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// ggml_e8m0_to_fp32_half: 2^(e − 128), i.e. half the E8M0 scale 2^(e − 127). e = 0 and 1 give
// the subnormals 2^−128 and 2^−127; e = 255 (E8M0's NaN) is not special-cased by ggml and gives 2^127.
inline float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (uint32_t{0x00200000} << e) : (uint32_t{e} - 1) << 23;
  return std::bit_cast<float>(bits);
}

}  // namespace

// IQ4_NL: d (f16) | 16 bytes of nibbles (value j low nibble of byte j, j+16 high nibble).
void decode_iq4_nl(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 18, out += 32) {
    const float d = load_f16(in);
    const uint8_t* qs = in + 2;
    for (int j = 0; j < 16; ++j) {
      out[j] = d * kIq4Levels[qs[j] & 0x0F];
      out[j + 16] = d * kIq4Levels[qs[j] >> 4];
    }
  }
}

// IQ4_XS: d (f16) | scales_h (u16) | scales_l[4] | qs[128]. Sub-block ib (32 values) has the
// 6-bit scale ls = nibble ib%2 of scales_l[ib/2] | bits 2ib…2ib+1 of scales_h << 4, used as
// d·(ls − 32); its codes are the nibbles of qs[16ib … 16ib+15] as in IQ4_NL.
void decode_iq4_xs(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 136, out += 256) {
    const float d = load_f16(in);
    const uint16_t scales_h = load_u16(in + 2);
    const uint8_t* scales_l = in + 4;
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = in + 8 + 16 * ib;
      float* y = out + 32 * ib;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIq4Levels[qs[j] & 0x0F];
        y[j + 16] = dl * kIq4Levels[qs[j] >> 4];
      }
    }
  }
}

// MXFP4: e (E8M0) | 16 bytes of nibbles (value j low nibble of byte j, j+16 high nibble).
void decode_mxfp4(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 17, out += 32) {
    const float d = e8m0_half(in[0]);
    const uint8_t* qs = in + 1;
    for (int j = 0; j < 16; ++j) {
      out[j] = kMxfp4Levels[qs[j] & 0x0F] * d;
      out[j + 16] = kMxfp4Levels[qs[j] >> 4] * d;
    }
  }
}

// ggml_ue4m3_to_fp32: an unsigned E4M3 byte (bias 7, subnormals m·2^-9) halved, as e8m0_half, for the
// doubled levels. ggml reads 0x7F (E4M3's NaN pattern) as 0, like 0. Products and halvings are exact.
inline float ue4m3_half(uint8_t x) {
  if (x == 0 || x == 0x7F) return 0.0f;
  const int exponent = (x >> 3) & 0xF, mantissa = x & 0x7;
  const float raw = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -9)
                                  : std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
  return raw * 0.5f;
}

// NVFP4: d[4] (UE4M3, one per 16 values) | 32 bytes of nibbles; sub-block s's value j is the low nibble
// of qs[8s + j] for j < 8 and the high nibble of qs[8s + j − 8] otherwise.
void decode_nvfp4(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 36, out += 64) {
    const uint8_t* qs = in + 4;
    for (int s = 0; s < 4; ++s) {
      const float d = ue4m3_half(in[s]);
      for (int j = 0; j < 8; ++j) {
        out[16 * s + j] = kMxfp4Levels[qs[8 * s + j] & 0x0F] * d;
        out[16 * s + j + 8] = kMxfp4Levels[qs[8 * s + j] >> 4] * d;
      }
    }
  }
}

}  // namespace lowbit::ggml_detail
