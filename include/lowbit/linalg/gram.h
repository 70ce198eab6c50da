// Gram matrices h += xᵀ x of f32 data, accumulated into double — the Hessians H = XᵀX that
// GPTQ-style methods consume, built batch by batch.
//
// Work is split into fixed 256 x 256 tiles of h (the upper triangle; diagonal tiles use syrk, the
// rest gemm) run over lowbit::parallel_for with single-threaded BLAS in each, and rows are taken
// in fixed chunks, so the result is bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <span>

namespace lowbit {

enum class GramPrecision : uint8_t {
  // Products summed in f32 within chunks of 256 rows (sgemm/ssyrk into an f32 tile), each chunk's
  // tile added into the double h. The rounding error of an entry is that of a 256-term f32 dot
  // product (at most about 256·2⁻²⁴ ≈ 1.5e-5 of Σ|x_i x_j|, typically ~1e-6) whatever the number of
  // rows accumulated over many calls, because everything beyond a chunk is summed in double.
  // sgemm speed.
  kFloatChunks,
  // x widened to double (products exact) and summed with dgemm/dsyrk: error ~ n·2⁻⁵³; half the speed.
  kDouble,
};

// h[cols x cols] (row-major, symmetric on entry, e.g. zeros) += xᵀ x, x[rows x cols] row-major f32.
// Only h's upper triangle is read; the whole of h is written (the lower triangle mirrored).
// Throws Error when the sizes do not match or x holds a non-finite value.
void accumulate_gram(std::span<double> h, std::span<const float> x, int64_t rows, int64_t cols,
                     GramPrecision precision = GramPrecision::kFloatChunks);

}  // namespace lowbit
