// A quantization recipe: which method, which scheme for which layer, and which layers stay in
// higher precision. What `lowbit quantize` builds from its flags (and an optional JSON file) and
// what the calibration pipeline (quantize_model.h) follows.
//
// Layer names are Hugging Face names without ".weight": "model.layers.3.mlp.down_proj",
// "lm_head", "model.embed_tokens". Rules match names with shell globs ("*.down_proj",
// "model.layers.0.*"); the last matching rule wins. Built-in defaults, which rules override:
// embeddings and the output head are kept in f16 (as GPTQ/AWQ checkpoints do — they are a small
// share of a large model's weights and the most sensitive), every block linear gets `scheme`.
//
// JSON form (--recipe FILE):
//   {"method": "gptq",
//    "scheme": {"format": "uint4", "group_size": 128, "scale_dtype": "f16"},
//    "gptq": {"percdamp": 0.01, "block_size": 128, "act_order": false, "static_groups": false},
//    "clip_search": false,
//    "layers": [{"match": "*.down_proj", "format": "int8", "group_size": 0},
//               {"match": "lm_head", "keep": "f16"}]},
//    "sparsity": {"method": "sparsegpt", "pattern": "2:4", "scope": "row"},
//    "quantize": true, "sparse_dtype": "f16"}
// Every key is optional; unknown keys are refused (a typo must not be silently ignored).
//
// Sparsity (compress/sparsity.h, sparsegpt.h): with a pruning method, every block linear is pruned
// to the pattern as well — and quantized with the layer's scheme unless "quantize" is false, in
// which case its kept values are stored as `sparse_dtype` floats. Layers a rule keeps in f32/f16/
// bf16 stay dense; the head and the embeddings are never pruned. How the methods combine:
//   sparsegpt            OBS pruning; with quantization, one joint pass (prune and quantize)
//   magnitude | wanda    the mask first; then quantization by `method`, where GPTQ keeps the
//                        pruned weights at zero while compensating ("prune, then GPTQ")
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/compress/gptq.h"
#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/compress/sparsity.h"
#include "lowbit/core/dtype.h"

namespace lowbit {

enum class QuantMethod { kRtn, kGptq, kAwq, kAwqGptq };
std::string_view quant_method_name(QuantMethod method);  // "rtn", "gptq", "awq", "awq+gptq"
// Throws Error naming the spelling and the choices.
QuantMethod parse_quant_method(std::string_view name);
// Whether the method reads calibration data (all but RTN).
bool needs_calibration(QuantMethod method);

enum class PruneMethod { kNone, kMagnitude, kWanda, kSparseGpt };
std::string_view prune_method_name(PruneMethod method);  // "none", "magnitude", "wanda", "sparsegpt"
// Throws Error naming the spelling and the choices.
PruneMethod parse_prune_method(std::string_view name);

struct SparsityRecipe {
  PruneMethod method = PruneMethod::kNone;
  SparsityPattern pattern = SparsityPattern::unstructured(0.5);
  MaskScope scope = MaskScope::kRow;  // magnitude only: rank each row, or the whole layer
  bool enabled() const { return method != PruneMethod::kNone; }
  // Whether the method reads calibration data (Wanda and SparseGPT).
  bool needs_calibration() const { return method == PruneMethod::kWanda || method == PruneMethod::kSparseGpt; }
  std::string to_string() const;  // "2:4 sparsegpt"
};

// What happens to one weight matrix: quantized with `scheme`, or kept as `keep_dtype` (F32/F16/BF16)
// — and, with `sparse`, pruned first (the recipe's SparsityRecipe; kept values then in keep_dtype
// when not quantized).
struct LayerPlan {
  bool quantize = true;
  QuantScheme scheme;
  DType keep_dtype = DType::kF16;
  bool sparse = false;
  std::string sparsity;            // the recipe's pattern and method, for to_string
  std::string to_string() const;  // "int4 g128 (f16 scales)", "kept f16", "2:4 sparsegpt, f16"
};

struct QuantRule {
  std::string pattern;  // shell glob over layer names
  LayerPlan plan;
};

struct QuantRecipe {
  QuantMethod method = QuantMethod::kGptq;
  QuantScheme scheme = QuantScheme::integer(4, 128, /*symmetric=*/false);
  GptqOptions gptq;            // percdamp, block_size, act_order, static_groups (scheme/scale are set per layer)
  bool clip_search = false;    // RTN/GPTQ: MSE clipping search of each group's range (GPTQ's --mse)
  std::vector<QuantRule> rules;
  SparsityRecipe sparsity;
  bool quantize = true;              // false: prune only; block linears keep sparse_dtype values
  DType sparse_dtype = DType::kF16;  // float values of pruned, unquantized layers

  // The plan for a layer: defaults, then every matching rule in order.
  LayerPlan plan_for(const std::string& name) const;
  // Throws Error (naming `where` and the field) on unknown keys, bad types or values.
  static QuantRecipe from_json(const nlohmann::json& json, const std::string& where);
  nlohmann::json to_json() const;
};

// --keep NAME=VALUE: VALUE is f32, f16 or bf16 (kept unquantized) or a bit width 2..8 (quantized
// with the recipe's grid family — integer symmetric or not — and grouping at that width).
QuantRule parse_keep_rule(std::string_view text, const QuantScheme& base);

}  // namespace lowbit
