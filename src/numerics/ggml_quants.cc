// ggml's type table, size checks, dispatch, the plain types and the legacy 32-value blocks
// (Q4_0 … Q8_1). The k-quants live in ggml_quants_kquants.cc, the table-driven IQ4/MXFP4
// codes in ggml_quants_iq.cc. docs/FORMATS.md ("ggml block types") describes every layout.
#include "lowbit/numerics/ggml_quants.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "numerics/ggml_quants_internal.h"

// Floating-point contraction must stay off in this file. ggml's reference quantizers round
// after every operation (e.g. `x*id + 8.5f` is a product rounded to float, then a sum), and
// the conformance data (numpy, one ufunc per operation) does the same; a fused multiply-add
// would skip the first rounding and can move a value across a truncation boundary. We build
// for baseline x86-64, which has no FMA, but a -march=native build would let GCC (whose C++
// default is -ffp-contract=fast) fuse them. The dequantizers are immune either way: every
// product there is exact (see ggml_quants_kquants.cc), so only the final add rounds.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lowbit {

namespace {

using ggml_detail::Decoder;
using ggml_detail::Encoder;
using ggml_detail::load_f16;
using ggml_detail::load_u16;
using ggml_detail::load_u32;
using ggml_detail::load_u64;
using ggml_detail::store_u16;
using ggml_detail::store_u32;

// Checked against ggml/src/ggml.c's type_traits (block_size = blck_size, type_size =
// sizeof(block_*)). The numbers 4, 5, 31–33 and 36–38 are retired types; ggml has no
// traits for them, so neither do we. (gguf-py's GGML_QUANT_SIZES says 40 bytes for Q8_1,
// a leftover from when its d and s were floats; ggml's block_q8_1 is two f16 + 32 int8.)
constexpr GgmlTypeTraits kTypes[] = {
    {GgmlType::kF32, "f32", 1, 4, true},
    {GgmlType::kF16, "f16", 1, 2, true},
    {GgmlType::kQ4_0, "q4_0", 32, 18, true},
    {GgmlType::kQ4_1, "q4_1", 32, 20, true},
    {GgmlType::kQ5_0, "q5_0", 32, 22, true},
    {GgmlType::kQ5_1, "q5_1", 32, 24, true},
    {GgmlType::kQ8_0, "q8_0", 32, 34, true},
    {GgmlType::kQ8_1, "q8_1", 32, 36, true},
    {GgmlType::kQ2_K, "q2_K", 256, 84, true},
    {GgmlType::kQ3_K, "q3_K", 256, 110, true},
    {GgmlType::kQ4_K, "q4_K", 256, 144, true},
    {GgmlType::kQ5_K, "q5_K", 256, 176, true},
    {GgmlType::kQ6_K, "q6_K", 256, 210, true},
    {GgmlType::kQ8_K, "q8_K", 256, 292, true},
    {GgmlType::kIQ2_XXS, "iq2_xxs", 256, 66, false},
    {GgmlType::kIQ2_XS, "iq2_xs", 256, 74, false},
    {GgmlType::kIQ3_XXS, "iq3_xxs", 256, 98, false},
    {GgmlType::kIQ1_S, "iq1_s", 256, 50, false},
    {GgmlType::kIQ4_NL, "iq4_nl", 32, 18, true},
    {GgmlType::kIQ3_S, "iq3_s", 256, 110, false},
    {GgmlType::kIQ2_S, "iq2_s", 256, 82, false},
    {GgmlType::kIQ4_XS, "iq4_xs", 256, 136, true},
    {GgmlType::kI8, "i8", 1, 1, true},
    {GgmlType::kI16, "i16", 1, 2, true},
    {GgmlType::kI32, "i32", 1, 4, true},
    {GgmlType::kI64, "i64", 1, 8, true},
    {GgmlType::kF64, "f64", 1, 8, true},
    {GgmlType::kIQ1_M, "iq1_m", 256, 56, false},
    {GgmlType::kBF16, "bf16", 1, 2, true},
    {GgmlType::kTQ1_0, "tq1_0", 256, 54, true},
    {GgmlType::kTQ2_0, "tq2_0", 256, 66, true},
    {GgmlType::kMXFP4, "mxfp4", 32, 17, true},
    {GgmlType::kNVFP4, "nvfp4", 64, 36, true},
};

// Work is split into chunks of whole blocks of about this many values: big enough to
// amortize a task, small enough that a 576 × 49152 tensor spreads over every core.
constexpr uint64_t kChunkValues = uint64_t{1} << 16;

std::string type_name(const GgmlTypeTraits& t) { return std::string(t.name); }

// --- plain types ------------------------------------------------------------------------

// f16/bf16 go through the vectorized converters of half.h (bit-identical to the scalar
// oracles); the bytes are first copied to an aligned buffer, which also settles byte order.
constexpr size_t kHalfBuffer = 2048;

template <void (*Convert)(const uint16_t*, float*, size_t)>
void decode_16bit_float(const uint8_t* in, size_t count, float* out) {
  uint16_t buffer[kHalfBuffer];
  for (size_t done = 0; done < count; done += kHalfBuffer) {
    const size_t n = std::min(kHalfBuffer, count - done);
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(buffer, in + 2 * done, 2 * n);
    } else {
      for (size_t i = 0; i < n; ++i) buffer[i] = load_u16(in + 2 * (done + i));
    }
    Convert(buffer, out + done, n);
  }
}

