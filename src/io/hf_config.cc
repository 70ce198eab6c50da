#include "lowbit/io/hf_config.h"

#include <filesystem>

#include "lowbit/core/error.h"
#include "lowbit/io/json_file.h"

namespace lowbit {

using nlohmann::json;

namespace {

int64_t get_int(const json& config, const char* key, const std::string& where, std::optional<int64_t> fallback = {}) {
  if (!config.contains(key) || config[key].is_null()) {
    if (fallback) return *fallback;
    throw Error(where, std::string("missing \"") + key + "\"");
  }
  const json& value = config[key];
  if (!value.is_number_integer()) throw Error(where, std::string("\"") + key + "\" must be an integer, found " + value.dump());
  return value.get<int64_t>();
}

double get_number(const json& config, const char* key, const std::string& where, double fallback) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  const json& value = config[key];
  if (!value.is_number()) throw Error(where, std::string("\"") + key + "\" must be a number, found " + value.dump());
  return value.get<double>();
}

bool get_bool(const json& config, const char* key, const std::string& where, bool fallback) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  if (!config[key].is_boolean()) throw Error(where, std::string("\"") + key + "\" must be true or false");
  return config[key].get<bool>();
}

}  // namespace

LlamaConfig parse_hf_config(const json& config, const std::string& where) {
  if (!config.is_object()) throw Error(where, "config must be a JSON object");
  LlamaConfig c;
  if (!config.contains("model_type") || !config["model_type"].is_string())
    throw Error(where, "missing \"model_type\" (expected llama, mistral or qwen2)");
  c.model_type = config["model_type"].get<std::string>();
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2")
    throw Error(where, "unsupported architecture model_type \"" + c.model_type +
                           "\" (lowbit runs the Llama family: llama, mistral, qwen2)");

  c.hidden_size = get_int(config, "hidden_size", where);
  c.intermediate_size = get_int(config, "intermediate_size", where);
  c.num_hidden_layers = get_int(config, "num_hidden_layers", where);
  c.num_attention_heads = get_int(config, "num_attention_heads", where);
  c.num_key_value_heads = get_int(config, "num_key_value_heads", where, c.num_attention_heads);
  if (c.num_attention_heads <= 0) throw Error(where, "num_attention_heads must be positive");
  c.head_dim = get_int(config, "head_dim", where, c.hidden_size / c.num_attention_heads);
  c.vocab_size = get_int(config, "vocab_size", where);
  c.max_position_embeddings = get_int(config, "max_position_embeddings", where, 2048);
  c.rms_norm_eps = get_number(config, "rms_norm_eps", where, 1e-6);
  c.rope_theta = get_number(config, "rope_theta", where, 10000.0);
  c.tie_word_embeddings = get_bool(config, "tie_word_embeddings", where, false);
  // Qwen2 always has q/k/v biases (its config has no attention_bias key).
  c.attention_bias = get_bool(config, "attention_bias", where, c.model_type == "qwen2");
  c.mlp_bias = get_bool(config, "mlp_bias", where, false);
  if (config.contains("sliding_window") && !config["sliding_window"].is_null())
    c.sliding_window = get_int(config, "sliding_window", where);
  if (config.contains("bos_token_id") && !config["bos_token_id"].is_null())
    c.bos_token_id = get_int(config, "bos_token_id", where);
  if (config.contains("eos_token_id") && !config["eos_token_id"].is_null()) {
    const json& eos = config["eos_token_id"];
    if (eos.is_array()) {
      for (const json& id : eos) {
        if (!id.is_number_integer()) throw Error(where, "\"eos_token_id\" entries must be integers");
        c.eos_token_ids.push_back(id.get<int64_t>());
      }
    } else {
      c.eos_token_ids.push_back(get_int(config, "eos_token_id", where));
    }
  }
  // Newer transformers versions write "dtype"; older ones "torch_dtype".
  const char* dtype_key = config.contains("torch_dtype") ? "torch_dtype" : "dtype";
  if (config.contains(dtype_key) && config[dtype_key].is_string()) {
    const std::string name = config[dtype_key].get<std::string>();
    const auto dtype = parse_dtype_lenient(name);
    if (!dtype || !is_floating(*dtype)) throw Error(where, std::string("\"") + dtype_key + "\" \"" + name + "\" is not a float type");
    c.torch_dtype = *dtype;
  }
  if (config.contains("rope_scaling") && !config["rope_scaling"].is_null()) {
    const json& rs = config["rope_scaling"];
    if (!rs.is_object()) throw Error(where, "\"rope_scaling\" must be an object or null");
    RopeScaling scaling;
    const char* type_key = rs.contains("rope_type") ? "rope_type" : "type";
    if (!rs.contains(type_key) || !rs[type_key].is_string()) throw Error(where, "\"rope_scaling\" has no \"rope_type\"");
    scaling.type = rs[type_key].get<std::string>();
    if (scaling.type == "default") {
      // "default" means no scaling.
    } else if (scaling.type == "llama3") {
      scaling.factor = get_number(rs, "factor", where, 8.0);
      scaling.low_freq_factor = get_number(rs, "low_freq_factor", where, 1.0);
      scaling.high_freq_factor = get_number(rs, "high_freq_factor", where, 4.0);
      scaling.original_max_position_embeddings = get_int(rs, "original_max_position_embeddings", where, 8192);
      c.rope_scaling = scaling;
    } else {
      throw Error(where, "unsupported rope_scaling type \"" + scaling.type + "\" (supported: llama3)");
    }
  }
  c.validate(where);
  return c;
}

