// Matrix-vector products over dense weights stored as F32, F16 or BF16, for decode
// (one token): y[r] = Σ_i W[r, i] · x[i] for rows [row_begin, row_end).
//
// Decode is bound by the bytes of weights read, so 16-bit weights are widened in
// registers inside the dot product (never written back to memory as f32). Vectorized
// with Highway; the instruction set is chosen at run time (AVX-512, AVX2, SSE4, …).
#pragma once

#include <cstdint>

#include "lowbit/core/dtype.h"

namespace lowbit {

void dense_gemv_rows(DType dtype, const void* weights, int64_t in, const float* x, int64_t row_begin, int64_t row_end,
                     float* y);

}  // namespace lowbit
