// GGUF tokenizers, their shared cores and tokenizer export, against independent references:
//   - SmolLM2 (smollm2-135m REFERENCE.md): the GGUF's byte-level BPE must give exactly the ids
//     of its tokenizer.json (itself checked against llama.cpp and Hugging Face tokenizers on
//     both data files in tokenizer_test.cc) on whole files and samples, special tokens both ways;
//     the ids with special-token parsing off were taken from llama-tokenize --no-parse-special
//     and tokenizers' encode_special_tokens (they agree);
//   - the SentencePiece-style core against libsentencepiece on the Llama-2 tokenizer.model
//     (pieces, scores and types read through the library's API) and against llama2.c's
//     tokenizer on stories260K;
//   - the byte-level merge loop against the plain quadratic rescan it replaces.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "io/byte_level_bpe.h"
#include "lowbit/core/error.h"
#include "lowbit/io/gguf.h"
#include "lowbit/io/llama2c.h"
#include "lowbit/io/tokenizer.h"
#include "lowbit/io/tokenizer_export.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using detail::AddedToken;
using detail::AddedTokenOrder;
using detail::AddedTokenSplitter;
using testing::contains;
using testing::error_from;
using testing::read_all;
using ids_t = std::vector<int32_t>;

std::string smollm_gguf(const std::string& shared) { return shared + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"; }
std::string smollm_json(const std::string& shared) { return shared + "/models/smollm2-135m/tokenizer.json"; }

// The first `bytes` of a file, cut back to the end of a line.
std::string head_lines(const std::string& path, size_t bytes) {
  std::string text = read_all(path).substr(0, bytes);
  text.resize(text.rfind('\n') + 1);
  return text;
}

const GgufValue* find_key(const GgufMetadata& metadata, const std::string& key) {
  for (const auto& [name, value] : metadata)
    if (name == key) return &value;
  return nullptr;
}

// Equal type and value (array_type only matters for arrays: scalars made by GgufValue's
// factories and scalars read from a file may differ in that unused field).
bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type) return false;
  if (a.type != GgufValueType::kArray) return a.value == b.value;
  if (a.array_type != b.array_type) return false;
  const auto& x = std::get<std::vector<GgufValue>>(a.value);
  const auto& y = std::get<std::vector<GgufValue>>(b.value);
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (!same_value(x[i], y[i])) return false;
  return true;
}

// Strings that exercise the pre-tokenizers and byte handling.
const std::vector<std::string>& tricky_strings() {
  static const std::vector<std::string> strings = {
      "Hello world",
      " leading space",
      "  two leading spaces",
      "trailing spaces   ",
      "a  b   c    d",
      "\n",
      "line one\nline two\n\n\nafter blank lines",
      "crlf\r\nline\r\n",
      "\ttab\tseparated\t",
      "I'm sure they'll say it's 'quoted' DON'T",
      "numbers 1234567890 3.14159 -42 1,000,000",
      "emoji 😀🎉👍🏽 and 🦙",
      "中文字符测试，标点。",
      "日本語のテキストです",
      "한국어 텍스트",
      "naïve café Ωμέγα Привет",
      "zero\u200Bwidth and nbsp\u00A0here",
      "symbols <>{}[]()!?@#$%^&*_+=|\\/~`",
      "<|im_start|",
      "<s> and </s> as text",
      "   ",
      "x",
  };
  return strings;
}

// ---------------------------------------------------------------------------------------
// Added tokens

TEST(AddedTokenSplitter, OrdersResolveOverlapsAsHuggingFaceAndLlamaCpp) {
  const std::vector<AddedToken> tokens = {{10, "AB", true}, {11, "BCD", true}, {12, "<u>", false}};
  auto render = [](const std::vector<detail::TextFragment>& fragments) {
    std::string out;
    for (const auto& f : fragments) out += f.token >= 0 ? "[" + std::to_string(f.token) + "]" : "(" + std::string(f.text) + ")";
    return out;
  };
  const AddedTokenSplitter hf(tokens, AddedTokenOrder::kLeftmostLongest);
  const AddedTokenSplitter cpp(tokens, AddedTokenOrder::kLongestFirst);
  // Leftmost wins for Hugging Face; the longer token wins for llama.cpp.
  EXPECT_EQ(render(hf.split("xABCDy", true)), "(x)[10](CDy)");
  EXPECT_EQ(render(cpp.split("xABCDy", true)), "(xA)[11](y)");
  // Without special parsing the user-defined token is still matched.
  EXPECT_EQ(render(hf.split("AB<u>BCD", false)), "(AB)[12](BCD)");
  EXPECT_EQ(render(cpp.split("AB<u>BCD", false)), "(AB)[12](BCD)");
  EXPECT_EQ(render(hf.split("ABAB", true)), "[10][10]");
  EXPECT_EQ(render(cpp.split("ABAB", true)), "[10][10]");
  EXPECT_TRUE(hf.split("", true).empty());
}

