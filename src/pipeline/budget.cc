#include "lowbit/pipeline/budget.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <cstdio>
#include <string>

#include "lowbit/compress/rtn.h"
#include "lowbit/compress/statistics.h"
#include "lowbit/core/error.h"
#include "lowbit/model/llama.h"
#include "block_calibration.h"

namespace lowbit {

std::vector<size_t> allocate_budget(const std::vector<BudgetItem>& items, double budget_bits_per_weight) {
  double total = 0, spent = 0;
  for (const BudgetItem& item : items) {
    require(!item.bits.empty() && item.bits.size() == item.errors.size(), "budget", "tensor '" + item.name + "' has no candidates");
    for (size_t k = 1; k < item.bits.size(); ++k)
      require(item.bits[k] > item.bits[k - 1], "budget", "tensor '" + item.name + "': candidates must get wider");
    total += static_cast<double>(item.weights);
    spent += static_cast<double>(item.weights) * item.bits.front();
  }
  const double limit = budget_bits_per_weight * total;
  if (spent > limit * (1 + 1e-12)) {
    char text[160];
    std::snprintf(text, sizeof text, "%.4f bits per weight is below the cheapest grids' %.4f", budget_bits_per_weight,
                  total > 0 ? spent / total : 0.0);
    throw Error("--budget", text);
  }
  std::vector<size_t> chosen(items.size(), 0);
  for (;;) {
    // The upgrade with the largest error drop per extra bit that still fits (ties: the first tensor).
    double best_gain = 0;
    size_t best = items.size();
    for (size_t i = 0; i < items.size(); ++i) {
      const BudgetItem& item = items[i];
      const size_t k = chosen[i];
      if (k + 1 >= item.bits.size()) continue;
      const double extra = static_cast<double>(item.weights) * (item.bits[k + 1] - item.bits[k]);
      if (spent + extra > limit) continue;
      const double gain = (item.errors[k] - item.errors[k + 1]) / extra;
      if (gain > best_gain) best_gain = gain, best = i;
    }
    if (best == items.size()) return chosen;
    const BudgetItem& item = items[best];
    spent += static_cast<double>(item.weights) * (item.bits[chosen[best] + 1] - item.bits[chosen[best]]);
    ++chosen[best];
  }
}

namespace {

// log_softmax of each row of logits [tokens, vocab], in place (double accumulation).
void log_softmax_rows(std::vector<float>& logits, int64_t vocab) {
  for (size_t t = 0; t * static_cast<size_t>(vocab) < logits.size(); ++t) {
    float* row = logits.data() + t * static_cast<size_t>(vocab);
    const float top = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - top);
    const float log_sum = static_cast<float>(top + std::log(sum));
    for (int64_t v = 0; v < vocab; ++v) row[v] -= log_sum;
  }
}

// The KL probe: the fp model's hidden state entering every block and its next-token log-probabilities
// on one calibration window, so that a tensor of block b is measured by re-running blocks b.. only.
class KlProbe {
 public:
  KlProbe(LlamaModel& model, std::span<const int32_t> tokens) : model_(model), tokens_(static_cast<int64_t>(tokens.size())) {
    const int64_t d = model.config().hidden_size;
    std::vector<float> x(static_cast<size_t>(tokens_ * d));
    model.embed(tokens, x.data());
    for (int64_t b = 0; b < model.num_blocks(); ++b) {
      block_inputs_.push_back(x);
      model.forward_block(b, x.data(), tokens_);
    }
    base_ = logits_from(model.num_blocks(), std::move(x));
  }

  // Mean over the window's positions of KL(P_fp || P_model), the model run from block `block` on x.
  double kl_from(int64_t block, std::vector<float> x) const {
    const std::vector<float> logp = logits_from(block, std::move(x));
    const int64_t vocab = model_.config().vocab_size;
    double total = 0;
    for (int64_t t = 0; t < tokens_; ++t) {
      const float* p = base_.data() + t * vocab;
      const float* q = logp.data() + t * vocab;
      double kl = 0;
      for (int64_t v = 0; v < vocab; ++v) kl += std::exp(static_cast<double>(p[v])) * (static_cast<double>(p[v]) - q[v]);
      total += kl;
    }
    return total / static_cast<double>(tokens_);
  }
  const std::vector<float>& block_input(int64_t block) const { return block_inputs_[static_cast<size_t>(block)]; }

