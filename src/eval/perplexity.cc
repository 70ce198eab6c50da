#include "lowbit/eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "lowbit/core/error.h"

namespace lowbit {

std::string_view perplexity_method_name(PerplexityMethod method) {
  return method == PerplexityMethod::kFull ? "full" : "llamacpp";
}

std::string perplexity_method_description(PerplexityMethod method, int64_t context, bool bos_per_window) {
  const std::string windows = "non-overlapping windows of " + std::to_string(context) + " tokens, each from an empty cache";
  if (method == PerplexityMethod::kFull)
    return "full: " + windows + "; every prediction scored (" + std::to_string(context - 1) + " per window)";
  return "llamacpp: " + windows + "; second half scored (" + std::to_string(context / 2 - 1) + " per window" +
         (bos_per_window ? ", BOS first in each window)" : ")");
}

namespace {

// Running sums of per-token NLL; reports llama.cpp's mean and uncertainty.
struct NllAccumulator {
  double sum = 0, sum_squares = 0;
  int64_t count = 0;
  void add(double nll) {
    sum += nll;
    sum_squares += nll * nll;
    ++count;
  }
  double mean() const { return count ? sum / static_cast<double>(count) : 0.0; }
  // Standard error of the mean: sqrt(var / (N − 1)), as llama.cpp computes it.
  double standard_error() const {
    if (count < 2) return 0.0;
    const double variance = std::max(0.0, sum_squares / static_cast<double>(count) - mean() * mean());
    return std::sqrt(variance / static_cast<double>(count - 1));
  }
  void fill(PerplexityResult& r) const {
    r.tokens_scored = count;
    if (count == 0) return;
    r.mean_nll = mean();
    r.perplexity = std::exp(r.mean_nll);
    r.perplexity_stderr = r.perplexity * standard_error();
  }
};

// log-softmax of one row, in double.
void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  const float max_logit = *std::max_element(logits, logits + n);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += std::exp(static_cast<double>(logits[i]) - max_logit);
  const double log_total = std::log(total) + max_logit;
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<double>(logits[i]) - log_total;
}

struct Window {
  std::vector<int32_t> ids;
  int64_t first_scored = 0;  // position whose logits predict the first scored token
};

std::vector<Window> make_windows(std::span<const int32_t> tokens, const PerplexityOptions& o, const LlamaConfig& config) {
  if (o.context < 2) throw Error("--ctx", "context must be at least 2 tokens, found " + std::to_string(o.context));
  if (o.method == PerplexityMethod::kLlamaCpp && o.context < 4)
    throw Error("--ctx", "the llamacpp method needs a context of at least 4 tokens");
  if (o.context > config.max_position_embeddings)
    throw Error("--ctx", "context " + std::to_string(o.context) + " exceeds the model's " +
                             std::to_string(config.max_position_embeddings) + " positions");
  int64_t count = static_cast<int64_t>(tokens.size()) / o.context;
  if (count == 0)
    throw Error("text", "only " + std::to_string(tokens.size()) + " tokens, fewer than one window of " +
                            std::to_string(o.context));
  if (o.max_windows > 0) count = std::min(count, o.max_windows);
  std::vector<Window> windows(static_cast<size_t>(count));
  for (int64_t w = 0; w < count; ++w) {
    Window& window = windows[static_cast<size_t>(w)];
    window.ids.assign(tokens.begin() + w * o.context, tokens.begin() + (w + 1) * o.context);
    if (o.method == PerplexityMethod::kLlamaCpp) {
      if (o.bos_id >= 0) window.ids[0] = o.bos_id;
      window.first_scored = o.context / 2;
    }
  }
  return windows;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

PerplexityResult evaluate_perplexity(const LlamaModel& model, std::span<const int32_t> tokens, const PerplexityOptions& o) {
  const auto windows = make_windows(tokens, o, model.config());
  const int64_t vocab = model.config().vocab_size;
  KvCache cache(model.config(), o.context);
  std::vector<float> logits(static_cast<size_t>(o.context * vocab));
  std::vector<double> log_probabilities;
  NllAccumulator nll;
  const auto start = std::chrono::steady_clock::now();
  for (size_t w = 0; w < windows.size(); ++w) {
    cache.clear();
    const Window& window = windows[w];
    model.forward(window.ids, cache, logits.data(), true);
    for (int64_t p = window.first_scored; p + 1 < o.context; ++p) {
      log_softmax(&logits[static_cast<size_t>(p * vocab)], vocab, log_probabilities);
      nll.add(-log_probabilities[static_cast<size_t>(window.ids[static_cast<size_t>(p + 1)])]);
    }
    if (o.progress) o.progress(static_cast<int64_t>(w) + 1, static_cast<int64_t>(windows.size()));
  }
  PerplexityResult result;
  result.method = perplexity_method_description(o.method, o.context, o.method == PerplexityMethod::kLlamaCpp && o.bos_id >= 0);
  result.context = o.context;
  result.windows = static_cast<int64_t>(windows.size());
  nll.fill(result);
  result.seconds = seconds_since(start);
  result.tokens_per_second = result.seconds > 0 ? static_cast<double>(result.windows * o.context) / result.seconds : 0;
  return result;
}

PerplexityResult evaluate_sequence(const LlamaModel& model, std::span<const int32_t> ids) {
  PerplexityOptions options;
  options.method = PerplexityMethod::kFull;
  options.context = static_cast<int64_t>(ids.size());
  PerplexityResult result = evaluate_perplexity(model, ids, options);
  result.method = "sequence: the given " + std::to_string(ids.size()) + " ids as one window from position 0; every prediction scored";
  return result;
}

KldResult evaluate_kld(const LlamaModel& base, const LlamaModel& model, std::span<const int32_t> tokens,
                       const PerplexityOptions& o) {
  if (base.config().vocab_size != model.config().vocab_size)
    throw Error("models have different vocabularies (" + std::to_string(base.config().vocab_size) + " vs " +
                std::to_string(model.config().vocab_size) + " tokens)");
  const int64_t context_limit = std::min(base.config().max_position_embeddings, model.config().max_position_embeddings);
  LlamaConfig limits = base.config();
  limits.max_position_embeddings = context_limit;
  const auto windows = make_windows(tokens, o, limits);
  const int64_t vocab = base.config().vocab_size;
  KvCache base_cache(base.config(), o.context), model_cache(model.config(), o.context);
  std::vector<float> base_logits(static_cast<size_t>(o.context * vocab)), model_logits(base_logits.size());
  std::vector<double> p_base, p_model;
  NllAccumulator base_nll, model_nll, kld;
  int64_t agree = 0;
  double max_kld = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t w = 0; w < windows.size(); ++w) {
    const Window& window = windows[w];
    base_cache.clear();
    model_cache.clear();
    base.forward(window.ids, base_cache, base_logits.data(), true);
    model.forward(window.ids, model_cache, model_logits.data(), true);
    for (int64_t p = window.first_scored; p + 1 < o.context; ++p) {
      const size_t offset = static_cast<size_t>(p * vocab);
      log_softmax(&base_logits[offset], vocab, p_base);
      log_softmax(&model_logits[offset], vocab, p_model);
      double divergence = 0;
      for (int64_t i = 0; i < vocab; ++i) {
        const double lp = p_base[static_cast<size_t>(i)];
        divergence += std::exp(lp) * (lp - p_model[static_cast<size_t>(i)]);
      }
      divergence = std::max(0.0, divergence);  // rounding can give -1e-17
      kld.add(divergence);
      max_kld = std::max(max_kld, divergence);
      const size_t target = static_cast<size_t>(window.ids[static_cast<size_t>(p + 1)]);
      base_nll.add(-p_base[target]);
      model_nll.add(-p_model[target]);
      const auto argmax = [](const std::vector<double>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); };
      agree += argmax(p_base) == argmax(p_model);
    }
    if (o.progress) o.progress(static_cast<int64_t>(w) + 1, static_cast<int64_t>(windows.size()));
  }
  KldResult result;
  result.windows = static_cast<int64_t>(windows.size());
  result.tokens_scored = kld.count;
  result.mean_kld = kld.mean();
  result.kld_stderr = kld.standard_error();
  result.max_kld = max_kld;
  result.top1_agreement = static_cast<double>(agree) / static_cast<double>(kld.count);
  const std::string method = perplexity_method_description(o.method, o.context, o.method == PerplexityMethod::kLlamaCpp && o.bos_id >= 0);
  for (auto* r : {&result.base, &result.model}) {
    r->method = method;
    r->context = o.context;
    r->windows = result.windows;
  }
  base_nll.fill(result.base);
  model_nll.fill(result.model);
  const double seconds = seconds_since(start);
  result.base.seconds = result.model.seconds = seconds;
  return result;
}

}  // namespace lowbit
