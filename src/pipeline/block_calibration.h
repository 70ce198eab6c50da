// Pieces of the layer-sequential pipeline shared by its steps (private to src/pipeline).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lowbit/compress/statistics.h"
#include "lowbit/model/llama.h"

namespace lowbit::pipeline_detail {

// Statistics of one linear layer's input over every calibration token.
struct InputStatistics {
  int64_t cols = 0;
  std::vector<double> hessian;  // Σ XᵀX (cols x cols)
  ChannelStatistics channels;   // Σ|x|, Σx² per input channel (when asked for)
};

// Runs block `block` over every calibration sequence (hidden[i]: [seqlen, hidden], left unchanged)
// until the input of the last layer in `inputs` has been observed, accumulating each named layer's
// input statistics. Sequences are added in order, one call per sequence: deterministic.
std::map<std::string, InputStatistics> collect_input_statistics(LlamaModel& model, int64_t block,
                                                                const std::vector<std::vector<float>>& hidden,
                                                                int64_t seqlen, const std::vector<std::string>& inputs,
                                                                bool channels);

// A dense layer's weights as f32 [out, in] (Error when the layer is already quantized);
// "model.embed_tokens" names the embedding table (as does "lm_head" when tied).
std::vector<float> dense_weight(const LlamaModel& model, const std::string& name);
// The bias of a dense layer (empty when none).
std::vector<float> dense_bias(const LlamaModel& model, const std::string& name);
// Replaces a layer by a DenseLinear over f32 `weight` [out, in] and `bias` (empty: none).
void set_dense_weight(LlamaModel& model, const std::string& name, const std::vector<float>& weight,
                      const std::vector<float>& bias);

}  // namespace lowbit::pipeline_detail
