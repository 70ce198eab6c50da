// Tests for the GGUF reader/writer (include/lowbit/io/gguf.h).
//
// What matters about this format for lowbit: llama.cpp's quantized models arrive in it and
// the reader maps them and hands out zero-copy byte spans, so (1) the reader must agree
// with the spec (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), which we check
// on files built here byte by byte (versions 1, 2 and 3), not only on our writer's output;
// (2) a write/read round trip keeps every metadata value, its type and order, and every
// tensor byte, with the data aligned; (3) any malformed file, including every truncation of
// a valid one, becomes one lowbit::Error naming the file and the problem before a data byte
// is used; (4) the real files in ../shared open with the values llama.cpp's tools report.
#include "lowbit/io/gguf.h"

#include <gtest/gtest.h>

#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.h"
#include "testing/shared_data.h"

namespace lowbit {

// gtest prints mismatching values with this (found by ADL) instead of raw bytes; static
// so that another test file may define its own.
static void PrintTo(const GgufValue& value, std::ostream* out) {
  *out << gguf_value_type_name(value.type) << ' ' << value.to_display(4)
       << " (array_type " << static_cast<uint32_t>(value.array_type) << ')';
}

namespace {

using testing::contains;
using testing::error_from;
using testing::read_all;
using testing::write_raw;
using VT = GgufValueType;

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "the hand-built files below assume a little-endian host");

// ---------------------------------------------------------------------------------
// Helpers: building GGUF bytes by hand

template <typename T>
std::string le(T value) {
  std::string bytes(sizeof(T), '\0');
  std::memcpy(bytes.data(), &value, sizeof(T));
  return bytes;
}

// "47 47 55 46" → the bytes 0x47 0x47 0x55 0x46 (whitespace ignored).
std::string hex(std::string_view text) {
  std::string out;
  int high = -1;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const int nibble = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    EXPECT_TRUE(nibble >= 0 && nibble < 16) << "bad hex digit '" << c << "'";
    if (high < 0) {
      high = nibble;
    } else {
      out.push_back(static_cast<char>(high * 16 + nibble));
      high = -1;
    }
  }
  EXPECT_EQ(high, -1) << "odd number of hex digits";
  return out;
}

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

// Encodes the fields of one GGUF version. Counts, string lengths, array lengths and dims are
// u32 in version 1 and u64 later; value types, n_dims and ggml types are u32 and offsets u64
// in every version.
struct Enc {
  uint32_t version = 3;

  std::string n(uint64_t value) const {
    return version == 1 ? le<uint32_t>(static_cast<uint32_t>(value)) : le<uint64_t>(value);
  }
  std::string str(std::string_view text) const { return n(text.size()) + std::string(text); }
  std::string header(uint64_t tensor_count, uint64_t metadata_count) const {
    return "GGUF" + le<uint32_t>(version) + n(tensor_count) + n(metadata_count);
  }
  // One metadata entry; `payload` is the encoded value.
  std::string kv(std::string_view key, uint32_t type, const std::string& payload) const {
    return str(key) + le<uint32_t>(type) + payload;
  }
  std::string kv(std::string_view key, VT type, const std::string& payload) const {
    return kv(key, static_cast<uint32_t>(type), payload);
  }
  // An array value's payload: element type, count, the encoded elements.
  std::string array(uint32_t element_type, uint64_t count, const std::string& elements) const {
    return le<uint32_t>(element_type) + n(count) + elements;
  }
  std::string array(VT element_type, uint64_t count, const std::string& elements) const {
    return array(static_cast<uint32_t>(element_type), count, elements);
  }
  std::string tensor(std::string_view name, const std::vector<uint64_t>& dims, uint32_t ggml_type,
                     uint64_t offset) const {
    std::string out = str(name) + le<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) out += n(d);
    return out + le<uint32_t>(ggml_type) + le<uint64_t>(offset);
  }
  std::string tensor(std::string_view name, const std::vector<uint64_t>& dims, GgmlType type, uint64_t offset) const {
    return tensor(name, dims, static_cast<uint32_t>(type), offset);
  }
  // A whole file: the counts are those of the lists; with tensors or data the header is
  // zero-padded to `alignment` and `data_size` pattern bytes follow.
  std::string file(const std::vector<std::string>& kvs, const std::vector<std::string>& tensors = {},
                   size_t data_size = 0, uint64_t alignment = 32) const {
    std::string out = header(tensors.size(), kvs.size());
    for (const auto& entry : kvs) out += entry;
    for (const auto& info : tensors) out += info;
    if (!tensors.empty() || data_size > 0) out.resize(align_up(out.size(), alignment), '\0');
    for (size_t i = 0; i < data_size; ++i) out.push_back(static_cast<char>(i * 7 + 1));
    return out;
  }
};

// Nested array payloads: `levels` arrays one inside the other, the innermost an empty u8 array.
std::string nested_array_payload(const Enc& e, int levels) {
  if (levels == 1) return e.array(VT::kUint8, 0, "");
  return e.array(VT::kArray, 1, nested_array_payload(e, levels - 1));
}

GgufValue nested_array_value(int levels) {
  if (levels == 1) return GgufValue::array(VT::kUint8, {});
  return GgufValue::array(VT::kArray, {nested_array_value(levels - 1)});
}

