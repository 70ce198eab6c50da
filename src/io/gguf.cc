// GGUF reader and writer. The reader trusts nothing: every count and length is checked
// against the bytes that remain before anything is allocated or read, so a truncated or
// hostile file ends in one Error naming the file and the field (see gguf.h for the list).
#include "lowbit/io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>

#include "lowbit/core/atomic_file.h"
#include "lowbit/core/error.h"

namespace lowbit {

namespace {

constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 8;
constexpr size_t kMaxDims = 4;

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

// Smallest encoding of one value of `type` (used to bound counts by the remaining bytes).
uint64_t minimum_value_bytes(GgufValueType type, uint32_t version) {
  const uint64_t length_bytes = version == 1 ? 4 : 8;
  switch (type) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    case GgufValueType::kString: return length_bytes;
    case GgufValueType::kArray: return 4 + length_bytes;
  }
  return 1;
}

bool known_value_type(uint32_t raw) { return raw <= static_cast<uint32_t>(GgufValueType::kFloat64); }

// A bounds-checked little-endian reader over the file bytes.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& where) : bytes_(bytes), where_(where) {}

  uint64_t position() const { return position_; }
  uint64_t remaining() const { return bytes_.size() - position_; }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }
  // Counts and lengths: u32 in version 1, u64 later.
  uint64_t read_size(uint32_t version, const char* what) {
    return version == 1 ? read<uint32_t>(what) : read<uint64_t>(what);
  }
  std::string read_string(uint32_t version, const std::string& what) {
    const uint64_t length = read_size(version, what.c_str());
    if (length > remaining())
      fail(what + ": string length " + std::to_string(length) + " exceeds the " + std::to_string(remaining()) +
           " bytes left in the file");
    std::string text(reinterpret_cast<const char*>(bytes_.data() + position_), length);
    position_ += length;
    return text;
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(where_, message + " (at byte " + std::to_string(position_) + ")");
  }

 private:
  void need(uint64_t size, const char* what) const {
    if (size > remaining()) fail(std::string("file ends inside ") + what);
  }
  std::span<const std::byte> bytes_;
  const std::string& where_;
  uint64_t position_ = 0;
};

GgufValue read_value(Cursor& in, GgufValueType type, uint32_t version, const std::string& key, int depth) {
  GgufValue value;
  value.type = type;
  switch (type) {
    case GgufValueType::kUint8: value.value = uint64_t{in.read<uint8_t>(key.c_str())}; break;
    case GgufValueType::kInt8: value.value = int64_t{in.read<int8_t>(key.c_str())}; break;
    case GgufValueType::kUint16: value.value = uint64_t{in.read<uint16_t>(key.c_str())}; break;
    case GgufValueType::kInt16: value.value = int64_t{in.read<int16_t>(key.c_str())}; break;
    case GgufValueType::kUint32: value.value = uint64_t{in.read<uint32_t>(key.c_str())}; break;
    case GgufValueType::kInt32: value.value = int64_t{in.read<int32_t>(key.c_str())}; break;
    case GgufValueType::kUint64: value.value = in.read<uint64_t>(key.c_str()); break;
    case GgufValueType::kInt64: value.value = in.read<int64_t>(key.c_str()); break;
    case GgufValueType::kFloat32: value.value = double{in.read<float>(key.c_str())}; break;
    case GgufValueType::kFloat64: value.value = in.read<double>(key.c_str()); break;
    case GgufValueType::kBool: {
      const uint8_t byte = in.read<uint8_t>(key.c_str());
      if (byte > 1) in.fail("metadata '" + key + "': bool byte is " + std::to_string(byte) + ", expected 0 or 1");
      value.value = byte == 1;
      break;
    }
    case GgufValueType::kString: value.value = in.read_string(version, "metadata '" + key + "'"); break;
    case GgufValueType::kArray: {
      if (depth >= kMaxArrayDepth) in.fail("metadata '" + key + "': arrays nested deeper than 8");
      const uint32_t raw = in.read<uint32_t>(key.c_str());
      if (!known_value_type(raw))
        in.fail("metadata '" + key + "': unknown array element type " + std::to_string(raw));
      value.array_type = static_cast<GgufValueType>(raw);
      const uint64_t count = in.read_size(version, key.c_str());
      if (count > in.remaining() / minimum_value_bytes(value.array_type, version))
        in.fail("metadata '" + key + "': array of " + std::to_string(count) + " elements cannot fit in the " +
                std::to_string(in.remaining()) + " bytes left");
      std::vector<GgufValue> elements;
      elements.reserve(count);
      for (uint64_t i = 0; i < count; ++i) elements.push_back(read_value(in, value.array_type, version, key, depth + 1));
      value.value = std::move(elements);
      break;
    }
  }
  return value;
}

