// Exact conversions between IEEE binary16 (f16), bfloat16 (bf16) and binary32 (f32).
//
// Narrowing uses round-to-nearest-even (IEEE 754 default), keeps the sign of zero,
// produces correctly rounded f16 subnormals, overflows to Inf (values >= 65520 for
// f16, as IEEE rounding demands), and turns NaN into a quiet NaN that keeps the top
// payload bits. Widening is exact for every non-NaN pattern; a NaN widens to the quiet
// NaN with the same sign and payload (signaling NaNs get the quiet bit), which is what
// IEEE 754 conversion, x86 F16C and every vector target produce, so scalar tails and
// vector bodies agree bit for bit.
// The scalar functions are the oracle; the bulk functions below are vectorized with
// Google Highway (runtime dispatch) and are tested against them.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace lowbit {

inline float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: value = mantissa * 2^-24, exactly representable in f32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
  }
  if (exponent == 31) {
    const uint32_t quiet = mantissa != 0 ? 0x00400000u : 0u;  // Inf stays Inf
    return std::bit_cast<float>(sign | 0x7F800000u | quiet | (mantissa << 13));
  }
  // Rebias 15 -> 127: add 112 to the exponent field.
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline uint16_t f32_to_f16_bits(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x7F800000u) {
    if (magnitude == 0x7F800000u) return sign | 0x7C00u;
    return sign | 0x7E00u | static_cast<uint16_t>((magnitude >> 13) & 0x3FFu);  // quiet NaN
  }
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to Inf
  if (magnitude < 0x38800000u) {                        // below 2^-14: f16 subnormal or zero
    if (magnitude <= 0x33000000u) return sign;           // <= 2^-25 (the tie goes to even 0)
    const uint32_t exponent = magnitude >> 23;           // 103..112
    const uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - exponent;               // to units of 2^-24
    uint32_t rounded = significand >> shift;
    const uint32_t remainder = significand & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (remainder > half || (remainder == half && (rounded & 1u))) ++rounded;
    return sign | static_cast<uint16_t>(rounded);  // may carry into the smallest normal: correct
  }
  // Normal: rebias 127 -> 15 and drop 13 mantissa bits with round-to-nearest-even.
  const uint32_t rebased = magnitude - 0x38000000u;
  return sign | static_cast<uint16_t>((rebased + 0xFFFu + ((rebased >> 13) & 1u)) >> 13);
}

inline float bf16_bits_to_f32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

inline uint16_t f32_to_bf16_bits(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  // Round-to-nearest-even on the low 16 bits; a carry into the exponent is the correct
  // result (including rounding up to Inf past the largest finite bf16).
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// OCP 8-bit floats, widened exactly (every code is an f32 value). Narrowing with rounding lives in
// numerics (Format::e4m3() etc.); these are what loaders need to read FP8 tensors and scales.
// e4m3fn: bias 7, subnormals m·2^-9, no Inf, S.1111.111 NaN (OCP OFP8 spec, table 1).
inline float f8e4m3_bits_to_f32(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t exponent = (b >> 3) & 0xFu, mantissa = b & 0x7u;
  if (exponent == 0xFu && mantissa == 0x7u) return std::bit_cast<float>(sign | 0x7FC00000u);
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-9f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
  }
  return std::bit_cast<float>(sign | ((exponent + 120) << 23) | (mantissa << 20));  // rebias 7 -> 127
}
// e5m2: IEEE-like, bias 15, subnormals m·2^-16, Inf and NaN at exponent 31 — the top byte of an f16.
inline float f8e5m2_bits_to_f32(uint8_t b) { return f16_bits_to_f32(static_cast<uint16_t>(b << 8)); }
// E8M0 (OCP MX v1.0 section 5.4): 2^(code-127) for codes 0..254, 0xFF NaN; no sign, no zero.
// 2^-127 is an f32 subnormal, still exact.
inline float e8m0_bits_to_f32(uint8_t b) {
  if (b == 0xFFu) return std::bit_cast<float>(0x7FC00000u);
  if (b == 0) return 0x1p-127f;
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 23);
}

// Bulk conversions (vectorized, runtime-dispatched). `in` and `out` must not overlap.
void convert_f16_to_f32(const uint16_t* in, float* out, size_t count);
void convert_f32_to_f16(const float* in, uint16_t* out, size_t count);
void convert_bf16_to_f32(const uint16_t* in, float* out, size_t count);
void convert_f32_to_bf16(const float* in, uint16_t* out, size_t count);

}  // namespace lowbit
