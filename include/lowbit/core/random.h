// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC'11).
//
// Why counter-based: the value drawn for element i of stream s under seed k is a pure
// function philox(counter = (i/4, s), key = k)[i%4], so stochastic rounding and random
// sampling give bit-identical results whatever the thread count or chunking, and any
// element can be regenerated without replaying a sequence.
#pragma once

#include <array>
#include <cstdint>

namespace lowbit {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// The Philox4x32 bijection with 10 rounds.
PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key);

class CounterRng {
 public:
  // `stream` separates independent uses under one seed (e.g. one stream per tensor).
  CounterRng(uint64_t seed, uint64_t stream);

  // 32 random bits for position `index` of this stream.
  uint32_t bits(uint64_t index) const;
  // Uniform in [0, 1) with 24 bits of resolution (exactly representable in f32).
  float uniform(uint64_t index) const { return static_cast<float>(bits(index) >> 8) * 0x1p-24f; }
  // Four consecutive 32-bit words for counter block `block` (positions 4*block .. 4*block+3).
  PhiloxCounter block(uint64_t block) const;

 private:
  PhiloxKey key_;
  uint64_t stream_;
};

}  // namespace lowbit
