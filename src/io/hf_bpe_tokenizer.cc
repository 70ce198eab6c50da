// Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, Llama 3, SmolLM, Qwen2).
//
// Encoding, in the order the tokenizers library applies it:
//   1. added tokens (special or not) are matched literally, longest first, and never split;
//   2. the remaining text goes through the pre-tokenizer sequence: Split/Digits steps and
//      the ByteLevel step, whose regex is GPT-2's (or the one given in a Split step),
//      matched with PCRE2 in UTF + Unicode-property mode;
//   3. each piece's bytes are mapped to printable code points (GPT-2's bytes_to_unicode),
//      then merged pairwise, lowest merge rank first, until no ranked pair remains.
// Decoding maps the code points back to bytes.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "lowbit/core/error.h"
#include "lowbit/io/json_file.h"
#include "lowbit/io/tokenizer.h"

namespace lowbit {

namespace {

using nlohmann::json;

// GPT-2's pre-tokenization pattern, used by the ByteLevel pre-tokenizer with use_regex.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string utf8_of(uint32_t codepoint) {
  std::string out;
  if (codepoint < 0x80) {
    out += static_cast<char>(codepoint);
  } else if (codepoint < 0x800) {
    out += static_cast<char>(0xC0 | (codepoint >> 6));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (codepoint >> 12));
    out += static_cast<char>(0x80 | ((codepoint >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (codepoint & 0x3F));
  }
  return out;
}

// A compiled PCRE2 pattern; splits text into the matched pieces (unmatched stretches
// become pieces of their own, as the tokenizers library's Split "Isolated" behaviour keeps them).
class Regex {
 public:
  explicit Regex(const std::string& pattern, const std::string& where) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw Error(where, "pre-tokenizer regex does not compile: " + std::string(reinterpret_cast<char*>(message)));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  void split(std::string_view text, std::vector<std::string_view>& out) const {
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(code_, nullptr);
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
    pcre2_match_data_free(match);
  }

