// RTN: codes and scales equal numerics' block quantizer (whose kernels are tested against the
// scalar oracle), MSE clipping and importance weighting do what they claim, error falls with bits,
// bad options are refused, and the result does not depend on the thread count.
#include "lowbit/compress/rtn.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "compress/compress_test_util.h"
#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/numerics/block_format.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;
using testing::normal_values;

struct Case {
  Format element;
  int64_t group;
  DType scale_dtype;
};

// The numerics block format with the same grid, groups and scale format as `scheme`.
BlockFormat numerics_format(const QuantScheme& scheme) { return scheme.block_format(); }

TEST(Rtn, EqualsNumericsBlockQuantizer) {
  const int64_t rows = 24, cols = 200;  // groups of 64 leave a ragged last group of 8
  std::vector<float> w = normal_values(static_cast<size_t>(rows * cols), 3, 0.02f);
  w[17] = 0.5f;  // an outlier
  for (int64_t c = 0; c < cols; ++c) w[static_cast<size_t>(5 * cols + c)] = 0.0f;  // an all-zero row
  const std::vector<Case> cases = {
      {Format::int_symmetric(4), 64, DType::kF16}, {Format::uint(4), 64, DType::kF16},
      {Format::uint(3), 0, DType::kF16},           {Format::int_symmetric(8), 128, DType::kBF16},
      {Format::uint(2), 32, DType::kF32},          {Format::nf4(), 64, DType::kF16},
      {Format::e2m1(), 32, DType::kF32},           {Format::e4m3(), 0, DType::kF16},
      {Format::int_full(3), 16, DType::kF16}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.element.to_string() + " g" + std::to_string(c.group));
    RtnOptions options;
    options.scheme = QuantScheme::with_format(c.element, c.group, c.scale_dtype);
    const QuantizedTensor q = quantize_rtn(w, rows, cols, options);
    const BlockQuantized reference = quantize_blocks(w, {rows, cols}, numerics_format(options.scheme));
    ASSERT_EQ(reference.block_count(), rows * q.groups_per_row());
    const std::vector<uint8_t> codes = q.codes();
    for (size_t i = 0; i < codes.size(); ++i) ASSERT_EQ(codes[i], reference.codes[i]) << "element " << i;
    for (int64_t b = 0; b < reference.block_count(); ++b) {
      ASSERT_EQ(q.scales()[static_cast<size_t>(b)], reference.scales[static_cast<size_t>(b)]) << "block " << b;
      if (options.scheme.asymmetric()) {
        ASSERT_EQ(q.zero_points()[static_cast<size_t>(b)], reference.zero_points[static_cast<size_t>(b)]);
      }
    }
    EXPECT_EQ(q.dequantize(), reference.dequantize());
  }
}

