// Byte-level BPE from plain data (see byte_level_bpe.h), shared by tokenizer.json and GGUF.
//
// Encoding:
//   1. added tokens are split off first (AddedTokenSplitter; special ones only when
//      parse_special), the rest is text;
//   2. each text fragment goes through the pre-tokenizer regexes in order (PCRE2 in UTF +
//      Unicode-property mode), each re-splitting the pieces of the previous one;
//   3. each piece's bytes become symbols (GPT-2's byte→unicode strings), which are merged
//      pairwise, lowest merge rank first (leftmost on ties), until no ranked pair remains.
//      A heap over a linked list of symbols makes this O(n log n) per piece; the result
//      equals the plain rescan-for-the-best-pair loop (both pick the lowest rank, then the
//      leftmost position, among the pairs present). Results are cached per piece.
// Decoding maps the code points back to bytes; added tokens decode to their content.
#include "byte_level_bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "lowbit/core/error.h"

namespace lowbit::detail {

namespace {

std::string utf8_of(uint32_t codepoint) {
  std::string out;
  if (codepoint < 0x80) {
    out += static_cast<char>(codepoint);
  } else if (codepoint < 0x800) {
    out += static_cast<char>(0xC0 | (codepoint >> 6));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  } else if (codepoint < 0x10000) {
    out += static_cast<char>(0xE0 | (codepoint >> 12));
    out += static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (codepoint >> 18));
    out += static_cast<char>(0x80 | ((codepoint >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  }
  return out;
}

// Length of the UTF-8 sequence starting with `lead` (1 for continuation/invalid bytes).
size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

struct ByteMaps {
  std::string to_unicode[256];
  std::unordered_map<uint32_t, uint8_t> to_byte;  // code point → byte
  ByteMaps() {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t codepoint = printable ? b : next++;
      to_unicode[b] = utf8_of(codepoint);
      to_byte[codepoint] = static_cast<uint8_t>(b);
    }
  }
};

const ByteMaps& byte_maps() {
  static const ByteMaps maps;
  return maps;
}

// A compiled PCRE2 pattern; splits text into the matched pieces (unmatched stretches
// become pieces of their own, as the tokenizers library's Split "Isolated" behaviour and
// llama.cpp's unicode_regex_split keep them).
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw Error(where, "pre-tokenizer regex /" + pattern +
                             "/ does not compile: " + std::string(reinterpret_cast<char*>(message)));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  pcre2_match_data* new_match_data() const { return pcre2_match_data_create_from_pattern(code_, nullptr); }

  void split(std::string_view text, std::vector<std::string_view>& out, pcre2_match_data* match) const {
    size_t start = 0;
    while (start < text.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, PCRE2_NO_UTF_CHECK,
                                 match, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
      if (ovector[0] > start) out.push_back(text.substr(start, ovector[0] - start));
      if (ovector[1] == ovector[0]) {  // empty match: step one code point
        size_t next = ovector[0] + 1;
        while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
        if (next > start && ovector[0] == start) out.push_back(text.substr(start, next - start));
        start = next;
        continue;
      }
      out.push_back(text.substr(ovector[0], ovector[1] - ovector[0]));
      start = ovector[1];
    }
    if (start < text.size()) out.push_back(text.substr(start));
  }

 private:
  pcre2_code* code_ = nullptr;
};

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

// Heterogeneous lookup (string_view keys) so the per-piece cache needs no allocation to probe.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct StringEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  explicit ByteLevelBpeTokenizer(ByteLevelBpeData data)
      : where_(std::move(data.where)),
        kind_(std::move(data.kind)),
        tokens_(std::move(data.tokens)),
        splitter_(data.added, data.added_order),
        byte_level_(data.byte_level),
        add_prefix_space_(data.add_prefix_space),
        ignore_merges_(data.ignore_merges),
        adds_bos_(data.adds_bos),
        bos_id_(data.bos_id),
        eos_id_(data.eos_id) {
    if (tokens_.empty()) throw Error(where_, "the vocabulary is empty");
    const auto count = static_cast<int32_t>(tokens_.size());
    for (int32_t id : {bos_id_, eos_id_})
      if (id >= count) throw Error(where_, "special token id " + std::to_string(id) + " outside the vocabulary");
    // Token text → id; when two ids share a text the later one wins (as llama.cpp's map).
    ids_.reserve(tokens_.size());
    for (int32_t id = 0; id < count; ++id)
      if (!tokens_[id].empty()) ids_[tokens_[id]] = id;
    is_added_.assign(tokens_.size(), false);
    for (const AddedToken& token : data.added) {
      if (token.id < 0 || token.id >= count)
        throw Error(where_, "added token \"" + token.content + "\" has id " + std::to_string(token.id) +
                                " outside the vocabulary of " + std::to_string(count));
      is_added_[token.id] = true;
    }
    // Merges as (left id, right id) → (rank, merged id).
    merges_.reserve(data.merges.size());
    for (size_t rank = 0; rank < data.merges.size(); ++rank) {
      const auto& [left, right] = data.merges[rank];
      const int32_t l = id_of(left), r = id_of(right), m = id_of(left + right);
      if (l < 0 || r < 0 || m < 0)
        throw Error(where_, "merge " + std::to_string(rank) + " \"" + left + " " + right + "\": \"" +
                                (l < 0 ? left : r < 0 ? right : left + right) + "\" is not in the vocabulary");
      merges_.emplace(pair_key(l, r), Merge{static_cast<int32_t>(rank), m});  // the first (lowest) rank wins
    }
    for (const std::string& pattern : data.pre_regexes) regexes_.push_back(std::make_unique<Regex>(pattern, where_));
    if (byte_level_)
      for (int b = 0; b < 256; ++b) byte_ids_[b] = id_of(byte_maps().to_unicode[b]);
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = true) const override {
    require_utf8(text, "text");
    std::vector<int32_t> ids;
    if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
    std::vector<std::unique_ptr<pcre2_match_data, MatchDataDeleter>> match;
    for (const auto& regex : regexes_) match.emplace_back(regex->new_match_data());
    std::vector<std::string_view> pieces, next;
    std::string prefixed;
    for (const TextFragment& fragment : splitter_.split(text, parse_special)) {
      if (fragment.token >= 0) {
        ids.push_back(fragment.token);
        continue;
      }
      std::string_view part = fragment.text;
      if (add_prefix_space_ && part.front() != ' ') {
        prefixed = " " + std::string(part);
        part = prefixed;
      }
      pieces.assign(1, part);
      for (size_t k = 0; k < regexes_.size(); ++k) {
        next.clear();
        for (std::string_view piece : pieces) regexes_[k]->split(piece, next, match[k].get());
        pieces.swap(next);
      }
      for (std::string_view piece : pieces) encode_piece(piece, ids);
    }
    return ids;
  }