// bf16 narrowing is ggml's ggml_compute_fp32_to_bf16 bit for bit; f16 narrowing needs ggml's
// NaN canonicalization on top (ggml_canonical_f16).
template <void (*Convert)(const float*, uint16_t*, size_t), bool kCanonicalNaN>
void encode_16bit_float(const float* in, size_t count, uint8_t* out) {
  uint16_t buffer[kHalfBuffer];
  for (size_t done = 0; done < count; done += kHalfBuffer) {
    const size_t n = std::min(kHalfBuffer, count - done);
    Convert(in + done, buffer, n);
    for (size_t i = 0; i < n; ++i)
      store_u16(out + 2 * (done + i), kCanonicalNaN ? ggml_detail::ggml_canonical_f16(buffer[i]) : buffer[i]);
  }
}

void decode_f32(const uint8_t* in, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = std::bit_cast<float>(load_u32(in + 4 * i));
}
void encode_f32(const float* in, size_t count, uint8_t* out) {
  for (size_t i = 0; i < count; ++i) store_u32(out + 4 * i, std::bit_cast<uint32_t>(in[i]));
}
// The integer types and f64 have no dequantizer in ggml; their value is the number itself,
// converted to the nearest float (round to nearest even, as C's conversion does).
void decode_i8(const uint8_t* in, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<int8_t>(in[i]));
}
void decode_i16(const uint8_t* in, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<int16_t>(load_u16(in + 2 * i)));
}
void decode_i32(const uint8_t* in, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<int32_t>(load_u32(in + 4 * i)));
}
void decode_i64(const uint8_t* in, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<int64_t>(load_u64(in + 8 * i)));
}
void decode_f64(const uint8_t* in, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(std::bit_cast<double>(load_u64(in + 8 * i)));
}

Decoder decoder_for(GgmlType type) {
  using namespace ggml_detail;
  switch (type) {
    case GgmlType::kF32: return decode_f32;
    case GgmlType::kF16: return decode_16bit_float<convert_f16_to_f32>;
    case GgmlType::kBF16: return decode_16bit_float<convert_bf16_to_f32>;
    case GgmlType::kI8: return decode_i8;
    case GgmlType::kI16: return decode_i16;
    case GgmlType::kI32: return decode_i32;
    case GgmlType::kI64: return decode_i64;
    case GgmlType::kF64: return decode_f64;
    case GgmlType::kQ4_0: return decode_q4_0;
    case GgmlType::kQ4_1: return decode_q4_1;
    case GgmlType::kQ5_0: return decode_q5_0;
    case GgmlType::kQ5_1: return decode_q5_1;
    case GgmlType::kQ8_0: return decode_q8_0;
    case GgmlType::kQ8_1: return decode_q8_1;
    case GgmlType::kQ2_K: return decode_q2_k;
    case GgmlType::kQ3_K: return decode_q3_k;
    case GgmlType::kQ4_K: return decode_q4_k;
    case GgmlType::kQ5_K: return decode_q5_k;
    case GgmlType::kQ6_K: return decode_q6_k;
    case GgmlType::kQ8_K: return decode_q8_k;
    case GgmlType::kTQ1_0: return decode_tq1_0;
    case GgmlType::kTQ2_0: return decode_tq2_0;
    case GgmlType::kIQ4_NL: return decode_iq4_nl;
    case GgmlType::kIQ4_XS: return decode_iq4_xs;
    case GgmlType::kMXFP4: return decode_mxfp4;
    case GgmlType::kNVFP4: return decode_nvfp4;
    default: return nullptr;
  }
}

