// Rounding-mode names, and the statistics of stochastic rounding over 2^20 draws: unbiased
// (E[round(x)] = x) for kStochastic, midpoint-centred for kStochasticEqual, within 5 standard
// errors — a test that fails when the probability is off by more than ~0.25% of a step.
#include "lowbit/numerics/rounding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/numerics/format.h"
#include "lowbit/numerics/quantize.h"

namespace lowbit {
namespace {

TEST(RoundingNames, ParseAndPrint) {
  for (Rounding mode : kAllRoundings) EXPECT_EQ(parse_rounding(rounding_name(mode)), mode);
  EXPECT_EQ(parse_rounding("RNE"), Rounding::kNearestEven);
  EXPECT_EQ(parse_rounding("nearest_away"), Rounding::kNearestAway);
  EXPECT_EQ(parse_rounding("sr"), Rounding::kStochastic);
  EXPECT_EQ(parse_rounding("floor"), Rounding::kTowardNegative);
  EXPECT_FALSE(parse_rounding("sideways"));
  try {
    parse_rounding_or_throw("sideways");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stochastic"), std::string::npos) << e.what();
  }
}

struct Draws {
  double mean = 0;
  double up_fraction = 0;
};

// Rounds x 2^20 times (each element draws its own random bits) and summarizes.
Draws draw(const Format& format, float x, Rounding mode, uint64_t seed) {
  const size_t n = size_t{1} << 20;
  std::vector<float> in(n, x), out(n);
  quantize_dequantize(in, out, format, mode, {seed, 1, 0});
  const float lo = format.quantize(x, Rounding::kTowardNegative), hi = format.quantize(x, Rounding::kTowardPositive);
  double sum = 0;
  size_t ups = 0;
  for (float v : out) {
    EXPECT_TRUE(v == lo || v == hi) << format.to_string() << " x=" << x << " gave " << v;
    sum += v;
    ups += v == hi;
  }
  return {sum / n, static_cast<double>(ups) / n};
}

TEST(RoundingStochastic, UnbiasedOverAMillionDraws) {
  struct Case {
    Format format;
    float x;
  };
  const std::vector<Case> cases = {
      {Format::e4m3(), 1.03f},       {Format::e4m3(), -300.7f},    {Format::e4m3(), 0x1.3p-8f},  // subnormal
      {Format::e2m1(), 2.2f},        {Format::e2m1(), -0.1f},      {Format::int_symmetric(4), 3.9f},
      {Format::bf16(), 1.0f + 0x1.2p-9f}, {Format::nf4(), 0.3f},    {Format::ue8m0(), 5.0f},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    const double lo = c.format.quantize(c.x, Rounding::kTowardNegative);
    const double hi = c.format.quantize(c.x, Rounding::kTowardPositive);
    ASSERT_LT(lo, hi) << c.format.to_string() << " " << c.x;
    const double p = (c.x - lo) / (hi - lo);
    const double standard_error = (hi - lo) * std::sqrt(p * (1 - p) / (1 << 20));
    const Draws sr = draw(c.format, c.x, Rounding::kStochastic, seed++);
    EXPECT_NEAR(sr.mean, c.x, 5 * standard_error) << c.format.to_string() << " x=" << c.x << " p=" << p;
    EXPECT_NEAR(sr.up_fraction, p, 5 * std::sqrt(p * (1 - p) / (1 << 20))) << c.format.to_string() << " " << c.x;
    // Equal-probability SR is centred on the midpoint, so it is biased unless p = 1/2.
    const Draws equal = draw(c.format, c.x, Rounding::kStochasticEqual, seed++);
    EXPECT_NEAR(equal.up_fraction, 0.5, 5 * 0.5 / 1024) << c.format.to_string() << " " << c.x;
    EXPECT_NEAR(equal.mean, (lo + hi) / 2, 5 * 0.5 * (hi - lo) / 1024) << c.format.to_string() << " " << c.x;
  }
}

TEST(RoundingStochastic, MeanErrorOfAWholeTensorIsZero) {
  // Round-to-nearest has a systematic error on this ramp (its values sit just above grid
  // points); stochastic rounding's mean error vanishes.
  const size_t n = size_t{1} << 20;
  std::vector<float> in(n), out(n);
  for (size_t i = 0; i < n; ++i) in[i] = 1.03f + 0.125f * static_cast<float>(i % 4);  // e2m3: step 0.125
  const Format format = Format::e2m3();
  quantize_dequantize(in, out, format, Rounding::kStochastic, {42, 0, 0});
  double error = 0, nearest_error = 0;
  for (size_t i = 0; i < n; ++i) {
    error += out[i] - in[i];
    nearest_error += format.quantize(in[i]) - in[i];
  }
  EXPECT_NEAR(error / n, 0.0, 5 * 0.0625 / 1024);
  EXPECT_NEAR(nearest_error / n, -0.03, 1e-6);
}

TEST(RoundingStochastic, SeedsAndStreamsGiveDifferentDraws) {
  std::vector<float> in(4096, 1.0625f), a(4096), b(4096), c(4096), again(4096);
  const Format format = Format::e2m1();
  quantize_dequantize(in, a, format, Rounding::kStochastic, {1, 0, 0});
  quantize_dequantize(in, b, format, Rounding::kStochastic, {2, 0, 0});
  quantize_dequantize(in, c, format, Rounding::kStochastic, {1, 1, 0});
  quantize_dequantize(in, again, format, Rounding::kStochastic, {1, 0, 0});
  EXPECT_EQ(a, again);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace lowbit
