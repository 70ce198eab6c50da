#include "block_calibration.h"

#include "lowbit/core/error.h"

namespace lowbit::pipeline_detail {

std::map<std::string, InputStatistics> collect_input_statistics(LlamaModel& model, int64_t block,
                                                                const std::vector<std::vector<float>>& hidden,
                                                                int64_t seqlen, const std::vector<std::string>& inputs,
                                                                bool channels) {
  std::map<std::string, InputStatistics> stats;
  for (const std::string& name : inputs) {
    InputStatistics& s = stats[name];
    s.cols = model.linear(name).in_features();
    s.hessian.assign(static_cast<size_t>(s.cols * s.cols), 0.0);
    if (channels) s.channels = ChannelStatistics(s.cols);
  }
  model.set_linear_observer([&](const std::string& name, const float* x, int64_t tokens, int64_t in) {
    const auto it = stats.find(name);
    if (it == stats.end()) return;
    const std::span<const float> batch(x, static_cast<size_t>(tokens * in));
    accumulate_hessian(it->second.hessian, batch, tokens, in);
    if (channels) it->second.channels.add(batch, tokens);
  });
  try {
    std::vector<float> scratch;
    for (const auto& x : hidden) {
      scratch = x;
      model.forward_block(block, scratch.data(), seqlen, inputs.back());
    }
  } catch (...) {
    model.set_linear_observer({});
    throw;
  }
  model.set_linear_observer({});
  return stats;
}

static const DenseLinear& dense(const LlamaModel& model, const std::string& name) {
  // "model.embed_tokens" names the embedding table; a tied head is that table itself.
  const bool table = name == "model.embed_tokens" || (name == "lm_head" && model.config().tie_word_embeddings);
  const LinearLayer& linear = table ? model.embedding() : model.linear(name);
  const auto* layer = dynamic_cast<const DenseLinear*>(&linear);
  if (!layer) throw Error("layer '" + name + "' is already quantized");
  return *layer;
}

std::vector<float> dense_weight(const LlamaModel& model, const std::string& name) {
  return dense(model, name).weight().to_f32_vector();
}

std::vector<float> dense_bias(const LlamaModel& model, const std::string& name) { return dense(model, name).bias(); }

void set_dense_weight(LlamaModel& model, const std::string& name, const std::vector<float>& weight,
                      const std::vector<float>& bias) {
  const LinearLayer& layer = model.linear(name);
  Tensor w = Tensor::copy_of(DType::kF32, {layer.out_features(), layer.in_features()}, weight.data(),
                             weight.size() * sizeof(float));
  std::optional<Tensor> b;
  if (!bias.empty()) b = Tensor::copy_of(DType::kF32, {layer.out_features()}, bias.data(), bias.size() * sizeof(float));
  model.replace_linear(name, std::make_unique<DenseLinear>(std::move(w), std::move(b)));
}

}  // namespace lowbit::pipeline_detail
