#include "lowbit/compress/awq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "compress/group_quantizer.h"
#include "lowbit/compress/statistics.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/linalg/blas.h"

namespace lowbit {

namespace {

constexpr const char* kScalesWhere = "awq scales";
constexpr const char* kClipWhere = "awq clip";
constexpr const char* kFoldWhere = "awq fold";
// Rows per task. Each task's error is a fixed sum over its own rows, and tasks are summed in order,
// so results do not depend on the thread count; 64 rows keep sgemm efficient and the buffers small.
constexpr int64_t kRowTile = 64;
// The reference clamps s = mean|x|^α to this before normalizing (auto_scale.py).
constexpr double kMinScale = 1e-4;

std::string str(int64_t v) { return std::to_string(v); }

size_t area(int64_t rows, int64_t cols) { return static_cast<size_t>(rows) * static_cast<size_t>(cols); }

// Resolved group size: 0 means the whole row.
int64_t resolved_group(int64_t group_size, int64_t cols) { return group_size == 0 ? cols : group_size; }
int64_t group_count(int64_t group, int64_t cols) { return group == 0 ? 0 : (cols + group - 1) / group; }

// H must be cols x cols of finite values that stay finite in f32 (the error products run in f32).
void check_hessian(std::span<const double> hessian, int64_t cols, const char* where) {
  require(hessian.size() == area(cols, cols), where,
          "hessian has " + std::to_string(hessian.size()) + " entries for " + str(cols) + " columns");
  for (size_t i = 0; i < hessian.size(); ++i)
    if (!std::isfinite(hessian[i]) || !std::isfinite(static_cast<float>(hessian[i])))
      throw Error(where, "hessian[" + std::to_string(i / static_cast<size_t>(cols)) + ", " +
                             std::to_string(i % static_cast<size_t>(cols)) + "] = " + std::to_string(hessian[i]) +
                             " is not finite (in f32)");
}

// Scales we divide by: n finite nonzero values.
void check_divisors(std::span<const float> s, size_t n, const char* where) {
  require(s.size() == n, where, "s has " + std::to_string(s.size()) + " values, expected " + std::to_string(n));
  for (size_t j = 0; j < s.size(); ++j)
    require(std::isfinite(s[j]) && s[j] != 0.0f, where,
            "s[" + std::to_string(j) + "] = " + std::to_string(s[j]) + " is not finite and nonzero");
}

// ---- scale search -------------------------------------------------------------------------------

// s = max(mean|x|^α, 1e-4), then s /= sqrt(max(s)·min(s)) (the paper's eq. 5 with the reference's
// clamp and normalization). The normalization keeps the scales around 1 so that neither the
// folded weights nor the divided producer (norm gain, previous layer) drift in magnitude; with
// absmax scales a common factor on s cancels in Q(W s)/s up to rounding, so it barely moves the errors.
std::vector<float> candidate_scales(std::span<const float> mean_abs, double alpha) {
  std::vector<double> s(mean_abs.size());
  for (size_t j = 0; j < s.size(); ++j) s[j] = std::max(std::pow(static_cast<double>(mean_abs[j]), alpha), kMinScale);
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const double norm = std::sqrt(*lo * *hi);
  std::vector<float> out(s.size());
  for (size_t j = 0; j < s.size(); ++j) out[j] = static_cast<float>(s[j] / norm);
  return out;
}

// δ = w − Q(w·s)/s for one row: the same f32 products scale_columns forms, RTN's per-group rule on
// them, the dequantized value QuantizedTensor gives, divided by s in f32.
void scaled_rounding_error(const compress_detail::GroupQuantizer& quantizer, const float* w, const float* s,
                           int64_t cols, int64_t group, float* scaled, float* delta) {
  for (int64_t j = 0; j < cols; ++j) scaled[j] = w[j] * s[j];
  for (int64_t c0 = 0; c0 < cols; c0 += group) {
    const int64_t c1 = std::min(cols, c0 + group);
    const compress_detail::GroupParams p = quantizer.choose({scaled + c0, static_cast<size_t>(c1 - c0)}, {});
    for (int64_t j = c0; j < c1; ++j) delta[j] = w[j] - quantizer.value(quantizer.encode(scaled[j], p), p) / s[j];
  }
}

struct RowTile {
  size_t matrix;
  int64_t begin, rows;
};

// Fixed tiles of kRowTile rows inside each matrix of the group, in group order.
std::vector<RowTile> group_tiles(std::span<const AwqLinear> group) {
  std::vector<RowTile> tiles;
  for (size_t i = 0; i < group.size(); ++i)
    for (int64_t r = 0; r < group[i].rows; r += kRowTile)
      tiles.push_back({i, r, std::min(kRowTile, group[i].rows - r)});
  return tiles;
}

void check_scale_inputs(std::span<const AwqLinear> group, int64_t cols, std::span<const double> hessian,
                        std::span<const float> mean_abs, const QuantScheme& scheme, const AwqScaleOptions& options) {
  require(cols >= 1, kScalesWhere, "cols = " + str(cols) + ", expected >= 1");
  require(!group.empty(), kScalesWhere, "group is empty: expected at least one weight matrix");
  require(options.grid >= 1, kScalesWhere, "grid = " + str(options.grid) + ", expected >= 1");
  try {
    scheme.validate(cols);
  } catch (const Error& e) {
    throw e.with_context(std::string(kScalesWhere) + ": scheme");
  }
  for (size_t i = 0; i < group.size(); ++i)
    compress_detail::check_weight(group[i].weight, group[i].rows, cols,
                                  (std::string(kScalesWhere) + ": group[" + std::to_string(i) + "]").c_str());
  check_hessian(hessian, cols, kScalesWhere);
  require(mean_abs.size() == static_cast<size_t>(cols), kScalesWhere,
          "mean_abs has " + std::to_string(mean_abs.size()) + " values for " + str(cols) + " columns");
  for (size_t j = 0; j < mean_abs.size(); ++j)
    require(std::isfinite(mean_abs[j]) && mean_abs[j] >= 0.0f, kScalesWhere,
            "mean_abs[" + std::to_string(j) + "] = " + std::to_string(mean_abs[j]) + " is not finite and >= 0");
}

}  // namespace

AwqScaleResult awq_search_scales(std::span<const AwqLinear> group, int64_t cols, std::span<const double> hessian,
                                 std::span<const float> mean_abs, const QuantScheme& scheme,
                                 const AwqScaleOptions& options) {
  check_scale_inputs(group, cols, hessian, mean_abs, scheme, options);
  pin_blas_to_one_thread();
  const int64_t group_size = resolved_group(scheme.group_size, cols);
  const size_t grid = static_cast<size_t>(options.grid);

  std::vector<std::vector<float>> scales(grid);
  for (size_t k = 0; k < grid; ++k) scales[k] = candidate_scales(mean_abs, static_cast<double>(k) / options.grid);
  // RTN's rule (absmax, as the reference). NVFP4's tensor scale follows each matrix's scaled weights,
  // so such schemes get one quantizer per (matrix, candidate): S from max_j s_j · max_r |w_rj|, the
  // largest |w·s| (the products are monotone in each factor).
  std::vector<compress_detail::GroupQuantizer> quantizers;
  if (!scheme.has_tensor_scale()) {
    quantizers.emplace_back(scheme, ScaleOptions{});
  } else {
    std::vector<float> column_max(static_cast<size_t>(cols)), scaled_max(static_cast<size_t>(cols));
    for (const AwqLinear& linear : group) {
      std::fill(column_max.begin(), column_max.end(), 0.0f);
      for (int64_t r = 0; r < linear.rows; ++r)
        for (int64_t j = 0; j < cols; ++j)
          column_max[static_cast<size_t>(j)] =
              std::max(column_max[static_cast<size_t>(j)], std::fabs(linear.weight[area(r, cols) + static_cast<size_t>(j)]));
      for (size_t k = 0; k < grid; ++k) {
        for (size_t j = 0; j < column_max.size(); ++j) scaled_max[j] = column_max[j] * scales[k][j];
        quantizers.emplace_back(scheme, ScaleOptions{}, scheme.tensor_scale_for(scaled_max));
      }
    }
  }
  auto quantizer_of = [&](size_t matrix, size_t k) -> const compress_detail::GroupQuantizer& {
    return quantizers.size() == 1 ? quantizers[0] : quantizers[matrix * grid + k];
  };
  const std::vector<float> h(hessian.begin(), hessian.end());

  // partial[t * grid + k]: tile t's error under candidate k. Tiles own their rows and every α, so a
  // tile's matrix rows are read once per α while still in cache.
  const std::vector<RowTile> tiles = group_tiles(group);
  std::vector<double> partial(tiles.size() * grid, 0.0);
  parallel_for(static_cast<int64_t>(tiles.size()), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scaled(static_cast<size_t>(cols)), delta(area(kRowTile, cols)), product(delta.size());
    for (int64_t t = begin; t < end; ++t) {
      const RowTile& tile = tiles[static_cast<size_t>(t)];
      const float* w = group[tile.matrix].weight.data() + tile.begin * cols;
      for (size_t k = 0; k < grid; ++k) {
        for (int64_t r = 0; r < tile.rows; ++r)
          scaled_rounding_error(quantizer_of(tile.matrix, k), w + r * cols, scales[k].data(), cols, group_size, scaled.data(),
                                delta.data() + r * cols);
        partial[static_cast<size_t>(t) * grid + k] =
            quadratic_form_rows(delta.data(), tile.rows, cols, h.data(), product.data());
      }
    }
  });

