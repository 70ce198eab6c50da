#include "testing/random_model.h"

#include <atomic>
#include <filesystem>

#include "lowbit/core/atomic_file.h"
#include "lowbit/core/random.h"
#include "lowbit/io/model_files.h"
#include "lowbit/io/safetensors.h"
#include "testing/shared_data.h"

namespace lowbit::testing {

LlamaConfig awkward_config() {
  LlamaConfig c;
  c.model_type = "qwen2";
  c.hidden_size = 48;
  c.intermediate_size = 37;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 53;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500.0;
  c.rope_scaling = RopeScaling{"llama3", 4.0, 1.0, 4.0, 16};
  c.attention_bias = true;
  c.tie_word_embeddings = false;
  return c;
}

std::string write_random_model(const LlamaConfig& config, DType dtype, uint64_t seed) {
  static std::atomic<int> counter{0};
  const std::string dir = temp_dir() + "/random-model-" + std::to_string(counter++);
  std::filesystem::create_directories(dir);
  NamedTensors tensors;
  uint64_t stream = 0;
  for (const auto& [name, shape] : expected_llama_tensors(config)) {
    Tensor t = Tensor::zeros(DType::kF32, shape);
    const CounterRng rng(seed, stream++);
    const bool norm = name.find("norm") != std::string::npos;
    auto values = t.mutable_values<float>();
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = norm ? 0.8f + 0.4f * rng.uniform(i) : (rng.uniform(i) - 0.5f) * 0.5f;
    tensors.emplace_back(name, dtype == DType::kF32 ? t : t.to(dtype));
  }
  write_safetensors(dir + "/model.safetensors", tensors);
  write_file_atomically(dir + "/config.json", config.to_json().dump());
  return dir;
}

}  // namespace lowbit::testing
