// Tokenizers against independent references: llama2.c's encode (stories260K REFERENCE.md),
// the Llama-2 SentencePiece model, and Hugging Face tokenizers / llama.cpp ids for SmolLM2
// (smollm2-135m REFERENCE.md).
#include "lowbit/io/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "lowbit/core/error.h"
#include "lowbit/io/llama2c.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::read_all;

TEST(TokenizerLlama2c, ReferencePrefixOfTinyStories) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto tokenizer = load_llama2c_bpe_tokenizer(shared + "/models/stories260K/llama2c/tok512.bin", 512);
  const std::string text = read_all(shared + "/data/tinystories/tinystories_val.txt").substr(0, 4000);
  const auto ids = tokenizer->encode(text, true);
  const std::vector<int32_t> expected = {1, 301, 427, 309, 426, 301, 427, 309, 394, 265,
                                         262, 415, 271, 422, 280, 295, 269, 336, 432, 313};
  ASSERT_GE(ids.size(), expected.size());
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 20), expected);
  // Decoding drops the dummy-prefix space after BOS and gives the text back.
  EXPECT_EQ(tokenizer->decode(ids), text);
}

TEST(TokenizerLlama2c, ByteFallbackAndInvalidUtf8) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto tokenizer = load_llama2c_bpe_tokenizer(shared + "/models/stories260K/llama2c/tok512.bin", 512);
  // U+4E2D is not in the 512-token vocabulary: one token per UTF-8 byte, id = byte + 3.
  const auto ids = tokenizer->encode("\xE4\xB8\xAD", false);
  ASSERT_EQ(ids.size(), 4u);  // dummy prefix " " then three bytes
  EXPECT_EQ(ids[1], 0xE4 + 3);
  EXPECT_EQ(ids[2], 0xB8 + 3);
  EXPECT_EQ(ids[3], 0xAD + 3);
  EXPECT_EQ(tokenizer->decode(ids), " \xE4\xB8\xAD");
  EXPECT_THROW(tokenizer->encode("bad \xFF byte", false), Error);
}

// llama2.c's own quadratic merge loop, written plainly, as the oracle for the heap version.
std::vector<int32_t> naive_llama2c_encode(const Llama2cVocabulary& v, const std::string& text) {
  std::map<std::string, int32_t> ids;
  for (size_t i = 0; i < v.pieces.size(); ++i) ids.emplace(v.pieces[i], static_cast<int32_t>(i));
  std::vector<int32_t> t = {1};
  if (!text.empty()) t.push_back(ids.at(" "));
  for (size_t i = 0; i < text.size();) {
    size_t n = 1;
    while (i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80 && n < 4) ++n;
    const auto f = ids.find(text.substr(i, n));
    if (f != ids.end()) t.push_back(f->second);
    else for (size_t k = 0; k < n; ++k) t.push_back(static_cast<unsigned char>(text[i + k]) + 3);
    i += n;
  }
  while (true) {
    float best = -1e10f;
    int32_t best_id = -1;
    size_t at = 0;
    for (size_t i = 1; i + 1 < t.size(); ++i) {  // index 0 is BOS, never merged
      const auto f = ids.find(v.pieces[t[i]] + v.pieces[t[i + 1]]);
      if (f != ids.end() && v.scores[f->second] > best) best = v.scores[f->second], best_id = f->second, at = i;
    }
    if (best_id < 0) break;
    t[at] = best_id;
    t.erase(t.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  return t;
}

TEST(TokenizerLlama2c, HeapMergeEqualsLlama2cScanOnManyTexts) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string path = shared + "/models/stories260K/llama2c/tok512.bin";
  const auto tokenizer = load_llama2c_bpe_tokenizer(path, 512);
  const auto vocabulary = load_llama2c_tokenizer(path, 512);
  const std::string text = read_all(shared + "/data/tinystories/tinystories_val.txt");
  // 60 slices at varied offsets and lengths, plus repetitive strings that create score ties.
  std::vector<std::string> samples = {"aaaaaaaaaaaaaaaa", "the the the the", "   ", "\n\n\n", "a"};
  for (size_t k = 0; k < 60; ++k) samples.push_back(text.substr((k * 7919) % (text.size() - 700), 50 + (k * 37) % 600));
  for (const auto& sample : samples) {
    std::string valid = sample;  // slices may cut a UTF-8 sequence: trim to whole characters
    while (!valid.empty() && (static_cast<unsigned char>(valid.back()) & 0x80)) valid.pop_back();
    EXPECT_EQ(tokenizer->encode(valid, true), naive_llama2c_encode(vocabulary, valid)) << valid;
  }
}

TEST(TokenizerSentencePiece, HelloWorldAndRoundTripOnWikiText) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto tokenizer = load_sentencepiece_tokenizer(shared + "/tokenizers/llama2/tokenizer.model");
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
  EXPECT_EQ(tokenizer->encode("Hello world", true), (std::vector<int32_t>{1, 15043, 3186}));
  std::istringstream lines(read_all(shared + "/data/wikitext-2-raw/wiki.test.raw"));
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // The Llama-2 model's normalizer is the identity (no whitespace folding), so every line
    // must come back byte for byte, leading spaces included.
    const auto ids = tokenizer->encode(line, true);
    ASSERT_EQ(tokenizer->decode(ids), line) << "line " << checked;
    ++checked;
  }
  EXPECT_EQ(checked, 2891);  // every row of the file
}

class TokenizerSmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shared = testing::shared_dir();
    if (!shared) GTEST_SKIP() << "shared/ not found";
    shared_ = *shared;
    tokenizer_ = load_hf_bpe_tokenizer(shared_ + "/models/smollm2-135m/tokenizer.json");
  }
  std::string shared_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(TokenizerSmolLM2, ReferenceIds) {
  EXPECT_EQ(tokenizer_->vocab_size(), 49152);
  EXPECT_FALSE(tokenizer_->adds_bos());
  EXPECT_EQ(tokenizer_->encode("Hello world", false), (std::vector<int32_t>{19556, 905}));
  EXPECT_EQ(tokenizer_->encode("The year 2024 was 12345 big!", false),
            (std::vector<int32_t>{504, 713, 216, 34, 32, 34, 36, 436, 216, 33, 34, 35, 36, 37, 2066, 17}));
  EXPECT_EQ(tokenizer_->encode("<|im_start|>user\nhi<|im_end|>", false), (std::vector<int32_t>{1, 4093, 198, 6004, 2}));
}

TEST_F(TokenizerSmolLM2, WholeFilesMatchLlamaCpp) {
  const auto wiki = tokenizer_->encode(read_all(shared_ + "/data/wikitext-2-raw/wiki.test.raw"), false);
  EXPECT_EQ(wiki.size(), 304830u);
  EXPECT_EQ(std::vector<int32_t>(wiki.begin(), wiki.begin() + 8),
            (std::vector<int32_t>{446, 6356, 389, 9226, 352, 446, 216, 2738}));
  const std::string stories_text = read_all(shared_ + "/data/tinystories/tinystories_val.txt");
  const auto stories = tokenizer_->encode(stories_text, false);
  EXPECT_EQ(stories.size(), 193745u);
  EXPECT_EQ(std::vector<int32_t>(stories.begin(), stories.begin() + 6),
            (std::vector<int32_t>{8103, 320, 30, 23204, 3680, 260}));
  EXPECT_EQ(tokenizer_->decode(stories), stories_text);
}

}  // namespace
}  // namespace lowbit