  AwqScaleResult result;
  result.errors.assign(grid, 0.0);
  for (size_t t = 0; t < tiles.size(); ++t)
    for (size_t k = 0; k < grid; ++k) result.errors[k] += partial[t * grid + k];
  // Strict '<': ties keep the smaller α, and α = 0 (RTN) wins unless something is truly better.
  size_t best = 0;
  for (size_t k = 1; k < grid; ++k)
    if (result.errors[k] < result.errors[best]) best = k;
  result.alpha = static_cast<double>(best) / options.grid;
  result.error = result.errors[best];
  result.scales = std::move(scales[best]);
  return result;
}

// ---- folding helpers ----------------------------------------------------------------------------

void scale_columns(std::span<float> weight, int64_t rows, int64_t cols, std::span<const float> s) {
  require(rows >= 0 && cols >= 0 && weight.size() == area(rows, cols), kFoldWhere,
          "weight has " + std::to_string(weight.size()) + " values for [" + str(rows) + ", " + str(cols) + "]");
  check_divisors(s, static_cast<size_t>(cols), kFoldWhere);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) weight[area(r, cols) + static_cast<size_t>(j)] *= s[static_cast<size_t>(j)];
}

void divide_rows(std::span<float> weight, int64_t rows, int64_t cols, std::span<const float> s) {
  require(rows >= 0 && cols >= 0 && weight.size() == area(rows, cols), kFoldWhere,
          "weight has " + std::to_string(weight.size()) + " values for [" + str(rows) + ", " + str(cols) + "]");
  check_divisors(s, static_cast<size_t>(rows), kFoldWhere);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) weight[area(r, cols) + static_cast<size_t>(j)] /= s[static_cast<size_t>(r)];
}

