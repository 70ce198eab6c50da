#include "lowbit/core/random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace lowbit {
namespace {

// Known-answer vectors from Random123's kat_vectors (philox4x32 with 10 rounds):
// counter, key -> output.
TEST(RandomTest, Philox4x32_10KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(RandomTest, CounterLayoutIsBlockThenStreamKeyedBySeed) {
  // The documented layout: counter = (block lo, block hi, stream lo, stream hi), key = seed.
  const uint64_t seed = 0x299f31d0a4093822ull, stream = 0x0370734413198a2eull, block = 0x85a308d3243f6a88ull;
  const CounterRng rng(seed, stream);
  EXPECT_EQ(rng.block(block), (PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
  EXPECT_EQ(CounterRng(0, 0).block(0), (PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  // bits(index) reads word index % 4 of block index / 4.
  const uint64_t small_block = 0x0123456789ABCDEull;
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(rng.bits(small_block * 4 + i), rng.block(small_block)[i]);
}

TEST(RandomTest, BitsAreReproducibleAndRandomAccess) {
  const CounterRng a(42, 7), b(42, 7);
  std::vector<uint32_t> forward(1000);
  for (uint64_t i = 0; i < forward.size(); ++i) forward[i] = a.bits(i);
  for (uint64_t i = forward.size(); i-- > 0;) ASSERT_EQ(b.bits(i), forward[i]) << i;  // any order
  for (uint64_t i = 0; i < forward.size(); ++i) EXPECT_EQ(a.bits(i), b.block(i / 4)[i % 4]);
}

// Number of positions among the first n where the two generators agree.
int agreements(const CounterRng& a, const CounterRng& b, uint64_t offset = 0, int n = 1000) {
  int same = 0;
  for (int i = 0; i < n; ++i) same += a.bits(offset + i) == b.bits(offset + i);
  return same;
}

TEST(RandomTest, SeedsStreamsAndIndicesGiveDifferentValues) {
  const CounterRng base(1, 0);
  EXPECT_LE(agreements(base, CounterRng(2, 0)), 2);
  EXPECT_LE(agreements(base, CounterRng(1, 1)), 2);
  // The high halves of seed and stream matter too.
  EXPECT_LE(agreements(base, CounterRng(1 + (uint64_t{1} << 32), 0)), 2);
  EXPECT_LE(agreements(base, CounterRng(1, uint64_t{1} << 32)), 2);
  // So do the high bits of the index (the block counter is 64 bits wide).
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) same += base.bits(i) == base.bits(i + (uint64_t{1} << 34));
  EXPECT_LE(same, 2);
  // Within one stream, values do not repeat in a short window.
  std::vector<uint32_t> seen;
  for (uint64_t i = 0; i < 4096; ++i) seen.push_back(base.bits(i));
  std::sort(seen.begin(), seen.end());
  const auto distinct = std::unique(seen.begin(), seen.end()) - seen.begin();
  EXPECT_GE(distinct, 4090);  // 4096 draws of 32 bits collide with probability ~0.002
}

TEST(RandomTest, UniformIsInUnitIntervalWithTheRightMean) {
  const CounterRng rng(2024, 3);
  constexpr int kDraws = 1'000'000;
  double sum = 0;
  float low = 1, high = 0;
  std::vector<int> bit_counts(32);
  for (int i = 0; i < kDraws; ++i) {
    const float u = rng.uniform(i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    ASSERT_EQ(u, static_cast<float>(rng.bits(i) >> 8) * 0x1p-24f);
    sum += u;
    low = std::min(low, u);
    high = std::max(high, u);
    const uint32_t bits = rng.bits(i);
    for (int b = 0; b < 32; ++b) bit_counts[b] += (bits >> b) & 1u;
  }
  // Mean of U[0,1): 1/2 - 2^-25 with 24-bit resolution; sd of the mean sqrt(1/12/n).
  const double sigma = std::sqrt(1.0 / 12.0 / kDraws);
  EXPECT_NEAR(sum / kDraws, 0.5, 5 * sigma);
  EXPECT_LT(low, 1e-4f);
  EXPECT_GT(high, 1 - 1e-4f);
  // Each bit is set half the time (binomial, sd = sqrt(n)/2 = 500).
  for (int b = 0; b < 32; ++b) EXPECT_NEAR(bit_counts[b], kDraws / 2, 5 * 500) << "bit " << b;
}

TEST(RandomTest, UniformReachesNeitherOneNorAboveForExtremeBits) {
  // The largest 32-bit value maps to 1 - 2^-24, which is < 1 in float.
  EXPECT_LT(static_cast<float>(0xFFFFFFFFu >> 8) * 0x1p-24f, 1.0f);
}

}  // namespace
}  // namespace lowbit
