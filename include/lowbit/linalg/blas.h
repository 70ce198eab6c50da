// Thin wrappers over OpenBLAS for code (and benchmarks) outside liblowbit's own sources, which
// do not see cblas.h.
//
// OpenBLAS must not start its own threads under lowbit's OpenMP threads: every BLAS call inside
// liblowbit runs single-threaded and lowbit splits the work over fixed tiles, so results do not
// depend on the thread count.
#pragma once

#include <cstdint>

namespace lowbit {

// Pins OpenBLAS to one thread. Idempotent and cheap; every linalg entry point calls it.
void pin_blas_to_one_thread();

// c = alpha · op(a) · op(b) + beta · c, row-major f32 (op = transpose when asked), one sgemm call
// on the calling thread. m x n = the shape of c, k the inner dimension; ld* are row strides.
void gemm_f32(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace lowbit
