#include "lowbit/compress/gptq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "compress/group_quantizer.h"
#include "compress/mask_select.h"
#include "lowbit/compress/sparsegpt.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/linalg/blas.h"
#include "lowbit/linalg/cholesky.h"

namespace lowbit {

namespace {

constexpr const char* kWhere = "gptq";
// Rows per work item. Fixed, so the work each row sees (and so its result) does not depend on the
// thread count. The lazy update's sgemm packs its U panel once per call; 256 rows amortize that
// (sgemm 256 x 3968 x 128 ran at 121 GFLOP/s on the dev VM against 94 with 64 rows).
constexpr int64_t kRowTile = 256;

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

GptqHessian::GptqHessian(std::span<const double> hessian, int64_t cols, double percdamp, bool act_order)
    : cols_(cols), percdamp_(percdamp), act_order_(act_order) {
  const char* where = "gptq hessian";
  require(cols >= 0, where, "negative column count " + str(cols));
  require(hessian.size() == static_cast<size_t>(cols) * static_cast<size_t>(cols), where,
          "H has " + std::to_string(hessian.size()) + " entries, expected " + str(cols) + "x" + str(cols));
  require(std::isfinite(percdamp) && percdamp >= 0, where, "percdamp must be finite and >= 0, found " + std::to_string(percdamp));
  for (size_t i = 0; i < hessian.size(); ++i)
    if (!std::isfinite(hessian[i]))
      throw Error(where, "H[" + std::to_string(i / static_cast<size_t>(cols)) + ", " +
                             std::to_string(i % static_cast<size_t>(cols)) + "] is not finite");
  const size_t n = static_cast<size_t>(cols);
  std::vector<double> diag(n);
  dead_.assign(n, 0);
  for (size_t j = 0; j < n; ++j) {
    diag[j] = hessian[j * n + j];
    require(diag[j] >= 0, where, "H[" + std::to_string(j) + ", " + std::to_string(j) + "] = " + std::to_string(diag[j]) +
                                     " is negative (H = XᵀX has a nonnegative diagonal)");
    if (diag[j] == 0) {
      // A dead input (never nonzero in calibration): H_jj = 1 keeps H invertible and the column's
      // weights are zeroed, so it costs nothing and pushes nothing onto the others.
      diag[j] = 1;
      dead_[j] = 1;
      ++dead_count_;
    }
  }
  diagonal_.assign(diag.begin(), diag.end());
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (act_order)
    std::stable_sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) { return diag[static_cast<size_t>(a)] > diag[static_cast<size_t>(b)]; });
  double mean = 0;
  for (double d : diag) mean += d;
  mean = n ? mean / static_cast<double>(n) : 0.0;
  damping_ = percdamp * mean;
  // P H Pᵀ + λI in processing order; only the upper triangle is read (from H's upper triangle).
  std::vector<double> permuted(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const size_t a = static_cast<size_t>(order_[i]);
    for (size_t j = i; j < n; ++j) {
      const size_t b = static_cast<size_t>(order_[j]);
      permuted[i * n + j] = hessian[std::min(a, b) * n + std::max(a, b)];
    }
    permuted[i * n + i] = diag[a] + damping_;
  }
  std::vector<double> u;
  try {
    u = upper_cholesky_of_inverse(permuted, cols);
  } catch (const Error& e) {
    throw Error(where, std::string(e.what()) + " (with damping λ = " + std::to_string(damping_) +
                           " = percdamp " + std::to_string(percdamp) + " x mean diag; try a larger percdamp)");
  }
  factor_.assign(u.begin(), u.end());
}

GptqResult quantize_gptq(std::span<const float> weight, int64_t rows, int64_t cols, std::span<const double> hessian,
                         const GptqOptions& options) {
  // Cheap checks first, so bad options are refused before the factorization.
  require(hessian.size() == static_cast<size_t>(std::max<int64_t>(cols, 0)) * static_cast<size_t>(std::max<int64_t>(cols, 0)),
          kWhere, "H has " + std::to_string(hessian.size()) + " entries for " + str(cols) + " columns (expected " +
                      str(cols) + "x" + str(cols) + ")");
  try {
    options.scheme.validate(cols);
  } catch (const Error& e) {
    throw e.with_context(kWhere);
  }
  require(options.block_size >= 1, kWhere, "block size must be >= 1, found " + str(options.block_size));
  require(!options.static_groups || options.scheme.group_size > 0, kWhere,
          "static groups need a group size > 0 (per-row scales are always chosen up front)");
  compress_detail::check_weight(weight, rows, cols, kWhere);
  const GptqHessian prepared(hessian, cols, options.percdamp, options.act_order);
  return quantize_gptq(weight, rows, cols, prepared, options);
}

