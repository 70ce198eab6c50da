// Cholesky factorizations of symmetric positive definite matrices (double, row-major).
//
// Tiled over 256 x 256 blocks: LAPACK (dpotrf/dtrtri from Debian's OpenBLAS, which carries LAPACK)
// on the diagonal tiles, BLAS 3 (trsm, syrk, gemm, trmm) on the others, the independent tiles of a
// step spread over lowbit::parallel_for with OpenBLAS pinned to one thread. The set of tile
// operations depends only on n, so results are bit-identical for any thread count (OpenBLAS's own
// threaded potrf would not promise that).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace lowbit {

// In place: the lower Cholesky factor L of the n x n symmetric positive definite `a` (a = L Lᵀ;
// only the lower triangle of `a` is read). The strict upper triangle is set to 0. Throws Error
// naming the leading minor that is not positive definite (or the first non-finite entry).
void cholesky_lower(std::span<double> a, int64_t n);

// The upper triangular U with Uᵀ U = a⁻¹ (positive diagonal, so unique) — the factor GPTQ's
// updates use. Computed without forming a⁻¹: with J the reversal permutation, J a J = L Lᵀ gives
// a⁻¹ = (J L⁻¹ J)ᵀ (J L⁻¹ J) and J L⁻¹ J is upper triangular. One Cholesky and one triangular
// inverse (2n³/3 flops) instead of the reference's Cholesky, inverse and second Cholesky
// (4n³/3), and no rounding from an explicit inverse. J a J in row-major order is the element
// array reversed, so both reversals are free. Only the upper triangle of `a` is read; the strict
// lower triangle of the result is 0. Throws Error when a is not positive definite, naming the
// first column c (in a's order) such that the trailing block a[c:, c:] is not.
std::vector<double> upper_cholesky_of_inverse(std::span<const double> a, int64_t n);

}  // namespace lowbit
