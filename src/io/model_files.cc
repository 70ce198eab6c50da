#include "lowbit/io/model_files.h"
#include "lowbit/io/gguf_model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lowbit/core/error.h"
#include "lowbit/io/json_file.h"
#include "lowbit/io/llama2c.h"

namespace lowbit {

namespace fs = std::filesystem;

std::string_view model_format_name(ModelFormat format) {
  switch (format) {
    case ModelFormat::kHuggingFace: return "huggingface";
    case ModelFormat::kSafetensorsFile: return "safetensors";
    case ModelFormat::kLlama2c: return "llama2c";
    case ModelFormat::kGguf: return "gguf";
  }
  return "?";
}

std::string_view tokenizer_kind_name(TokenizerKind kind) {
  switch (kind) {
    case TokenizerKind::kNone: return "none";
    case TokenizerKind::kLlama2c: return "llama2c";
    case TokenizerKind::kSentencePiece: return "sentencepiece";
    case TokenizerKind::kHuggingFaceJson: return "tokenizer.json";
    case TokenizerKind::kGguf: return "gguf";
  }
  return "?";
}

namespace {

// The quantized layer a tensor name is a part of ("<layer>.qweight" -> "<layer>"), or "".
std::string part_layer(const std::string& name) { return quantized_part_layer(name); }

}  // namespace

int64_t ModelFiles::parameter_count() const {
  int64_t total = 0;
  for (const auto& [name, tensor] : tensors)
    if (!quantized_layers.contains(part_layer(name))) total += tensor.numel();
  for (const auto& [name, spec] : quantized_layers) total += spec.out_features * spec.in_features;
  for (const auto& [name, block] : gguf_blocks) total += block.shape[0] * block.shape[1];
  return total;
}

const Tensor* ModelFiles::find(const std::string& name) const {
  for (const auto& [tensor_name, tensor] : tensors)
    if (tensor_name == name) return &tensor;
  return nullptr;
}

std::vector<std::pair<std::string, Shape>> expected_llama_tensors(const LlamaConfig& c) {
  std::vector<std::pair<std::string, Shape>> expected;
  const int64_t d = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), ff = c.intermediate_size;
  expected.push_back({"model.embed_tokens.weight", {c.vocab_size, d}});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    expected.push_back({p + "input_layernorm.weight", {d}});
    expected.push_back({p + "self_attn.q_proj.weight", {q, d}});
    expected.push_back({p + "self_attn.k_proj.weight", {kv, d}});
    expected.push_back({p + "self_attn.v_proj.weight", {kv, d}});
    if (c.attention_bias) {
      expected.push_back({p + "self_attn.q_proj.bias", {q}});
      expected.push_back({p + "self_attn.k_proj.bias", {kv}});
      expected.push_back({p + "self_attn.v_proj.bias", {kv}});
    }
    expected.push_back({p + "self_attn.o_proj.weight", {d, q}});
    expected.push_back({p + "post_attention_layernorm.weight", {d}});
    expected.push_back({p + "mlp.gate_proj.weight", {ff, d}});
    expected.push_back({p + "mlp.up_proj.weight", {ff, d}});
    expected.push_back({p + "mlp.down_proj.weight", {d, ff}});
    if (c.mlp_bias) {
      expected.push_back({p + "mlp.gate_proj.bias", {ff}});
      expected.push_back({p + "mlp.up_proj.bias", {ff}});
      expected.push_back({p + "mlp.down_proj.bias", {d}});
    }
  }
  expected.push_back({"model.norm.weight", {d}});
  if (!c.tie_word_embeddings) expected.push_back({"lm_head.weight", {c.vocab_size, d}});
  return expected;
}