// MXFP4 and NVFP4 (QuantScheme::preset) worked out here from their definitions, with half.h's FP8
// decoders and plain search instead of numerics' encoders:
//   MXFP4  each group's scale is the smallest power of two >= max|w| / 6 (so nothing clips), stored
//          as E8M0; an all-zero group takes E8M0's smallest value 2^-127;
//   NVFP4  S is the smallest power of two >= max|W| / (448 · 6); each group's scale is the UE4M3
//          value nearest to max|w| / 6 / S, times S;
// every weight decodes to an e2m1 value times its scale that is nearest to it.
TEST(Rtn, MxFp4AndNvFp4ScalesFollowTheirDefinitions) {
  const int64_t rows = 8, cols = 80;  // mxfp4: 32 + 32 + a ragged 16; nvfp4: 5 groups of 16
  std::vector<float> w = normal_values(static_cast<size_t>(rows * cols), 9, 0.02f);
  w[40] = 0.75f;                                                                   // an outlier
  for (int64_t c = 0; c < cols; ++c) w[static_cast<size_t>(3 * cols + c)] = 0.0f;  // an all-zero row
  const float e2m1[] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  auto smallest_power_at_least = [](double x) {
    double p = 0x1p-127;
    while (p < x) p *= 2;
    return p;
  };
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  for (const char* name : {"mxfp4", "nvfp4"}) {
    SCOPED_TRACE(name);
    const bool nv = std::string(name) == "nvfp4";
    RtnOptions options;
    options.scheme = *QuantScheme::preset(name);
    const QuantizedTensor q = quantize_rtn(w, rows, cols, options);
    const double s = nv ? smallest_power_at_least(amax / (448.0 * 6.0)) : 1.0;
    EXPECT_EQ(q.tensor_scale(), static_cast<float>(s));
    const int64_t group = nv ? 16 : 32, groups = q.groups_per_row();
    ASSERT_EQ(groups, nv ? 5 : 3);
    EXPECT_EQ(q.storage_bytes(), rows * cols / 2 + rows * groups + (nv ? 4 : 0));
    const Tensor stored = q.scales_tensor();
    ASSERT_EQ(stored.dtype(), nv ? DType::kF8E4M3 : DType::kF8E8M0);
    const auto* bytes = static_cast<const uint8_t*>(stored.data());
    const std::vector<float> values = q.dequantize();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        const size_t b = static_cast<size_t>(r * groups + g);
        const int64_t c0 = g * group, c1 = std::min(cols, c0 + group);
        double gmax = 0;
        for (int64_t c = c0; c < c1; ++c) gmax = std::max(gmax, static_cast<double>(std::fabs(w[static_cast<size_t>(r * cols + c)])));
        double want = 0;
        if (!nv) {
          want = smallest_power_at_least(gmax / 6);
        } else {  // the nearest of the 127 finite UE4M3 values
          double best = INFINITY;
          for (uint8_t code = 0; code < 0x7F; ++code) {
            const double v = f8e4m3_bits_to_f32(code), d = std::fabs(v - gmax / 6 / s);
            if (d < best) best = d, want = v;
          }
          want *= s;
        }
        ASSERT_EQ(q.scales()[b], static_cast<float>(want)) << "row " << r << " group " << g;
        const float decoded = nv ? f8e4m3_bits_to_f32(bytes[b]) * static_cast<float>(s) : e8m0_bits_to_f32(bytes[b]);
        ASSERT_EQ(decoded, q.scales()[b]) << "stored byte of row " << r << " group " << g;
        for (int64_t c = c0; c < c1; ++c) {
          const size_t i = static_cast<size_t>(r * cols + c);
          double nearest = INFINITY;
          for (float m : e2m1)
            for (float sign : {1.0f, -1.0f}) nearest = std::min(nearest, std::fabs(sign * m * q.scales()[b] - static_cast<double>(w[i])));
          ASSERT_EQ(std::fabs(static_cast<double>(values[i]) - w[i]), nearest) << "weight " << i;
        }
      }
  }
  // An 11008 x 4096 layer would pay 4.25 and 4.5 bits per weight (plus 32 bits once for NVFP4's S).
  EXPECT_EQ(QuantizedTensor(2, 4096, *QuantScheme::preset("mxfp4")).bits_per_weight(), 4.25);
  EXPECT_EQ(QuantizedTensor(2, 4096, *QuantScheme::preset("nvfp4")).bits_per_weight(), 4.5 + 32.0 / (2 * 4096));
}

TEST(Rtn, EightBitScalesAreRefusedWhereTheyCannotStand) {
  QuantizedTensor nv(2, 32, *QuantScheme::preset("nvfp4"));
  EXPECT_TRUE(contains(error_from([&] { nv.set_tensor_scale(3.0f); }), "the tensor scale must be a power of two"));
  EXPECT_TRUE(contains(error_from([&] { nv.set_row(0, std::vector<uint8_t>(32, 0), std::vector<float>{-1.0f, 1.0f}); }),
                       "scale -1.000000 of group 0 is not a finite F8_E4M3 value"));
  QuantizedTensor f16(2, 32, QuantScheme::with_format(Format::e2m1(), 16));
  EXPECT_TRUE(contains(error_from([&] { f16.set_tensor_scale(2.0f); }), "only F8_E4M3 scales take a tensor scale"));
  QuantScheme e8m0 = QuantScheme::integer(4, 32, false, DType::kF8E8M0);  // zero points
  EXPECT_TRUE(contains(error_from([&] { e8m0.validate(64); }), "8-bit float scales"));
  QuantScheme mirrored = *QuantScheme::preset("mxfp4");
  mirrored.signed_scales = true;
  EXPECT_TRUE(contains(error_from([&] { mirrored.validate(64); }), "are unsigned"));
  QuantizedTensor mx(1, 32, *QuantScheme::preset("mxfp4"));
  EXPECT_TRUE(contains(error_from([&] { mx.set_row(0, std::vector<uint8_t>(32, 0), std::vector<float>{0.75f}); }),
                       "is not a finite F8_E8M0 value"));
}

