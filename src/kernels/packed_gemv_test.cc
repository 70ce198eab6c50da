// The packed-layout GEMV against its scalar oracle and a double-precision dot product over
// dequantize(), on every compiled SIMD target: unsigned (zero point) and symmetric integer grids
// at 2, 3, 4 and 8 bits, groups of 32/64/128, per-row, odd sizes and ragged last groups. Then:
// rows computed alone give the same bits (so any thread split does), unsupported layouts fall
// back to the dense path exactly, and QuantizedLinear's one-token path is thread-count invariant.
#include "lowbit/kernels/packed_gemv.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "compress/compress_test_util.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "lowbit/kernels/dense_gemv.h"
#include "lowbit/numerics/packing.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

// Random codes over the whole code range (for symmetric grids the unused -2^(b-1) code too),
// f16 scales in [0.01, 0.03), random zero points.
QuantizedTensor random_tensor(int64_t rows, int64_t cols, const QuantScheme& scheme, uint64_t seed) {
  QuantizedTensor t(rows, cols, scheme);
  const CounterRng rng(seed, static_cast<uint64_t>(scheme.bits()));
  const uint32_t codes_count = 1u << scheme.bits();
  const int64_t groups = t.groups_per_row();
  std::vector<uint8_t> codes(static_cast<size_t>(cols)), zeros;
  std::vector<float> scales(static_cast<size_t>(groups));
  uint64_t k = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& c : codes) c = static_cast<uint8_t>(rng.bits(k++) % codes_count);
    for (auto& s : scales) s = f16_bits_to_f32(f32_to_f16_bits(0.01f + 0.02f * rng.uniform(k++)));
    zeros.clear();
    if (scheme.asymmetric())
      for (int64_t g = 0; g < groups; ++g) zeros.push_back(static_cast<uint8_t>(rng.bits(k++) % codes_count));
    t.set_row(r, codes, scales, zeros);
  }
  return t;
}

struct Reference {
  std::vector<double> exact, magnitude;  // Σ W·x and Σ |W·x| per row, in double over dequantize()
};