// ---------------------------------------------------------------------------------------
// Byte-level BPE core on hand-made data

detail::ByteLevelBpeData toy_bpe() {
  detail::ByteLevelBpeData data;
  data.where = "toy";
  data.kind = "toy";
  for (int b = 0; b < 256; ++b) data.tokens.push_back(detail::gpt2_byte_to_unicode(static_cast<uint8_t>(b)));
  for (const char* token : {"ab", "bc", "abc", "cc", "ccc", "<eos>"}) data.tokens.push_back(token);
  // ids: ab 256, bc 257, abc 258, cc 259, ccc 260, <eos> 261
  data.merges = {{"b", "c"}, {"a", "b"}, {"a", "bc"}, {"c", "c"}, {"cc", "c"}};
  data.added = {{261, "<eos>", true}};
  data.pre_regexes = {detail::kGpt2Regex};
  data.eos_id = 261;
  return data;
}

TEST(ByteLevelBpe, MergesByRankThenLeftmost) {
  const auto tokenizer = detail::make_byte_level_bpe_tokenizer(toy_bpe());
  // "abc": b c (rank 0) first, then a bc (rank 2) -> abc.
  EXPECT_EQ(tokenizer->encode("abc", false), (ids_t{258}));
  // "ab": only a b.
  EXPECT_EQ(tokenizer->encode("ab", false), (ids_t{256}));
  // "cccc": c c at positions 0,1,2 all rank 3; leftmost first -> cc, cc; then cc c has no partner.
  EXPECT_EQ(tokenizer->encode("cccc", false), (ids_t{259, 259}));
  // "ccc": cc then cc c -> ccc.
  EXPECT_EQ(tokenizer->encode("ccc", false), (ids_t{260}));
  // Special token in the text, and not.
  EXPECT_EQ(tokenizer->encode("ab<eos>", false), (ids_t{256, 261}));
  EXPECT_EQ(tokenizer->encode("ab<eos>", false, false), (ids_t{256, '<', 'e', 'o', 's', '>'}));
  // A space is byte 0x20, mapped to U+0120 and its own symbol.
  EXPECT_EQ(tokenizer->encode("ab ab", false), (ids_t{256, 0x20, 256}));
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("ab ab\xC3\xA9", false)), "ab ab\xC3\xA9");
}

TEST(ByteLevelBpe, RefusesMergesOutsideTheVocabularyAndBadRegexes) {
  auto data = toy_bpe();
  data.merges.push_back({"x", "yz"});
  EXPECT_TRUE(contains(error_from([&] { detail::make_byte_level_bpe_tokenizer(data); }), "toy: merge 5 \"x yz\""));
  data = toy_bpe();
  data.pre_regexes = {"(unclosed"};
  EXPECT_TRUE(contains(error_from([&] { detail::make_byte_level_bpe_tokenizer(data); }), "does not compile"));
}

// The merge loop it replaces: rescan for the lowest-ranked pair (leftmost on ties) after every merge.
struct NaiveBpe {
  explicit NaiveBpe(const detail::ByteLevelBpeData& data) {
    for (size_t r = 0; r < data.merges.size(); ++r) ranks.emplace(data.merges[r].first + ' ' + data.merges[r].second, r);
    for (size_t id = 0; id < data.tokens.size(); ++id) ids[data.tokens[id]] = static_cast<int32_t>(id);
  }
  ids_t encode(const std::string& text) const {
    std::vector<std::string> symbols;
    for (unsigned char byte : text) symbols.push_back(detail::gpt2_byte_to_unicode(byte));
    while (symbols.size() > 1) {
      size_t best = SIZE_MAX, at = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        const auto found = ranks.find(symbols[i] + ' ' + symbols[i + 1]);
        if (found != ranks.end() && found->second < best) best = found->second, at = i;
      }
      if (best == SIZE_MAX) break;
      symbols[at] += symbols[at + 1];
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    ids_t out;
    for (const auto& symbol : symbols) out.push_back(ids.at(symbol));
    return out;
  }
  std::unordered_map<std::string, size_t> ranks;
  std::unordered_map<std::string, int32_t> ids;
};

TEST(ByteLevelBpe, HeapMergeEqualsQuadraticRescanOnLongPieces) {
  LOWBIT_REQUIRE_SHARED(shared);
  // SmolLM2's vocabulary with no pre-tokenizer and no added tokens: the whole text is one piece,
  // so the merge order over hundreds of symbols is what is compared.
  auto data = detail::read_hf_tokenizer_json(smollm_json(shared));
  data.pre_regexes.clear();
  data.added.clear();
  const NaiveBpe reference(data);
  const auto tokenizer = detail::make_byte_level_bpe_tokenizer(std::move(data));
  const std::string text = read_all(shared + "/data/wikitext-2-raw/wiki.test.raw");
  std::vector<std::string> samples = {"aaaaaaaaaaaaaaaaaaaaaaaaaaa", "                                ", "\n\n\n\n\n\n",
                                      "ababababababab", "1111111111111111111"};
  for (size_t k = 0; k < 40; ++k) samples.push_back(text.substr((k * 104729) % (text.size() - 500), 20 + (k * 53) % 400));
  for (std::string sample : samples) {
    while (!sample.empty() && (static_cast<unsigned char>(sample.back()) & 0x80)) sample.pop_back();
    while (!sample.empty() && (static_cast<unsigned char>(sample.front()) & 0xC0) == 0x80) sample.erase(0, 1);
    EXPECT_EQ(tokenizer->encode(sample, false), reference.encode(sample)) << sample;
  }
}

