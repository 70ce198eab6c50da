// Tokenizers of the Llama family, behind one interface:
//   - llama2.c tokenizer.bin: SentencePiece-style BPE driven by merge scores, byte fallback
//     (Karpathy's llama2.c `encode`, used by the stories models);
//   - SentencePiece tokenizer.model through Debian's libsentencepiece (Llama 1/2, Mistral);
//   - Hugging Face tokenizer.json byte-level BPE (GPT-2 / Llama-3 / SmolLM / Qwen2 style):
//     added/special tokens split first, then the pre-tokenizer regex (PCRE2, Unicode
//     classes), the byte-to-unicode map and rank-ordered merges;
//   - the tokenizer inside a GGUF (tokenizer.ggml.*), as llama.cpp runs it: "gpt2" is the
//     same byte-level BPE with llama.cpp's pre-tokenizer regexes (tokenizer.ggml.pre), "llama"
//     is llama.cpp's SentencePiece-style merge of the best-scoring bigram with byte fallback.
// The model decides which one is used (see load_tokenizer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/model_files.h"

namespace lowbit {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids for UTF-8 `text` (Error when it is not valid UTF-8). `add_bos` prepends
  // the BOS id when the tokenizer has one. With `parse_special` (the default, as llama.cpp
  // and Hugging Face do) the text of a special/control token in `text` is that token;
  // without it such text is tokenized like any other. (User-defined added tokens are
  // matched either way; tokenizers without special tokens in their text ignore the flag.)
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = true) const = 0;
  // Text of `token` as it continues a stream whose previous token was `previous`
  // (-1 at the start); handles SentencePiece's leading-space rule and byte tokens.
  virtual std::string decode_token(int32_t previous, int32_t token) const = 0;
  std::string decode(const std::vector<int32_t>& ids) const;

  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;  // -1 when none
  // Whether this tokenizer's convention adds BOS at the start of a text (llama.cpp's
  // tokenizer.ggml.add_bos_token; false for SmolLM2/Qwen2 byte-level BPE).
  virtual bool adds_bos() const = 0;
  virtual std::string_view kind() const = 0;
};

std::unique_ptr<Tokenizer> load_llama2c_bpe_tokenizer(const std::string& path, int64_t vocab_size);
std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path);
std::unique_ptr<Tokenizer> load_hf_bpe_tokenizer(const std::string& path);
// From a GGUF's tokenizer.ggml.* metadata; Error naming the file and the key or value it
// cannot use (unknown tokenizer.ggml.model or tokenizer.ggml.pre, missing tokens, ...).
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufFile& file);

// The tokenizer that ships with `model`; Error naming the model path when none was found.
std::unique_ptr<Tokenizer> load_tokenizer(const ModelFiles& model);

// Throws Error(where, ...) naming the byte offset of the first invalid UTF-8 sequence.
void require_utf8(std::string_view text, const std::string& where);

}  // namespace lowbit
