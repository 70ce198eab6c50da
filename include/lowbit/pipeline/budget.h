// Spending a bits-per-weight budget where it matters: per-tensor grids for a quantized model
// (`lowbit quantize --format gguf:TYPE --budget B`), the automatic counterpart of llama.cpp's
// hand-written _S/_M/_L mixes.
//
// Sensitivity (an importance-matrix estimate, one pass of the fp model over the calibration text):
// for every quantized tensor l — each block linear and the embedding table, which a tied model also
// uses as its head — and every candidate grid t, RTN on t (clipping search weighted by diag H) gives
//     e_l(t) = Σ_j H_jj Σ_r (W_rj − Ŵ_rj)² / Σ_j H_jj Σ_r W_rj²,
// the diagonal-H estimate of the layer's relative output error ‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖². The allocation
// minimizes Σ_l e_l(t_l) — every layer's relative output error counts alike, however large the layer —
// subject to Σ_l n_l · bits(t_l) ≤ B · Σ_l n_l (n_l: weights of l; bits: the grid's true bits per weight):
// greedily, from the cheapest grid everywhere, upgrading whichever tensor buys the largest drop of
// error per extra bit, while the budget allows.
#pragma once

#include <cstdint>
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
  std::vector<double> errors;  // same length
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
                       double budget_bits_per_weight, const std::vector<std::vector<int32_t>>& calibration);

}  // namespace lowbit
