// ggml's k-quants as lowbit schemes with two-level scales (QuantScheme::super_block), and their
// packing into 256-value super-blocks. Layouts (ggml-common.h; the decoders that read them are
// numerics/ggml_quants_kquants.cc, bit-exact with ggml's dequantize_row_*):
//   Q2_K  scales[16] (sc | m << 4) | qs[64] | d | dmin
//   Q3_K  hmask[32] | qs[64] | scales[12] (6-bit sc + 32) | d
//   Q4_K  d | dmin | scales[12] (six-bit sc, m pairs) | qs[128]
//   Q5_K  d | dmin | scales[12] | qh[32] | qs[128]
//   Q6_K  ql[128] | qh[64] | scales[16] (int8) | d
// Every group (ggml's "sub-block") is a run of 16 or 32 consecutive values. Decoding is
// (d·sc)·q − dmin·m in f32, each product exact: the same float lowbit's QuantizedTensor computes
// from the scale d·sc and the minimum −(dmin·m) it holds.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/compress/ggml_blocks.h"
#include "lowbit/core/error.h"
#include "lowbit/core/half.h"

namespace lowbit {

namespace {

constexpr int64_t kSuper = 256;

QuantScheme kquant(Format element, int64_t group, int32_t lo, int32_t hi, int32_t min_hi) {
  QuantScheme s = QuantScheme::with_format(std::move(element), group, DType::kF32);
  s.float_min = min_hi > 0;
  s.signed_scales = lo < 0;
  s.super_block = {kSuper, lo, hi, min_hi};
  return s;
}

// The f16 factor f and integers k_i with f32(f)·k_i == values[i] exactly, k_i in [lo, hi]: the
// decomposition the quantizer made (any one that reproduces the values will do: they decode
// alike). Tries f = the value of largest magnitude over each admissible integer. False if none.
bool factor(const float* values, size_t n, int32_t lo, int32_t hi, uint16_t& f_bits, std::vector<int32_t>& k) {
  k.assign(n, 0);
  float extreme = 0;
  for (size_t i = 0; i < n; ++i)
    if (std::fabs(values[i]) > std::fabs(extreme)) extreme = values[i];
  if (extreme == 0.0f) {
    f_bits = 0;
    return true;
  }
  for (int32_t top = 1; top <= std::max(hi, -lo); ++top)
    for (int32_t sign : {1, -1}) {
      const int32_t kt = sign * top;
      if (kt < lo || kt > hi) continue;
      const uint16_t bits = f32_to_f16_bits(extreme / static_cast<float>(kt));
      const float f = f16_bits_to_f32(bits);
      if (!std::isfinite(f) || f == 0.0f) continue;
      bool ok = true;
      for (size_t i = 0; i < n && ok; ++i) {
        const double q = std::nearbyint(static_cast<double>(values[i]) / f);
        ok = q >= lo && q <= hi && f * static_cast<float>(q) == values[i];
        k[i] = static_cast<int32_t>(q);
      }
      if (ok) {
        f_bits = bits;
        return true;
      }
    }
  return false;
}

void put_f16(uint8_t* at, uint16_t bits) { std::memcpy(at, &bits, 2); }

// Q4_K/Q5_K's eight 6-bit (scale, min) pairs in 12 bytes (the inverse of k4_scale_min).
void put_k4_scales(uint8_t* s, const int32_t* sc, const int32_t* m) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4));
  }
}

// One super-block: u = the stored codes (Q3_K/Q6_K: two's complement codes with the top bit
// flipped, i.e. q + 4 / q + 32; the others: the unsigned code), sc/m its integers.
void pack_super(GgmlType type, const uint8_t* u, const int32_t* sc, const int32_t* m, uint16_t d, uint16_t dmin,
                uint8_t* out) {
  switch (type) {
    case GgmlType::kQ2_K:
      for (int i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(sc[i] | (m[i] << 4));
      for (int v = 0; v < 256; ++v) {  // v = 128h + 32j + 16p + l → bits 2j of qs[32h + 16p + l]
        const int h = v / 128, j = (v / 32) % 4, pl = v % 32;
        out[16 + 32 * h + pl] |= static_cast<uint8_t>(u[v] << (2 * j));
      }
      put_f16(out + 80, d);
      put_f16(out + 82, dmin);
      return;
    case GgmlType::kQ3_K: {
      for (int v = 0; v < 256; ++v) {  // low 2 bits as Q2_K's qs; bit 2 into hmask[16p + l], bit 4h + j
        const int h = v / 128, j = (v / 32) % 4, pl = v % 32;
        out[32 + 32 * h + pl] |= static_cast<uint8_t>((u[v] & 3) << (2 * j));
        out[pl] |= static_cast<uint8_t>((u[v] >> 2) << (4 * h + j));
      }
      uint8_t* s = out + 96;
      for (int i = 0; i < 16; ++i) {
        const int stored = sc[i] + 32;
        s[i % 8] |= static_cast<uint8_t>((stored & 0x0F) << (i < 8 ? 0 : 4));
        s[8 + i % 4] |= static_cast<uint8_t>((stored >> 4) << (2 * (i / 4)));
      }
      put_f16(out + 108, d);
      return;
    }
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: {
      put_f16(out, d);
      put_f16(out + 2, dmin);
      put_k4_scales(out + 4, sc, m);
      const bool five = type == GgmlType::kQ5_K;
      uint8_t* qs = out + (five ? 48 : 16);
      for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) {
          const uint8_t lo = u[64 * c + l], hi = u[64 * c + 32 + l];
          qs[32 * c + l] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
          if (five) out[16 + l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
        }
      return;
    }
    case GgmlType::kQ6_K:
      for (int h = 0; h < 2; ++h) {
        uint8_t* ql = out + 64 * h;
        uint8_t* qh = out + 128 + 32 * h;
        const uint8_t* uh = u + 128 * h;
        for (int l = 0; l < 32; ++l) {
          ql[l] = static_cast<uint8_t>((uh[l] & 0x0F) | ((uh[l + 64] & 0x0F) << 4));
          ql[l + 32] = static_cast<uint8_t>((uh[l + 32] & 0x0F) | ((uh[l + 96] & 0x0F) << 4));
          qh[l] = static_cast<uint8_t>((uh[l] >> 4) | ((uh[l + 32] >> 4) << 2) | ((uh[l + 64] >> 4) << 4) |
                                       ((uh[l + 96] >> 4) << 6));
        }
      }
      for (int i = 0; i < 16; ++i) out[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(sc[i]));
      put_f16(out + 208, d);
      return;
    default: break;
  }
}

}  // namespace

