// A llama-architecture GGUF as a lowbit model, and a lowbit model written as GGUF.
//
// Reading: metadata `llama.*` → LlamaConfig; GGUF tensor names → Hugging Face names
// (token_embd → model.embed_tokens, blk.N.attn_q → model.layers.N.self_attn.q_proj, …);
// a missing `output.weight` means tied embeddings. llama.cpp's converter permutes the rows
// of attn_q/attn_k from Hugging Face's rotate_half RoPE layout into Meta's interleaved one
// (its RoPE rotates adjacent pairs); lowbit keeps one convention, so those rows are permuted
// back on load, and forward again on write. Block-quantized tensors are dequantized to f32
// at load (bit-exact with ggml), or kept as blocks for runners that read them (OpenOptions);
// F32/F16/BF16 tensors stay zero-copy views of the mapping.
#pragma once

#include <cstddef>
#include <map>
#include <vector>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "lowbit/io/gguf.h"
#include "lowbit/io/model_files.h"

namespace lowbit {

// The GGUF name of a Hugging Face Llama tensor name, and back; nullopt when not a Llama tensor.
std::optional<std::string> gguf_tensor_name(std::string_view hf_name);
std::optional<std::string> hf_tensor_name(std::string_view gguf_name);

// Config from `<arch>.*` metadata (architecture must be "llama"); Error naming the key.
LlamaConfig llama_config_from_gguf(const GgufFile& file);
// The `general.architecture` and `llama.*` keys describing `config`.
GgufMetadata gguf_metadata_for_config(const LlamaConfig& config);

// Opens a GGUF file as a model (format kGguf, tokenizer kGguf, `gguf` set). 2-D weights whose type is in
// `keep_block_types` go to ModelFiles::gguf_blocks undecoded (see OpenOptions).
ModelFiles open_gguf_model(const std::string& path, const std::set<GgmlType>& keep_block_types = {});

// Permutes the rows of a [heads × head_dim, row_bytes] projection between rotate_half (HF)
// and interleaved (Meta / GGUF) RoPE layouts. Rows are moved as opaque byte strings, so any
// dtype or block layout works. to_hf: new row h·d + p·d/2 + i = old row h·d + 2i + p.
std::vector<std::byte> permute_rope_rows(std::span<const std::byte> rows, int64_t heads, int64_t head_dim,
                                         size_t row_bytes, bool to_hf);

// A tensor already encoded in a ggml type by one of lowbit's quantizers: its rows in that type's
// layout, in Hugging Face row order (the writer applies the RoPE row permutation itself).
struct GgufEncodedTensor {
  GgmlType type = GgmlType::kF32;
  std::vector<std::byte> bytes;
};

struct GgufWriteOptions {
  GgmlType type = GgmlType::kF32;  // for 2-D weights: F32, F16, BF16 or Q8_0; 1-D tensors stay F32
  bool replace_existing = false;
  // Hugging Face tensor name → its encoding; these replace the model's values for that tensor (whose
  // shape they must match). What `lowbit quantize --format gguf:TYPE` writes.
  std::map<std::string, GgufEncodedTensor> encoded;
  // llama_ftype stored as general.file_type (what llama.cpp reports as the file's type); -1: derived from `type`.
  int file_type = -1;
};

struct GgufWriteReport {
  int64_t tensors = 0;
  uint64_t bytes_written = 0;
  std::map<std::string, int64_t> types;  // ggml type name → tensor count
};

// Writes `model` as a GGUF that llama.cpp loads: metadata (the source GGUF's own when it
// was one, else derived from the config), the tokenizer (tokenizer.ggml.*), tensors in
// llama.cpp's names and RoPE row order. Atomic.
GgufWriteReport write_model_gguf(const ModelFiles& model, const std::string& path, const GgufWriteOptions& options);

}  // namespace lowbit
