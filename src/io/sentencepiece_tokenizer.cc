// SentencePiece models (tokenizer.model) through the library Google maintains, so that
// Llama-2/Mistral tokenization is exactly the reference's.
#include <sentencepiece_processor.h>

#include "byte_level_bpe.h"
#include "lowbit/core/error.h"
#include "lowbit/io/tokenizer.h"

namespace lowbit {

namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) : path_(path) {
    const auto status = processor_.Load(path);
    if (!status.ok()) throw Error(path, "not a SentencePiece model: " + status.ToString());
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool /*parse_special*/ = true) const override {
    require_utf8(text, "text");
    std::vector<int> ids;
    const auto status = processor_.Encode(text, &ids);
    if (!status.ok()) throw Error(path_, "encoding failed: " + status.ToString());
    std::vector<int32_t> tokens;
    if (add_bos && processor_.bos_id() >= 0) tokens.push_back(processor_.bos_id());
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    return tokens;
  }

  std::string decode_token(int32_t previous, int32_t token) const override {
    if (token < 0 || token >= processor_.GetPieceSize())
      throw Error(path_, "token id " + std::to_string(token) + " outside the vocabulary");
    if (processor_.IsControl(token)) return "";
    if (processor_.IsByte(token)) {
      const std::string piece = processor_.IdToPiece(token);  // "<0xAB>"
      return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
    }
    std::string piece = processor_.IdToPiece(token);
    // U+2581 (lower one eighth block) marks a space; the first one after BOS or at the
    // start of the stream is the dummy prefix and is dropped, as the decoder does.
    std::string out = detail::unescape_space_marks(piece);
    if ((previous < 0 || previous == processor_.bos_id()) && !out.empty() && out.front() == ' ') out.erase(0, 1);
    return out;
  }

  int64_t vocab_size() const override { return processor_.GetPieceSize(); }
  int32_t bos_id() const override { return processor_.bos_id(); }
  int32_t eos_id() const override { return processor_.eos_id(); }
  bool adds_bos() const override { return processor_.bos_id() >= 0; }
  std::string_view kind() const override { return "sentencepiece"; }

 private:
  std::string path_;
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path) {
  return std::make_unique<SentencePieceTokenizer>(path);
}

}  // namespace lowbit
