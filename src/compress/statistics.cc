#include "lowbit/compress/statistics.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/linalg/blas.h"

namespace lowbit {

void accumulate_hessian(std::span<double> hessian, std::span<const float> x, int64_t rows, int64_t cols,
                        GramPrecision precision) {
  try {
    accumulate_gram(hessian, x, rows, cols, precision);
  } catch (const Error& e) {
    throw e.with_context("hessian");
  }
}

ChannelStatistics::ChannelStatistics(int64_t channels) {
  require(channels >= 0, "channel statistics", "negative channel count " + std::to_string(channels));
  sum_abs_.assign(static_cast<size_t>(channels), 0.0);
  sum_square_.assign(static_cast<size_t>(channels), 0.0);
  max_abs_.assign(static_cast<size_t>(channels), 0.0f);
}

void ChannelStatistics::add(std::span<const float> x, int64_t rows) {
  const int64_t n = channels();
  require(rows >= 0 && x.size() == static_cast<size_t>(rows) * static_cast<size_t>(n), "channel statistics",
          "batch has " + std::to_string(x.size()) + " values for " + std::to_string(rows) + " rows x " +
              std::to_string(n) + " channels");
  for (size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i]))
      throw Error("channel statistics", "x[" + std::to_string(i / static_cast<size_t>(n)) + ", " +
                                            std::to_string(i % static_cast<size_t>(n)) + "] is not finite");
  // Each task owns a fixed range of channels and walks the rows in order: the same sums whatever
  // the thread count.
  parallel_for(n, 512, [&](int64_t begin, int64_t end) {
    double* sa = sum_abs_.data();
    double* sq = sum_square_.data();
    float* mx = max_abs_.data();
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * n;
      for (int64_t c = begin; c < end; ++c) {
        const double v = row[c];
        sa[c] += std::fabs(v);
        sq[c] += v * v;
        mx[c] = std::max(mx[c], std::fabs(row[c]));
      }
    }
  });
  count_ += rows;
}

std::vector<float> ChannelStatistics::mean_abs() const {
  std::vector<float> out(sum_abs_.size(), 0.0f);
  if (count_ > 0)
    for (size_t c = 0; c < out.size(); ++c) out[c] = static_cast<float>(sum_abs_[c] / static_cast<double>(count_));
  return out;
}

std::vector<float> ChannelStatistics::mean_square() const {
  std::vector<float> out(sum_square_.size(), 0.0f);
  if (count_ > 0)
    for (size_t c = 0; c < out.size(); ++c) out[c] = static_cast<float>(sum_square_[c] / static_cast<double>(count_));
  return out;
}

double hessian_weighted_error(std::span<const float> w, std::span<const float> w_hat, int64_t rows, int64_t cols,
                              std::span<const double> hessian) {
  const char* where = "hessian-weighted error";
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  require(rows >= 0 && cols >= 0 && w.size() == n && w_hat.size() == n, where,
          "weights have " + std::to_string(w.size()) + " and " + std::to_string(w_hat.size()) + " values for [" +
              std::to_string(rows) + ", " + std::to_string(cols) + "]");
  require(hessian.size() == static_cast<size_t>(cols) * static_cast<size_t>(cols), where,
          "H has " + std::to_string(hessian.size()) + " entries for " + std::to_string(cols) + " columns");
  if (n == 0) return 0.0;
  pin_blas_to_one_thread();
  constexpr int64_t kTile = 64;
  const int64_t tiles = (rows + kTile - 1) / kTile;
  std::vector<double> partial(static_cast<size_t>(tiles), 0.0);
  parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> delta, product;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * kTile, m = std::min(rows, r0 + kTile) - r0;
      delta.resize(static_cast<size_t>(m * cols));
      product.assign(static_cast<size_t>(m * cols), 0.0);
      for (int64_t i = 0; i < m * cols; ++i)
        delta[static_cast<size_t>(i)] = static_cast<double>(w[static_cast<size_t>(r0 * cols + i)]) - w_hat[static_cast<size_t>(r0 * cols + i)];
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(cols),
                  static_cast<int>(cols), 1.0, delta.data(), static_cast<int>(cols), hessian.data(),
                  static_cast<int>(cols), 0.0, product.data(), static_cast<int>(cols));
      double sum = 0;
      for (int64_t i = 0; i < m * cols; ++i) sum += delta[static_cast<size_t>(i)] * product[static_cast<size_t>(i)];
      partial[static_cast<size_t>(t)] = sum;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

double quadratic_form_rows(const float* a, int64_t m, int64_t cols, const float* h, float* product) {
  gemm_f32(false, false, m, cols, cols, 1.0f, a, cols, h, cols, 0.0f, product, cols);
  double sum = 0;
  for (int64_t i = 0; i < m * cols; ++i) sum += static_cast<double>(a[i]) * product[i];
  return sum;
}

}  // namespace lowbit
