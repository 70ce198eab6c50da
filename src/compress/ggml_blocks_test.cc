// GGUF block types as lowbit grids: a tensor quantized on a type's grid packs into blocks that
// ggml's dequantizer (lowbit's bit-exact copy, checked against the gguf package) decodes to exactly
// the values lowbit computed; GPTQ with H = I equals RTN in the type; lowbit's RTN (signed scales,
// MSE clipping search) loses no more than llama.cpp's reference quantizer on the same tensor; and
// tensors that do not fit a type are refused.
#include "lowbit/compress/ggml_blocks.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "compress/ggml_test_util.h"
#include "compress/group_quantizer.h"
#include "testing/shared_data.h"
#include "lowbit/compress/gptq.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/error.h"
#include "lowbit/core/half.h"

namespace lowbit {
namespace {

using testing::expect_bitwise_equal;
using testing::ggml_decode;
using testing::heavy_tailed;
using testing::normal_values;
using testing::squared_error;

RtnOptions gguf_rtn(GgmlType type, bool signed_scales = true) {
  RtnOptions o;
  o.scheme = *ggml_block_scheme(type);
  o.scheme.signed_scales = signed_scales && !o.scheme.float_min;
  o.scale.search = ScaleSearch::kMse;
  return o;
}

TEST(GgmlBlocks, SchemesAreTheTypesGrids) {
  EXPECT_EQ(ggml_block_scheme(GgmlType::kQ4_0)->to_string(), "int4:full g32 (F16 scales)");
  EXPECT_EQ(ggml_block_scheme(GgmlType::kQ8_0)->element.max_value(), 127);
  EXPECT_EQ(ggml_block_scheme(GgmlType::kQ5_0)->element.lowest_value(), -16);
  EXPECT_EQ(ggml_block_scheme(GgmlType::kIQ4_NL)->element.levels().size(), 16u);
  EXPECT_EQ(ggml_block_scheme(GgmlType::kQ4_1)->to_string(), "uint4 g32 (F16 scales, minimums)");
  EXPECT_TRUE(ggml_block_scheme(GgmlType::kQ5_1)->float_min);
  EXPECT_FALSE(ggml_block_scheme(GgmlType::kQ4_K));
  for (GgmlType type : ggml_scheme_types()) {
    QuantScheme s = *ggml_block_scheme(type);
    EXPECT_EQ(ggml_type_of_scheme(s), type);
    s.signed_scales = true;  // the sign rule is how scales are chosen, not the layout
    EXPECT_EQ(ggml_type_of_scheme(s), type);
    s.group_size = 64;
    EXPECT_FALSE(ggml_type_of_scheme(s));
  }
}

// Every code of every type, with positive, negative and tiny scales: ggml decodes the packed
// blocks to exactly QuantizedTensor::dequantize.
TEST(GgmlBlocks, EveryCodePacksToTheValueLowbitDecodes) {
  for (GgmlType type : ggml_scheme_types()) {
    const QuantScheme scheme = *ggml_block_scheme(type);
    const int64_t codes_count = int64_t{1} << scheme.bits(), rows = 3, cols = 2 * std::max<int64_t>(codes_count, 32);
    QuantizedTensor t(rows, cols, scheme);
    std::vector<uint8_t> codes(static_cast<size_t>(cols));
    const std::vector<std::vector<float>> scales = {{0.0123f, -0.5f, 3.0f, -1e-5f, 65504.0f, -2.0f, 1.0f, 0.25f},
                                                    {-0.0039f, 6.1e-5f, -6.0e-8f, 0.0f, 1.5f, -0.125f, 0.75f, -7.0f},
                                                    {1.0f, -1.0f, 0.5f, -0.5f, 2.0f, -2.0f, 4.0f, -4.0f}};
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) codes[static_cast<size_t>(c)] = static_cast<uint8_t>((c * (2 * r + 1) + r) % codes_count);
      const auto& row_scales = scales[static_cast<size_t>(r)];
      std::vector<float> s(static_cast<size_t>(t.groups_per_row()));
      for (size_t g = 0; g < s.size(); ++g) s[g] = f16_bits_to_f32(f32_to_f16_bits(row_scales[g % row_scales.size()]));
      std::vector<float> mins;  // Q4_1/Q5_1
      if (scheme.float_min)
        for (size_t g = 0; g < s.size(); ++g) mins.push_back(f16_bits_to_f32(f32_to_f16_bits(-0.37f * s[g] + 0.001f * g)));
      t.set_row(r, codes, s, {}, mins);
    }
    const auto bytes = pack_ggml_blocks(t, type);
    ASSERT_EQ(bytes.size(), ggml_row_bytes(type, static_cast<uint64_t>(cols)) * rows);
    expect_bitwise_equal(ggml_decode(type, bytes, static_cast<size_t>(rows * cols)), t.dequantize(),
                         std::string(ggml_traits(type).name));
  }
}

