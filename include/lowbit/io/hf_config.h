// Hugging Face config.json for the Llama family (llama, mistral, qwen2 and the
// SmolLM/TinyLlama variants that use model_type "llama").
//
// Only architectures whose forward pass lowbit implements are accepted; anything
// else is refused by name so that a user never gets a silently wrong model.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/core/dtype.h"

namespace lowbit {

// rope_scaling of type "llama3" (Llama 3.1+): frequency-dependent interpolation.
struct RopeScaling {
  std::string type;  // "llama3" (others are refused)
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  std::string model_type = "llama";  // llama | mistral | qwen2
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless given
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  std::optional<int64_t> sliding_window;  // mistral; recorded, not used by the dense forward
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // qwen2: q/k/v projections carry a bias
  bool mlp_bias = false;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  DType torch_dtype = DType::kF32;

  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  int64_t q_dim() const { return num_attention_heads * head_dim; }
  // Parameters of the weights a checkpoint stores (the output head counted once when tied).
  int64_t parameter_count() const;
  // Throws Error(where, ...) naming the first impossible field.
  void validate(const std::string& where) const;
  // config.json as Hugging Face transformers writes it for this architecture.
  nlohmann::json to_json() const;
};

// Parses and validates; `where` names the file in errors.
LlamaConfig parse_hf_config(const nlohmann::json& config, const std::string& where);
// Reads <path> (a config.json file, or a folder holding one).
LlamaConfig load_hf_config(const std::string& path);

}  // namespace lowbit
