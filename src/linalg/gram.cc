#include "lowbit/linalg/gram.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/linalg/blas.h"

namespace lowbit {

namespace {

// Fixed (never derived from the thread count) so every entry is the same sum in the same order.
constexpr int64_t kTile = 256;       // columns per tile of h
constexpr int64_t kChunkRows = 256;  // rows of x per accumulation step

struct TilePair {
  int64_t i0, i1, j0, j1;  // h[i0:i1, j0:j1], i0 <= j0
};

std::vector<TilePair> upper_tiles(int64_t cols) {
  std::vector<TilePair> tiles;
  for (int64_t i0 = 0; i0 < cols; i0 += kTile)
    for (int64_t j0 = i0; j0 < cols; j0 += kTile)
      tiles.push_back({i0, std::min(cols, i0 + kTile), j0, std::min(cols, j0 + kTile)});
  return tiles;
}

// h[j, i] = h[i, j] over the tile (the diagonal tile: its strict lower triangle from the upper).
void mirror(double* h, int64_t cols, const TilePair& t) {
  for (int64_t i = t.i0; i < t.i1; ++i)
    for (int64_t j = std::max(t.j0, i + 1); j < t.j1; ++j) h[j * cols + i] = h[i * cols + j];
}

}  // namespace

void accumulate_gram(std::span<double> h, std::span<const float> x, int64_t rows, int64_t cols,
                     GramPrecision precision) {
  const char* where = "gram accumulation";
  require(rows >= 0 && cols >= 0, where, "negative size " + std::to_string(rows) + "x" + std::to_string(cols));
  require(x.size() == static_cast<size_t>(rows) * static_cast<size_t>(cols), where,
          "x has " + std::to_string(x.size()) + " values for " + std::to_string(rows) + " rows x " +
              std::to_string(cols) + " columns");
  require(h.size() == static_cast<size_t>(cols) * static_cast<size_t>(cols), where,
          "h has " + std::to_string(h.size()) + " entries, expected " + std::to_string(cols) + "x" + std::to_string(cols));
  for (size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      throw Error(where, "x[" + std::to_string(i / static_cast<size_t>(cols)) + ", " +
                             std::to_string(i % static_cast<size_t>(cols)) + "] is not finite");
  if (rows == 0 || cols == 0) return;
  pin_blas_to_one_thread();
  const std::vector<TilePair> tiles = upper_tiles(cols);
  const int n = static_cast<int>(cols);
  std::vector<double> wide;
  if (precision == GramPrecision::kDouble) wide.resize(static_cast<size_t>(std::min(rows, kChunkRows) * cols));

  for (int64_t r0 = 0; r0 < rows; r0 += kChunkRows) {
    const int64_t r1 = std::min(rows, r0 + kChunkRows);
    const int k = static_cast<int>(r1 - r0);
    const float* xs = x.data() + r0 * cols;
    if (precision == GramPrecision::kDouble) {
      parallel_for(r1 - r0, 16, [&](int64_t begin, int64_t end) {
        std::copy(xs + begin * cols, xs + end * cols, wide.begin() + begin * cols);
      });
    }
    parallel_for(static_cast<int64_t>(tiles.size()), 1, [&](int64_t begin, int64_t end) {
      std::vector<float> tile;
      for (int64_t t = begin; t < end; ++t) {
        const TilePair& p = tiles[static_cast<size_t>(t)];
        const int m = static_cast<int>(p.i1 - p.i0), w = static_cast<int>(p.j1 - p.j0);
        const bool diagonal = p.i0 == p.j0;
        double* c = h.data() + p.i0 * cols + p.j0;
        if (precision == GramPrecision::kDouble) {
          const double* a = wide.data() + p.i0;
          const double* b = wide.data() + p.j0;
          if (diagonal) cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, m, k, 1.0, a, n, 1.0, c, n);
          else cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, w, k, 1.0, a, n, b, n, 1.0, c, n);
        } else {
          tile.assign(static_cast<size_t>(m) * static_cast<size_t>(w), 0.0f);
          const float* a = xs + p.i0;
          const float* b = xs + p.j0;
          if (diagonal) cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, m, k, 1.0f, a, n, 0.0f, tile.data(), w);
          else cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, w, k, 1.0f, a, n, b, n, 0.0f, tile.data(), w);
          for (int i = 0; i < m; ++i)
            for (int j = diagonal ? i : 0; j < w; ++j)
              c[static_cast<int64_t>(i) * cols + j] += static_cast<double>(tile[static_cast<size_t>(i) * w + j]);
        }
      }
    });
  }
  parallel_for(static_cast<int64_t>(tiles.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) mirror(h.data(), cols, tiles[static_cast<size_t>(t)]);
  });
}

}  // namespace lowbit