// Unpacking is the inverse of packing, and reads blocks made by ggml's own quantizer (and by
// lowbit's) into tensors that decode to exactly ggml's values.
TEST(GgmlBlocks, UnpackInvertsPackAndReadsGgmlsBlocks) {
  const int64_t rows = 7, cols = 160;
  const auto w = heavy_tailed(rows, cols, 23);
  for (GgmlType type : ggml_scheme_types()) {
    const std::string name(ggml_traits(type).name);
    const QuantizedTensor t = quantize_rtn(w, rows, cols, gguf_rtn(type));
    const auto bytes = pack_ggml_blocks(t, type);
    const QuantizedTensor back = unpack_ggml_blocks(bytes, rows, cols, type);
    EXPECT_EQ(back.codes(), t.codes()) << name;
    EXPECT_EQ(std::vector<float>(back.scales().begin(), back.scales().end()),
              std::vector<float>(t.scales().begin(), t.scales().end())) << name;
    EXPECT_EQ(pack_ggml_blocks(back, type), bytes) << name;
    if (type == GgmlType::kIQ4_NL) continue;  // no reference quantizer for it in lowbit
    std::vector<std::byte> reference(ggml_row_bytes(type, cols) * rows);
    ggml_quantize(type, w, reference);
    expect_bitwise_equal(unpack_ggml_blocks(reference, rows, cols, type).dequantize(), ggml_decode(type, reference, w.size()),
                         name + " from ggml's quantizer");
  }
  std::vector<std::byte> short_bytes(ggml_row_bytes(GgmlType::kQ4_0, 64) * 2 - 1);
  EXPECT_EQ(testing::error_from([&] { unpack_ggml_blocks(short_bytes, 2, 64, GgmlType::kQ4_0); }),
            "GGUF q4_0 tensor: has 71 bytes, expected 72");
  std::vector<std::byte> inf_scale(ggml_row_bytes(GgmlType::kQ8_0, 32));
  inf_scale[1] = std::byte{0x7C};  // f16 +Inf
  EXPECT_EQ(testing::error_from([&] { unpack_ggml_blocks(inf_scale, 1, 32, GgmlType::kQ8_0); }),
            "GGUF q8_0 tensor: row 0 block 0 has a non-finite scale");
}

TEST(GgmlBlocks, RtnOnTheGridDecodesExactlyThroughGgml) {
  const int64_t rows = 9, cols = 192;
  const auto w = heavy_tailed(rows, cols, 5);
  for (GgmlType type : ggml_scheme_types())
    for (bool signed_scales : {false, true}) {
      const QuantizedTensor t = quantize_rtn(w, rows, cols, gguf_rtn(type, signed_scales));
      expect_bitwise_equal(ggml_decode(type, pack_ggml_blocks(t, type), w.size()), t.dequantize(),
                           std::string(ggml_traits(type).name));
    }
}


