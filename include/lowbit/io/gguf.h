// GGUF, the file format of ggml / llama.cpp (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
//
// Layout (all little-endian):
//   magic "GGUF" | u32 version (1, 2 or 3) | tensor count | metadata count
//   metadata: count × (string key, u32 value type, value)
//   tensor infos: count × (string name, u32 n_dims, n_dims × dim, u32 ggml type, u64 offset)
//   padding to `general.alignment` (default 32), then the data section; each tensor's offset
//   is relative to the data section and a multiple of the alignment.
// Counts, dims and string lengths are u64 in versions 2 and 3 and u32 in version 1.
// Strings are a length followed by that many bytes (no terminator).
//
// Dims are in ggml order: dims[0] is the contiguous (row) length, so a PyTorch/HF matrix of
// shape [rows, cols] is stored with dims = {cols, rows}. `GgufTensorInfo::shape()` returns the
// row-major (HF) order.
//
// Reading maps the file and validates everything before any byte of data is used (see
// GgufFile::open). Writing goes through an AtomicFileWriter.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "lowbit/core/mapped_file.h"
#include "lowbit/core/tensor.h"
#include "lowbit/numerics/ggml_quants.h"

namespace lowbit {

enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType type);

// One metadata value. Scalars keep their exact type; arrays hold a homogeneous element
// type (`array_type`) and their elements as GgufValues (arrays may nest).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint32;
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> value;
  GgufValueType array_type = GgufValueType::kUint32;  // element type when type == kArray

  static GgufValue u32(uint32_t v) { return {GgufValueType::kUint32, uint64_t{v}}; }
  static GgufValue i32(int32_t v) { return {GgufValueType::kInt32, int64_t{v}}; }
  static GgufValue u64(uint64_t v) { return {GgufValueType::kUint64, v}; }
  static GgufValue f32(float v) { return {GgufValueType::kFloat32, double{v}}; }
  static GgufValue boolean(bool v) { return {GgufValueType::kBool, v}; }
  static GgufValue string(std::string v) { return {GgufValueType::kString, std::move(v)}; }
  static GgufValue array(GgufValueType element_type, std::vector<GgufValue> elements) {
    return {GgufValueType::kArray, std::move(elements), element_type};
  }
  static GgufValue strings(const std::vector<std::string>& v);
  static GgufValue floats(const std::vector<float>& v);
  static GgufValue int32s(const std::vector<int32_t>& v);

  bool is_integer() const;
  bool is_float() const { return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64; }
  // Typed access; throw Error(where: "key is TYPE, expected ...") on a mismatch.
  uint64_t as_uint(const std::string& where) const;  // any non-negative integer type
  int64_t as_int(const std::string& where) const;    // any integer type that fits
  double as_float(const std::string& where) const;   // float32/float64 (and integers)
  bool as_bool(const std::string& where) const;
  const std::string& as_string(const std::string& where) const;
  const std::vector<GgufValue>& as_array(const std::string& where) const;
  std::vector<std::string> as_strings(const std::string& where) const;
  std::vector<float> as_floats(const std::string& where) const;
  std::vector<int32_t> as_int32s(const std::string& where) const;
  // Short human-readable rendering (arrays abbreviated), for `inspect`.
  std::string to_display(size_t max_elements = 8) const;

  bool operator==(const GgufValue& other) const = default;
};

using GgufMetadata = std::vector<std::pair<std::string, GgufValue>>;  // file order

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the row length
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;         // relative to the data section
  uint64_t size_bytes = 0;     // rows × row bytes of `type`

  uint64_t element_count() const;
  Shape shape() const;  // row-major: reversed dims
};

class GgufFile {
 public:
  // Maps and validates: magic, version 1–3, counts and string lengths bounded by the
  // file size, known value types, array nesting depth ≤ 8, unique keys and tensor names,
  // at most 4 dims each ≥ 1 with no element-count overflow, known ggml type, row length
  // a multiple of the type's block size, `general.alignment` a power of two (when present
  // it must be a u32), offsets aligned, data inside the file, no two tensors overlapping.
  // Throws Error("<path>: <problem>").
  static GgufFile open(const std::string& path);
  // The same from bytes already in memory (fuzzing, tests); `keepalive` owns them.
  static GgufFile parse(std::span<const std::byte> bytes, const std::string& where,
                        std::shared_ptr<const void> keepalive = nullptr);

  const std::string& path() const { return where_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_start() const { return data_start_; }
  uint64_t file_size() const { return bytes_.size(); }
  const GgufMetadata& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  const GgufValue* find(const std::string& key) const;  // nullptr when absent
  const GgufValue& at(const std::string& key) const;     // Error naming the key when absent
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // The raw bytes of a tensor (zero-copy, inside the mapping).
  std::span<const std::byte> tensor_bytes(const GgufTensorInfo& info) const;
  // F32/F16/BF16 tensors as zero-copy views with the row-major shape; any block type
  // dequantized into an owning F32 tensor (bit-exact with ggml's dequantization).
  Tensor tensor_as_f32_or_view(const GgufTensorInfo& info) const;
  std::shared_ptr<const void> keepalive() const { return keepalive_; }

 private:
  std::string where_;
  std::span<const std::byte> bytes_;
  std::shared_ptr<const void> keepalive_;
  uint32_t version_ = 3;
  uint64_t alignment_ = 32;
  uint64_t data_start_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

// A tensor to write: its ggml type and its bytes in that type's layout (row-major, ggml
// dims order given by `dims`).
struct GgufTensorToWrite {
  std::string name;
  std::vector<uint64_t> dims;  // ggml order
  GgmlType type = GgmlType::kF32;
  std::span<const std::byte> data;  // must stay alive until write_gguf returns
};

// Writes a version-3 GGUF atomically: metadata in the given order (general.alignment, when
// present, must be a u32 power of two and is honoured), tensor infos in the given order,
// each tensor's data aligned. Throws Error naming `path` on duplicate names, size mismatch
// (data.size() != the type's bytes for dims), or an unaligned row length.
void write_gguf(const std::string& path, const GgufMetadata& metadata, const std::vector<GgufTensorToWrite>& tensors);

}  // namespace lowbit