namespace {

// What the OBS sweep does besides GPTQ's rounding: prune (SparseGPT), and whether to round at all.
struct SweepPlan {
  bool quantize = true;
  const SparsityPattern* pattern = nullptr;  // null: no pruning (GPTQ)
  std::span<const uint8_t> fixed_mask;       // rows x cols, or empty (masks chosen adaptively)
};

struct SweepResult {
  std::optional<QuantizedTensor> tensor;  // with plan.quantize
  std::vector<float> values;              // with a pattern: rows x cols, the weights as they end up
  std::vector<uint8_t> mask;              // with a pattern: rows x cols, 1 = kept
  GptqStats stats;
};

// The column sweep shared by GPTQ and SparseGPT (gptq.h, sparsegpt.h): one algorithm, where a
// column's "rounding" is the grid (GPTQ), the mask (SparseGPT without a grid) or both.
SweepResult obs_sweep(std::span<const float> weight, int64_t rows, int64_t cols, const GptqHessian& hessian,
                      const GptqOptions& options, const SweepPlan& plan) {
  SweepResult result;
  if (plan.quantize) {
    try {
      result.tensor.emplace(rows, cols, options.scheme);
    } catch (const Error& e) {
      throw e.with_context(kWhere);
    }
  }
  require(options.block_size >= 1, kWhere, "block size must be >= 1, found " + str(options.block_size));
  require(!options.static_groups || options.scheme.group_size > 0, kWhere,
          "static groups need a group size > 0 (per-row scales are always chosen up front)");
  require(hessian.cols() == cols, kWhere,
          "the prepared H is for " + str(hessian.cols()) + " columns, the weight has " + str(cols));
  require(hessian.percdamp() == options.percdamp && hessian.act_order() == options.act_order, kWhere,
          "the prepared H was made with percdamp " + std::to_string(hessian.percdamp()) + ", act_order " +
              (hessian.act_order() ? "on" : "off") + "; the options ask for percdamp " +
              std::to_string(options.percdamp) + ", act_order " + (options.act_order ? "on" : "off"));
  compress_detail::check_weight(weight, rows, cols, kWhere);
  pin_blas_to_one_thread();

  const SparsityPattern* pattern = plan.pattern;
  const bool fixed = !plan.fixed_mask.empty();
  const bool nm = pattern && !fixed && pattern->nm();
  const bool adaptive_unstructured = pattern && !fixed && !pattern->nm() && !pattern->none();
  // NVFP4's tensor scale from the weights before any error feedback (updates that outgrow it saturate
  // their group's UE4M3 scale at 448, as any clipped scale does).
  const float tensor_scale = options.scheme.tensor_scale_for(weight);
  if (result.tensor) result.tensor->set_tensor_scale(tensor_scale);
  const compress_detail::GroupQuantizer quantizer(options.scheme, options.scale, tensor_scale);
  const int64_t group = result.tensor ? result.tensor->group_size() : std::max<int64_t>(cols, 1);
  const int64_t groups = result.tensor ? result.tensor->groups_per_row() : 1;
  int64_t block = std::min<int64_t>(options.block_size, std::max<int64_t>(cols, 1));
  // N:M groups must not straddle a block: their scores are read from the block's columns.
  if (nm) block = std::max<int64_t>(pattern->m, block - block % pattern->m);
  // Per-row schemes and static groups choose every scale before any compensation; otherwise a
  // group's scale is chosen when its first column (in processing order) comes up.
  const bool upfront = options.static_groups || options.scheme.group_size == 0;
  const std::span<const int64_t> order = hessian.order();
  const std::span<const float> u = hessian.factor();
  const std::span<const float> diagonal = hessian.diagonal();
  std::vector<float> importance_processing;  // diag(H) in processing order, for dynamic groups
  if (options.weighted_scale_search) {
    importance_processing.resize(static_cast<size_t>(cols));
    for (int64_t k = 0; k < cols; ++k) importance_processing[static_cast<size_t>(k)] = diagonal[static_cast<size_t>(order[static_cast<size_t>(k)])];
  }
  // The group (scale index) of the column processed k-th.
  auto group_at = [&](int64_t k) { return upfront ? order[static_cast<size_t>(k)] / group : k / group; };
  // Parameters are chosen per unit: a group, or a super-block of groups (two-level scales).
  const int64_t unit = quantizer.unit(group);
  if (pattern) {
    result.values.resize(static_cast<size_t>(rows * cols));
    result.mask.resize(static_cast<size_t>(rows * cols));
  }

  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
  parallel_for(tiles, 1, [&](int64_t tile_begin, int64_t tile_end) {
    // w_tile: the tile's rows in processing order (row-major). Inside a block the columns are
    // worked on transposed (w_block[column][row]), so that rounding a column and the rank-1
    // update of the block's later columns run over contiguous rows; the block's errors
    // (err[column][row]) then feed the lazy update of the rest of the tile as one sgemm.
    std::vector<float> w_tile, w_block, err, original, scratch, scales_now, values(static_cast<size_t>(kRowTile));
    std::vector<float> values_processing, scores;   // pruning: final values [column][row]; mask scores
    std::vector<uint8_t> mask_tile, segment_mask;   // pruning: [row][column] in processing order, 1 = kept
    std::vector<int64_t> select_order;
    std::vector<int32_t> zeros_now;
    std::vector<float> mins_now, mins(quantizer.float_min() ? static_cast<size_t>(groups) : 0);
    std::vector<uint8_t> codes_processing, codes(static_cast<size_t>(cols)), zeros;
    std::vector<compress_detail::GroupParams> params;
    std::vector<float> scales(static_cast<size_t>(groups));
    std::vector<double> loss;
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      const int64_t r0 = tile * kRowTile, r1 = std::min(rows, r0 + kRowTile), m = r1 - r0;
      w_tile.resize(static_cast<size_t>(m * cols));
      for (int64_t r = 0; r < m; ++r) {
        const float* src = weight.data() + (r0 + r) * cols;
        float* dst = w_tile.data() + r * cols;
        for (int64_t k = 0; k < cols; ++k) {
          const int64_t c = order[static_cast<size_t>(k)];
          dst[k] = hessian.dead(c) ? 0.0f : src[c];
        }
      }
      if (pattern) {
        mask_tile.assign(static_cast<size_t>(m * cols), 1);
        if (fixed)
          for (int64_t r = 0; r < m; ++r)
            for (int64_t k = 0; k < cols; ++k)
              mask_tile[static_cast<size_t>(r * cols + k)] = plan.fixed_mask[static_cast<size_t>((r0 + r) * cols + order[static_cast<size_t>(k)])] != 0;
        values_processing.resize(static_cast<size_t>(cols * m));
      }
      // Whether the weight of tile row r processed k-th is pruned (as far as known now).
      auto pruned = [&](int64_t r, int64_t k) { return pattern && mask_tile[static_cast<size_t>(r * cols + k)] == 0; };
      params.assign(static_cast<size_t>(m * groups), {});
      // The parameters of tile row r's groups in the unit starting at column c0.
      auto unit_params = [&](int64_t r, int64_t c0) {
        const int64_t g0 = c0 / group, g1 = std::min(groups, (c0 + unit + group - 1) / group);
        return std::span(params).subspan(static_cast<size_t>(r * groups + g0), static_cast<size_t>(g1 - g0));
      };
      if (result.tensor && upfront) {
        original.resize(static_cast<size_t>(cols));
        for (int64_t r = 0; r < m; ++r) {
          const float* src = weight.data() + (r0 + r) * cols;
          for (int64_t c = 0; c < cols; ++c)
            original[static_cast<size_t>(c)] = hessian.dead(c) || (fixed && !plan.fixed_mask[static_cast<size_t>((r0 + r) * cols + c)]) ? 0.0f : src[c];
          for (int64_t c0 = 0; c0 < cols; c0 += unit) {
            const size_t n = static_cast<size_t>(std::min(cols, c0 + unit) - c0);
            const auto importance = options.weighted_scale_search ? diagonal.subspan(static_cast<size_t>(c0), n)
                                                                  : std::span<const float>();
            quantizer.choose_groups({original.data() + c0, n}, importance, group, unit_params(r, c0));
          }
        }
      }
      codes_processing.resize(result.tensor ? static_cast<size_t>(cols * m) : 0);  // [column][row]
      w_block.resize(static_cast<size_t>(block * m));
      err.assign(static_cast<size_t>(block * m), 0.0f);
      scales_now.resize(static_cast<size_t>(m));
      zeros_now.resize(static_cast<size_t>(m));
      mins_now.resize(static_cast<size_t>(m));
      loss.assign(static_cast<size_t>(m), 0.0);
      // Keeps, in tile row r, all but the `prune` columns of [k0, k1) with the least w²/U_kk²
      // (the OBS cost of zeroing one weight), on the weights as compensated now.
      auto select = [&](int64_t r, int64_t k0, int64_t k1, int64_t prune, int64_t i1) {
        scores.resize(static_cast<size_t>(k1 - k0));
        for (int64_t k = k0; k < k1; ++k) {
          const float w = w_block[static_cast<size_t>((k - i1) * m + r)], d = u[static_cast<size_t>(k * cols + k)];
          scores[static_cast<size_t>(k - k0)] = (w * w) / (d * d);
        }
        segment_mask.resize(scores.size());
        compress_detail::keep_largest(scores.data(), k1 - k0, prune, segment_mask.data(), select_order);
        std::copy(segment_mask.begin(), segment_mask.end(), mask_tile.begin() + r * cols + k0);
      };
      for (int64_t i1 = 0; i1 < cols; i1 += block) {
        const int64_t i2 = std::min(cols, i1 + block);
        for (int64_t r = 0; r < m; ++r)
          for (int64_t i = i1; i < i2; ++i) w_block[static_cast<size_t>((i - i1) * m + r)] = w_tile[static_cast<size_t>(r * cols + i)];
        if (adaptive_unstructured)
          for (int64_t r = 0; r < m; ++r) select(r, i1, i2, pattern->pruned_before(i2) - pattern->pruned_before(i1), i1);
        for (int64_t i = i1; i < i2; ++i) {
          float* x = w_block.data() + (i - i1) * m;
          if (nm && i % pattern->m == 0) {
            const int64_t size = std::min<int64_t>(pattern->m, cols - i);
            for (int64_t r = 0; r < m; ++r) select(r, i, i + size, size - pattern->kept_in_group(size), i1);
          }
          if (result.tensor && !upfront && i % unit == 0) {
            // A new group (or super-block of groups): its parameters from the compensated weights of
            // its columns. Those inside this block are current; those beyond it still lack the updates
            // from this block's columns i1 .. i-1, which are applied to a copy here. Weights known to
            // be pruned count as 0.
            const int64_t end = std::min(cols, i + unit);
            scratch.resize(static_cast<size_t>(end - i));
            for (int64_t r = 0; r < m; ++r) {
              for (int64_t c = i; c < std::min(end, i2); ++c) scratch[static_cast<size_t>(c - i)] = w_block[static_cast<size_t>((c - i1) * m + r)];
              for (int64_t c = i2; c < end; ++c) {
                float v = w_tile[static_cast<size_t>(r * cols + c)];
                for (int64_t k = i1; k < i; ++k) v -= err[static_cast<size_t>((k - i1) * m + r)] * u[static_cast<size_t>(k * cols + c)];
                scratch[static_cast<size_t>(c - i)] = v;
              }
              if (pattern)
                for (int64_t c = i; c < end; ++c)
                  if (pruned(r, c)) scratch[static_cast<size_t>(c - i)] = 0.0f;
              const auto importance = options.weighted_scale_search
                                          ? std::span<const float>(importance_processing).subspan(static_cast<size_t>(i), scratch.size())
                                          : std::span<const float>();
              quantizer.choose_groups(scratch, importance, group, unit_params(r, i));
            }
          }
          if (result.tensor) {
            const int64_t g = group_at(i);
            for (int64_t r = 0; r < m; ++r) {
              scales_now[static_cast<size_t>(r)] = params[static_cast<size_t>(r * groups + g)].scale;
              zeros_now[static_cast<size_t>(r)] = params[static_cast<size_t>(r * groups + g)].zero;
              mins_now[static_cast<size_t>(r)] = params[static_cast<size_t>(r * groups + g)].min;
            }
            uint8_t* column_codes = codes_processing.data() + i * m;
            quantizer.round(x, scales_now.data(), zeros_now.data(), mins_now.data(), m, column_codes, values.data());
            if (pattern)
              for (int64_t r = 0; r < m; ++r)
                if (pruned(r, i)) {
                  column_codes[r] = quantizer.zero_code(params[static_cast<size_t>(r * groups + g)]);
                  values[static_cast<size_t>(r)] = 0.0f;
                }
          } else {
            for (int64_t r = 0; r < m; ++r) values[static_cast<size_t>(r)] = pruned(r, i) ? 0.0f : x[r];
          }
          if (pattern) std::copy(values.begin(), values.begin() + m, values_processing.begin() + i * m);
          const float* ui = u.data() + i * cols;
          const float d = ui[i];
          const double d2 = static_cast<double>(d) * d;
          float* e = err.data() + (i - i1) * m;
          for (int64_t r = 0; r < m; ++r) {
            const float delta = x[r] - values[static_cast<size_t>(r)];
            e[r] = delta / d;
            loss[static_cast<size_t>(r)] += static_cast<double>(delta) * delta / d2;
          }
          // The block's later columns: w_block[c][:] -= U[i, c] · e for c in (i, i2).
          if (i + 1 < i2)
            cblas_sger(CblasRowMajor, static_cast<int>(i2 - i - 1), static_cast<int>(m), -1.0f, ui + i + 1, 1, e, 1,
                       w_block.data() + (i + 1 - i1) * m, static_cast<int>(m));
        }
        // Lazy batch update: the rest of each row receives the block's errors at once,
        // w_tile[:, i2:] -= errᵀ · U[i1:i2, i2:].
        if (i2 < cols)
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(cols - i2),
                      static_cast<int>(i2 - i1), -1.0f, err.data(), static_cast<int>(m), u.data() + i1 * cols + i2,
                      static_cast<int>(cols), 1.0f, w_tile.data() + i2, static_cast<int>(cols));
      }
      zeros.resize(quantizer.asymmetric() ? static_cast<size_t>(groups) : 0);
      for (int64_t r = 0; r < m; ++r) {
        if (pattern)
          for (int64_t k = 0; k < cols; ++k) {
            const size_t at = static_cast<size_t>((r0 + r) * cols + order[static_cast<size_t>(k)]);
            result.values[at] = values_processing[static_cast<size_t>(k * m + r)];
            result.mask[at] = mask_tile[static_cast<size_t>(r * cols + k)];
          }
        row_loss[static_cast<size_t>(r0 + r)] = loss[static_cast<size_t>(r)];
        if (!result.tensor) continue;
        for (int64_t k = 0; k < cols; ++k)
          codes[static_cast<size_t>(order[static_cast<size_t>(k)])] = codes_processing[static_cast<size_t>(k * m + r)];
        for (int64_t g = 0; g < groups; ++g) {
          const auto& p = params[static_cast<size_t>(r * groups + g)];
          scales[static_cast<size_t>(g)] = p.scale;
          if (!zeros.empty()) zeros[static_cast<size_t>(g)] = static_cast<uint8_t>(p.zero);
          if (!mins.empty()) mins[static_cast<size_t>(g)] = p.min;
        }
        result.tensor->set_row(r0 + r, codes, scales, zeros, mins);
      }
    }
  });

  if (result.tensor && !upfront && options.act_order) {
    // Groups are runs of the processing order; record each column's group where that differs from c / group.
    std::vector<int32_t> g_idx(static_cast<size_t>(cols));
    bool trivial = true;
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t c = order[static_cast<size_t>(k)];
      g_idx[static_cast<size_t>(c)] = static_cast<int32_t>(k / group);
      trivial = trivial && k / group == c / group;
    }
    if (!trivial) result.tensor->set_g_idx(std::move(g_idx));
  }

  for (double l : row_loss) result.stats.loss += l;
  result.stats.damping = hessian.damping();
  result.stats.dead_columns = hessian.dead_columns();
  return result;
}

}  // namespace

