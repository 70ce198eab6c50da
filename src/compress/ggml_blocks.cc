// ggml block types as QuantSchemes, and the packing of a QuantizedTensor into their blocks.
// Block layouts (ggml-common.h; our description in docs/FORMATS.md "ggml block types"):
//   Q8_0    f16 d | int8 q[32]
//   Q5_0    f16 d | u8 qh[4] (bit j: bit 4 of u_j) | u8 qs[16] (low nibbles u_0..u_15, high u_16..u_31), u = q + 16
//   Q4_0    f16 d | u8 qs[16] (same nibble order), u = q + 8
//   IQ4_NL  f16 d | u8 qs[16] (same nibble order), u = index of the level
//   MXFP4   u8 e (E8M0) | u8 qs[16] (same nibble order), u = the e2m1 code (S.EE.M, ggml's kvalues_mxfp4 index)
//   NVFP4   u8 d[4] (UE4M3, one per 16 values) | u8 qs[32]: sub-block s's values j < 8 in the low nibbles of
//           qs[8s..8s+7], values 8..15 in the high nibbles; 64 values per block
#include "lowbit/compress/ggml_blocks.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"

namespace lowbit {

namespace ggml_blocks_detail {
// ggml_kquants.cc: the k-quant layouts (after the scheme and g_idx checks).
std::vector<std::byte> pack_kquant_blocks(const QuantizedTensor& tensor, GgmlType type, const std::string& where);
}  // namespace ggml_blocks_detail

namespace {

constexpr int64_t kBlock = 32;

// ggml's kvalues_iq4nl (ggml-common.h): a non-uniform 4-bit grid fitted to weight distributions.
Format iq4_nl_grid() {
  static const Format grid = Format::codebook(
      {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113});
  return grid;
}

constexpr std::array<GgmlType, 6> kSchemeTypes = {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0,
                                                  GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kIQ4_NL};

// The 4-bit float block types (e2m1 codes with 8-bit scales). Not in kSchemeTypes: the bit-budget
// ladder and GGUF loading keep to the integer types.
bool fp4_type(GgmlType type) { return type == GgmlType::kMXFP4 || type == GgmlType::kNVFP4; }

bool has_min(GgmlType type) { return type == GgmlType::kQ4_1 || type == GgmlType::kQ5_1; }
bool five_bit(GgmlType type) { return type == GgmlType::kQ5_0 || type == GgmlType::kQ5_1; }

// ggml stores Q4_0/Q5_0's q as u = q + 2^(b-1); for a b-bit two's complement code that is the code
// with its top bit flipped, and flipping it again gives the code back. Other types store the code
// itself (Q8_0: the int8 byte; Q4_1/Q5_1: the unsigned code; IQ4_NL: the level's index).
uint8_t stored_code_flip(GgmlType type) {
  return type == GgmlType::kQ4_0 ? 0x8 : type == GgmlType::kQ5_0 ? 0x10 : 0;
}

// The same stored layout (the sign of the scales aside: a layout holds either).
bool same_layout(const QuantScheme& a, const QuantScheme& b) {
  return a.element == b.element && a.group_size == b.group_size && a.scale_dtype == b.scale_dtype &&
         a.float_min == b.float_min && a.super_block == b.super_block && a.unit_tensor_scale == b.unit_tensor_scale;
}

}  // namespace

std::optional<QuantScheme> ggml_block_scheme(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0: return QuantScheme::with_format(Format::int_symmetric(8), kBlock, DType::kF16);
    case GgmlType::kQ5_0: return QuantScheme::with_format(Format::int_full(5), kBlock, DType::kF16);
    case GgmlType::kQ4_0: return QuantScheme::with_format(Format::int_full(4), kBlock, DType::kF16);
    case GgmlType::kIQ4_NL: return QuantScheme::with_format(iq4_nl_grid(), kBlock, DType::kF16);
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1: {
      QuantScheme s = QuantScheme::with_format(Format::uint(type == GgmlType::kQ4_1 ? 4 : 5), kBlock, DType::kF16);
      s.float_min = true;
      return s;
    }
    case GgmlType::kMXFP4: return QuantScheme::preset("mxfp4");  // ggml's E8M0 byte is OCP's
    case GgmlType::kNVFP4: {  // NVFP4's scales without the tensor scale: ggml stores none
      QuantScheme s = *QuantScheme::preset("nvfp4");
      s.unit_tensor_scale = true;
      return s;
    }
    default: return std::nullopt;
  }
}

