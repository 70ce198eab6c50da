// ggml's k-quants as lowbit schemes with two-level scales: each type's scheme stores exactly the
// type's bytes; every code and integer scale packs to what ggml's dequantizer (lowbit's bit-exact
// copy, checked against the gguf package) decodes to QuantizedTensor's values; RTN and GPTQ on the
// type's grid make tensors that pack and decode exactly; GPTQ with H = I equals RTN; the joint
// choice of d and the integers loses less than rounding each group's own scale onto d's grid; and
// what does not fit is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "compress/ggml_test_util.h"
#include "lowbit/compress/ggml_blocks.h"
#include "lowbit/compress/gptq.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/half.h"
#include "lowbit/core/random.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::expect_bitwise_equal;
using testing::heavy_tailed;
using testing::normal_values;
using testing::squared_error;

RtnOptions kquant_rtn(GgmlType type) {
  RtnOptions o;
  o.scheme = ggml_quantizer_scheme(type);
  o.scale.search = ScaleSearch::kMse;
  return o;
}


}  // namespace

// The scheme stores what the type stores: its bytes per super-block, its grid and group.
TEST(GgmlKQuants, SchemesStoreExactlyTheTypesBytes) {
  ASSERT_EQ(ggml_kquant_types().size(), 5u);
  for (GgmlType type : ggml_kquant_types()) {
    const QuantScheme s = *ggml_kquant_scheme(type);
    const std::string name(ggml_traits(type).name);
    EXPECT_EQ(QuantizedTensor(3, 512, s).storage_bytes(), static_cast<int64_t>(3 * 2 * ggml_traits(type).type_size)) << name;
    EXPECT_EQ(ggml_type_of_scheme(s), type) << name;
    EXPECT_EQ(ggml_quantizer_scheme(type).to_string(), s.to_string()) << name;
    EXPECT_FALSE(ggml_block_scheme(type)) << name;
    QuantScheme plain = s;
    plain.super_block = {};
    EXPECT_NE(ggml_type_of_scheme(plain), type) << name << ": a free f32 scale per group is not the k-quant";
  }
  EXPECT_EQ(ggml_kquant_scheme(GgmlType::kQ4_K)->to_string(),
            "uint4 g32 (F32 scales, minimums; per 256: f16 d x 0..63, f16 dmin x 0..63)");
  EXPECT_EQ(ggml_kquant_scheme(GgmlType::kQ6_K)->to_string(), "int6:full g16 (F32 scales, signed; per 256: f16 d x -128..127)");
  EXPECT_EQ(ggml_kquant_scheme(GgmlType::kQ3_K)->element.lowest_value(), -4);
  EXPECT_EQ(ggml_kquant_fallback(GgmlType::kQ2_K), GgmlType::kQ4_0);
  EXPECT_EQ(ggml_kquant_fallback(GgmlType::kQ3_K), GgmlType::kQ4_0);
  EXPECT_EQ(ggml_kquant_fallback(GgmlType::kQ4_K), GgmlType::kQ5_0);
  EXPECT_EQ(ggml_kquant_fallback(GgmlType::kQ5_K), GgmlType::kQ5_1);
  EXPECT_EQ(ggml_kquant_fallback(GgmlType::kQ6_K), GgmlType::kQ8_0);
}

// Random codes and random integers in the full ranges (the ends included), with d and dmin of both
// signs and of tiny and large magnitude: ggml decodes the packed bytes to QuantizedTensor's values.
TEST(GgmlKQuants, EveryCodeAndIntegerPacksToTheValueLowbitDecodes) {
  const int64_t rows = 6, cols = 512;
  const CounterRng rng(42, 0);
  uint64_t draw = 0;
  auto next = [&] { return rng.bits(draw++); };
  for (GgmlType type : ggml_kquant_types()) {
    const QuantScheme s = *ggml_kquant_scheme(type);
    const auto& sb = s.super_block;
    QuantizedTensor t(rows, cols, s);
    const int64_t groups = t.groups_per_row(), per_super = sb.size / s.group_size;
    const float ds[] = {0.0123f, -0.5f, 6.1e-5f, 3.0f, -1e-3f, 7.0f, 0.25f, -2.0f, 1.0f, 0.001f, 0.75f, -0.03f};
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<uint8_t> codes(static_cast<size_t>(cols));
      for (int64_t c = 0; c < cols; ++c)
        codes[static_cast<size_t>(c)] = static_cast<uint8_t>(c < 8 ? (c % 2 ? (1 << s.bits()) - 1 : 0) : next() % (1u << s.bits()));
      std::vector<float> scales(static_cast<size_t>(groups)), mins(s.float_min ? static_cast<size_t>(groups) : 0);
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t b = g / per_super;
        const float d = f16_bits_to_f32(f32_to_f16_bits(ds[(2 * r + b) % 12] * (s.float_min ? (ds[(2 * r + b) % 12] < 0 ? -1 : 1) : 1)));
        const int32_t span = sb.scale_hi - sb.scale_lo + 1;
        const int32_t sc = g % per_super == 0 ? sb.scale_hi : g % per_super == 1 ? sb.scale_lo
                                                                                 : sb.scale_lo + static_cast<int32_t>(next() % static_cast<uint32_t>(span));
        scales[static_cast<size_t>(g)] = d * static_cast<float>(sc);
        if (s.float_min) {
          const float dmin = f16_bits_to_f32(f32_to_f16_bits(ds[(2 * r + b + 5) % 12]));
          const int32_t m = g % per_super == 0 ? sb.min_hi : static_cast<int32_t>(next() % static_cast<uint32_t>(sb.min_hi + 1));
          mins[static_cast<size_t>(g)] = -(dmin * static_cast<float>(m));
        }
      }
      t.set_row(r, codes, scales, {}, mins);
    }
    const auto bytes = pack_ggml_blocks(t, type);
    ASSERT_EQ(bytes.size(), ggml_row_bytes(type, cols) * rows);
    expect_bitwise_equal(testing::ggml_decode(type, bytes, static_cast<size_t>(rows * cols)), t.dequantize(), std::string(ggml_traits(type).name), false);
  }
}

