// Block-scaled formats on hand-worked examples (OCP MX v1.0 shared-scale rule, NVFP4's two
// scale levels), against a brute-force per-block reference for ragged groups and tiles, and
// the invariants: dequantize(quantize) == quantize_dequantize, quantize(Wᵀ) == quantize(W)ᵀ for
// square tiles, the same result for 1 and 2 threads.
#include "lowbit/numerics/block_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "lowbit/numerics/fixed_point.h"

namespace lowbit {
namespace {

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

std::vector<float> padded(std::vector<float> head, size_t size) {
  head.resize(size, 0.0f);
  return head;
}

std::vector<float> random_values(size_t n, uint64_t seed, float scale = 1.0f) {
  const CounterRng rng(seed, 0);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    // Roughly normal with occasional outliers, like weights.
    const float sum = rng.uniform(4 * i) + rng.uniform(4 * i + 1) + rng.uniform(4 * i + 2) - 1.5f;
    out[i] = (i % 97 == 0 ? 8.0f : 1.0f) * sum * scale;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// OCP MX v1.0: X = 2^(floor(log2(amax)) - emax_elem), elements V/X quantized with saturation.

TEST(FormatMx, Mxfp4HandWorked) {
  // amax 7: floor(log2 7) = 2, e2m1 emax = 2 (6 = 1.5 * 2^2), so X = 2^0 (E8M0 code 127).
  const std::vector<float> v = padded({7.0f, 3.7f, -2.5f, 0.1f, 0.3f, 0.75f, 5.0f, -0.2f}, 32);
  const BlockQuantized q = quantize_blocks(v, {32}, BlockFormat::mxfp4());
  ASSERT_EQ(q.block_count(), 1);
  EXPECT_EQ(q.scale_codes[0], 127u);
  EXPECT_EQ(q.scales[0], 1.0f);
  // 7 saturates to 6; 3.7 -> 4; -2.5 ties to -2 (even code 0xC); 0.1 -> 0; 0.3 -> 0.5;
  // 0.75 ties to 1 (code 2); 5 ties to 4 (code 6); -0.2 -> -0.
  const std::vector<uint16_t> codes = {0x7, 0x6, 0xC, 0x0, 0x1, 0x2, 0x6, 0x8};
  for (size_t i = 0; i < codes.size(); ++i) EXPECT_EQ(q.codes[i], codes[i]) << i;
  const std::vector<float> values = q.dequantize();
  const std::vector<float> want = {6, 4, -2, 0, 0.5f, 1, 4, -0.0f};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(bits_of(values[i]), bits_of(want[i])) << i;
}

TEST(FormatMx, Mxfp8ClipsTheLargestElementAsTheSpecSays) {
  // amax 1000: floor(log2 1000) = 9, e4m3 emax = 8, so X = 2. 1000/2 = 500 > 448 saturates: the
  // floor rule can clip the block maximum (the spec's known behaviour, not a bug).
  const std::vector<float> v = padded({1000.0f, 3.0f, 0.001f, -7.3f}, 32);
  const BlockQuantized q = quantize_blocks(v, {1, 32}, BlockFormat::mxfp8_e4m3());
  EXPECT_EQ(q.scale_codes[0], 128u);
  const std::vector<float> values = q.dequantize();
  EXPECT_EQ(values[0], 896.0f);
  EXPECT_EQ(values[1], 3.0f);
  EXPECT_EQ(values[2], 0.0f);   // 0.0005 is below half of e4m3's 2^-9
  EXPECT_EQ(values[3], -7.5f);  // -3.65 -> -3.75 (step 0.25 in [2, 4))
  EXPECT_EQ(q.codes[0], 0x7Eu);
}

TEST(FormatMx, Mxint8HandWorked) {
  // amax 0.3: floor(log2 0.3) = -2, MXINT8 emax = 0, X = 2^-2. 0.3/X = 1.2 -> 77/64; -0.1/X = -0.4 -> -26/64.
  const std::vector<float> v = padded({0.3f, -0.1f}, 32);
  const BlockQuantized q = quantize_blocks(v, {32}, BlockFormat::mxint8());
  EXPECT_EQ(q.scale_codes[0], 125u);
  EXPECT_EQ(q.codes[0], 77u);
  EXPECT_EQ(q.codes[1], static_cast<uint16_t>(256 - 26));
  const auto values = q.dequantize();
  EXPECT_EQ(values[0], 77.0f / 64 / 4);
  EXPECT_EQ(values[1], -26.0f / 64 / 4);
}

TEST(FormatMx, ZerosSubnormalsNanAndInf) {
  const BlockFormat f = BlockFormat::mxfp6_e3m2();
  // All zero: log2(0 + 2^-126) - 4 = -130 clamps to E8M0's -127 (code 0).
  auto q = quantize_blocks(std::vector<float>(32, 0.0f), {32}, f);
  EXPECT_EQ(q.scale_codes[0], 0u);
  for (float v : q.dequantize()) EXPECT_EQ(v, 0.0f);
  // A binary32-subnormal amax also clamps to 2^-127.
  q = quantize_blocks(padded({1e-40f}, 32), {32}, f);
  EXPECT_EQ(q.scale_codes[0], 0u);
  // NaN or Inf anywhere: the shared scale is NaN (0xFF) and the whole block decodes to NaN.
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    q = quantize_blocks(padded({1.0f, bad}, 64), {64}, f);
    EXPECT_EQ(q.scale_codes[0], 0xFFu);
    EXPECT_EQ(q.scale_codes[1], 0u);
    const auto values = q.dequantize();
    for (int i = 0; i < 32; ++i) EXPECT_TRUE(std::isnan(values[i])) << i;
    for (int i = 32; i < 64; ++i) EXPECT_EQ(values[i], 0.0f) << i;
  }
}

TEST(FormatMx, E5m2ElementsSaturateInsideMxfp8) {
  const BlockFormat f = BlockFormat::mxfp8_e5m2();
  EXPECT_TRUE(f.element.saturates());
  // amax 61440 = 1.875 * 2^15: floor(log2) = 15, emax 15, X = 1; 61440 would round to 2^16 (Inf)
  // without saturation, and clamps to 57344 with it.
  const auto q = quantize_blocks(padded({61440.0f}, 32), {32}, f);
  EXPECT_EQ(q.scale_codes[0], 127u);
  EXPECT_EQ(q.dequantize()[0], 57344.0f);
}

// ---------------------------------------------------------------------------------------------
// NVFP4: S = amax(tensor) / (448 * 6); block scale ue4m3(amax_b / 6 / S); x / (scale * S) -> e2m1.

TEST(FormatNvfp4, HandWorkedTwoLevelScales) {
  // amax(tensor) = 5.25 = 2688 * 2^-9, so S = 2^-9 exactly.
  std::vector<float> v(32, 0.0f);
  v[0] = 5.25f;  // block 0: amax 5.25 -> (5.25/6)/2^-9 = 448 (code 0x7E); effective scale 0.875
  v[1] = 1.0f;   // 1/0.875 = 1.14 -> 1 -> 0.875
  v[2] = -2.0f;  // -2.29 -> -2 -> -1.75
  v[3] = 3.0f;   // 3.43 -> 3 -> 2.625
  v[16] = 1.4f;  // block 1: (1.4/6)/2^-9 = 119.47 -> ue4m3 120 (code 0x6F); effective 0.234375
  v[17] = 0.3f;  // 1.28 -> 1.5 -> 0.3515625
  v[18] = -0.7f; // -2.99 -> -3 -> -0.703125
  const BlockQuantized q = quantize_blocks(v, {2, 16}, BlockFormat::nvfp4());
  EXPECT_EQ(q.tensor_scale, 0x1p-9f);
  ASSERT_EQ(q.block_count(), 2);
  EXPECT_EQ(q.scale_codes[0], 0x7Eu);
  EXPECT_EQ(q.scales[0], 448.0f);
  EXPECT_EQ(q.scale_codes[1], 0x6Fu);
  EXPECT_EQ(q.scales[1], 120.0f);
  EXPECT_EQ(q.effective_scale(0), 0.875f);
  EXPECT_EQ(q.effective_scale(1), 0.234375f);
  const auto values = q.dequantize();
  EXPECT_EQ(values[0], 5.25f);
  EXPECT_EQ(values[1], 0.875f);
  EXPECT_EQ(values[2], -1.75f);
  EXPECT_EQ(values[3], 2.625f);
  EXPECT_EQ(values[16], 1.40625f);
  EXPECT_EQ(values[17], 0.3515625f);
  EXPECT_EQ(values[18], -0.703125f);
  EXPECT_EQ(q.codes[0], 0x7u);
  EXPECT_EQ(q.codes[2], 0xCu);
}

TEST(FormatNvfp4, TinyBlocksUnderflowToZeroScale) {
  // Block 1's scale (1e-6/6)/S with S = 1000/2688 is far below ue4m3's 2^-9: the scale code is 0
  // and the block decodes to zeros.
  std::vector<float> v(32, 0.0f);
  v[0] = 1000.0f;
  v[16] = 1e-6f;
  const auto q = quantize_blocks(v, {32}, BlockFormat::nvfp4());
  EXPECT_EQ(q.scale_codes[1], 0u);
  EXPECT_EQ(q.dequantize()[16], 0.0f);
  EXPECT_EQ(q.codes[16], 0u);
}

TEST(FormatNvfp4, SquareTilesCommuteWithTransposition) {
  const int64_t rows = 48, cols = 40;  // 3 x 3 tiles of 16, the last column of tiles 8 wide
  const auto w = random_values(rows * cols, 5);
  std::vector<float> wt(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) wt[c * rows + r] = w[r * cols + c];
  std::vector<float> qw(w.size()), qwt(w.size());
  quantize_dequantize_blocks(w, qw, {rows, cols}, BlockFormat::nvfp4_2d());
  quantize_dequantize_blocks(wt, qwt, {cols, rows}, BlockFormat::nvfp4_2d());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      ASSERT_EQ(bits_of(qw[r * cols + c]), bits_of(qwt[c * rows + r])) << r << "," << c;
  // 1-D groups do not commute (different elements share a scale), which is why training needs tiles.
  quantize_dequantize_blocks(w, qw, {rows, cols}, BlockFormat::nvfp4());
  quantize_dequantize_blocks(wt, qwt, {cols, rows}, BlockFormat::nvfp4());
  int differ = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) differ += qw[r * cols + c] != qwt[c * rows + r];
  EXPECT_GT(differ, 0);
}

// ---------------------------------------------------------------------------------------------
// Granularity against a brute-force reference written with the scalar codec.

// Reference: symmetric absmax blocks of br x bc with fp32 scales (scale = amax / max).
std::vector<float> reference_absmax(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t br, int64_t bc,
                                    const Format& element) {
  std::vector<float> out(w.size());
  for (int64_t r0 = 0; r0 < rows; r0 += br)
    for (int64_t c0 = 0; c0 < cols; c0 += bc) {
      float amax = 0;
      for (int64_t r = r0; r < std::min(rows, r0 + br); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + bc); ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
      const float scale = amax / static_cast<float>(element.max_value());
      for (int64_t r = r0; r < std::min(rows, r0 + br); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + bc); ++c)
          out[r * cols + c] = scale == 0 ? 0.0f : element.quantize(w[r * cols + c] / scale) * scale;
    }
  return out;
}

