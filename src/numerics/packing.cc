#include "lowbit/numerics/packing.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"

namespace lowbit {

namespace {

// Eight codes always fill exactly `bits` whole bytes, so chunks of 8k codes pack independently.
constexpr int64_t kGroupsPerChunk = int64_t{1} << 13;

void check_bits(int bits, int max_bits, const char* what) {
  require(bits >= 1 && bits <= max_bits, what,
          "bit width must be 1.." + std::to_string(max_bits) + ", found " + std::to_string(bits));
}

template <class Code>
void pack_range(const Code* codes, size_t count, int bits, uint8_t* out) {
  uint32_t acc = 0;  // at most 7 pending bits plus one 16-bit code
  int filled = 0;
  for (size_t i = 0; i < count; ++i) {
    acc |= static_cast<uint32_t>(codes[i]) << filled;
    filled += bits;
    while (filled >= 8) {
      *out++ = static_cast<uint8_t>(acc);
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled > 0) *out = static_cast<uint8_t>(acc);
}

// Eight kBits-bit codes are exactly kBits bytes: read them as one little-endian 64-bit word and
// take the codes out with constant shifts (a loop compilers unroll), while 8 whole bytes remain.
// Returns the codes done; the bit-serial loop below finishes the tail.
template <int kBits, class Code>
size_t unpack_words(const uint8_t* in, size_t count, size_t in_bytes, Code* codes) {
  constexpr uint64_t mask = (uint64_t{1} << kBits) - 1;
  size_t i = 0;
  for (; i + 8 <= count && (i / 8) * kBits + 8 <= in_bytes; i += 8) {
    const uint8_t* bytes = in + (i / 8) * kBits;
    uint64_t word = 0;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&word, bytes, 8);
    } else {
      for (int k = 0; k < 8; ++k) word |= static_cast<uint64_t>(bytes[k]) << (8 * k);
    }
    for (int j = 0; j < 8; ++j) codes[i + static_cast<size_t>(j)] = static_cast<Code>((word >> (j * kBits)) & mask);
  }
  return i;
}

template <class Code>
void unpack_range(const uint8_t* in, size_t count, int bits, Code* codes) {
  // Bytes and nibbles (the common widths) by plain loops compilers vectorize.
  if (bits == 8) {
    std::copy(in, in + count, codes);
    return;
  }
  if (bits == 4) {  // LSB first: the low nibble is the even code
    for (size_t i = 0; i < count / 2; ++i) {
      codes[2 * i] = static_cast<Code>(in[i] & 0x0F);
      codes[2 * i + 1] = static_cast<Code>(in[i] >> 4);
    }
    if (count % 2) codes[count - 1] = static_cast<Code>(in[count / 2] & 0x0F);
    return;
  }
  const size_t in_bytes = packed_bytes(count, bits);
  size_t done = 0;
  switch (bits) {
    case 1: done = unpack_words<1>(in, count, in_bytes, codes); break;
    case 2: done = unpack_words<2>(in, count, in_bytes, codes); break;
    case 3: done = unpack_words<3>(in, count, in_bytes, codes); break;
    case 5: done = unpack_words<5>(in, count, in_bytes, codes); break;
    case 6: done = unpack_words<6>(in, count, in_bytes, codes); break;
    case 7: done = unpack_words<7>(in, count, in_bytes, codes); break;
    default: break;
  }
  in += done / 8 * static_cast<size_t>(bits);
  codes += done;
  count -= done;
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  uint32_t acc = 0;
  int filled = 0;
  for (size_t i = 0; i < count; ++i) {
    while (filled < bits) {
      acc |= static_cast<uint32_t>(*in++) << filled;
      filled += 8;
    }
    codes[i] = static_cast<Code>(acc & mask);
    acc >>= bits;
    filled -= bits;
  }
}

template <class Code>
void pack(std::span<const Code> codes, int bits, std::span<uint8_t> out) {
  check_bits(bits, 8 * static_cast<int>(sizeof(Code)), "pack_bits");
  require(out.size() == packed_bytes(codes.size(), bits), "pack_bits",
          std::to_string(codes.size()) + " codes of " + std::to_string(bits) + " bits need " +
              std::to_string(packed_bytes(codes.size(), bits)) + " bytes, output has " + std::to_string(out.size()));
  const uint32_t limit = uint32_t{1} << bits;
  for (size_t i = 0; i < codes.size(); ++i)
    if (codes[i] >= limit)
      throw Error("pack_bits", "code " + std::to_string(codes[i]) + " at index " + std::to_string(i) +
                                   " does not fit " + std::to_string(bits) + " bits");
  const int64_t groups = static_cast<int64_t>((codes.size() + 7) / 8);
  parallel_for(groups, kGroupsPerChunk, [&](int64_t begin, int64_t end) {
    const size_t first = static_cast<size_t>(begin) * 8;
    const size_t count = std::min(codes.size(), static_cast<size_t>(end) * 8) - first;
    pack_range(codes.data() + first, count, bits, out.data() + static_cast<size_t>(begin) * bits);
  });
}

template <class Code>
void unpack(std::span<const uint8_t> packed, int bits, std::span<Code> codes) {
  check_bits(bits, 8 * static_cast<int>(sizeof(Code)), "unpack_bits");
  require(packed.size() == packed_bytes(codes.size(), bits), "unpack_bits",
          std::to_string(codes.size()) + " codes of " + std::to_string(bits) + " bits need " +
              std::to_string(packed_bytes(codes.size(), bits)) + " bytes, found " + std::to_string(packed.size()));
  const size_t used_bits = codes.size() * static_cast<size_t>(bits);
  if (used_bits % 8)
    require((packed.back() >> (used_bits % 8)) == 0, "unpack_bits",
            "the padding bits of the last byte are not zero (wrong count or bit width?)");
  const int64_t groups = static_cast<int64_t>((codes.size() + 7) / 8);
  // One chunk (a row, typically, called from inside a parallel kernel): no parallel_for to dispatch.
  if (groups <= kGroupsPerChunk) return unpack_range(packed.data(), codes.size(), bits, codes.data());
  parallel_for(groups, kGroupsPerChunk, [&](int64_t begin, int64_t end) {
    const size_t first = static_cast<size_t>(begin) * 8;
    const size_t count = std::min(codes.size(), static_cast<size_t>(end) * 8) - first;
    unpack_range(packed.data() + static_cast<size_t>(begin) * bits, count, bits, codes.data() + first);
  });
}

}  // namespace

size_t packed_bytes(size_t count, int bits) { return (count * static_cast<size_t>(bits) + 7) / 8; }

void pack_bits(std::span<const uint8_t> codes, int bits, std::span<uint8_t> out) { pack(codes, bits, out); }
void pack_bits(std::span<const uint16_t> codes, int bits, std::span<uint8_t> out) { pack(codes, bits, out); }

std::vector<uint8_t> pack_bits(std::span<const uint8_t> codes, int bits) {
  check_bits(bits, 8, "pack_bits");
  std::vector<uint8_t> out(packed_bytes(codes.size(), bits));
  pack(codes, bits, std::span<uint8_t>(out));
  return out;
}

void unpack_bits(std::span<const uint8_t> packed, int bits, std::span<uint8_t> codes) { unpack(packed, bits, codes); }
void unpack_bits(std::span<const uint8_t> packed, int bits, std::span<uint16_t> codes) { unpack(packed, bits, codes); }

}  // namespace lowbit