// RTN on each k-quant's grid (MSE search, with and without importance) packs to bytes that ggml
// decodes to exactly the values lowbit evaluated; every scale is d × an integer by construction.
TEST(GgmlKQuants, RtnOnTheGridDecodesExactlyThroughGgml) {
  const int64_t rows = 9, cols = 512;
  const auto w = heavy_tailed(rows, cols, 5, true);
  std::vector<float> importance = normal_values(static_cast<size_t>(cols), 21);
  for (float& v : importance) v = v * v + 0.05f;
  for (GgmlType type : ggml_kquant_types())
    for (bool weighted : {false, true}) {
      RtnOptions o = kquant_rtn(type);
      if (weighted) o.importance = importance;
      const QuantizedTensor t = quantize_rtn(w, rows, cols, o);
      const std::string name = std::string(ggml_traits(type).name) + (weighted ? " weighted" : "");
      expect_bitwise_equal(testing::ggml_decode(type, pack_ggml_blocks(t, type), w.size()), t.dequantize(), name, false);
      // A sane quantization: the error is well below the weights' own energy.
      EXPECT_LT(squared_error(w, t.dequantize(), cols), 0.2 * squared_error(w, std::vector<float>(w.size(), 0.0f), cols)) << name;
    }
}

// GPTQ with H = I has no error feedback: it rounds like RTN, super-block parameters included.
TEST(GgmlKQuants, GptqWithIdentityHessianEqualsRtnInTheType) {
  const int64_t rows = 12, cols = 512;
  const auto w = heavy_tailed(rows, cols, 17, true);
  std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t i = 0; i < cols; ++i) h[static_cast<size_t>(i * cols + i)] = 1.0;
  for (GgmlType type : ggml_kquant_types())
    for (bool static_groups : {false, true}) {
      const RtnOptions rtn = kquant_rtn(type);
      GptqOptions gptq;
      gptq.scheme = rtn.scheme;
      gptq.scale = rtn.scale;
      gptq.static_groups = static_groups;
      const QuantizedTensor a = quantize_rtn(w, rows, cols, rtn), b = quantize_gptq(w, rows, cols, h, gptq).tensor;
      const std::string name(ggml_traits(type).name);
      EXPECT_EQ(a.codes(), b.codes()) << name;
      EXPECT_EQ(std::vector<float>(a.scales().begin(), a.scales().end()), std::vector<float>(b.scales().begin(), b.scales().end())) << name;
      EXPECT_EQ(pack_ggml_blocks(a, type), pack_ggml_blocks(b, type)) << name;
    }
}