TEST(NumericsBlock, RaggedGroupsRowsColumnsTilesAndTensor) {
  const int64_t rows = 20, cols = 172;  // 172 = 5 * 32 + 12
  const auto w = random_values(rows * cols, 11);
  const Format element = Format::int_symmetric(4);
  struct Case {
    Granularity granularity;
    int64_t br, bc;
  };
  for (const Case& c : std::vector<Case>{{Granularity::groups(32), 1, 32},
                                         {Granularity::groups(8, 0), 8, 1},
                                         {Granularity::per_row(), 1, cols},
                                         {Granularity::per_column(), rows, 1},
                                         {Granularity::tiles(16, 16), 16, 16},
                                         {Granularity::tiles(3, 50), 3, 50},
                                         {Granularity::per_tensor(), rows, cols}}) {
    BlockFormat f;
    f.element = element;
    f.scale = Format::fp32();
    f.granularity = c.granularity;
    const auto q = quantize_blocks(w, {rows, cols}, f);
    EXPECT_EQ(q.grid_rows, (rows + c.br - 1) / c.br) << c.granularity.to_string();
    EXPECT_EQ(q.grid_cols, (cols + c.bc - 1) / c.bc) << c.granularity.to_string();
    const auto got = q.dequantize();
    const auto want = reference_absmax(w, rows, cols, c.br, c.bc, element);
    for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(bits_of(got[i]), bits_of(want[i])) << c.granularity.to_string() << " " << i;
  }
  // A rank-3 tensor is viewed as [2*10, 172].
  BlockFormat f;
  f.element = element;
  f.granularity = Granularity::groups(32);
  const auto q3 = quantize_blocks(w, {2, 10, 172}, f);
  EXPECT_EQ(q3.rows, 20);
  EXPECT_EQ(q3.grid_cols, 6);
}