// Signed scales let int_full and IQ4_NL put their longer end where the block's largest magnitude is:
// never worse per row than positive scales only, and better on these weights.
TEST(GgmlBlocks, SignedScalesNeverLoseAndHelpAsymmetricGrids) {
  const int64_t rows = 16, cols = 256;
  const auto w = heavy_tailed(rows, cols, 9);
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kIQ4_NL}) {
    const auto plain = quantize_rtn(w, rows, cols, gguf_rtn(type, false)).dequantize();
    const auto mirrored = quantize_rtn(w, rows, cols, gguf_rtn(type, true)).dequantize();
    for (int64_t b = 0; b < rows * cols / 32; ++b) {
      const size_t at = static_cast<size_t>(b * 32);
      const std::vector<float> wb(w.begin() + at, w.begin() + at + 32), pb(plain.begin() + at, plain.begin() + at + 32),
          mb(mirrored.begin() + at, mirrored.begin() + at + 32);
      EXPECT_LE(squared_error(wb, mb, 32), squared_error(wb, pb, 32)) << ggml_traits(type).name << " block " << b;
    }
    EXPECT_LT(squared_error(w, mirrored, cols), 0.97 * squared_error(w, plain, cols)) << ggml_traits(type).name;
  }
}

// llama.cpp's own quantization (its reference quantizer, what llama-quantize runs without an
// importance matrix) of the same tensor, against lowbit's RTN in that type: same or lower error,
// unweighted and weighted by a per-column importance (lowbit's search then minimizes the weighted error).
TEST(GgmlBlocks, RtnLosesNoMoreThanLlamaCppsQuantizer) {
  const int64_t rows = 32, cols = 576;
  const auto w = heavy_tailed(rows, cols, 13);
  std::vector<float> importance = normal_values(static_cast<size_t>(cols), 21);
  for (float& v : importance) v = v * v + 0.05f;
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ5_1, GgmlType::kQ5_0, GgmlType::kQ4_1, GgmlType::kQ4_0}) {
    std::vector<std::byte> reference(ggml_row_bytes(type, cols) * rows);
    ggml_quantize(type, w, reference);
    const auto llama = ggml_decode(type, reference, w.size());
    const auto lowbit = quantize_rtn(w, rows, cols, gguf_rtn(type)).dequantize();
    EXPECT_LE(squared_error(w, lowbit, cols), squared_error(w, llama, cols)) << ggml_traits(type).name;
    RtnOptions weighted = gguf_rtn(type);
    weighted.importance = importance;
    const auto lowbit_weighted = quantize_rtn(w, rows, cols, weighted).dequantize();
    EXPECT_LE(squared_error(w, lowbit_weighted, cols, importance), squared_error(w, llama, cols, importance))
        << ggml_traits(type).name;
    if (type != GgmlType::kQ8_0) {  // 4- and 5-bit grids leave room: the search finds a clearly better point
      EXPECT_LT(squared_error(w, lowbit, cols), 0.95 * squared_error(w, llama, cols)) << ggml_traits(type).name;
    }
  }
}

// Weights that lie on a 4-bit grid with a minimum (a Q4_1 model dequantized: 15 steps per block) sit
// on every other level of Q5_1's 31 steps: the search, which also widens the range by up to a
// step, finds that grid exactly (shrinking it alone cannot: 31 steps over the range miss it).
TEST(GgmlBlocks, FloatMinimumSearchFindsACoarserGridExactly) {
  const int64_t rows = 4, cols = 128;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  const auto codes = normal_values(w.size(), 41);
  for (int64_t b = 0; b < rows * cols / 32; ++b) {
    const float d = f16_bits_to_f32(f32_to_f16_bits(0.01f + 0.002f * static_cast<float>(b)));
    const float m = f16_bits_to_f32(f32_to_f16_bits(-0.07f - 0.003f * static_cast<float>(b)));
    for (int64_t j = 0; j < 32; ++j) {
      const size_t i = static_cast<size_t>(b * 32 + j);
      const int q = j == 0 ? 0 : j == 1 ? 15 : std::clamp(static_cast<int>(std::lround(7.5f + 4 * codes[i])), 0, 15);
      w[i] = static_cast<float>(q) * d + m;  // Q4_1's decoding
    }
  }
  RtnOptions rtn = gguf_rtn(GgmlType::kQ5_1);
  EXPECT_EQ(squared_error(w, quantize_rtn(w, rows, cols, rtn).dequantize(), cols), 0.0);
}