// GPTQ with a correlated H (the usual case) also yields packable super-blocks, and lowers the
// GPTQ objective tr(δ H δᵀ) against RTN in the same type.
TEST(GgmlKQuants, GptqWithARealHessianPacksAndBeatsRtnOnItsObjective) {
  const int64_t rows = 16, cols = 256, samples = 600;
  const auto w = heavy_tailed(rows, cols, 29, true);
  std::vector<float> x = normal_values(static_cast<size_t>(samples * cols), 31);
  for (int64_t n = 0; n < samples; ++n)  // correlated inputs: each column leans on its neighbour
    for (int64_t c = 1; c < cols; ++c) x[static_cast<size_t>(n * cols + c)] += 0.8f * x[static_cast<size_t>(n * cols + c - 1)];
  std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t n = 0; n < samples; ++n)
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = i; j < cols; ++j)
        h[static_cast<size_t>(i * cols + j)] += static_cast<double>(x[static_cast<size_t>(n * cols + i)]) * x[static_cast<size_t>(n * cols + j)];
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = 0; j < i; ++j) h[static_cast<size_t>(i * cols + j)] = h[static_cast<size_t>(j * cols + i)];
  auto objective = [&](const std::vector<float>& q) {
    double total = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < cols; ++i)
        for (int64_t j = 0; j < cols; ++j)
          total += (static_cast<double>(w[static_cast<size_t>(r * cols + i)]) - q[static_cast<size_t>(r * cols + i)]) *
                   h[static_cast<size_t>(i * cols + j)] *
                   (static_cast<double>(w[static_cast<size_t>(r * cols + j)]) - q[static_cast<size_t>(r * cols + j)]);
    return total;
  };
  for (GgmlType type : {GgmlType::kQ2_K, GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    GptqOptions gptq;
    gptq.scheme = ggml_quantizer_scheme(type);
    gptq.scale.search = ScaleSearch::kMse;
    const QuantizedTensor g = quantize_gptq(w, rows, cols, h, gptq).tensor;
    const std::string name(ggml_traits(type).name);
    expect_bitwise_equal(testing::ggml_decode(type, pack_ggml_blocks(g, type), w.size()), g.dequantize(), name, false);
    EXPECT_LT(objective(g.dequantize()), 0.9 * objective(quantize_rtn(w, rows, cols, kquant_rtn(type)).dequantize())) << name;
  }
}

// The joint choice (d over candidates, each integer or its neighbours by the group's error) against
// the plain two-level rounding ggml's reference quantizer starts from — d = max scale / max integer,
// each group's own scale and min rounded to the nearest integer multiple, codes nearest: never more
// error per super-block, and less in total.
TEST(GgmlKQuants, JointChoiceLosesLessThanRoundingEachScale) {
  const int64_t rows = 24, cols = 512;
  const auto w = heavy_tailed(rows, cols, 13, true);
  for (GgmlType type : ggml_kquant_types()) {
    const QuantScheme s = *ggml_kquant_scheme(type);
    // The free per-group parameters (f32, no super-block), as the joint choice starts from them.
    RtnOptions free_rtn = kquant_rtn(type);
    free_rtn.scheme.super_block = {};
    const QuantizedTensor free = quantize_rtn(w, rows, cols, free_rtn);
    const QuantizedTensor joint = quantize_rtn(w, rows, cols, kquant_rtn(type));
    // Plain rounding of the free parameters onto the two-level grid.
    QuantizedTensor plain(rows, cols, s);
    const int64_t groups = free.groups_per_row(), per_super = s.super_block.size / s.group_size;
    const auto f16 = [](double v) { return f16_bits_to_f32(f32_to_f16_bits(static_cast<float>(v))); };
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> scales(static_cast<size_t>(groups)), mins(s.float_min ? static_cast<size_t>(groups) : 0);
      std::vector<uint8_t> codes(static_cast<size_t>(cols));
      for (int64_t b = 0; b < groups / per_super; ++b) {
        double extreme = 0, max_min = 0;
        for (int64_t g = b * per_super; g < (b + 1) * per_super; ++g) {
          const float sc = free.scale(r, g);
          if (std::fabs(sc) > std::fabs(extreme)) extreme = sc;
          if (s.float_min) max_min = std::max(max_min, -static_cast<double>(free.mins()[static_cast<size_t>(r * groups + g)]));
        }
        const float d = f16(extreme / (s.super_block.scale_lo < 0 ? s.super_block.scale_lo : s.super_block.scale_hi));
        const float dmin = f16(max_min / std::max(s.super_block.min_hi, 1));
        for (int64_t g = b * per_super; g < (b + 1) * per_super; ++g) {
          const double sc = d == 0 ? 0 : std::clamp(std::nearbyint(static_cast<double>(free.scale(r, g)) / d), static_cast<double>(s.super_block.scale_lo), static_cast<double>(s.super_block.scale_hi));
          scales[static_cast<size_t>(g)] = d * static_cast<float>(sc) + 0.0f;
          if (s.float_min) {
            const double m = dmin == 0 ? 0 : std::clamp(std::nearbyint(-static_cast<double>(free.mins()[static_cast<size_t>(r * groups + g)]) / dmin), 0.0, static_cast<double>(s.super_block.min_hi));
            mins[static_cast<size_t>(g)] = m > 0 ? -(dmin * static_cast<float>(m)) : 0.0f;
          }
          for (int64_t c = g * s.group_size; c < (g + 1) * s.group_size; ++c) {
            const float x = w[static_cast<size_t>(r * cols + c)], scale = scales[static_cast<size_t>(g)];
            int32_t best = 0;
            double best_error = HUGE_VAL;
            for (uint32_t code = 0; code < (1u << s.bits()); ++code) {
              const float v = s.float_min ? static_cast<float>(code) * scale + mins[static_cast<size_t>(g)] : s.element.decode(code) * scale;
              const double e = std::fabs(static_cast<double>(x) - v);
              if (e < best_error) best_error = e, best = static_cast<int32_t>(code);
            }
            codes[static_cast<size_t>(c)] = static_cast<uint8_t>(best);
          }
        }
      }
      plain.set_row(r, codes, scales, {}, mins);
    }
    const std::string name(ggml_traits(type).name);
    const auto jq = joint.dequantize(), pq = plain.dequantize(), fq = free.dequantize();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < cols / 256; ++b) {
        const size_t at = static_cast<size_t>(r * cols + b * 256);
        const std::vector<float> wb(w.begin() + at, w.begin() + at + 256), jb(jq.begin() + at, jq.begin() + at + 256),
            pb(pq.begin() + at, pq.begin() + at + 256);
        EXPECT_LE(squared_error(wb, jb, 256), squared_error(wb, pb, 256) * (1 + 1e-12)) << name << " row " << r << " block " << b;
      }
    // In total: less error than plain rounding (4 % less on Q2_K and Q4_K here, 8 % on Q5_K, 1 % on
    // Q3_K, whose codes, not scales, dominate), and within 5 % of free f32 scales per group — 10 % on
    // Q5_K, whose 5-bit codes leave the 6-bit scales and mins the larger share of the loss (7.8 % here:
    // the free groups' Lloyd polish gains more than the two-level grid can keep).
    const double joint_error = squared_error(w, jq, cols), plain_error = squared_error(w, pq, cols);
    const double free_error = squared_error(w, fq, cols);
    EXPECT_LT(joint_error, (type == GgmlType::kQ3_K ? 0.995 : 0.97) * plain_error) << name;
    EXPECT_LT(joint_error, (type == GgmlType::kQ5_K ? 1.10 : 1.05) * free_error) << name;
    EXPECT_EQ(pack_ggml_blocks(plain, type).size(), pack_ggml_blocks(joint, type).size());
  }
}

