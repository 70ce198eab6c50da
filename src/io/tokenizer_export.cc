// Tokenizer export both ways (see tokenizer_export.h). Everything goes through the same
// plain data the tokenizers are built from (byte_level_bpe.h), so what is written is what
// lowbit itself runs.
#include "lowbit/io/tokenizer_export.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "byte_level_bpe.h"
#include "lowbit/core/error.h"
#include "lowbit/io/llama2c.h"
#include "lowbit/io/tokenizer.h"

namespace lowbit {

namespace {

using detail::kTokenByte;
using detail::kTokenControl;
using detail::kTokenNormal;
using detail::kTokenUnknown;
using detail::kTokenUnused;
using detail::kTokenUserDefined;

GgufMetadata from_tokenizer_json(const std::string& path) {
  const detail::ByteLevelBpeData data = detail::read_hf_tokenizer_json(path);
  if (!data.byte_level)
    throw Error(path, "only byte-level BPE tokenizer.json files can be described as a GGUF tokenizer (pre_tokenizer " +
                          data.pre_tokenizer_description + " has no ByteLevel step)");
  const detail::PreTokenizerType* pre = data.add_prefix_space ? nullptr : detail::match_pre_tokenizer(data.pre_regexes);
  if (!pre)
    throw Error(path, "pre_tokenizer " + data.pre_tokenizer_description +
                          " is not one llama.cpp names (supported: smollm = Digits(individual_digits) + ByteLevel, "
                          "gpt-2 = ByteLevel, llama-bpe and qwen2 = their Split regex + ByteLevel(use_regex false), "
                          "all without add_prefix_space)");
  std::vector<std::string> tokens = data.tokens;
  std::vector<int32_t> types(tokens.size(), kTokenNormal);
  for (size_t id = 0; id < tokens.size(); ++id)
    if (tokens[id].empty()) tokens[id] = "[PAD" + std::to_string(id) + "]", types[id] = kTokenUnused;  // as convert_hf_to_gguf
  for (const auto& added : data.added) types[added.id] = added.special ? kTokenControl : kTokenUserDefined;
  std::vector<std::string> merges;
  merges.reserve(data.merges.size());
  for (const auto& [left, right] : data.merges) merges.push_back(left + " " + right);
  GgufMetadata out = {
      {"tokenizer.ggml.model", GgufValue::string("gpt2")},
      {"tokenizer.ggml.pre", GgufValue::string(pre->name)},
      {"tokenizer.ggml.tokens", GgufValue::strings(tokens)},
      {"tokenizer.ggml.token_type", GgufValue::int32s(types)},
      {"tokenizer.ggml.merges", GgufValue::strings(merges)},
  };
  if (data.bos_id >= 0) out.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(data.bos_id)));
  if (data.eos_id >= 0) out.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(data.eos_id)));
  out.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(data.adds_bos));
  out.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
  return out;
}

GgufMetadata spm_metadata(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                          const std::vector<int32_t>& types, int32_t bos, int32_t eos, int32_t unk, bool add_space_prefix) {
  GgufMetadata out = {
      {"tokenizer.ggml.model", GgufValue::string("llama")},
      {"tokenizer.ggml.tokens", GgufValue::strings(tokens)},
      {"tokenizer.ggml.scores", GgufValue::floats(scores)},
      {"tokenizer.ggml.token_type", GgufValue::int32s(types)},
  };
  if (bos >= 0) out.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(bos)));
  if (eos >= 0) out.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(eos)));
  if (unk >= 0) out.emplace_back("tokenizer.ggml.unknown_token_id", GgufValue::u32(static_cast<uint32_t>(unk)));
  out.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(bos >= 0));
  out.emplace_back("tokenizer.ggml.add_space_prefix", GgufValue::boolean(add_space_prefix));
  return out;
}

// llama2.c's tokenizer.bin: <unk>, BOS, EOS, then the 256 byte tokens <0x00>..<0xFF>, then
// pieces with literal spaces. llama.cpp's SPM looks pieces up with spaces escaped to U+2581.
GgufMetadata from_llama2c(const std::string& path, int64_t vocab_size) {
  const Llama2cVocabulary vocabulary = load_llama2c_tokenizer(path, vocab_size);
  const size_t n = vocabulary.pieces.size();
  if (n < 259) throw Error(path, "a llama2.c vocabulary needs at least 259 entries (3 + 256 bytes)");
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, kTokenNormal);
  for (size_t id = 0; id < n; ++id) {
    const std::string& piece = vocabulary.pieces[id];
    unsigned int byte = 0;
    char tail = 0;
    if (id == 0) {
      tokens[id] = "<unk>", types[id] = kTokenUnknown;
    } else if (id == 1 || id == 2) {
      tokens[id] = id == 1 ? "<s>" : "</s>", types[id] = kTokenControl;  // stored as "\n<s>\n", "\n</s>\n"
    } else if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>%c", &byte, &tail) == 1) {
      tokens[id] = piece, types[id] = kTokenByte;
    } else {
      std::string escaped;
      for (char c : piece) escaped += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
      tokens[id] = escaped;
    }
  }
  return spm_metadata(tokens, vocabulary.scores, types, 1, 2, 0, true);
}