Encoder encoder_for(GgmlType type) {
  using namespace ggml_detail;
  switch (type) {
    case GgmlType::kF32: return encode_f32;
    case GgmlType::kF16: return encode_16bit_float<convert_f32_to_f16, true>;
    case GgmlType::kBF16: return encode_16bit_float<convert_f32_to_bf16, false>;
    case GgmlType::kQ4_0: return encode_q4_0;
    case GgmlType::kQ4_1: return encode_q4_1;
    case GgmlType::kQ5_0: return encode_q5_0;
    case GgmlType::kQ5_1: return encode_q5_1;
    case GgmlType::kQ8_0: return encode_q8_0;
    default: return nullptr;
  }
}

// blocks × type_size, or Error when it does not fit in 64 bits.
uint64_t checked_bytes(const GgmlTypeTraits& t, uint64_t blocks, const char* where) {
  const unsigned __int128 bytes = static_cast<unsigned __int128>(blocks) * t.type_size;
  require(bytes <= UINT64_MAX, where,
          type_name(t) + ": " + std::to_string(blocks) + " blocks of " + std::to_string(t.type_size) +
              " bytes overflow 64 bits");
  return static_cast<uint64_t>(bytes);
}

// Blocks in `values`, or Error naming the type when `values` is not a whole number of blocks.
uint64_t whole_blocks(const GgmlTypeTraits& t, uint64_t values, const char* where, const char* what) {
  require(values % t.block_size == 0, where,
          type_name(t) + ": " + what + " of " + std::to_string(values) + " values is not a multiple of the block size " +
              std::to_string(t.block_size));
  return values / t.block_size;
}

template <class Body>
void for_block_chunks(const GgmlTypeTraits& t, uint64_t blocks, Body&& body) {
  const auto grain = static_cast<int64_t>(std::max<uint64_t>(1, kChunkValues / t.block_size));
  parallel_for(static_cast<int64_t>(blocks), grain, std::forward<Body>(body));
}

}  // namespace

// --- the type table -----------------------------------------------------------------------

const GgmlTypeTraits* find_ggml_type(uint32_t raw) {
  for (const GgmlTypeTraits& t : kTypes)
    if (static_cast<uint32_t>(t.type) == raw) return &t;
  return nullptr;
}

const GgmlTypeTraits& ggml_traits(GgmlType type) {
  const GgmlTypeTraits* t = find_ggml_type(static_cast<uint32_t>(type));
  require(t != nullptr, "ggml type", "unknown ggml type number " + std::to_string(static_cast<uint32_t>(type)));
  return *t;
}

std::optional<GgmlType> parse_ggml_type(std::string_view name) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  for (const GgmlTypeTraits& t : kTypes) {
    if (t.name.size() != name.size()) continue;
    if (std::equal(name.begin(), name.end(), t.name.begin(), [&](char a, char b) { return lower(a) == lower(b); }))
      return t.type;
  }
  return std::nullopt;
}

uint64_t ggml_row_bytes(GgmlType type, uint64_t row_length) {
  const GgmlTypeTraits& t = ggml_traits(type);
  return checked_bytes(t, whole_blocks(t, row_length, "ggml_row_bytes", "a row"), "ggml_row_bytes");
}

bool ggml_can_quantize(GgmlType type) { return encoder_for(type) != nullptr; }

void ggml_dequantize(GgmlType type, std::span<const std::byte> data, std::span<float> out) {
  constexpr const char* kWhere = "ggml_dequantize";
  const GgmlTypeTraits& t = ggml_traits(type);
  const Decoder decode = decoder_for(type);
  require(t.can_dequantize && decode != nullptr, kWhere,
          type_name(t) + ": lowbit does not implement dequantization of this type");
  const uint64_t blocks = whole_blocks(t, out.size(), kWhere, "an output");
  const uint64_t bytes = checked_bytes(t, blocks, kWhere);
  require(data.size() == bytes, kWhere,
          type_name(t) + ": " + std::to_string(out.size()) + " values are " + std::to_string(blocks) + " blocks of " +
              std::to_string(t.type_size) + " bytes = " + std::to_string(bytes) + " bytes, data has " +
              std::to_string(data.size()));
  const auto* in = reinterpret_cast<const uint8_t*>(data.data());
  float* dst = out.data();
  for_block_chunks(t, blocks, [&](int64_t begin, int64_t end) {
    decode(in + begin * t.type_size, static_cast<size_t>(end - begin), dst + begin * t.block_size);
  });
}

