// The decode GEMV against a double-precision reference on every compiled SIMD target,
// for F32/F16/BF16 weights, with row counts and widths that exercise every tail.
#include "lowbit/kernels/dense_gemv.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/core/half.h"
#include "lowbit/core/random.h"

namespace lowbit {
namespace {

struct Case {
  DType dtype;
  int64_t rows, in;
};

std::vector<uint8_t> make_weights(DType dtype, int64_t count, std::vector<double>& exact) {
  const CounterRng rng(3, static_cast<uint64_t>(dtype));
  std::vector<uint8_t> bytes(static_cast<size_t>(count) * dtype_size(dtype));
  exact.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const float value = rng.uniform(static_cast<uint64_t>(i)) * 2 - 1;
    if (dtype == DType::kF32) {
      std::memcpy(&bytes[i * 4], &value, 4);
      exact[i] = value;
    } else {
      const uint16_t bits = dtype == DType::kF16 ? f32_to_f16_bits(value) : f32_to_bf16_bits(value);
      std::memcpy(&bytes[i * 2], &bits, 2);
      exact[i] = dtype == DType::kF16 ? f16_bits_to_f32(bits) : bf16_bits_to_f32(bits);
    }
  }
  return bytes;
}

TEST(DenseGemv, MatchesDoubleReferenceOnEveryTarget) {
  const std::vector<Case> cases = {{DType::kF32, 7, 1}, {DType::kF32, 9, 37}, {DType::kBF16, 13, 300},
                                   {DType::kF16, 5, 129}, {DType::kBF16, 4, 64}, {DType::kF16, 11, 1000}};
  for (uint64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(hwy::TargetName(target)) + " " + std::string(dtype_name(c.dtype)) + " rows " +
                   std::to_string(c.rows) + " in " + std::to_string(c.in));
      std::vector<double> exact;
      const auto weights = make_weights(c.dtype, c.rows * c.in, exact);
      std::vector<float> x(static_cast<size_t>(c.in));
      for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i) + 0.1);
      std::vector<float> y(static_cast<size_t>(c.rows));
      dense_gemv_rows(c.dtype, weights.data(), c.in, x.data(), 0, c.rows, y.data());
      for (int64_t r = 0; r < c.rows; ++r) {
        double expected = 0, magnitude = 0;
        for (int64_t i = 0; i < c.in; ++i) {
          expected += exact[r * c.in + i] * x[i];
          magnitude += std::abs(exact[r * c.in + i] * x[i]);
        }
        EXPECT_NEAR(y[r], expected, 1e-6 * magnitude + 1e-30) << "row " << r;
        // Grouping invariance: the row computed on its own gives the same bits.
        std::vector<float> alone(static_cast<size_t>(c.rows), 0.0f);
        dense_gemv_rows(c.dtype, weights.data(), c.in, x.data(), r, r + 1, alone.data());
        EXPECT_EQ(std::memcmp(&alone[r], &y[r], sizeof(float)), 0) << "row " << r;
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace lowbit