// The float-minimum search polishes each candidate by Lloyd's alternation (refit (scale, min) by least
// squares to the codes, re-round, repeat while the error falls), so the (scale, min) it settles on
// is a fixed point: one more refit, rounded to f16 as the type stores it, lowers no block's
// weighted error. A single refit per candidate leaves about half the blocks short of it.
TEST(GgmlBlocks, FloatMinimumIsAFixedPointOfTheLeastSquaresRefit) {
  const int64_t rows = 32, cols = 576, block = 32;
  const auto w = heavy_tailed(rows, cols, 29);
  std::vector<float> importance = normal_values(static_cast<size_t>(cols), 31);
  for (float& v : importance) v = v * v + 0.05f;
  for (GgmlType type : {GgmlType::kQ4_1, GgmlType::kQ5_1}) {
    RtnOptions rtn = gguf_rtn(type);
    rtn.importance = importance;
    const QuantizedTensor t = quantize_rtn(w, rows, cols, rtn);
    const double top = type == GgmlType::kQ4_1 ? 15 : 31;
    auto code = [&](float x, double d, double m) {  // the type's rounding: round((x − m) / d), clamped
      const double q = std::nearbyint((static_cast<double>(x) - m) / d);
      return q < 0 ? 0.0 : (q > top ? top : q);
    };
    int improvable = 0;
    for (int64_t b = 0; b < rows * cols / block; ++b) {
      const double d = t.scales()[static_cast<size_t>(b)], m = t.mins()[static_cast<size_t>(b)];
      auto error = [&](double dd, double mm) {
        double e = 0;
        for (int64_t j = 0; j < block; ++j) {
          const float x = w[static_cast<size_t>(b * block + j)];
          const double r = x - static_cast<double>(static_cast<float>(code(x, dd, mm)) * static_cast<float>(dd) +
                                                   static_cast<float>(mm));
          e += importance[static_cast<size_t>((b * block + j) % cols)] * r * r;
        }
        return e;
      };
      double sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
      for (int64_t j = 0; j < block; ++j) {
        const float x = w[static_cast<size_t>(b * block + j)];
        const double v = importance[static_cast<size_t>((b * block + j) % cols)], q = code(x, d, m);
        sw += v, sq += v * q, sqq += v * q * q, sx += v * x, sqx += v * q * x;
      }
      const double det = sw * sqq - sq * sq;
      if (!(det > 0)) continue;
      const double d2 = f16_bits_to_f32(f32_to_f16_bits(static_cast<float>((sw * sqx - sq * sx) / det)));
      const double m2 = f16_bits_to_f32(f32_to_f16_bits(static_cast<float>((sqq * sx - sq * sqx) / det)));
      if (d2 > 0 && error(d2, m2) < error(d, m)) ++improvable;
    }
    EXPECT_EQ(improvable, 0) << ggml_traits(type).name << ": blocks a further refit improves, of "
                             << rows * cols / block;
  }
}

