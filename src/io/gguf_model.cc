#include "lowbit/io/gguf_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/io/tokenizer_export.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;

// Per-block tensor names: GGUF suffix ↔ Hugging Face suffix.
constexpr std::pair<std::string_view, std::string_view> kBlockNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"ffn_gate.bias", "mlp.gate_proj.bias"},
    {"ffn_up.bias", "mlp.up_proj.bias"},
    {"ffn_down.bias", "mlp.down_proj.bias"},
};
constexpr std::pair<std::string_view, std::string_view> kGlobalNames[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

// "<prefix><digits>.<rest>" → (digits, rest).
std::optional<std::pair<std::string, std::string_view>> split_block(std::string_view name, std::string_view prefix) {
  if (!name.starts_with(prefix)) return std::nullopt;
  name.remove_prefix(prefix.size());
  size_t digits = 0;
  while (digits < name.size() && name[digits] >= '0' && name[digits] <= '9') ++digits;
  if (digits == 0 || digits > 6 || digits >= name.size() || name[digits] != '.') return std::nullopt;
  return std::make_pair(std::string(name.substr(0, digits)), name.substr(digits + 1));
}

bool is_rope_projection(std::string_view hf_name) {
  return hf_name.ends_with("self_attn.q_proj.weight") || hf_name.ends_with("self_attn.k_proj.weight");
}

int64_t positive(const GgufFile& file, const std::string& key) {
  const uint64_t value = file.at(key).as_uint(file.path() + ": " + key);
  if (value == 0 || value > (uint64_t{1} << 40)) throw Error(file.path(), key + " = " + std::to_string(value) + " is out of range");
  return static_cast<int64_t>(value);
}

}  // namespace

std::optional<std::string> gguf_tensor_name(std::string_view hf_name) {
  for (const auto& [gguf, hf] : kGlobalNames)
    if (hf_name == hf) return std::string(gguf);
  if (auto block = split_block(hf_name, "model.layers."))
    for (const auto& [gguf, hf] : kBlockNames)
      if (block->second == hf) return "blk." + block->first + "." + std::string(gguf);
  return std::nullopt;
}

std::optional<std::string> hf_tensor_name(std::string_view gguf_name) {
  for (const auto& [gguf, hf] : kGlobalNames)
    if (gguf_name == gguf) return std::string(hf);
  if (auto block = split_block(gguf_name, "blk."))
    for (const auto& [gguf, hf] : kBlockNames)
      if (block->second == gguf) return "model.layers." + block->first + "." + std::string(hf);
  return std::nullopt;
}

std::vector<std::byte> permute_rope_rows(std::span<const std::byte> rows, int64_t heads, int64_t head_dim,
                                         size_t row_bytes, bool to_hf) {
  std::vector<std::byte> out(rows.size());
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t p = 0; p < 2; ++p) {
        const int64_t interleaved = h * head_dim + 2 * i + p, rotate_half = h * head_dim + p * half + i;
        const int64_t from = to_hf ? interleaved : rotate_half, to = to_hf ? rotate_half : interleaved;
        std::memcpy(out.data() + static_cast<size_t>(to) * row_bytes, rows.data() + static_cast<size_t>(from) * row_bytes,
                    row_bytes);
      }
  return out;
}