TEST(NumericsBlock, WideRowsAndLargeGroupsSplitAcrossThreads) {
  // One row of 100,000: per-tensor and per-row blocks are split into pieces for parallelism and
  // into chunks for random bits; the result must not depend on it.
  const int64_t cols = 100000;
  const auto w = random_values(cols, 13);
  for (const BlockFormat& f : {BlockFormat::int_grouped(8, 0, false), BlockFormat::int_grouped(4, 0, true),
                               BlockFormat::int_grouped(4, 5000, false)}) {
    for (Rounding mode : {Rounding::kNearestEven, Rounding::kStochastic}) {
      BlockQuantizeOptions options;
      options.rounding = mode;
      options.random = {3, 4, 5};
      std::vector<float> one(w.size()), two(w.size());
      set_num_threads(1);
      quantize_dequantize_blocks(w, one, {1, cols}, f, options);
      set_num_threads(2);
      quantize_dequantize_blocks(w, two, {1, cols}, f, options);
      set_num_threads(0);
      EXPECT_EQ(one, two) << f.to_string() << " " << rounding_name(mode);
      const auto q = quantize_blocks(w, {1, cols}, f, options);
      EXPECT_EQ(q.dequantize(), one) << f.to_string() << " " << rounding_name(mode);
      if (mode == Rounding::kNearestEven && f.element == Format::int_symmetric(8)) {
        BlockFormat fp32_scales = f;
        fp32_scales.scale = Format::fp32();
        const auto reference = reference_absmax(w, 1, cols, 1, cols, Format::int_symmetric(8));
        std::vector<float> got(w.size());
        quantize_dequantize_blocks(w, got, {1, cols}, fp32_scales);
        EXPECT_EQ(got, reference);
      }
    }
  }
}

