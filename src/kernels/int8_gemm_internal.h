// Internal to the int8-activation prefill GEMM (kernels/int8_gemm.h): the 16-row panels a call
// repacks the codes into, and the x86 kernels that run them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit::int8_gemm_detail {

constexpr size_t kPanelRows = 16;  // rows per panel: one AVX-512 register of int32/float lanes
constexpr size_t kBlock = 32;      // columns per activation scale (as the one-token kernel)
constexpr size_t kQuad = 4;        // columns per int32 lane of a dot-product instruction

// One panel: rows row0 .. row0 + 15 of the tensor (rows past its end are zero codes and zero scales).
//   v[((b·8 + j)·16 + i)·4 + k] = signed code v_c of row row0 + i, column c = 32b + 4j + k (0 past cols);
//   bias[b·16 + i] = −128 · Σ_{c in block b} v_c (the VNNI kernel's q + 128 operand adds 128·Σv);
//   scale[g·16 + i] = s'_g; min[g·16 + i] = m_g (float-minimum grids only).
// So one 64-byte load at (b, j) holds column quad j of block b for all 16 rows, 4 bytes per row:
// vpdpbusd with the token's 4 q bytes broadcast adds each row's 4 products into its own lane.
struct Panel {
  const int8_t* v = nullptr;
  const int32_t* bias = nullptr;
  const float* scale = nullptr;
  const float* min = nullptr;  // null without float minimums
};

// What every panel of a call shares: the prepared tokens and how blocks form groups.
struct Tokens {
  size_t blocks = 0, groups = 0, blocks_per_group = 0;
  size_t tokens = 0;
  const int8_t* q = nullptr;        // [tokens][blocks·32] (VNNI: q + 128 as bytes)
  const float* block_scale = nullptr;  // [tokens][blocks]
  const float* group_x = nullptr;      // [tokens][groups]
};

// Where a panel's codes come from: the tensor's packed rows and what turns a code into v.
struct Codes {
  const uint8_t* codes = nullptr;  // rows × row_bytes, LSB-first at `bits`
  size_t row_bytes = 0, cols = 0, blocks = 0, groups = 0, blocks_per_group = 0;
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
// panel zero) with AVX-512BW: each row's block unpacked in registers, the 16 × 8 quads transposed by
// gathers. Needs cols a multiple of 32; writes the same bytes as the scalar repack.
void pack_codes_avx512(const Codes& c, size_t row0, size_t rows, int8_t* v, int32_t* bias);

// Panels p[0 .. count) (count 1 or 2) for every token: y[t·y_stride + 16k + i] for i < valid[k]
// (y points at the first panel's first row).
void panels_avx512_vnni(const Tokens& x, const Panel* p, size_t count, const size_t* valid, float* y,
                        size_t y_stride);
void panels_avx2(const Tokens& x, const Panel* p, size_t count, const size_t* valid, float* y, size_t y_stride);
#endif

}  // namespace lowbit::int8_gemm_detail