LlamaConfig llama_config_from_gguf(const GgufFile& file) {
  const std::string& where = file.path();
  const std::string arch = file.at("general.architecture").as_string(where + ": general.architecture");
  if (arch != "llama")
    throw Error(where, "architecture \"" + arch + "\" is not supported (lowbit runs llama-architecture GGUF files)");
  const std::string p = arch + ".";
  LlamaConfig c;
  c.model_type = "llama";
  c.num_hidden_layers = positive(file, p + "block_count");
  c.hidden_size = positive(file, p + "embedding_length");
  c.intermediate_size = positive(file, p + "feed_forward_length");
  c.num_attention_heads = positive(file, p + "attention.head_count");
  c.num_key_value_heads = file.find(p + "attention.head_count_kv") ? positive(file, p + "attention.head_count_kv")
                                                                    : c.num_attention_heads;
  c.head_dim = file.find(p + "attention.key_length") ? positive(file, p + "attention.key_length")
                                                      : c.hidden_size / c.num_attention_heads;
  if (const GgufValue* rope_dims = file.find(p + "rope.dimension_count")) {
    const uint64_t n = rope_dims->as_uint(where + ": " + p + "rope.dimension_count");
    if (static_cast<int64_t>(n) != c.head_dim)
      throw Error(where, p + "rope.dimension_count = " + std::to_string(n) + ": partial rotary embeddings are not supported (head dim " +
                             std::to_string(c.head_dim) + ")");
  }
  if (const GgufValue* scaling = file.find(p + "rope.scaling.type")) {
    const std::string type = scaling->as_string(where + ": " + p + "rope.scaling.type");
    if (type != "none") throw Error(where, p + "rope.scaling.type \"" + type + "\" is not supported");
  }
  if (file.find_tensor("rope_freqs.weight"))
    throw Error(where, "tensor 'rope_freqs.weight' (Llama 3.1 RoPE scaling factors) is not supported yet");
  if (const GgufValue* base = file.find(p + "rope.freq_base")) c.rope_theta = base->as_float(where + ": " + p + "rope.freq_base");
  c.rms_norm_eps = file.at(p + "attention.layer_norm_rms_epsilon").as_float(where + ": " + p + "attention.layer_norm_rms_epsilon");
  if (file.find(p + "context_length")) c.max_position_embeddings = positive(file, p + "context_length");
  // Vocabulary: the key when present, else the embedding's row count.
  if (file.find(p + "vocab_size")) {
    c.vocab_size = positive(file, p + "vocab_size");
  } else if (const GgufTensorInfo* embedding = file.find_tensor("token_embd.weight"); embedding && embedding->dims.size() == 2) {
    c.vocab_size = static_cast<int64_t>(embedding->dims[1]);
  } else {
    throw Error(where, "no " + p + "vocab_size and no 2-D token_embd.weight to infer it from");
  }
  c.tie_word_embeddings = file.find_tensor("output.weight") == nullptr;
  c.attention_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
  if (const GgufValue* bos = file.find("tokenizer.ggml.bos_token_id")) c.bos_token_id = bos->as_int(where + ": bos_token_id");
  if (const GgufValue* eos = file.find("tokenizer.ggml.eos_token_id")) c.eos_token_ids = {eos->as_int(where + ": eos_token_id")};
  c.torch_dtype = DType::kF32;
  c.validate(where);
  return c;
}

