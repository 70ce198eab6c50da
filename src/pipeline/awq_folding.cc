#include "lowbit/pipeline/awq_folding.h"

#include "block_calibration.h"
#include "lowbit/compress/awq.h"

namespace lowbit {

using namespace pipeline_detail;

std::map<std::string, double> fold_awq_scales(LlamaModel& model, int64_t block,
                                              const std::vector<std::vector<float>>& hidden, int64_t seqlen,
                                              const QuantRecipe& recipe) {
  const std::vector<std::string> n = model.block_linear_names(block);
  struct Group {
    std::vector<int> consumers;  // indices into n (q, k, v, o, gate, up, down)
    int producer;                // -1: the RMSNorm `norm`; else the previous linear
    LlamaModel::BlockNorm norm;
  };
  const Group groups[] = {{{0, 1, 2}, -1, LlamaModel::BlockNorm::kAttention},
                          {{3}, 2, LlamaModel::BlockNorm::kAttention},
                          {{4, 5}, -1, LlamaModel::BlockNorm::kMlp},
                          {{6}, 5, LlamaModel::BlockNorm::kMlp}};
  // All four inputs in one pass over the fp block: folding one group does not change the fp
  // function, so the other groups' inputs stay valid.
  const auto stats = collect_input_statistics(model, block, hidden, seqlen, {n[0], n[3], n[4], n[6]}, true);
  std::map<std::string, double> alpha;
  for (const Group& group : groups) {
    const std::string& input = n[group.consumers.front()];
    const int64_t cols = model.linear(input).in_features();
    if (group.producer >= 0 && model.linear(n[group.producer]).out_features() != cols) continue;
    std::vector<std::vector<float>> weights;
    for (int index : group.consumers) weights.push_back(dense_weight(model, n[index]));
    std::vector<AwqLinear> quantized;
    QuantScheme scheme;
    for (size_t i = 0; i < group.consumers.size(); ++i) {
      const LayerPlan plan = recipe.plan_for(n[group.consumers[i]]);
      if (!plan.quantize) continue;
      if (quantized.empty()) scheme = plan.scheme;
      quantized.push_back({weights[i], model.linear(n[group.consumers[i]]).out_features()});
    }
    if (quantized.empty()) continue;
    const InputStatistics& s = stats.at(input);
    const AwqScaleResult found = awq_search_scales(quantized, cols, s.hessian, s.channels.mean_abs(), scheme);
    for (size_t i = 0; i < group.consumers.size(); ++i) {
      const std::string& name = n[group.consumers[i]];
      scale_columns(weights[i], model.linear(name).out_features(), cols, found.scales);
      set_dense_weight(model, name, weights[i], dense_bias(model, name));
      alpha[name] = found.alpha;
    }
    if (group.producer < 0) {
      divide_vector(model.norm_gain(block, group.norm), found.scales);
    } else {
      const std::string& producer = n[group.producer];
      std::vector<float> w = dense_weight(model, producer), bias = dense_bias(model, producer);
      divide_rows(w, cols, model.linear(producer).in_features(), found.scales);
      if (!bias.empty()) divide_vector(bias, found.scales);
      set_dense_weight(model, producer, w, bias);
    }
  }
  return alpha;
}

}  // namespace lowbit