std::span<const std::byte> bytes_of(const std::string& text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

// Parses `bytes` from an exactly-sized heap copy (so AddressSanitizer sees any read past
// the end, which a page-granular mapping would hide).
GgufFile parse_copy(const std::string& bytes, const std::string& where) {
  const auto* begin = reinterpret_cast<const std::byte*>(bytes.data());
  auto copy = std::make_shared<std::vector<std::byte>>(begin, begin + bytes.size());
  return GgufFile::parse(*copy, where, copy);
}

// Writes `bytes` to a fresh file, opens it, and checks that the Error names the file
// (as the "<path>: " prefix the CLI prints) and contains `phrase`; then the same through
// parse() on an exact-size copy.
void expect_open_error(const std::string& bytes, const std::string& phrase) {
  const std::string path = testing::temp_dir() + "/bad.gguf";
  write_raw(path, bytes);
  const std::string message = error_from([&] { GgufFile::open(path); });
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << message;
  EXPECT_TRUE(contains(message, phrase)) << "expected \"" << phrase << "\" in: " << message;
  const std::string parsed = error_from([&] { parse_copy(bytes, "in-memory"); });
  EXPECT_EQ(parsed.rfind("in-memory: ", 0), 0u) << parsed;
  EXPECT_TRUE(contains(parsed, phrase)) << "expected \"" << phrase << "\" in: " << parsed;
}

std::vector<std::byte> random_bytes(size_t size, std::mt19937_64& rng) {
  std::vector<std::byte> bytes(size);
  for (auto& b : bytes) b = static_cast<std::byte>(rng());
  return bytes;
}

bool folder_is_empty(const std::string& dir) { return fs::is_empty(dir); }

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Bytes per block for the types used here, straight from ggml's block structs (so the
// expectations do not come from the code under test).
uint64_t expected_bytes(GgmlType type, const std::vector<uint64_t>& dims) {
  uint64_t elements = 1;
  for (uint64_t d : dims) elements *= d;
  switch (type) {
    case GgmlType::kF32: return elements * 4;
    case GgmlType::kF16: case GgmlType::kBF16: return elements * 2;
    case GgmlType::kQ8_0: return elements / 32 * 34;  // f16 d + 32 × int8
    case GgmlType::kQ4_0: return elements / 32 * 18;  // f16 d + 16 bytes of nibbles
    case GgmlType::kQ4_1: return elements / 32 * 20;  // f16 d, f16 m + 16 bytes of nibbles
    default: ADD_FAILURE() << "no expected size for ggml type " << static_cast<uint32_t>(type); return 0;
  }
}

// ---------------------------------------------------------------------------------
// Round trip

// Every value type, edge values of each, strings that are empty / non-ASCII / hold a NUL,
// arrays of numbers, bools and strings, arrays of arrays of different element types, empty
// arrays. Scalars without a factory are written as aggregates.
GgufMetadata every_value_type() {
  return {
      {"general.architecture", GgufValue::string("llama")},
      {"t.u8", {VT::kUint8, uint64_t{255}}},
      {"t.i8", {VT::kInt8, int64_t{-128}}},
      {"t.u16", {VT::kUint16, uint64_t{65535}}},
      {"t.i16", {VT::kInt16, int64_t{-32768}}},
      {"t.u32", GgufValue::u32(4000000000u)},
      {"t.i32", GgufValue::i32(std::numeric_limits<int32_t>::min())},
      {"t.u64", GgufValue::u64(std::numeric_limits<uint64_t>::max())},
      {"t.i64", {VT::kInt64, std::numeric_limits<int64_t>::min()}},
      {"t.f32", GgufValue::f32(0.1f)},
      {"t.f32.denormal", GgufValue::f32(std::numeric_limits<float>::denorm_min())},
      {"t.f32.inf", GgufValue::f32(-std::numeric_limits<float>::infinity())},
      {"t.f64", {VT::kFloat64, 0.1}},
      {"t.f64.max", {VT::kFloat64, std::numeric_limits<double>::max()}},
      {"t.true", GgufValue::boolean(true)},
      {"t.false", GgufValue::boolean(false)},
      {"t.string.empty", GgufValue::string("")},
      {"t.string.utf8", GgufValue::string("h\u00e9llo w\u00f6rld \u2014 \u65e5\u672c\u8a9e \U0001F642")},
      {"t.string.nul", GgufValue::string(std::string("nul\0inside\nand\ttabs\0", 20))},
      {"t.ints", GgufValue::int32s({-1, 0, 1, std::numeric_limits<int32_t>::max()})},
      {"t.floats", GgufValue::floats({1.5f, -2.25f, 1e-30f})},
      {"t.strings", GgufValue::strings({"a", "", "\u00fc\u00df", std::string(300, 'x')})},
      {"t.u64s", GgufValue::array(VT::kUint64, {GgufValue::u64(0), GgufValue::u64(~uint64_t{0})})},
      {"t.i8s", GgufValue::array(VT::kInt8, {{VT::kInt8, int64_t{-1}}, {VT::kInt8, int64_t{127}}})},
      {"t.u16s", GgufValue::array(VT::kUint16, {{VT::kUint16, uint64_t{7}}})},
      {"t.i16s", GgufValue::array(VT::kInt16, {{VT::kInt16, int64_t{-7}}})},
      {"t.u8s", GgufValue::array(VT::kUint8, {{VT::kUint8, uint64_t{0}}, {VT::kUint8, uint64_t{200}}})},
      {"t.i64s", GgufValue::array(VT::kInt64, {{VT::kInt64, int64_t{-5}}})},
      {"t.u32s", GgufValue::array(VT::kUint32, {GgufValue::u32(1), GgufValue::u32(2)})},
      {"t.f64s", GgufValue::array(VT::kFloat64, {{VT::kFloat64, -0.5}, {VT::kFloat64, 1e300}})},
      {"t.bools", GgufValue::array(VT::kBool, {GgufValue::boolean(false), GgufValue::boolean(true)})},
      {"t.empty", GgufValue::array(VT::kInt32, {})},
      {"t.empty.strings", GgufValue::strings({})},
      {"t.nested", GgufValue::array(VT::kArray, {GgufValue::int32s({1, 2, 3}), GgufValue::strings({"x"}),
                                                 GgufValue::array(VT::kArray, {GgufValue::floats({0.5f})}),
                                                 GgufValue::array(VT::kUint8, {}), GgufValue::strings({})})},
      {"t.nested.8", nested_array_value(8)},  // the deepest the reader accepts
  };
}

struct RoundTripTensors {
  std::vector<std::vector<std::byte>> storage;
  std::vector<GgufTensorToWrite> tensors;
};

// F32/F16/BF16 and Q8_0/Q4_0/Q4_1 tensors of 1 to 4 dims, arbitrary bytes of the right size
// (NaN patterns included, which must survive bit for bit); sizes chosen so that most
// tensors need padding after them.
RoundTripTensors round_trip_tensors() {
  std::mt19937_64 rng(20250101);
  const std::vector<std::tuple<std::string, GgmlType, std::vector<uint64_t>>> specs = {
      {"f32.1d", GgmlType::kF32, {5}},
      {"f16.2d", GgmlType::kF16, {3, 2}},
      {"bf16.3d", GgmlType::kBF16, {2, 2, 3}},
      {"q8_0.2d", GgmlType::kQ8_0, {64, 3}},
      {"q4_0.4d", GgmlType::kQ4_0, {32, 1, 2, 3}},
      {"q4_1.1d", GgmlType::kQ4_1, {96}},
      {"blk.0.attn_q.weight \u00e9", GgmlType::kF32, {1, 1, 1, 1}},
  };
  RoundTripTensors out;
  out.storage.reserve(specs.size());
  for (const auto& [name, type, dims] : specs) {
    out.storage.push_back(random_bytes(expected_bytes(type, dims), rng));
    out.tensors.push_back({name, dims, type, out.storage.back()});
  }
  return out;
}

void check_round_trip(const GgufMetadata& metadata, uint64_t alignment) {
  const RoundTripTensors input = round_trip_tensors();
  const std::string path = testing::temp_dir() + "/round.gguf";
  write_gguf(path, metadata, input.tensors);
  const GgufFile file = GgufFile::open(path);

  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), alignment);
  EXPECT_EQ(file.data_start() % alignment, 0u) << file.data_start();

  // Metadata: same keys in the same order, each value equal (type, value, element type).
  ASSERT_EQ(file.metadata().size(), metadata.size());
  for (size_t k = 0; k < metadata.size(); ++k) {
    EXPECT_EQ(file.metadata()[k].first, metadata[k].first) << "entry " << k;
    EXPECT_EQ(file.metadata()[k].second, metadata[k].second) << "key " << metadata[k].first;
  }
  EXPECT_TRUE(file.metadata() == metadata);

  // Tensors: infos in order, data bit-identical, offsets aligned and packed as ggml packs
  // them (each at the next aligned offset after the previous one), the file ends aligned.
  ASSERT_EQ(file.tensors().size(), input.tensors.size());
  uint64_t expected_offset = 0;
  for (size_t t = 0; t < input.tensors.size(); ++t) {
    const GgufTensorToWrite& want = input.tensors[t];
    const GgufTensorInfo& got = file.tensors()[t];
    SCOPED_TRACE(want.name);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.dims, want.dims);
    EXPECT_EQ(got.type, want.type);
    EXPECT_EQ(got.size_bytes, want.data.size());
    EXPECT_EQ(got.offset % alignment, 0u);
    EXPECT_EQ(got.offset, expected_offset);
    expected_offset = align_up(got.offset + got.size_bytes, alignment);
    Shape shape(want.dims.rbegin(), want.dims.rend());
    EXPECT_EQ(got.shape(), shape);
    EXPECT_TRUE(same_bytes(file.tensor_bytes(got), want.data));
    EXPECT_EQ(file.find_tensor(want.name), &got);
  }
  EXPECT_EQ(file.file_size(), file.data_start() + expected_offset);
  EXPECT_EQ(file.file_size(), fs::file_size(path));

  // Everything read back writes the same bytes again.
  std::vector<GgufTensorToWrite> again;
  for (const auto& info : file.tensors()) again.push_back({info.name, info.dims, info.type, file.tensor_bytes(info)});
  const std::string path2 = testing::temp_dir() + "/again.gguf";
  write_gguf(path2, file.metadata(), again);
  EXPECT_TRUE(read_all(path2) == read_all(path)) << "rewriting what was read changed the file";
}

TEST(GgufRoundTrip, EveryValueTypeDefaultAlignment) { check_round_trip(every_value_type(), 32); }

TEST(GgufRoundTrip, EveryValueTypeAlignment64) {
  GgufMetadata metadata = every_value_type();
  // Not the first key: the reader must find it anywhere.
  metadata.insert(metadata.begin() + 3, {"general.alignment", GgufValue::u32(64)});
  check_round_trip(metadata, 64);
}

