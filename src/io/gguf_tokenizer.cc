// The tokenizer stored in a GGUF's metadata (tokenizer.ggml.*), read as llama.cpp reads it
// (llama_vocab::impl::load in src/llama-vocab.cpp) into the plain data of lowbit's shared
// cores (byte_level_bpe.h):
//   - model "gpt2": byte-level BPE from `tokens` + `merges` ("a b", rank order), with
//     llama.cpp's regex list for `pre` (absent: "default", as llama.cpp does); Llama-3 style
//     pre-tokenizers also take a piece that is itself a token whole (ignore_merges) and add
//     BOS by default;
//   - model "llama": llama.cpp's SentencePiece-style tokenizer from `tokens`, `scores`,
//     `token_type`, with add_space_prefix (default true) and add_bos_token (default true).
// Token types 3 (control) and 2 (unknown) are the special tokens matched in the text when
// parse_special; 4 (user-defined) is always matched. Overlapping special tokens resolve
// longest first, as llama.cpp's partition does.
#include "byte_level_bpe.h"
#include "lowbit/core/error.h"
#include "lowbit/io/gguf.h"
#include "lowbit/io/tokenizer.h"

namespace lowbit {

namespace detail {

namespace {

struct Reader {
  const GgufMetadata& metadata;
  const std::string& path;

  const GgufValue* find(const std::string& key) const {
    for (const auto& [name, value] : metadata)
      if (name == key) return &value;
    return nullptr;
  }
  const GgufValue& at(const std::string& key) const {
    const GgufValue* value = find(key);
    if (!value) throw Error(path, "metadata key '" + key + "' is missing");
    return *value;
  }
  std::string where(const std::string& key) const { return path + ": " + key; }
  bool boolean(const std::string& key, bool otherwise) const {
    const GgufValue* value = find(key);
    return value ? value->as_bool(where(key)) : otherwise;
  }
  // A token id key: `otherwise` when absent (-1 when that is outside the vocabulary, as
  // llama.cpp disables such defaults); Error when the stored id is outside it.
  int32_t token_id(const std::string& key, int32_t otherwise, size_t vocab) const {
    const GgufValue* value = find(key);
    if (!value) return otherwise < static_cast<int64_t>(vocab) ? otherwise : -1;
    const uint64_t id = value->as_uint(where(key));
    if (id >= vocab)
      throw Error(path, key + " = " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab) + " tokens");
    return static_cast<int32_t>(id);
  }
  std::vector<std::string> tokens() const {
    const std::string key = "tokenizer.ggml.tokens";
    std::vector<std::string> out = at(key).as_strings(where(key));
    if (out.empty()) throw Error(path, key + " is empty");
    for (size_t i = 0; i < out.size(); ++i)
      if (out[i].empty()) out[i] = "[EMPTY_" + std::to_string(i) + "]";  // llama.cpp's name for them
    return out;
  }
  // An optional per-token array: empty when absent; Error when shorter than the vocabulary.
  template <typename T, typename Get>
  std::vector<T> per_token(const std::string& key, size_t vocab, Get get) const {
    const GgufValue* value = find(key);
    if (!value) return {};
    std::vector<T> out = get(*value, where(key));
    if (out.size() < vocab)
      throw Error(path, key + " has " + std::to_string(out.size()) + " entries for " + std::to_string(vocab) + " tokens");
    out.resize(vocab);
    return out;
  }
  std::vector<int32_t> token_types(size_t vocab) const {
    return per_token<int32_t>("tokenizer.ggml.token_type", vocab,
                              [](const GgufValue& v, const std::string& w) { return v.as_int32s(w); });
  }
};

}  // namespace

std::string gguf_tokenizer_model(const GgufMetadata& metadata, const std::string& where) {
  const Reader r{metadata, where};
  const std::string key = "tokenizer.ggml.model";
  return r.at(key).as_string(r.where(key));
}

ByteLevelBpeData read_gguf_byte_level_bpe(const GgufMetadata& metadata, const std::string& where,
                                          const PreTokenizerType** pre_type) {
  const Reader r{metadata, where};
  ByteLevelBpeData data;
  data.where = where;
  data.tokens = r.tokens();
  const size_t vocab = data.tokens.size();
  const std::vector<int32_t> types = r.token_types(vocab);
  for (size_t id = 0; id < types.size(); ++id) {
    const int32_t type = types[id];
    if (type == kTokenControl || type == kTokenUnknown || type == kTokenUserDefined)
      data.added.push_back({static_cast<int32_t>(id), data.tokens[id], type != kTokenUserDefined});
  }
  data.added_order = AddedTokenOrder::kLongestFirst;
  const std::string merges_key = "tokenizer.ggml.merges";
  if (!r.find(merges_key)) throw Error(where, merges_key + " is missing (a gpt2 tokenizer needs its merges)");
  const std::vector<std::string> merges = r.at(merges_key).as_strings(r.where(merges_key));
  data.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const size_t space = merges[i].find(' ', 1);  // as llama.cpp: the first part is never empty
    if (space == std::string::npos)
      throw Error(where, merges_key + "[" + std::to_string(i) + "] \"" + merges[i] +
                             "\" is not two tokens separated by a space");
    data.merges.emplace_back(merges[i].substr(0, space), merges[i].substr(space + 1));
  }
  const std::string pre_key = "tokenizer.ggml.pre";
  const GgufValue* pre_value = r.find(pre_key);
  const std::string pre = pre_value ? pre_value->as_string(r.where(pre_key)) : "default";  // llama.cpp's fallback
  const PreTokenizerType* type = find_pre_tokenizer(pre);
  if (!type)
    throw Error(where, pre_key + " \"" + pre + "\" is not a supported pre-tokenizer (supported: " +
                           supported_pre_tokenizers() + ")");
  if (pre_type) *pre_type = type;
  data.pre_regexes = type->llama_cpp;
  data.byte_level = true;
  data.ignore_merges = type->llama3_defaults;
  data.bos_id = r.token_id("tokenizer.ggml.bos_token_id", -1, vocab);
  data.eos_id = r.token_id("tokenizer.ggml.eos_token_id", -1, vocab);
  data.adds_bos = r.boolean("tokenizer.ggml.add_bos_token", type->llama3_defaults) && data.bos_id >= 0;
  data.kind = "gguf (gpt2, " + pre + ")";
  return data;
}

