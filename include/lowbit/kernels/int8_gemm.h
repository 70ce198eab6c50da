// Prefill GEMM with int8 activations: Y = X̂ · Wᵀ for many tokens at once, X̂ each token's x rounded
// to int8 per 32-column block exactly as the one-token kernel rounds it (int8_gemv.h), W's packed
// 4- or 8-bit codes multiplied in with integer dot products (AVX-512 VNNI vpdpbusd; AVX2 / AVX-512BW
// vpmaddubsw + vpmaddwd; a scalar path).
//
// Why a second kernel: the one-token GEMV puts a row's columns across the SIMD lanes and reduces them
// with a horizontal tree per (row, token); with many tokens that epilogue costs as much as the dot
// products. Here the lanes hold 16 *rows* (a panel) and each lane runs its row's sum sequentially,
// so a block of 32 columns costs 8 vpdpbusd and two float operations per (16 rows, token) — against
// 32 f32 FMAs for the same 512 multiply-adds in sgemm — and nothing is reduced across lanes.
//
// Panels are built per call (int8_gemm_rows repacks each 16-row panel of its range into a thread's
// scratch, 1 byte per code): what is stored stays the packed codes; the repack is O(rows·cols) once
// per call, spread over all the call's tokens.
//
// What it computes (the definition; every kernel gives these bits, whatever the instruction set,
// row range or thread count): for row r and token t, with v_c = u_c − z_g the signed code (u_c the
// code as offset binary, z_g the group's zero point, 2^(b−1) for two's complement, 0 for a float-
// minimum grid), q_c the token's int8 activations, dx_b its block scales, s'_g = s_g · 2^−f:
//     for each group g:  G = 0
//         for each block b meeting g, left to right:  I = Σ_{c in b ∩ g} v_c · q_c  (exact int32)
//                                                     G = fma(float(I), dx_b, G)
//         Y = fma(G, s'_g, Y);   with a float minimum m_g also  Y = fma(m_g, X_g, Y),
//         X_g = Σ_{b meeting g} dx_b · Σ_{c in b ∩ g} q_c  (left to right, as int8_gemv.h)
// (b ∩ g is the whole block when groups are whole blocks; groups of 16 or 48 split blocks.)
// Each token's Y differs from int8_gemv_rows on that token only by f32 rounding order (both are
// W · x̂ for the same x̂).
//
// Layouts (int8_gemm_supported): the integer grids the packed kernels read (no g_idx) and e2m1's mapped
// levels (MXFP4, NVFP4), groups of a multiple of 16 columns, whose signed codes fit int8 — 1 to 7 bits
// with zero points, two's complement or float minimums (v = u − z in [−127, 127]; ggml's Q5_0/Q5_1 and
// the k-quants' 2/3/5/6-bit codes included), and 8 bits in two's complement only. Only 4- and 8-bit
// codes also have the one-token GEMV; the others decode on f32 activations. Panels keep one bias per
// 16-column segment when groups are not whole blocks (int8_gemm_internal.h); 4- and 8-bit panels are
// repacked by AVX-512 where it runs, the other widths unpacked row by row (codes_of_row).
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/kernels/int8_gemv.h"

namespace lowbit {

bool int8_gemm_supported(const QuantizedTensor& w);

// The tokens' x rounded for `w` and one kernel, built once per call by int8_gemm_prepare and shared
// read-only by every thread's int8_gemm_rows.
struct Int8GemmInput {
  Int8Kernel kernel = Int8Kernel::kScalar;
  int64_t cols = 0, tokens = 0, blocks = 0, groups = 0, group_size = 0;
  int bits = 0;
  // [tokens][blocks·32] q, zero-padded; the VNNI kernel's copy is offset to q + 128 (its u8 operand).
  std::vector<int8_t> q;
  std::vector<float> block_scale;  // [tokens][blocks] dx_b
  std::vector<float> group_x;      // [tokens][groups] X_g
};

// Rounds the `tokens` rows of x (tokens × w.cols(), row-major) for `w` and `kernel` (Error if the
// kernel does not run here or the layout is not supported).
void int8_gemm_prepare(const QuantizedTensor& w, const float* x, int64_t tokens, Int8GemmInput& input,
                       Int8Kernel kernel = int8_kernel_best());
// y[t·y_stride + r] for every prepared token t and rows [row_begin, row_end) (Error for a bad range,
// a stride below w.rows(), or an input prepared for another layout).
void int8_gemm_rows(const QuantizedTensor& w, const Int8GemmInput& input, int64_t row_begin, int64_t row_end,
                    float* y, int64_t y_stride);
// The definition in plain scalar C++, straight from the packed codes: the tests' oracle.
void int8_gemm_reference(const QuantizedTensor& w, const float* x, int64_t tokens, int64_t row_begin,
                         int64_t row_end, float* y, int64_t y_stride);

}  // namespace lowbit
