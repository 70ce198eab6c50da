// llama2.c checkpoints (Karpathy's legacy "version 0" .bin) and tokenizer.bin.
//
// Checkpoint: seven little-endian int32 — dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len — then float32 arrays in this order:
// token_embedding[vocab][dim], rms_att[L][dim], wq[L][dim][dim], wk[L][kv][dim],
// wv[L][kv][dim], wo[L][dim][dim], rms_ffn[L][dim], w1[L][hidden][dim],
// w2[L][dim][hidden], w3[L][hidden][dim], rms_final[dim],
// freq_cis_real[seq][head/2], freq_cis_imag[seq][head/2], then wcls[vocab][dim] only
// when the classifier is not shared. A negative vocab_size means "not shared" (the
// sign is the flag; the size is its absolute value).
//
// The q/k weights are in Meta's original layout (RoPE rotates interleaved pairs
// (2i, 2i+1)); Hugging Face's rotate_half convention pairs (i, i + head_dim/2). Loading
// permutes q/k rows into the HF layout so the rest of lowbit sees one convention.
//
// tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 length,
// `length` bytes of UTF-8 (no terminator).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/io/hf_config.h"
#include "lowbit/io/safetensors.h"

namespace lowbit {

struct Llama2cHeader {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  bool shared_classifier = true;
};

struct Llama2cCheckpoint {
  Llama2cHeader header;
  LlamaConfig config;
  // Hugging Face names and layout (q/k rows permuted), f32. Owning copies for q/k,
  // zero-copy views for the rest. RoPE tables (freq_cis) are not parameters and are dropped.
  NamedTensors tensors;
  uint64_t file_size = 0;
};

// True when the first 28 bytes look like a llama2.c header (positive sizes, and the
// file size matches exactly the arrays they imply, with or without a classifier).
bool looks_like_llama2c(const std::string& path);
Llama2cCheckpoint load_llama2c(const std::string& path);

struct Llama2cVocabulary {
  int32_t max_token_length = 0;
  std::vector<std::string> pieces;
  std::vector<float> scores;
};
// Reads `vocab_size` entries; throws Error naming the file and the entry index on truncation
// or a length that is negative or longer than max_token_length.
Llama2cVocabulary load_llama2c_tokenizer(const std::string& path, int64_t vocab_size);

// Permutes the rows of a [heads*head_dim, cols] projection from Meta's interleaved RoPE
// layout to HF rotate_half: within each head, new row p*(head_dim/2)+i = old row 2i+p.
std::vector<float> permute_rope_rows_to_hf(const float* rows, int64_t heads, int64_t head_dim, int64_t cols);

}  // namespace lowbit
