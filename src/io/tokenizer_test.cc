// Tokenizers against independent references: llama2.c's encode (stories260K REFERENCE.md),
// the Llama-2 SentencePiece model, and Hugging Face tokenizers / llama.cpp ids for SmolLM2
// (smollm2-135m REFERENCE.md).
#include "lowbit/io/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "lowbit/core/error.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(TokenizerLlama2c, ReferencePrefixOfTinyStories) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto tokenizer = load_llama2c_bpe_tokenizer(shared + "/models/stories260K/llama2c/tok512.bin", 512);
  const std::string text = read_file(shared + "/data/tinystories/tinystories_val.txt").substr(0, 4000);
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

TEST(TokenizerSentencePiece, HelloWorldAndRoundTripOnWikiText) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto tokenizer = load_sentencepiece_tokenizer(shared + "/tokenizers/llama2/tokenizer.model");
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
  EXPECT_EQ(tokenizer->encode("Hello world", true), (std::vector<int32_t>{1, 15043, 3186}));
  std::istringstream lines(read_file(shared + "/data/wikitext-2-raw/wiki.test.raw"));
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
  const auto wiki = tokenizer_->encode(read_file(shared_ + "/data/wikitext-2-raw/wiki.test.raw"), false);
  EXPECT_EQ(wiki.size(), 304830u);
  EXPECT_EQ(std::vector<int32_t>(wiki.begin(), wiki.begin() + 8),
            (std::vector<int32_t>{446, 6356, 389, 9226, 352, 446, 216, 2738}));
  const std::string stories_text = read_file(shared_ + "/data/tinystories/tinystories_val.txt");
  const auto stories = tokenizer_->encode(stories_text, false);
  EXPECT_EQ(stories.size(), 193745u);
  EXPECT_EQ(std::vector<int32_t>(stories.begin(), stories.begin() + 6),
            (std::vector<int32_t>{8103, 320, 30, 23204, 3680, 260}));
  EXPECT_EQ(tokenizer_->decode(stories), stories_text);
}

}  // namespace
}  // namespace lowbit