// ---------------------------------------------------------------------------------------
// SmolLM2: GGUF tokenizer against its tokenizer.json

class GgufTokenizerSmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shared = testing::shared_dir();
    if (!shared) GTEST_SKIP() << "shared/ not found";
    shared_ = *shared;
    file_ = std::make_unique<GgufFile>(GgufFile::open(smollm_gguf(shared_)));
    gguf_ = load_gguf_tokenizer(*file_);
    json_ = load_hf_bpe_tokenizer(smollm_json(shared_));
  }
  std::string shared_;
  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> gguf_, json_;
};

TEST_F(GgufTokenizerSmolLM2, ReferenceIdsAndConventions) {
  EXPECT_EQ(gguf_->kind(), "gguf (gpt2, smollm)");
  EXPECT_EQ(gguf_->vocab_size(), 49152);
  EXPECT_FALSE(gguf_->adds_bos());
  EXPECT_EQ(gguf_->bos_id(), 1);
  EXPECT_EQ(gguf_->eos_id(), 2);
  EXPECT_EQ(gguf_->encode("Hello world", false), (ids_t{19556, 905}));
  EXPECT_EQ(gguf_->encode("The year 2024 was 12345 big!", false),
            (ids_t{504, 713, 216, 34, 32, 34, 36, 436, 216, 33, 34, 35, 36, 37, 2066, 17}));
  EXPECT_EQ(gguf_->encode("Hello world", true), (ids_t{1, 19556, 905}));
}

TEST_F(GgufTokenizerSmolLM2, SpecialTokensParsedByDefaultAndPlainTextOnRequest) {
  const std::string chat = "<|im_start|>user\nhi<|im_end|>";
  const ids_t parsed = {1, 4093, 198, 6004, 2};
  // llama-tokenize --no-parse-special and tokenizers' encode_special_tokens = True.
  const ids_t plain = {44, 108, 306, 79, 3738, 108, 46, 4093, 198, 6004, 44, 108, 306, 79, 486, 108, 46};
  for (const Tokenizer* tokenizer : {gguf_.get(), json_.get()}) {
    SCOPED_TRACE(std::string(tokenizer->kind()));
    EXPECT_EQ(tokenizer->encode(chat, false), parsed);
    EXPECT_EQ(tokenizer->encode(chat, false, true), parsed);
    EXPECT_EQ(tokenizer->encode(chat, false, false), plain);
    EXPECT_EQ(tokenizer->decode(parsed), chat);
    EXPECT_EQ(tokenizer->decode(plain), chat);
    EXPECT_EQ(tokenizer->encode("<|im_end|><|im_end|>", false), (ids_t{2, 2}));
  }
}

TEST_F(GgufTokenizerSmolLM2, WholeFilesIdenticalToTokenizerJson) {
  struct Case {
    std::string path;
    size_t count;
    ids_t start;
  };
  const std::vector<Case> cases = {
      {shared_ + "/data/wikitext-2-raw/wiki.test.raw", 304830, {446, 6356, 389, 9226, 352, 446, 216, 2738}},
      {shared_ + "/data/tinystories/tinystories_val.txt", 193745, {8103, 320, 30, 23204, 3680, 260}},
  };
  for (const auto& c : cases) {
    const std::string text = read_all(c.path);
    const auto t0 = std::chrono::steady_clock::now();
    const ids_t ids = gguf_->encode(text, false);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[gguf tokenizer] %s: %zu bytes -> %zu tokens in %.3f s (%.1f MB/s, cold cache)\n", c.path.c_str(),
                text.size(), ids.size(), seconds, text.size() / seconds / 1e6);
    EXPECT_EQ(ids.size(), c.count) << c.path;
    ASSERT_GE(ids.size(), c.start.size());
    EXPECT_EQ(ids_t(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(c.start.size())), c.start) << c.path;
    EXPECT_TRUE(ids == json_->encode(text, false)) << c.path;
    EXPECT_TRUE(gguf_->decode(ids) == text) << c.path;
  }
}

