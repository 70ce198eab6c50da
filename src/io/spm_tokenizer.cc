// SentencePiece-style tokenization as llama.cpp does it for tokenizer.ggml.model = "llama"
// (llm_tokenizer_spm in llama.cpp's src/llama-vocab.cpp), from plain data:
//   1. control (3), unknown (2) and user-defined (4) tokens are split off first, longest
//      first (control/unknown only when parse_special);
//   2. each text fragment that starts the text or follows such a token gets a leading
//      space when add_space_prefix, then every space becomes U+2581;
//   3. one symbol per UTF-8 character; repeatedly the adjacent pair whose concatenation is a
//      token with the highest score is merged (leftmost on ties), through a heap;
//   4. a symbol that is not a token becomes its bytes' <0xXX> tokens (else the one-byte
//      token, else the unknown token).
// Decoding: U+2581 → space, <0xXX> → the byte, control/unknown → nothing, user-defined as
// written; the space added before a fragment is dropped at the start and after a special
// token, so decode(encode(text)) gives the text back.
#include <cstdio>
#include <queue>
#include <unordered_map>

#include "byte_level_bpe.h"
#include "lowbit/core/error.h"

namespace lowbit::detail {

namespace {


size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct StringEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

std::vector<AddedToken> special_tokens_of(const std::vector<std::string>& tokens, const std::vector<int32_t>& types) {
  std::vector<AddedToken> out;
  for (size_t id = 0; id < types.size(); ++id) {
    const int32_t type = types[id];
    if (type == kTokenControl || type == kTokenUnknown || type == kTokenUserDefined)
      out.push_back({static_cast<int32_t>(id), tokens[id], type != kTokenUserDefined});
  }
  return out;
}

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(SpmData data)
      : where_(std::move(data.where)),
        kind_(std::move(data.kind)),
        tokens_(std::move(data.tokens)),
        scores_(std::move(data.scores)),
        types_(std::move(data.types)),
        bos_id_(data.bos_id),
        eos_id_(data.eos_id),
        unk_id_(data.unk_id),
        adds_bos_(data.adds_bos),
        add_space_prefix_(data.add_space_prefix) {
    const size_t n = tokens_.size();
    if (n == 0) throw Error(where_, "the vocabulary is empty");
    if (scores_.empty()) scores_.assign(n, 0.0f);
    if (types_.empty()) types_.assign(n, kTokenNormal);
    if (scores_.size() != n || types_.size() != n)
      throw Error(where_, std::to_string(n) + " tokens but " + std::to_string(scores_.size()) + " scores and " +
                              std::to_string(types_.size()) + " token types");
    for (int32_t id : {bos_id_, eos_id_, unk_id_})
      if (id >= static_cast<int32_t>(n)) throw Error(where_, "special token id " + std::to_string(id) + " outside the vocabulary");
    for (size_t id = 0; id < n; ++id) ids_[tokens_[id]] = static_cast<int32_t>(id);  // later ids win, as in llama.cpp
    for (int byte = 0; byte < 256; ++byte) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", byte);
      int32_t id = id_of(hex);
      if (id < 0) id = id_of(std::string(1, static_cast<char>(byte)));
      byte_ids_[byte] = id;
    }
    splitter_ = AddedTokenSplitter(special_tokens_of(tokens_, types_), AddedTokenOrder::kLongestFirst);
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = true) const override {
    require_utf8(text, "text");
    std::vector<int32_t> ids;
    if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
    bool previous_special = true;  // the text's start counts as after a special token
    std::string escaped;
    for (const TextFragment& fragment : splitter_.split(text, parse_special)) {
      if (fragment.token >= 0) {
        ids.push_back(fragment.token);
        previous_special = true;
        continue;
      }
      escaped.clear();
      if (add_space_prefix_ && previous_special) escaped += kSpaceMark;
      for (char c : fragment.text) {
        if (c == ' ') escaped += kSpaceMark;
        else escaped += c;
      }
      tokenize(escaped, ids);
      previous_special = false;
    }
    return ids;
  }