TEST(NumericsBlock, AsymmetricGroupsWithZeroPoints) {
  const int64_t rows = 3, cols = 40;
  auto w = random_values(rows * cols, 2);
  for (float& x : w) x = x + 0.7f;  // mostly positive: the zero point moves
  const BlockFormat f = BlockFormat::int_grouped(4, 16, true);
  EXPECT_EQ(f.to_string(), "uint4_g16");
  const auto q = quantize_blocks(w, {rows, cols}, f);
  ASSERT_EQ(q.zero_points.size(), static_cast<size_t>(rows * 3));
  const auto values = q.dequantize();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      float lo = 0, hi = 0;
      for (int64_t c = c0; c < std::min(cols, c0 + 16); ++c) {
        lo = std::min(lo, w[r * cols + c]);
        hi = std::max(hi, w[r * cols + c]);
      }
      const float scale = Format::fp16().quantize((hi - lo) / 15.0f);
      const int32_t zero = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / scale), 0.0f, 15.0f));
      const int64_t b = r * 3 + c0 / 16;
      EXPECT_EQ(q.scales[b], scale);
      EXPECT_EQ(q.zero_points[b], zero);
      const Format element = Format::uint(4).with_zero_point(zero);
      for (int64_t c = c0; c < std::min(cols, c0 + 16); ++c) {
        const uint32_t code = element.encode(w[r * cols + c] / scale);
        EXPECT_EQ(q.codes[r * cols + c], code);
        EXPECT_EQ(values[r * cols + c], element.decode(code) * scale);
      }
    }
}

