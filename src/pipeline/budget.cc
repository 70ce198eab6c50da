#include "lowbit/pipeline/budget.h"

#include <cmath>
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

BudgetPlan plan_budget(std::shared_ptr<const ModelFiles> files, const std::vector<QuantScheme>& candidates,
                       double budget_bits_per_weight, const std::vector<std::vector<int32_t>>& calibration) {
  require(!candidates.empty(), "--budget", "no candidate grids");
  require(!calibration.empty(), "--budget", "needs calibration text (--calib): the sensitivities come from it");
  LlamaModel model(files);
  const LlamaConfig& config = model.config();
  // diag(H) of every linear's input: Σ_t x_tj² (ChannelStatistics' sum of squares), sequences in order.
  std::map<std::string, ChannelStatistics> inputs;
  model.set_linear_observer([&](const std::string& name, const float* x, int64_t tokens, int64_t in) {
    inputs.try_emplace(name, in).first->second.add({x, static_cast<size_t>(tokens * in)}, tokens);
  });
  for (const auto& sequence : calibration) {  // all logits: the head must see every position
    KvCache cache(config, static_cast<int64_t>(sequence.size()));
    std::vector<float> logits(sequence.size() * static_cast<size_t>(config.vocab_size));
    model.forward(sequence, cache, logits.data(), true);
  }
  model.set_linear_observer({});

  // The tensors: every block linear, and the table (whose input, tied, is the head's).
  std::vector<std::string> names;
  for (int64_t b = 0; b < model.num_blocks(); ++b)
    for (const std::string& name : model.block_linear_names(b)) names.push_back(name);
  names.push_back("model.embed_tokens");
  BudgetPlan plan;
  for (const std::string& name : names) {
    const bool table = name == "model.embed_tokens";
    const LinearLayer& layer = table ? model.embedding() : model.linear(name);
    const int64_t rows = layer.out_features(), cols = layer.in_features();
    // Rows that are not whole groups of every candidate are left to the caller's own rule.
    bool fits = true;
    for (const QuantScheme& scheme : candidates) fits = fits && (scheme.group_size == 0 || cols % scheme.group_size == 0);
    if (!fits) continue;
    const std::vector<float> w = pipeline_detail::dense_weight(model, name);
    // An untied table is only looked up: every column counts alike.
    std::vector<float> importance(static_cast<size_t>(cols), 1.0f);
    const std::string input = table ? "lm_head" : name;
    if (!table || config.tie_word_embeddings)
      for (int64_t j = 0; j < cols; ++j) importance[static_cast<size_t>(j)] = static_cast<float>(inputs.at(input).sum_square()[static_cast<size_t>(j)]);
    double signal = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) signal += importance[static_cast<size_t>(j)] * static_cast<double>(w[r * cols + j]) * w[r * cols + j];
    BudgetItem item{name, rows * cols, {}, {}};
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
      const std::vector<float> values = q.dequantize();
      double error = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) {
          const double d = static_cast<double>(w[r * cols + j]) - values[r * cols + j];
          error += importance[static_cast<size_t>(j)] * d * d;
        }
      item.bits.push_back(q.bits_per_weight());
      item.errors.push_back(signal > 0 ? error / signal : 0.0);
    }
    plan.items.push_back(std::move(item));
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
