// Block codecs behind ggml_quants.h, one function per ggml type. Private to src/numerics.
//
// Each decoder turns `blocks` consecutive blocks at `in` (type_size bytes each, validated
// by the caller) into blocks × block_size floats at `out`; each encoder does the reverse.
// They are plain sequential loops; ggml_quants.cc splits large inputs into chunks of whole
// blocks and runs the chunks in parallel (every block is independent).
//
// Multi-byte fields are little-endian, as GGUF stores them; they are read byte by byte so
// the code does not depend on the host's byte order or on alignment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lowbit/core/half.h"

namespace lowbit::ggml_detail {

using Decoder = void (*)(const uint8_t* in, size_t blocks, float* out);
using Encoder = void (*)(const float* in, size_t blocks, uint8_t* out);

inline uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t load_u32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline uint64_t load_u64(const uint8_t* p) { return uint64_t{load_u32(p)} | (uint64_t{load_u32(p + 4)} << 32); }
inline void store_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void store_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
// ggml's GGML_FP16_TO_FP32: exact widening (a signaling NaN comes back quiet, as with F16C).
inline float load_f16(const uint8_t* p) { return f16_bits_to_f32(load_u16(p)); }

// ggml's reference quantizers narrow with the portable GGML_FP32_TO_FP16 of ggml-impl.h, which
// rounds like ours but writes every NaN as the canonical quiet NaN 0x7E00 with the input's
// sign, where ours (like F16C) keeps the top payload bits. Applied after our conversion.
inline uint16_t ggml_canonical_f16(uint16_t h) {
  return (h & 0x7FFFu) > 0x7C00u ? static_cast<uint16_t>((h & 0x8000u) | 0x7E00u) : h;
}
inline void store_f16(uint8_t* p, float v) { store_u16(p, ggml_canonical_f16(f32_to_f16_bits(v))); }

// Legacy 32-value blocks (ggml_quants.cc).
void decode_q4_0(const uint8_t* in, size_t blocks, float* out);
void decode_q4_1(const uint8_t* in, size_t blocks, float* out);
void decode_q5_0(const uint8_t* in, size_t blocks, float* out);
void decode_q5_1(const uint8_t* in, size_t blocks, float* out);
void decode_q8_0(const uint8_t* in, size_t blocks, float* out);
void decode_q8_1(const uint8_t* in, size_t blocks, float* out);
void encode_q4_0(const float* in, size_t blocks, uint8_t* out);
void encode_q4_1(const float* in, size_t blocks, uint8_t* out);
void encode_q5_0(const float* in, size_t blocks, uint8_t* out);
void encode_q5_1(const float* in, size_t blocks, uint8_t* out);
void encode_q8_0(const float* in, size_t blocks, uint8_t* out);

// 256-value super-blocks: the k-quants, Q8_K and the ternary TQ types (ggml_quants_kquants.cc).
void decode_q2_k(const uint8_t* in, size_t blocks, float* out);
void decode_q3_k(const uint8_t* in, size_t blocks, float* out);
void decode_q4_k(const uint8_t* in, size_t blocks, float* out);
void decode_q5_k(const uint8_t* in, size_t blocks, float* out);
void decode_q6_k(const uint8_t* in, size_t blocks, float* out);
void decode_q8_k(const uint8_t* in, size_t blocks, float* out);
void decode_tq1_0(const uint8_t* in, size_t blocks, float* out);
void decode_tq2_0(const uint8_t* in, size_t blocks, float* out);

// Table-driven (non-uniform) 4-bit codes: IQ4_NL, IQ4_XS, MXFP4 (ggml_quants_iq.cc).
void decode_iq4_nl(const uint8_t* in, size_t blocks, float* out);
void decode_iq4_xs(const uint8_t* in, size_t blocks, float* out);
void decode_mxfp4(const uint8_t* in, size_t blocks, float* out);
void decode_nvfp4(const uint8_t* in, size_t blocks, float* out);

}  // namespace lowbit::ggml_detail
