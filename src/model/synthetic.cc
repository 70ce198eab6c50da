#include "lowbit/model/synthetic.h"

#include <cmath>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"

namespace lowbit {

LlamaConfig synthetic_config(const std::string& name) {
  LlamaConfig c;
  c.model_type = "llama";
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = false;
  if (name == "tiny") {
    c.hidden_size = 64, c.intermediate_size = 160, c.num_hidden_layers = 2, c.num_attention_heads = 4;
    c.num_key_value_heads = 2, c.vocab_size = 256, c.max_position_embeddings = 256;
  } else if (name == "135m") {
    c.hidden_size = 576, c.intermediate_size = 1536, c.num_hidden_layers = 30, c.num_attention_heads = 9;
    c.num_key_value_heads = 3, c.vocab_size = 49152, c.max_position_embeddings = 2048, c.tie_word_embeddings = true;
    c.rope_theta = 100000;
  } else if (name == "1b") {
    c.hidden_size = 2048, c.intermediate_size = 5632, c.num_hidden_layers = 22, c.num_attention_heads = 32;
    c.num_key_value_heads = 4, c.vocab_size = 32000, c.max_position_embeddings = 2048;
  } else {
    throw Error("--synthetic", "unknown synthetic model \"" + name + "\" (expected tiny, 135m or 1b)");
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.validate("synthetic " + name);
  return c;
}

ModelFiles make_synthetic_model(const LlamaConfig& config, DType dtype, uint64_t seed) {
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
    throw Error("synthetic models are F32, F16 or BF16, not " + std::string(dtype_name(dtype)));
  ModelFiles model;
  model.path = "synthetic";
  model.config = config;
  model.config->torch_dtype = dtype;
  uint64_t stream = 0;
  for (const auto& [name, shape] : expected_llama_tensors(config)) {
    Tensor tensor = Tensor::zeros(dtype, shape);
    const CounterRng rng(seed, stream++);
    const bool norm = shape.size() == 1;
    const float amplitude = norm ? 0.1f : 0.5f / std::sqrt(static_cast<float>(shape.back()));
    const int64_t count = tensor.numel();
    void* data = tensor.mutable_data();
    parallel_for(count, 1 << 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float value = (norm ? 1.0f : 0.0f) + amplitude * (2 * rng.uniform(static_cast<uint64_t>(i)) - 1);
        if (dtype == DType::kF32) static_cast<float*>(data)[i] = value;
        else if (dtype == DType::kF16) static_cast<uint16_t*>(data)[i] = f32_to_f16_bits(value);
        else static_cast<uint16_t*>(data)[i] = f32_to_bf16_bits(value);
      }
    });
    model.file_size += tensor.nbytes();
    model.tensors.emplace_back(name, std::move(tensor));
  }
  return model;
}

}  // namespace lowbit