 private:
  pcre2_code* code_ = nullptr;
};

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
};

class HfBpeTokenizer final : public Tokenizer {
 public:
  explicit HfBpeTokenizer(const std::string& path) : path_(path) {
    const json root = read_json_file(path);
    try {
      load(root);
    } catch (const json::exception& e) {
      throw Error(path, std::string("unexpected tokenizer.json structure: ") + e.what());
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    require_utf8(text, "text");
    std::vector<int32_t> ids;
    if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
    size_t start = 0;
    while (start <= text.size()) {
      // Next added token occurrence (earliest, then longest).
      size_t best_position = std::string_view::npos;
      const AddedToken* best = nullptr;
      for (const auto& token : added_) {
        const size_t position = text.find(token.content, start);
        if (position == std::string_view::npos) continue;
        if (position < best_position || (position == best_position && token.content.size() > best->content.size())) {
          best_position = position;
          best = &token;
        }
      }
      const size_t end = best ? best_position : text.size();
      encode_ordinary(text.substr(start, end - start), ids);
      if (!best) break;
      ids.push_back(best->id);
      start = best_position + best->content.size();
    }
    return ids;
  }

  std::string decode_token(int32_t, int32_t token) const override {
    if (token < 0 || token >= static_cast<int32_t>(pieces_.size()))
      throw Error(path_, "token id " + std::to_string(token) + " outside the vocabulary");
    if (special_.count(token)) return pieces_[token];
    // Map each code point back to its byte.
    const std::string& piece = pieces_[token];
    std::string out;
    for (size_t i = 0; i < piece.size();) {
      uint32_t codepoint = static_cast<unsigned char>(piece[i]);
      size_t length = 1;
      if (codepoint >= 0xE0) codepoint &= 0x0F, length = 3;
      else if (codepoint >= 0xC0) codepoint &= 0x1F, length = 2;
      for (size_t k = 1; k < length && i + k < piece.size(); ++k)
        codepoint = (codepoint << 6) | (static_cast<unsigned char>(piece[i + k]) & 0x3F);
      const auto found = unicode_to_byte_.find(codepoint);
      if (found != unicode_to_byte_.end()) out += static_cast<char>(found->second);
      else out += piece.substr(i, length);  // added, non-byte-level token text
      i += length;
    }
    return out;
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  bool adds_bos() const override { return adds_bos_; }
  std::string_view kind() const override { return "tokenizer.json"; }

 private:
  void load(const json& root) {
    const json& model = root.at("model");
    if (model.at("type") != "BPE") throw Error(path_, "model type " + model.at("type").dump() + " is not BPE");
    const json& vocab = model.at("vocab");
    int32_t max_id = -1;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) max_id = std::max(max_id, it.value().get<int32_t>());
    for (const json& token : root.at("added_tokens")) max_id = std::max(max_id, token.at("id").get<int32_t>());
    if (max_id < 0 || max_id > (1 << 24)) throw Error(path_, "vocabulary ids out of range");
    pieces_.assign(static_cast<size_t>(max_id) + 1, std::string());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const int32_t id = it.value().get<int32_t>();
      if (id < 0) throw Error(path_, "negative id for token " + it.key());
      pieces_[id] = it.key();
      ids_[it.key()] = id;
    }
    int32_t rank = 0;
    for (const json& merge : model.at("merges")) {
      std::string left, right;
      if (merge.is_string()) {  // "a b" (older files)
        const std::string text = merge.get<std::string>();
        const size_t space = text.find(' ');
        if (space == std::string::npos) throw Error(path_, "merge \"" + text + "\" has no space");
        left = text.substr(0, space), right = text.substr(space + 1);
      } else {
        left = merge.at(0).get<std::string>(), right = merge.at(1).get<std::string>();
      }
      ranks_[left + '\x00' + right] = rank++;
    }
    for (const json& token : root.at("added_tokens")) {
      AddedToken added{token.at("content").get<std::string>(), token.at("id").get<int32_t>(),
                       token.value("special", false)};
      if (added.content.empty()) continue;
      pieces_[added.id] = added.content;
      if (added.special) special_.insert({added.id, true});
      added_.push_back(added);
    }
    // Byte-to-unicode (GPT-2): printable Latin-1 bytes map to themselves, the rest to 256+.
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t codepoint = printable ? b : next++;
      byte_to_unicode_[b] = utf8_of(codepoint);
      unicode_to_byte_[codepoint] = static_cast<uint8_t>(b);
    }
    load_pre_tokenizer(root.at("pre_tokenizer"));
    // BOS/EOS: the conventional names; SmolLM2 has <|im_start|>/<|im_end|> as 1/2 and adds no BOS.
    auto id_of = [&](const char* name) -> int32_t {
      for (const auto& token : added_)
        if (token.content == name) return token.id;
      return -1;
    };
    bos_id_ = id_of("<|begin_of_text|>");
    if (bos_id_ < 0) bos_id_ = id_of("<s>");
    if (bos_id_ < 0) bos_id_ = id_of("<|im_start|>");
    eos_id_ = id_of("<|end_of_text|>");
    if (eos_id_ < 0) eos_id_ = id_of("</s>");
    if (eos_id_ < 0) eos_id_ = id_of("<|im_end|>");
    if (eos_id_ < 0) eos_id_ = id_of("<|endoftext|>");
    // A TemplateProcessing post-processor that starts with a special token means "add BOS".
    const json& post = root.contains("post_processor") ? root["post_processor"] : json();
    adds_bos_ = post.is_object() && post.value("type", "") == "TemplateProcessing" && post.contains("single") &&
                !post["single"].empty() && post["single"][0].contains("SpecialToken");
  }