std::string type_name_of(const GgufValue& value) { return std::string(gguf_value_type_name(value.type)); }

}  // namespace

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "?";
}

// ---- GgufValue ----

GgufValue GgufValue::strings(const std::vector<std::string>& v) {
  std::vector<GgufValue> elements;
  elements.reserve(v.size());
  for (const auto& s : v) elements.push_back(string(s));
  return array(GgufValueType::kString, std::move(elements));
}
GgufValue GgufValue::floats(const std::vector<float>& v) {
  std::vector<GgufValue> elements;
  elements.reserve(v.size());
  for (float x : v) elements.push_back(f32(x));
  return array(GgufValueType::kFloat32, std::move(elements));
}
GgufValue GgufValue::int32s(const std::vector<int32_t>& v) {
  std::vector<GgufValue> elements;
  elements.reserve(v.size());
  for (int32_t x : v) elements.push_back(i32(x));
  return array(GgufValueType::kInt32, std::move(elements));
}

bool GgufValue::is_integer() const {
  return std::holds_alternative<uint64_t>(value) || std::holds_alternative<int64_t>(value);
}

uint64_t GgufValue::as_uint(const std::string& where) const {
  if (const auto* u = std::get_if<uint64_t>(&value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&value); i && *i >= 0) return static_cast<uint64_t>(*i);
  throw Error(where, "is " + type_name_of(*this) + (is_integer() ? " (negative)" : "") + ", expected a non-negative integer");
}
int64_t GgufValue::as_int(const std::string& where) const {
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&value); u && *u <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(*u);
  throw Error(where, "is " + type_name_of(*this) + ", expected an integer");
}
double GgufValue::as_float(const std::string& where) const {
  if (const auto* d = std::get_if<double>(&value)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&value)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  throw Error(where, "is " + type_name_of(*this) + ", expected a number");
}
bool GgufValue::as_bool(const std::string& where) const {
  if (const auto* b = std::get_if<bool>(&value)) return *b;
  throw Error(where, "is " + type_name_of(*this) + ", expected bool");
}
const std::string& GgufValue::as_string(const std::string& where) const {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  throw Error(where, "is " + type_name_of(*this) + ", expected string");
}
const std::vector<GgufValue>& GgufValue::as_array(const std::string& where) const {
  if (const auto* a = std::get_if<std::vector<GgufValue>>(&value)) return *a;
  throw Error(where, "is " + type_name_of(*this) + ", expected array");
}
std::vector<std::string> GgufValue::as_strings(const std::string& where) const {
  std::vector<std::string> out;
  for (const auto& element : as_array(where)) out.push_back(element.as_string(where + " element"));
  return out;
}
std::vector<float> GgufValue::as_floats(const std::string& where) const {
  std::vector<float> out;
  for (const auto& element : as_array(where)) out.push_back(static_cast<float>(element.as_float(where + " element")));
  return out;
}
std::vector<int32_t> GgufValue::as_int32s(const std::string& where) const {
  std::vector<int32_t> out;
  for (const auto& element : as_array(where)) {
    const int64_t v = element.as_int(where + " element");
    if (v < INT32_MIN || v > INT32_MAX) throw Error(where, "element " + std::to_string(v) + " outside int32");
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

std::string GgufValue::to_display(size_t max_elements) const {
  std::ostringstream out;
  if (const auto* u = std::get_if<uint64_t>(&value)) out << *u;
  else if (const auto* i = std::get_if<int64_t>(&value)) out << *i;
  else if (const auto* d = std::get_if<double>(&value)) out << *d;
  else if (const auto* b = std::get_if<bool>(&value)) out << (*b ? "true" : "false");
  else if (const auto* s = std::get_if<std::string>(&value)) {
    std::string shown = s->size() > 60 ? s->substr(0, 57) + "..." : *s;
    for (char& c : shown)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    out << '"' << shown << '"';
  } else if (const auto* a = std::get_if<std::vector<GgufValue>>(&value)) {
    out << "[" << gguf_value_type_name(array_type) << " × " << a->size();
    if (!a->empty()) out << ": ";
    for (size_t k = 0; k < a->size() && k < max_elements; ++k) out << (k ? ", " : "") << (*a)[k].to_display(max_elements);
    if (a->size() > max_elements) out << (max_elements ? ", …" : "…");
    out << "]";
  }
  return out.str();
}

// ---- tensor infos ----

uint64_t GgufTensorInfo::element_count() const {
  uint64_t count = 1;
  for (uint64_t d : dims) count *= d;  // validated against overflow on read
  return count;
}

Shape GgufTensorInfo::shape() const {
  Shape shape;
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) shape.push_back(static_cast<int64_t>(*it));
  return shape;
}

// ---- reader ----

GgufFile GgufFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  const auto bytes = mapped->bytes();
  return parse(bytes, path, std::shared_ptr<const void>(mapped, mapped.get()));
}