QuantScheme ggml_quantizer_scheme(GgmlType type) {
  if (auto k = ggml_kquant_scheme(type)) return *k;
  std::optional<QuantScheme> scheme = ggml_block_scheme(type);
  require(scheme.has_value(), "GGUF " + std::string(ggml_traits(type).name), "is not a lowbit grid");
  // A float minimum already places the grid; 8-bit float scales are unsigned.
  scheme->signed_scales = !scheme->float_min && scheme->scale_dtype == DType::kF16;
  return *scheme;
}

std::optional<GgmlType> ggml_type_of_scheme(const QuantScheme& scheme) {
  for (GgmlType type : kSchemeTypes) {
    const QuantScheme s = *ggml_block_scheme(type);
    if (same_layout(s, scheme)) return type;
  }
  for (GgmlType type : ggml_kquant_types())
    if (same_layout(*ggml_kquant_scheme(type), scheme)) return type;
  for (GgmlType type : {GgmlType::kMXFP4, GgmlType::kNVFP4})
    if (same_layout(*ggml_block_scheme(type), scheme)) return type;
  return std::nullopt;
}

namespace {
// MXFP4 / NVFP4 blocks (the layouts at the top): the e2m1 codes as they are, the scales as their bytes.
std::vector<std::byte> pack_fp4_blocks(const QuantizedTensor& tensor, GgmlType type, const std::string& where) {
  const bool nv = type == GgmlType::kNVFP4;
  const int64_t block = nv ? 64 : kBlock, sub = nv ? 16 : kBlock, subs = block / sub;
  require(tensor.cols() % block == 0, where,
          "rows of " + std::to_string(tensor.cols()) + " values are not whole blocks of " + std::to_string(block));
  require(tensor.tensor_scale() == 1.0f, where, "ggml's NVFP4 has no tensor scale; this tensor's is " +
                                                    std::to_string(tensor.tensor_scale()));
  const Tensor scale_bytes = tensor.scales_tensor();  // E8M0 / UE4M3 bytes, exact
  const auto* stored = static_cast<const uint8_t*>(scale_bytes.data());
  const int64_t rows = tensor.rows(), cols = tensor.cols(), blocks = cols / block, groups = tensor.groups_per_row();
  const size_t block_bytes = ggml_traits(type).type_size;
  std::vector<std::byte> out(static_cast<size_t>(rows * blocks) * block_bytes);
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    tensor.codes_of_row(r, codes);
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* out_block = reinterpret_cast<uint8_t*>(out.data()) + static_cast<size_t>(r * blocks + b) * block_bytes;
      uint8_t* qs = out_block + subs;
      for (int64_t s = 0; s < subs; ++s) {
        const int64_t g = b * subs + s, c0 = g * sub;
        out_block[s] = stored[r * groups + g];
        for (int64_t j = 0; j < sub / 2; ++j)
          qs[s * sub / 2 + j] = static_cast<uint8_t>(codes[static_cast<size_t>(c0 + j)] |
                                                     (codes[static_cast<size_t>(c0 + j + sub / 2)] << 4));
      }
    }
  }
  return out;
}