void divide_vector(std::span<float> gain, std::span<const float> s) {
  check_divisors(s, gain.size(), kFoldWhere);
  for (size_t j = 0; j < gain.size(); ++j) gain[j] /= s[j];
}

std::vector<double> scale_hessian(std::span<const double> hessian, int64_t cols, std::span<const float> s) {
  require(cols >= 0 && hessian.size() == area(cols, cols), kFoldWhere,
          "hessian has " + std::to_string(hessian.size()) + " entries for " + str(cols) + " columns");
  check_divisors(s, static_cast<size_t>(cols), kFoldWhere);
  // x' = x / s elementwise, so x'ᵀx' = diag(1/s) XᵀX diag(1/s): entry (i, j) divides by s_i s_j.
  std::vector<double> inverse(static_cast<size_t>(cols));
  for (size_t j = 0; j < inverse.size(); ++j) inverse[j] = 1.0 / static_cast<double>(s[j]);
  std::vector<double> out(hessian.size());
  for (size_t i = 0; i < inverse.size(); ++i)
    for (size_t j = 0; j < inverse.size(); ++j)
      out[i * inverse.size() + j] = inverse[i] * hessian[i * inverse.size() + j] * inverse[j];
  return out;
}

// ---- clipping search ----------------------------------------------------------------------------