TEST_F(GgufTokenizerSmolLM2, TrickyStringsIdenticalToTokenizerJson) {
  for (const std::string& text : tricky_strings()) {
    const ids_t ids = gguf_->encode(text, false);
    EXPECT_EQ(ids, json_->encode(text, false)) << text;
    EXPECT_EQ(gguf_->encode(text, false, false), json_->encode(text, false, false)) << text;
    EXPECT_EQ(gguf_->decode(ids), text);
  }
  // A few exact ids (from Hugging Face tokenizers 0.23.3 and llama-tokenize, which agree).
  EXPECT_EQ(gguf_->encode("  two leading spaces", false), (ids_t{216, 827, 2899, 5600}));
  EXPECT_EQ(gguf_->encode("a  b   c    d", false), (ids_t{81, 216, 278, 256, 265, 333, 287}));
  EXPECT_EQ(gguf_->encode("crlf\r\nline\r\n", false), (ids_t{11170, 46610, 201, 198, 1311, 2738}));
}

TEST_F(GgufTokenizerSmolLM2, MetadataFromTokenizerJsonEqualsTheGgufs) {
  ModelFiles model;
  model.path = shared_ + "/models/smollm2-135m";
  model.tokenizer = TokenizerKind::kHuggingFaceJson;
  model.tokenizer_path = smollm_json(shared_);
  const GgufMetadata exported = tokenizer_gguf_metadata(model);
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                          "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix"}) {
    const GgufValue* ours = find_key(exported, key);
    ASSERT_NE(ours, nullptr) << key;
    EXPECT_TRUE(same_value(*ours, file_->at(key))) << key << ": " << ours->to_display() << " vs " << file_->at(key).to_display();
  }
  // A GGUF model's own keys are copied as they are.
  ModelFiles gguf_model;
  gguf_model.path = smollm_gguf(shared_);
  gguf_model.tokenizer = TokenizerKind::kGguf;
  gguf_model.gguf = std::make_shared<GgufFile>(GgufFile::open(smollm_gguf(shared_)));
  const GgufMetadata copied = tokenizer_gguf_metadata(gguf_model);
  size_t expected = 0;
  for (const auto& [key, value] : file_->metadata()) {
    if (!key.starts_with("tokenizer.")) continue;
    ASSERT_LT(expected, copied.size());
    EXPECT_EQ(copied[expected].first, key);
    EXPECT_TRUE(same_value(copied[expected].second, value)) << key;
    ++expected;
  }
  EXPECT_EQ(copied.size(), expected);
  EXPECT_NE(find_key(copied, "tokenizer.chat_template"), nullptr);
}

TEST_F(GgufTokenizerSmolLM2, TokenizerJsonFromGgufRoundTrips) {
  const std::string path = testing::temp_dir() + "/tokenizer.json";
  testing::write_raw(path, tokenizer_json_from_gguf(*file_));
  // Same vocabulary, merges and added tokens as the tokenizer.json the GGUF was made from.
  const auto ours = nlohmann::json::parse(read_all(path));
  const auto original = nlohmann::json::parse(read_all(smollm_json(shared_)));
  EXPECT_TRUE(ours["model"]["vocab"] == original["model"]["vocab"]);
  EXPECT_TRUE(ours["model"]["merges"] == original["model"]["merges"]);
  EXPECT_TRUE(ours["pre_tokenizer"] == original["pre_tokenizer"]) << ours["pre_tokenizer"].dump();
  ASSERT_EQ(ours["added_tokens"].size(), original["added_tokens"].size());
  for (size_t i = 0; i < ours["added_tokens"].size(); ++i) {
    EXPECT_EQ(ours["added_tokens"][i]["id"], original["added_tokens"][i]["id"]);
    EXPECT_EQ(ours["added_tokens"][i]["content"], original["added_tokens"][i]["content"]);
    EXPECT_EQ(ours["added_tokens"][i]["special"], original["added_tokens"][i]["special"]);
  }
  // And it tokenizes both data files exactly as the GGUF does.
  const auto reloaded = load_hf_bpe_tokenizer(path);
  EXPECT_EQ(reloaded->vocab_size(), 49152);
  EXPECT_FALSE(reloaded->adds_bos());
  for (const char* file : {"/data/wikitext-2-raw/wiki.test.raw", "/data/tinystories/tinystories_val.txt"}) {
    const std::string text = read_all(shared_ + file);
    EXPECT_TRUE(reloaded->encode(text, false) == gguf_->encode(text, false)) << file;
  }
  EXPECT_EQ(reloaded->encode("<|im_start|>user\nhi<|im_end|>", false), (ids_t{1, 4093, 198, 6004, 2}));
}

// ---------------------------------------------------------------------------------------
// GGUF metadata errors and the other pre-tokenizers, on hand-made metadata

GgufMetadata toy_gpt2_metadata(const std::string& pre) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(detail::gpt2_byte_to_unicode(static_cast<uint8_t>(b)));
  tokens.push_back("<|begin|>");
  tokens.push_back("12");
  tokens.push_back("123");
  std::vector<int32_t> types(tokens.size(), detail::kTokenNormal);
  types[256] = detail::kTokenControl;
  GgufMetadata metadata = {{"tokenizer.ggml.model", GgufValue::string("gpt2")},
                           {"tokenizer.ggml.tokens", GgufValue::strings(tokens)},
                           {"tokenizer.ggml.token_type", GgufValue::int32s(types)},
                           {"tokenizer.ggml.merges", GgufValue::strings({"1 2", "12 3"})},
                           {"tokenizer.ggml.bos_token_id", GgufValue::u32(256)}};
  if (!pre.empty()) metadata.emplace_back("tokenizer.ggml.pre", GgufValue::string(pre));
  return metadata;
}