GgufFile GgufFile::parse(std::span<const std::byte> bytes, const std::string& where, std::shared_ptr<const void> keepalive) {
  GgufFile file;
  file.where_ = where;
  file.bytes_ = bytes;
  file.keepalive_ = std::move(keepalive);
  Cursor in(bytes, file.where_);

  if (bytes.size() < 4 || std::memcmp(bytes.data(), "GGUF", 4) != 0)
    throw Error(where, "not a GGUF file (the first 4 bytes are not \"GGUF\")");
  in.read<uint32_t>("magic");
  file.version_ = in.read<uint32_t>("version");
  if (file.version_ < 1 || file.version_ > 3)
    throw Error(where, "GGUF version " + std::to_string(file.version_) + " is not supported (expected 1, 2 or 3)");
  const uint32_t version = file.version_;
  const uint64_t tensor_count = in.read_size(version, "tensor count");
  const uint64_t metadata_count = in.read_size(version, "metadata count");
  // Each metadata entry needs at least a key length, a type and one byte; each tensor info a
  // name length, n_dims, one dim, type and offset.
  const uint64_t length_bytes = version == 1 ? 4 : 8;
  if (metadata_count > in.remaining() / (length_bytes + 4 + 1))
    in.fail("metadata count " + std::to_string(metadata_count) + " cannot fit in the file");
  if (tensor_count > in.remaining() / (length_bytes + 4 + length_bytes + 4 + 8))
    in.fail("tensor count " + std::to_string(tensor_count) + " cannot fit in the file");

  std::set<std::string> keys;
  for (uint64_t k = 0; k < metadata_count; ++k) {
    std::string key = in.read_string(version, "metadata key " + std::to_string(k));
    if (key.empty()) in.fail("metadata key " + std::to_string(k) + " is empty");
    if (!keys.insert(key).second) in.fail("metadata key '" + key + "' appears twice");
    const uint32_t raw = in.read<uint32_t>("metadata type");
    if (!known_value_type(raw)) in.fail("metadata '" + key + "': unknown value type " + std::to_string(raw));
    GgufValue value = read_value(in, static_cast<GgufValueType>(raw), version, key, 0);
    file.metadata_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* alignment = file.find("general.alignment")) {
    if (alignment->type != GgufValueType::kUint32)
      throw Error(where, "general.alignment is " + type_name_of(*alignment) + ", expected uint32");
    const uint64_t a = alignment->as_uint("general.alignment");
    if (a == 0 || !std::has_single_bit(a))
      throw Error(where, "general.alignment " + std::to_string(a) + " is not a power of two");
    file.alignment_ = a;
  } else {
    file.alignment_ = kDefaultAlignment;
  }

  std::set<std::string> names;
  for (uint64_t t = 0; t < tensor_count; ++t) {
    GgufTensorInfo info;
    info.name = in.read_string(version, "tensor name " + std::to_string(t));
    const std::string label = "tensor '" + info.name + "'";
    if (info.name.empty()) in.fail("tensor " + std::to_string(t) + " has an empty name");
    if (!names.insert(info.name).second) in.fail(label + " appears twice");
    const uint32_t n_dims = in.read<uint32_t>("tensor dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      in.fail(label + ": " + std::to_string(n_dims) + " dimensions, expected 1 to 4");
    unsigned __int128 elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = in.read_size(version, "tensor dim");
      if (dim == 0) in.fail(label + ": dimension " + std::to_string(d) + " is 0");
      elements *= dim;
      if (elements > static_cast<unsigned __int128>(INT64_MAX)) in.fail(label + ": element count overflows");
      info.dims.push_back(dim);
    }
    const uint32_t raw_type = in.read<uint32_t>("tensor type");
    const GgmlTypeTraits* traits = find_ggml_type(raw_type);
    if (!traits) in.fail(label + ": unknown ggml type " + std::to_string(raw_type));
    info.type = traits->type;
    if (info.dims[0] % traits->block_size != 0)
      in.fail(label + ": row length " + std::to_string(info.dims[0]) + " is not a multiple of " +
              std::string(traits->name) + "'s block size " + std::to_string(traits->block_size));
    const unsigned __int128 size =
        static_cast<unsigned __int128>(elements / traits->block_size) * traits->type_size;
    if (size > bytes.size()) in.fail(label + ": " + std::string(traits->name) + " data larger than the file");
    info.size_bytes = static_cast<uint64_t>(size);
    info.offset = in.read<uint64_t>("tensor offset");
    if (info.offset % file.alignment_ != 0)
      in.fail(label + ": offset " + std::to_string(info.offset) + " is not a multiple of the alignment " +
              std::to_string(file.alignment_));
    file.tensors_.push_back(std::move(info));
  }

  file.data_start_ = align_up(in.position(), file.alignment_);
  if (!file.tensors_.empty() && file.data_start_ > bytes.size())
    throw Error(where, "file ends before its data section (needs " + std::to_string(file.data_start_) + " bytes, has " +
                           std::to_string(bytes.size()) + ")");
  const uint64_t data_size = bytes.size() > file.data_start_ ? bytes.size() - file.data_start_ : 0;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& info : file.tensors_) {
    if (info.offset > data_size || info.size_bytes > data_size - info.offset)
      throw Error(where, "tensor '" + info.name + "': data [" + std::to_string(info.offset) + ", " +
                             (info.offset > UINT64_MAX - info.size_bytes ? std::string("beyond 2^64")
                                                                         : std::to_string(info.offset + info.size_bytes)) +
                             ") lies outside the " + std::to_string(data_size) + "-byte data section (truncated file?)");
    by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k - 1]->offset + by_offset[k - 1]->size_bytes > by_offset[k]->offset)
      throw Error(where, "tensors '" + by_offset[k - 1]->name + "' and '" + by_offset[k]->name + "' overlap");
  return file;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const auto& [name, value] : metadata_)
    if (name == key) return &value;
  return nullptr;
}

