// safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the
// data section. The JSON maps tensor names to {"dtype", "shape", "data_offsets":
// [begin, end]} (offsets relative to the data section) plus an optional
// "__metadata__" object of string values. https://github.com/huggingface/safetensors
//
// Reading maps the file and returns zero-copy tensor views; every field is validated
// before any byte is touched (see parse_safetensors_header). Writing goes through an
// AtomicFileWriter, so a failed or interrupted write leaves nothing behind.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/core/mapped_file.h"
#include "lowbit/core/tensor.h"

namespace lowbit {

// Header of one safetensors file, validated against the file size.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // byte offsets within the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t header_size = 0;  // N, the JSON length
  uint64_t data_start = 0;   // 8 + N
  std::vector<SafetensorsEntry> entries;  // in file order of their data (sorted by begin)
  std::map<std::string, std::string> metadata;
};

// Parses and validates the header of a safetensors file held in `file` (the whole
// file's bytes). Checks: at least 8 bytes; header length within the file; JSON
// well-formed and an object; each entry an object with a known dtype, a shape of
// non-negative integers whose byte size equals end - begin, offsets with
// begin <= end <= data size; entries non-overlapping; "__metadata__" an object of
// strings. Throws Error naming `where` and the offending tensor/field.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file, const std::string& where);

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint64_t file_size() const { return file_->size(); }
  const SafetensorsHeader& header() const { return header_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // Tensor names in data order.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  // Zero-copy view; throws Error when absent.
  Tensor tensor(const std::string& name) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes tensors (data contiguous, larger element sizes first, each tensor aligned to its
// element size, data section 8-byte aligned) and string metadata to
// `path` atomically. Throws Error on duplicate or empty names.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A checkpoint that may be sharded: `model.safetensors`, or
// `model.safetensors.index.json` whose "weight_map" names the shard of each tensor.
class SafetensorsCheckpoint {
 public:
  // `path` is a .safetensors file, an index .json, or a directory holding either.
  static SafetensorsCheckpoint open(const std::string& path);

  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  Tensor tensor(const std::string& name) const;
  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  uint64_t total_file_size() const;

 private:
  std::vector<SafetensorsFile> shards_;
  std::vector<std::string> names_;          // shard order, then data order
  std::map<std::string, size_t> where_;     // name -> shard
};

}  // namespace lowbit