TEST(NumericsBlock, DequantizeOfCodesEqualsFakeQuantization) {
  const int64_t rows = 33, cols = 100;
  const auto w = random_values(rows * cols, 3, 0.05f);
  for (const BlockFormat& f : BlockFormat::presets()) {
    for (Rounding mode : {Rounding::kNearestEven, Rounding::kStochastic}) {
      BlockQuantizeOptions options;
      options.rounding = mode;
      options.random = {7, 1, 0};
      const auto q = quantize_blocks(w, {rows, cols}, f, options);
      std::vector<float> fake(w.size());
      quantize_dequantize_blocks(w, fake, {rows, cols}, f, options);
      const auto values = q.dequantize();
      for (size_t i = 0; i < w.size(); ++i)
        ASSERT_EQ(bits_of(values[i]), bits_of(fake[i])) << f.to_string() << " " << rounding_name(mode) << " " << i;
      double error = 0, energy = 0;
      for (size_t i = 0; i < w.size(); ++i) {
        error += (values[i] - w[i]) * (values[i] - w[i]);
        energy += w[i] * w[i];
      }
      EXPECT_LT(error / energy, 0.5) << f.to_string();  // sanity: it is a quantizer
    }
  }
}

TEST(NumericsBlock, BulkScalesEqualThePerBlockSearch) {
  // quantize_blocks computes absmax scales in bulk; choose_block_scale is the per-block
  // definition (and what GPTQ-style callers use). They must agree for every preset.
  const int64_t rows = 40, cols = 72;
  auto w = random_values(rows * cols, 21, 0.3f);
  w[5] = 0.0f;
  for (int64_t c = 0; c < 20; ++c) w[2 * cols + c] = 0.0f;  // an all-zero group
  for (const BlockFormat& f : BlockFormat::presets()) {
    const auto q = quantize_blocks(w, {rows, cols}, f);
    const float tensor_scale = compute_tensor_scale(w, f);
    EXPECT_EQ(q.tensor_scale, tensor_scale) << f.to_string();
    for (int64_t b = 0; b < q.block_count(); ++b) {
      std::vector<float> block;
      const int64_t r0 = (b / q.grid_cols) * q.block_rows, c0 = (b % q.grid_cols) * q.block_cols;
      for (int64_t r = r0; r < std::min(rows, r0 + q.block_rows); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + q.block_cols); ++c) block.push_back(w[r * cols + c]);
      const BlockScale want = choose_block_scale(block, {}, f, {}, tensor_scale);
      ASSERT_EQ(q.scale_codes[b], want.scale_code) << f.to_string() << " block " << b;
      if (!q.zero_points.empty()) {
        ASSERT_EQ(q.zero_points[b], want.zero_point) << f.to_string() << " block " << b;
      }
    }
  }
}

TEST(NumericsBlock, SameResultForOneAndTwoThreads) {
  const auto w = random_values(1 << 16, 9);
  BlockQuantizeOptions options;
  options.rounding = Rounding::kStochastic;
  options.random = {1, 2, 3};
  options.scale.search = ScaleSearch::kMse;
  std::vector<float> one(w.size()), two(w.size());
  set_num_threads(1);
  quantize_dequantize_blocks(w, one, {128, 512}, BlockFormat::nvfp4(), options);
  set_num_threads(2);
  quantize_dequantize_blocks(w, two, {128, 512}, BlockFormat::nvfp4(), options);
  set_num_threads(0);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
}