GptqResult quantize_gptq(std::span<const float> weight, int64_t rows, int64_t cols, const GptqHessian& hessian,
                         const GptqOptions& options) {
  SweepResult sweep = obs_sweep(weight, rows, cols, hessian, options, SweepPlan{});
  return GptqResult{std::move(*sweep.tensor), sweep.stats};
}

SparseGptResult sparsegpt(std::span<const float> weight, int64_t rows, int64_t cols, const GptqHessian& hessian,
                          const SparseGptOptions& options, std::span<const uint8_t> fixed_mask) {
  constexpr const char* where = "sparsegpt";
  options.pattern.validate();
  require(!options.gptq.act_order, where, "act-order is not supported: masks and groups follow the column order");
  require(!options.gptq.static_groups, where, "static groups are not supported with pruning");
  require(fixed_mask.empty() || fixed_mask.size() == static_cast<size_t>(rows) * static_cast<size_t>(std::max<int64_t>(cols, 0)),
          where, "the fixed mask has " + std::to_string(fixed_mask.size()) + " entries, expected " + str(rows) + "x" + str(cols));
  SweepPlan plan;
  plan.quantize = options.quantize;
  plan.pattern = &options.pattern;
  plan.fixed_mask = fixed_mask;
  SweepResult sweep;
  try {
    sweep = obs_sweep(weight, rows, cols, hessian, options.gptq, plan);
  } catch (const Error& e) {
    throw Error(where, std::string(e.what()).starts_with("gptq: ") ? std::string(e.what()).substr(6) : e.what());
  }
  SparseGptResult result;
  result.weight = std::move(sweep.values);
  result.mask = std::move(sweep.mask);
  result.tensor = std::move(sweep.tensor);
  result.stats = sweep.stats;
  return result;
}

}  // namespace lowbit