// The few fields of SentencePiece's ModelProto the library's API does not expose: each
// piece's type (to tell user-defined pieces) and normalizer_spec.add_dummy_prefix.
struct ProtoFacts {
  std::vector<int32_t> types;
  bool add_dummy_prefix = true;
};

class ProtoReader {
 public:
  ProtoReader(std::string_view bytes, const std::string& where) : bytes_(bytes), where_(where) {}
  bool done() const { return at_ >= bytes_.size(); }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) fail();
      const auto byte = static_cast<unsigned char>(bytes_[at_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail();
  }
  // Reads a field key; returns (field number, wire type).
  std::pair<uint64_t, int> key() {
    const uint64_t k = varint();
    return {k >> 3, static_cast<int>(k & 7)};
  }
  std::string_view bytes() {
    const uint64_t length = varint();
    if (length > bytes_.size() - at_) fail();
    const std::string_view out = bytes_.substr(at_, length);
    at_ += length;
    return out;
  }
  void skip(int wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1: advance(8); return;
      case 2: bytes(); return;
      case 5: advance(4); return;
      default: fail();
    }
  }

 private:
  void advance(size_t n) {
    if (n > bytes_.size() - at_) fail();
    at_ += n;
  }
  [[noreturn]] void fail() const { throw Error(where_, "malformed SentencePiece model protobuf"); }
  std::string_view bytes_;
  size_t at_ = 0;
  const std::string& where_;
};

ProtoFacts read_proto_facts(std::string_view model, const std::string& where) {
  ProtoFacts facts;
  ProtoReader reader(model, where);
  while (!reader.done()) {
    const auto [field, wire] = reader.key();
    if (field == 1 && wire == 2) {  // repeated SentencePiece pieces
      ProtoReader piece(reader.bytes(), where);
      int32_t type = kTokenNormal;  // the proto default
      while (!piece.done()) {
        const auto [f, w] = piece.key();
        if (f == 3 && w == 0) type = static_cast<int32_t>(piece.varint());
        else piece.skip(w);
      }
      facts.types.push_back(type);
    } else if (field == 3 && wire == 2) {  // NormalizerSpec normalizer_spec
      ProtoReader spec(reader.bytes(), where);
      while (!spec.done()) {
        const auto [f, w] = spec.key();
        if (f == 3 && w == 0) facts.add_dummy_prefix = spec.varint() != 0;
        else spec.skip(w);
      }
    } else {
      reader.skip(wire);
    }
  }
  return facts;
}

GgufMetadata from_sentencepiece(const std::string& path) {
  sentencepiece::SentencePieceProcessor processor;
  const auto status = processor.Load(path);
  if (!status.ok()) throw Error(path, "not a SentencePiece model: " + status.ToString());
  const std::string serialized = processor.serialized_model_proto();
  const ProtoFacts facts = read_proto_facts(serialized, path);
  const int n = processor.GetPieceSize();
  if (static_cast<int>(facts.types.size()) != n)
    throw Error(path, "the model protobuf lists " + std::to_string(facts.types.size()) + " pieces, the library " +
                          std::to_string(n));
  std::vector<std::string> tokens(n);
  std::vector<float> scores(n);
  for (int id = 0; id < n; ++id) tokens[id] = processor.IdToPiece(id), scores[id] = processor.GetScore(id);
  return spm_metadata(tokens, scores, facts.types, processor.bos_id(), processor.eos_id(), processor.unk_id(),
                      facts.add_dummy_prefix);
}

// One pre-tokenizer step of a tokenizer.json for each regex of the type's first HF form.
nlohmann::ordered_json pre_tokenizer_json(const detail::PreTokenizerType& type) {
  using nlohmann::ordered_json;
  const std::vector<std::string>& regexes = type.hf_forms.front();
  ordered_json steps = ordered_json::array();
  bool byte_level_regex = false;
  for (size_t k = 0; k < regexes.size(); ++k) {
    const std::string& regex = regexes[k];
    if (regex == R"(\p{N})" || regex == R"(\p{N}+)") {
      steps.push_back({{"type", "Digits"}, {"individual_digits", regex == R"(\p{N})"}});
    } else if (k + 1 == regexes.size() && regex == detail::kGpt2Regex) {
      byte_level_regex = true;
    } else {
      steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}});
    }
  }
  steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", byte_level_regex}});
  if (steps.size() == 1) return steps.front();
  return {{"type", "Sequence"}, {"pretokenizers", steps}};
}

}  // namespace