namespace {

// The diagonal blocks H_gg of every group, f32, each n_g x n_g contiguous (what the per-group
// output error δ_gᵀ H_gg δ_g needs; cross-group blocks are never read).
std::vector<std::vector<float>> diagonal_blocks(std::span<const double> hessian, int64_t cols, int64_t group) {
  std::vector<std::vector<float>> blocks;
  for (int64_t c0 = 0; c0 < cols; c0 += group) {
    const int64_t n = std::min(cols, c0 + group) - c0;
    std::vector<float> block(area(n, n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        block[area(i, n) + static_cast<size_t>(j)] =
            static_cast<float>(hessian[area(c0 + i, cols) + static_cast<size_t>(c0 + j)]);
    blocks.push_back(std::move(block));
  }
  return blocks;
}

// Shrink factors c = 1 − k/grid for k = 0, 1, ... while k < max_shrink · grid (k = 0 always: the
// unclipped group is a candidate, so clipping can only lower the error).
std::vector<double> shrink_factors(const AwqClipOptions& options) {
  std::vector<double> c;
  for (int k = 0; k == 0 || k < options.max_shrink * options.grid; ++k)
    c.push_back(1.0 - static_cast<double>(k) / options.grid);
  return c;
}

// δ = w − Q(clamp(w, ±bound)) for one group of n weights, with RTN's absmax rule on the clamped values.
void clipped_rounding_error(const compress_detail::GroupQuantizer& quantizer, const float* w, int64_t n, float bound,
                            float* clamped, float* delta) {
  for (int64_t j = 0; j < n; ++j) clamped[j] = std::clamp(w[j], -bound, bound);
  const compress_detail::GroupParams p = quantizer.choose({clamped, static_cast<size_t>(n)}, {});
  for (int64_t j = 0; j < n; ++j) delta[j] = w[j] - quantizer.value(quantizer.encode(clamped[j], p), p);
}

float group_max_abs(const float* w, int64_t n) {
  float m = 0.0f;
  for (int64_t j = 0; j < n; ++j) m = std::max(m, std::fabs(w[j]));
  return m;
}

void check_clip_inputs(std::span<const float> weight, int64_t rows, int64_t cols, std::span<const double> hessian,
                       const QuantScheme& scheme, const AwqClipOptions& options) {
  require(cols >= 1, kClipWhere, "cols = " + str(cols) + ", expected >= 1");
  require(options.grid >= 1, kClipWhere, "grid = " + str(options.grid) + ", expected >= 1");
  require(options.max_shrink > 0.0 && options.max_shrink <= 1.0, kClipWhere,
          "max_shrink = " + std::to_string(options.max_shrink) + ", expected in (0, 1]");
  try {
    scheme.validate(cols);
  } catch (const Error& e) {
    throw e.with_context(std::string(kClipWhere) + ": scheme");
  }
  compress_detail::check_weight(weight, rows, cols, kClipWhere);
  check_hessian(hessian, cols, kClipWhere);
}

}  // namespace

namespace {

// One task's view of the clipping search: its rows of one group, and where the outcome goes.
struct ClipCell {
  const float* weight;  // the first row's first column of the group
  int64_t stride;       // cols
  int64_t rows, n;      // rows in the tile, columns in the group
  const float* block;   // H_gg, n x n
  // Outputs for row r at index r * out_stride: the unclipped error, the best error, its bound.
  double* before;
  double* after;
  float* bound;
  int64_t out_stride;
};

struct ClipBuffers {
  std::vector<float> clamped, delta, product, maxima;
  explicit ClipBuffers(int64_t group)
      : clamped(static_cast<size_t>(group)),
        delta(area(kRowTile, group)),
        product(delta.size()),
        maxima(static_cast<size_t>(kRowTile)) {}
};

// Every candidate c for every row of the cell: the rows' rounding errors δ (rows x n), one sgemm
// δ·H_gg, then each row's δ_gᵀ H_gg δ_g in double. Strict '<' keeps the larger bound on ties; the
// first candidate (c = 1) initializes.
void search_cell(const compress_detail::GroupQuantizer& quantizer, const std::vector<double>& shrink,
                 const ClipCell& cell, ClipBuffers& buffers) {
  const int64_t n = cell.n;
  for (int64_t r = 0; r < cell.rows; ++r)
    buffers.maxima[static_cast<size_t>(r)] = group_max_abs(cell.weight + r * cell.stride, n);
  for (size_t k = 0; k < shrink.size(); ++k) {
    for (int64_t r = 0; r < cell.rows; ++r) {
      const float bound = static_cast<float>(buffers.maxima[static_cast<size_t>(r)] * shrink[k]);
      clipped_rounding_error(quantizer, cell.weight + r * cell.stride, n, bound, buffers.clamped.data(),
                             buffers.delta.data() + r * n);
    }
    gemm_f32(false, false, cell.rows, n, n, 1.0f, buffers.delta.data(), n, cell.block, n, 0.0f, buffers.product.data(),
             n);
    for (int64_t r = 0; r < cell.rows; ++r) {
      double e = 0;
      for (size_t j = area(r, n); j < area(r + 1, n); ++j)
        e += static_cast<double>(buffers.delta[j]) * buffers.product[j];
      const int64_t at = r * cell.out_stride;
      if (k == 0) cell.before[at] = e;
      if (k == 0 || e < cell.after[at]) {
        cell.after[at] = e;
        cell.bound[at] = static_cast<float>(buffers.maxima[static_cast<size_t>(r)] * shrink[k]);
      }
    }
  }
}

}  // namespace

AwqClipResult awq_search_clip(std::span<const float> weight, int64_t rows, int64_t cols,
                              std::span<const double> hessian, const QuantScheme& scheme,
                              const AwqClipOptions& options) {
  check_clip_inputs(weight, rows, cols, hessian, scheme, options);
  pin_blas_to_one_thread();
  const compress_detail::GroupQuantizer quantizer(scheme, ScaleOptions{}, scheme.tensor_scale_for(weight));
  const int64_t group = resolved_group(scheme.group_size, cols), groups = group_count(group, cols);
  const std::vector<std::vector<float>> blocks = diagonal_blocks(hessian, cols, group);
  const std::vector<double> shrink = shrink_factors(options);

  AwqClipResult result;
  result.max_abs.assign(area(rows, groups), 0.0f);
  // Per (row, group) errors unclipped and chosen, summed at the end in one fixed order; since each
  // chosen error is <= its unclipped one and rounding is monotone, error_after <= error_before exactly.
  std::vector<double> before(area(rows, groups)), after(area(rows, groups));
  const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
  parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
    ClipBuffers buffers(group);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * kRowTile, m = std::min(rows, r0 + kRowTile) - r0;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t c0 = g * group;
        const size_t out = area(r0, groups) + static_cast<size_t>(g);
        const ClipCell cell{weight.data() + r0 * cols + c0,
                            cols,
                            m,
                            std::min(cols, c0 + group) - c0,
                            blocks[static_cast<size_t>(g)].data(),
                            before.data() + out,
                            after.data() + out,
                            result.max_abs.data() + out,
                            groups};
        search_cell(quantizer, shrink, cell, buffers);
      }
    }
  });
  for (size_t i = 0; i < before.size(); ++i) {
    result.error_before += before[i];
    result.error_after += after[i];
  }
  return result;
}