// The float-minimum search rounds its f16 (Q4_1/Q5_1) and f32 (k-quant groups) scales by direct
// conversions instead of the generic Format path: the same value as the scheme's scale format for
// every float (a sweep of bit patterns, both signs, and the edges: subnormals, the f16 saturation
// point, Inf), NaN aside.
TEST(GgmlBlocks, ScaleRoundingEqualsTheScaleFormat) {
  for (const QuantScheme& scheme : {*ggml_block_scheme(GgmlType::kQ4_1), *ggml_kquant_scheme(GgmlType::kQ4_K)}) {
    const compress_detail::GroupQuantizer quantizer(scheme, ScaleOptions{});
    ASSERT_TRUE(quantizer.fast_scale_rounding()) << scheme.to_string();
    const Format format = scheme.block_format().scale;
    std::vector<float> xs = {0.0f, 65504.0f, 65505.0f, 65519.99f, 65520.0f, 1e30f, 0x1p-25f, 0x1.8p-25f, 0x1p-24f,
                             0x1.ffcp-15f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
                             std::numeric_limits<float>::infinity()};
    for (uint64_t bits = 0; bits < (uint64_t{1} << 31); bits += 2039) xs.push_back(std::bit_cast<float>(static_cast<uint32_t>(bits)));
    for (float x : xs)
      for (float v : {x, -x}) {
        if (std::isnan(v)) continue;
        ASSERT_EQ(std::bit_cast<uint32_t>(quantizer.round_scale(v)), std::bit_cast<uint32_t>(format.quantize(v)))
            << scheme.to_string() << " at " << std::hexfloat << v;
      }
  }
}

TEST(GgmlBlocks, GptqWithIdentityHessianEqualsRtnInTheType) {
  const int64_t rows = 12, cols = 128;
  const auto w = heavy_tailed(rows, cols, 17);
  std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t i = 0; i < cols; ++i) h[static_cast<size_t>(i * cols + i)] = 1.0;
  for (GgmlType type : ggml_scheme_types()) {
    const RtnOptions rtn = gguf_rtn(type);
    GptqOptions gptq;
    gptq.scheme = rtn.scheme;
    gptq.scale = rtn.scale;
    const QuantizedTensor a = quantize_rtn(w, rows, cols, rtn), b = quantize_gptq(w, rows, cols, h, gptq).tensor;
    EXPECT_EQ(a.codes(), b.codes()) << ggml_traits(type).name;
    EXPECT_EQ(std::vector<float>(a.scales().begin(), a.scales().end()), std::vector<float>(b.scales().begin(), b.scales().end()));
    EXPECT_EQ(pack_ggml_blocks(a, type), pack_ggml_blocks(b, type));
  }
}

