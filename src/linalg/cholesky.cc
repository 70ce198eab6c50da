#include "lowbit/linalg/cholesky.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/linalg/blas.h"

// LAPACK's Fortran entry points as Debian's OpenBLAS exports them (it bundles LAPACK, so no
// extra package or link flag is needed). The trailing size_t arguments are gfortran's hidden
// string lengths; OpenBLAS's own C implementations of potrf/trtri ignore them, reference LAPACK
// reads them, and passing them is correct for both.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t uplo_len);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info,
             size_t uplo_len, size_t diag_len);
}

namespace lowbit {

namespace {

// Tiles of kTile x kTile: every BLAS call below works on whole tiles whose set and order depend
// only on n, so the result is the same for any thread count. Within a step the tiles run over
// lowbit::parallel_for with single-threaded BLAS each.
constexpr int64_t kTile = 256;

int lapack_size(int64_t n, const char* what) {
  require(n >= 0 && n <= INT32_MAX, what, "matrix order must fit LAPACK's int, found " + std::to_string(n));
  return static_cast<int>(n);
}

void check_finite(std::span<const double> a, const char* what) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(a[i]))
      throw Error(what, "entry " + std::to_string(i) + " is not finite (" + std::to_string(a[i]) + ")");
}

// A row-major block seen by column-major LAPACK is its transpose: the row-major lower triangle is
// LAPACK's upper one, and a = L Lᵀ is LAPACK's a = Rᵀ R with R = Lᵀ.
int potrf_block(double* a, int64_t size, int64_t ld) {
  int n = static_cast<int>(size), lda = static_cast<int>(ld), info = 0;
  dpotrf_("U", &n, a, &lda, &info, 1);
  if (info < 0) throw Error("cholesky", "dpotrf rejected argument " + std::to_string(-info));
  return info;
}

void trtri_block(double* a, int64_t size, int64_t ld) {
  int n = static_cast<int>(size), lda = static_cast<int>(ld), info = 0;
  dtrtri_("U", "N", &n, a, &lda, &info, 1, 1);
  if (info != 0) throw Error("cholesky", "dtrtri failed with info " + std::to_string(info));
}

// 0, count-1, 1, count-2, ...: parallel_for hands each thread a contiguous run of tasks, so tasks
// whose cost grows linearly along the list are interleaved to give two threads equal halves.
std::vector<int64_t> interleaved(int64_t count) {
  std::vector<int64_t> order;
  for (int64_t lo = 0, hi = count - 1; lo <= hi; ++lo, --hi) {
    order.push_back(lo);
    if (hi != lo) order.push_back(hi);
  }
  return order;
}

struct Tiles {
  int64_t n, count;
  int64_t begin(int64_t t) const { return t * kTile; }
  int64_t size(int64_t t) const { return std::min(n, (t + 1) * kTile) - t * kTile; }
};

// Right-looking tiled Cholesky, row-major lower, in place: for each diagonal tile k, factor it,
// solve the tiles below it, update the trailing lower triangle. Returns LAPACK-style info (0, or the order
// of the first leading minor that is not positive definite). The strict upper triangle is zeroed.
int64_t tiled_cholesky(double* a, int64_t n) {
  pin_blas_to_one_thread();
  const Tiles t{n, (n + kTile - 1) / kTile};
  const int ld = static_cast<int>(n);
  for (int64_t k = 0; k < t.count; ++k) {
    const int64_t k0 = t.begin(k), kb = t.size(k);
    double* akk = a + k0 * n + k0;
    if (const int info = potrf_block(akk, kb, n); info > 0) return k0 + info;
    const int64_t below = t.count - k - 1;
    parallel_for(below, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t i = k + 1 + b;
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, static_cast<int>(t.size(i)),
                    static_cast<int>(kb), 1.0, akk, ld, a + t.begin(i) * n + k0, ld);
      }
    });
    // Trailing update, one task per row tile i > k: a[i, k+1 .. i-1] -= L[i, k] L[k+1 .. i-1, k]ᵀ as one
    // gemm (one packing of L[i, k]) and the diagonal tile by syrk. Costs grow with i: interleaved.
    const std::vector<int64_t> order = interleaved(below);
    parallel_for(below, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t i = k + 1 + order[static_cast<size_t>(p)];
        const int64_t i0 = t.begin(i), ib = t.size(i), j0 = t.begin(k + 1);
        const double* lik = a + i0 * n + k0;
        if (i0 > j0)
          cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(ib), static_cast<int>(i0 - j0),
                      static_cast<int>(kb), -1.0, lik, ld, a + j0 * n + k0, ld, 1.0, a + i0 * n + j0, ld);
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, static_cast<int>(ib), static_cast<int>(kb), -1.0, lik, ld,
                    1.0, a + i0 * n + i0, ld);
      }
    });
  }
  parallel_for(n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) std::fill(a + i * n + i + 1, a + (i + 1) * n, 0.0);
  });
  return 0;
}

