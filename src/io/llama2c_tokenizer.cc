// llama2.c's tokenizer (run.c `encode`/`decode`), reproduced exactly because the stories
// models' reference outputs were produced with it:
//   1. a dummy-prefix token for " " when the text is non-empty (SentencePiece's add_dummy_prefix);
//   2. each UTF-8 code point becomes its vocabulary entry, or, when absent, one token per
//      byte with id byte + 3 (byte fallback: ids 3..258 are <0x00>..<0xFF>);
//   3. repeatedly merge the adjacent pair whose concatenation is in the vocabulary with the
//      highest score (leftmost on ties), until no pair merges.
#include <algorithm>
#include <queue>
#include <cstdio>
#include <unordered_map>

#include "lowbit/core/error.h"
#include "lowbit/io/llama2c.h"
#include "lowbit/io/tokenizer.h"

namespace lowbit {

namespace {

class Llama2cBpeTokenizer final : public Tokenizer {
 public:
  Llama2cBpeTokenizer(const std::string& path, int64_t vocab_size) : path_(path) {
    vocabulary_ = load_llama2c_tokenizer(path, vocab_size);
    for (size_t i = 0; i < vocabulary_.pieces.size(); ++i) ids_.emplace(vocabulary_.pieces[i], static_cast<int32_t>(i));
    if (vocabulary_.pieces.size() < 259) throw Error(path, "a llama2.c vocabulary needs at least 259 entries (3 + 256 bytes)");
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool /*parse_special*/ = true) const override {
    require_utf8(text, "text");
    std::vector<int32_t> tokens;
    if (add_bos) tokens.push_back(1);
    std::vector<int32_t> pieces;
    if (!text.empty()) {
      const auto space = ids_.find(" ");
      if (space == ids_.end()) throw Error(path_, "vocabulary has no \" \" token for the dummy prefix");
      pieces.push_back(space->second);
    }
    for (size_t i = 0; i < text.size();) {
      size_t length = 1;
      while (i + length < text.size() && (static_cast<unsigned char>(text[i + length]) & 0xC0) == 0x80 && length < 4) ++length;
      const auto found = ids_.find(std::string(text.substr(i, length)));
      if (found != ids_.end()) {
        pieces.push_back(found->second);
      } else {
        for (size_t k = 0; k < length; ++k) pieces.push_back(static_cast<unsigned char>(text[i + k]) + 3);
      }
      i += length;
    }
    merge_pairs(pieces);
    tokens.insert(tokens.end(), pieces.begin(), pieces.end());
    return tokens;
  }

  std::string decode_token(int32_t previous, int32_t token) const override {
    if (token < 0 || token >= static_cast<int32_t>(vocabulary_.pieces.size()))
      throw Error(path_, "token id " + std::to_string(token) + " outside the vocabulary");
    if (token == 1 || token == 2) return "";  // BOS/EOS ("\n<s>\n") are control tokens, not text
    std::string_view piece = vocabulary_.pieces[token];
    // After BOS, SentencePiece's decoder drops the dummy-prefix space.
    if (previous == 1 && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    unsigned int byte = 0;
    char tail = 0;
    if (piece.size() == 6 && std::sscanf(std::string(piece).c_str(), "<0x%02X>%c", &byte, &tail) == 1)
      return std::string(1, static_cast<char>(byte));
    return std::string(piece);
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(vocabulary_.pieces.size()); }

  // llama2.c merges by rescanning the whole sequence for the best pair after every merge,
  // which is quadratic in the text length. This priority queue gives the same result in
  // O(n log n): entries are ordered by score (highest first), then by the left symbol's
  // position (leftmost first, as llama2.c's strict '>' scan prefers); stale entries (a
  // side already merged away) are skipped when popped.
  void merge_pairs(std::vector<int32_t>& pieces) const {
    const size_t n = pieces.size();
    if (n < 2) return;
    std::vector<int32_t> id(pieces);
    std::vector<size_t> next(n), previous(n);
    std::vector<bool> alive(n, true);
    for (size_t i = 0; i < n; ++i) next[i] = i + 1, previous[i] = i - 1;  // previous[0] wraps: never used
    struct Candidate {
      float score;
      size_t left;
      int32_t left_id, right_id, merged;
    };
    auto worse = [](const Candidate& a, const Candidate& b) {
      return a.score != b.score ? a.score < b.score : a.left > b.left;
    };
    std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> queue(worse);
    std::string merged_text;
    auto consider = [&](size_t left) {
      if (left >= n || next[left] >= n) return;
      const size_t right = next[left];
      merged_text = vocabulary_.pieces[id[left]] + vocabulary_.pieces[id[right]];
      const auto found = ids_.find(merged_text);
      if (found != ids_.end()) queue.push({vocabulary_.scores[found->second], left, id[left], id[right], found->second});
    };
    for (size_t i = 0; i + 1 < n; ++i) consider(i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      const size_t right = next[c.left];
      if (!alive[c.left] || right >= n || id[c.left] != c.left_id || id[right] != c.right_id) continue;
      id[c.left] = c.merged;
      alive[right] = false;
      next[c.left] = next[right];
      if (next[right] < n) previous[next[right]] = c.left;
      if (c.left > 0 && alive[c.left]) {
        // Find the live predecessor (previous[] is kept current for live nodes).
        const size_t before = previous[c.left];
        if (before < n && alive[before]) consider(before);
      }
      consider(c.left);
    }
    pieces.clear();
    for (size_t i = 0; i < n; i = next[i]) pieces.push_back(id[i]);
  }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  bool adds_bos() const override { return true; }
  std::string_view kind() const override { return "llama2c"; }

 private:
  std::string path_;
  Llama2cVocabulary vocabulary_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_llama2c_bpe_tokenizer(const std::string& path, int64_t vocab_size) {
  if (vocab_size <= 0) throw Error(path, "a llama2.c tokenizer needs the model's vocab_size");
  return std::make_unique<Llama2cBpeTokenizer>(path, vocab_size);
}

}  // namespace lowbit
