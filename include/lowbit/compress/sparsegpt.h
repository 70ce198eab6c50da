// SparseGPT (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately Pruned
// in One-Shot"; reference code IST-DASLab/sparsegpt, sparsegpt.py `fasterprune`).
//
// The OBS update GPTQ uses (gptq.h), with pruning as the "rounding": columns are processed left to
// right; column j's weights that the mask prunes become 0 (and, with a grid, the kept ones are
// quantized), and the error (w_j − q_j) / U_jj is pushed onto the columns not yet processed through
// U[j, j+1:], so the kept weights reconstruct the layer's output ‖X Wᵀ − X Ŵᵀ‖².
//
// Mask selection (adaptive, as in the paper §3.3 and the reference):
//   * unstructured: at the start of each block of `block_size` columns (default 128) every row
//     prunes, among the block's columns, those with the smallest w²/U_jj² on the weights as
//     compensated so far. Each row prunes round(ratio·i2) − round(ratio·i1) weights in block
//     [i1, i2), so a row loses exactly round(ratio·cols) in total;
//   * N:M: at the first column of each group of M, each row keeps the N with the largest w²/U_jj²;
//   * a fixed mask (e.g. Wanda's or magnitude's) can be given instead: then this is "prune, then
//     reconstruct" — with a grid, GPTQ that keeps the pruned weights at zero.
// Departure from the reference: the reference thresholds each block's scores over all rows at
// once (so rows end up with different counts); here each row gets the block's share, which makes
// rows independent (parallel, deterministic) and every row's sparsity exact. The paper's analysis
// is per row (the OBS update is row-separable), so this is the paper's algorithm with a per-row
// budget.
//
// Joint pruning and quantization (the paper §3.5): with `quantize`, the kept weights are rounded to
// the scheme's grid in the same pass; a group's scale is chosen, as in GPTQ, from the compensated
// weights of its columns when its first column comes up (weights already known to be pruned count
// as 0). Pruned weights get the code that stands for exactly 0 (the zero point for uintB grids).
// With ratio 0 and a grid the result equals quantize_gptq code for code (tested); with ratio 0 and
// no grid the weights come back unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "lowbit/compress/gptq.h"
#include "lowbit/compress/sparsity.h"

namespace lowbit {

struct SparseGptOptions {
  SparsityPattern pattern;
  // Quantize the kept weights to gptq.scheme in the same pass. gptq.percdamp and gptq.block_size
  // apply either way (N:M rounds the block size down to a multiple of M); act_order and
  // static_groups are refused (SparseGPT's masks and groups follow the column order).
  bool quantize = false;
  GptqOptions gptq;
};

struct SparseGptResult {
  std::vector<float> weight;             // rows x cols: the pruned (and dequantized, with a grid) weights
  std::vector<uint8_t> mask;             // rows x cols, 1 = kept
  std::optional<QuantizedTensor> tensor; // with `quantize`: the codes (pruned weights at the zero code)
  GptqStats stats;                       // loss = Σ (w − q)²/U_jj², as GPTQ's
};

// weight: rows x cols f32; hessian: prepared without act-order, with options.gptq.percdamp.
// fixed_mask: empty (choose masks as above) or rows x cols (then the pattern is not consulted).
// Throws Error for bad options or sizes.
SparseGptResult sparsegpt(std::span<const float> weight, int64_t rows, int64_t cols, const GptqHessian& hessian,
                          const SparseGptOptions& options, std::span<const uint8_t> fixed_mask = {});

}  // namespace lowbit
