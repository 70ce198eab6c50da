// The int8-activation GEMV: every kernel this CPU runs equals the scalar definition bit for bit
// (the integer sums are exact and the float steps are fixed, kernels/int8_gemv.h), over 2-, 3-, 4- and
// 8-bit codes with zero points, two's complement and float minimums, 4-bit e2m1 through its level table, groups of 32..256, per-row, ragged
// rows and shapes that leave partial vector steps. The definition itself is checked against an
// independent one: the f32 packed kernel run on x̂ (x rounded to its int8 blocks), and the rounding
// against its bound. Then: rows alone give the same bits, x̂ is what the header says, and bad
// layouts are refused.
#include "lowbit/kernels/int8_gemv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/random.h"
#include "lowbit/kernels/packed_gemv.h"
#include "compress/compress_test_util.h"
#include "kernels/int8_test_util.h"
#include "kernels/int8_gemv_internal.h"

namespace lowbit {
namespace {

TEST(Int8Gemv, EveryKernelEqualsTheScalarDefinitionBitForBit) {
  const auto kernels = int8_kernels_available();
  ASSERT_EQ(kernels.front(), Int8Kernel::kScalar);
  // cols: partial AVX-512/AVX2 steps (200, 1000), exact steps (4096), 576 (SmolLM2's width), a
  // short row below one step (96). group 0 = one per row; 96 and 160 leave the vector scale forms
  // (scalar rest); 256 spans steps.
  const int64_t shapes[][2] = {{19, 96}, {37, 200}, {8, 576}, {5, 1000}, {9, 4096}};
  const int64_t groups[] = {16, 32, 48, 64, 96, 128, 160, 256, 0};
  uint64_t seed = 10;
  for (const auto& shape : shapes) {
    const int64_t rows = shape[0], cols = shape[1];
    auto x = testing::normal_values(static_cast<size_t>(cols), 5);
    x[3] = 9.0f;  // an outlier: its block gets a coarse scale
    for (const int bits : {2, 3, 4, 8}) {
      for (const Grid grid : {Grid::kZeroPoint, Grid::kSigned, Grid::kFloatMin, Grid::kE2m1}) {
        for (const int64_t group : groups) {
          if (group > cols || (grid == Grid::kE2m1 && bits != 4)) continue;
          const QuantizedTensor t = random_tensor(rows, cols, grid, bits, group, seed++);
          ASSERT_TRUE(int8_gemv_supported(t)) << t.scheme().to_string();
          std::vector<float> want(static_cast<size_t>(rows));
          int8_gemv_rows_reference(t, x.data(), 0, rows, want.data());
          for (const Int8Kernel kernel : kernels) {
            SCOPED_TRACE(int8_kernel_name(kernel) + " " + grid_name(grid) + " " + t.scheme().to_string() + " " +
                         std::to_string(rows) + "x" + std::to_string(cols));
            Int8GemvInput input;
            int8_gemv_prepare(t, x.data(), input, kernel);
            std::vector<float> y(static_cast<size_t>(rows), -1.0f);
            int8_gemv_rows(t, input, 0, rows, y.data());
            for (int64_t r = 0; r < rows; ++r) ASSERT_TRUE(same_bits(y[r], want[r])) << "row " << r << ": " << y[r] << " vs " << want[r];
            // Rows computed alone, in any range, give the same bits (so any thread split does).
            std::vector<float> alone(static_cast<size_t>(rows), 0.0f);
            int8_gemv_rows(t, input, rows / 2, rows / 2 + 1, alone.data());
            ASSERT_TRUE(same_bits(alone[rows / 2], want[rows / 2]));
          }
        }
      }
    }
  }
}

// The definition against independent arithmetic: W·x̂ by the f32 packed kernel (whose own error is
// tested in packed_gemv_test) within 1e-5 of Σ|W||x̂|, and W·x within the rounding bound
// Σ_c |W_rc| · dx_b / 2.
TEST(Int8Gemv, ComputesTheProductWithRoundedActivations) {
  const int64_t rows = 24, cols = 1000;
  auto x = testing::normal_values(static_cast<size_t>(cols), 8);
  x[40] = -30.0f;
  const std::vector<float> xr = int8_rounded_activations(x.data(), cols);
  uint64_t seed = 400;
  for (const int bits : {2, 3, 4, 8})
    for (const Grid grid : {Grid::kZeroPoint, Grid::kSigned, Grid::kFloatMin, Grid::kE2m1})
      for (const int64_t group : {int64_t{16}, int64_t{32}, int64_t{128}, int64_t{0}}) {
        if (grid == Grid::kE2m1 && bits != 4) continue;
        const QuantizedTensor t = random_tensor(rows, cols, grid, bits, group, seed++);
        SCOPED_TRACE(grid_name(grid) + " " + t.scheme().to_string());
        std::vector<float> y(static_cast<size_t>(rows)), f32(static_cast<size_t>(rows));
        int8_gemv_rows_reference(t, x.data(), 0, rows, y.data());
        packed_gemv_rows(t, xr.data(), 0, rows, f32.data());
        const auto w = t.dequantize();
        for (int64_t r = 0; r < rows; ++r) {
          double magnitude = 0, exact = 0, bound = 0;
          for (int64_t c = 0; c < cols; ++c) {
            const double wc = w[static_cast<size_t>(r * cols + c)];
            magnitude += std::abs(wc * xr[c]);
            exact += wc * x[c];
            // dx/2 per column, dx = max|x| over the column's block / 127.
            double amax = 0;
            for (int64_t k = c / 32 * 32; k < std::min(cols, c / 32 * 32 + 32); ++k) amax = std::max(amax, std::abs(double(x[k])));
            bound += std::abs(wc) * amax / 127 / 2;
          }
          ASSERT_NEAR(y[r], f32[r], 1e-5 * magnitude + 1e-30) << "row " << r;
          ASSERT_NEAR(y[r], exact, bound * 1.001 + 1e-5 * magnitude) << "row " << r;
        }
      }
}

TEST(Int8Gemv, RoundsEachBlockOf32ToItsOwnScale) {
  std::vector<float> x(70, 0.0f);
  x[0] = 1.0f;    // block 0: dx = 1/127
  x[1] = 0.25f;   // 31.75 steps → 32
  x[2] = -0.1f;   // -12.7 → -13
  x[40] = 127.0f; // block 1: dx = 1
  x[41] = 1.4f;   // → 1
  x[42] = -2.5f;  // a tie: → -2 (half to even)
  x[69] = -2.0f;  // the ragged third block (64..69): its own scale, dx = 2/127
  const auto r = int8_rounded_activations(x.data(), 70);
  const float d0 = 1.0f / 127.0f, d2 = 2.0f / 127.0f;
  EXPECT_EQ(r[0], d0 * 127);
  EXPECT_EQ(r[1], d0 * 32);
  EXPECT_EQ(r[2], d0 * -13);
  EXPECT_EQ(r[5], 0.0f);
  EXPECT_EQ(r[40], 127.0f);
  EXPECT_EQ(r[41], 1.0f);
  EXPECT_EQ(r[42], -2.0f);
  EXPECT_EQ(r[69], d2 * -127);
  EXPECT_EQ(r[64], 0.0f);
}

// x's preparation on AVX-512BW (round_blocks, run sums, the 4-bit step order) against the scalar
// code, bit for bit: ragged blocks and steps, an all-zero block, Inf and NaN blocks, half-way ties.
TEST(Int8Gemv, VectorPreparationEqualsTheScalarCode) {
#if defined(__x86_64__) || defined(__i386__)
  const auto kernels = int8_kernels_available();
  if (std::find(kernels.begin(), kernels.end(), Int8Kernel::kAvx512) == kernels.end())
    GTEST_SKIP() << "this CPU has no AVX-512BW";
  for (const size_t cols : {size_t{1}, size_t{17}, size_t{32}, size_t{70}, size_t{200}, size_t{576}, size_t{1000},
                            size_t{4096}}) {
    auto x = testing::normal_values(cols, cols);
    for (size_t c = 0; c < std::min<size_t>(cols, 32); ++c) x[c] = 0.0f;  // block 0 all zero
    if (cols > 64) {
      x[40] = 127.0f, x[41] = -2.5f, x[42] = 0.5f, x[43] = -0.0f;  // ties to even
      x[cols - 1] = std::numeric_limits<float>::infinity();       // the last block poisoned
      if (cols > 100) x[70] = std::numeric_limits<float>::quiet_NaN();
    }
    const size_t blocks = (cols + 31) / 32;
    std::vector<int8_t> q_scalar(cols, 99), q_vector(cols, 99);
    std::vector<float> dx_scalar(blocks), dx_vector(blocks);
    int8_detail::round_blocks_scalar(x.data(), cols, q_scalar.data(), dx_scalar.data());
    int8_detail::round_blocks_avx512(x.data(), cols, q_vector.data(), dx_vector.data());
    EXPECT_EQ(q_scalar, q_vector) << cols;
    EXPECT_EQ(0, std::memcmp(dx_scalar.data(), dx_vector.data(), blocks * sizeof(float))) << cols;  // NaNs too
    std::vector<int32_t> sums_scalar((cols + 7) / 8), sums_vector(sums_scalar.size(), -1);
    int8_detail::run_sums_scalar(q_scalar.data(), cols, 8, sums_scalar.data());
    int8_detail::run_sums8_avx512(q_scalar.data(), cols, sums_vector.data());
    EXPECT_EQ(sums_scalar, sums_vector) << cols;
    std::vector<int8_t> order_scalar(cols), order_vector(cols);
    int8_detail::permute_steps_scalar(q_scalar.data(), cols, 128, order_scalar.data());
    int8_detail::permute_steps_avx512(q_scalar.data(), cols, order_vector.data());
    EXPECT_EQ(order_scalar, order_vector) << cols;
  }
  // The extremes reach ±127 and the tie rounds to even, as RoundsEachBlockOf32ToItsOwnScale says.
  std::vector<float> x(64, 1.0f);
  x[1] = -1.0f, x[2] = 0.5f / 127.0f * 5.0f;  // 2.5 steps → 2
  std::vector<int8_t> q(64);
  std::vector<float> dx(2);
  int8_detail::round_blocks_avx512(x.data(), 64, q.data(), dx.data());
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -127);
  EXPECT_EQ(q[2], 2);
#else
  GTEST_SKIP() << "x86 only";
#endif
}

TEST(Int8Gemv, NonFiniteActivationsGiveNaNNotGarbage) {
  const QuantizedTensor t = random_tensor(3, 64, Grid::kSigned, 4, 32, 1);
  std::vector<float> x(64, 1.0f);
  x[33] = std::numeric_limits<float>::infinity();
  for (const Int8Kernel kernel : int8_kernels_available()) {
    Int8GemvInput input;
    int8_gemv_prepare(t, x.data(), input, kernel);
    std::vector<float> y(3);
    int8_gemv_rows(t, input, 0, 3, y.data());
    for (float v : y) EXPECT_TRUE(std::isnan(v)) << int8_kernel_name(kernel);
  }
}

TEST(Int8Gemv, RefusesLayoutsItHasNoKernelFor) {
  std::vector<float> x(96, 1.0f);
  Int8GemvInput input;
  // 5- to 7-bit codes, groups not a multiple of 16, g_idx, and a minifloat grid.
  for (const int bits : {5, 6, 7}) {
    const QuantizedTensor wide = random_tensor(2, 96, Grid::kZeroPoint, bits, 32, 1);
    EXPECT_FALSE(int8_gemv_supported(wide)) << bits;
    EXPECT_THROW(int8_gemv_prepare(wide, x.data(), input), Error);
  }
  const QuantizedTensor g40 = random_tensor(2, 96, Grid::kSigned, 4, 40, 1);  // groups must be whole runs of 16
  EXPECT_FALSE(int8_gemv_supported(g40));
  QuantizedTensor with_gidx = random_tensor(2, 96, Grid::kSigned, 4, 32, 1);
  std::vector<int32_t> g_idx(96);
  for (int c = 0; c < 96; ++c) g_idx[c] = (c * 7) % 3;
  with_gidx.set_g_idx(g_idx);
  EXPECT_FALSE(int8_gemv_supported(with_gidx));
  EXPECT_FALSE(int8_gemv_supported(QuantizedTensor(2, 96, QuantScheme::with_format(Format::e4m3(), 32))));
  // 4-bit grids whose levels are no small integers times 2^-f: NF4 (irrational levels). MXFP4 and NVFP4
  // (groups of 16: two scales per 32-column activation block) run.
  EXPECT_FALSE(int8_gemv_supported(QuantizedTensor(2, 96, QuantScheme::with_format(Format::nf4(), 32))));
  EXPECT_TRUE(int8_gemv_supported(QuantizedTensor(2, 96, *QuantScheme::preset("nvfp4"))));
  EXPECT_TRUE(int8_gemv_supported(QuantizedTensor(2, 96, *QuantScheme::preset("mxfp4"))));
  // An input prepared for another layout, and rows out of range.
  const QuantizedTensor a = random_tensor(2, 96, Grid::kSigned, 4, 32, 1);
  const QuantizedTensor b = random_tensor(2, 96, Grid::kSigned, 8, 32, 1);
  int8_gemv_prepare(a, x.data(), input);
  std::vector<float> y(2);
  EXPECT_THROW(int8_gemv_rows(b, input, 0, 2, y.data()), Error);
  EXPECT_THROW(int8_gemv_rows(a, input, 1, 3, y.data()), Error);
}

}  // namespace
}  // namespace lowbit
