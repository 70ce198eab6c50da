// Opening a model whatever form it arrives in: a Hugging Face folder (config.json +
// safetensors, possibly sharded), a bare .safetensors file, or a llama2.c .bin. The
// format is detected from the path and the file's first bytes, never from a flag.
//
// Every form is presented the same way: Hugging Face tensor names and layouts (q/k rows
// in rotate_half order), so later layers handle one convention.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "lowbit/io/gguf.h"
#include "lowbit/io/hf_config.h"
#include "lowbit/io/quantized_layout.h"
#include "lowbit/io/safetensors.h"

namespace lowbit {

enum class ModelFormat { kHuggingFace, kSafetensorsFile, kLlama2c, kGguf };
std::string_view model_format_name(ModelFormat format);

enum class TokenizerKind { kNone, kLlama2c, kSentencePiece, kHuggingFaceJson, kGguf };
std::string_view tokenizer_kind_name(TokenizerKind kind);

// A GGUF weight kept in its ggml block layout instead of dequantized (OpenOptions below): the rows as
// the file stores them, in Hugging Face row order (attn_q/attn_k rows permuted back, as bytes).
struct GgufBlockTensor {
  GgmlType type = GgmlType::kF32;
  Shape shape;                                   // [rows, cols]
  std::span<const std::byte> bytes;              // rows × ggml_row_bytes(type, cols)
  std::shared_ptr<const std::vector<std::byte>> owned;  // the permuted copy behind `bytes`, if any
};

struct ModelFiles {
  ModelFormat format = ModelFormat::kHuggingFace;
  std::string path;                   // as given by the user
  std::optional<LlamaConfig> config;  // absent only for a bare .safetensors file
  NamedTensors tensors;               // HF names, in file order
  std::map<std::string, std::string> metadata;
  std::vector<std::string> weight_files;
  uint64_t file_size = 0;             // bytes of the weight files
  TokenizerKind tokenizer = TokenizerKind::kNone;
  std::string tokenizer_path;
  int64_t tokenizer_vocab_size = 0;   // known for llama2.c tokenizers (read and validated on open)
  // Set for GGUF models: the parsed file (its metadata carries the tokenizer and is written
  // back by `convert … out.gguf`).
  std::shared_ptr<const GgufFile> gguf;
  // lowbit quantized folders (quantized_layout.h): config.json's quantization_config as read
  // (null for every other model) and the layers it lists, whose tensors are the parts
  // <name>.qweight/.scales/.qzeros/.g_idx instead of <name>.weight.
  nlohmann::json quantization_config;
  std::map<std::string, QuantizedLayerSpec> quantized_layers;
  // GGUF weights opened with OpenOptions::gguf_block_types: by HF name ("….weight"), not in `tensors`.
  std::map<std::string, GgufBlockTensor> gguf_blocks;

  bool quantized() const { return !quantization_config.is_null(); }
  // Logical parameters: element counts of ordinary tensors plus out x in for each quantized layer
  // (its parts are storage, not parameters).
  int64_t parameter_count() const;
  const Tensor* find(const std::string& name) const;
};

// Throws Error naming the file and the problem. For models with a config, checks that
// every tensor the architecture needs is present with the shape the config implies
// (unknown extra tensors are refused too: they would be silently ignored otherwise). In a lowbit
// quantized folder each listed layer's parts replace its weight, with dtypes and shapes checked
// against the recorded scheme; a quant_method other than "lowbit" is refused.
struct OpenOptions {
  // GGUF 2-D weights of these ggml types stay in their block layout (ModelFiles::gguf_blocks) rather
  // than being dequantized to f32: for runners whose layers read the blocks themselves
  // (load_llama_model), so a quantized file stays about its own size in memory.
  std::set<GgmlType> gguf_block_types;
};
ModelFiles open_model(const std::string& path, const OpenOptions& options = {});

// The tensors (name, shape) a Llama-family checkpoint with this config must hold.
std::vector<std::pair<std::string, Shape>> expected_llama_tensors(const LlamaConfig& config);

}  // namespace lowbit