void apply_clip(std::span<float> weight, int64_t rows, int64_t cols, int64_t group_size,
                std::span<const float> max_abs) {
  require(rows >= 0 && cols >= 0 && weight.size() == area(rows, cols), kClipWhere,
          "weight has " + std::to_string(weight.size()) + " values for [" + str(rows) + ", " + str(cols) + "]");
  require(group_size >= 0 && group_size <= cols, kClipWhere,
          "group_size = " + str(group_size) + ", expected 0..cols (" + str(cols) + ")");
  const int64_t group = resolved_group(group_size, cols), groups = group_count(group, cols);
  require(max_abs.size() == area(rows, groups), kClipWhere,
          "max_abs has " + std::to_string(max_abs.size()) + " bounds for " + str(rows) + " rows x " + str(groups) +
              " groups");
  for (size_t i = 0; i < max_abs.size(); ++i)
    require(std::isfinite(max_abs[i]) && max_abs[i] >= 0.0f, kClipWhere,
            "max_abs[" + std::to_string(i) + "] = " + std::to_string(max_abs[i]) + " is not finite and >= 0");
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const float bound = max_abs[area(r, groups) + static_cast<size_t>(j / group)];
      float& w = weight[area(r, cols) + static_cast<size_t>(j)];
      w = std::clamp(w, -bound, bound);
    }
}

}  // namespace lowbit