// Minimums are −dmin × m with m >= 0: a group of only positive weights cannot start at its own
// minimum, and spans [0, max] instead of being clipped at the top.
TEST(GgmlKQuants, GroupsOfPositiveWeightsSpanFromZero) {
  std::vector<float> w = normal_values(256, 3, 0.02f);
  for (int c = 64; c < 96; ++c) w[static_cast<size_t>(c)] = 0.5f + 0.5f * static_cast<float>(c - 64) / 31;  // 0.5 .. 1.0
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K}) {
    const QuantizedTensor t = quantize_rtn(w, 1, 256, kquant_rtn(type));
    const auto q = t.dequantize();
    const double step = 1.0 / ((1 << t.bits()) - 1);
    for (int c = 64; c < 96; ++c)
      EXPECT_LE(std::fabs(q[static_cast<size_t>(c)] - w[static_cast<size_t>(c)]), 0.6 * step + 1e-3) << ggml_traits(type).name << " column " << c;
  }
}

TEST(GgmlKQuants, RefusesWhatTheTypeCannotHold) {
  const auto w = heavy_tailed(2, 576, 3, true);
  EXPECT_EQ(testing::error_from([&] { quantize_rtn(w, 2, 576, kquant_rtn(GgmlType::kQ4_K)); }),
            "rtn: quantization scheme uint4 g32 (F32 scales, minimums; per 256: f16 d x 0..63, f16 dmin x 0..63): "
            "rows of 576 columns are not whole super-blocks of 256");
  // Free f32 scales are not one f16 d times integers.
  const auto w512 = heavy_tailed(2, 512, 4, true);
  RtnOptions free = kquant_rtn(GgmlType::kQ4_K);
  free.scheme.super_block = {};
  const QuantizedTensor t = quantize_rtn(w512, 2, 512, free);
  EXPECT_EQ(testing::error_from([&] { pack_ggml_blocks(t, GgmlType::kQ4_K); }),
            "GGUF q4_K export: the tensor is quantized as uint4 g32 (F32 scales, minimums), q4_K needs uint4 g32 (F32 "
            "scales, minimums; per 256: f16 d x 0..63, f16 dmin x 0..63)");
  QuantizedTensor forged(1, 256, *ggml_kquant_scheme(GgmlType::kQ6_K));
  std::vector<float> scales(16, 0.001f);
  scales[3] = 0.3f;  // 0.001f has 24 significant bits: no f16 d (11) times an int8 makes it
  forged.set_row(0, std::vector<uint8_t>(256, 1), scales);
  EXPECT_EQ(testing::error_from([&] { pack_ggml_blocks(forged, GgmlType::kQ6_K); }),
            "GGUF q6_K export: row 0, super-block 0: the scales are not one f16 d times integers in -128..127");
}

}  // namespace lowbit