const GgufValue& GgufFile::at(const std::string& key) const {
  const GgufValue* value = find(key);
  if (!value) throw Error(where_, "metadata key '" + key + "' is missing");
  return *value;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const auto& info : tensors_)
    if (info.name == name) return &info;
  return nullptr;
}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& info) const {
  return bytes_.subspan(data_start_ + info.offset, info.size_bytes);
}

Tensor GgufFile::tensor_as_f32_or_view(const GgufTensorInfo& info) const {
  const auto data = tensor_bytes(info);
  const Shape shape = info.shape();
  auto view_as = [&](DType dtype) {
    // Views need element alignment; data offsets are multiples of the (power-of-two ≥ 1)
    // alignment, so check the absolute address rather than assume.
    if (reinterpret_cast<uintptr_t>(data.data()) % dtype_size(dtype) != 0)
      return Tensor::copy_of(dtype, shape, data.data(), data.size());
    return Tensor::borrowed(dtype, shape, data.data(), keepalive_);
  };
  switch (info.type) {
    case GgmlType::kF32: return view_as(DType::kF32);
    case GgmlType::kF16: return view_as(DType::kF16);
    case GgmlType::kBF16: return view_as(DType::kBF16);
    default: break;
  }
  if (!ggml_traits(info.type).can_dequantize)
    throw Error(where_, "tensor '" + info.name + "': ggml type " + std::string(ggml_traits(info.type).name) +
                            " cannot be dequantized by lowbit");
  Tensor out = Tensor::zeros(DType::kF32, shape);
  try {
    ggml_dequantize(info.type, data, out.mutable_values<float>());
  } catch (const Error& e) {
    throw e.with_context(where_ + ": tensor '" + info.name + "'");
  }
  return out;
}

// ---- writer ----

