// Bit packing: the documented byte order on worked examples and against a bit-by-bit reference,
// round trips for every width 1..8 (and 9..16 from 16-bit codes), and malformed input.
#include "lowbit/numerics/packing.h"

#include <gtest/gtest.h>

#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/random.h"

namespace lowbit {
namespace {

// Stream bit k = bit (k mod 8) of byte k/8; code i = stream bits [i*b, (i+1)*b).
template <class Code>
std::vector<uint8_t> reference_pack(const std::vector<Code>& codes, int bits) {
  std::vector<uint8_t> out((codes.size() * bits + 7) / 8, 0);
  for (size_t i = 0; i < codes.size(); ++i)
    for (int j = 0; j < bits; ++j)
      if ((codes[i] >> j) & 1) {
        const size_t k = i * bits + j;
        out[k / 8] |= static_cast<uint8_t>(1u << (k % 8));
      }
  return out;
}

TEST(PackingTest, WorkedExamplesOfTheByteOrder) {
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{1, 2, 3}, 4), (std::vector<uint8_t>{0x21, 0x03}));
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 0}, 3), (std::vector<uint8_t>{0xD1, 0x58, 0x1F}));
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{1, 0, 1, 1, 0, 0, 0, 0, 1}, 1), (std::vector<uint8_t>{0x0D, 0x01}));
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{3, 0, 1, 2, 3}, 2), (std::vector<uint8_t>{0x93, 0x03}));
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{1, 2, 3, 4, 5}, 5), (std::vector<uint8_t>{0x41, 0x0C, 0x52, 0x00}));
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{0x3F, 0x00, 0x15}, 6), (std::vector<uint8_t>{0x3F, 0x50, 0x01}));
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{0x7F, 0x01, 0x40}, 7), (std::vector<uint8_t>{0xFF, 0x00, 0x10}));
  EXPECT_EQ(pack_bits(std::vector<uint8_t>{0xAB, 0x01}, 8), (std::vector<uint8_t>{0xAB, 0x01}));
  EXPECT_TRUE(pack_bits(std::vector<uint8_t>{}, 3).empty());
}

TEST(PackingTest, RoundTripsEveryWidth) {
  const CounterRng rng(11, 0);
  uint64_t draw = 0;
  for (int bits = 1; bits <= 8; ++bits) {
    for (size_t count : {0u, 1u, 2u, 7u, 8u, 9u, 15u, 16u, 17u, 63u, 64u, 65u, 1000u, 200003u}) {
      std::vector<uint8_t> codes(count);
      for (auto& c : codes) c = static_cast<uint8_t>(rng.bits(draw++) & ((1u << bits) - 1));
      std::vector<uint8_t> packed(packed_bytes(count, bits));
      pack_bits(codes, bits, packed);
      ASSERT_EQ(packed, reference_pack(codes, bits)) << bits << " bits, " << count;
      std::vector<uint8_t> back(count);
      unpack_bits(packed, bits, back);
      ASSERT_EQ(back, codes) << bits << " bits, " << count;
    }
  }
  for (int bits = 1; bits <= 16; ++bits) {
    std::vector<uint16_t> codes(1001);
    for (auto& c : codes) c = static_cast<uint16_t>(rng.bits(draw++) & ((1u << bits) - 1));
    std::vector<uint8_t> packed(packed_bytes(codes.size(), bits));
    pack_bits(codes, bits, packed);
    ASSERT_EQ(packed, reference_pack(codes, bits)) << bits;
    std::vector<uint16_t> back(codes.size());
    unpack_bits(packed, bits, back);
    ASSERT_EQ(back, codes) << bits;
  }
}

TEST(PackingTest, RejectsMalformedInput) {
  std::vector<uint8_t> packed(2);
  EXPECT_THROW(pack_bits(std::vector<uint8_t>{1, 8}, 3, std::span<uint8_t>(packed.data(), 1)), Error);  // 8 needs 4 bits
  EXPECT_THROW(pack_bits(std::vector<uint8_t>{1, 2, 3}, 4, std::span<uint8_t>(packed.data(), 1)), Error);
  EXPECT_THROW(pack_bits(std::vector<uint8_t>{1}, 0), Error);
  EXPECT_THROW(pack_bits(std::vector<uint8_t>{1}, 9), Error);
  std::vector<uint8_t> codes(3);
  EXPECT_THROW(unpack_bits(std::vector<uint8_t>{0x21}, 4, codes), Error);        // too short
  EXPECT_THROW(unpack_bits(std::vector<uint8_t>{0x21, 0x13}, 4, codes), Error);  // nonzero padding
  unpack_bits(std::vector<uint8_t>{0x21, 0x03}, 4, codes);
  EXPECT_EQ(codes, (std::vector<uint8_t>{1, 2, 3}));
}

}  // namespace
}  // namespace lowbit