namespace {

// Each quantized layer must be a linear of this architecture with the shape the config implies;
// its weight is then expected as parts instead. Returns the parts to look for.
std::vector<QuantizedPart> substitute_quantized_layers(const ModelFiles& model,
                                                       std::vector<std::pair<std::string, Shape>>& expected,
                                                       const std::string& where) {
  const LlamaConfig& c = *model.config;
  std::vector<QuantizedPart> parts;
  for (const auto& [layer, spec] : model.quantized_layers) {
    if (layer == "lm_head" && c.tie_word_embeddings)
      throw Error(where, "quantization_config lists 'lm_head', but config.json has tie_word_embeddings true "
                         "(a quantized head is stored on its own; set it false)");
    const std::string weight = layer + ".weight";
    auto it = std::find_if(expected.begin(), expected.end(), [&](const auto& entry) { return entry.first == weight; });
    // The embedding table may be stored quantized too (looked up row by row), but not pruned.
    if (it == expected.end() || it->second.size() != 2 || (layer == "model.embed_tokens" && spec.sparse))
      throw Error(where, "quantization_config lists '" + layer + "', which is not a " +
                             (layer == "model.embed_tokens" ? "prunable" : "linear") + " layer of this " + c.model_type + " model");
    const Shape recorded{spec.out_features, spec.in_features};
    if (it->second != recorded)
      throw Error(where, "quantization_config.layers['" + layer + "'] records [out_features, in_features] = " +
                             shape_to_string(recorded) + ", the config implies " + shape_to_string(it->second));
    expected.erase(it);
    for (auto& part : quantized_parts(layer, spec)) parts.push_back(std::move(part));
  }
  return parts;
}

[[noreturn]] void unlisted_part(const ModelFiles& model, const std::string& name, const std::string& where) {
  throw Error(where, "unexpected tensor '" + name + "': a quantized part of '" + part_layer(name) + "', which " +
                         (model.quantized() ? "quantization_config does not list"
                                            : "no quantization_config in config.json describes"));
}

void check_against_config(const ModelFiles& model, const std::string& where) {
  const LlamaConfig& c = *model.config;
  auto expected = expected_llama_tensors(c);
  const std::vector<QuantizedPart> parts = substitute_quantized_layers(model, expected, where);
  for (const auto& [name, shape] : expected) {
    if (const auto block = model.gguf_blocks.find(name); block != model.gguf_blocks.end()) {
      if (block->second.shape != shape)
        throw Error(where, "tensor '" + name + "' has shape " + shape_to_string(block->second.shape) +
                               ", the config implies " + shape_to_string(shape));
      continue;
    }
    const Tensor* tensor = model.find(name);
    if (!tensor) {
      // A weight stored quantized but not listed: the parts are the better clue.
      const std::string layer = name.ends_with(".weight") ? name.substr(0, name.size() - 7) : "";
      if (!layer.empty() && model.find(layer + kQweightSuffix)) unlisted_part(model, layer + kQweightSuffix, where);
      throw Error(where, "missing tensor '" + name + "' required by the config");
    }
    if (tensor->shape() != shape)
      throw Error(where, "tensor '" + name + "' has shape " + shape_to_string(tensor->shape()) + ", the config implies " +
                             shape_to_string(shape));
    if (!is_floating(tensor->dtype()))
      throw Error(where, "tensor '" + name + "' has integer dtype " + std::string(dtype_name(tensor->dtype())));
  }
  for (const auto& part : parts) {
    const Tensor* tensor = model.find(part.name);
    if (!tensor) {
      if (!part.required) continue;
      throw Error(where, "missing tensor '" + part.name + "' of quantized layer '" + part_layer(part.name) +
                             "' (listed in quantization_config)");
    }
    if (tensor->dtype() != part.dtype)
      throw Error(where, "tensor '" + part.name + "' has dtype " + std::string(dtype_name(tensor->dtype())) +
                             ", the quantization_config implies " + std::string(dtype_name(part.dtype)));
    if (part.any_length ? tensor->shape().size() != 1 : tensor->shape() != part.shape)
      throw Error(where, "tensor '" + part.name + "' has shape " + shape_to_string(tensor->shape()) +
                             ", the quantization_config implies " +
                             (part.any_length ? std::string("one dimension") : shape_to_string(part.shape)));
  }
  for (const auto& [name, tensor] : model.tensors) {
    bool known = false;
    for (const auto& entry : expected) known = known || entry.first == name;
    for (const auto& part : parts) known = known || part.name == name;
    // Tied checkpoints sometimes store lm_head anyway (equal to the embedding); accept it.
    if (!known && name == "lm_head.weight" && c.tie_word_embeddings &&
        tensor.shape() == Shape{c.vocab_size, c.hidden_size})
      known = true;
    // Old checkpoints store RoPE inverse frequencies as buffers; they are derived from the config.
    if (!known && name.ends_with("rotary_emb.inv_freq")) known = true;
    if (known) continue;
    if (!part_layer(name).empty()) unlisted_part(model, name, where);
    throw Error(where, "unexpected tensor '" + name + "' for a " + c.model_type + " model");
  }
  for (const auto& entry : model.gguf_blocks) {
    const std::string& name = entry.first;  // (clang: lambdas cannot capture structured bindings)
    const bool known = std::any_of(expected.begin(), expected.end(), [&](const auto& e) { return e.first == name; });
    if (!known) throw Error(where, "unexpected tensor '" + name + "' for a " + c.model_type + " model");
  }
}

void find_tokenizer(ModelFiles& model, const fs::path& folder) {
  if (fs::exists(folder / "tokenizer.json")) {
    model.tokenizer = TokenizerKind::kHuggingFaceJson;
    model.tokenizer_path = (folder / "tokenizer.json").string();
    return;
  }
  if (fs::exists(folder / "tokenizer.model")) {
    model.tokenizer = TokenizerKind::kSentencePiece;
    model.tokenizer_path = (folder / "tokenizer.model").string();
    return;
  }
  // llama2.c tokenizers: tokenizer.bin, or tokNNN.bin as Karpathy's small models ship.
  std::vector<fs::path> candidates;
  if (fs::exists(folder / "tokenizer.bin")) candidates.push_back(folder / "tokenizer.bin");
  for (const auto& item : fs::directory_iterator(folder)) {
    const std::string name = item.path().filename().string();
    if (name.starts_with("tok") && name.ends_with(".bin") && name != "tokenizer.bin") candidates.push_back(item.path());
  }
  if (candidates.empty()) return;
  std::sort(candidates.begin() + (fs::exists(folder / "tokenizer.bin") ? 1 : 0), candidates.end());
  model.tokenizer = TokenizerKind::kLlama2c;
  model.tokenizer_path = candidates.front().string();
  if (model.config) {
    const auto vocabulary = load_llama2c_tokenizer(model.tokenizer_path, model.config->vocab_size);
    model.tokenizer_vocab_size = static_cast<int64_t>(vocabulary.pieces.size());
  }
}

bool starts_with_magic(const fs::path& path, const char* magic) {
  std::ifstream in(path, std::ios::binary);
  char buffer[4] = {};
  in.read(buffer, 4);
  return in.gcount() == 4 && std::memcmp(buffer, magic, 4) == 0;
}

ModelFiles open_safetensors_model(const fs::path& path, bool with_config) {
  ModelFiles model;
  const auto checkpoint = SafetensorsCheckpoint::open(path.string());
  for (const auto& shard : checkpoint.shards()) {
    model.weight_files.push_back(shard.path());
    for (const auto& [key, value] : shard.metadata()) model.metadata[key] = value;
  }
  for (const auto& name : checkpoint.names()) model.tensors.emplace_back(name, checkpoint.tensor(name));
  model.file_size = checkpoint.total_file_size();
  const fs::path folder = fs::is_directory(path) ? path : path.parent_path();
  if (with_config) {
    model.format = ModelFormat::kHuggingFace;
    const std::string config_path = (folder / "config.json").string();
    const nlohmann::json config = read_json_file(config_path);
    model.config = parse_hf_config(config, config_path);
    if (config.is_object() && config.contains("quantization_config")) {
      model.quantized_layers = parse_quantization_config(config["quantization_config"], config_path);
      model.quantization_config = config["quantization_config"];
    }
    check_against_config(model, path.string());
  } else {
    model.format = ModelFormat::kSafetensorsFile;
  }
  return model;
}

}  // namespace

