// lowbit quantized model folders (docs/FORMATS.md, "lowbit quantized safetensors"): reading the
// quantized layers of an opened folder, running it, and writing one.
//
// open_model (io) checks the folder's names, dtypes and shapes against config.json; here the parts
// become QuantizedTensors (QuantizedTensor::from_parts validates every value) and the model's
// linear layers QuantizedLinear over them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/compress/sparse_tensor.h"
#include "lowbit/io/model_files.h"
#include "lowbit/model/llama.h"

namespace lowbit {

// Every layer listed in files.quantized_layers, by linear name ("model.layers.3.mlp.down_proj",
// "lm_head"). Throws Error "<model path>: quantized layer '<name>': ..." for values the layout
// forbids (pad bits set, codes or zero points out of range, scales not finite in their dtype,
// g_idx out of range). Empty for models that are not quantized. Sparse layers are not included.
std::map<std::string, std::shared_ptr<const QuantizedTensor>> read_quantized_layers(const ModelFiles& files);
// Every sparse layer (those whose quantization_config entry has "sparsity"), validated the same way.
std::map<std::string, std::shared_ptr<const SparseTensor>> read_sparse_layers(const ModelFiles& files);

// open_model for running a model (lowbit run / eval / bench): a GGUF's weights in the ggml types
// lowbit's layers read as they are (ggml_scheme_types: Q8_0, Q5_0, Q5_1, Q4_0, Q4_1, IQ4_NL) are not
// dequantized (ModelFiles::gguf_blocks); load_llama_model runs them from their codes.
ModelFiles open_model_to_run(const std::string& path);
// Those GGUF weights as QuantizedTensors by linear name (unpack_ggml_blocks: codes and scales exactly
// as ggml decodes them; f16 scales held as f32). Error "<path>: tensor '<name>': ..." for a bad block.
std::map<std::string, std::shared_ptr<const QuantizedTensor>> read_gguf_block_layers(const ModelFiles& files);

// A LlamaModel over `files`: QuantizedLinear for the quantized layers (with "<name>.bias" when
// the folder has one) and for a GGUF's block weights kept packed, DenseLinear for the rest. Sparse layers: the 2:4 kernel where it applies
// (compress/sparse_linear.h), otherwise densified (QuantizedLinear over the codes with zeros, or
// DenseLinear over the f32 values). For dense models the same as LlamaModel(files).
std::shared_ptr<LlamaModel> load_llama_model(std::shared_ptr<const ModelFiles> files);

// What a quantized folder holds.
struct QuantizedModelContents {
  LlamaConfig config;
  // Ordinary tensors by HF name (norms, embeddings, layers kept in higher precision, their biases).
  NamedTensors dense;
  // Quantized linear layers by linear name (no ".weight"), e.g. "model.layers.0.self_attn.q_proj".
  std::map<std::string, QuantizedTensor> quantized;
  // Sparse (pruned; float or quantized values) linear layers by linear name.
  std::map<std::string, SparseTensor> sparse;
  // Biases of quantized and sparse layers, by linear name; written as "<name>.bias" (F32).
  std::map<std::string, std::vector<float>> biases;
  // Extra keys for config.json's quantization_config (method, bits, statistics, ...): kept as
  // given. The writer sets quant_method, format_version and layers itself.
  nlohmann::json quantization_config = nlohmann::json::object();
};

// Writes `contents` as a folder at `output_dir`: config.json (with quantization_config),
// model.safetensors, and the tokenizer of `source` (write_tokenizer_files). A quantized lm_head
// sets tie_word_embeddings false. The folder is staged beside the destination and opened with
// open_model before it is renamed into place, so it appears complete and readable or not at all.
// Refuses an existing output unless `replace_existing`. Returns the bytes written.
uint64_t write_quantized_model(const std::string& output_dir, const ModelFiles& source,
                               const QuantizedModelContents& contents, bool replace_existing);

}  // namespace lowbit