GgufMetadata tokenizer_gguf_metadata(const ModelFiles& model) {
  switch (model.tokenizer) {
    case TokenizerKind::kGguf: {
      if (!model.gguf) throw Error(model.path, "GGUF tokenizer without its parsed file");
      GgufMetadata out;
      for (const auto& [key, value] : model.gguf->metadata())
        if (key.starts_with("tokenizer.")) out.emplace_back(key, value);
      return out;
    }
    case TokenizerKind::kHuggingFaceJson:
      return from_tokenizer_json(model.tokenizer_path);
    case TokenizerKind::kLlama2c:
      return from_llama2c(model.tokenizer_path,
                          model.tokenizer_vocab_size > 0 ? model.tokenizer_vocab_size
                                                         : (model.config ? model.config->vocab_size : 0));
    case TokenizerKind::kSentencePiece:
      return from_sentencepiece(model.tokenizer_path);
    case TokenizerKind::kNone:
      break;
  }
  throw Error(model.path, "no tokenizer found beside the model to describe in GGUF metadata");
}

std::string tokenizer_json_from_gguf(const GgufFile& file) {
  using nlohmann::ordered_json;
  const std::string& path = file.path();
  const std::string model = detail::gguf_tokenizer_model(file.metadata(), path);
  if (model != "gpt2")
    throw Error(path, "tokenizer.json export is only for byte-level BPE tokenizers (tokenizer.ggml.model \"gpt2\"); "
                      "this file's is \"" + model + "\"");
  const detail::PreTokenizerType* pre = nullptr;
  const detail::ByteLevelBpeData data = detail::read_gguf_byte_level_bpe(file.metadata(), path, &pre);
  for (size_t id = 0; id < data.tokens.size(); ++id) {
    try {
      require_utf8(data.tokens[id], "token " + std::to_string(id));
    } catch (const Error& e) {
      throw e.with_context(path + ": tokenizer.ggml.tokens");
    }
  }
  ordered_json added = ordered_json::array();
  for (const auto& token : data.added)
    added.push_back({{"id", token.id},
                     {"content", token.content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", !token.special},
                     {"special", token.special}});
  // The vocabulary in id order. ordered_json's own insertion searches linearly, so entries
  // are appended to its underlying vector; a repeated text keeps its first place and the
  // later id (as the tokenizers map them).
  ordered_json vocab = ordered_json::object();
  {
    auto& entries = static_cast<std::vector<std::pair<const std::string, ordered_json>>&>(
        vocab.get_ref<ordered_json::object_t&>());
    std::unordered_map<std::string_view, size_t> position;
    entries.reserve(data.tokens.size());
    for (size_t id = 0; id < data.tokens.size(); ++id) {
      const auto [it, fresh] = position.emplace(data.tokens[id], entries.size());
      if (fresh) entries.emplace_back(data.tokens[id], id);
      else entries[it->second].second = id;
    }
  }
  ordered_json merges = ordered_json::array();
  for (const auto& [left, right] : data.merges) merges.push_back(ordered_json::array({left, right}));
  ordered_json post = nullptr;
  if (data.adds_bos) {  // TemplateProcessing: BOS, then the sequence(s)
    const std::string bos = data.tokens[data.bos_id];
    auto special = [&](int type_id) {
      ordered_json inner = ordered_json::object();
      inner["id"] = bos;
      inner["type_id"] = type_id;
      ordered_json step = ordered_json::object();
      step["SpecialToken"] = inner;
      return step;
    };
    auto sequence = [](const char* id, int type_id) {
      ordered_json inner = ordered_json::object();
      inner["id"] = id;
      inner["type_id"] = type_id;
      ordered_json step = ordered_json::object();
      step["Sequence"] = inner;
      return step;
    };
    ordered_json single = ordered_json::array({special(0), sequence("A", 0)});
    ordered_json pair = ordered_json::array({special(0), sequence("A", 0), special(1), sequence("B", 1)});
    ordered_json entry = ordered_json::object();
    entry["id"] = bos;
    entry["ids"] = ordered_json::array({data.bos_id});
    entry["tokens"] = ordered_json::array({bos});
    ordered_json special_tokens = ordered_json::object();
    special_tokens[bos] = entry;
    post = ordered_json::object();
    post["type"] = "TemplateProcessing";
    post["single"] = single;
    post["pair"] = pair;
    post["special_tokens"] = special_tokens;
  }
  const ordered_json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer_json(*pre)},
      {"post_processor", post},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", data.ignore_merges},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return root.dump(2) + "\n";
}

}  // namespace lowbit
