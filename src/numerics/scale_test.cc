// Scale selection: absmax, percentile clipping, MSE-optimal clipping search (optionally
// importance-weighted) and mean |x|, on blocks whose best answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/random.h"
#include "lowbit/numerics/block_format.h"

namespace lowbit {
namespace {

BlockFormat int4_fp32() {
  BlockFormat f;
  f.element = Format::int_symmetric(4);
  f.scale = Format::fp32();
  f.granularity = Granularity::per_tensor();
  return f;
}

// Gaussian-like values in [-1.5, 1.5] plus one outlier.
std::vector<float> with_outlier(size_t n, float outlier) {
  const CounterRng rng(17, 0);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = rng.uniform(3 * i) + rng.uniform(3 * i + 1) + rng.uniform(3 * i + 2) - 1.5f;
  v[n / 2] = outlier;
  return v;
}

double squared_error(const std::vector<float>& v, const Format& element, float scale,
                     const std::vector<float>& weights = {}) {
  double error = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double d = v[i] - (scale == 0 ? 0.0f : element.quantize(v[i] / scale) * scale);
    error += (weights.empty() ? 1.0 : weights[i]) * d * d;
  }
  return error;
}

TEST(ScaleSearch, AbsmaxMapsTheLargestMagnitudeToTheLargestCode) {
  const std::vector<float> v = {0.5f, -3.5f, 1.0f};
  const BlockScale s = choose_block_scale(v, {}, int4_fp32());
  EXPECT_EQ(s.scale, 0.5f);
  EXPECT_EQ(s.scale_code, std::bit_cast<uint32_t>(0.5f));
}

TEST(ScaleSearch, PercentileIgnoresTheOutlier) {
  const auto v = with_outlier(1000, 100.0f);
  ScaleOptions options;
  options.search = ScaleSearch::kPercentile;
  options.percentile = 99.9;  // nearest rank 999 of 1000: the largest non-outlier magnitude
  float second = 0;
  for (float x : v)
    if (x != 100.0f) second = std::max(second, std::fabs(x));
  const BlockScale s = choose_block_scale(v, {}, int4_fp32(), options);
  EXPECT_EQ(s.scale, second / 7.0f);
  options.percentile = 100;
  EXPECT_EQ(choose_block_scale(v, {}, int4_fp32(), options).scale, 100.0f / 7.0f);
}

TEST(ScaleSearch, MseFindsTheBestClippingRatio) {
  const auto v = with_outlier(1000, 12.0f);
  const BlockFormat f = int4_fp32();
  ScaleOptions options;
  options.search = ScaleSearch::kMse;
  const BlockScale s = choose_block_scale(v, {}, f, options);
  // Brute force over the same candidates (c = 1 - k/100, k < 80).
  float best_scale = 12.0f / 7.0f;
  double best = squared_error(v, f.element, best_scale);
  for (int k = 1; k < 80; ++k) {
    const float scale = (1.0f - k / 100.0f) * 12.0f / 7.0f;
    const double error = squared_error(v, f.element, scale);
    if (error < best) {
      best = error;
      best_scale = scale;
    }
  }
  EXPECT_EQ(s.scale, best_scale);
  EXPECT_LT(s.scale, 12.0f / 7.0f);  // clipping the outlier pays off
  EXPECT_LT(best, 0.8 * squared_error(v, f.element, 12.0f / 7.0f));
}

TEST(ScaleSearch, ImportanceWeightsChangeTheChoice) {
  // One large value and three ones. Unweighted, the search keeps 10 nearly representable (scale
  // near 10/7); with no weight on the 10, it shrinks to c = 0.7, where 1 is exactly a code (scale 1).
  const std::vector<float> v = {10.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<float> weights = {0.0f, 1.0f, 1.0f, 1.0f};
  ScaleOptions options;
  options.search = ScaleSearch::kMse;
  const BlockFormat f = int4_fp32();
  const BlockScale plain = choose_block_scale(v, {}, f, options);
  const BlockScale weighted = choose_block_scale(v, weights, f, options);
  EXPECT_GT(plain.scale, 1.35f);
  EXPECT_EQ(weighted.scale, 1.0f);
  EXPECT_EQ(squared_error(v, f.element, weighted.scale, weights), 0.0);
  // Block quantization passes per-element importance through.
  BlockQuantizeOptions block_options;
  block_options.scale = options;
  block_options.importance = weights;
  const auto q = quantize_blocks(v, {4}, f, block_options);
  EXPECT_EQ(q.scales[0], 1.0f);
}

TEST(ScaleSearch, MseWorksWithPowerOfTwoAndAsymmetricScales) {
  const auto v = with_outlier(256, 9.0f);
  ScaleOptions options;
  options.search = ScaleSearch::kMse;
  BlockFormat mx = BlockFormat::mxfp4();
  mx.granularity = Granularity::per_tensor();
  const BlockScale s = choose_block_scale(v, {}, mx, options);
  EXPECT_EQ(std::exp2(std::round(std::log2(s.scale))), s.scale);  // still a power of two
  BlockFormat asym = BlockFormat::int_grouped(3, 0, true);
  const BlockScale a = choose_block_scale(v, {}, asym, options);
  const BlockScale plain = choose_block_scale(v, {}, asym);
  EXPECT_LE(a.scale, plain.scale);
  EXPECT_GE(a.zero_point, 0);
  EXPECT_LE(a.zero_point, 7);
}

TEST(ScaleSearch, AbsMeanForTernaryAndBinary) {
  const std::vector<float> v = {0.5f, -1.5f, 0.25f, -0.25f};  // mean |x| = 0.625
  BlockFormat ternary;
  ternary.element = Format::ternary();
  ternary.granularity = Granularity::per_tensor();
  ScaleOptions options;
  options.search = ScaleSearch::kAbsMean;
  EXPECT_EQ(choose_block_scale(v, {}, ternary, options).scale, 0.625f);
  std::vector<float> out(4);
  BlockQuantizeOptions block_options;
  block_options.scale = options;
  quantize_dequantize_blocks(v, out, {4}, ternary, block_options);
  EXPECT_EQ(out, (std::vector<float>{0.625f, -0.625f, 0.0f, -0.0f}));  // BitNet b1.58: RoundClip(W/γ, -1, 1)·γ
  BlockFormat binary = ternary;
  binary.element = Format::binary();
  quantize_dequantize_blocks(v, out, {4}, binary, block_options);
  EXPECT_EQ(out, (std::vector<float>{0.625f, -0.625f, 0.625f, -0.625f}));  // XNOR-Net: sign(W)·mean|W|
}

TEST(ScaleSearch, RejectsBadOptions) {
  ScaleOptions options;
  options.search = ScaleSearch::kPercentile;
  options.percentile = 0;
  EXPECT_THROW(choose_block_scale(std::vector<float>{1.0f}, {}, int4_fp32(), options), Error);
  options.search = ScaleSearch::kAbsMean;
  EXPECT_THROW(choose_block_scale(std::vector<float>{1.0f}, {}, BlockFormat::int_grouped(4, 32, true), options), Error);
  EXPECT_THROW(choose_block_scale(std::vector<float>{1.0f}, std::vector<float>{1.0f, 2.0f}, int4_fp32()), Error);
}

}  // namespace
}  // namespace lowbit
