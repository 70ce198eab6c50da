// AWQ (Lin, Tang, Tang, Yang, Dang, Gan & Han 2023, "AWQ: Activation-aware Weight Quantization for
// LLM Compression and Acceleration"; reference code mit-han-lab/llm-awq, awq/quantize/auto_scale.py
// `auto_scale_block` / `_search_module_scale` and auto_clip.py `auto_clip_layer`).
//
// AWQ does not change how weights are rounded; it changes *what* is rounded, in two searches that
// each keep the floating-point model exactly as it was:
//
// 1. Scale search (awq_search_scales). A few input channels carry most of the activation
//    magnitude ("salient" channels); their weights' rounding errors are multiplied by large inputs.
//    Multiplying input column j of W by s_j > 1 and dividing input x_j by s_j leaves W x unchanged,
//    but the column's weights now take a larger share of their group's range, so their *relative*
//    rounding error shrinks by about s_j (the paper's eq. 2–3: the error of w·s/s is Δ'/(s·Δ) times
//    that of w). AWQ picks s = mean|x|^α per channel (the paper's eq. 5, s_x = mean |x| of the
//    calibration inputs), normalized by sqrt(max(s)·min(s)) so the scales sit around 1, with α on a
//    grid α = k/grid, k = 0..grid−1 (grid 20 → 0, 0.05, …, 0.95), keeping the α whose quantized
//    weights Ŵ = Q(W·diag(s))·diag(1/s) give the least output error on the calibration set.
//    s is clamped to >= 1e-4 after the power and before the normalization, as the reference does,
//    so a dead channel (mean|x| = 0) gets a small finite scale, never 0 or Inf. α = 0 gives s = 1
//    (0⁰ = 1 too), i.e. plain RTN, so the chosen error is never above RTN's.
//
// 2. Clipping search (awq_search_clip). Per (row, group), the weights are clamped to ±c·max|w| for
//    c = 1, 1 − 1/grid, … while k < max_shrink·grid (defaults: 1.00, 0.95, …, 0.55), keeping the c
//    whose quantized group gives the least output error δ_gᵀ H_gg δ_g (δ_g = w_g − Q(clamp(w_g)),
//    H_gg = the group's diagonal block of H): clipping trades a larger error on the few largest
//    weights for a finer grid for all the others. That per-group quantity is exactly what the
//    reference's per-group output comparison Σ_t (x_t,g · (w_g − q_g))² measures.
//
// Folding the scales (what the calibration pipeline does with AwqScaleResult::scales):
//   * every matrix of the group becomes W·diag(s) (scale_columns), which the quantizer then rounds;
//   * the producer of the group's input divides by s, so the fp model is unchanged:
//       - input of q/k/v (or gate/up) is an RMSNorm output: the norm's gain g becomes g/s (divide_vector);
//       - input of down_proj is up_proj(x) ⊙ act(gate_proj(x)): up_proj's rows r become W_up[r, :]/s_r
//         (divide_rows), which divides its output channel r by s_r;
//       - input of o_proj is the attention output, a mix of v_proj's rows: v_proj's rows divide by s
//         (divide_rows) when the head layout lets v feed o directly (the reference only does this when
//         v and o have the same shape, i.e. no grouped-query attention).
//   * the statistics of the scaled input change: x' = x/s, so H' = diag(1/s) H diag(1/s)
//     (scale_hessian) and mean|x'| = mean|x|/s. Anything run after the scale step — the clipping
//     search, GPTQ — must be given H' (the reference re-runs the block on the scaled model and clips
//     with the new inputs; scale_hessian gives the same matrix without re-running).
//   Pipeline order, as in the reference: scale search and fold for every group of a block, then the
//   clipping search on each scaled weight with H' (the reference skips q_proj and k_proj, whose
//   errors are seen through softmax, not linearly), apply_clip, then the final quantization (RTN with
//   the same scheme, or GPTQ).
//
// Deliberate differences from the reference:
//   * Error measured. The reference scores each α by the output of the whole module the group feeds
//     (the full self-attention block for q/k/v — softmax, RoPE and o_proj included —, the whole MLP
//     for gate/up), as a mean over the calibration tokens in fp16. We score the linear group's own
//     outputs, Σ over its matrices ‖X (W − Ŵ)ᵀ‖²_F, exactly from H = XᵀX over *all* calibration tokens,
//     so the search needs only (W, H, mean|x|) and no model. The clipping search likewise uses all
//     tokens through H instead of the reference's subsample of 512 tokens. Sums, not means: the scale
//     of the loss does not change which candidate wins.
//   * Quantizer. Candidates are rounded with our RTN rule (rtn.h, absmax, scale rounded into the
//     scheme's scale dtype before the weights are rounded, as QuantizedTensor stores it). The
//     reference's pseudo_quantize_tensor computes in the model's dtype and, for its default
//     asymmetric grid (zero_point=True, i.e. our QuantScheme::integer(b, g, false)), takes the range
//     [min w, max w] without forcing 0 into it; its symmetric path is unused there. So the chosen
//     scales and clip bounds are the best for the weights as lowbit will store them. Any of our
//     grids works (nf4, fp4, ...), and a ragged last group is allowed (the reference asserts
//     cols % group_size == 0).
//   * Ties between α (or c) keep the smallest α (the largest c), as the reference's strict `<` does.
//
// Numerics: scales and weights are f32 (the products W·s and divisions by s are single f32
// roundings, the same ones scale_columns performs). Output errors are computed as Σ_r δ_r H δ_rᵀ with
// H rounded to f32 and δ·H by single-threaded sgemm over fixed tiles of rows, the per-row dot products
// and every sum in double: within 1e-7 relative of hessian_weighted_error's all-double computation in
// our checks (576 columns, strongly correlated inputs), far below the differences between
// candidates. Parallel over fixed tiles of rows; results are bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"