QuantizedTensor unpack_fp4_blocks(std::span<const std::byte> bytes, int64_t rows, int64_t cols, GgmlType type,
                                  const std::string& where) {
  const bool nv = type == GgmlType::kNVFP4;
  const int64_t block = nv ? 64 : kBlock, sub = nv ? 16 : kBlock, subs = block / sub;
  require(rows >= 0 && cols > 0 && cols % block == 0, where,
          "rows of " + std::to_string(cols) + " values are not whole blocks of " + std::to_string(block));
  const size_t block_bytes = ggml_traits(type).type_size;
  const int64_t blocks = cols / block;
  require(bytes.size() == static_cast<size_t>(rows * blocks) * block_bytes, where,
          "has " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(rows * blocks * static_cast<int64_t>(block_bytes)));
  QuantizedTensor t(rows, cols, ggml_quantizer_scheme(type));
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  std::vector<float> scales(static_cast<size_t>(blocks * subs));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* in = reinterpret_cast<const uint8_t*>(bytes.data()) + static_cast<size_t>(r * blocks + b) * block_bytes;
      const uint8_t* qs = in + subs;
      for (int64_t s = 0; s < subs; ++s) {
        const int64_t g = b * subs + s, c0 = g * sub;
        // ggml reads E8M0's 0xFF as 2^127 and UE4M3's 0x7F as 0; neither is a scale lowbit holds.
        if (nv ? in[s] >= 0x7F : in[s] == 0xFF)
          throw Error(where, "row " + std::to_string(r) + " block " + std::to_string(b) + " has scale byte " +
                                 std::to_string(in[s]) + ", which lowbit reads as no finite unsigned scale");
        scales[static_cast<size_t>(g)] = nv ? f8e4m3_bits_to_f32(in[s]) : e8m0_bits_to_f32(in[s]);
        for (int64_t j = 0; j < sub / 2; ++j) {
          codes[static_cast<size_t>(c0 + j)] = qs[s * sub / 2 + j] & 0xF;
          codes[static_cast<size_t>(c0 + j + sub / 2)] = qs[s * sub / 2 + j] >> 4;
        }
      }
    }
    t.set_row(r, codes, scales);
  }
  return t;
}
}  // namespace

std::span<const GgmlType> ggml_scheme_types() { return kSchemeTypes; }

bool is_ggml_scheme_type(GgmlType type) {
  return std::find(kSchemeTypes.begin(), kSchemeTypes.end(), type) != kSchemeTypes.end();
}

std::vector<std::byte> pack_ggml_blocks(const QuantizedTensor& tensor, GgmlType type) {
  const std::string name(ggml_traits(type).name);
  const auto kquant = ggml_kquant_scheme(type);
  const auto scheme = kquant ? kquant : ggml_block_scheme(type);
  const std::string where = "GGUF " + name + " export";
  require(scheme.has_value(), where,
          name + " is not a lowbit grid (Q8_0, Q5_1, Q5_0, Q4_1, Q4_0, IQ4_NL, MXFP4, NVFP4 and Q2_K … Q6_K are)");
  const QuantScheme& s = tensor.scheme();
  require(same_layout(s, *scheme), where,
          "the tensor is quantized as " + s.to_string() + ", " + name + " needs " + scheme->to_string());
  require(tensor.g_idx().empty(), where, "columns are reordered (act-order g_idx); GGUF blocks need static groups");
  if (kquant) return ggml_blocks_detail::pack_kquant_blocks(tensor, type, where);
  if (fp4_type(type)) return pack_fp4_blocks(tensor, type, where);
  require(tensor.cols() % kBlock == 0, where, "rows of " + std::to_string(tensor.cols()) + " values are not whole blocks of 32");

  const int64_t rows = tensor.rows(), cols = tensor.cols(), blocks = cols / kBlock;
  const size_t block_bytes = ggml_traits(type).type_size;
  const uint8_t flip = stored_code_flip(type);
  std::vector<std::byte> out(static_cast<size_t>(rows * blocks) * block_bytes);
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    tensor.codes_of_row(r, codes);
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* block = reinterpret_cast<uint8_t*>(out.data()) + static_cast<size_t>(r * blocks + b) * block_bytes;
      const uint16_t d = f32_to_f16_bits(tensor.scale(r, b));  // exact: the scale is an f16 value
      std::memcpy(block, &d, 2);
      uint8_t* body = block + 2;
      if (has_min(type)) {
        const uint16_t m = f32_to_f16_bits(tensor.mins()[static_cast<size_t>(r * blocks + b)]);
        std::memcpy(block + 2, &m, 2);
        body = block + 4;
      }
      uint8_t u[kBlock];
      for (int64_t j = 0; j < kBlock; ++j) u[j] = static_cast<uint8_t>(codes[static_cast<size_t>(b * kBlock + j)] ^ flip);
      if (type == GgmlType::kQ8_0) {
        std::memcpy(body, u, kBlock);
        continue;
      }
      uint8_t* qs = body;
      if (five_bit(type)) {
        uint32_t qh = 0;
        for (int64_t j = 0; j < kBlock; ++j) qh |= static_cast<uint32_t>(u[j] >> 4) << j;
        std::memcpy(body, &qh, 4);
        qs = body + 4;
      }
      for (int64_t j = 0; j < kBlock / 2; ++j)
        qs[j] = static_cast<uint8_t>((u[j] & 0xF) | ((u[j + kBlock / 2] & 0xF) << 4));
    }
  }
  return out;
}

