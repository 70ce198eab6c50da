// Carrying a model's tokenizer from one file format to another.
//
//   - tokenizer_gguf_metadata: the `tokenizer.ggml.*` keys that describe the tokenizer of any
//     model lowbit opens, for a GGUF we write (llama.cpp's conventions: token_type 1 normal,
//     2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte);
//   - tokenizer_json_from_gguf: a Hugging Face tokenizer.json for a GGUF's byte-level BPE
//     tokenizer (so `convert model.gguf OUT_DIR` gives a folder other tools load).
// Both round-trip: the tokenizer loaded from the result gives the same ids as the original.
#pragma once

#include <string>

#include "lowbit/io/gguf.h"
#include "lowbit/io/model_files.h"

namespace lowbit {

// From a GGUF model: its own tokenizer.* keys, copied in file order. From a tokenizer.json
// byte-level BPE: model "gpt2", tokens, token_type, merges ("a b"), the llama.cpp
// pre-tokenizer name (smollm, llama-bpe, qwen2, gpt-2; anything else is an Error naming
// it), bos/eos ids, add_bos_token. From a llama2.c tokenizer.bin or a SentencePiece
// tokenizer.model: model "llama", tokens, scores, token_type, bos/eos/unknown ids,
// add_bos_token, add_space_prefix. Error naming the model when it has no tokenizer.
GgufMetadata tokenizer_gguf_metadata(const ModelFiles& model);

// A tokenizer.json (model BPE, vocab, merges, added_tokens for the control and
// user-defined tokens, the pre-tokenizer of tokenizer.ggml.pre, ByteLevel decoder) for a
// GGUF whose tokenizer.ggml.model is "gpt2". Error for other tokenizer models (the
// SentencePiece-style "llama" one has no faithful tokenizer.json form here).
std::string tokenizer_json_from_gguf(const GgufFile& file);

}  // namespace lowbit