GgufMetadata gguf_metadata_for_config(const LlamaConfig& c) {
  GgufMetadata m;
  m.emplace_back("general.architecture", GgufValue::string("llama"));
  m.emplace_back("llama.block_count", GgufValue::u32(static_cast<uint32_t>(c.num_hidden_layers)));
  m.emplace_back("llama.context_length", GgufValue::u32(static_cast<uint32_t>(c.max_position_embeddings)));
  m.emplace_back("llama.embedding_length", GgufValue::u32(static_cast<uint32_t>(c.hidden_size)));
  m.emplace_back("llama.feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.intermediate_size)));
  m.emplace_back("llama.attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.num_attention_heads)));
  m.emplace_back("llama.attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.num_key_value_heads)));
  if (c.head_dim != c.hidden_size / c.num_attention_heads) {
    m.emplace_back("llama.attention.key_length", GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
    m.emplace_back("llama.attention.value_length", GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  }
  m.emplace_back("llama.rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta)));
  m.emplace_back("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(c.rms_norm_eps)));
  m.emplace_back("llama.vocab_size", GgufValue::u32(static_cast<uint32_t>(c.vocab_size)));
  m.emplace_back("llama.rope.dimension_count", GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
  return m;
}

ModelFiles open_gguf_model(const std::string& path, const std::set<GgmlType>& keep_block_types) {
  auto file = std::make_shared<const GgufFile>(GgufFile::open(path));
  ModelFiles model;
  model.format = ModelFormat::kGguf;
  model.path = path;
  model.config = llama_config_from_gguf(*file);
  const LlamaConfig& c = *model.config;
  model.weight_files.push_back(path);
  model.file_size = file->file_size();
  model.tokenizer = file->find("tokenizer.ggml.model") ? TokenizerKind::kGguf : TokenizerKind::kNone;
  model.tokenizer_path = path;
  for (const auto& [key, value] : file->metadata())
    if (key.starts_with("general.") && value.type == GgufValueType::kString) model.metadata[key] = value.as_string(key);

  const auto& infos = file->tensors();
  std::vector<std::string> names(infos.size());
  for (size_t k = 0; k < infos.size(); ++k) {
    const auto hf = hf_tensor_name(infos[k].name);
    if (!hf) throw Error(path, "unexpected tensor '" + infos[k].name + "' for a llama model");
    names[k] = *hf;
  }
  // Dequantize (or view, or keep as blocks) every tensor; independent per tensor, so parallel and
  // deterministic.
  std::vector<Tensor> tensors(infos.size());
  std::vector<std::optional<GgufBlockTensor>> blocks(infos.size());
  std::vector<std::string> errors(infos.size());
  // attn_q/attn_k rows back into rotate_half order, moved as opaque byte rows (any dtype or block
  // layout); nullopt for every other tensor.
  auto rope_rows_to_hf = [&](size_t k, const Shape& shape, std::span<const std::byte> bytes)
      -> std::optional<std::vector<std::byte>> {
    if (!is_rope_projection(names[k])) return std::nullopt;
    const bool is_q = names[k].ends_with("q_proj.weight");
    const int64_t heads = is_q ? c.num_attention_heads : c.num_key_value_heads;
    if (shape.size() != 2 || shape[0] != heads * c.head_dim)
      throw Error(path, "tensor '" + infos[k].name + "' has shape " + shape_to_string(shape) + ", expected " +
                            std::to_string(heads * c.head_dim) + " rows");
    return permute_rope_rows(bytes, heads, c.head_dim, bytes.size() / static_cast<size_t>(shape[0]), true);
  };
  parallel_for(static_cast<int64_t>(infos.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      try {
        const GgufTensorInfo& info = infos[k];
        if (info.dims.size() == 2 && keep_block_types.contains(info.type)) {
          GgufBlockTensor block;
          block.type = info.type;
          block.shape = info.shape();
          block.bytes = file->tensor_bytes(info);
          if (auto permuted = rope_rows_to_hf(static_cast<size_t>(k), block.shape, block.bytes)) {
            block.owned = std::make_shared<const std::vector<std::byte>>(std::move(*permuted));
            block.bytes = *block.owned;
          }
          blocks[k] = std::move(block);
          continue;
        }
        Tensor tensor = file->tensor_as_f32_or_view(info);
        if (auto permuted = rope_rows_to_hf(static_cast<size_t>(k), tensor.shape(), tensor.bytes()))
          tensor = Tensor::copy_of(tensor.dtype(), tensor.shape(), permuted->data(), permuted->size());
        tensors[k] = std::move(tensor);
      } catch (const Error& e) {
        errors[k] = e.what();
      }
    }
  });
  for (const auto& error : errors)
    if (!error.empty()) throw Error(error);
  for (size_t k = 0; k < infos.size(); ++k) {
    if (blocks[k]) model.gguf_blocks.emplace(names[k], std::move(*blocks[k]));
    else model.tensors.emplace_back(names[k], std::move(tensors[k]));
  }
  model.gguf = std::move(file);
  return model;
}

GgufWriteReport write_model_gguf(const ModelFiles& model, const std::string& path, const GgufWriteOptions& options) {
  if (!model.config) throw Error(model.path, "a model without config.json cannot be written as GGUF (its architecture is unknown)");
  // Its packed parts have no GGUF counterpart; say so instead of failing on the first part's name.
  if (model.quantized())
    throw Error(model.path, "is a lowbit quantized model; writing it as GGUF is not supported (convert the dense source)");
  const GgmlType type = options.type;
  if (type != GgmlType::kF32 && type != GgmlType::kF16 && type != GgmlType::kBF16 && type != GgmlType::kQ8_0)
    throw Error(path, "GGUF output type must be f32, f16, bf16 or q8_0, not " + std::string(ggml_traits(type).name));
  if (fs::exists(path) && !options.replace_existing) throw Error(path, "already exists (pass --force to replace it)");
  const LlamaConfig& c = *model.config;

  // Metadata: the source GGUF's (minus what describes the old file) or derived from config.
  GgufMetadata metadata;
  if (model.gguf) {
    for (const auto& [key, value] : model.gguf->metadata())
      if (key != "general.file_type" && key != "general.alignment" && key != "general.quantization_version")
        metadata.emplace_back(key, value);
  } else {
    metadata = gguf_metadata_for_config(c);
    if (auto name = model.metadata.find("general.name"); name != model.metadata.end())
      metadata.emplace_back("general.name", GgufValue::string(name->second));
    else
      metadata.emplace_back("general.name", GgufValue::string(fs::path(model.path).filename().string()));
    if (model.tokenizer != TokenizerKind::kNone)
      for (auto& entry : tokenizer_gguf_metadata(model)) metadata.push_back(std::move(entry));
  }
  // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q8_0 = 7, MOSTLY_BF16 = 32.
  const uint32_t file_type = options.file_type >= 0 ? static_cast<uint32_t>(options.file_type)
                             : type == GgmlType::kF32 ? 0 : type == GgmlType::kF16 ? 1 : type == GgmlType::kQ8_0 ? 7 : 32;
  metadata.emplace_back("general.file_type", GgufValue::u32(file_type));
  if (type == GgmlType::kQ8_0 || !options.encoded.empty())
    metadata.emplace_back("general.quantization_version", GgufValue::u32(2));
  for (const auto& entry : options.encoded) {
    const std::string& name = entry.first;
    if (std::none_of(model.tensors.begin(), model.tensors.end(), [&](const auto& t) { return t.first == name; }))
      throw Error(path, "encoded tensor '" + name + "' is not a tensor of the model");
  }

  GgufWriteReport report;
  std::vector<std::vector<std::byte>> buffers(model.tensors.size());
  std::vector<GgufTensorToWrite> tensors(model.tensors.size());
  std::vector<std::string> errors(model.tensors.size());
  parallel_for(static_cast<int64_t>(model.tensors.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const auto& [name, tensor] = model.tensors[k];
      try {
        const auto gguf_name = gguf_tensor_name(name);
        if (!gguf_name) throw Error(path, "tensor '" + name + "' has no GGUF name");
        if (name == "lm_head.weight" && c.tie_word_embeddings) continue;  // tied: the embedding serves
        if (tensor.rank() < 1 || tensor.rank() > 2) throw Error(path, "tensor '" + name + "' must be 1-D or 2-D");
        // 1-D tensors (norms, biases) stay F32 as llama.cpp keeps them; Q8_0 needs rows of 32.
        auto& bytes = buffers[k];
        GgmlType tensor_type = tensor.rank() == 1 ? GgmlType::kF32 : type;
        const int64_t row = tensor.dim(tensor.rank() - 1);
        const int64_t rows = tensor.numel() / row;
        if (const auto encoded = options.encoded.find(name); encoded != options.encoded.end()) {
          tensor_type = encoded->second.type;
          if (row % ggml_traits(tensor_type).block_size != 0 ||
              encoded->second.bytes.size() != ggml_row_bytes(tensor_type, static_cast<uint64_t>(row)) * static_cast<uint64_t>(rows))
            throw Error(path, "tensor '" + name + "': its " + std::string(ggml_traits(tensor_type).name) +
                                  " encoding does not match its shape " + shape_to_string(tensor.shape()));
          bytes = encoded->second.bytes;
        } else {
          // 1-D tensors (norms, biases) stay F32 as llama.cpp keeps them; Q8_0 needs rows of 32.
          if (tensor_type == GgmlType::kQ8_0 && row % 32 != 0) tensor_type = GgmlType::kF16;
          const std::vector<float> values = tensor.to_f32_vector();
          bytes.resize(static_cast<size_t>(ggml_row_bytes(tensor_type, static_cast<uint64_t>(row)) * rows));
          ggml_quantize(tensor_type, values, bytes);
        }
        if (is_rope_projection(name)) {
          // Rows move as opaque byte strings: any dtype or block layout.
          const int64_t heads = name.ends_with("q_proj.weight") ? c.num_attention_heads : c.num_key_value_heads;
          bytes = permute_rope_rows(bytes, heads, c.head_dim, bytes.size() / static_cast<size_t>(rows), false);
        }
        auto& out = tensors[k];
        out.name = *gguf_name;
        for (auto it = tensor.shape().rbegin(); it != tensor.shape().rend(); ++it) out.dims.push_back(static_cast<uint64_t>(*it));
        out.type = tensor_type;
        out.data = bytes;
      } catch (const Error& e) {
        errors[k] = e.what();
      }
    }
  });
  for (const auto& error : errors)
    if (!error.empty()) throw Error(error);
  std::vector<GgufTensorToWrite> written;
  for (auto& tensor : tensors)
    if (!tensor.name.empty()) {
      report.types[std::string(ggml_traits(tensor.type).name)]++;
      written.push_back(std::move(tensor));
    }
  report.tensors = static_cast<int64_t>(written.size());
  write_gguf(path, metadata, written);
  report.bytes_written = fs::file_size(path);
  return report;
}

}  // namespace lowbit