void ggml_quantize(GgmlType type, std::span<const float> in, std::span<std::byte> out) {
  constexpr const char* kWhere = "ggml_quantize";
  const GgmlTypeTraits& t = ggml_traits(type);
  const Encoder encode = encoder_for(type);
  require(encode != nullptr, kWhere,
          type_name(t) + ": lowbit has no reference quantizer for this type (it has f32, f16, bf16, q4_0, q4_1, "
                           "q5_0, q5_1, q8_0)");
  const uint64_t blocks = whole_blocks(t, in.size(), kWhere, "an input");
  const uint64_t bytes = checked_bytes(t, blocks, kWhere);
  require(out.size() == bytes, kWhere,
          type_name(t) + ": " + std::to_string(in.size()) + " values need " + std::to_string(bytes) +
              " bytes, output has " + std::to_string(out.size()));
  const float* src = in.data();
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  for_block_chunks(t, blocks, [&](int64_t begin, int64_t end) {
    encode(src + begin * t.block_size, static_cast<size_t>(end - begin), dst + begin * t.type_size);
  });
}

// --- legacy 32-value blocks ---------------------------------------------------------------

namespace ggml_detail {

namespace {

// C converts float to integer by truncation and leaves NaN and out-of-range values
// undefined. ggml's reference quantizers cast `x*id + 8.5f` and the like straight to
// int8_t/uint8_t, and when a block's scale is so small that 1/d overflows, x*id is ±Inf or
// NaN. GCC and Clang emit x86's cvttss2si for such casts, which gives INT32_MIN (low byte 0)
// for every such input; we emulate it, so those blocks are deterministic here and equal
// ggml's on x86. In-range values truncate exactly as C does.
inline int32_t truncate_like_x86(float v) {
  return v >= -2147483648.0f && v < 2147483648.0f ? static_cast<int32_t>(v) : INT32_MIN;
}
inline int8_t to_int8(float v) { return static_cast<int8_t>(truncate_like_x86(v)); }
inline uint8_t to_uint8(float v) { return static_cast<uint8_t>(truncate_like_x86(v)); }

// ggml's "absolute max" loop of Q4_0/Q5_0: the first value of largest magnitude, with its sign
// (NaN never wins the strict comparison).
inline float signed_absmax(const float* x) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// Q4_1/Q5_1's range loop, starting from ±FLT_MAX like ggml (an all-NaN block keeps them).
inline void min_max(const float* x, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

inline float inverse_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

}  // namespace

// Q4_0: d (f16) | 16 bytes of nibbles; value j is low nibble of byte j, value j+16 the high one.
void decode_q4_0(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 18, out += 32) {
    const float d = load_f16(in);
    const uint8_t* qs = in + 2;
    for (int j = 0; j < 16; ++j) {
      out[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      out[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

void encode_q4_0(const float* in, size_t blocks, uint8_t* out) {
  for (size_t b = 0; b < blocks; ++b, in += 32, out += 18) {
    const float d = signed_absmax(in) / -8.0f;  // the extreme value maps to code 0 (= −8)
    const float id = inverse_or_zero(d);
    store_f16(out, d);
    for (int j = 0; j < 16; ++j) {
      const float x0 = in[j] * id;
      const float x1 = in[j + 16] * id;
      const auto q0 = static_cast<uint8_t>(std::min<int>(15, to_int8(x0 + 8.5f)));
      const auto q1 = static_cast<uint8_t>(std::min<int>(15, to_int8(x1 + 8.5f)));
      out[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// Q4_1: d (f16) | m (f16) | 16 bytes of nibbles; value = q·d + m.
void decode_q4_1(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 20, out += 32) {
    const float d = load_f16(in);
    const float m = load_f16(in + 2);
    const uint8_t* qs = in + 4;
    for (int j = 0; j < 16; ++j) {
      out[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
      out[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

void encode_q4_1(const float* in, size_t blocks, uint8_t* out) {
  for (size_t b = 0; b < blocks; ++b, in += 32, out += 20) {
    float min, max;
    min_max(in, min, max);
    const float d = (max - min) / 15.0f;
    const float id = inverse_or_zero(d);
    store_f16(out, d);
    store_f16(out + 2, min);
    for (int j = 0; j < 16; ++j) {
      const float x0 = (in[j] - min) * id;
      const float x1 = (in[j + 16] - min) * id;
      const auto q0 = static_cast<uint8_t>(std::min<int>(15, to_int8(x0 + 0.5f)));
      const auto q1 = static_cast<uint8_t>(std::min<int>(15, to_int8(x1 + 0.5f)));
      out[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// Q5_0: d (f16) | qh (u32: bit j = fifth bit of value j) | 16 bytes of low nibbles.
void decode_q5_0(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 22, out += 32) {
    const float d = load_f16(in);
    const uint32_t qh = load_u32(in + 2);
    const uint8_t* qs = in + 6;
    for (int j = 0; j < 16; ++j) {
      const int high0 = static_cast<int>((qh >> j) << 4 & 0x10);
      const int high1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      out[j] = static_cast<float>(((qs[j] & 0x0F) | high0) - 16) * d;
      out[j + 16] = static_cast<float>(((qs[j] >> 4) | high1) - 16) * d;
    }
  }
}

void encode_q5_0(const float* in, size_t blocks, uint8_t* out) {
  for (size_t b = 0; b < blocks; ++b, in += 32, out += 22) {
    const float d = signed_absmax(in) / -16.0f;
    const float id = inverse_or_zero(d);
    store_f16(out, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const float x0 = in[j] * id;
      const float x1 = in[j + 16] * id;
      const auto q0 = static_cast<uint8_t>(std::min<int>(31, to_int8(x0 + 16.5f)));
      const auto q1 = static_cast<uint8_t>(std::min<int>(31, to_int8(x1 + 16.5f)));
      out[6 + j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    store_u32(out + 2, qh);
  }
}

// Q5_1: d (f16) | m (f16) | qh (u32) | 16 bytes of low nibbles; value = q·d + m.
void decode_q5_1(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 24, out += 32) {
    const float d = load_f16(in);
    const float m = load_f16(in + 2);
    const uint32_t qh = load_u32(in + 4);
    const uint8_t* qs = in + 8;
    for (int j = 0; j < 16; ++j) {
      const int high0 = static_cast<int>((qh >> j) << 4 & 0x10);
      const int high1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      out[j] = static_cast<float>((qs[j] & 0x0F) | high0) * d + m;
      out[j + 16] = static_cast<float>((qs[j] >> 4) | high1) * d + m;
    }
  }
}

void encode_q5_1(const float* in, size_t blocks, uint8_t* out) {
  for (size_t b = 0; b < blocks; ++b, in += 32, out += 24) {
    float min, max;
    min_max(in, min, max);
    const float d = (max - min) / 31.0f;
    const float id = inverse_or_zero(d);
    store_f16(out, d);
    store_f16(out + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const float x0 = (in[j] - min) * id;
      const float x1 = (in[j + 16] - min) * id;
      // No clamp to 31 here, unlike Q4_1 and Q5_0: ggml has none (x0 cannot exceed 31.5).
      const uint8_t q0 = to_uint8(x0 + 0.5f);
      const uint8_t q1 = to_uint8(x1 + 0.5f);
      out[8 + j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    store_u32(out + 4, qh);
  }
}

// Q8_0: d (f16) | 32 int8.
void decode_q8_0(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 34, out += 32) {
    const float d = load_f16(in);
    for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(static_cast<int8_t>(in[2 + j])) * d;
  }
}

void encode_q8_0(const float* in, size_t blocks, uint8_t* out) {
  for (size_t b = 0; b < blocks; ++b, in += 32, out += 34) {
    // ggml's MAX(a, b) is `a > b ? a : b`: a NaN is taken but forgotten at the next value.
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) {
      const float a = std::fabs(in[j]);
      amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = inverse_or_zero(d);
    store_f16(out, d);
    for (int j = 0; j < 32; ++j) out[2 + j] = static_cast<uint8_t>(to_int8(std::round(in[j] * id)));
  }
}

// Q8_1: d (f16) | s (f16, d · Σq, used by ggml's dot products) | 32 int8. ggml defines no
// dequantizer for it (it only ever holds activations); the value is q·d as in Q8_0.
void decode_q8_1(const uint8_t* in, size_t blocks, float* out) {
  for (size_t b = 0; b < blocks; ++b, in += 36, out += 32) {
    const float d = load_f16(in);
    for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(static_cast<int8_t>(in[4 + j])) * d;
  }
}

}  // namespace ggml_detail

}  // namespace lowbit