 private:
  std::vector<float> logits_from(int64_t block, std::vector<float> x) const {
    for (int64_t b = block; b < model_.num_blocks(); ++b) model_.forward_block(b, x.data(), tokens_);
    std::vector<float> normed(x.size());
    model_.final_norm(x.data(), tokens_, normed.data());
    const int64_t vocab = model_.config().vocab_size;
    std::vector<float> logits(static_cast<size_t>(tokens_ * vocab));
    model_.linear("lm_head").forward(normed.data(), tokens_, logits.data());
    log_softmax_rows(logits, vocab);
    return logits;
  }

  LlamaModel& model_;
  int64_t tokens_;
  std::vector<std::vector<float>> block_inputs_;
  std::vector<float> base_;
};

}  // namespace

BudgetPlan plan_budget(std::shared_ptr<const ModelFiles> files, const std::vector<QuantScheme>& candidates,
                       double budget_bits_per_weight, const std::vector<std::vector<int32_t>>& calibration,
                       int64_t probe_tokens, const std::function<void(int64_t measured, int64_t tensors)>& progress) {
  require(!candidates.empty(), "--budget", "no candidate grids");
  require(!calibration.empty(), "--budget", "needs calibration text (--calib): the sensitivities come from it");
  require(probe_tokens > 0, "--budget", "the KL probe needs at least one token");
  LlamaModel model(files);
  const LlamaConfig& config = model.config();
  // The tensors: every block linear, and the table (whose input, tied, is the head's) last, since
  // measuring it turns the tied head into a plain copy of the table.
  std::vector<std::pair<std::string, int64_t>> names;  // name, block (-1: the table)
  for (int64_t b = 0; b < model.num_blocks(); ++b)
    for (const std::string& name : model.block_linear_names(b)) names.emplace_back(name, b);
  names.emplace_back("model.embed_tokens", -1);
  auto shape_of = [&](const std::string& name, bool table) {
    const LinearLayer& layer = table ? model.embedding() : model.linear(name);
    return std::pair<int64_t, int64_t>{layer.out_features(), layer.in_features()};
  };
  // Rows that are not whole groups of every candidate are left to the caller's own rule.
  auto fits = [&](int64_t cols) {
    for (const QuantScheme& scheme : candidates)
      if (scheme.group_size != 0 && cols % scheme.group_size != 0) return false;
    return true;
  };
  {
    // An impossible budget is refused before any measuring (allocate_budget's message).
    std::vector<BudgetItem> cheapest;
    for (const auto& [name, block] : names) {
      const auto [rows, cols] = shape_of(name, block < 0);
      if (fits(cols))
        cheapest.push_back({name, rows * cols, {QuantizedTensor(rows, cols, candidates.front()).bits_per_weight()}, {0.0}, {}, 0.0});
    }
    allocate_budget(cheapest, budget_bits_per_weight);
  }
  // diag(H) of every linear's input: Σ_t x_tj² (ChannelStatistics' sum of squares), sequences in order.
  std::map<std::string, ChannelStatistics> inputs;
  model.set_linear_observer([&](const std::string& name, const float* x, int64_t tokens, int64_t in) {
    inputs.try_emplace(name, in).first->second.add({x, static_cast<size_t>(tokens * in)}, tokens);
  });
  // Block by block (forward_block: forward()'s arithmetic, without a cache): the head's input is the
  // final RMSNorm of every position, taken directly, so no logits are computed for it.
  for (const auto& sequence : calibration) {
    const int64_t tokens = static_cast<int64_t>(sequence.size());
    std::vector<float> x(static_cast<size_t>(tokens * config.hidden_size)), normed(x.size());
    model.embed(sequence, x.data());
    for (int64_t b = 0; b < model.num_blocks(); ++b) model.forward_block(b, x.data(), tokens);
    model.final_norm(x.data(), tokens, normed.data());
    inputs.try_emplace("lm_head", config.hidden_size).first->second.add(normed, tokens);
  }
  model.set_linear_observer({});
  const std::span<const int32_t> window(calibration.front().data(),
                                        std::min<size_t>(calibration.front().size(), static_cast<size_t>(probe_tokens)));
  const KlProbe probe(model, window);

  BudgetPlan plan;
  int64_t visited = 0;
  for (const auto& [name, block] : names) {
    ++visited;
    const bool table = block < 0;
    const auto [rows, cols] = shape_of(name, table);
    if (!fits(cols)) {
      if (progress) progress(visited, static_cast<int64_t>(names.size()));
      continue;
    }
    const std::vector<float> w = pipeline_detail::dense_weight(model, name);
    // An untied table is only looked up: every column counts alike.
    std::vector<float> importance(static_cast<size_t>(cols), 1.0f);
    const std::string input = table ? "lm_head" : name;
    if (!table || config.tie_word_embeddings)
      for (int64_t j = 0; j < cols; ++j) importance[static_cast<size_t>(j)] = static_cast<float>(inputs.at(input).sum_square()[static_cast<size_t>(j)]);
    double signal = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) signal += importance[static_cast<size_t>(j)] * static_cast<double>(w[r * cols + j]) * w[r * cols + j];
    BudgetItem item{name, rows * cols, {}, {}, {}, 0.0};
    std::vector<float> cheapest;  // the dequantized tensor on the cheapest grid, for the probe
    for (const QuantScheme& scheme : candidates) {
      RtnOptions rtn;
      rtn.scheme = scheme;
      rtn.scale.search = ScaleSearch::kMse;
      rtn.importance = importance;
      QuantizedTensor q;
      try {
        q = quantize_rtn(w, rows, cols, rtn);
      } catch (const Error& e) {
        throw e.with_context("layer '" + name + "'");
      }
      std::vector<float> values = q.dequantize();
      double error = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) {
          const double d = static_cast<double>(w[r * cols + j]) - values[r * cols + j];
          error += importance[static_cast<size_t>(j)] * d * d;
        }
      item.bits.push_back(q.bits_per_weight());
      item.relative_errors.push_back(signal > 0 ? error / signal : 0.0);
      if (cheapest.empty()) cheapest = std::move(values);
    }
    // The probe: this tensor alone on the cheapest grid, the rest of the model in full precision.
    if (table) {
      const int64_t d = config.hidden_size;
      std::vector<float> x(window.size() * static_cast<size_t>(d));
      for (size_t t = 0; t < window.size(); ++t)
        std::copy_n(cheapest.data() + static_cast<int64_t>(window[t]) * d, d, x.data() + t * static_cast<size_t>(d));
      if (config.tie_word_embeddings) pipeline_detail::set_dense_weight(model, "lm_head", cheapest, {});
      item.measured_kld = probe.kl_from(0, std::move(x));
    } else {
      const std::vector<float> bias = pipeline_detail::dense_bias(model, name);
      pipeline_detail::set_dense_weight(model, name, cheapest, bias);
      item.measured_kld = probe.kl_from(block, probe.block_input(block));
      pipeline_detail::set_dense_weight(model, name, w, bias);
    }
    // KL is, like e, quadratic in the weight error to first order: scale the measured point along e.
    const double base = item.relative_errors.front();
    // measured · (e / base), so the measured grid's own entry is the measured KL exactly (e / base = 1).
    for (double e : item.relative_errors) item.errors.push_back(base > 0 ? item.measured_kld * (e / base) : 0.0);
    plan.items.push_back(std::move(item));
    if (progress) progress(visited, static_cast<int64_t>(names.size()));
  }
  plan.chosen = allocate_budget(plan.items, budget_bits_per_weight);
  double bits = 0, weights = 0;
  for (size_t i = 0; i < plan.items.size(); ++i) {
    plan.schemes[plan.items[i].name] = candidates[plan.chosen[i]];
    bits += static_cast<double>(plan.items[i].weights) * plan.items[i].bits[plan.chosen[i]];
    weights += static_cast<double>(plan.items[i].weights);
  }
  plan.bits_per_weight = weights > 0 ? bits / weights : 0;
  return plan;
}

}  // namespace lowbit