ModelFiles open_model(const std::string& path_text, const OpenOptions& options) {
  const fs::path path(path_text);
  std::error_code error;
  if (!fs::exists(path, error)) throw Error(path_text, "no such file or folder");
  // Naming a folder's config.json means the folder.
  if (path.filename() == "config.json")
    return open_model(path.parent_path().empty() ? "." : path.parent_path().string(), options);
  ModelFiles model;
  if (fs::is_directory(path)) {
    if (fs::exists(path / "config.json")) {
      model = open_safetensors_model(path, true);
    } else {
      // A llama2.c folder: exactly one checkpoint .bin beside its tokenizer.
      std::vector<fs::path> checkpoints;
      for (const auto& item : fs::directory_iterator(path))
        if (item.path().extension() == ".bin" && looks_like_llama2c(item.path().string()))
          checkpoints.push_back(item.path());
      if (checkpoints.size() != 1)
        throw Error(path_text, checkpoints.empty()
                                   ? "no config.json and no llama2.c checkpoint: not a model folder"
                                   : "several llama2.c checkpoints; name the .bin file");
      model = open_model(checkpoints.front().string());
      model.path = path_text;  // as the user gave it (weight_files names the .bin)
      return model;
    }
    find_tokenizer(model, path);
  } else if (path.extension() == ".safetensors" || path.extension() == ".json") {
    const bool has_config = fs::exists(path.parent_path() / "config.json");
    model = open_safetensors_model(path, has_config);
    if (has_config) find_tokenizer(model, path.parent_path().empty() ? "." : path.parent_path());
  } else if (starts_with_magic(path, "GGUF")) {
    model = open_gguf_model(path_text, options.gguf_block_types);
    check_against_config(model, path_text);
  } else {
    auto checkpoint = load_llama2c(path_text);
    model.format = ModelFormat::kLlama2c;
    model.config = checkpoint.config;
    model.tensors = std::move(checkpoint.tensors);
    model.file_size = checkpoint.file_size;
    model.weight_files.push_back(path_text);
    find_tokenizer(model, path.parent_path().empty() ? "." : path.parent_path());
  }
  model.path = path_text;
  return model;
}

}  // namespace lowbit