namespace lowbit {

// One weight matrix of a linear group: rows x cols, row-major f32 (rows = outputs). All matrices of
// a group read the same input (q, k, v; gate, up; or one layer alone), so they share H and mean|x|.
struct AwqLinear {
  std::span<const float> weight;
  int64_t rows = 0;
};

struct AwqScaleOptions {
  int grid = 20;  // α = k / grid for k = 0..grid-1; >= 1 (grid 1 tries α = 0 only: RTN)
};

struct AwqScaleResult {
  std::vector<float> scales;   // cols: s, normalized; fold as described above
  double alpha = 0;            // the chosen α
  double error = 0;            // Σ over the group's matrices of ‖X(W − Ŵ)ᵀ‖² at the chosen α
  std::vector<double> errors;  // grid entries: the error of each α = k / grid
};

// The AWQ scale search for one linear group. hessian: cols x cols = Σ XᵀX of the group's input
// (accumulate_hessian), symmetric; mean_abs: cols, mean |x| per input channel
// (ChannelStatistics::mean_abs). scheme: how every matrix will be quantized (absmax RTN rule).
// Throws Error (naming the argument) when the group is empty, sizes do not match, a value is not
// finite, mean_abs has a negative entry, grid < 1, or the scheme does not validate for cols.
AwqScaleResult awq_search_scales(std::span<const AwqLinear> group, int64_t cols, std::span<const double> hessian,
                                 std::span<const float> mean_abs, const QuantScheme& scheme,
                                 const AwqScaleOptions& options = {});

// Folding helpers (see above). All throw Error on mismatched sizes; s must be finite and nonzero.
// W ← W·diag(s): column j of every row times s_j (the group's weights).
void scale_columns(std::span<float> weight, int64_t rows, int64_t cols, std::span<const float> s);
// Row r ← row r / s_r (the previous linear layer, whose output channel r is the group's input r).
void divide_rows(std::span<float> weight, int64_t rows, int64_t cols, std::span<const float> s);
// gain_j ← gain_j / s_j (an RMSNorm gain).
void divide_vector(std::span<float> gain, std::span<const float> s);
// diag(1/s) H diag(1/s): the Hessian of the scaled input x/s, in double (H' is what the clipping
// search and GPTQ need after the scales are folded).
std::vector<double> scale_hessian(std::span<const double> hessian, int64_t cols, std::span<const float> s);

struct AwqClipOptions {
  int grid = 20;            // c = 1 - k / grid; >= 1
  double max_shrink = 0.5;  // k = 0, 1, ... while k < max_shrink * grid; in (0, 1]
};

struct AwqClipResult {
  std::vector<float> max_abs;  // rows x groups: the clamp bound c·max|w| chosen for each (row, group)
  // Σ over (row, group) of δ_gᵀ H_gg δ_g — the quantity the search minimizes (block-diagonal in the
  // groups; the cross-group terms of the full output error are not part of it, as in the reference)
  // — with no clipping (c = 1) and with the chosen bounds. error_after <= error_before always.
  double error_before = 0;
  double error_after = 0;
};

// The AWQ clipping search for one weight W [rows x cols] (already scaled, with the Hessian of its
// scaled input). Groups are scheme.group_size consecutive columns (0 = the whole row; the last group
// may be shorter). Every scheme clamps symmetrically to [−c·m, c·m], m = max|w| of the group, also
// asymmetric (uint) ones, as the reference does. Throws Error (naming the argument) on mismatched
// sizes, non-finite values, bad options or a scheme that does not validate for cols.
AwqClipResult awq_search_clip(std::span<const float> weight, int64_t rows, int64_t cols,
                              std::span<const double> hessian, const QuantScheme& scheme,
                              const AwqClipOptions& options = {});

// Clamps each (row, group) of W to [−max_abs, max_abs] (max_abs: rows x groups, >= 0, e.g.
// AwqClipResult::max_abs). group_size 0 = the whole row. Throws Error on mismatched sizes.
void apply_clip(std::span<float> weight, int64_t rows, int64_t cols, int64_t group_size,
                std::span<const float> max_abs);

}  // namespace lowbit
