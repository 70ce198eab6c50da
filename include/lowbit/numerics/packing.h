// Dense bit packing of b-bit codes — the byte order lowbit uses for every packed tensor.
//
// Code i occupies bits [i*b, (i+1)*b) of the stream, and stream bit k is bit (k mod 8) of byte
// k / 8 (least significant bit first); the last byte is zero-padded. Equivalently the packed bytes
// are the little-endian encoding of the integer Σ_i code_i * 2^(i*b). Examples (docs/FORMATS.md):
//   4-bit codes 1, 2, 3        -> 0x21 0x03       (code 0 in the low nibble, as GGUF and torchao fp4)
//   3-bit codes 1..7, 0        -> 0xD1 0x58 0x1F
//   1-bit codes 1,0,1,1,0,0,0,0,1 -> 0x0D 0x01
// Why LSB-first: on little-endian machines one unaligned 64-bit load followed by shifts yields
// consecutive codes in order, which is what unpacking kernels do; and every 8 codes end on a
// byte boundary, so tensors can be packed and unpacked in parallel chunks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace lowbit {

// ceil(count * bits / 8).
size_t packed_bytes(size_t count, int bits);

// bits 1..8 for uint8 codes, 1..16 for uint16 codes. `out` must have packed_bytes(codes.size(), bits)
// bytes. Throws Error naming the first code >= 2^bits.
void pack_bits(std::span<const uint8_t> codes, int bits, std::span<uint8_t> out);
void pack_bits(std::span<const uint16_t> codes, int bits, std::span<uint8_t> out);
std::vector<uint8_t> pack_bits(std::span<const uint8_t> codes, int bits);

// The inverse; `packed` must have exactly packed_bytes(codes.size(), bits) bytes and zero padding
// bits (a nonzero pad means the count or width does not match the data), else Error.
void unpack_bits(std::span<const uint8_t> packed, int bits, std::span<uint8_t> codes);
void unpack_bits(std::span<const uint8_t> packed, int bits, std::span<uint16_t> codes);

// Code c of one packed row (`row_bytes` long, never read past) at `bits` (1..8) bits: a 16-bit window
// over the two bytes it may straddle. What the kernels' scalar tails and references read codes with.
inline uint32_t packed_code_at(const uint8_t* row, size_t row_bytes, size_t c, int bits) {
  const size_t bit = c * static_cast<size_t>(bits), byte = bit >> 3;
  uint32_t window = row[byte];
  if (byte + 1 < row_bytes) window |= static_cast<uint32_t>(row[byte + 1]) << 8;
  return (window >> (bit & 7)) & ((1u << bits) - 1);
}

}  // namespace lowbit