TEST(GgufTokenizer, PreTokenizersSplitDigitsAsLlamaCppDoes) {
  // smollm: every digit alone; qwen2: every digit alone; llama-bpe: up to three digits
  // (and BOS by default); gpt-2: all digits together.
  const std::string text = "1234";
  EXPECT_EQ(detail::load_gguf_tokenizer(toy_gpt2_metadata("smollm"), "toy")->encode(text, false), (ids_t{'1', '2', '3', '4'}));
  EXPECT_EQ(detail::load_gguf_tokenizer(toy_gpt2_metadata("qwen2"), "toy")->encode(text, false), (ids_t{'1', '2', '3', '4'}));
  const auto llama3 = detail::load_gguf_tokenizer(toy_gpt2_metadata("llama-bpe"), "toy");
  EXPECT_TRUE(llama3->adds_bos());
  EXPECT_EQ(llama3->encode(text, llama3->adds_bos()), (ids_t{256, 258, '4'}));
  EXPECT_EQ(detail::load_gguf_tokenizer(toy_gpt2_metadata("gpt-2"), "toy")->encode(text, false), (ids_t{258, '4'}));
  // "default" (also when the key is absent): \p{N}+ then groups of three digits.
  EXPECT_EQ(detail::load_gguf_tokenizer(toy_gpt2_metadata(""), "toy")->encode(text, false), (ids_t{258, '4'}));
  // The control token is matched in text only with special parsing.
  const auto smollm = detail::load_gguf_tokenizer(toy_gpt2_metadata("smollm"), "toy");
  EXPECT_EQ(smollm->encode("<|begin|>1", false), (ids_t{256, '1'}));
  EXPECT_EQ(smollm->encode("<|begin|>", false, false), (ids_t{'<', '|', 'b', 'e', 'g', 'i', 'n', '|', '>'}));
}

TEST(GgufTokenizer, ClearErrorsNamingTheFileAndValue) {
  auto with = [](GgufMetadata metadata, const std::string& key, GgufValue value) {
    for (auto& [name, v] : metadata)
      if (name == key) v = value;
    return metadata;
  };
  auto message = [](const GgufMetadata& metadata) {
    return error_from([&] { detail::load_gguf_tokenizer(metadata, "model.gguf"); });
  };
  const GgufMetadata good = toy_gpt2_metadata("smollm");
  EXPECT_EQ(message(with(good, "tokenizer.ggml.model", GgufValue::string("bert"))),
            "model.gguf: tokenizer.ggml.model \"bert\" is not supported (expected \"gpt2\" or \"llama\")");
  EXPECT_TRUE(contains(message(with(good, "tokenizer.ggml.pre", GgufValue::string("tekken"))),
                       "model.gguf: tokenizer.ggml.pre \"tekken\" is not a supported pre-tokenizer (supported: smollm"));
  EXPECT_EQ(message(with(good, "tokenizer.ggml.bos_token_id", GgufValue::u32(9999))),
            "model.gguf: tokenizer.ggml.bos_token_id = 9999 is outside the vocabulary of 259 tokens");
  EXPECT_TRUE(contains(message(with(good, "tokenizer.ggml.merges", GgufValue::strings({"nospace"}))),
                       "tokenizer.ggml.merges[0] \"nospace\" is not two tokens"));
  EXPECT_TRUE(contains(message(with(good, "tokenizer.ggml.token_type", GgufValue::int32s({1, 1}))),
                       "tokenizer.ggml.token_type has 2 entries for 259 tokens"));
  EXPECT_TRUE(contains(message(with(good, "tokenizer.ggml.model", GgufValue::u32(3))), "model.gguf: tokenizer.ggml.model"));
  GgufMetadata no_merges = good;
  std::erase_if(no_merges, [](const auto& entry) { return entry.first == "tokenizer.ggml.merges"; });
  EXPECT_TRUE(contains(message(no_merges), "model.gguf: tokenizer.ggml.merges is missing"));
  EXPECT_TRUE(contains(message({}), "model.gguf: metadata key 'tokenizer.ggml.model' is missing"));
}

// ---------------------------------------------------------------------------------------
// SentencePiece-style core

