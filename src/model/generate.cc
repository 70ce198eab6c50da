#include "lowbit/model/generate.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <cmath>
#include <numeric>

#include "lowbit/core/error.h"
#include "lowbit/core/random.h"

namespace lowbit {

int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, uint64_t step) {
  if (logits.empty()) throw Error("cannot sample from an empty distribution");
  if (options.temperature <= 0.0f)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probabilities(logits.size());
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    probabilities[i] = std::exp(static_cast<double>(logits[i] - max_logit) / options.temperature);
    total += probabilities[i];
  }
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return probabilities[a] > probabilities[b]; });
  size_t keep = 0;
  double mass = 0;
  while (keep < order.size() && (keep == 0 || mass < options.top_p * total)) mass += probabilities[order[keep++]];
  const double target = CounterRng(options.seed, 0).uniform(step) * mass;
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probabilities[order[i]];
    if (target < cumulative) return order[i];
  }
  return order[keep - 1];
}

GenerationResult generate(const LlamaModel& model, std::span<const int32_t> prompt, const GenerationOptions& options,
                          int32_t eos_id, const std::function<void(int32_t)>& on_token) {
  const LlamaConfig& config = model.config();
  const int64_t context = config.max_position_embeddings;
  if (prompt.empty()) throw Error("empty prompt: nothing to condition on (the tokenizer adds no BOS)");
  if (static_cast<int64_t>(prompt.size()) > context)
    throw Error("prompt of " + std::to_string(prompt.size()) + " tokens is longer than the model's context of " +
                std::to_string(context));
  const int64_t capacity = std::min<int64_t>(context, static_cast<int64_t>(prompt.size()) + options.max_new_tokens);
  KvCache cache(config, capacity);
  std::vector<float> logits(static_cast<size_t>(config.vocab_size));
  GenerationResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  model.forward(prompt, cache, logits.data(), false);
  result.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  t0 = clock::now();
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    // Not stopping at EOS means EOS is never chosen (llama.cpp's --ignore-eos sets its logit
    // to -inf), so the continuation stays text rather than running on past an end marker.
    if (!options.stop_at_eos && eos_id >= 0 && eos_id < config.vocab_size)
      logits[static_cast<size_t>(eos_id)] = -std::numeric_limits<float>::infinity();
    const int32_t token = sample_token(logits, options.sampling, static_cast<uint64_t>(step));
    if (options.stop_at_eos && token == eos_id) break;
    result.tokens.push_back(token);
    if (on_token) on_token(token);
    if (cache.length() >= cache.capacity()) break;
    model.forward(std::span<const int32_t>(&token, 1), cache, logits.data(), false);
  }
  result.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return result;
}

}  // namespace lowbit
