#include "lowbit/io/json_file.h"

#include <cstring>

#include "lowbit/core/error.h"
#include "lowbit/core/mapped_file.h"

namespace lowbit {

nlohmann::json parse_json_bytes(std::span<const std::byte> bytes, const std::string& where) {
  if (bytes.empty()) throw Error(where, "not well-formed JSON (empty file)");
  const char* text = reinterpret_cast<const char*>(bytes.data());
  if (const void* nul = std::memchr(text, 0, bytes.size()))
    throw Error(where, "not well-formed JSON (NUL byte at offset " + std::to_string(static_cast<const char*>(nul) - text) + ")");
  nlohmann::json value = nlohmann::json::parse(text, text + bytes.size(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) throw Error(where, "not well-formed JSON");
  return value;
}

nlohmann::json read_json_file(const std::string& path) {
  const auto file = MappedFile::open(path);
  return parse_json_bytes(file->bytes(), path);
}

}  // namespace lowbit
