#include "lowbit/io/tokenizer.h"

#include "lowbit/core/error.h"

namespace lowbit {

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  int32_t previous = -1;
  for (int32_t id : ids) {
    text += decode_token(previous, id);
    previous = id;
  }
  return text;
}

void require_utf8(std::string_view text, const std::string& where) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t length;
    uint32_t codepoint;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2, codepoint = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, codepoint = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, codepoint = c & 0x07;
    } else {
      throw Error(where, "text is not valid UTF-8 (byte " + std::to_string(i) + ")");
    }
    if (i + length > n) throw Error(where, "text is not valid UTF-8 (truncated sequence at byte " + std::to_string(i) + ")");
    for (size_t k = 1; k < length; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) throw Error(where, "text is not valid UTF-8 (byte " + std::to_string(i + k) + ")");
      codepoint = (codepoint << 6) | (p[i + k] & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF.
    const uint32_t minimum = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (codepoint < minimum || codepoint > 0x10FFFF || (codepoint >= 0xD800 && codepoint <= 0xDFFF))
      throw Error(where, "text is not valid UTF-8 (byte " + std::to_string(i) + ")");
    i += length;
  }
}

std::unique_ptr<Tokenizer> load_tokenizer(const ModelFiles& model) {
  switch (model.tokenizer) {
    case TokenizerKind::kLlama2c:
      return load_llama2c_bpe_tokenizer(model.tokenizer_path, model.config ? model.config->vocab_size : 0);
    case TokenizerKind::kSentencePiece:
      return load_sentencepiece_tokenizer(model.tokenizer_path);
    case TokenizerKind::kHuggingFaceJson:
      return load_hf_bpe_tokenizer(model.tokenizer_path);
    case TokenizerKind::kGguf:
      if (!model.gguf) throw Error(model.path, "GGUF tokenizer without its parsed file");
      return load_gguf_tokenizer(*model.gguf);
    case TokenizerKind::kNone:
      break;
  }
  throw Error(model.path, "no tokenizer found beside the model (expected tokenizer.json, tokenizer.model or tokenizer.bin)");
}

}  // namespace lowbit
