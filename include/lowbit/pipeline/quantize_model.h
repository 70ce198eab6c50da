// Layer-sequential post-training quantization of a Llama-family model (GPTQ's protocol, Frantar
// et al. 2022 §4 "sequential"; the pipeline of docs/ARCHITECTURE.md):
//
//   X ← embeddings of the calibration sequences
//   for each block b:
//     [awq, awq+gptq] one pass of block b over X collects, for each of its four input groups
//        (q/k/v, o, gate/up, down), H = XᵀX and mean |x|; AWQ scales are searched per group and
//        folded (RMSNorm gains, or the rows of v_proj / up_proj), leaving the fp model unchanged;
//     for each stage of the block in dependency order — {q, k, v}, {o}, {gate, up}, {down}:
//        run block b on X up to the stage's input (with the stage's predecessors already
//        quantized), accumulate H for that input, quantize the stage's layers
//        (rtn | gptq | awq: clip search + rtn | awq+gptq: gptq) and swap them into the model;
//     X ← block b (now quantized) applied to X
//   lm_head, when quantized, sees the final RMSNorm of X.
//
// So every layer is quantized against inputs produced by the already-quantized layers before it.
// Memory: the model, X (N·L·hidden floats) and one block's statistics (H is cols² doubles).
// Deterministic: fixed sample order, fixed reduction tiles — same bytes for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/io/model_files.h"
#include "lowbit/pipeline/quantized_model.h"
#include "lowbit/pipeline/recipe.h"

namespace lowbit {

struct LayerReport {
  std::string name;
  std::string plan;            // LayerPlan::to_string()
  int64_t rows = 0, cols = 0;  // out, in
  double bits_per_weight = 0;  // stored bits per weight incl. scales/zero points/g_idx (kept: dtype width)
  // ‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖² on the calibration inputs this layer saw (NaN without calibration).
  double relative_error = 0;
  double seconds = 0;          // quantizing this layer (excluding the calibration passes)
  double awq_alpha = -1;       // the α AWQ chose for this layer's input group (-1: no AWQ)
  double sparsity = 0;         // fraction of weights pruned (0 for dense layers)
};

struct BlockProgress {
  int64_t block = 0, blocks = 0;  // block just finished (1-based), of; block 0: the recipe is valid, work starts
  double seconds = 0;             // this block, passes included
  double mean_relative_error = 0; // over its quantized layers (NaN without calibration)
};

struct QuantizeResult {
  QuantizedModelContents contents;  // what write_quantized_model writes
  std::vector<LayerReport> layers;  // every linear layer and the embeddings, model order
  int64_t calibration_tokens = 0;
  double seconds = 0;
};

// Quantizes `files` (any format open_model reads; block-quantized GGUF weights are taken as their
// f32 dequantization) following `recipe`. `calibration` is required by every method but RTN (for
// RTN it only feeds the error column). Throws Error for impossible recipes (a scheme that does not
// fit a layer, quantized embeddings, ...) before any work is done.
QuantizeResult quantize_model(std::shared_ptr<const ModelFiles> files, const QuantRecipe& recipe,
                              const std::vector<std::vector<int32_t>>& calibration,
                              const std::function<void(const BlockProgress&)>& progress = {});

}  // namespace lowbit