  std::string decode_token(int32_t, int32_t token) const override {
    if (token < 0 || token >= static_cast<int32_t>(tokens_.size()))
      throw Error(where_, "token id " + std::to_string(token) + " outside the vocabulary");
    const std::string& piece = tokens_[token];
    if (is_added_[token] || !byte_level_) return piece;
    // Map each code point back to its byte.
    std::string out;
    const auto& to_byte = byte_maps().to_byte;
    for (size_t i = 0; i < piece.size();) {
      uint32_t codepoint = static_cast<unsigned char>(piece[i]);
      const size_t length = std::min(utf8_length(static_cast<unsigned char>(piece[i])), piece.size() - i);
      if (length > 1) codepoint &= 0x7F >> length;
      for (size_t k = 1; k < length; ++k) codepoint = (codepoint << 6) | (static_cast<unsigned char>(piece[i + k]) & 0x3F);
      const auto found = to_byte.find(codepoint);
      if (found != to_byte.end()) out += static_cast<char>(found->second);
      else out += piece.substr(i, length);  // not a byte-level code point: kept as written
      i += length;
    }
    return out;
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  bool adds_bos() const override { return adds_bos_; }
  std::string_view kind() const override { return kind_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  int32_t id_of(std::string_view text) const {
    const auto found = ids_.find(text);
    return found == ids_.end() ? -1 : found->second;
  }
  const Merge* find_merge(int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return nullptr;
    const auto found = merges_.find(pair_key(left, right));
    return found == merges_.end() ? nullptr : &found->second;
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      const auto cached = cache_.find(piece);
      if (cached != cache_.end()) {
        ids.insert(ids.end(), cached->second.begin(), cached->second.end());
        return;
      }
    }
    std::vector<int32_t> result = merge_piece(piece);
    ids.insert(ids.end(), result.begin(), result.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < 200000) cache_.emplace(std::string(piece), std::move(result));
  }

  std::vector<int32_t> merge_piece(std::string_view piece) const {
    // Symbols: one per byte (byte-level) or per UTF-8 character, as token ids (-1: not a token).
    std::vector<int32_t> symbol;
    std::string mapped;
    if (byte_level_) {
      for (unsigned char byte : piece) symbol.push_back(byte_ids_[byte]);
      if (ignore_merges_) {
        for (unsigned char byte : piece) mapped += byte_maps().to_unicode[byte];
        if (const int32_t whole = id_of(mapped); whole >= 0) return {whole};
      }
    } else {
      if (ignore_merges_)
        if (const int32_t whole = id_of(piece); whole >= 0) return {whole};
      for (size_t i = 0; i < piece.size();) {
        const size_t length = std::min(utf8_length(static_cast<unsigned char>(piece[i])), piece.size() - i);
        symbol.push_back(id_of(piece.substr(i, length)));
        i += length;
      }
    }
    const size_t n = symbol.size();
    if (n > 1) {
      // Doubly linked list over positions; heap of candidate pairs ordered by (rank, left).
      std::vector<size_t> next(n), previous(n);
      for (size_t i = 0; i < n; ++i) next[i] = i + 1, previous[i] = i == 0 ? n : i - 1;  // n: none
      struct Candidate {
        int32_t rank;
        size_t left;
        int32_t left_id, right_id, merged;
      };
      auto worse = [](const Candidate& a, const Candidate& b) { return a.rank != b.rank ? a.rank > b.rank : a.left > b.left; };
      std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> queue(worse);
      std::vector<bool> alive(n, true);
      auto consider = [&](size_t left) {
        if (left >= n || next[left] >= n) return;
        const size_t right = next[left];
        if (const Merge* merge = find_merge(symbol[left], symbol[right]))
          queue.push({merge->rank, left, symbol[left], symbol[right], merge->merged});
      };
      for (size_t i = 0; i + 1 < n; ++i) consider(i);
      while (!queue.empty()) {
        const Candidate c = queue.top();
        queue.pop();
        if (!alive[c.left] || next[c.left] >= n) continue;
        const size_t right = next[c.left];
        if (symbol[c.left] != c.left_id || symbol[right] != c.right_id) continue;  // stale
        symbol[c.left] = c.merged;
        alive[right] = false;
        next[c.left] = next[right];
        if (next[right] < n) previous[next[right]] = c.left;
        if (previous[c.left] < n) consider(previous[c.left]);
        consider(c.left);
      }
      std::vector<int32_t> merged;
      for (size_t i = 0; i < n; i = next[i]) merged.push_back(symbol[i]);
      symbol.swap(merged);
    }
    for (size_t i = 0; i < symbol.size(); ++i)
      if (symbol[i] < 0)
        throw Error(where_, "text piece \"" + std::string(piece) + "\" has a symbol that is not in the vocabulary (no byte fallback)");
    return symbol;
  }

  std::string where_, kind_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t, StringHash, StringEqual> ids_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<bool> is_added_;
  AddedTokenSplitter splitter_;
  std::vector<std::unique_ptr<Regex>> regexes_;
  int32_t byte_ids_[256] = {};
  bool byte_level_, add_prefix_space_, ignore_merges_, adds_bos_;
  int32_t bos_id_, eos_id_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, StringEqual> cache_;
};

constexpr const char* kGpt2LlamaCpp = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kGpt2Hf = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3LlamaCpp =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Hf =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2LlamaCpp =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Hf =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

const char* const kGpt2Regex = kGpt2Hf;

const std::string& gpt2_byte_to_unicode(uint8_t byte) { return byte_maps().to_unicode[byte]; }

// ---------------------------------------------------------------------------------------
// Added tokens

AddedTokenSplitter::AddedTokenSplitter(std::vector<AddedToken> tokens, AddedTokenOrder order) : order_(order) {
  for (auto& token : tokens)
    if (!token.content.empty()) tokens_.push_back(std::move(token));
  if (order_ == AddedTokenOrder::kLongestFirst)
    std::stable_sort(tokens_.begin(), tokens_.end(), [](const AddedToken& a, const AddedToken& b) {
      return a.content.size() != b.content.size() ? a.content.size() > b.content.size() : a.id < b.id;
    });
}

std::vector<TextFragment> AddedTokenSplitter::split(std::string_view text, bool parse_special) const {
  std::vector<TextFragment> out;
  if (text.empty()) return out;
  if (order_ == AddedTokenOrder::kLongestFirst) {
    // llama.cpp's tokenizer_st_partition: each token in turn splits every text fragment left.
    out.push_back({text, -1});
    std::vector<TextFragment> next;
    for (const AddedToken& token : tokens_) {
      if (token.special && !parse_special) continue;
      next.clear();
      for (const TextFragment& fragment : out) {
        if (fragment.token >= 0) {
          next.push_back(fragment);
          continue;
        }
        std::string_view rest = fragment.text;
        for (size_t at; (at = rest.find(token.content)) != std::string_view::npos;) {
          if (at > 0) next.push_back({rest.substr(0, at), -1});
          next.push_back({{}, token.id});
          rest.remove_prefix(at + token.content.size());
        }
        if (!rest.empty()) next.push_back({rest, -1});
      }
      out.swap(next);
    }
    return out;
  }
  // Leftmost, then longest. Each token's next occurrence is remembered until passed, so
  // the whole text is scanned once per token.
  std::vector<size_t> next_at(tokens_.size(), 0);
  std::vector<bool> searched(tokens_.size(), false);
  size_t start = 0;
  while (start < text.size()) {
    size_t best_at = std::string_view::npos;
    const AddedToken* best = nullptr;
    for (size_t k = 0; k < tokens_.size(); ++k) {
      const AddedToken& token = tokens_[k];
      if (token.special && !parse_special) continue;
      if (!searched[k] || (next_at[k] != std::string_view::npos && next_at[k] < start)) {
        next_at[k] = text.find(token.content, start);
        searched[k] = true;
      }
      const size_t at = next_at[k];
      if (at == std::string_view::npos) continue;
      if (at < best_at || (at == best_at && token.content.size() > best->content.size())) best_at = at, best = &token;
    }
    if (!best) break;
    if (best_at > start) out.push_back({text.substr(start, best_at - start), -1});
    out.push_back({{}, best->id});
    start = best_at + best->content.size();
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
  return out;
}

// ---------------------------------------------------------------------------------------
// Pre-tokenizer types (llama.cpp's src/llama-vocab.cpp, llm_tokenizer_bpe)

const std::vector<PreTokenizerType>& pre_tokenizer_types() {
  static const std::vector<PreTokenizerType> types = {
      {"smollm",
       {"starcoder", "refact", "codeshell"},
       {R"(\p{N})", kGpt2LlamaCpp},
       {{R"(\p{N})", kGpt2Hf}, {R"(\p{N})", kGpt2LlamaCpp}},
       false},
      {"gpt-2", {"phi-2", "mpt", "olmo"}, {kGpt2LlamaCpp}, {{kGpt2Hf}, {kGpt2LlamaCpp}}, false},
      {"llama-bpe",
       {"llama3", "llama-v3", "falcon3", "pixtral"},
       {kLlama3LlamaCpp},
       {{kLlama3LlamaCpp}, {kLlama3Hf}},
       true},
      {"qwen2", {"deepseek-r1-qwen", "megrez", "stablelm2"}, {kQwen2LlamaCpp}, {{kQwen2LlamaCpp}, {kQwen2Hf}}, false},
      {"default",
       {},
       {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2LlamaCpp, R"(\p{N}+)", "[0-9][0-9][0-9]"},
       {{R"([\p{P}\$\+<=>\^~\|]+)", kGpt2LlamaCpp, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
       false},
  };
  return types;
}

const PreTokenizerType* find_pre_tokenizer(std::string_view name) {
  for (const auto& type : pre_tokenizer_types()) {
    if (type.name == name) return &type;
    for (const auto& alias : type.aliases)
      if (alias == name) return &type;
  }
  return nullptr;
}

const PreTokenizerType* match_pre_tokenizer(const std::vector<std::string>& regexes) {
  for (const auto& type : pre_tokenizer_types()) {
    if (regexes == type.llama_cpp) return &type;
    for (const auto& form : type.hf_forms)
      if (regexes == form) return &type;
  }
  return nullptr;
}

std::string supported_pre_tokenizers() {
  std::string out;
  for (const auto& type : pre_tokenizer_types()) {
    out += out.empty() ? "" : ", ";
    out += type.name;
    for (const auto& alias : type.aliases) out += ", " + alias;
  }
  return out;
}

std::unique_ptr<Tokenizer> make_byte_level_bpe_tokenizer(ByteLevelBpeData data) {
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(data));
}

}  // namespace lowbit::detail