TEST(GgufRoundTrip, AlignmentOneAndNoTensorsNoMetadata) {
  const std::string dir = testing::temp_dir();
  write_gguf(dir + "/empty.gguf", {}, {});
  const GgufFile empty = GgufFile::open(dir + "/empty.gguf");
  // Like ggml, the writer pads the header to the alignment even without tensors.
  EXPECT_EQ(read_all(dir + "/empty.gguf"), hex("47475546 03000000 0000000000000000 0000000000000000") + std::string(8, '\0'));
  EXPECT_TRUE(empty.metadata().empty());
  EXPECT_TRUE(empty.tensors().empty());
  EXPECT_EQ(empty.alignment(), 32u);

  // Alignment 1: tensors packed back to back, no padding anywhere.
  const std::vector<std::byte> a(6), b(4);
  write_gguf(dir + "/packed.gguf", {{"general.alignment", GgufValue::u32(1)}},
             {{"a", {3}, GgmlType::kF16, a}, {"b", {1}, GgmlType::kF32, b}});
  const GgufFile packed = GgufFile::open(dir + "/packed.gguf");
  EXPECT_EQ(packed.alignment(), 1u);
  ASSERT_EQ(packed.tensors().size(), 2u);
  EXPECT_EQ(packed.tensors()[1].offset, 6u);
  EXPECT_EQ(packed.file_size(), packed.data_start() + 10);
}

// ---------------------------------------------------------------------------------
// Hand-built files: the reader against the spec

// A version-3 file written out byte by byte from the spec: two metadata entries, one
// 2×3 F32 tensor, the data section aligned to 32 and padded at the end as ggml does.
std::string spec_example_v3() {
  return hex("47 47 55 46"                // magic "GGUF"
             "03 00 00 00"                // version 3
             "01 00 00 00 00 00 00 00"    // tensor count (u64)
             "02 00 00 00 00 00 00 00"    // metadata count (u64)
             "14 00 00 00 00 00 00 00") +  // key length 20
         "general.architecture" +
         hex("08 00 00 00"                // value type 8 = string
             "05 00 00 00 00 00 00 00") +  // string length 5
         "llama" +
         hex("06 00 00 00 00 00 00 00") + "answer" +
         hex("04 00 00 00"                // value type 4 = uint32
             "2a 00 00 00"                // 42
             "01 00 00 00 00 00 00 00") +  // name length 1
         "w" +
         hex("02 00 00 00"                // n_dims 2
             "03 00 00 00 00 00 00 00"    // ne[0] = 3 (row length)
             "02 00 00 00 00 00 00 00"    // ne[1] = 2 (rows)
             "00 00 00 00"                // ggml type 0 = F32
             "00 00 00 00 00 00 00 00"    // offset 0
             // 132 bytes so far: zero padding to 160
             "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
             // data: 1, 2, 3, 4, 5, 6 as f32
             "00 00 80 3f 00 00 00 40 00 00 40 40 00 00 80 40 00 00 a0 40 00 00 c0 40"
             // padding of the data section to 32 bytes
             "00 00 00 00 00 00 00 00");
}

