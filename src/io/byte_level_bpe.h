// Private to src/io: the tokenizer cores built from plain data, so that every file format
// that carries a tokenizer (tokenizer.json, GGUF, tokenizer.model, tokenizer.bin) shares one
// implementation of each algorithm, and the export code (tokenizer_export.cc) can read the
// same data back out.
//
//   - AddedTokenSplitter: special/added tokens matched literally before anything else.
//   - make_byte_level_bpe_tokenizer: GPT-2 style byte-level BPE (byte_level_bpe.cc) —
//     pre-tokenizer regexes (PCRE2), GPT-2's byte→unicode map, rank-ordered merges.
//   - make_spm_tokenizer: llama.cpp's SentencePiece-style tokenizer (spm_tokenizer.cc) —
//     spaces escaped to U+2581, greedy merging of the best-scoring bigram, byte fallback.
//   - the llama.cpp pre-tokenizer names (tokenizer.ggml.pre) and their regex lists.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowbit/io/tokenizer.h"

namespace lowbit::detail {

// llama.cpp's token types (tokenizer.ggml.token_type), the same numbers as SentencePiece's
// ModelProto piece types.
enum TokenType : int32_t {
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,
  kTokenUserDefined = 4,
  kTokenUnused = 5,
  kTokenByte = 6,
};

// SentencePiece marks spaces with U+2581; decoding a piece turns each mark back into ' '.
// Shared by the libsentencepiece wrapper and the GGUF SPM tokenizer.
inline constexpr std::string_view kSpaceMark = "\xE2\x96\x81";
std::string unescape_space_marks(std::string_view piece);

// A token matched literally in the text before any other processing, never split.
struct AddedToken {
  int32_t id = -1;
  std::string content;
  // true: a special/control token, matched only when encode's parse_special is true;
  // false: a user-defined (non-special added) token, always matched (as both llama.cpp
  // and Hugging Face do).
  bool special = true;
};

// How overlapping added tokens are resolved (they agree whenever no two occurrences overlap).
enum class AddedTokenOrder {
  kLeftmostLongest,  // Hugging Face: the earliest occurrence, the longest one on ties
  kLongestFirst,     // llama.cpp: tokens by decreasing length (then id), each splitting what is left
};

struct TextFragment {
  std::string_view text;  // when token < 0
  int32_t token = -1;
};

class AddedTokenSplitter {
 public:
  AddedTokenSplitter() = default;
  AddedTokenSplitter(std::vector<AddedToken> tokens, AddedTokenOrder order);
  // Text and token fragments in order; text fragments are never empty.
  std::vector<TextFragment> split(std::string_view text, bool parse_special) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;  // kLongestFirst: sorted by decreasing length, then id
  AddedTokenOrder order_ = AddedTokenOrder::kLeftmostLongest;
};

// ---------------------------------------------------------------------------------------
// Byte-level BPE

struct ByteLevelBpeData {
  std::string where;  // the file, for messages
  std::string kind;   // Tokenizer::kind()
  // Token text by id: byte-level strings (GPT-2's byte→unicode map applied); added tokens
  // hold their literal content; ids without a token hold "".
  std::vector<std::string> tokens;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<AddedToken> added;
  AddedTokenOrder added_order = AddedTokenOrder::kLeftmostLongest;
  // Pre-tokenizer regexes applied in order, each re-splitting the previous step's pieces
  // (unmatched stretches stay pieces of their own).
  std::vector<std::string> pre_regexes;
  bool byte_level = true;         // symbols are GPT-2-mapped bytes (else UTF-8 characters)
  bool add_prefix_space = false;  // ByteLevel(add_prefix_space): " " before each text fragment
  bool ignore_merges = false;     // a piece that is itself a token is taken whole (Llama 3)
  int32_t bos_id = -1, eos_id = -1;
  bool adds_bos = false;
  std::string pre_tokenizer_description;  // tokenizer.json's pre_tokenizer, for messages
};

// Throws Error(data.where, ...) when a merge names a string that is not a token, or a
// regex does not compile.
std::unique_ptr<Tokenizer> make_byte_level_bpe_tokenizer(ByteLevelBpeData data);

// tokenizer.json (model BPE) as plain data (hf_bpe_tokenizer.cc).
ByteLevelBpeData read_hf_tokenizer_json(const std::string& path);

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the others to U+0100+.
const std::string& gpt2_byte_to_unicode(uint8_t byte);

// The regex GPT-2's ByteLevel pre-tokenizer applies (Hugging Face's form, ending in |\s+).
extern const char* const kGpt2Regex;

// A llama.cpp pre-tokenizer (tokenizer.ggml.pre) this code supports.
struct PreTokenizerType {
  std::string name;                    // the canonical tokenizer.ggml.pre value
  std::vector<std::string> aliases;    // other values llama.cpp maps to the same lists
  std::vector<std::string> llama_cpp;  // llama.cpp's regex list (src/llama-vocab.cpp)
  // Regex lists a tokenizer.json may describe it with (as read_hf_tokenizer_json derives
  // them), the first being the one tokenizer_json_from_gguf writes.
  std::vector<std::vector<std::string>> hf_forms;
  bool llama3_defaults = false;  // llama.cpp: ignore_merges and add_bos_token default true
};
const std::vector<PreTokenizerType>& pre_tokenizer_types();
// By tokenizer.ggml.pre (name or alias); nullptr when unsupported.
const PreTokenizerType* find_pre_tokenizer(std::string_view name);
// By the regex list of a tokenizer.json; nullptr when none matches.
const PreTokenizerType* match_pre_tokenizer(const std::vector<std::string>& regexes);
// "smollm, llama-bpe, ..." for messages.
std::string supported_pre_tokenizers();

// ---------------------------------------------------------------------------------------
// SentencePiece-style (llama.cpp's llm_tokenizer_spm)

struct SpmData {
  std::string where;
  std::string kind;
  std::vector<std::string> tokens;  // spaces written as U+2581; bytes as <0xXX>
  std::vector<float> scores;        // empty: all 0
  std::vector<int32_t> types;       // TokenType per id; empty: all normal
  int32_t bos_id = 1, eos_id = 2, unk_id = 0;  // -1 when none
  bool adds_bos = true;
  bool add_space_prefix = true;
};

// Control (3), unknown (2) and user-defined (4) tokens are the added tokens, matched
// longest first as llama.cpp does. Throws Error(data.where, ...) on inconsistent sizes.
std::unique_ptr<Tokenizer> make_spm_tokenizer(SpmData data);

// ---------------------------------------------------------------------------------------
// GGUF metadata (gguf_tokenizer.cc), usable without a file (tests, export)

// tokenizer.ggml.model (Error when absent or not a string).
std::string gguf_tokenizer_model(const GgufMetadata& metadata, const std::string& where);
// tokenizer.ggml.model "gpt2" as byte-level BPE data; `pre` receives the pre-tokenizer type.
ByteLevelBpeData read_gguf_byte_level_bpe(const GgufMetadata& metadata, const std::string& where,
                                          const PreTokenizerType** pre = nullptr);
// tokenizer.ggml.model "llama" as SentencePiece-style data.
SpmData read_gguf_spm(const GgufMetadata& metadata, const std::string& where);
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufMetadata& metadata, const std::string& where);

}  // namespace lowbit::detail