QuantizedTensor unpack_ggml_blocks(std::span<const std::byte> bytes, int64_t rows, int64_t cols, GgmlType type) {
  const std::string name(ggml_traits(type).name);
  const std::string where = "GGUF " + name + " tensor";
  require(ggml_block_scheme(type).has_value(), where,
          name + " is not a lowbit grid (Q8_0, Q5_1, Q5_0, Q4_1, Q4_0, IQ4_NL, MXFP4 and NVFP4 are)");
  if (fp4_type(type)) return unpack_fp4_blocks(bytes, rows, cols, type, where);
  require(rows >= 0 && cols > 0 && cols % kBlock == 0, where, "rows of " + std::to_string(cols) + " values are not whole blocks of 32");
  const size_t block_bytes = ggml_traits(type).type_size;
  const int64_t blocks = cols / kBlock;
  require(bytes.size() == static_cast<size_t>(rows * blocks) * block_bytes, where,
          "has " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(rows * blocks * static_cast<int64_t>(block_bytes)));
  QuantizedTensor t(rows, cols, ggml_quantizer_scheme(type));
  const uint8_t flip = stored_code_flip(type);
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  std::vector<float> scales(static_cast<size_t>(blocks)), mins(has_min(type) ? static_cast<size_t>(blocks) : 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = reinterpret_cast<const uint8_t*>(bytes.data()) + static_cast<size_t>(r * blocks + b) * block_bytes;
      uint16_t d;
      std::memcpy(&d, block, 2);
      scales[static_cast<size_t>(b)] = f16_bits_to_f32(d);
      // (tested before the message is built: this runs for every block of a model at load)
      if (!std::isfinite(scales[static_cast<size_t>(b)]))
        throw Error(where, "row " + std::to_string(r) + " block " + std::to_string(b) + " has a non-finite scale");
      const uint8_t* body = block + 2;
      if (has_min(type)) {
        uint16_t m;
        std::memcpy(&m, block + 2, 2);
        mins[static_cast<size_t>(b)] = f16_bits_to_f32(m);
        if (!std::isfinite(mins[static_cast<size_t>(b)]))
          throw Error(where, "row " + std::to_string(r) + " block " + std::to_string(b) + " has a non-finite minimum");
        body = block + 4;
      }
      uint8_t* c = codes.data() + b * kBlock;
      if (type == GgmlType::kQ8_0) {
        std::memcpy(c, body, kBlock);  // two's complement int8: the int8 grid's code
        continue;
      }
      const uint8_t* qs = body + (five_bit(type) ? 4 : 0);
      uint32_t qh = 0;
      if (five_bit(type)) std::memcpy(&qh, body, 4);
      for (int64_t j = 0; j < kBlock; ++j) {
        uint32_t u = j < kBlock / 2 ? qs[j] & 0xF : qs[j - kBlock / 2] >> 4;
        if (five_bit(type)) u |= ((qh >> j) & 1u) << 4;
        c[j] = static_cast<uint8_t>(u ^ flip);
      }
    }
    t.set_row(r, codes, scales, {}, mins);
  }
  return t;
}

}  // namespace lowbit