// MXFP4 and NVFP4: e2m1 codes with E8M0 / UE4M3 scale bytes (NVFP4 in ggml: 64 values per block, a scale
// per 16, no tensor scale). A tensor quantized on the type's grid packs into blocks that ggml's decoding
// (numerics' copy of dequantize_row_mxfp4 / _nvfp4, which knows nothing of QuantizedTensor) reads as exactly
// the values lowbit computed, and unpacks to the same codes and scales; GPTQ with H = I equals RTN there.
TEST(GgmlBlocks, Fp4BlockTypesPackDecodeAndUnpackExactly) {
  const int64_t rows = 6, cols = 192;
  auto w = heavy_tailed(rows, cols, 41);
  for (int64_t c = 64; c < 128; ++c) w[static_cast<size_t>(cols + c)] = 0.0f;  // zero groups: E8M0's 2^-127, UE4M3's 0
  const std::vector<double> h = [&] {
    std::vector<double> identity(static_cast<size_t>(cols * cols), 0.0);
    for (int64_t i = 0; i < cols; ++i) identity[static_cast<size_t>(i * cols + i)] = 1.0;
    return identity;
  }();
  for (GgmlType type : {GgmlType::kMXFP4, GgmlType::kNVFP4}) {
    const std::string name(ggml_traits(type).name);
    SCOPED_TRACE(name);
    RtnOptions rtn;
    rtn.scheme = ggml_quantizer_scheme(type);
    rtn.scale.search = ScaleSearch::kMse;
    EXPECT_FALSE(rtn.scheme.signed_scales);
    EXPECT_EQ(ggml_type_of_scheme(rtn.scheme), type);
    const QuantizedTensor t = quantize_rtn(w, rows, cols, rtn);
    EXPECT_EQ(t.tensor_scale(), 1.0f);
    const auto bytes = pack_ggml_blocks(t, type);
    ASSERT_EQ(bytes.size(), ggml_row_bytes(type, cols) * rows);
    // (e2m1's code 8 is −0: lowbit decodes −0, ggml's kvalues_mxfp4 +0; equal as values.)
    expect_bitwise_equal(ggml_decode(type, bytes, w.size()), t.dequantize(), name, false);
    const QuantizedTensor back = unpack_ggml_blocks(bytes, rows, cols, type);
    EXPECT_EQ(back.codes(), t.codes());
    EXPECT_EQ(std::vector<float>(back.scales().begin(), back.scales().end()),
              std::vector<float>(t.scales().begin(), t.scales().end()));
    EXPECT_EQ(pack_ggml_blocks(back, type), bytes);
    GptqOptions gptq;
    gptq.scheme = rtn.scheme;
    gptq.scale = rtn.scale;
    EXPECT_EQ(quantize_gptq(w, rows, cols, h, gptq).tensor.codes(), t.codes());
  }
  EXPECT_EQ(ggml_block_scheme(GgmlType::kMXFP4)->to_string(), "e2m1 g32 (F8_E8M0 scales)");
  EXPECT_EQ(ggml_block_scheme(GgmlType::kNVFP4)->to_string(), "e2m1 g16 (F8_E4M3 scales, tensor scale 1)");
  // lowbit's own NVFP4 (a tensor scale) is not ggml's; rows of 32 are not whole NVFP4 blocks; a scale
  // byte ggml would read but lowbit holds no meaning for.
  RtnOptions own;
  own.scheme = *QuantScheme::preset("nvfp4");
  EXPECT_EQ(ggml_type_of_scheme(own.scheme), std::nullopt);
  RtnOptions nv;
  nv.scheme = ggml_quantizer_scheme(GgmlType::kNVFP4);
  const auto w32 = heavy_tailed(2, 32, 4);
  EXPECT_EQ(testing::error_from([&] { pack_ggml_blocks(quantize_rtn(w32, 2, 32, nv), GgmlType::kNVFP4); }),
            "GGUF nvfp4 export: rows of 32 values are not whole blocks of 64");
  std::vector<std::byte> nan_scale(ggml_row_bytes(GgmlType::kNVFP4, 64));
  nan_scale[2] = std::byte{0x7F};
  EXPECT_EQ(testing::error_from([&] { unpack_ggml_blocks(nan_scale, 1, 64, GgmlType::kNVFP4); }),
            "GGUF nvfp4 tensor: row 0 block 0 has scale byte 127, which lowbit reads as no finite unsigned scale");
}

TEST(GgmlBlocks, RefusesTensorsThatDoNotFitTheType) {
  const auto w = heavy_tailed(2, 64, 3);
  const QuantizedTensor q4 = quantize_rtn(w, 2, 64, gguf_rtn(GgmlType::kQ4_0));
  EXPECT_EQ(testing::error_from([&] { pack_ggml_blocks(q4, GgmlType::kQ5_0); }),
            "GGUF q5_0 export: the tensor is quantized as int4:full g32 (F16 scales, signed), q5_0 needs int5:full g32 (F16 scales)");
  EXPECT_EQ(testing::error_from([&] { pack_ggml_blocks(q4, GgmlType::kIQ4_XS); }),
            "GGUF iq4_xs export: iq4_xs is not a lowbit grid (Q8_0, Q5_1, Q5_0, Q4_1, Q4_0, IQ4_NL, MXFP4, NVFP4 and Q2_K … Q6_K are)");
  RtnOptions ragged = gguf_rtn(GgmlType::kQ8_0);
  const auto w48 = heavy_tailed(2, 48, 4);
  ragged.scheme.group_size = 32;  // 48 columns: a ragged last group of 16
  EXPECT_EQ(testing::error_from([&] { pack_ggml_blocks(quantize_rtn(w48, 2, 48, ragged), GgmlType::kQ8_0); }),
            "GGUF q8_0 export: rows of 48 values are not whole blocks of 32");
}

}  // namespace
}  // namespace lowbit