namespace {

class Buffer {
 public:
  template <typename T>
  void put(T value) {
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &value, sizeof(T));
  }
  void put_string(const std::string& text) {
    put<uint64_t>(text.size());
    bytes_.append(text);
  }
  // Integers must fit their declared width: a silently wrapped value would be a different file.
  template <typename T>
  static T checked(auto v, const std::string& where) {
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
      throw Error(where, std::to_string(v) + " does not fit its declared type");
    return static_cast<T>(v);
  }
  void put_value(const GgufValue& value, const std::string& where, int depth = 0) {
    switch (value.type) {
      case GgufValueType::kUint8: put<uint8_t>(checked<uint8_t>(value.as_uint(where), where)); break;
      case GgufValueType::kInt8: put<int8_t>(checked<int8_t>(value.as_int(where), where)); break;
      case GgufValueType::kUint16: put<uint16_t>(checked<uint16_t>(value.as_uint(where), where)); break;
      case GgufValueType::kInt16: put<int16_t>(checked<int16_t>(value.as_int(where), where)); break;
      case GgufValueType::kUint32: put<uint32_t>(checked<uint32_t>(value.as_uint(where), where)); break;
      case GgufValueType::kInt32: put<int32_t>(checked<int32_t>(value.as_int(where), where)); break;
      case GgufValueType::kUint64: put<uint64_t>(value.as_uint(where)); break;
      case GgufValueType::kInt64: put<int64_t>(value.as_int(where)); break;
      case GgufValueType::kFloat32: put<float>(static_cast<float>(value.as_float(where))); break;
      case GgufValueType::kFloat64: put<double>(value.as_float(where)); break;
      case GgufValueType::kBool: put<uint8_t>(value.as_bool(where) ? 1 : 0); break;
      case GgufValueType::kString: put_string(value.as_string(where)); break;
      case GgufValueType::kArray: {
        if (depth >= kMaxArrayDepth) throw Error(where, "arrays nested deeper than 8 (readers refuse them)");
        const auto& elements = value.as_array(where);
        put<uint32_t>(static_cast<uint32_t>(value.array_type));
        put<uint64_t>(elements.size());
        for (const auto& element : elements) {
          if (element.type != value.array_type)
            throw Error(where, "array element is " + type_name_of(element) + ", the array holds " +
                                   std::string(gguf_value_type_name(value.array_type)));
          put_value(element, where, depth + 1);
        }
        break;
      }
    }
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace

void write_gguf(const std::string& path, const GgufMetadata& metadata, const std::vector<GgufTensorToWrite>& tensors) {
  uint64_t alignment = kDefaultAlignment;
  std::set<std::string> keys;
  for (const auto& [key, value] : metadata) {
    if (key.empty()) throw Error(path, "empty metadata key");
    if (!keys.insert(key).second) throw Error(path, "metadata key '" + key + "' given twice");
    if (key == "general.alignment") {
      if (value.type != GgufValueType::kUint32 || value.as_uint(key) == 0 || !std::has_single_bit(value.as_uint(key)))
        throw Error(path, "general.alignment must be a uint32 power of two");
      alignment = value.as_uint(key);
    }
  }
  Buffer header;
  header.put<uint32_t>(0x46554747);  // "GGUF"
  header.put<uint32_t>(3);
  header.put<uint64_t>(tensors.size());
  header.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    header.put_string(key);
    header.put<uint32_t>(static_cast<uint32_t>(value.type));
    header.put_value(value, path + ": metadata '" + key + "'");
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const auto& tensor : tensors) {
    const std::string label = path + ": tensor '" + tensor.name + "'";
    if (tensor.name.empty()) throw Error(path, "tensor with an empty name");
    if (!names.insert(tensor.name).second) throw Error(label, "given twice");
    if (tensor.dims.empty() || tensor.dims.size() > kMaxDims) throw Error(label, "needs 1 to 4 dimensions");
    unsigned __int128 rows = 1;
    for (size_t d = 0; d < tensor.dims.size(); ++d) {
      if (tensor.dims[d] == 0) throw Error(label, "dimension " + std::to_string(d) + " is 0");
      if (d > 0) rows *= tensor.dims[d];
      if (rows > static_cast<unsigned __int128>(INT64_MAX)) throw Error(label, "element count overflows");
    }
    uint64_t row_bytes = 0;
    try {
      row_bytes = ggml_row_bytes(tensor.type, tensor.dims[0]);
    } catch (const Error& e) {
      throw e.with_context(label);
    }
    const uint64_t expected = row_bytes * static_cast<uint64_t>(rows);
    if (expected != tensor.data.size())
      throw Error(label, std::string(ggml_traits(tensor.type).name) + " data of " + std::to_string(tensor.data.size()) +
                             " bytes, expected " + std::to_string(expected));
    header.put_string(tensor.name);
    header.put<uint32_t>(static_cast<uint32_t>(tensor.dims.size()));
    for (uint64_t d : tensor.dims) header.put<uint64_t>(d);
    header.put<uint32_t>(static_cast<uint32_t>(tensor.type));
    header.put<uint64_t>(offset);
    offsets.push_back(offset);
    offset = align_up(offset + expected, alignment);
  }
  AtomicFileWriter out(path);
  out.write(header.bytes().data(), header.bytes().size());
  out.write_zeros(align_up(header.bytes().size(), alignment) - header.bytes().size());
  uint64_t written = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    out.write_zeros(offsets[k] - written);
    out.write(tensors[k].data.data(), tensors[k].data.size());
    written = offsets[k] + tensors[k].data.size();
  }
  out.write_zeros(offset - written);  // the data section ends aligned, as ggml writes it
  out.commit();
}

}  // namespace lowbit