TEST(NumericsBlock, InPlaceFakeQuantization) {
  auto w = random_values(1000, 4);
  std::vector<float> want(w.size());
  quantize_dequantize_blocks(w, want, {10, 100}, BlockFormat::mxfp4());
  quantize_dequantize_blocks(w, w, {10, 100}, BlockFormat::mxfp4());
  EXPECT_EQ(w, want);
}

TEST(NumericsBlock, DynamicFixedPointNeverClips) {
  const auto w = random_values(4096, 8, 3.0f);
  const BlockFormat f = BlockFormat::dynamic_fixed_point(8);
  const auto q = quantize_blocks(w, {4096}, f);
  float amax = 0;
  for (float x : w) amax = std::max(amax, std::fabs(x));
  // The shared exponent is the smallest power of two with amax / 2^e <= 127.
  const float scale = q.scales[0];
  EXPECT_EQ(scale, std::exp2(std::ceil(std::log2(amax / 127.0f))));
  EXPECT_LE(amax / scale, 127.0f);
  EXPECT_GT(amax / (scale / 2), 127.0f);
  const auto values = q.dequantize();
  for (size_t i = 0; i < w.size(); ++i) EXPECT_LE(std::fabs(values[i] - w[i]), scale / 2) << i;
  EXPECT_EQ(max_accumulation_terms(16, 32), 2);
  EXPECT_EQ(max_accumulation_terms(8, 32), 133144);  // 16129 * 133144 = 2147479576 <= 2^31 - 1
  EXPECT_EQ(max_accumulation_terms(4, 16), 668);
  EXPECT_EQ(max_accumulation_terms(16, 16), 0);
  EXPECT_THROW(max_accumulation_terms(1, 32), Error);
}

TEST(NumericsBlock, PresetsParseAndDescribe) {
  for (const BlockFormat& f : BlockFormat::presets()) {
    const auto parsed = BlockFormat::parse_preset(f.to_string());
    ASSERT_TRUE(parsed) << f.to_string();
    EXPECT_EQ(parsed->to_string(), f.to_string());
    EXPECT_EQ(parsed->element, f.element);
    EXPECT_EQ(parsed->scale, f.scale);
    EXPECT_EQ(parsed->granularity, f.granularity);
  }
  EXPECT_EQ(BlockFormat::parse_preset("mxfp8")->to_string(), "mxfp8_e4m3");
  EXPECT_FALSE(BlockFormat::parse_preset("e4m3"));
  EXPECT_FALSE(BlockFormat::parse_preset("int4_gx"));
  EXPECT_DOUBLE_EQ(BlockFormat::mxfp4().bits_per_element(), 4.25);
  EXPECT_DOUBLE_EQ(BlockFormat::nvfp4().bits_per_element(), 4.5);
  EXPECT_DOUBLE_EQ(BlockFormat::nf4().bits_per_element(), 4.5);
  EXPECT_DOUBLE_EQ(BlockFormat::int_grouped(4, 128, true).bits_per_element(), 4.0 + 20.0 / 128);
}

TEST(NumericsBlock, RejectsBadCombinations) {
  BlockFormat f = BlockFormat::mxfp4();
  f.scale = Format::fp16();
  EXPECT_THROW(quantize_blocks(std::vector<float>(32), {32}, f), Error);  // MX needs a power-of-two scale
  f = BlockFormat::nvfp4();
  EXPECT_THROW(quantize_blocks(std::vector<float>(31), {32}, f), Error);  // size mismatch
  f.scale_rounding = Rounding::kStochastic;
  EXPECT_THROW(quantize_blocks(std::vector<float>(32), {32}, f), Error);
  BlockQuantizeOptions options;
  std::vector<float> importance(5);
  options.importance = importance;
  EXPECT_THROW(quantize_blocks(std::vector<float>(32), {32}, BlockFormat::nvfp4(), options), Error);
  EXPECT_THROW(Granularity::groups(0), Error);
}

}  // namespace
}  // namespace lowbit
