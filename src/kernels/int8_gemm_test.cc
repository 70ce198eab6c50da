// The int8-activation prefill GEMM: every kernel this CPU runs equals the scalar definition
// (int8_gemm_reference, computed straight from the packed codes) bit for bit, over 1- to 7-bit codes
// with zero points, two's complement and float minimums, e2m1 and 8-bit two's complement, groups of 16..256 and
// per-row (16 and 48: blocks split into 16-column segments of different groups), ragged rows (partial panels), ragged columns (partial blocks), token counts that leave
// partial register tiles, and any split of the rows. The definition is checked against independent
// arithmetic (the one-token kernel's W·x̂), non-finite activations give NaN, and what the kernel
// cannot run is refused.
#include "lowbit/kernels/int8_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/kernels/int8_gemv.h"
#include "compress/compress_test_util.h"
#include "kernels/int8_test_util.h"

namespace lowbit {
namespace {

struct Case {
  Grid grid;
  int bits;
};
const Case kCases[] = {{Grid::kZeroPoint, 4}, {Grid::kSigned, 4}, {Grid::kFloatMin, 4}, {Grid::kSigned, 8},
                       {Grid::kE2m1, 4},      {Grid::kZeroPoint, 2}, {Grid::kSigned, 3}, {Grid::kZeroPoint, 3},
                       {Grid::kFloatMin, 5},  {Grid::kSigned, 6},   {Grid::kZeroPoint, 7}, {Grid::kZeroPoint, 1}};

TEST(Int8Gemm, EveryKernelEqualsTheDefinitionBitForBit) {
  const auto kernels = int8_kernels_available();
  // {rows, cols, tokens}: partial panels (19, 37, 33 rows), a partial block (200, 1000 cols), SmolLM2's
  // 576, one panel pair exactly (32 rows); tokens leaving 1, 2 and 3 after the 4-token tiles.
  const int64_t shapes[][3] = {{19, 96, 5}, {37, 200, 6}, {32, 576, 7}, {33, 1000, 3}, {8, 4096, 9}};
  // Groups of 16 and 48 split blocks into 16-column segments (NVFP4's layout is e2m1 g16).
  const int64_t groups[] = {16, 32, 48, 64, 128, 256, 0};
  uint64_t seed = 40;
  for (const auto& shape : shapes) {
    const int64_t rows = shape[0], cols = shape[1], tokens = shape[2];
    auto x = testing::normal_values(static_cast<size_t>(tokens * cols), 6);
    x[3] = 9.0f;  // an outlier: its block gets a coarse scale
    for (const Case& c : kCases) {
      for (const int64_t group : groups) {
        if (group > cols) continue;
        const QuantizedTensor t = random_tensor(rows, cols, c.grid, c.bits, group, seed++);
        ASSERT_TRUE(int8_gemm_supported(t)) << t.scheme().to_string();
        const int64_t stride = rows + 3;  // a wider output row than the tensor's
        std::vector<float> want(static_cast<size_t>(tokens * stride), -1.0f);
        int8_gemm_reference(t, x.data(), tokens, 0, rows, want.data(), stride);
        for (const Int8Kernel kernel : kernels) {
          SCOPED_TRACE(int8_kernel_name(kernel) + " " + grid_name(c.grid) + " " + t.scheme().to_string() + " " +
                       std::to_string(rows) + "x" + std::to_string(cols) + ", " + std::to_string(tokens) + " tokens");
          Int8GemmInput input;
          int8_gemm_prepare(t, x.data(), tokens, input, kernel);
          std::vector<float> y(static_cast<size_t>(tokens * stride), -1.0f);
          int8_gemm_rows(t, input, 0, rows, y.data(), stride);
          for (int64_t k = 0; k < tokens; ++k)
            for (int64_t r = 0; r < stride; ++r)  // the 3 padding columns stay untouched (-1)
              ASSERT_TRUE(same_bits(y[k * stride + r], want[k * stride + r]))
                  << "token " << k << " row " << r << ": " << y[k * stride + r] << " vs " << want[k * stride + r];
          // Rows in two uneven ranges (so panels start mid-tensor) give the same bits.
          std::vector<float> split(static_cast<size_t>(tokens * stride), -1.0f);
          int8_gemm_rows(t, input, 0, rows / 3, split.data(), stride);
          int8_gemm_rows(t, input, rows / 3, rows, split.data(), stride);
          for (size_t i = 0; i < split.size(); ++i) ASSERT_TRUE(same_bits(split[i], want[i])) << "split, index " << i;
        }
      }
    }
  }
}

// The definition against independent arithmetic: each token's row equals W·x̂ in double from the
// dequantized weights, and (4 and 8 bits) the one-token kernel's W·x̂ (same x̂, another summation
// order), within f32 rounding, 1e-5 of Σ|W||x̂|.
TEST(Int8Gemm, EqualsTheOneTokenProductUpToRounding) {
  const int64_t rows = 21, tokens = 5;
  uint64_t seed = 70;
  for (const int64_t cols : {int64_t{64}, int64_t{172}, int64_t{1000}})  // stories260K's widths, and wider
  for (const Case& c : kCases)
    for (const int64_t group : {int64_t{16}, int64_t{32}, int64_t{48}, int64_t{128}, int64_t{0}}) {
      if (group > cols) continue;
      auto x = testing::normal_values(static_cast<size_t>(tokens * cols), 8);
      x[40] = -30.0f;
      const QuantizedTensor t = random_tensor(rows, cols, c.grid, c.bits, group, seed++);
      SCOPED_TRACE(grid_name(c.grid) + " " + t.scheme().to_string());
      Int8GemmInput input;
      int8_gemm_prepare(t, x.data(), tokens, input);
      std::vector<float> y(static_cast<size_t>(tokens * rows));
      int8_gemm_rows(t, input, 0, rows, y.data(), rows);
      std::vector<float> w(static_cast<size_t>(cols));
      for (int64_t k = 0; k < tokens; ++k) {
        const float* xk = x.data() + k * cols;
        const bool gemv = int8_gemv_supported(t);  // 4- and 8-bit codes
        std::vector<float> one(static_cast<size_t>(rows));
        if (gemv) int8_gemv_rows_reference(t, xk, 0, rows, one.data());
        const auto xr = int8_rounded_activations(xk, cols);
        for (int64_t r = 0; r < rows; ++r) {
          t.dequantize_row(r, w);
          double magnitude = 0, exact = 0;  // W·x̂ in double from the dequantized row
          for (int64_t col = 0; col < cols; ++col) {
            magnitude += std::abs(double(w[col]) * xr[col]);
            exact += double(w[col]) * xr[col];
          }
          ASSERT_NEAR(y[k * rows + r], exact, 1e-5 * magnitude) << "token " << k << " row " << r;
          if (gemv) {
            ASSERT_NEAR(y[k * rows + r], one[r], 1e-5 * magnitude) << "token " << k << " row " << r;
          }
        }
      }
    }
}

TEST(Int8Gemm, NonFiniteActivationsGiveNaNNotGarbage) {
  const QuantizedTensor t = random_tensor(3, 64, Grid::kSigned, 4, 32, 1);
  std::vector<float> x(2 * 64, 1.0f);
  x[64 + 33] = std::numeric_limits<float>::infinity();  // token 1 only
  for (const Int8Kernel kernel : int8_kernels_available()) {
    Int8GemmInput input;
    int8_gemm_prepare(t, x.data(), 2, input, kernel);
    std::vector<float> y(6);
    int8_gemm_rows(t, input, 0, 3, y.data(), 3);
    for (int r = 0; r < 3; ++r) {
      EXPECT_TRUE(std::isfinite(y[r])) << int8_kernel_name(kernel);
      EXPECT_TRUE(std::isnan(y[3 + r])) << int8_kernel_name(kernel);
    }
  }
}

TEST(Int8Gemm, RefusesWhatItCannotRun) {
  std::vector<float> x(2 * 96, 1.0f);
  Int8GemmInput input;
  // 8-bit codes with zero points or minimums (v = u − z can leave int8), groups of 40 (not whole
  // 16-column segments), FP8 and NF4 elements (levels that are not small integers).
  for (const Grid grid : {Grid::kZeroPoint, Grid::kFloatMin}) {
    const QuantizedTensor t = random_tensor(2, 96, grid, 8, 32, 1);
    EXPECT_FALSE(int8_gemm_supported(t)) << grid_name(grid);
    EXPECT_THROW(int8_gemm_prepare(t, x.data(), 2, input), Error);
  }
  for (const Format& f : {Format::e4m3(), Format::nf4()}) {
    QuantizedTensor t(2, 96, QuantScheme::with_format(f, 32));
    EXPECT_FALSE(int8_gemm_supported(t)) << f.to_string();
  }
  EXPECT_FALSE(int8_gemm_supported(random_tensor(2, 96, Grid::kSigned, 4, 40, 1)));
  // An input prepared for another layout, rows out of range, a short output stride.
  const QuantizedTensor a = random_tensor(2, 96, Grid::kSigned, 4, 32, 1);
  const QuantizedTensor b = random_tensor(2, 96, Grid::kSigned, 8, 32, 1);
  int8_gemm_prepare(a, x.data(), 2, input);
  std::vector<float> y(4);
  EXPECT_THROW(int8_gemm_rows(b, input, 0, 2, y.data(), 2), Error);
  EXPECT_THROW(int8_gemm_rows(a, input, 1, 3, y.data(), 2), Error);
  EXPECT_THROW(int8_gemm_rows(a, input, 0, 2, y.data(), 1), Error);
  EXPECT_THROW(int8_gemm_reference(a, x.data(), 2, 0, 2, y.data(), 1), Error);
}

}  // namespace
}  // namespace lowbit
