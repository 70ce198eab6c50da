// Token sampling and streaming generation.
//
// Temperature 0 is greedy argmax (lowest id on ties). Otherwise softmax(logits / T),
// restricted to the smallest set of top tokens whose mass reaches top_p (nucleus
// sampling, Holtzman et al. 2020), drawn with CounterRng(seed, 0).uniform(step): the same
// seed gives the same text whatever the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "lowbit/io/tokenizer.h"
#include "lowbit/model/llama.h"

namespace lowbit {

struct SamplingOptions {
  float temperature = 0.0f;
  float top_p = 1.0f;
  uint64_t seed = 0;
};

int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, uint64_t step);

struct GenerationOptions {
  int64_t max_new_tokens = 64;
  SamplingOptions sampling;
  bool stop_at_eos = true;  // false: EOS is masked (never sampled), as llama.cpp's --ignore-eos
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (prompt excluded)
  int64_t prompt_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// Runs the prompt, then samples up to max_new_tokens, calling on_token for each as it is
// produced. Stops at EOS (when asked) or at the context length. Error when the prompt alone
// does not fit the context.
GenerationResult generate(const LlamaModel& model, std::span<const int32_t> prompt, const GenerationOptions& options,
                          int32_t eos_id, const std::function<void(int32_t)>& on_token);

}  // namespace lowbit
