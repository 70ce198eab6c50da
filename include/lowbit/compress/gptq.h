// GPTQ (Frantar, Ashkboos, Hoefler & Alistarh 2022, "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers"; reference code IST-DASLab/gptq, gptq.py `fasterquant`).
//
// Minimizes ‖X Wᵀ − X Ŵᵀ‖² over the grid, one input column at a time: column j is rounded, and its
// rounding error, scaled by the Cholesky factor of H⁻¹ (H = XᵀX), is pushed onto the columns not
// yet rounded, so they compensate. Rows (output channels) are independent given H.
//
// As in the reference:
//   * dead inputs (H_jj = 0: the input never fires) get H_jj = 1 and W[:, j] = 0;
//   * damping λ = percdamp · mean(diag H) is added to the diagonal (default 1%);
//   * U = the upper Cholesky factor of (H + λI)⁻¹; column j's error is (w_j − q_j) / U_jj and the
//     remaining columns receive −error · U[j, j+1:];
//   * lazy batch updates: within a block of `block_size` columns (default 128) updates are applied
//     column by column to the block only; the rest of the row gets them as one matrix product per block;
//   * act-order: columns processed in order of descending H_jj (stable for ties);
//   * groups: a group's scale is chosen, with the RTN rule (rtn.h, including the MSE clipping
//     search), from the compensated weights of its columns at the moment its first column is
//     processed; with act-order the groups are runs of `group_size` consecutive columns in
//     processing order, and QuantizedTensor::g_idx maps each column to its group;
//   * static groups: every group's scale is chosen up front from the original weights and the
//     groups stay runs of consecutive original columns (so no g_idx, even with act-order).
//
// Deliberate differences from the reference (see docs/ARCHITECTURE.md):
//   * U comes from one Cholesky of the column-reversed H and one triangular inverse, in double
//     (linalg/cholesky.h), not Cholesky → inverse → Cholesky in f32; the updates run in f32 as there.
//   * A group that starts inside a block and ends beyond it has its scale chosen from fully
//     compensated weights (the pending updates of the block's earlier columns are applied to a
//     copy first). The reference reads the not-yet-updated matrix there, which differs from the
//     paper's algorithm whenever group_size is not a multiple of block_size or vice versa.
//   * Per-row (group_size 0) scales are chosen after dead columns are zeroed (the reference chooses
//     them before), and symmetric grids are numerics' grids (int4: ±7 × scale), not the reference's
//     uint grid with a fixed middle zero point.
//
// Numerics: H is given in double (accumulate_hessian sums in double); the factorization is double,
// the column updates and the trailing matrix product f32. Loss terms are summed in double.
// Parallel over fixed tiles of rows with single-threaded BLAS in each: the result is bit-identical
// for any thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/numerics/block_format.h"

namespace lowbit {

struct GptqOptions {
  QuantScheme scheme;    // grid, group size (0 = per row), scale dtype; default int4 g128 f16
  ScaleOptions scale;    // per-group scale rule, as RtnOptions::scale (default absmax)
  // kMse search weighted by diag(H) (column j's squared error counts H_jj times), as RTN's importance.
  bool weighted_scale_search = false;
  double percdamp = 0.01;      // λ = percdamp · mean(diag H); >= 0
  int64_t block_size = 128;    // columns per lazy-update block; >= 1
  bool act_order = false;      // process columns by descending H_jj
  bool static_groups = false;  // group scales from the original weights, chosen up front (needs group_size > 0)
};

// H prepared for GPTQ: dead columns fixed, permuted (act-order), damped and factorized. Layers that
// share an input (q, k, v; gate, up) share one H, so the pipeline can prepare it once.
class GptqHessian {
 public:
  // hessian: cols x cols, symmetric (only the upper triangle is read), e.g. from accumulate_hessian;
  // any positive multiple of XᵀX gives the same result (damping is relative). Throws Error when sizes
  // do not match, an entry is not finite, a diagonal entry is negative, percdamp is negative or not
  // finite, or H + λI is not positive definite (naming where; a larger percdamp may help).
  GptqHessian(std::span<const double> hessian, int64_t cols, double percdamp = 0.01, bool act_order = false);

  int64_t cols() const { return cols_; }
  double percdamp() const { return percdamp_; }
  bool act_order() const { return act_order_; }
  double damping() const { return damping_; }  // λ
  int64_t dead_columns() const { return dead_count_; }
  bool dead(int64_t col) const { return dead_[static_cast<size_t>(col)] != 0; }
  // order[k] = the original column processed k-th (identity without act-order).
  std::span<const int64_t> order() const { return order_; }
  // diag(H) after the dead-column fix, before damping, in original column order (importance).
  std::span<const float> diagonal() const { return diagonal_; }
  // U (cols x cols, row-major, upper triangular, f32) in processing order: Uᵀ U = (P(H + λI)Pᵀ)⁻¹.
  std::span<const float> factor() const { return factor_; }

 private:
  int64_t cols_ = 0, dead_count_ = 0;
  double percdamp_ = 0, damping_ = 0;
  bool act_order_ = false;
  std::vector<uint8_t> dead_;
  std::vector<int64_t> order_;
  std::vector<float> diagonal_;
  std::vector<float> factor_;
};

struct GptqStats {
  // Σ_j Σ_r (w_rj − q_rj)² / U_jj² over columns in processing order (w: the compensated weight when
  // column j is rounded). Equals Σ_r δ_rᵀ (H + λI) δ_r with δ = W − Ŵ (dead columns zeroed in W):
  // the GPTQ objective ‖X(W − Ŵ)ᵀ‖² measured with the damped H. (The reference prints half of
  // this, because its H is 2XᵀX/n.)
  double loss = 0;
  double damping = 0;        // λ
  int64_t dead_columns = 0;
};

struct GptqResult {
  QuantizedTensor tensor;
  GptqStats stats;
};

// weight: rows x cols, row-major f32 (rows = outputs, cols = inputs); hessian: cols x cols.
// Throws Error for bad options (scheme, block size, static groups without groups, ...), sizes that
// do not match, non-finite weights, or an H that cannot be factorized.
GptqResult quantize_gptq(std::span<const float> weight, int64_t rows, int64_t cols, std::span<const double> hessian,
                         const GptqOptions& options = {});
// With an already prepared H; its percdamp and act_order must equal the options'.
GptqResult quantize_gptq(std::span<const float> weight, int64_t rows, int64_t cols, const GptqHessian& hessian,
                         const GptqOptions& options = {});

}  // namespace lowbit
