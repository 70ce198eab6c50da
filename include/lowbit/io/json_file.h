// Reading a JSON file (config.json, model.safetensors.index.json, tokenizer.json) with
// lowbit's error rules: one Error naming the file when it is missing or not well-formed.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>

namespace lowbit {

// Parses `bytes` as JSON; Error(where, ...) when not well-formed. A raw NUL byte is refused
// explicitly: nlohmann's lexer would take it for the end of input and ignore what follows.
nlohmann::json parse_json_bytes(std::span<const std::byte> bytes, const std::string& where);
nlohmann::json read_json_file(const std::string& path);

}  // namespace lowbit
