// Cholesky wrappers: L Lᵀ = A, Uᵀ U A = I for the factor of the inverse, triangularity, and the
// errors for matrices that are not positive definite.
#include "lowbit/linalg/cholesky.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;

// A = B Bᵀ + n I for a seeded random B: symmetric positive definite, condition number moderate.
std::vector<double> random_spd(int64_t n, uint64_t seed) {
  const CounterRng rng(seed, 0);
  std::vector<double> b(static_cast<size_t>(n * n));
  for (size_t i = 0; i < b.size(); ++i) b[i] = rng.uniform(i) - 0.5;
  std::vector<double> a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = i == j ? 0.1 * static_cast<double>(n) : 0.0;
      for (int64_t k = 0; k < n; ++k) s += b[static_cast<size_t>(i * n + k)] * b[static_cast<size_t>(j * n + k)];
      a[static_cast<size_t>(i * n + j)] = s;
    }
  return a;
}

TEST(LinalgCholesky, LowerFactorReproducesTheMatrix) {
  const int64_t n = 150;
  const std::vector<double> a = random_spd(n, 1);
  std::vector<double> l = a;
  cholesky_lower(l, n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (j > i) {
        ASSERT_EQ(l[static_cast<size_t>(i * n + j)], 0.0);
      }
      double s = 0;
      for (int64_t k = 0; k <= std::min(i, j); ++k) s += l[static_cast<size_t>(i * n + k)] * l[static_cast<size_t>(j * n + k)];
      ASSERT_NEAR(s, a[static_cast<size_t>(i * n + j)], 1e-10 * a[static_cast<size_t>(i * n + i)]);
    }
}

TEST(LinalgCholesky, UpperFactorOfTheInverse) {
  for (int64_t n : {1, 2, 7, 200}) {
    SCOPED_TRACE(n);
    const std::vector<double> a = random_spd(n, 2 + static_cast<uint64_t>(n));
    const std::vector<double> u = upper_cholesky_of_inverse(a, n);
    // Upper triangular with a positive diagonal, and Uᵀ U A = I.
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_GT(u[static_cast<size_t>(i * n + i)], 0.0);
      for (int64_t j = 0; j < i; ++j) ASSERT_EQ(u[static_cast<size_t>(i * n + j)], 0.0);
    }
    std::vector<double> utu(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t k = 0; k < n; ++k) s += u[static_cast<size_t>(k * n + i)] * u[static_cast<size_t>(k * n + j)];
        utu[static_cast<size_t>(i * n + j)] = s;
      }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t k = 0; k < n; ++k) s += utu[static_cast<size_t>(i * n + k)] * a[static_cast<size_t>(k * n + j)];
        ASSERT_NEAR(s, i == j ? 1.0 : 0.0, 1e-9) << i << ", " << j;
      }
  }
  // A diagonal matrix: U = diag(1 / sqrt(a_ii)).
  const std::vector<double> u = upper_cholesky_of_inverse(std::vector<double>{4, 0, 0, 0.25}, 2);
  EXPECT_EQ(u, (std::vector<double>{0.5, 0, 0, 2}));
}

TEST(LinalgCholesky, TiledFactorsAreThreadCountIndependentAndAccurate) {
  // 600 = two full 256-tiles and a ragged one: every tile operation kind runs.
  const int64_t n = 600;
  const std::vector<double> a = random_spd(n, 9);
  set_num_threads(1);
  const std::vector<double> one = upper_cholesky_of_inverse(a, n);
  set_num_threads(2);
  const std::vector<double> two = upper_cholesky_of_inverse(a, n);
  set_num_threads(0);
  EXPECT_EQ(one, two);
  // Uᵀ U a = I, checked on a few columns of the product (the full check is O(n³) in the test).
  std::vector<double> y(static_cast<size_t>(n)), z(static_cast<size_t>(n));
  for (int64_t col : {0, 255, 256, 511, 599}) {
    for (int64_t k = 0; k < n; ++k) y[static_cast<size_t>(k)] = a[static_cast<size_t>(k * n + col)];
    for (int64_t i = 0; i < n; ++i) {  // z = U y
      double s = 0;
      for (int64_t k = i; k < n; ++k) s += one[static_cast<size_t>(i * n + k)] * y[static_cast<size_t>(k)];
      z[static_cast<size_t>(i)] = s;
    }
    for (int64_t i = 0; i < n; ++i) {  // Uᵀ z
      double s = 0;
      for (int64_t k = 0; k <= i; ++k) s += one[static_cast<size_t>(k * n + i)] * z[static_cast<size_t>(k)];
      ASSERT_NEAR(s, i == col ? 1.0 : 0.0, 1e-10) << i << ", " << col;
    }
  }
  // A non-positive-definite trailing block is still found through the tiles: in J a J it is the
  // leading block, found by the first diagonal tile.
  std::vector<double> b = a;
  b[static_cast<size_t>((n - 1) * n + n - 1)] = -1;
  EXPECT_TRUE(contains(error_from([&] { upper_cholesky_of_inverse(b, n); }), "trailing block from column 599 (1x1)"));
  // ... and one in the middle by a later tile: row/column 300 a copy of 299 with the diagonal
  // lowered by 1, so the 301st pivot is -1.
  b = a;
  for (int64_t k = 0; k < n; ++k) {
    b[static_cast<size_t>(300 * n + k)] = a[static_cast<size_t>(299 * n + k)];
    b[static_cast<size_t>(k * n + 300)] = a[static_cast<size_t>(k * n + 299)];
  }
  b[static_cast<size_t>(300 * n + 300)] = a[static_cast<size_t>(299 * n + 299)] - 1;
  std::vector<double> lower = b;
  EXPECT_TRUE(contains(error_from([&] { cholesky_lower(lower, n); }), "the leading 301x301 block is not"));
}

TEST(LinalgCholesky, RefusesMatricesThatAreNotPositiveDefinite) {
  // [[1, 2], [2, 1]] has eigenvalues 3 and -1.
  std::vector<double> a = {1, 2, 2, 1};
  EXPECT_TRUE(contains(error_from([&] { cholesky_lower(a, 2); }), "not positive definite: the leading 2x2 block"));
  // Trailing block [[1, 0], [0, -1]] fails first in the reversed order: column 2 of 3.
  const std::vector<double> b = {2, 0, 0, 0, 1, 0, 0, 0, -1};
  EXPECT_TRUE(contains(error_from([&] { upper_cholesky_of_inverse(b, 3); }), "trailing block from column 2"));
  EXPECT_TRUE(contains(error_from([&] { upper_cholesky_of_inverse(std::vector<double>{1, NAN, NAN, 1}, 2); }),
                       "entry 1 is not finite"));
  EXPECT_TRUE(contains(error_from([&] { upper_cholesky_of_inverse(std::vector<double>{1, 0, 0}, 2); }),
                       "expected 2x2 entries, found 3"));
}

}  // namespace
}  // namespace lowbit
