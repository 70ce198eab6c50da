// Calibration statistics: the Hessian against a plain double XᵀX (both precisions, ragged tiles
// and chunks, batch by batch), per-channel sums, and the H-weighted error against ‖X Δᵀ‖².
#include "lowbit/compress/statistics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "compress/compress_test_util.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::correlated_activations;
using testing::error_from;
using testing::normal_values;

TEST(CalibrationStatistics, HessianMatchesPlainGramBatchByBatch) {
  const int64_t rows = 600, cols = 300;  // chunks of 256 rows and tiles of 256 columns, both ragged
  const std::vector<float> x = correlated_activations(rows, cols, 1);
  const std::vector<double> expected = testing::plain_gram(x, rows, cols);
  for (GramPrecision precision : {GramPrecision::kFloatChunks, GramPrecision::kDouble}) {
    std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
    // Two batches of 350 and 250 rows.
    accumulate_hessian(h, std::span<const float>(x).subspan(0, static_cast<size_t>(350 * cols)), 350, cols, precision);
    accumulate_hessian(h, std::span<const float>(x).subspan(static_cast<size_t>(350 * cols)), 250, cols, precision);
    const double tolerance = precision == GramPrecision::kDouble ? 1e-12 : 2e-5;
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const size_t k = static_cast<size_t>(i * cols + j);
        // Relative to sqrt(H_ii H_jj) (bounds |H_ij|; the sum of |x_i x_j| is no larger).
        const double bound = std::sqrt(expected[static_cast<size_t>(i * cols + i)] * expected[static_cast<size_t>(j * cols + j)]);
        ASSERT_NEAR(h[k], expected[k], tolerance * bound) << i << ", " << j;
        ASSERT_EQ(h[k], h[static_cast<size_t>(j * cols + i)]);  // exactly symmetric
      }
  }
}

TEST(CalibrationStatistics, HessianIdenticalForOneAndTwoThreads) {
  const int64_t rows = 300, cols = 520;
  const std::vector<float> x = normal_values(static_cast<size_t>(rows * cols), 2);
  std::vector<double> one(static_cast<size_t>(cols * cols), 0.0), two = one;
  set_num_threads(1);
  accumulate_hessian(one, x, rows, cols);
  set_num_threads(2);
  accumulate_hessian(two, x, rows, cols);
  set_num_threads(0);
  EXPECT_EQ(one, two);
}

TEST(CalibrationStatistics, RefusesMismatchedOrNonFiniteInput) {
  std::vector<double> h(16, 0.0);
  std::vector<float> x(12, 1.0f);
  EXPECT_TRUE(contains(error_from([&] { accumulate_hessian(h, x, 4, 4); }), "x has 12 values for 4 rows x 4 columns"));
  EXPECT_TRUE(contains(error_from([&] { accumulate_hessian(h, x, 4, 3); }), "h has 16 entries, expected 3x3"));
  x[7] = INFINITY;
  EXPECT_TRUE(contains(error_from([&] { accumulate_hessian(h, x, 3, 4); }), "x[1, 3] is not finite"));
  ChannelStatistics stats(4);
  EXPECT_TRUE(contains(error_from([&] { stats.add(x, 2); }), "batch has 12 values for 2 rows x 4 channels"));
  EXPECT_TRUE(contains(error_from([&] { stats.add(x, 3); }), "x[1, 3] is not finite"));
}

TEST(CalibrationStatistics, ChannelMeans) {
  ChannelStatistics stats(3);
  stats.add(std::vector<float>{1, -2, 0, -3, 4, 0}, 2);
  stats.add(std::vector<float>{2, 0, 0}, 1);
  EXPECT_EQ(stats.count(), 3);
  EXPECT_EQ(stats.mean_abs(), (std::vector<float>{2, 2, 0}));
  EXPECT_EQ(stats.mean_square(), (std::vector<float>{14.0f / 3, 20.0f / 3, 0}));
  EXPECT_EQ(std::vector<float>(stats.max_abs().begin(), stats.max_abs().end()), (std::vector<float>{3, 4, 0}));
  // Many channels and threads: the same sums.
  const int64_t rows = 64, cols = 1500;
  const std::vector<float> x = normal_values(static_cast<size_t>(rows * cols), 3);
  ChannelStatistics a(cols), b(cols);
  set_num_threads(1);
  a.add(x, rows);
  set_num_threads(2);
  b.add(x, rows);
  set_num_threads(0);
  EXPECT_EQ(a.mean_square(), b.mean_square());
  double direct = 0;
  for (int64_t r = 0; r < rows; ++r) direct += std::fabs(static_cast<double>(x[static_cast<size_t>(r * cols + 777)]));
  EXPECT_DOUBLE_EQ(a.sum_abs()[777], direct);
}

TEST(CalibrationStatistics, HessianWeightedErrorIsTheOutputError) {
  const int64_t tokens = 200, rows = 70, cols = 90;
  const std::vector<float> x = correlated_activations(tokens, cols, 4);
  const std::vector<float> w = normal_values(static_cast<size_t>(rows * cols), 5);
  std::vector<float> w_hat = w;
  for (size_t i = 0; i < w_hat.size(); ++i) w_hat[i] += 0.01f * static_cast<float>(static_cast<int>(i % 7) - 3);
  std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
  accumulate_hessian(h, x, tokens, cols, GramPrecision::kDouble);
  const double expected = testing::output_error(x, tokens, w, w_hat, rows, cols);
  EXPECT_NEAR(hessian_weighted_error(w, w_hat, rows, cols, h), expected, 1e-9 * expected);
}

}  // namespace
}  // namespace lowbit