std::optional<QuantScheme> ggml_kquant_scheme(GgmlType type) {
  switch (type) {
    case GgmlType::kQ2_K: return kquant(Format::uint(2), 16, 0, 15, 15);
    case GgmlType::kQ3_K: return kquant(Format::int_full(3), 16, -32, 31, 0);
    case GgmlType::kQ4_K: return kquant(Format::uint(4), 32, 0, 63, 63);
    case GgmlType::kQ5_K: return kquant(Format::uint(5), 32, 0, 63, 63);
    case GgmlType::kQ6_K: return kquant(Format::int_full(6), 16, -128, 127, 0);
    default: return std::nullopt;
  }
}

std::span<const GgmlType> ggml_kquant_types() {
  static constexpr GgmlType kTypes[] = {GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K,
                                        GgmlType::kQ6_K};
  return kTypes;
}

GgmlType ggml_kquant_fallback(GgmlType type) {
  switch (type) {
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K: return GgmlType::kQ4_0;
    case GgmlType::kQ4_K: return GgmlType::kQ5_0;
    case GgmlType::kQ5_K: return GgmlType::kQ5_1;
    case GgmlType::kQ6_K: return GgmlType::kQ8_0;
    default: return type;
  }
}

namespace ggml_blocks_detail {

std::vector<std::byte> pack_kquant_blocks(const QuantizedTensor& tensor, GgmlType type, const std::string& where) {
  const QuantScheme scheme = *ggml_kquant_scheme(type);
  const QuantScheme::SuperBlock& sb = scheme.super_block;
  require(tensor.cols() % kSuper == 0, where,
          "rows of " + std::to_string(tensor.cols()) + " values are not whole super-blocks of 256");
  const int64_t rows = tensor.rows(), cols = tensor.cols(), supers = cols / kSuper, group = scheme.group_size;
  const int64_t per_super = kSuper / group, groups = tensor.groups_per_row();
  const size_t block_bytes = ggml_traits(type).type_size;
  // Q3_K/Q6_K store q + 4 / q + 32: the two's complement code with its top bit flipped.
  const uint8_t flip = type == GgmlType::kQ3_K ? 0x4 : type == GgmlType::kQ6_K ? 0x20 : 0;
  std::vector<std::byte> out(static_cast<size_t>(rows * supers) * block_bytes);
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  std::vector<int32_t> sc, m;
  std::vector<float> negated_mins(static_cast<size_t>(per_super));
  for (int64_t r = 0; r < rows; ++r) {
    tensor.codes_of_row(r, codes);
    for (int64_t b = 0; b < supers; ++b) {
      uint8_t* block = reinterpret_cast<uint8_t*>(out.data()) + static_cast<size_t>(r * supers + b) * block_bytes;
      const size_t g0 = static_cast<size_t>(r * groups + b * per_super);
      const std::string at = "row " + std::to_string(r) + ", super-block " + std::to_string(b);
      uint16_t d = 0, dmin = 0;
      require(factor(tensor.scales().data() + g0, static_cast<size_t>(per_super), sb.scale_lo, sb.scale_hi, d, sc),
              where, at + ": the scales are not one f16 d times integers in " + std::to_string(sb.scale_lo) + ".." +
                         std::to_string(sb.scale_hi));
      if (scheme.float_min) {
        for (int64_t i = 0; i < per_super; ++i) negated_mins[static_cast<size_t>(i)] = -tensor.mins()[g0 + static_cast<size_t>(i)];
        require(factor(negated_mins.data(), negated_mins.size(), 0, sb.min_hi, dmin, m), where,
                at + ": the minimums are not one f16 dmin times integers in -" + std::to_string(sb.min_hi) + "..0");
      } else {
        m.assign(static_cast<size_t>(per_super), 0);
      }
      uint8_t u[kSuper];
      for (int64_t v = 0; v < kSuper; ++v) u[v] = static_cast<uint8_t>(codes[static_cast<size_t>(b * kSuper + v)] ^ flip);
      pack_super(type, u, sc.data(), m.data(), d, dmin, block);
    }
  }
  return out;
}

}  // namespace ggml_blocks_detail

}  // namespace lowbit
