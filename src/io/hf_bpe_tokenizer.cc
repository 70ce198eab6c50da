// Hugging Face tokenizer.json with a BPE model (GPT-2, Llama 3, SmolLM, Qwen2), read into
// the plain data of the shared byte-level BPE core (byte_level_bpe.h), which encodes in
// the order the tokenizers library applies it:
//   1. added tokens (special or not) are matched literally, leftmost then longest, and never
//      split (special ones only when encode's parse_special is true);
//   2. the remaining text goes through the pre-tokenizer sequence: Split/Digits steps and
//      the ByteLevel step, whose regex is GPT-2's (or the one given in a Split step),
//      matched with PCRE2 in UTF + Unicode-property mode;
//   3. each piece's bytes are mapped to printable code points (GPT-2's bytes_to_unicode),
//      then merged pairwise, lowest merge rank first, until no ranked pair remains
//      (`ignore_merges`: a piece that is itself a token is taken whole).
// Decoding maps the code points back to bytes.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "byte_level_bpe.h"
#include "lowbit/core/error.h"
#include "lowbit/io/json_file.h"
#include "lowbit/io/tokenizer.h"

namespace lowbit {

namespace detail {

namespace {

using nlohmann::json;

void read_pre_tokenizer(const json& pre, ByteLevelBpeData& data, bool& byte_level_seen) {
  if (pre.is_null()) return;
  const std::string type = pre.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const json& step : pre.at("pretokenizers")) read_pre_tokenizer(step, data, byte_level_seen);
  } else if (type == "ByteLevel") {
    if (pre.value("add_prefix_space", false)) data.add_prefix_space = true;
    if (pre.value("use_regex", true)) data.pre_regexes.push_back(kGpt2Regex);
    byte_level_seen = true;
  } else if (type == "Digits") {
    data.pre_regexes.push_back(pre.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "Split") {
    const json& pattern = pre.at("pattern");
    if (!pattern.contains("Regex")) throw Error(data.where, "Split pre-tokenizer with a non-regex pattern is not supported");
    if (pre.value("behavior", "Isolated") != "Isolated" || pre.value("invert", false))
      throw Error(data.where, "Split pre-tokenizer behaviour other than Isolated is not supported");
    data.pre_regexes.push_back(pattern["Regex"].get<std::string>());
  } else {
    throw Error(data.where, "unsupported pre-tokenizer type \"" + type + "\"");
  }
}

void read_tokenizer_json(const json& root, ByteLevelBpeData& data) {
  const std::string& path = data.where;
  const json& model = root.at("model");
  if (model.at("type") != "BPE") throw Error(path, "model type " + model.at("type").dump() + " is not BPE");
  const json& vocab = model.at("vocab");
  const json& added_tokens = root.contains("added_tokens") ? root.at("added_tokens") : json::array();
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) max_id = std::max(max_id, it.value().get<int32_t>());
  for (const json& token : added_tokens) max_id = std::max(max_id, token.at("id").get<int32_t>());
  if (max_id < 0 || max_id > (1 << 24)) throw Error(path, "vocabulary ids out of range");
  data.tokens.assign(static_cast<size_t>(max_id) + 1, std::string());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = it.value().get<int32_t>();
    if (id < 0) throw Error(path, "negative id for token " + it.key());
    data.tokens[id] = it.key();
  }
  for (const json& merge : model.at("merges")) {
    if (merge.is_string()) {  // "a b" (older files)
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos) throw Error(path, "merge \"" + text + "\" has no space");
      data.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else {
      data.merges.emplace_back(merge.at(0).get<std::string>(), merge.at(1).get<std::string>());
    }
  }
  data.ignore_merges = model.value("ignore_merges", false);
  for (const json& token : added_tokens) {
    AddedToken added{token.at("id").get<int32_t>(), token.at("content").get<std::string>(), token.value("special", false)};
    if (added.id < 0) throw Error(path, "negative id for added token " + added.content);
    if (added.content.empty()) continue;
    data.tokens[added.id] = added.content;
    data.added.push_back(std::move(added));
  }
  data.pre_tokenizer_description = root.contains("pre_tokenizer") ? root["pre_tokenizer"].dump() : "null";
  bool byte_level_seen = false;
  if (root.contains("pre_tokenizer")) read_pre_tokenizer(root["pre_tokenizer"], data, byte_level_seen);
  data.byte_level = byte_level_seen;
  // BOS/EOS: the conventional names; SmolLM2 has <|im_start|>/<|im_end|> as 1/2 and adds no BOS.
  auto id_of = [&](const char* name) -> int32_t {
    for (const auto& token : data.added)
      if (token.content == name) return token.id;
    return -1;
  };
  data.bos_id = id_of("<|begin_of_text|>");
  if (data.bos_id < 0) data.bos_id = id_of("<s>");
  if (data.bos_id < 0) data.bos_id = id_of("<|im_start|>");
  data.eos_id = id_of("<|end_of_text|>");
  if (data.eos_id < 0) data.eos_id = id_of("</s>");
  if (data.eos_id < 0) data.eos_id = id_of("<|im_end|>");
  if (data.eos_id < 0) data.eos_id = id_of("<|endoftext|>");
  // A TemplateProcessing post-processor that starts with a special token means "add BOS"
  // (and names the BOS token).
  const json& post = root.contains("post_processor") ? root["post_processor"] : json();
  data.adds_bos = post.is_object() && post.value("type", "") == "TemplateProcessing" && post.contains("single") &&
                  !post["single"].empty() && post["single"][0].contains("SpecialToken");
  if (data.adds_bos) {
    const std::string name = post["single"][0]["SpecialToken"].value("id", "");
    if (post.contains("special_tokens") && post["special_tokens"].contains(name)) {
      const json& ids = post["special_tokens"][name].value("ids", json::array());
      if (ids.size() == 1 && ids[0].is_number_integer()) data.bos_id = ids[0].get<int32_t>();
    }
  }
}

}  // namespace

ByteLevelBpeData read_hf_tokenizer_json(const std::string& path) {
  const json root = read_json_file(path);
  ByteLevelBpeData data;
  data.where = path;
  data.kind = "tokenizer.json";
  data.added_order = AddedTokenOrder::kLeftmostLongest;
  try {
    read_tokenizer_json(root, data);
  } catch (const json::exception& e) {
    throw Error(path, std::string("unexpected tokenizer.json structure: ") + e.what());
  }
  return data;
}

}  // namespace detail

std::unique_ptr<Tokenizer> load_hf_bpe_tokenizer(const std::string& path) {
  return detail::make_byte_level_bpe_tokenizer(detail::read_hf_tokenizer_json(path));
}

}  // namespace lowbit