SpmData read_gguf_spm(const GgufMetadata& metadata, const std::string& where) {
  const Reader r{metadata, where};
  SpmData data;
  data.where = where;
  data.tokens = r.tokens();
  const size_t vocab = data.tokens.size();
  data.scores = r.per_token<float>("tokenizer.ggml.scores", vocab,
                                   [](const GgufValue& v, const std::string& w) { return v.as_floats(w); });
  data.types = r.token_types(vocab);
  data.bos_id = r.token_id("tokenizer.ggml.bos_token_id", 1, vocab);
  data.eos_id = r.token_id("tokenizer.ggml.eos_token_id", 2, vocab);
  data.unk_id = r.token_id("tokenizer.ggml.unknown_token_id", 0, vocab);
  data.adds_bos = r.boolean("tokenizer.ggml.add_bos_token", true) && data.bos_id >= 0;
  data.add_space_prefix = r.boolean("tokenizer.ggml.add_space_prefix", true);
  data.kind = "gguf (llama)";
  return data;
}

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufMetadata& metadata, const std::string& where) {
  const std::string model = gguf_tokenizer_model(metadata, where);
  if (model == "gpt2") return make_byte_level_bpe_tokenizer(read_gguf_byte_level_bpe(metadata, where));
  if (model == "llama") return make_spm_tokenizer(read_gguf_spm(metadata, where));
  throw Error(where, "tokenizer.ggml.model \"" + model + "\" is not supported (expected \"gpt2\" or \"llama\")");
}

}  // namespace detail

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufFile& file) {
  return detail::load_gguf_tokenizer(file.metadata(), file.path());
}

}  // namespace lowbit
