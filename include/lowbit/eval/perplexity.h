// Perplexity and KL divergence with the method stated exactly.
//
// The token stream (a whole file tokenized once) is cut into consecutive,
// non-overlapping windows of `context` tokens; each window runs from an empty KV cache.
//   full      scores every prediction in the window: tokens 1..context-1 given their prefix
//             (context-1 per window; the GPTQ/AWQ papers' protocol);
//   llamacpp  scores only the second half: tokens context/2+1..context-1 (context/2-1 per
//             window), and, when the tokenizer adds BOS, puts BOS in each window's first slot,
//             exactly as llama.cpp's llama-perplexity does.
// Per-token negative log-likelihoods are computed with a double-precision log-softmax.
// PPL = exp(mean NLL); its standard error is llama.cpp's: PPL · sqrt(var(NLL) / (N − 1)).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "lowbit/model/llama.h"

namespace lowbit {

enum class PerplexityMethod { kFull, kLlamaCpp };
std::string_view perplexity_method_name(PerplexityMethod method);
// A sentence that says exactly what was scored, printed with every result.
std::string perplexity_method_description(PerplexityMethod method, int64_t context, bool bos_per_window);

struct PerplexityOptions {
  int64_t context = 512;
  PerplexityMethod method = PerplexityMethod::kLlamaCpp;
  int64_t max_windows = 0;   // 0: every full window in the stream
  int32_t bos_id = -1;       // llamacpp: BOS placed first in each window when >= 0
  std::function<void(int64_t done, int64_t total)> progress;
};

struct PerplexityResult {
  std::string method;
  int64_t context = 0, windows = 0, tokens_scored = 0;
  double mean_nll = 0, perplexity = 0, perplexity_stderr = 0;
  double seconds = 0, tokens_per_second = 0;  // tokens run through the model per second
};

PerplexityResult evaluate_perplexity(const LlamaModel& model, std::span<const int32_t> tokens,
                                     const PerplexityOptions& options);

// Scores the ids as one sequence from position 0: every prediction after the first token.
PerplexityResult evaluate_sequence(const LlamaModel& model, std::span<const int32_t> ids);

struct KldResult {
  int64_t windows = 0, tokens_scored = 0;
  double mean_kld = 0, kld_stderr = 0, max_kld = 0;
  double top1_agreement = 0;  // fraction of positions where both models' argmax agree
  PerplexityResult base, model;
};

// KL(P_base || P_model) at each scored position (same windows and positions as perplexity).
// The two models must share a vocabulary.
KldResult evaluate_kld(const LlamaModel& base, const LlamaModel& model, std::span<const int32_t> tokens,
                       const PerplexityOptions& options);

}  // namespace lowbit