TEST(SpmTokenizer, MergesByScoreWithByteFallbackAndSpacePrefix) {
  detail::SpmData data;
  data.where = "toy";
  data.tokens = {"<unk>", "<s>", "</s>"};
  data.types = {detail::kTokenUnknown, detail::kTokenControl, detail::kTokenControl};
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    data.tokens.push_back(hex);
    data.types.push_back(detail::kTokenByte);
  }
  // ids 259.. : ▁ a b ▁a ab ▁ab <sep>
  for (const char* t : {"\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab", "\xE2\x96\x81" "ab", "<sep>"}) {
    data.tokens.push_back(t);
    data.types.push_back(detail::kTokenNormal);
  }
  data.types.back() = detail::kTokenUserDefined;
  data.scores.assign(data.tokens.size(), 0.0f);
  data.scores[262] = -3.0f;  // ▁a
  data.scores[263] = -1.0f;  // ab (better than ▁a)
  data.scores[264] = -2.0f;  // ▁ab
  const auto tokenizer = detail::make_spm_tokenizer(data);
  // " ab" -> ▁ a b: ab (-1) beats ▁a (-3), then ▁ ab -> ▁ab.
  EXPECT_EQ(tokenizer->encode("ab", true), (ids_t{1, 264}));
  EXPECT_EQ(tokenizer->encode("ba", false), (ids_t{259, 261, 260}));
  // é is not in the vocabulary: its two bytes.
  EXPECT_EQ(tokenizer->encode("\xC3\xA9", false), (ids_t{259, 3 + 0xC3, 3 + 0xA9}));
  // Special and user-defined tokens; the space prefix comes back after each of them.
  EXPECT_EQ(tokenizer->encode("a</s>b<sep>a", false), (ids_t{262, 2, 259, 261, 265, 262}));
  EXPECT_EQ(tokenizer->encode("a</s>b", false, false), (ids_t{262, 3 + '<', 3 + '/', 3 + 's', 3 + '>', 261}));
  for (const std::string text : {"ab ab", "  a", "\xC3\xA9 ba", "a<sep>b"})
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, true)), text) << text;
  data.add_space_prefix = false;
  EXPECT_EQ(detail::make_spm_tokenizer(data)->encode("ab", false), (ids_t{263}));
}

// The Llama-2 SentencePiece model as a GGUF-style tokenizer, built from what libsentencepiece's
// API reports (no lowbit export code involved).
detail::SpmData llama2_spm_data(const sentencepiece::SentencePieceProcessor& sp) {
  detail::SpmData data;
  data.where = "llama2";
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    data.tokens.push_back(sp.IdToPiece(id));
    data.scores.push_back(sp.GetScore(id));
    data.types.push_back(sp.IsUnknown(id) ? detail::kTokenUnknown
                         : sp.IsControl(id) ? detail::kTokenControl
                         : sp.IsByte(id)    ? detail::kTokenByte
                         : sp.IsUnused(id)  ? detail::kTokenUnused
                                            : detail::kTokenNormal);
  }
  data.bos_id = sp.bos_id(), data.eos_id = sp.eos_id(), data.unk_id = sp.unk_id();
  return data;
}

class SpmAgainstSentencePiece : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shared = testing::shared_dir();
    if (!shared) GTEST_SKIP() << "shared/ not found";
    shared_ = *shared;
    model_path_ = shared_ + "/tokenizers/llama2/tokenizer.model";
    ASSERT_TRUE(sp_.Load(model_path_).ok());
    spm_ = detail::make_spm_tokenizer(llama2_spm_data(sp_));
    reference_ = load_sentencepiece_tokenizer(model_path_);
  }
  std::string shared_, model_path_;
  sentencepiece::SentencePieceProcessor sp_;
  std::unique_ptr<Tokenizer> spm_, reference_;
};

TEST_F(SpmAgainstSentencePiece, SameIdsOnTinyStoriesAndTrickyStrings) {
  EXPECT_EQ(spm_->encode("Hello world", true), (ids_t{1, 15043, 3186}));
  const std::string text = head_lines(shared_ + "/data/tinystories/tinystories_val.txt", 200000);
  const ids_t ids = spm_->encode(text, true);
  EXPECT_TRUE(ids == reference_->encode(text, true)) << "whole 200 KB text";
  EXPECT_EQ(spm_->decode(ids), text);
  // Line by line too (every line starts a text, so each gets the space prefix).
  size_t lines = 0, start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1, ++lines)
    ASSERT_EQ(spm_->encode(text.substr(start, end - start), true), reference_->encode(text.substr(start, end - start), true))
        << "line " << lines;
  EXPECT_GT(lines, 1000u);
  for (const std::string& s : tricky_strings()) {
    // sentencepiece treats "<s>" in text as text: compare without special parsing.
    EXPECT_EQ(spm_->encode(s, true, false), reference_->encode(s, true)) << s;
    EXPECT_EQ(spm_->decode(spm_->encode(s, true, false)), s) << s;
  }
  // With special parsing (the default) "<s>" in the text is BOS, as in llama.cpp.
  EXPECT_EQ(spm_->encode("<s>", false), (ids_t{1}));
}