TEST(GgufRead, SpecExampleVersion3) {
  const std::string bytes = spec_example_v3();
  ASSERT_EQ(bytes.size(), 192u);
  const std::string path = testing::temp_dir() + "/spec3.gguf";
  write_raw(path, bytes);
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.data_start(), 160u);
  EXPECT_EQ(file.file_size(), 192u);
  ASSERT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata()[0].first, "general.architecture");
  EXPECT_EQ(file.metadata()[0].second.type, VT::kString);
  EXPECT_EQ(file.metadata()[0].second.as_string("k"), "llama");
  EXPECT_EQ(file.metadata()[1].first, "answer");
  EXPECT_EQ(file.metadata()[1].second.type, VT::kUint32);
  EXPECT_EQ(file.at("answer").as_uint("answer"), 42u);
  EXPECT_EQ(file.find("nope"), nullptr);
  ASSERT_EQ(file.tensors().size(), 1u);
  const GgufTensorInfo& w = file.tensors()[0];
  EXPECT_EQ(w.name, "w");
  EXPECT_EQ(w.dims, (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(w.type, GgmlType::kF32);
  EXPECT_EQ(w.offset, 0u);
  EXPECT_EQ(w.size_bytes, 24u);
  EXPECT_EQ(w.element_count(), 6u);
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  EXPECT_TRUE(same_bytes(file.tensor_bytes(w), bytes_of(bytes).subspan(160, 24)));
  const Tensor t = file.tensor_as_f32_or_view(w);
  EXPECT_EQ(t.dtype(), DType::kF32);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.to_f32_vector(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(GgufRoundTrip, WriterProducesTheSpecExampleByteForByte) {
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  const std::string path = testing::temp_dir() + "/w.gguf";
  write_gguf(path, {{"general.architecture", GgufValue::string("llama")}, {"answer", GgufValue::u32(42)}},
             {{"w", {3, 2}, GgmlType::kF32, std::as_bytes(std::span(values))}});
  EXPECT_TRUE(read_all(path) == spec_example_v3());
}

// Version 2 has the same layout as 3 (3 only added big-endian files, marked by the version).
TEST(GgufRead, SpecExampleVersion2) {
  const std::string bytes =
      hex("47 47 55 46 02 00 00 00"
          "01 00 00 00 00 00 00 00"   // 1 tensor
          "05 00 00 00 00 00 00 00"   // 5 metadata entries
          "03 00 00 00 00 00 00 00") + "i64" + hex("0b 00 00 00 fe ff ff ff ff ff ff ff") +  // int64 -2
      hex("03 00 00 00 00 00 00 00") + "u64" + hex("0a 00 00 00 ff ff ff ff ff ff ff ff") +  // uint64 max
      hex("03 00 00 00 00 00 00 00") + "f64" + hex("0c 00 00 00 00 00 00 00 00 00 e0 3f") +  // float64 0.5
      hex("03 00 00 00 00 00 00 00") + "arr" +
      hex("09 00 00 00"                  // array
          "02 00 00 00"                  // of uint16
          "02 00 00 00 00 00 00 00"      // 2 elements
          "01 00 ff ff") +               // 1, 65535
      hex("04 00 00 00 00 00 00 00") + "flag" + hex("07 00 00 00 01") +  // bool true
      hex("01 00 00 00 00 00 00 00") + "i" +
      hex("01 00 00 00"                  // 1 dim
          "02 00 00 00 00 00 00 00"      // of 2
          "1a 00 00 00"                  // ggml type 26 = I32
          "00 00 00 00 00 00 00 00");    // offset 0
  // 24 + 23 + 23 + 23 + 31 + 17 + 33 = 174 bytes: pad to 192, then 8 bytes of data.
  ASSERT_EQ(bytes.size(), 174u);
  const std::string full = bytes + std::string(18, '\0') + hex("07 00 00 00 f9 ff ff ff");
  const std::string path = testing::temp_dir() + "/spec2.gguf";
  write_raw(path, full);
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.version(), 2u);
  EXPECT_EQ(file.data_start(), 192u);
  ASSERT_EQ(file.metadata().size(), 5u);
  EXPECT_EQ(file.at("i64").type, VT::kInt64);
  EXPECT_EQ(file.at("i64").as_int("i64"), -2);
  EXPECT_EQ(file.at("u64").type, VT::kUint64);
  EXPECT_EQ(file.at("u64").as_uint("u64"), ~uint64_t{0});
  EXPECT_EQ(file.at("f64").type, VT::kFloat64);
  EXPECT_EQ(file.at("f64").as_float("f64"), 0.5);
  const GgufValue& arr = file.at("arr");
  EXPECT_EQ(arr.type, VT::kArray);
  EXPECT_EQ(arr.array_type, VT::kUint16);
  ASSERT_EQ(arr.as_array("arr").size(), 2u);
  EXPECT_EQ(arr.as_array("arr")[0].type, VT::kUint16);
  EXPECT_EQ(arr.as_array("arr")[1].as_uint("arr"), 65535u);
  EXPECT_EQ(file.at("flag").as_bool("flag"), true);
  ASSERT_EQ(file.tensors().size(), 1u);
  EXPECT_EQ(file.tensors()[0].type, GgmlType::kI32);
  EXPECT_EQ(file.tensors()[0].size_bytes, 8u);
  EXPECT_TRUE(same_bytes(file.tensor_bytes(file.tensors()[0]), bytes_of(hex("07 00 00 00 f9 ff ff ff"))));
}

// Version 1: counts, string lengths, array lengths and dims are u32 (offsets stay u64).
std::string spec_example_v1() {
  return hex("47 47 55 46 01 00 00 00"
             "02 00 00 00"                 // 2 tensors (u32)
             "03 00 00 00"                 // 3 metadata entries (u32)
             "04 00 00 00") + "name" +     // key length (u32)
         hex("08 00 00 00 05 00 00 00") + "tiny!" +  // string of length 5 (u32)
         hex("05 00 00 00") + "names" +
         hex("09 00 00 00"                 // array
             "08 00 00 00"                 // of strings
             "02 00 00 00"                 // 2 elements (u32)
             "01 00 00 00") + "a" + hex("02 00 00 00") + "bc" +
         hex("03 00 00 00") + "eps" + hex("06 00 00 00 ac c5 27 37") +  // float32 1e-5
         hex("01 00 00 00") + "a" +
         hex("02 00 00 00"                 // n_dims 2
             "04 00 00 00 02 00 00 00"     // dims 4, 2 (u32)
             "01 00 00 00"                 // F16
             "00 00 00 00 00 00 00 00"     // offset 0 (u64)
             "01 00 00 00") + "b" +
         hex("01 00 00 00 03 00 00 00"     // 1 dim: 3
             "00 00 00 00"                 // F32
             "20 00 00 00 00 00 00 00") +  // offset 32
         std::string(22, '\0') +           // header is 138 bytes: pad to 160
         hex("00 3c 00 40 00 42 00 44 00 c0 00 00 00 7c 01 00") +  // a: 1 2 3 4 -2 0 inf 2^-24
         std::string(16, '\0') +                                    // pad to offset 32
         hex("00 00 80 3f 00 00 00 c0 00 00 00 00");                // b: 1 -2 0; the file ends here
}

TEST(GgufRead, SpecExampleVersion1) {
  const std::string bytes = spec_example_v1();
  ASSERT_EQ(bytes.size(), 204u);
  const std::string path = testing::temp_dir() + "/spec1.gguf";
  write_raw(path, bytes);
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.version(), 1u);
  EXPECT_EQ(file.data_start(), 160u);
  ASSERT_EQ(file.metadata().size(), 3u);
  EXPECT_EQ(file.metadata()[0].first, "name");
  EXPECT_EQ(file.at("name").as_string("name"), "tiny!");
  EXPECT_EQ(file.at("names").array_type, VT::kString);
  EXPECT_EQ(file.at("names").as_strings("names"), (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(file.at("eps").type, VT::kFloat32);
  EXPECT_EQ(file.at("eps").as_float("eps"), static_cast<double>(1e-5f));
  ASSERT_EQ(file.tensors().size(), 2u);
  const GgufTensorInfo& a = file.tensors()[0];
  const GgufTensorInfo& b = file.tensors()[1];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.dims, (std::vector<uint64_t>{4, 2}));
  EXPECT_EQ(a.type, GgmlType::kF16);
  EXPECT_EQ(a.size_bytes, 16u);
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.dims, (std::vector<uint64_t>{3}));
  EXPECT_EQ(b.offset, 32u);
  EXPECT_EQ(b.size_bytes, 12u);
  const Tensor ta = file.tensor_as_f32_or_view(a);
  EXPECT_EQ(ta.dtype(), DType::kF16);
  EXPECT_EQ(ta.shape(), (Shape{2, 4}));
  EXPECT_EQ(ta.data(), static_cast<const void*>(file.tensor_bytes(a).data()));  // zero-copy
  EXPECT_EQ(ta.to_f32_vector(), (std::vector<float>{1, 2, 3, 4, -2, 0, std::numeric_limits<float>::infinity(),
                                                    std::ldexp(1.0f, -24)}));
  EXPECT_EQ(file.tensor_as_f32_or_view(b).to_f32_vector(), (std::vector<float>{1, -2, 0}));
}

// A Q8_0 block is an f16 scale followed by 32 int8 values; value = scale × q.
TEST(GgufRead, BlockTensorIsDequantizedToF32) {
  const Enc e{3};
  std::string block = hex("00 38");  // f16 0.5
  for (int i = 0; i < 32; ++i) block.push_back(static_cast<char>(i - 16));
  const std::string bytes = e.file({}, {e.tensor("q", {32, 2}, GgmlType::kQ8_0, 0)}) + block + block;
  const GgufFile file = parse_copy(bytes, "q8");
  const Tensor t = file.tensor_as_f32_or_view(file.tensors()[0]);
  EXPECT_EQ(t.dtype(), DType::kF32);
  ASSERT_EQ(t.shape(), (Shape{2, 32}));
  const std::vector<float> values = t.to_f32_vector();
  for (int i = 0; i < 64; ++i) EXPECT_EQ(values[i], 0.5f * ((i % 32) - 16)) << i;
}

TEST(GgufRead, ValidEdgeCases) {
  const Enc e{3};
  // Tensors need not be stored in file order; alignment 1 allows any offset; nested arrays
  // up to 8 levels; empty arrays of every kind, arrays of arrays.
  const std::string bytes =
      e.file({e.kv("general.alignment", VT::kUint32, le<uint32_t>(1)),
              e.kv("deep", VT::kArray, nested_array_payload(e, 8)),
              e.kv("none", VT::kArray, e.array(VT::kArray, 0, "")),
              e.kv("nostr", VT::kArray, e.array(VT::kString, 0, ""))},
             {e.tensor("late", {3}, GgmlType::kF32, 5), e.tensor("early", {5}, GgmlType::kI8, 0)}, 17, 1);
  const GgufFile file = parse_copy(bytes, "edge");
  EXPECT_EQ(file.alignment(), 1u);
  EXPECT_EQ(file.at("deep"), nested_array_value(8));
  EXPECT_TRUE(file.at("none").as_array("none").empty());
  EXPECT_EQ(file.at("none").array_type, VT::kArray);
  EXPECT_EQ(file.find_tensor("late")->offset, 5u);
  EXPECT_EQ(file.find_tensor("early")->size_bytes, 5u);
  EXPECT_EQ(file.find_tensor("missing"), nullptr);
}

// ---------------------------------------------------------------------------------
// Malformed files

TEST(GgufRead, BadMagicAndVersion) {
  const Enc e{3};
  const std::string valid = e.file({e.kv("a", VT::kUint8, "\x01")});
  expect_open_error("", "not a GGUF file");
  expect_open_error("GGU", "not a GGUF file");
  expect_open_error("GGUX" + valid.substr(4), "not a GGUF file");
  expect_open_error("FUGG" + valid.substr(4), "not a GGUF file");
  expect_open_error("GGUF", "file ends inside version");
  for (uint32_t version : {0u, 4u, 0x03000000u}) {
    std::string bad = valid;
    std::memcpy(bad.data() + 4, &version, 4);
    expect_open_error(bad, "GGUF version " + std::to_string(version) + " is not supported (expected 1, 2 or 3)");
  }
}

TEST(GgufRead, MalformedMetadataNamesFileAndProblem) {
  const Enc e{3};
  const Enc e1{1};
  struct Case {
    std::string name, bytes, phrase;
  };
  const std::vector<Case> cases = {
      {"huge metadata count", e.header(0, uint64_t{1} << 62) + e.kv("a", VT::kUint8, "\x01"),
       "metadata count 4611686018427387904 cannot fit in the file"},
      {"metadata count above the bytes", e.header(0, 3) + e.kv("a", VT::kUint8, "\x01"), "cannot fit in the file"},
      {"v1 huge metadata count", e1.header(0, 0xffffffff) + e1.kv("a", VT::kUint8, "\x01"),
       "metadata count 4294967295 cannot fit"},
      {"huge key length", e.header(0, 1) + le<uint64_t>(uint64_t{1} << 63) + "abc" + le<uint32_t>(4) + le<uint32_t>(1),
       "metadata key 0: string length 9223372036854775808 exceeds the"},
      {"huge string value length", e.file({e.kv("s", VT::kString, le<uint64_t>(~uint64_t{0}) + "abc")}),
       "metadata 's': string length 18446744073709551615 exceeds the 3 bytes left in the file"},
      {"v1 string length past the end", e1.file({e1.kv("s", VT::kString, le<uint32_t>(4) + "abc")}),
       "metadata 's': string length 4 exceeds the 3 bytes left"},
      {"huge array count", e.file({e.kv("a", VT::kArray, e.array(VT::kUint8, uint64_t{1} << 60, "\x01\x02"))}),
       "metadata 'a': array of 1152921504606846976 elements cannot fit"},
      {"array of strings longer than the bytes", e.file({e.kv("a", VT::kArray, e.array(VT::kString, 3, e.str("xy")))}),
       "metadata 'a': array of 3 elements cannot fit"},
      {"array of u64 one element short", e.file({e.kv("a", VT::kArray, e.array(VT::kUint64, 2, le<uint64_t>(1)))}),
       "metadata 'a': array of 2 elements cannot fit in the 8 bytes left"},
      {"unknown value type", e.file({e.kv("k", 13u, le<uint32_t>(0))}), "metadata 'k': unknown value type 13"},
      {"unknown value type 2^32-1", e.file({e.kv("k", 0xffffffffu, le<uint32_t>(0))}),
       "metadata 'k': unknown value type 4294967295"},
      {"unknown array element type", e.file({e.kv("a", VT::kArray, e.array(13u, 0, ""))}),
       "metadata 'a': unknown array element type 13"},
      {"unknown element type in a nested array",
       e.file({e.kv("a", VT::kArray, e.array(VT::kArray, 1, e.array(99u, 0, "")))}),
       "metadata 'a': unknown array element type 99"},
      {"arrays nested 9 deep", e.file({e.kv("deep", VT::kArray, nested_array_payload(e, 9))}),
       "metadata 'deep': arrays nested deeper than 8"},
      {"arrays nested 100 deep", e.file({e.kv("deep", VT::kArray, nested_array_payload(e, 100))}),
       "arrays nested deeper than 8"},
      {"bool byte 2", e.file({e.kv("b", VT::kBool, "\x02")}), "metadata 'b': bool byte is 2, expected 0 or 1"},
      {"bool byte 255 in an array", e.file({e.kv("b", VT::kArray, e.array(VT::kBool, 2, "\x01\xff"))}),
       "metadata 'b': bool byte is 255, expected 0 or 1"},
      {"duplicate key",
       e.file({e.kv("a", VT::kUint8, "\x01"), e.kv("b", VT::kUint8, "\x01"), e.kv("a", VT::kUint8, "\x02")}),
       "metadata key 'a' appears twice"},
      {"empty key", e.file({e.kv("", VT::kUint8, "\x01")}), "metadata key 0 is empty"},
      {"value cut short", e.header(0, 1) + e.str("k") + le<uint32_t>(4) + "\x01\x02", "file ends inside k"},
      {"alignment not a power of two", e.file({e.kv("general.alignment", VT::kUint32, le<uint32_t>(48))}),
       "general.alignment 48 is not a power of two"},
      {"alignment 0", e.file({e.kv("general.alignment", VT::kUint32, le<uint32_t>(0))}),
       "general.alignment 0 is not a power of two"},
      {"alignment as uint64", e.file({e.kv("general.alignment", VT::kUint64, le<uint64_t>(32))}),
       "general.alignment is uint64, expected uint32"},
      {"alignment as int32", e.file({e.kv("general.alignment", VT::kInt32, le<int32_t>(32))}),
       "general.alignment is int32, expected uint32"},
      {"alignment as string", e.file({e.kv("general.alignment", VT::kString, e.str("32"))}),
       "general.alignment is string, expected uint32"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    expect_open_error(c.bytes, c.phrase);
  }
}

TEST(GgufRead, MalformedTensorInfosNameFileAndProblem) {
  const Enc e{3};
  const Enc e1{1};
  const uint64_t two32 = uint64_t{1} << 32;
  struct Case {
    std::string name, bytes, phrase;
  };
  const std::vector<Case> cases = {
      {"huge tensor count", e.header(uint64_t{1} << 40, 0) + e.tensor("w", {1}, GgmlType::kF32, 0),
       "tensor count 1099511627776 cannot fit in the file"},
      {"huge tensor name length", e.header(1, 0) + le<uint64_t>(uint64_t{1} << 62) + std::string(40, 'n'),
       "tensor name 0: string length 4611686018427387904 exceeds the"},
      {"duplicate tensor name",
       e.file({}, {e.tensor("w", {8}, GgmlType::kF32, 0), e.tensor("w", {8}, GgmlType::kF32, 32)}, 64),
       "tensor 'w' appears twice"},
      {"empty tensor name", e.file({}, {e.tensor("", {8}, GgmlType::kF32, 0)}, 32), "tensor 0 has an empty name"},
      {"0 dims", e.file({}, {e.tensor("w", {}, GgmlType::kF32, 0)}, 32), "tensor 'w': 0 dimensions, expected 1 to 4"},
      {"5 dims", e.file({}, {e.tensor("w", {1, 1, 1, 1, 1}, GgmlType::kF32, 0)}, 32),
       "tensor 'w': 5 dimensions, expected 1 to 4"},
      {"2^32-1 dims", e.header(1, 0) + e.str("w") + le<uint32_t>(0xffffffff) + std::string(64, '\0'),
       "tensor 'w': 4294967295 dimensions, expected 1 to 4"},
      {"a zero dim", e.file({}, {e.tensor("w", {4, 0, 2}, GgmlType::kF32, 0)}, 32), "tensor 'w': dimension 1 is 0"},
      {"a zero row length", e.file({}, {e.tensor("w", {0}, GgmlType::kQ4_0, 0)}, 32), "tensor 'w': dimension 0 is 0"},
      {"element count 2^64", e.file({}, {e.tensor("w", {two32, two32}, GgmlType::kF32, 0)}, 32),
       "tensor 'w': element count overflows"},
      {"element count 2^63", e.file({}, {e.tensor("w", {two32, 2, 2, two32 / 8}, GgmlType::kI8, 0)}, 32),
       "tensor 'w': element count overflows"},
      {"element count wraps to 1 in 64 bits",
       e.file({}, {e.tensor("w", {0xffffffffffffffffull, 0xffffffffffffffffull}, GgmlType::kF32, 0)}, 32),
       "tensor 'w': element count overflows"},
      {"bytes larger than the file", e.file({}, {e.tensor("w", {two32, two32 / 4}, GgmlType::kF32, 0)}, 32),
       "tensor 'w': f32 data larger than the file"},
      {"row length not a multiple of the block size", e.file({}, {e.tensor("w", {33}, GgmlType::kQ4_0, 0)}, 64),
       "tensor 'w': row length 33 is not a multiple of q4_0's block size 32"},
      {"k-quant row length 32", e.file({}, {e.tensor("w", {32, 8}, GgmlType::kQ4_K, 0)}, 1024),
       "row length 32 is not a multiple of q4_K's block size 256"},
      {"unaligned offset", e.file({}, {e.tensor("w", {4}, GgmlType::kF32, 4)}, 32),
       "tensor 'w': offset 4 is not a multiple of the alignment 32"},
      {"offset unaligned for general.alignment 64",
       e.file({e.kv("general.alignment", VT::kUint32, le<uint32_t>(64))}, {e.tensor("w", {4}, GgmlType::kF32, 32)},
              64, 64),
       "tensor 'w': offset 32 is not a multiple of the alignment 64"},
      {"data past the end of the file", e.file({}, {e.tensor("w", {8}, GgmlType::kF32, 0)}, 16),
       "tensor 'w': data [0, 32) lies outside the 16-byte data section"},
      {"offset past the end of the file", e.file({}, {e.tensor("w", {1}, GgmlType::kF32, 64)}, 32),
       "tensor 'w': data [64, 68) lies outside the 32-byte data section"},
      {"offset near 2^64", e.file({}, {e.tensor("w", {8}, GgmlType::kF32, 0xffffffffffffffe0ull)}, 32),
       "lies outside the 32-byte data section"},
      {"second tensor past the end",
       e.file({}, {e.tensor("a", {8}, GgmlType::kF32, 0), e.tensor("b", {8}, GgmlType::kF32, 32)}, 63),
       "tensor 'b': data [32, 64) lies outside the 63-byte data section"},
      {"file ends before the data section", e.header(1, 0) + e.tensor("w", {1}, GgmlType::kF32, 0),
       "file ends before its data section (needs 64 bytes, has 57)"},
      {"two overlapping tensors",
       e.file({}, {e.tensor("a", {16}, GgmlType::kF32, 0), e.tensor("b", {16}, GgmlType::kF32, 32)}, 96),
       "tensors 'a' and 'b' overlap"},
      {"overlap listed in reverse order",
       e.file({}, {e.tensor("b", {16}, GgmlType::kF32, 32), e.tensor("a", {16}, GgmlType::kF32, 0)}, 96),
       "tensors 'a' and 'b' overlap"},
      {"same offset", e.file({}, {e.tensor("a", {1}, GgmlType::kF32, 0), e.tensor("b", {1}, GgmlType::kF32, 0)}, 32),
       "overlap"},
      {"v1 tensor cut in its dims",
       e1.header(1, 0) + e1.str("wwwwwwwwww") + le<uint32_t>(4) + le<uint32_t>(4) + le<uint32_t>(4) + le<uint32_t>(4),
       "file ends inside tensor dim"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    expect_open_error(c.bytes, c.phrase);
  }
}

TEST(GgufRead, UnknownGgmlTypes) {
  const Enc e{3};
  // 4, 5 (Q4_2, Q4_3), 31–33 and 36–38 (repacked types) were removed from ggml; 41 (Q1_0) is not
  // known to lowbit yet.
  for (uint32_t type : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 41u, 200u, 0xffffffffu}) {
    SCOPED_TRACE(type);
    expect_open_error(e.file({}, {e.tensor("w", {256}, type, 0)}, 1024),
                      "tensor 'w': unknown ggml type " + std::to_string(type));
  }
}

// Every ggml type the reader knows: a one-row tensor of one block has the size of a block.
TEST(GgufRead, EveryKnownGgmlTypeHasItsBlockSize) {
  const Enc e{3};
  // (type, block size, bytes per block) from ggml's type_traits table.
  const std::vector<std::tuple<uint32_t, uint64_t, uint64_t>> types = {
      {0, 1, 4},     {1, 1, 2},     {2, 32, 18},   {3, 32, 20},   {6, 32, 22},   {7, 32, 24},   {8, 32, 34},
      {9, 32, 36},   {10, 256, 84}, {11, 256, 110}, {12, 256, 144}, {13, 256, 176}, {14, 256, 210},
      {15, 256, 292}, {16, 256, 66}, {17, 256, 74}, {18, 256, 98}, {19, 256, 50}, {20, 32, 18}, {21, 256, 110},
      {22, 256, 82}, {23, 256, 136}, {24, 1, 1},    {25, 1, 2},    {26, 1, 4},    {27, 1, 8},    {28, 1, 8},
      {29, 256, 56}, {30, 1, 2},    {34, 256, 54}, {35, 256, 66}, {39, 32, 17},
  };
  for (const auto& [type, block, size] : types) {
    SCOPED_TRACE("ggml type " + std::to_string(type));
    const std::string bytes = e.file({}, {e.tensor("w", {block, 3}, type, 0)}, 3 * size);
    try {
      const GgufFile file = parse_copy(bytes, "types");
      EXPECT_EQ(static_cast<uint32_t>(file.tensors()[0].type), type);
      EXPECT_EQ(file.tensors()[0].size_bytes, 3 * size);
    } catch (const Error& error) {
      ADD_FAILURE() << error.what();
    }
    if (block > 1) expect_open_error(e.file({}, {e.tensor("w", {block / 2}, type, 0)}, size), "is not a multiple of");
  }
}

// Every prefix of a valid file (whose last tensor ends exactly at the end of the file, so
// no prefix is valid) must be an Error naming the file; none may crash or read past the end.
void expect_every_truncation_fails(const std::string& full, const std::string& label) {
  ASSERT_NO_THROW(parse_copy(full, label)) << label << " must be valid";
  for (size_t length = 0; length < full.size(); ++length) {
    SCOPED_TRACE(label + " cut to " + std::to_string(length) + " of " + std::to_string(full.size()) + " bytes");
    const std::string message = error_from([&] { parse_copy(full.substr(0, length), "cut"); });
    EXPECT_EQ(message.rfind("cut: ", 0), 0u) << message;
  }
}

TEST(GgufRead, EveryTruncationOfAValidFileIsAnError) {
  const Enc e{3};
  const std::string v3 =
      e.file({e.kv("general.architecture", VT::kString, e.str("llama")), e.kv("n", VT::kUint32, le<uint32_t>(7)),
              e.kv("toks", VT::kArray, e.array(VT::kString, 2, e.str("ab") + e.str(""))),
              e.kv("f", VT::kArray, e.array(VT::kFloat32, 1, le<float>(1.5f))),
              e.kv("nest", VT::kArray, nested_array_payload(e, 3)), e.kv("b", VT::kBool, "\x01"),
              e.kv("d", VT::kFloat64, le<double>(2.0))},
             {e.tensor("a", {32}, GgmlType::kQ8_0, 0), e.tensor("b", {8}, GgmlType::kF32, 64)}, 96);
  expect_every_truncation_fails(v3, "v3");
  expect_every_truncation_fails(spec_example_v1(), "v1");
  // The spec example ends with padding after the data: cut that off and it is a valid file
  // whose every prefix fails.
  expect_every_truncation_fails(spec_example_v3().substr(0, 184), "spec v3");

  // The same through open(), for the path in the message.
  const std::string dir = testing::temp_dir();
  for (size_t length = 0; length < v3.size(); length += 7) {
    const std::string path = dir + "/cut" + std::to_string(length) + ".gguf";
    write_raw(path, v3.substr(0, length));
    const std::string message = error_from([&] { GgufFile::open(path); });
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  }
}

TEST(GgufRead, MissingFileAndMissingKeyNameThePath) {
  const std::string path = testing::temp_dir() + "/absent.gguf";
  EXPECT_TRUE(contains(error_from([&] { GgufFile::open(path); }), path));
  const Enc e{3};
  const GgufFile file = parse_copy(e.file({e.kv("a", VT::kUint8, "\x01")}), "where.gguf");
  const std::string message = error_from([&] { file.at("general.name"); });
  EXPECT_EQ(message.rfind("where.gguf: ", 0), 0u) << message;
  EXPECT_TRUE(contains(message, "'general.name' is missing")) << message;
}

// ---------------------------------------------------------------------------------
// Writer refusals

TEST(GgufWrite, RefusesBadInputAndLeavesNoFileBehind) {
  const std::vector<std::byte> f32x4(16), f32x3(12), q4(18);
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/out.gguf";
  struct Case {
    std::string name;
    GgufMetadata metadata;
    std::vector<GgufTensorToWrite> tensors;
    std::string phrase;
  };
  const std::vector<Case> cases = {
      {"duplicate tensor names", {}, {{"w", {4}, GgmlType::kF32, f32x4}, {"v", {4}, GgmlType::kF32, f32x4},
                                      {"w", {4}, GgmlType::kF32, f32x4}}, "tensor 'w': given twice"},
      {"empty tensor name", {}, {{"", {4}, GgmlType::kF32, f32x4}}, "tensor with an empty name"},
      {"data size mismatch", {}, {{"w", {4}, GgmlType::kF32, f32x3}}, "tensor 'w': f32 data of 12 bytes, expected 16"},
      {"block data size mismatch", {}, {{"q", {32, 2}, GgmlType::kQ4_0, q4}}, "data of 18 bytes, expected 36"},
      {"no dims", {}, {{"w", {}, GgmlType::kF32, f32x4}}, "needs 1 to 4 dimensions"},
      {"5 dims", {}, {{"w", {4, 1, 1, 1, 1}, GgmlType::kF32, f32x4}}, "needs 1 to 4 dimensions"},
      {"alignment 48", {{"general.alignment", GgufValue::u32(48)}}, {}, "general.alignment must be a uint32 power of two"},
      {"alignment 0", {{"general.alignment", GgufValue::u32(0)}}, {}, "general.alignment must be a uint32 power of two"},
      {"alignment as uint64", {{"general.alignment", GgufValue::u64(32)}}, {},
       "general.alignment must be a uint32 power of two"},
      {"alignment as string", {{"general.alignment", GgufValue::string("32")}}, {},
       "general.alignment must be a uint32 power of two"},
      {"duplicate key", {{"a", GgufValue::u32(1)}, {"a", GgufValue::u32(2)}}, {}, "metadata key 'a' given twice"},
      {"empty key", {{"", GgufValue::u32(1)}}, {}, "empty metadata key"},
      {"array element of another type", {{"arr", GgufValue::array(VT::kFloat32, {GgufValue::f32(1), GgufValue::i32(2)})}},
       {}, "metadata 'arr': array element is int32, the array holds float32"},
      {"string in an int array", {{"arr", GgufValue::array(VT::kInt32, {GgufValue::string("x")})}}, {},
       "array element is string, the array holds int32"},
      {"inner array element of another type",
       {{"arr", GgufValue::array(VT::kArray, {GgufValue::array(VT::kUint32, {GgufValue::boolean(true)})})}}, {},
       "array element is bool, the array holds uint32"},
      {"value that does not match its type", {{"s", {VT::kString, uint64_t{1}}}}, {}, "metadata 's': is "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string message = error_from([&] { write_gguf(path, c.metadata, c.tensors); });
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_TRUE(contains(message, c.phrase)) << "expected \"" << c.phrase << "\" in: " << message;
    EXPECT_TRUE(folder_is_empty(dir)) << "a failed write left a file in " << dir;
  }
}

// The block-size error names the file and the tensor, not just the ggml helper.
TEST(GgufWrite, RowLengthNotAMultipleOfTheBlockSizeNamesThePath) {
  const std::vector<std::byte> q4(18);
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/out.gguf";
  const std::string message = error_from([&] { write_gguf(path, {}, {{"q", {33}, GgmlType::kQ4_0, q4}}); });
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  EXPECT_TRUE(contains(message, "33")) << message;
  EXPECT_TRUE(folder_is_empty(dir));
}

TEST(GgufWrite, FailedWriteKeepsThePreviousFile) {
  const std::vector<std::byte> f32x4(16);
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/keep.gguf";
  write_gguf(path, {{"a", GgufValue::u32(1)}}, {{"w", {4}, GgmlType::kF32, f32x4}});
  const std::string before = read_all(path);
  EXPECT_THROW(write_gguf(path, {}, {{"w", {4}, GgmlType::kF32, f32x4}, {"w", {4}, GgmlType::kF32, f32x4}}), Error);
  EXPECT_EQ(read_all(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

// The writer refuses what its own reader would reject (or would silently change): each case
// is an Error naming the path and leaves no file.
TEST(GgufWrite, RefusesWhatTheReaderWouldReject) {
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/out.gguf";
  struct Case {
    std::string name;
    GgufMetadata metadata;
    std::vector<GgufTensorToWrite> tensors;
  };
  const std::vector<Case> cases = {
      {"a zero dim (reader: 'dimension 1 is 0')", {}, {{"w", {4, 0}, GgmlType::kF32, {}}}},
      {"arrays nested 9 deep (reader: 'nested deeper than 8')", {{"deep", nested_array_value(9)}}, {}},
      {"uint8 value 300 (written as 44)", {{"u8", {VT::kUint8, uint64_t{300}}}}, {}},
      {"int16 value -40000 (written as 25536)", {{"i16", {VT::kInt16, int64_t{-40000}}}}, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string message;
    try {
      write_gguf(path, c.metadata, c.tensors);
      ADD_FAILURE() << "write_gguf accepted it";
    } catch (const Error& error) {
      message = error.what();
      EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    }
    EXPECT_TRUE(folder_is_empty(dir)) << "a refused write left a file in " << dir;
    std::error_code ignored;
    fs::remove(path, ignored);
  }
}

// ---------------------------------------------------------------------------------
// GgufValue accessors

// Scalars built by the factories equal the same scalars read from a file (array_type keeps
// its default, as the reader leaves it).
TEST(GgufValue, FactoryScalarsEqualWhatTheReaderReturns) {
  GgufValue read;  // as the reader builds it
  read.type = VT::kUint32;
  read.value = uint64_t{5};
  EXPECT_EQ(GgufValue::u32(5), read);
  EXPECT_EQ(GgufValue::u32(5), (GgufValue{VT::kUint32, uint64_t{5}}));
  read.type = VT::kString;
  read.value = std::string("x");
  EXPECT_EQ(GgufValue::string("x"), read);
}

TEST(GgufValue, TypedAccessors) {
  const GgufValue negative = GgufValue::i32(-1);
  EXPECT_EQ(negative.as_int("k"), -1);
  EXPECT_TRUE(negative.is_integer());
  std::string message = error_from([&] { negative.as_uint("llama.block_count"); });
  EXPECT_EQ(message, "llama.block_count: is int32 (negative), expected a non-negative integer");

  const GgufValue big = GgufValue::u64(uint64_t{1} << 63);
  EXPECT_EQ(big.as_uint("k"), uint64_t{1} << 63);
  message = error_from([&] { big.as_int("big.key"); });
  EXPECT_TRUE(contains(message, "big.key: is uint64")) << message;
  EXPECT_EQ(GgufValue::u64(uint64_t{INT64_MAX}).as_int("k"), INT64_MAX);

  const GgufValue ints = GgufValue::int32s({1, 2});
  message = error_from([&] { ints.as_strings("tokenizer.ggml.tokens"); });
  EXPECT_TRUE(contains(message, "tokenizer.ggml.tokens")) << message;
  EXPECT_TRUE(contains(message, "is int32, expected string")) << message;
  EXPECT_EQ(ints.as_int32s("k"), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(ints.as_floats("k"), (std::vector<float>{1, 2}));

  EXPECT_TRUE(contains(error_from([&] { GgufValue::string("x").as_float("s"); }), "s: is string, expected a number"));
  EXPECT_TRUE(contains(error_from([&] { GgufValue::u32(1).as_bool("b"); }), "b: is uint32, expected bool"));
  EXPECT_TRUE(contains(error_from([&] { GgufValue::u32(1).as_string("s"); }), "s: is uint32, expected string"));
  EXPECT_TRUE(contains(error_from([&] { GgufValue::u32(1).as_array("a"); }), "a: is uint32, expected array"));
  EXPECT_TRUE(contains(error_from([&] { GgufValue::strings({"a"}).as_floats("f"); }), "f element: is string"));
  const GgufValue wide = GgufValue::array(VT::kInt64, {{VT::kInt64, int64_t{1} << 40}});
  EXPECT_TRUE(contains(error_from([&] { wide.as_int32s("w"); }), "outside int32"));

  EXPECT_EQ(GgufValue::f32(0.25f).as_float("f"), 0.25);
  EXPECT_EQ(GgufValue::u32(7).as_float("f"), 7.0);
  EXPECT_EQ(GgufValue::i32(-7).as_float("f"), -7.0);
  EXPECT_TRUE(GgufValue::boolean(true).as_bool("b"));
  EXPECT_FALSE(GgufValue::f32(1).is_integer());
  EXPECT_TRUE(GgufValue::f32(1).is_float());
  EXPECT_EQ(GgufValue::strings({"a", "b"}).as_strings("k"), (std::vector<std::string>{"a", "b"}));
}

TEST(GgufValue, DisplayAbbreviatesLongArraysAndStrings) {
  std::vector<int32_t> many(20);
  for (int i = 0; i < 20; ++i) many[i] = i;
  EXPECT_EQ(GgufValue::int32s(many).to_display(), "[int32 × 20: 0, 1, 2, 3, 4, 5, 6, 7, …]");
  EXPECT_EQ(GgufValue::int32s(many).to_display(2), "[int32 × 20: 0, 1, …]");
  EXPECT_EQ(GgufValue::int32s({1, 2}).to_display(), "[int32 × 2: 1, 2]");
  EXPECT_EQ(GgufValue::strings({}).to_display(), "[string × 0]");
  EXPECT_EQ(GgufValue::strings({"a", "b"}).to_display(), "[string × 2: \"a\", \"b\"]");
  EXPECT_EQ(GgufValue::u32(42).to_display(), "42");
  EXPECT_EQ(GgufValue::i32(-3).to_display(), "-3");
  EXPECT_EQ(GgufValue::boolean(false).to_display(), "false");
  EXPECT_EQ(GgufValue::f32(0.5f).to_display(), "0.5");
  EXPECT_EQ(GgufValue::string("a\nb\tc").to_display(), "\"a b c\"");
  const std::string shown = GgufValue::string(std::string(100, 'x')).to_display();
  EXPECT_EQ(shown, "\"" + std::string(57, 'x') + "...\"");
  EXPECT_EQ(nested_array_value(2).to_display(), "[array × 1: [uint8 × 0]]");
  EXPECT_EQ(gguf_value_type_name(VT::kFloat64), "float64");
}

// ---------------------------------------------------------------------------------
// Real files

// SmolLM2-135M-Instruct as published (Q4_1 with a Q8_0 embedding); every figure below was
// read from the file with an independent Python reader and matches its REFERENCE.md.
TEST(GgufRead, SmolLM2Q4_1) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string path = shared + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not found";
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.tensors().size(), 272u);
  EXPECT_EQ(file.metadata().size(), 33u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.data_start(), 1785664u);
  EXPECT_EQ(file.metadata().front().first, "general.architecture");
  EXPECT_EQ(file.at("general.architecture").as_string("a"), "llama");
  EXPECT_EQ(file.metadata().back().first, "general.quantization_version");
  EXPECT_EQ(file.at("llama.block_count").as_uint("k"), 30u);
  EXPECT_EQ(file.at("llama.embedding_length").as_uint("k"), 576u);
  EXPECT_EQ(file.at("llama.rope.freq_base").as_float("k"), 100000.0);
  EXPECT_FALSE(file.at("tokenizer.ggml.add_bos_token").as_bool("k"));
  EXPECT_EQ(file.at("tokenizer.ggml.pre").as_string("k"), "smollm");
  EXPECT_EQ(file.at("general.languages").as_strings("k"), (std::vector<std::string>{"en"}));

  const std::vector<std::string> tokens = file.at("tokenizer.ggml.tokens").as_strings("tokens");
  ASSERT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  const std::vector<std::string> merges = file.at("tokenizer.ggml.merges").as_strings("merges");
  ASSERT_EQ(merges.size(), 48900u);
  EXPECT_EQ(merges[0], "\u0120 t");  // "Ġ t"
  EXPECT_EQ(file.at("tokenizer.ggml.token_type").as_int32s("k").size(), 49152u);
  EXPECT_EQ(file.at("tokenizer.ggml.token_type").array_type, VT::kInt32);

  const GgufTensorInfo* embedding = file.find_tensor("token_embd.weight");
  ASSERT_NE(embedding, nullptr);
  EXPECT_EQ(embedding->dims, (std::vector<uint64_t>{576, 49152}));
  EXPECT_EQ(embedding->type, GgmlType::kQ8_0);
  EXPECT_EQ(embedding->shape(), (Shape{49152, 576}));
  EXPECT_EQ(embedding->size_bytes, 49152u * 576 / 32 * 34);
  EXPECT_EQ(file.find_tensor("blk.0.ffn_down.weight")->dims, (std::vector<uint64_t>{1536, 576}));
  EXPECT_EQ(file.find_tensor("output.weight"), nullptr);  // tied to the embedding

  std::map<GgmlType, int> counts;
  uint64_t total = 0, end = 0;
  for (const auto& info : file.tensors()) {
    ++counts[info.type];
    total += info.size_bytes;
    EXPECT_EQ(info.size_bytes, expected_bytes(info.type, info.dims)) << info.name;
    EXPECT_EQ(info.offset % 32, 0u) << info.name;
    end = std::max(end, info.offset + info.size_bytes);
  }
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[GgmlType::kQ4_1], 210);
  EXPECT_EQ(counts[GgmlType::kF32], 61);
  EXPECT_EQ(counts[GgmlType::kQ8_0], 1);
  // Every tensor size is a multiple of 32 here, so the data section is exactly the tensors.
  EXPECT_EQ(total, file.file_size() - file.data_start());
  EXPECT_EQ(file.data_start() + end, file.file_size());
  EXPECT_EQ(file.file_size(), 98362432u);
}

// stories260K converted by an early llama.cpp (GGUF version 1: u32 counts and lengths).
// Figures read from the bytes by hand and with an independent Python reader: 48 F32 tensors,
// 18 keys, header ends at byte 11450, data at 11456, the last tensor ends at the file's end.
TEST(GgufRead, Stories260KVersion1) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string path = shared + "/models/stories260K/gguf-v1/tinyllamas-stories-260k-f32.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not found";
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.version(), 1u);
  EXPECT_EQ(file.tensors().size(), 48u);
  ASSERT_EQ(file.metadata().size(), 18u);
  EXPECT_EQ(file.data_start(), 11456u);
  EXPECT_EQ(file.metadata()[0].first, "general.architecture");
  EXPECT_EQ(file.at("general.architecture").as_string("k"), "llama");
  EXPECT_EQ(file.at("general.name").as_string("k"), "tinyllamas-stories-260k");
  EXPECT_EQ(file.at("llama.tensor_data_layout").as_string("k"), "Meta AI original pth");
  EXPECT_EQ(file.at("llama.context_length").type, VT::kUint32);
  EXPECT_EQ(file.at("llama.context_length").as_uint("k"), 512u);
  EXPECT_EQ(file.at("llama.embedding_length").as_uint("k"), 64u);
  EXPECT_EQ(file.at("llama.block_count").as_uint("k"), 5u);
  EXPECT_EQ(file.at("llama.feed_forward_length").as_uint("k"), 172u);
  EXPECT_EQ(file.at("llama.attention.head_count").as_uint("k"), 8u);
  EXPECT_EQ(file.at("llama.attention.head_count_kv").as_uint("k"), 4u);
  EXPECT_EQ(file.at("llama.attention.layer_norm_rms_epsilon").as_float("k"), static_cast<double>(1e-5f));
  EXPECT_EQ(file.at("tokenizer.ggml.model").as_string("k"), "llama");
  const std::vector<std::string> tokens = file.at("tokenizer.ggml.tokens").as_strings("k");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(file.at("tokenizer.ggml.scores").as_floats("k").size(), 512u);
  EXPECT_EQ(file.at("tokenizer.ggml.token_type").as_int32s("k").size(), 512u);
  EXPECT_EQ(file.at("tokenizer.ggml.bos_token_id").as_uint("k"), 1u);
  EXPECT_EQ(file.at("tokenizer.ggml.eos_token_id").as_uint("k"), 2u);

  const GgufTensorInfo& first = file.tensors().front();
  EXPECT_EQ(first.name, "token_embd.weight");
  EXPECT_EQ(first.dims, (std::vector<uint64_t>{64, 512}));
  EXPECT_EQ(first.offset, 0u);
  EXPECT_EQ(file.find_tensor("blk.0.ffn_gate.weight")->dims, (std::vector<uint64_t>{64, 172}));
  const GgufTensorInfo& last = file.tensors().back();
  EXPECT_EQ(last.name, "output.weight");
  EXPECT_EQ(last.offset, 1040128u);
  uint64_t total = 0;
  for (const auto& info : file.tensors()) {
    EXPECT_EQ(info.type, GgmlType::kF32) << info.name;
    total += info.size_bytes;
  }
  EXPECT_EQ(total, file.file_size() - file.data_start());
  EXPECT_EQ(file.data_start() + last.offset + last.size_bytes, file.file_size());
  const Tensor embedding = file.tensor_as_f32_or_view(first);
  EXPECT_EQ(embedding.shape(), (Shape{512, 64}));
  EXPECT_FALSE(embedding.owns_storage());  // a view into the mapping
}

}  // namespace
}  // namespace lowbit