  std::string decode_token(int32_t previous, int32_t token) const override {
    if (token < 0 || token >= static_cast<int32_t>(tokens_.size()))
      throw Error(where_, "token id " + std::to_string(token) + " outside the vocabulary");
    const int32_t type = types_[token];
    if (type == kTokenControl || type == kTokenUnknown) return "";
    if (type == kTokenUserDefined) return tokens_[token];
    const std::string& piece = tokens_[token];
    unsigned int byte = 0;
    char tail = 0;
    if (type == kTokenByte && piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>%c", &byte, &tail) == 1)
      return std::string(1, static_cast<char>(byte));
    std::string out = unescape_space_marks(piece);
    const bool after_special = previous < 0 || (previous < static_cast<int32_t>(types_.size()) &&
                                                (types_[previous] == kTokenControl || types_[previous] == kTokenUnknown ||
                                                 types_[previous] == kTokenUserDefined));
    if (add_space_prefix_ && after_special && !out.empty() && out.front() == ' ') out.erase(0, 1);
    return out;
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  bool adds_bos() const override { return adds_bos_; }
  std::string_view kind() const override { return kind_; }

 private:
  int32_t id_of(std::string_view text) const {
    const auto found = ids_.find(text);
    return found == ids_.end() ? -1 : found->second;
  }

  // llama.cpp's llm_tokenizer_spm_session::tokenize on one escaped fragment.
  void tokenize(const std::string& text, std::vector<int32_t>& out) const {
    struct Symbol {
      size_t start, length;  // bytes of `text`; length 0 once merged away
      size_t previous, next;  // indices; npos at the ends
    };
    constexpr size_t npos = static_cast<size_t>(-1);
    std::vector<Symbol> symbols;
    for (size_t at = 0; at < text.size();) {
      const size_t length = std::min(utf8_length(static_cast<unsigned char>(text[at])), text.size() - at);
      const size_t index = symbols.size();
      symbols.push_back({at, length, index == 0 ? npos : index - 1, at + length == text.size() ? npos : index + 1});
      at += length;
    }
    struct Bigram {
      float score;
      size_t left, right, size;
    };
    // Highest score first, then the leftmost.
    auto worse = [](const Bigram& a, const Bigram& b) { return a.score < b.score || (a.score == b.score && a.left > b.left); };
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> queue(worse);
    auto try_add = [&](size_t left, size_t right) {
      if (left == npos || right == npos) return;
      const std::string_view joined(text.data() + symbols[left].start, symbols[left].length + symbols[right].length);
      const int32_t id = id_of(joined);
      if (id < 0) return;
      queue.push({scores_[id], left, right, joined.size()});
    };
    for (size_t i = 1; i < symbols.size(); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
      const Bigram bigram = queue.top();
      queue.pop();
      Symbol& left = symbols[bigram.left];
      Symbol& right = symbols[bigram.right];
      // Skip pairs one of whose sides has changed since they were queued (sizes only grow).
      if (left.length == 0 || right.length == 0 || left.length + right.length != bigram.size) continue;
      left.length += right.length;
      right.length = 0;
      left.next = right.next;
      if (right.next != npos) symbols[right.next].previous = bigram.left;
      try_add(left.previous, bigram.left);
      try_add(bigram.left, left.next);
    }
    for (size_t i = symbols.empty() ? npos : 0; i != npos; i = symbols[i].next) {
      const std::string_view piece(text.data() + symbols[i].start, symbols[i].length);
      const int32_t id = id_of(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      for (unsigned char byte : piece) {
        const int32_t byte_id = byte_ids_[byte] >= 0 ? byte_ids_[byte] : unk_id_;
        if (byte_id < 0)
          throw Error(where_, "no token for byte " + std::to_string(byte) + " (no <0xXX> token and no unknown token)");
        out.push_back(byte_id);
      }
    }
  }

  std::string where_, kind_;
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<int32_t> types_;
  int32_t bos_id_, eos_id_, unk_id_;
  bool adds_bos_, add_space_prefix_;
  std::unordered_map<std::string, int32_t, StringHash, StringEqual> ids_;
  int32_t byte_ids_[256] = {};
  AddedTokenSplitter splitter_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(SpmData data) { return std::make_unique<SpmTokenizer>(std::move(data)); }

std::string unescape_space_marks(std::string_view piece) {
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out += ' ';
      i += kSpaceMark.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

}  // namespace lowbit::detail