TEST_F(SpmAgainstSentencePiece, ExportedMetadataIsWhatTheLibraryReports) {
  ModelFiles model;
  model.path = model_path_;
  model.tokenizer = TokenizerKind::kSentencePiece;
  model.tokenizer_path = model_path_;
  const GgufMetadata metadata = tokenizer_gguf_metadata(model);
  const detail::SpmData expected = llama2_spm_data(sp_);
  const detail::SpmData read = detail::read_gguf_spm(metadata, "exported");
  EXPECT_EQ(read.tokens, expected.tokens);
  EXPECT_EQ(read.scores, expected.scores);
  EXPECT_EQ(read.types, expected.types);
  EXPECT_EQ(read.bos_id, 1);
  EXPECT_EQ(read.eos_id, 2);
  EXPECT_EQ(read.unk_id, 0);
  EXPECT_TRUE(read.adds_bos);
  EXPECT_TRUE(read.add_space_prefix);
}

// stories260K's tok512.bin exported as a "llama" GGUF tokenizer tokenizes as llama2.c does,
// and matches the tokenizer stored in the model's own GGUF (v1) file.
TEST(SpmTokenizer, Llama2cVocabularyExportedAsGgufMatchesLlama2c) {
  LOWBIT_REQUIRE_SHARED(shared);
  ModelFiles model;
  model.path = shared + "/models/stories260K/llama2c";
  model.tokenizer = TokenizerKind::kLlama2c;
  model.tokenizer_path = shared + "/models/stories260K/llama2c/tok512.bin";
  model.tokenizer_vocab_size = 512;
  const GgufMetadata metadata = tokenizer_gguf_metadata(model);
  const auto spm = detail::load_gguf_tokenizer(metadata, "exported");
  const auto llama2c = load_llama2c_bpe_tokenizer(model.tokenizer_path, 512);
  const std::string text = head_lines(shared + "/data/tinystories/tinystories_val.txt", 200000);
  EXPECT_TRUE(spm->encode(text, true) == llama2c->encode(text, true));
  EXPECT_EQ(spm->encode("\xE4\xB8\xAD", false), llama2c->encode("\xE4\xB8\xAD", false));  // byte fallback
  EXPECT_EQ(spm->decode(spm->encode(text, true)), text);
  const GgufFile stories = GgufFile::open(shared + "/models/stories260K/gguf-v1/tinyllamas-stories-260k-f32.gguf");
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                          "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
    const GgufValue* ours = find_key(metadata, key);
    ASSERT_NE(ours, nullptr) << key;
    EXPECT_TRUE(same_value(*ours, stories.at(key))) << key << ": " << ours->to_display() << " vs " << stories.at(key).to_display();
  }
  const auto from_file = load_gguf_tokenizer(stories);
  EXPECT_TRUE(from_file->encode(text, true) == llama2c->encode(text, true));
}

// A minimal byte-level tokenizer.json with the given pre_tokenizer.
std::string toy_tokenizer_json(const nlohmann::json& pre_tokenizer) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[detail::gpt2_byte_to_unicode(static_cast<uint8_t>(b))] = b;
  vocab["ab"] = 256;
  const nlohmann::json root = {
      {"added_tokens", {{{"id", 257}, {"content", "<|begin_of_text|>"}, {"special", true}}}},
      {"pre_tokenizer", pre_tokenizer},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b"}}}},
  };
  const std::string path = testing::temp_dir() + "/tokenizer.json";
  testing::write_raw(path, root.dump());
  return path;
}

