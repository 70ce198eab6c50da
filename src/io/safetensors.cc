#include "lowbit/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "lowbit/core/atomic_file.h"
#include "lowbit/core/error.h"
#include "lowbit/io/json_file.h"

namespace lowbit {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Upper bound on the JSON header (the reference implementation uses 100 MB); it keeps a
// hostile length from making us parse an arbitrarily large blob.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

uint64_t read_u64_le(const std::byte* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint64_t>(p[i]);
  return value;
}

std::string quoted(const std::string& name) { return "tensor '" + name + "'"; }

// Names what was found where an integer was expected. Only numbers are printed: dump()
// recurses once per nesting level, so dumping a hostile [[[[...]]]] (millions deep within
// the header limit) would overflow the stack, and a dumped object could be megabytes long.
std::string describe(const json& value) { return value.is_number() ? value.dump() : value.type_name(); }

uint64_t json_u64(const json& value, const std::string& where, const std::string& what) {
  if (!value.is_number_unsigned())
    throw Error(where, what + " must be a non-negative integer, found " + describe(value));
  return value.get<uint64_t>();
}

SafetensorsEntry parse_entry(const std::string& name, const json& value, uint64_t data_size,
                             const std::string& where) {
  const std::string tensor = quoted(name);
  if (name.empty()) throw Error(where, "empty tensor name in header");
  if (!value.is_object()) throw Error(where, tensor + ": entry must be an object, found " + value.type_name());
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!value.contains(key)) throw Error(where, tensor + ": missing \"" + key + "\"");

  SafetensorsEntry entry;
  entry.name = name;
  const json& dtype = value["dtype"];
  if (!dtype.is_string()) throw Error(where, tensor + ": \"dtype\" must be a string");
  const auto parsed = parse_dtype(dtype.get<std::string>());
  if (!parsed) throw Error(where, tensor + ": unknown dtype \"" + dtype.get<std::string>() + "\"");
  entry.dtype = *parsed;

  const json& shape = value["shape"];
  if (!shape.is_array()) throw Error(where, tensor + ": \"shape\" must be an array");
  for (const json& dim : shape) {
    const uint64_t d = json_u64(dim, where, tensor + ": shape dimension");
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw Error(where, tensor + ": shape dimension " + std::to_string(d) + " too large");
    entry.shape.push_back(static_cast<int64_t>(d));
  }

  const json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    throw Error(where, tensor + ": \"data_offsets\" must be [begin, end]");
  entry.begin = json_u64(offsets[0], where, tensor + ": data_offsets[0]");
  entry.end = json_u64(offsets[1], where, tensor + ": data_offsets[1]");
  if (entry.begin > entry.end)
    throw Error(where, tensor + ": data_offsets [" + std::to_string(entry.begin) + ", " +
                           std::to_string(entry.end) + "] are reversed");
  if (entry.end > data_size)
    throw Error(where, tensor + ": data_offsets end " + std::to_string(entry.end) +
                           " is past the data section (" + std::to_string(data_size) + " bytes)");