TEST(Rtn, MseClippingNeverWorseAndImportanceWeightingMinimizesWeightedError) {
  const int64_t rows = 16, cols = 256, group = 64;
  std::vector<float> w = normal_values(static_cast<size_t>(rows * cols), 9, 0.05f);
  for (int64_t r = 0; r < rows; ++r) w[static_cast<size_t>(r * cols + (r * 37) % cols)] *= 8.0f;  // outliers
  std::vector<float> importance = normal_values(static_cast<size_t>(cols), 10);
  for (float& v : importance) v = v * v + 0.01f;
  RtnOptions absmax;
  absmax.scheme = QuantScheme::integer(3, group, true);
  RtnOptions mse = absmax;
  mse.scale.search = ScaleSearch::kMse;
  RtnOptions weighted = mse;
  weighted.importance = importance;
  const auto a = quantize_rtn(w, rows, cols, absmax).dequantize();
  const auto m = quantize_rtn(w, rows, cols, mse).dequantize();
  const auto v = quantize_rtn(w, rows, cols, weighted).dequantize();
  // Per group: each search is optimal for its own objective over the same candidates (absmax is c = 1).
  int strictly_better = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < cols / group; ++g) {
      double ea = 0, em = 0, wm = 0, wv = 0;
      for (int64_t c = g * group; c < (g + 1) * group; ++c) {
        const size_t i = static_cast<size_t>(r * cols + c);
        const double da = w[i] - a[i], dm = w[i] - m[i], dv = w[i] - v[i];
        ea += da * da;
        em += dm * dm;
        wm += importance[static_cast<size_t>(c)] * dm * dm;
        wv += importance[static_cast<size_t>(c)] * dv * dv;
      }
      EXPECT_LE(em, ea * (1 + 1e-12));
      EXPECT_LE(wv, wm * (1 + 1e-12));
      strictly_better += em < ea * 0.999;
    }
  EXPECT_GT(strictly_better, rows);  // the outliers make clipping pay in many groups
}

TEST(Rtn, ErrorFallsWithEveryExtraBit) {
  const int64_t rows = 8, cols = 128;
  const std::vector<float> w = normal_values(static_cast<size_t>(rows * cols), 4);
  double previous = INFINITY;
  for (int bits = 2; bits <= 8; ++bits) {
    RtnOptions options;
    options.scheme = QuantScheme::integer(bits, 32, true, DType::kF32);
    const auto d = quantize_rtn(w, rows, cols, options).dequantize();
    double error = 0;
    for (size_t i = 0; i < w.size(); ++i) error += (w[i] - d[i]) * (w[i] - d[i]);
    EXPECT_LT(error, previous * 0.5) << bits << " bits";  // each bit roughly quarters it
    previous = error;
  }
}

TEST(Rtn, RefusesBadOptions) {
  const std::vector<float> w(64, 0.5f);
  RtnOptions options;
  options.scheme = QuantScheme::integer(4, 128, true);
  EXPECT_TRUE(contains(error_from([&] { quantize_rtn(w, 2, 32, options); }), "group size 128 is larger than a row of 32"));
  options.scheme = QuantScheme::with_format(Format::int_symmetric(10), 0);
  EXPECT_TRUE(contains(error_from([&] { quantize_rtn(w, 2, 32, options); }), "bits per code must be 1..8, found 10"));
  options.scheme = QuantScheme::integer(4, 16, true);
  EXPECT_TRUE(contains(error_from([&] { quantize_rtn(w, 3, 32, options); }), "weight has 64 values for [3, 32]"));
  std::vector<float> bad = w;
  bad[40] = NAN;
  EXPECT_TRUE(contains(error_from([&] { quantize_rtn(bad, 2, 32, options); }), "weight[1, 8] is not finite"));
  const std::vector<float> short_importance(31, 1.0f);
  options.importance = short_importance;
  EXPECT_TRUE(contains(error_from([&] { quantize_rtn(w, 2, 32, options); }), "importance has 31 weights for 32 columns"));
  std::vector<float> negative(32, 1.0f);
  negative[3] = -1;
  options.importance = negative;
  EXPECT_TRUE(contains(error_from([&] { quantize_rtn(w, 2, 32, options); }), "importance[3]"));
  options.importance = {};
  options.scheme = QuantScheme::integer(4, 16, false);
  options.scale.search = ScaleSearch::kAbsMean;
  EXPECT_TRUE(contains(error_from([&] { quantize_rtn(w, 2, 32, options); }), "mean |x| scales are for symmetric formats"));
  options.scale.search = ScaleSearch::kMse;
  options.scale.mse_grid = 0;
  EXPECT_TRUE(contains(error_from([&] { quantize_rtn(w, 2, 32, options); }), "mse_grid must be >= 1"));
}

TEST(Rtn, SameResultForOneAndTwoThreads) {
  const int64_t rows = 300, cols = 96;
  const std::vector<float> w = normal_values(static_cast<size_t>(rows * cols), 8);
  RtnOptions options;
  options.scheme = QuantScheme::integer(3, 32, false);
  options.scale.search = ScaleSearch::kMse;
  set_num_threads(1);
  const QuantizedTensor one = quantize_rtn(w, rows, cols, options);
  set_num_threads(2);
  const QuantizedTensor two = quantize_rtn(w, rows, cols, options);
  set_num_threads(0);
  EXPECT_TRUE(std::equal(one.packed_codes().begin(), one.packed_codes().end(), two.packed_codes().begin()));
  EXPECT_TRUE(std::equal(one.scales().begin(), one.scales().end(), two.scales().begin()));
  EXPECT_TRUE(std::equal(one.zero_points().begin(), one.zero_points().end(), two.zero_points().begin()));
}

}  // namespace
}  // namespace lowbit