Reference reference(const QuantizedTensor& t, const std::vector<float>& x) {
  const auto w = t.dequantize();
  Reference ref;
  for (int64_t r = 0; r < t.rows(); ++r) {
    double sum = 0, mag = 0;
    for (int64_t c = 0; c < t.cols(); ++c) {
      const double p = static_cast<double>(w[static_cast<size_t>(r * t.cols() + c)]) * x[static_cast<size_t>(c)];
      sum += p;
      mag += std::abs(p);
    }
    ref.exact.push_back(sum);
    ref.magnitude.push_back(mag);
  }
  return ref;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

struct Shape {
  int64_t rows, cols;
};

// On every Highway target: each row within 1e-5 of Σ|W·x| of the exact (double) sum over dequantize(),
// the scalar oracle too, and the last row computed alone bit-equal to it computed with the others.
void expect_every_target_within_1e5_of_the_exact_sum(const QuantizedTensor& t, const std::vector<float>& x) {
  ASSERT_TRUE(packed_gemv_supported(t));
  const int64_t rows = t.rows();
  const Reference ref = reference(t, x);
  std::vector<float> oracle(static_cast<size_t>(rows));
  packed_gemv_rows_reference(t, x.data(), 0, rows, oracle.data());
  for (uint64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::vector<float> y(static_cast<size_t>(rows), -1.0f);
    packed_gemv_rows(t, x.data(), 0, rows, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_NEAR(y[r], ref.exact[r], 1e-5 * ref.magnitude[r] + 1e-30) << "row " << r;
      ASSERT_NEAR(oracle[r], ref.exact[r], 1e-5 * ref.magnitude[r] + 1e-30) << "row " << r;
    }
    std::vector<float> alone(static_cast<size_t>(rows), 0.0f);
    packed_gemv_rows(t, x.data(), rows - 1, rows, alone.data());
    ASSERT_TRUE(same_bits(alone[rows - 1], y[rows - 1]));
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(PackedGemv, MatchesOracleAndDoubleReferenceOnEveryTarget) {
  // 37 x 200: no group size divides 200 (ragged last groups), odd row count.
  const Shape shapes[] = {{37, 200}, {64, 4096}};
  // 0 = per-row; 50 and 33 start groups off byte boundaries for some widths (unpacked path).
  const int64_t group_sizes[] = {32, 64, 128, 0, 50, 33};
  uint64_t seed = 1;
  for (const Shape& shape : shapes) {
    const auto x = testing::normal_values(static_cast<size_t>(shape.cols), 77);
    for (const int bits : {2, 3, 4, 8}) {
      for (const bool symmetric : {false, true}) {
        for (const int64_t group : group_sizes) {
          const QuantScheme scheme = QuantScheme::integer(bits, group, symmetric);
          const QuantizedTensor t = random_tensor(shape.rows, shape.cols, scheme, seed++);
          ASSERT_TRUE(packed_gemv_supported(t)) << scheme.to_string();
          const Reference ref = reference(t, x);
          std::vector<float> oracle(static_cast<size_t>(shape.rows));
          packed_gemv_rows_reference(t, x.data(), 0, shape.rows, oracle.data());
          for (int64_t r = 0; r < shape.rows; ++r)
            ASSERT_NEAR(oracle[r], ref.exact[r], 1e-5 * ref.magnitude[r] + 1e-30)
                << scheme.to_string() << " " << shape.rows << "x" << shape.cols << " oracle row " << r;
          for (uint64_t target : hwy::SupportedAndGeneratedTargets()) {
            hwy::SetSupportedTargetsForTest(target);
            SCOPED_TRACE(std::string(hwy::TargetName(target)) + " " + scheme.to_string() + " " +
                         std::to_string(shape.rows) + "x" + std::to_string(shape.cols));
            std::vector<float> y(static_cast<size_t>(shape.rows), -1.0f);
            packed_gemv_rows(t, x.data(), 0, shape.rows, y.data());
            for (int64_t r = 0; r < shape.rows; ++r) {
              ASSERT_NEAR(y[r], ref.exact[r], 1e-5 * ref.magnitude[r] + 1e-30) << "row " << r;
              ASSERT_NEAR(y[r], oracle[r], 1e-5 * ref.magnitude[r] + 1e-30) << "row " << r;
            }
            // Grouping invariance: a few rows computed alone (or in a shifted range) give the same bits.
            for (const int64_t r : {int64_t{0}, shape.rows / 2, shape.rows - 1}) {
              std::vector<float> alone(static_cast<size_t>(shape.rows), 0.0f);
              packed_gemv_rows(t, x.data(), r, std::min(shape.rows, r + 3), alone.data());
              ASSERT_TRUE(same_bits(alone[r], y[r])) << "row " << r;
            }
          }
          hwy::SetSupportedTargetsForTest(0);
        }
      }
    }
  }
}

TEST(PackedGemv, OtherTwosComplementGridsDecodeLikeDequantize) {
  // Full-range int4 (code 8 = -8) and a 6-bit grid with a fraction bit (value = int / 2).
  const QuantScheme schemes[] = {QuantScheme::with_format(Format::int_full(4), 32),
                                 QuantScheme::with_format(Format::int_symmetric(6, 1), 64),
                                 QuantScheme::integer(5, 0, false), QuantScheme::integer(7, 96, true)};
  const auto x = testing::normal_values(300, 5);
  for (const QuantScheme& scheme : schemes) {
    SCOPED_TRACE(scheme.to_string());
    const QuantizedTensor t = random_tensor(19, 300, scheme, 40);
    ASSERT_TRUE(packed_gemv_supported(t));
    const Reference ref = reference(t, x);
    std::vector<float> y(19), oracle(19);
    packed_gemv_rows(t, x.data(), 0, 19, y.data());
    packed_gemv_rows_reference(t, x.data(), 0, 19, oracle.data());
    for (int64_t r = 0; r < 19; ++r) {
      EXPECT_NEAR(y[r], ref.exact[r], 1e-5 * ref.magnitude[r] + 1e-30) << "row " << r;
      EXPECT_NEAR(oracle[r], ref.exact[r], 1e-5 * ref.magnitude[r] + 1e-30) << "row " << r;
    }
  }
}

// ggml's Q4_1/Q5_1 grids: unsigned codes, an f16 scale and an f16 minimum per group of 32.
TEST(PackedGemv, FloatMinimumGridsDecodeLikeDequantize) {
  for (const int bits : {4, 5}) {
    QuantScheme scheme = QuantScheme::with_format(Format::uint(bits), 32);
    scheme.float_min = true;
    SCOPED_TRACE(scheme.to_string());
    // 43 x 200: odd rows and a ragged last group.
    const int64_t rows = 43, cols = 200, groups = (cols + 31) / 32;
    QuantizedTensor t(rows, cols, scheme);
    const CounterRng rng(90 + static_cast<uint64_t>(bits), 1);
    uint64_t k = 0;
    std::vector<uint8_t> codes(static_cast<size_t>(cols));
    std::vector<float> scales(static_cast<size_t>(groups)), mins(static_cast<size_t>(groups));
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& c : codes) c = static_cast<uint8_t>(rng.bits(k++) % (1u << bits));
      for (auto& s : scales) s = f16_bits_to_f32(f32_to_f16_bits(0.01f + 0.02f * rng.uniform(k++)));
      for (auto& m : mins) m = f16_bits_to_f32(f32_to_f16_bits(-0.2f + 0.1f * rng.uniform(k++)));
      t.set_row(r, codes, scales, {}, mins);
    }
    expect_every_target_within_1e5_of_the_exact_sum(t, testing::normal_values(static_cast<size_t>(cols), 6));
  }
}

// 4-bit lookup grids of 16 levels: NF4, and IQ4_NL's codebook with signed scales (a negative scale
// mirrors the grid), per group of 32/64, per row, with a ragged last group.
TEST(PackedGemv, FourBitLookupGridsDecodeLikeDequantize) {
  QuantScheme iq4nl = QuantScheme::with_format(
      Format::codebook({-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}), 32);
  iq4nl.signed_scales = true;
  // e2m1 (the 4-bit float of MXFP4 and NVFP4) with MX's 32-value and NVFP4's 16-value groups: a table
  // of its 16 decoded codes (sign-magnitude, so not increasing) in the same kernel.
  const QuantScheme schemes[] = {QuantScheme::with_format(Format::nf4(), 64), QuantScheme::with_format(Format::nf4(), 0),
                                 iq4nl, QuantScheme::with_format(Format::e2m1(), 32),
                                 QuantScheme::with_format(Format::e2m1(), 16)};
  const auto x = testing::normal_values(200, 8);
  for (const QuantScheme& scheme : schemes) {
    SCOPED_TRACE(scheme.to_string());
    QuantizedTensor t = random_tensor(37, 200, scheme, 50);
    if (scheme.signed_scales) {  // flip every other group's scale
      std::vector<uint8_t> codes(200);
      for (int64_t r = 0; r < t.rows(); ++r) {
        unpack_bits(t.packed_row(r), 4, codes);
        std::vector<float> scales;
        for (int64_t g = 0; g < t.groups_per_row(); ++g) scales.push_back((g % 2 ? -1.0f : 1.0f) * t.scale(r, g));
        t.set_row(r, codes, scales);
      }
    }
    expect_every_target_within_1e5_of_the_exact_sum(t, x);
  }
}

// FP8 E4M3: each code widened in registers (Fp8Rows) against dequantize() in double, on every target;
// row 0 holds every non-NaN code (subnormals, both zeros, ±448), and a NaN code makes its row NaN.
TEST(PackedGemv, Fp8E4m3DecodesLikeDequantize) {
  const auto x = testing::normal_values(300, 12);
  for (const int64_t group : {int64_t{32}, int64_t{48}, int64_t{0}}) {
    const QuantScheme scheme = QuantScheme::with_format(Format::e4m3(), group);
    SCOPED_TRACE(scheme.to_string());
    QuantizedTensor t = random_tensor(19, 300, scheme, 70);
    std::vector<uint8_t> codes(300);
    std::vector<float> scales;
    for (int64_t r = 0; r < t.rows(); ++r) {  // random codes, less the two NaNs (±0x7F) but for row 0
      unpack_bits(t.packed_row(r), 8, codes);
      for (size_t c = 0; c < codes.size(); ++c) {
        if (r == 0) codes[c] = static_cast<uint8_t>(c % 254 + (c % 254 >= 127 ? 1 : 0));  // every other code
        if ((codes[c] & 0x7F) == 0x7F) codes[c] ^= 1;
      }
      scales.clear();
      for (int64_t g = 0; g < t.groups_per_row(); ++g) scales.push_back(t.scale(r, g));
      t.set_row(r, codes, scales);
    }
    expect_every_target_within_1e5_of_the_exact_sum(t, x);
    codes[5] = 0xFF;  // −NaN
    t.set_row(1, codes, scales);
    std::vector<float> y(19);
    packed_gemv_rows(t, x.data(), 0, 19, y.data());
    EXPECT_TRUE(std::isnan(y[1]));
    EXPECT_FALSE(std::isnan(y[0]));
  }
}

TEST(PackedGemv, UnsupportedLayoutsFallBackToTheDensePathExactly) {
  // 3-bit lookup grids have no kernel yet.
  auto nf3 = random_tensor(21, 130, QuantScheme::with_format(Format::nf3(), 64), 9);
  auto gidx = random_tensor(21, 130, QuantScheme::integer(4, 32, false), 10);
  std::vector<int32_t> g_idx(130);
  for (size_t c = 0; c < g_idx.size(); ++c) g_idx[c] = static_cast<int32_t>((c * 7) % 5);
  gidx.set_g_idx(g_idx);
  const auto x = testing::normal_values(130, 6);
  for (const QuantizedTensor* t : {&nf3, &gidx}) {
    EXPECT_FALSE(packed_gemv_supported(*t));
    const auto w = t->dequantize();
    std::vector<float> y(21), dense(21);
    packed_gemv_rows(*t, x.data(), 0, 21, y.data());
    dense_gemv_rows(DType::kF32, w.data(), 130, x.data(), 0, 21, dense.data());
    for (size_t r = 0; r < y.size(); ++r) EXPECT_TRUE(same_bits(y[r], dense[r])) << "row " << r;
    EXPECT_TRUE(testing::contains(testing::error_from([&] { packed_gemv_rows_reference(*t, x.data(), 0, 1, y.data()); }),
                                  "no packed kernel"));
  }
}

TEST(PackedGemv, PreparedInputIsSharedAcrossCallsAndTargets) {
  // Prepared once under the best target, used under every target: a width mismatch of the
  // permuted x is detected and redone, so results equal the one-shot call on that target.
  for (const auto& scheme : {QuantScheme::integer(4, 64, false), QuantScheme::integer(2, 32, true),
                             QuantScheme::integer(8, 0, false)}) {
    SCOPED_TRACE(scheme.to_string());
    const auto t = random_tensor(70, 256, scheme, 21);
    const auto x = testing::normal_values(256, 4);
    PackedGemvInput input;
    packed_gemv_prepare(t, x.data(), input);
    for (uint64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      SCOPED_TRACE(hwy::TargetName(target));
      std::vector<float> prepared(70), one_shot(70);
      packed_gemv_rows(t, input, 0, 33, prepared.data());
      packed_gemv_rows(t, input, 33, 70, prepared.data());
      packed_gemv_rows(t, x.data(), 0, 70, one_shot.data());
      EXPECT_EQ(std::memcmp(prepared.data(), one_shot.data(), prepared.size() * sizeof(float)), 0);
    }
    hwy::SetSupportedTargetsForTest(0);
  }
  const auto other = random_tensor(4, 128, QuantScheme::integer(4, 32, false), 2);
  const auto x = testing::normal_values(256, 4);
  PackedGemvInput input;
  packed_gemv_prepare(random_tensor(4, 256, QuantScheme::integer(4, 32, false), 1), x.data(), input);
  std::vector<float> y(4);
  const std::string message = testing::error_from([&] { packed_gemv_rows(other, input, 0, 4, y.data()); });
  EXPECT_TRUE(testing::contains(message, "prepared for another tensor layout")) << message;
}

TEST(PackedGemv, RefusesRowsOutsideTheTensor) {
  const auto t = random_tensor(4, 64, QuantScheme::integer(4, 32, true), 3);
  const auto x = testing::normal_values(64, 1);
  std::vector<float> y(8);
  const std::string message = testing::error_from([&] { packed_gemv_rows(t, x.data(), 2, 5, y.data()); });
  EXPECT_TRUE(testing::contains(message, "rows [2, 5) outside a tensor of 4 rows")) << message;
}

TEST(PackedGemv, QuantizedLinearDecodeIsBitIdenticalForOneAndTwoThreads) {
  // 300 rows: tiles of 64 split over threads differently; 3 bits: the unpacked path.
  for (const auto& scheme : {QuantScheme::integer(4, 128, false), QuantScheme::integer(3, 64, true),
                             QuantScheme::integer(8, 0, true), QuantScheme::integer(2, 32, false)}) {
    SCOPED_TRACE(scheme.to_string());
    const auto t = std::make_shared<const QuantizedTensor>(random_tensor(300, 1024, scheme, 12));
    const QuantizedLinear layer(t, {}, /*packed_decode=*/true);
    ASSERT_TRUE(layer.packed_decode());
    const auto x = testing::normal_values(1024, 2);
    std::vector<float> one(300), two(300), direct(300);
    set_num_threads(1);
    layer.forward(x.data(), 1, one.data());
    set_num_threads(2);
    layer.forward(x.data(), 1, two.data());
    set_num_threads(0);
    packed_gemv_rows(*t, x.data(), 0, 300, direct.data());
    EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
    // The layer's one-token path is the packed kernel.
    EXPECT_EQ(std::memcmp(one.data(), direct.data(), one.size() * sizeof(float)), 0);
  }
}

}  // namespace
}  // namespace lowbit
