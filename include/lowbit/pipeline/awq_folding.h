// AWQ's equivalence transform applied to a model block (Lin et al. 2023 §3.2; the search itself is
// compress/awq.h). For each of the block's four input groups — q/k/v (after the attention
// RMSNorm), o (after v through attention), gate/up (after the MLP RMSNorm), down (after up) — the
// per-input-channel scales s = mean|x|^α with the α of least output error are folded:
//     consumers   W ← W · diag(s)
//     producer    RMSNorm gain g ← g / s, or the previous linear's rows (and bias) ← · / s
// so the fp model computes the same function (up to f32 rounding) and the consumers' weights are
// easier to quantize. o_proj is skipped when v_proj's rows do not match o_proj's inputs (grouped-
// query attention: one v row feeds several heads' outputs), as the reference skips it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lowbit/model/llama.h"
#include "lowbit/pipeline/recipe.h"

namespace lowbit {

// hidden: the calibration sequences' inputs to `block`, each [seqlen, hidden] (unchanged).
// Groups whose consumers are all kept unquantized by `recipe` are left alone; a group is searched
// with the scheme of its first quantized consumer. The block's linears must still be dense.
// Returns the chosen α by consumer layer name.
std::map<std::string, double> fold_awq_scales(LlamaModel& model, int64_t block,
                                              const std::vector<std::vector<float>>& hidden, int64_t seqlen,
                                              const QuantRecipe& recipe);

}  // namespace lowbit
