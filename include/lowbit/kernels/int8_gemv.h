// Decode GEMV with int8 activations: x is quantized per token to int8 in blocks of 32 columns and
// multiplied against the packed 2-, 3-, 4- or 8-bit codes with integer dot products (AVX-512 VNNI vpdpbusd,
// AVX-512BW / AVX2 vpmaddubsw + vpmaddwd), the way ggml runs its block types against Q8 activations.
// Each multiply-add handles 64 (VNNI) codes instead of 16 f32 lanes, so the kernel stays under the
// memory bandwidth where the f32-activation kernel (packed_gemv.h) is compute bound.
//
// What it computes: W · x̂, where x̂ is x rounded to its int8 blocks —
//     dx_b = max_{c in b} |x_c| / 127,   q_c = round_half_even(x_c · (127 / max|x_c|)) in [−127, 127],
//     x̂_c = dx_b · q_c
// — so its error against W · x is that of the activation rounding (≤ dx_b/2 per column), while
// against W · x̂ it is only f32 rounding.
//
// Layouts (int8_gemv_supported): integer grids of 2, 3, 4 or 8 bits without g_idx — unsigned with zero
// points, two's complement (any fraction bits), or unsigned with a float minimum per group (ggml's
// Q4_1/Q5_1) — and 4-bit grids whose levels are small integers times 2^−f (e2m1, the element of MXFP4
// and NVFP4: 2v ∈ [−12, 12]), whose groups are multiples of 16 columns (whole runs; a 32-column
// activation block may hold two groups), or one group per row (any width). So MXFP4 and NVFP4 run
// here; NF4's irrational levels do not.
//
// The arithmetic, fixed so that every instruction set gives the same bits (the exact-equality
// contract with the scalar reference, int8_gemv_rows_reference):
//   * codes become integers w_c = u_c − o with u_c the unsigned code (two's complement codes flipped
//     to offset binary: u = code XOR 2^(b−1); mapped levels: u = 2^f·level(code) − min, z = −min)
//     and o = 128 for 8 bits, 0 for 2–4 bits (2- and 3-bit codes are widened in registers to the
//     4-bit kernels' byte vectors, so they run those kernels' steps on 128 columns per AVX-512 step);
//   * a row is cut into runs of R columns (R = 8 for 2–4 bits, 4 for 8 bits); run r's integer
//     p_r = Σ_{c in r} w_c · q_c is exact (int32), whatever order the SIMD lanes add it in;
//   * run r goes to accumulator lane L = r mod 16:  acc[L] = fma(float(p_r), dx_b · s'_g, acc[L]),
//     runs in increasing order, with s'_g = s_g · 2^−f (f: fraction bits of a signed grid, or the
//     mapped levels' 2^f);
//   * group g's offset term goes to cor[g mod 16] = fma(k_g, X_g, cor[...]) with
//     k_g = float(o − z_g) · s'_g + m_g (z_g: zero point, or 2^(b−1) for two's complement; m_g: float
//     minimum) and X_g = Σ_b dx_b · Σ_{c in b ∩ g} q_c, blocks left to right (once per token);
//   * y = tree(acc) + tree(cor), tree(v) = the pairwise sum v[i] + v[i+8], then +4, +2, +1.
// A vector kernel realizes the 16 lanes directly (AVX-512: one register; AVX2: two, alternating),
// so nothing depends on the vector width, the row range or the thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"

namespace lowbit {

// The instruction sets an int8 kernel exists for; kScalar is the reference and always available.
enum class Int8Kernel { kScalar, kAvx2, kAvx512, kAvx512Vnni };
std::string int8_kernel_name(Int8Kernel kernel);
// The kernels this CPU runs, kScalar first and the fastest last.
std::vector<Int8Kernel> int8_kernels_available();
Int8Kernel int8_kernel_best();

// Whether int8_gemv_rows can run this tensor (see above).
bool int8_gemv_supported(const QuantizedTensor& w);

// x quantized for one tensor layout and one kernel: the int8 values in the order the kernel reads
// them, the block scales per run, and X_g per group. Built once per token by int8_gemv_prepare,
// then shared read-only by every thread's int8_gemv_rows.
struct Int8GemvInput {
  Int8Kernel kernel = Int8Kernel::kScalar;
  int64_t cols = 0, groups = 0, group_size = 0;
  int bits = 0;
  std::vector<int8_t> q;           // [cols] rounded x, in the kernel's order (4 bits: per vector, evens then odds)
  std::vector<float> run_scale;    // [runs] dx of each run's block
  std::vector<int32_t> run_bias;   // [runs] 128 · Σ q over the run (8-bit codes on VNNI: u·q − 128·q)
  std::vector<float> group_x;      // [groups] X_g
};

// Quantizes x (w.cols() values) for `w` and `kernel` (Error if the kernel is not available here or
// the layout is not supported).
void int8_gemv_prepare(const QuantizedTensor& w, const float* x, Int8GemvInput& input,
                       Int8Kernel kernel = int8_kernel_best());
// y[r] for r in [row_begin, row_end) (Error for a bad range or an input prepared for another layout).
void int8_gemv_rows(const QuantizedTensor& w, const Int8GemvInput& input, int64_t row_begin, int64_t row_end,
                    float* y);
// Several tokens at once (prefill) run on int8_gemm.h's kernel.
// The same in plain scalar C++, one column at a time: the definition above, the tests' oracle.
void int8_gemv_rows_reference(const QuantizedTensor& w, const float* x, int64_t row_begin, int64_t row_end,
                              float* y);
// x̂: x rounded to its int8 blocks as the kernels see it (cols values), for tests and error bounds.
std::vector<float> int8_rounded_activations(const float* x, int64_t cols);

}  // namespace lowbit