  int64_t numel = 0;
  try {
    numel = shape_numel(entry.shape);
  } catch (const Error& e) {
    throw Error(where, tensor + ": " + e.what());
  }
  const uint64_t element_size = dtype_size(entry.dtype);
  if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / element_size)
    throw Error(where, tensor + ": byte size of shape " + shape_to_string(entry.shape) + " overflows");
  const uint64_t expected = static_cast<uint64_t>(numel) * element_size;
  if (expected != entry.end - entry.begin)
    throw Error(where, tensor + ": shape " + shape_to_string(entry.shape) + " x " +
                           std::string(dtype_name(entry.dtype)) + " needs " + std::to_string(expected) +
                           " bytes, data_offsets span " + std::to_string(entry.end - entry.begin));
  return entry;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file, const std::string& where) {
  if (file.size() < 8)
    throw Error(where, "truncated: " + std::to_string(file.size()) + " bytes, a safetensors file starts with an 8-byte header length");
  SafetensorsHeader header;
  header.header_size = read_u64_le(file.data());
  if (header.header_size > file.size() - 8)
    throw Error(where, "header length " + std::to_string(header.header_size) + " runs past the end of the file (" +
                           std::to_string(file.size()) + " bytes)");
  if (header.header_size > kMaxHeaderSize)
    throw Error(where, "header length " + std::to_string(header.header_size) + " exceeds the 100 MB limit");
  header.data_start = 8 + header.header_size;
  const uint64_t data_size = file.size() - header.data_start;

  const char* text = reinterpret_cast<const char*>(file.data() + 8);
  // nlohmann's lexer takes a NUL byte for the end of input and ignores everything after
  // it, so "{...}\0garbage" would parse. Valid JSON never contains a raw NUL (control
  // characters in strings must be escaped) and the format pads only with spaces.
  if (const void* nul = std::memchr(text, 0, header.header_size))
    throw Error(where, "header is not well-formed JSON (NUL byte at header offset " +
                           std::to_string(static_cast<const char*>(nul) - text) + ")");
  json root = json::parse(text, text + header.header_size, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) throw Error(where, "header is not well-formed JSON");
  if (!root.is_object()) throw Error(where, std::string("header must be a JSON object, found ") + root.type_name());

  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) throw Error(where, "\"__metadata__\" must be an object of strings");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string())
          throw Error(where, "\"__metadata__\" value of \"" + m.key() + "\" must be a string, found " + m.value().type_name());
        header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    header.entries.push_back(parse_entry(it.key(), it.value(), data_size, where));
  }

  std::stable_sort(header.entries.begin(), header.entries.end(),
                   [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  for (size_t i = 1; i < header.entries.size(); ++i) {
    const auto& previous = header.entries[i - 1];
    const auto& current = header.entries[i];
    if (current.begin < previous.end)
      throw Error(where, quoted(current.name) + ": data_offsets [" + std::to_string(current.begin) + ", " +
                             std::to_string(current.end) + "] overlap " + quoted(previous.name) + " [" +
                             std::to_string(previous.begin) + ", " + std::to_string(previous.end) + "]");
  }
  return header;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile result;
  result.file_ = MappedFile::open(path);
  result.header_ = parse_safetensors_header(result.file_->bytes(), path);
  for (size_t i = 0; i < result.header_.entries.size(); ++i) result.index_[result.header_.entries[i].name] = i;
  return result;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> names;
  names.reserve(header_.entries.size());
  for (const auto& entry : header_.entries) names.push_back(entry.name);
  return names;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) != 0; }

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) throw Error(path(), "no tensor named '" + name + "'");
  const SafetensorsEntry& entry = header_.entries[it->second];
  const std::byte* data = file_->data() + header_.data_start + entry.begin;
  // Files from other writers may place a tensor at an offset that is not a multiple of its
  // element size; typed access through a misaligned pointer is undefined behaviour, so such
  // a tensor is copied into aligned memory instead of viewed in place.
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(entry.dtype) != 0)
    return Tensor::copy_of(entry.dtype, entry.shape, data, entry.end - entry.begin);
  return Tensor::borrowed(entry.dtype, entry.shape, data, file_);
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Data blocks are contiguous (no gaps: the reference reader rejects a data section
  // that its tensors do not cover exactly) and ordered by element size, largest first,
  // keeping the caller's order among equal sizes. With the JSON header padded with
  // spaces to a multiple of 8, every tensor then starts at a multiple of its element
  // size, so readers can view f64/i64/f32 data in place. This is the reference
  // writer's layout rule.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t cursor = 0;
  for (size_t i : order) {
    const auto& [name, tensor] = tensors[i];
    if (name.empty()) throw Error(path, "cannot write a tensor with an empty name");
    if (name == "__metadata__") throw Error(path, "\"__metadata__\" is reserved and cannot name a tensor");
    if (header.contains(name)) throw Error(path, "duplicate tensor name '" + name + "'");
    header[name] = {{"dtype", dtype_name(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {cursor, cursor + tensor.nbytes()}}};
    cursor += tensor.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicFileWriter writer(path);
  const uint64_t length = text.size();
  std::byte prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<std::byte>(length >> (8 * i));
  writer.write(prefix, sizeof prefix);
  writer.write(text.data(), text.size());
  for (size_t i : order) {
    const Tensor& tensor = tensors[i].second;
    if (tensor.nbytes()) writer.write(tensor.data(), tensor.nbytes());
  }
  writer.commit();
}

// ---------------------------------------------------------------------------------
// Sharded checkpoints

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& path) {
  fs::path target(path);
  if (fs::is_directory(target)) {
    if (fs::exists(target / "model.safetensors.index.json")) {
      target /= "model.safetensors.index.json";
    } else if (fs::exists(target / "model.safetensors")) {
      target /= "model.safetensors";
    } else {
      std::vector<fs::path> found;
      for (const auto& item : fs::directory_iterator(target))
        if (item.path().extension() == ".safetensors") found.push_back(item.path());
      if (found.size() != 1)
        throw Error(path, found.empty() ? "no .safetensors file in this folder"
                                        : "several .safetensors files and no model.safetensors.index.json");
      target = found.front();
    }
  }

  SafetensorsCheckpoint checkpoint;
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> expected_shard;  // tensor -> shard file, from the index
  if (target.extension() == ".json") {
    const std::string where = target.string();
    json index = read_json_file(where);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw Error(where, "expected an object with a \"weight_map\" object");
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error(where, "weight_map entry '" + it.key() + "' must be a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        throw Error(where, "weight_map entry '" + it.key() + "' names an invalid shard \"" + shard + "\"");
      expected_shard[it.key()] = shard;
      if (std::find(shard_names.begin(), shard_names.end(), shard) == shard_names.end()) shard_names.push_back(shard);
    }
    if (expected_shard.empty()) throw Error(where, "\"weight_map\" lists no tensors");
    std::sort(shard_names.begin(), shard_names.end());
    for (const auto& shard : shard_names) {
      const fs::path shard_path = target.parent_path() / shard;
      if (!fs::exists(shard_path)) throw Error(where, "missing shard " + shard_path.string());
      checkpoint.shards_.push_back(SafetensorsFile::open(shard_path.string()));
    }
  } else {
    checkpoint.shards_.push_back(SafetensorsFile::open(target.string()));
  }

  for (size_t s = 0; s < checkpoint.shards_.size(); ++s) {
    const auto& shard = checkpoint.shards_[s];
    for (const auto& name : shard.names()) {
      if (checkpoint.where_.count(name))
        throw Error(shard.path(), "tensor '" + name + "' also appears in " + checkpoint.shards_[checkpoint.where_[name]].path());
      if (!expected_shard.empty()) {
        const auto it = expected_shard.find(name);
        if (it == expected_shard.end()) throw Error(shard.path(), "tensor '" + name + "' is not in the index's weight_map");
        if (fs::path(shard.path()).filename() != it->second)
          throw Error(shard.path(), "tensor '" + name + "' is mapped to " + it->second + " by the index");
      }
      checkpoint.where_[name] = s;
      checkpoint.names_.push_back(name);
    }
  }
  for (const auto& [name, shard] : expected_shard)
    if (!checkpoint.where_.count(name))
      throw Error(target.parent_path() / shard, "tensor '" + name + "' listed in the index is missing from this shard");
  return checkpoint;
}

Tensor SafetensorsCheckpoint::tensor(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) throw Error("checkpoint", "no tensor named '" + name + "'");
  return shards_[it->second].tensor(name);
}

uint64_t SafetensorsCheckpoint::total_file_size() const {
  uint64_t total = 0;
  for (const auto& shard : shards_) total += shard.file_size();
  return total;
}

}  // namespace lowbit