TEST(TokenizerExport, TokenizerJsonPreTokenizerNamedOrRefused) {
  auto pre_of = [](const nlohmann::json& pre) {
    ModelFiles model;
    model.tokenizer = TokenizerKind::kHuggingFaceJson;
    model.tokenizer_path = toy_tokenizer_json(pre);
    const GgufMetadata metadata = tokenizer_gguf_metadata(model);
    return find_key(metadata, "tokenizer.ggml.pre")->as_string("pre");
  };
  const nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  const nlohmann::json byte_level_no_regex = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  auto sequence = [](std::vector<nlohmann::json> steps) { return nlohmann::json{{"type", "Sequence"}, {"pretokenizers", steps}}; };
  auto split = [](const std::string& regex) {
    return nlohmann::json{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
  };
  EXPECT_EQ(pre_of(byte_level), "gpt-2");
  EXPECT_EQ(pre_of(sequence({{{"type", "Digits"}, {"individual_digits", true}}, byte_level})), "smollm");
  // Llama 3's and Qwen2's tokenizer.json regexes (as their files write them).
  EXPECT_EQ(pre_of(sequence({split(R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
                             byte_level_no_regex})),
            "llama-bpe");
  EXPECT_EQ(pre_of(sequence({split(R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"),
                             byte_level_no_regex})),
            "qwen2");
  const std::string refused = error_from([&] { pre_of(sequence({{{"type", "Digits"}, {"individual_digits", false}}, byte_level})); });
  EXPECT_TRUE(contains(refused, "tokenizer.json: pre_tokenizer {")) << refused;
  EXPECT_TRUE(contains(refused, "\"individual_digits\":false")) << refused;
  EXPECT_TRUE(contains(refused, "is not one llama.cpp names")) << refused;
  EXPECT_TRUE(contains(error_from([&] { pre_of({{"type", "ByteLevel"}, {"add_prefix_space", true}}); }), "is not one llama.cpp names"));
  EXPECT_TRUE(contains(error_from([&] { pre_of(split(" ")); }), "has no ByteLevel step"));
  ModelFiles none;
  none.path = "somewhere";
  EXPECT_EQ(error_from([&] { tokenizer_gguf_metadata(none); }),
            "somewhere: no tokenizer found beside the model to describe in GGUF metadata");
}

TEST(TokenizerExport, LlamaGgufHasNoTokenizerJson) {
  LOWBIT_REQUIRE_SHARED(shared);
  const GgufFile stories = GgufFile::open(shared + "/models/stories260K/gguf-v1/tinyllamas-stories-260k-f32.gguf");
  EXPECT_TRUE(contains(error_from([&] { tokenizer_json_from_gguf(stories); }),
                       "tokenizer.json export is only for byte-level BPE tokenizers"));
}

// ---------------------------------------------------------------------------------------
// lowbit tokenize

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TEST(CliTokenize, Stories260KFolder) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string model = quote(shared + "/models/stories260K/hf");
  // llama2.c's convention adds BOS (1); ids checked against the library's encoder.
  const auto tokenizer = load_llama2c_bpe_tokenizer(shared + "/models/stories260K/hf/tok512.bin", 512);
  const ids_t expected = tokenizer->encode("Once upon a time", true);
  std::string line;
  for (int32_t id : expected) line += (line.empty() ? "" : " ") + std::to_string(id);
  auto result = testing::run_cli("tokenize -m " + model + " --prompt 'Once upon a time'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, line + "\n");
  EXPECT_EQ(expected.front(), 1);
  EXPECT_TRUE(contains(result.err, std::to_string(expected.size()) + " tokens")) << result.err;
  result = testing::run_cli("tokenize -m " + model + " --no-bos --prompt 'Once upon a time'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, line.substr(2) + "\n");
  // --json pieces decode each token in context.
  const std::string text_file = testing::temp_dir() + "/text.txt";
  testing::write_raw(text_file, "Once upon a time");
  result = testing::run_cli("tokenize --json -m " + model + " --text " + quote(text_file));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["ids"].get<ids_t>(), expected);
  std::string joined;
  for (const auto& piece : json["pieces"]) joined += piece.get<std::string>();
  EXPECT_EQ(joined, "Once upon a time");
  EXPECT_EQ(json["pieces"][0], "");
}

TEST(CliTokenize, SmolLM2GgufJsonWithAndWithoutSpecialTokens) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string model = quote(smollm_gguf(shared));
  const std::string chat = testing::temp_dir() + "/chat.txt";
  testing::write_raw(chat, "<|im_start|>user\nhi<|im_end|>");
  auto result = testing::run_cli("tokenize -m " + model + " --json --text " + quote(chat));
  if (result.exit_code != 0 && contains(result.err, "not")) GTEST_SKIP() << "GGUF models not opened yet: " << result.err;
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["ids"].get<ids_t>(), (ids_t{1, 4093, 198, 6004, 2}));
  EXPECT_EQ(json["pieces"].get<std::vector<std::string>>(),
            (std::vector<std::string>{"<|im_start|>", "user", "\n", "hi", "<|im_end|>"}));
  result = testing::run_cli("tokenize -m " + model + " --no-special --text " + quote(chat));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "44 108 306 79 3738 108 46 4093 198 6004 44 108 306 79 486 108 46\n");
  result = testing::run_cli("tokenize -m " + model + " --bos --prompt 'Hello world'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "1 19556 905\n");
}

TEST(CliTokenize, BadInputIsOneLineAndExitCode2) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string model = quote(shared + "/models/stories260K/hf");
  auto expect_error = [](const testing::CommandResult& result, const std::string& fragment) {
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_TRUE(result.out.empty()) << result.out;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_TRUE(contains(result.err, fragment)) << result.err << " lacks " << fragment;
  };
  const std::string dir = testing::temp_dir();
  testing::write_raw(dir + "/bad.txt", "ok \xFF then bad");
  expect_error(testing::run_cli("tokenize -m " + model + " --text " + quote(dir + "/bad.txt")),
               dir + "/bad.txt: text is not valid UTF-8 (byte 3)");
  expect_error(testing::run_cli("tokenize -m " + model + " --text " + quote(dir + "/missing.txt")), dir + "/missing.txt");
  expect_error(testing::run_cli("tokenize -m " + model), "--text FILE or --prompt TEXT");
  expect_error(testing::run_cli("tokenize -m " + model + " --prompt a --text b"), "excludes");
  expect_error(testing::run_cli("tokenize -m " + model + " --prompt a --bos --no-bos"), "excludes");
}

}  // namespace
}  // namespace lowbit
