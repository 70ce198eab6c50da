// Spending a bits-per-weight budget where it matters: per-tensor grids for a quantized model
// (`lowbit quantize --format gguf:TYPE --budget B`), the automatic counterpart of llama.cpp's
// hand-written _S/_M/_L mixes.
//
// Sensitivity, measured (HAWQ's per-layer sensitivity, with the KL divergence of the model's output
// taken for the loss): one pass of the fp model over the calibration text collects diag H of every
// linear's input. For every quantized tensor l — each block linear and the embedding table, which a
// tied model also uses as its head — and every candidate grid t, RTN on t (clipping search weighted
// by diag H) gives the diagonal-H estimate of the layer's relative output error
//     e_l(t) = Σ_j H_jj Σ_r (W_rj − Ŵ_rj)² / Σ_j H_jj Σ_r W_rj²   (≈ ‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖²).
// Then the probe: with l alone on the cheapest grid t_0 and the rest of the model in full precision,
// the mean KL(P_fp || P) of the next-token distributions over the first calibration window
// (probe_tokens at most) is measured: KL_l(t_0). Both are quadratic in the weight error to first
// order, so the other grids' KL is estimated along e: KL_l(t) = KL_l(t_0) · e_l(t) / e_l(t_0).
// The allocation minimizes Σ_l KL_l(t_l) (the per-layer effects taken as additive, as in HAWQ)
// subject to Σ_l n_l · bits(t_l) ≤ B · Σ_l n_l (n_l: weights of l; bits: the grid's true bits per
// weight): greedily, from the cheapest grid everywhere, upgrading whichever tensor buys the largest
// drop of KL per extra bit, while the budget allows.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/io/model_files.h"

namespace lowbit {

// One tensor's choices: its weight count and, per candidate (cheapest first), bits per weight and error.
struct BudgetItem {
  std::string name;
  int64_t weights = 0;
  std::vector<double> bits;    // strictly increasing
  std::vector<double> errors;  // same length: what the allocation minimizes (estimated KL)
  std::vector<double> relative_errors;  // e_l(t) of each candidate (plan_budget; empty otherwise)
  double measured_kld = 0;               // KL_l(t_0), the probe on the cheapest grid (plan_budget)
};

// The greedy allocation above: the chosen candidate index per item. Throws Error when even the
// cheapest candidates exceed the budget (naming the smallest budget possible).
std::vector<size_t> allocate_budget(const std::vector<BudgetItem>& items, double budget_bits_per_weight);

struct BudgetPlan {
  std::map<std::string, QuantScheme> schemes;  // layer name ("model.embed_tokens" for the table) → grid
  std::vector<BudgetItem> items;               // the measured choices, for reports
  std::vector<size_t> chosen;
  double bits_per_weight = 0;                  // achieved, over the planned tensors
};

// Measures and allocates: `candidates` are the grids (cheapest first, e.g. IQ4_NL, Q5_0, Q5_1, Q8_0),
// `calibration` the token windows (sample_calibration). Every block linear and the embedding table
// are planned, except tensors whose rows are not whole groups of every candidate (left to the caller).
// Deterministic.
BudgetPlan plan_budget(std::shared_ptr<const ModelFiles> files, const std::vector<QuantScheme>& candidates,
                       double budget_bits_per_weight, const std::vector<std::vector<int32_t>>& calibration,
                       int64_t probe_tokens = 512,
                       const std::function<void(int64_t measured, int64_t tensors)>& progress = {});

}  // namespace lowbit
