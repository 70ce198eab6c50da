// Internal to the int8-activation prefill GEMM (kernels/int8_gemm.h): the 16-row panels a call
// repacks the codes into, and the x86 kernels that run them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace lowbit::int8_gemm_detail {

constexpr size_t kPanelRows = 16;  // rows per panel: one AVX-512 register of int32/float lanes
constexpr size_t kBlock = 32;      // columns per activation scale (as the one-token kernel)
constexpr size_t kQuad = 4;        // columns per int32 lane of a dot-product instruction

// Segments: the columns a panel keeps one bias for. 32 (one per block) when groups are whole blocks;
// 16 when they are not (NVFP4's groups of 16, groups of 48, …): a block then holds two segments,
// which may belong to different groups. A piece is a block's segments within one group: its integer
// sum I = Σ_{c in piece} v_c·q_c meets the block's scale dx_b once (the definition, int8_gemm.h).
struct Geometry {
  size_t blocks = 0, groups = 0;
  size_t segment_cols = kBlock, segments = 0, segments_per_block = 1, segments_per_group = 0;
  size_t quads_per_segment() const { return segment_cols / kQuad; }
  // (Segments past the last column, in the last block, count in the last group.)
  size_t group_of_segment(size_t s) const { return groups <= 1 ? 0 : std::min(groups - 1, s / segments_per_group); }
  // One past the last segment of the piece that starts at segment s, within group g's [.., end).
  size_t piece_end(size_t s, size_t group_end) const {
    return std::min(group_end, (s / segments_per_block + 1) * segments_per_block);
  }
};

// One panel: rows row0 .. row0 + 15 of the tensor (rows past its end are zero codes and zero scales).
//   v[((b·8 + j)·16 + i)·4 + k] = signed code v_c of row row0 + i, column c = 32b + 4j + k (0 past cols);
//   bias[s·16 + i] = −128 · Σ_{c in segment s} v_c (the VNNI kernel's q + 128 operand adds 128·Σv);
//   scale[g·16 + i] = s'_g; min[g·16 + i] = m_g (float-minimum grids only).
// So one 64-byte load at (b, j) holds column quad j of block b for all 16 rows, 4 bytes per row:
// vpdpbusd with the token's 4 q bytes broadcast adds each row's 4 products into its own lane.
struct Panel {
  const int8_t* v = nullptr;
  const int32_t* bias = nullptr;
  const float* scale = nullptr;
  const float* min = nullptr;  // null without float minimums
};

// What every panel of a call shares: the prepared tokens and how blocks and segments form groups.
struct Tokens : Geometry {
  size_t tokens = 0;
  const int8_t* q = nullptr;        // [tokens][blocks·32] (VNNI: q + 128 as bytes)
  const float* block_scale = nullptr;  // [tokens][blocks]
  const float* group_x = nullptr;      // [tokens][groups]
};

// Where a panel's codes come from: the tensor's packed rows and what turns a code into v.
struct Codes : Geometry {
  const uint8_t* codes = nullptr;  // rows × row_bytes, LSB-first at `bits`
  size_t row_bytes = 0, cols = 0;
  int bits = 4;
  uint8_t flip = 0;                // XOR to offset binary (2^(b−1) for two's complement)
  // 4-bit grids of small integer levels (e2m1): u = map[code] instead of code XOR flip (int8_gemv.h).
  bool mapped = false;
  uint8_t map[16] = {};
  uint8_t implicit_zero = 0;       // z without zero points: flip, or the mapped grid's zero
  const uint8_t* zeros = nullptr;  // rows × groups zero points, or null (then z = implicit_zero)
};

#if defined(__x86_64__) || defined(__i386__)
// A panel's v and bias (Panel's layout) for rows row0 .. row0 + rows − 1 (rows ≤ 16; the rest of the
// panel zero) with AVX-512BW: each row's block unpacked in registers (2-, 3-, 4- or 8-bit codes), the
// 16 × 8 quads transposed by gathers. Needs cols a multiple of 32; writes the same bytes as the scalar
// repack.
void pack_codes_avx512(const Codes& c, size_t row0, size_t rows, int8_t* v, int32_t* bias);

// Panels p[0 .. count) (count 1 or 2) for every token: y[t·y_stride + 16k + i] for i < valid[k]
// (y points at the first panel's first row).
void panels_avx512_vnni(const Tokens& x, const Panel* p, size_t count, const size_t* valid, float* y,
                        size_t y_stride);
void panels_avx2(const Tokens& x, const Panel* p, size_t count, const size_t* valid, float* y, size_t y_stride);
#endif

}  // namespace lowbit::int8_gemm_detail