void LlamaConfig::validate(const std::string& where) const {
  auto positive = [&](int64_t value, const char* name) {
    if (value <= 0) throw Error(where, std::string("\"") + name + "\" must be positive, found " + std::to_string(value));
  };
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  positive(vocab_size, "vocab_size");
  positive(max_position_embeddings, "max_position_embeddings");
  // Bound sizes before multiplying any two of them, so that neither the checks below nor
  // parameter_count() can overflow (a 1e12-parameter model is far past any checkpoint).
  // q_dim is bounded too: an explicit head_dim makes it independent of hidden_size.
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  for (int64_t value : {hidden_size, intermediate_size, vocab_size, head_dim, num_attention_heads})
    if (value > kMaxDim) throw Error(where, "dimension " + std::to_string(value) + " exceeds 2^24");
  if (q_dim() > kMaxDim)
    throw Error(where, "num_attention_heads * head_dim = " + std::to_string(q_dim()) + " exceeds 2^24");
  if (num_hidden_layers > 4096) throw Error(where, "num_hidden_layers " + std::to_string(num_hidden_layers) + " exceeds 4096");
  if (num_attention_heads % num_key_value_heads != 0)
    throw Error(where, "num_attention_heads (" + std::to_string(num_attention_heads) +
                           ") is not a multiple of num_key_value_heads (" + std::to_string(num_key_value_heads) + ")");
  if (head_dim % 2 != 0) throw Error(where, "head_dim " + std::to_string(head_dim) + " must be even for RoPE");
  if (num_attention_heads * head_dim != hidden_size && head_dim == hidden_size / num_attention_heads)
    throw Error(where, "num_attention_heads (" + std::to_string(num_attention_heads) + ") does not divide hidden_size (" +
                           std::to_string(hidden_size) + ")");
  if (!(rms_norm_eps > 0) || rms_norm_eps >= 1) throw Error(where, "\"rms_norm_eps\" must be in (0, 1)");
  if (!(rope_theta > 0)) throw Error(where, "\"rope_theta\" must be positive");
  if (bos_token_id && (*bos_token_id < 0 || *bos_token_id >= vocab_size))
    throw Error(where, "bos_token_id " + std::to_string(*bos_token_id) + " outside the vocabulary");
  for (int64_t id : eos_token_ids)
    if (id < 0 || id >= vocab_size) throw Error(where, "eos_token_id " + std::to_string(id) + " outside the vocabulary");
  if (rope_scaling && !(rope_scaling->factor >= 1.0 && rope_scaling->high_freq_factor > rope_scaling->low_freq_factor &&
                        rope_scaling->original_max_position_embeddings > 0))
    throw Error(where, "\"rope_scaling\" needs factor >= 1, high_freq_factor > low_freq_factor, original_max_position_embeddings > 0");
}

int64_t LlamaConfig::parameter_count() const {
  const int64_t attention = hidden_size * q_dim() + 2 * hidden_size * kv_dim() + q_dim() * hidden_size +
                            (attention_bias ? q_dim() + 2 * kv_dim() : 0);
  const int64_t mlp = 3 * hidden_size * intermediate_size + (mlp_bias ? 2 * intermediate_size + hidden_size : 0);
  const int64_t per_layer = attention + mlp + 2 * hidden_size;
  const int64_t embeddings = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2);
  return embeddings + num_hidden_layers * per_layer + hidden_size;
}

json LlamaConfig::to_json() const {
  json j;
  const char* architecture = model_type == "qwen2" ? "Qwen2ForCausalLM"
                             : model_type == "mistral" ? "MistralForCausalLM"
                                                       : "LlamaForCausalLM";
  j["architectures"] = {architecture};
  j["model_type"] = model_type;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  if (rope_scaling) {
    j["rope_scaling"] = {{"rope_type", rope_scaling->type},
                         {"factor", rope_scaling->factor},
                         {"low_freq_factor", rope_scaling->low_freq_factor},
                         {"high_freq_factor", rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling->original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (sliding_window) j["sliding_window"] = *sliding_window;
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = tie_word_embeddings;
  // Qwen2's transformers config has neither key (its q/k/v always carry biases); write them
  // only where parse_hf_config's qwen2 defaults would not restore the values.
  if (model_type != "qwen2" || !attention_bias) j["attention_bias"] = attention_bias;
  if (model_type != "qwen2" || mlp_bias) j["mlp_bias"] = mlp_bias;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids.front();
  else if (!eos_token_ids.empty()) j["eos_token_id"] = eos_token_ids;
  const DType dtype = torch_dtype;
  j["torch_dtype"] = dtype == DType::kBF16 ? "bfloat16" : dtype == DType::kF16 ? "float16" : "float32";
  return j;
}

LlamaConfig load_hf_config(const std::string& path) {
  std::filesystem::path file(path);
  if (std::filesystem::is_directory(file)) file /= "config.json";
  return parse_hf_config(read_json_file(file.string()), file.string());
}

}  // namespace lowbit