  void load_pre_tokenizer(const json& pre) {
    if (pre.is_null()) return;
    const std::string type = pre.at("type").get<std::string>();
    if (type == "Sequence") {
      for (const json& step : pre.at("pretokenizers")) load_pre_tokenizer(step);
    } else if (type == "ByteLevel") {
      if (pre.value("add_prefix_space", false)) add_prefix_space_ = true;
      if (pre.value("use_regex", true)) steps_.push_back({std::make_unique<Regex>(kGpt2Pattern, path_), false});
      byte_level_ = true;
    } else if (type == "Digits") {
      const std::string pattern = pre.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)";
      steps_.push_back({std::make_unique<Regex>(pattern, path_), true});
    } else if (type == "Split") {
      const json& pattern = pre.at("pattern");
      if (!pattern.contains("Regex")) throw Error(path_, "Split pre-tokenizer with a non-regex pattern is not supported");
      if (pre.value("behavior", "Isolated") != "Isolated" || pre.value("invert", false))
        throw Error(path_, "Split pre-tokenizer behaviour other than Isolated is not supported");
      steps_.push_back({std::make_unique<Regex>(pattern["Regex"].get<std::string>(), path_), false});
    } else {
      throw Error(path_, "unsupported pre-tokenizer type \"" + type + "\"");
    }
  }

  // Pieces after every pre-tokenizer step; each step re-splits the previous step's pieces.
  void encode_ordinary(std::string_view text, std::vector<int32_t>& ids) const {
    if (text.empty()) return;
    std::string prefixed;
    if (add_prefix_space_ && text.front() != ' ') {
      prefixed = " " + std::string(text);
      text = prefixed;
    }
    std::vector<std::string_view> pieces{text}, next;
    for (const auto& step : steps_) {
      next.clear();
      for (std::string_view piece : pieces) step.regex->split(piece, next);
      pieces.swap(next);
    }
    for (std::string_view piece : pieces) encode_piece(piece, ids);
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      const auto cached = cache_.find(std::string(piece));
      if (cached != cache_.end()) {
        ids.insert(ids.end(), cached->second.begin(), cached->second.end());
        return;
      }
    }
    std::vector<std::string> symbols;
    for (unsigned char byte : piece) symbols.push_back(byte_level_ ? byte_to_unicode_[byte] : std::string(1, char(byte)));
    // Standard BPE: merge the lowest-ranked adjacent pair (leftmost first) until none is ranked.
    while (symbols.size() > 1) {
      int32_t best_rank = INT32_MAX;
      size_t best_index = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        const auto found = ranks_.find(symbols[i] + '\x00' + symbols[i + 1]);
        if (found != ranks_.end() && found->second < best_rank) best_rank = found->second, best_index = i;
      }
      if (best_rank == INT32_MAX) break;
      symbols[best_index] += symbols[best_index + 1];
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best_index) + 1);
    }
    std::vector<int32_t> result;
    for (const auto& symbol : symbols) {
      const auto found = ids_.find(symbol);
      if (found == ids_.end()) throw Error(path_, "piece \"" + symbol + "\" is not in the vocabulary (no byte fallback)");
      result.push_back(found->second);
    }
    ids.insert(ids.end(), result.begin(), result.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < 200000) cache_.emplace(std::string(piece), std::move(result));
  }

  struct Step {
    std::unique_ptr<Regex> regex;
    bool digits;
  };

  std::string path_;
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> ranks_;
  std::vector<AddedToken> added_;
  std::map<int32_t, bool> special_;
  std::string byte_to_unicode_[256];
  std::unordered_map<uint32_t, uint8_t> unicode_to_byte_;
  std::vector<Step> steps_;
  bool byte_level_ = false;
  bool add_prefix_space_ = false;
  bool adds_bos_ = false;
  int32_t bos_id_ = -1, eos_id_ = -1;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_hf_bpe_tokenizer(const std::string& path) { return std::make_unique<HfBpeTokenizer>(path); }

}  // namespace lowbit
