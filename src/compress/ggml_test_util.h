// Test-only helpers shared by the GGUF block-type tests (ggml_blocks_test.cc, ggml_kquants_test.cc):
// heavy-tailed weights, ggml's decoding of packed bytes, bitwise comparison and squared errors.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "compress/compress_test_util.h"
#include "lowbit/numerics/ggml_quants.h"

namespace lowbit::testing {

// Weights with a heavy tail: most values small, a few outliers of either sign per row; with
// `quiet_group`, columns 64..95 twenty times smaller (a group whose scale is far below its neighbours').
inline std::vector<float> heavy_tailed(int64_t rows, int64_t cols, uint64_t seed, bool quiet_group = false) {
  std::vector<float> w = normal_values(static_cast<size_t>(rows * cols), seed, 0.02f);
  for (int64_t r = 0; r < rows; ++r) {
    w[static_cast<size_t>(r * cols + (7 * r) % cols)] = 0.15f;
    w[static_cast<size_t>(r * cols + (11 * r + 40) % cols)] = -0.11f;
    if (quiet_group)
      for (int64_t c = 64; c < 96 && c < cols; ++c) w[static_cast<size_t>(r * cols + c)] *= 0.05f;
  }
  return w;
}

// ggml's decoding (lowbit's bit-exact copy of dequantize_row_*) of `count` values of `type`.
inline std::vector<float> ggml_decode(GgmlType type, const std::vector<std::byte>& bytes, size_t count) {
  std::vector<float> out(count);
  ggml_dequantize(type, bytes, out);
  return out;
}

// Equal bit for bit (with `signed_zeros` false, +0 and −0 count alike: a k-quant's zero scale d·0
// keeps d's sign in ggml's decoding, lowbit holds it as +0).
inline void expect_bitwise_equal(const std::vector<float>& a, const std::vector<float>& b, const std::string& what,
                                 bool signed_zeros = true) {
  ASSERT_EQ(a.size(), b.size()) << what;
  const float fold = signed_zeros ? -0.0f : 0.0f;  // x + (−0) keeps x's zero sign; x + 0 makes −0 +0
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i] + fold), std::bit_cast<uint32_t>(b[i] + fold))
        << what << " value " << i << ": " << a[i] << " vs " << b[i];
}

// Σ importance_c (w − q)², importance per column (1 when empty).
inline double squared_error(const std::vector<float>& w, const std::vector<float>& q, int64_t cols,
                            const std::vector<float>& importance = {}) {
  double e = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - q[i];
    e += (importance.empty() ? 1.0 : importance[i % static_cast<size_t>(cols)]) * d * d;
  }
  return e;
}

}  // namespace lowbit::testing