// L⁻¹ in place for a row-major lower triangular L with a zero strict upper triangle, by tile
// columns from the right (LAPACK's blocked trtri order): with the trailing part X = L[j+1:, j+1:]⁻¹
// already in place, X[j+1:, j] = −X · L[j+1:, j] · L_jj⁻¹ and the diagonal tile becomes L_jj⁻¹.
// The row tiles of that panel are independent; their cost grows with the row, hence interleaved.
void tiled_lower_inverse(double* a, int64_t n) {
  pin_blas_to_one_thread();
  const Tiles t{n, (n + kTile - 1) / kTile};
  const int ld = static_cast<int>(n);
  std::vector<double> panel;
  for (int64_t j = t.count - 1; j >= 0; --j) {
    const int64_t j0 = t.begin(j), jb = t.size(j), j1 = j0 + jb;
    double* ajj = a + j0 * n + j0;
    trtri_block(ajj, jb, n);  // L_jj⁻¹ in place; its zero upper triangle stays zero
    if (j1 == n) continue;
    // The panel L[j1:, j] is overwritten row tile by row tile, so every tile reads a copy.
    const int64_t rows = n - j1;
    panel.resize(static_cast<size_t>(rows * jb));
    for (int64_t r = 0; r < rows; ++r)
      std::copy(a + (j1 + r) * n + j0, a + (j1 + r) * n + j1, panel.begin() + r * jb);
    const std::vector<int64_t> order = interleaved(t.count - j - 1);
    parallel_for(static_cast<int64_t>(order.size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t i = j + 1 + order[static_cast<size_t>(p)];
        const int64_t i0 = t.begin(i), ib = t.size(i);
        double* xij = a + i0 * n + j0;
        // X[i, j] = X[i, j1 : i0 + ib] · panel[j1 : i0 + ib] (X's upper triangle is zero, so the
        // diagonal tile contributes only its lower part), then · (−L_jj⁻¹).
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(ib), static_cast<int>(jb),
                    static_cast<int>(i0 + ib - j1), 1.0, a + i0 * n + j1, ld, panel.data(), static_cast<int>(jb), 0.0,
                    xij, ld);
        cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, static_cast<int>(ib),
                    static_cast<int>(jb), -1.0, ajj, ld, xij, ld);
      }
    });
  }
}

}  // namespace

void cholesky_lower(std::span<double> a, int64_t n) {
  lapack_size(n, "cholesky");
  require(a.size() == static_cast<size_t>(n) * static_cast<size_t>(n), "cholesky",
          "expected " + std::to_string(n) + "x" + std::to_string(n) + " = " + std::to_string(n * n) +
              " entries, found " + std::to_string(a.size()));
  check_finite(a, "cholesky");
  const int64_t info = tiled_cholesky(a.data(), n);
  if (info > 0)
    throw Error("cholesky", "matrix is not positive definite: the leading " + std::to_string(info) + "x" +
                                std::to_string(info) + " block is not");
}

std::vector<double> upper_cholesky_of_inverse(std::span<const double> a, int64_t n) {
  lapack_size(n, "cholesky of the inverse");
  require(a.size() == static_cast<size_t>(n) * static_cast<size_t>(n), "cholesky of the inverse",
          "expected " + std::to_string(n) + "x" + std::to_string(n) + " entries, found " + std::to_string(a.size()));
  check_finite(a, "cholesky of the inverse");
  // J a J: the array reversed (row-major index i n + j maps to n² - 1 - (i n + j)). Its lower
  // triangle is a's upper triangle.
  std::vector<double> m(a.rbegin(), a.rend());
  const int64_t info = tiled_cholesky(m.data(), n);
  if (info > 0) {
    // The leading info x info block of J a J is a's trailing block from column n - info.
    throw Error("cholesky of the inverse",
                "matrix is not positive definite: the trailing block from column " + std::to_string(n - info) +
                    " (" + std::to_string(info) + "x" + std::to_string(info) + ") is not");
  }
  tiled_lower_inverse(m.data(), n);
  // U = J L⁻¹ J: reverse again; L⁻¹'s zero upper triangle becomes U's zero lower triangle.
  std::reverse(m.begin(), m.end());
  return m;
}

}  // namespace lowbit
