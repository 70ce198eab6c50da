// Tests for the safetensors reader/writer (include/lowbit/io/safetensors.h).
//
// What matters about this format for lowbit: every checkpoint a user brings arrives in
// it, and the reader maps it and hands out zero-copy views, so (1) a round trip must be
// bit-exact for every dtype, NaN payloads included; (2) the writer's layout must let
// those views be aligned (data section 8-aligned, each tensor at a multiple of its
// element size, no holes, which the reference reader also demands); (3) any malformed
// header must become a lowbit::Error naming the file and the problem before a single
// data byte is touched, since a bad offset would otherwise read outside the mapping.
#include "lowbit/io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "lowbit/core/error.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;
using testing::expect_same_config;
using testing::read_all;
using testing::write_raw;

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------
// Helpers



std::string le64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// A safetensors file built by hand: length prefix, `header` verbatim, `data_size` zero bytes.
std::string safetensors_bytes(const std::string& header, size_t data_size) {
  return le64(header.size()) + header + std::string(data_size, '\0');
}



// Writes `bytes` to a fresh file, opens it, and checks that the Error names the file
// (as the "<path>: " prefix the CLI prints) and contains `phrase`.
void expect_open_error(const std::string& bytes, const std::string& phrase) {
  const std::string path = testing::temp_dir() + "/bad.safetensors";
  write_raw(path, bytes);
  const std::string message = error_from([&] { SafetensorsFile::open(path); });
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << message;
  EXPECT_TRUE(contains(message, phrase)) << "expected \"" << phrase << "\" in: " << message;
}

// Deterministic random bytes for a tensor, with the special float patterns written
// over the first elements: NaNs with payloads and both signs, signalling NaNs,
// infinities and negative zero must all survive the round trip bit for bit.
Tensor random_tensor(DType dtype, const Shape& shape, std::mt19937_64& rng) {
  Tensor tensor = Tensor::zeros(dtype, shape);
  auto* bytes = static_cast<unsigned char*>(tensor.mutable_data());
  for (size_t i = 0; i < tensor.nbytes(); ++i) bytes[i] = static_cast<unsigned char>(rng());
  if (dtype == DType::kBool)
    for (size_t i = 0; i < tensor.nbytes(); ++i) bytes[i] &= 1;
  std::vector<uint64_t> specials;
  switch (dtype) {
    case DType::kF64:
      specials = {0x7ff8000000000000, 0xfff8000000000001, 0x7ff0000000000001, 0x7ff0000000000000,
                  0x8000000000000000};
      break;
    case DType::kF32: specials = {0x7fc00000, 0xffc00001, 0x7f800001, 0xff800000, 0x80000000}; break;
    case DType::kF16: specials = {0x7e00, 0xfe01, 0x7c01, 0xfc00, 0x8000}; break;
    case DType::kBF16: specials = {0x7fc0, 0xffc1, 0x7f81, 0xff80, 0x8000}; break;
    case DType::kF8E4M3: specials = {0x7f, 0xff, 0x80}; break;
    case DType::kF8E5M2: specials = {0x7e, 0xfd, 0x7c, 0x80}; break;
    case DType::kF8E8M0: specials = {0xff, 0x00}; break;
    default: break;
  }
  const size_t size = dtype_size(dtype);
  for (size_t i = 0; i < specials.size() && i < static_cast<size_t>(tensor.numel()); ++i)
    for (size_t b = 0; b < size; ++b) bytes[i * size + b] = static_cast<unsigned char>(specials[i] >> (8 * b));
  return tensor;
}

// ---------------------------------------------------------------------------------
// Round trip

TEST(SafetensorsRoundTrip, EveryDTypeBitExactAlignedWithoutHolesZeroCopy) {
  std::mt19937_64 rng(20240611);
  const std::vector<Shape> shapes = {{}, {0, 3}, {5}, {3, 7}, {2, 3, 5}, {1}};
  NamedTensors tensors;
  // Interleave dtypes (outer loop over shapes) so the writer has to reorder by
  // element size to keep every tensor aligned.
  for (size_t s = 0; s < shapes.size(); ++s)
    for (DType dtype : kAllDTypes)
      tensors.emplace_back(std::string(dtype_name(dtype)) + ".shape" + std::to_string(s),
                           random_tensor(dtype, shapes[s], rng));
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"empty", ""}, {"quoted \"key\"", "line\nbreak, tab\t, unicode \u00e9\u4e2d"}};

  const std::string path = testing::temp_dir() + "/all.safetensors";
  write_safetensors(path, tensors, metadata);
  const std::string on_disk = read_all(path);

  const std::byte* mapping_base = nullptr;
  Tensor survivor;  // a view that must outlive the SafetensorsFile object
  {
    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_EQ(file.metadata(), metadata);
    EXPECT_EQ(file.file_size(), on_disk.size());
    ASSERT_EQ(file.names().size(), tensors.size());

    const SafetensorsHeader& header = file.header();
    EXPECT_EQ(header.data_start, 8 + header.header_size);
    EXPECT_EQ(header.data_start % 8, 0u) << "data section must start 8-byte aligned";

    // No holes: sorted by begin, each tensor starts where the previous one ended,
    // and the last one ends at the end of the file.
    uint64_t cursor = 0;
    for (const SafetensorsEntry& entry : header.entries) {
      EXPECT_EQ(entry.begin, cursor) << entry.name;
      EXPECT_EQ(entry.begin % dtype_size(entry.dtype), 0u) << entry.name << " is misaligned";
      cursor = entry.end;
    }
    EXPECT_EQ(cursor, file.file_size() - header.data_start);

    for (const auto& [name, original] : tensors) {
      SCOPED_TRACE(name);
      ASSERT_TRUE(file.contains(name));
      const Tensor view = file.tensor(name);
      EXPECT_EQ(view.dtype(), original.dtype());
      EXPECT_EQ(view.shape(), original.shape());
      EXPECT_TRUE(view.bit_equal(original));
      if (original.nbytes()) {
        EXPECT_EQ(std::memcmp(view.data(), original.data(), original.nbytes()), 0);
      }

      // Zero-copy: a read-only view whose address is the mapping's base plus the
      // header-declared offset, the same base for every tensor (page-aligned, as mmap gives).
      EXPECT_FALSE(view.owns_storage());
      EXPECT_THROW(const_cast<Tensor&>(view).mutable_data(), Error);
      const auto& entry = *std::find_if(header.entries.begin(), header.entries.end(),
                                        [&](const SafetensorsEntry& e) { return e.name == name; });
      const std::byte* base = static_cast<const std::byte*>(view.data()) - header.data_start - entry.begin;
      if (!mapping_base) mapping_base = base;
      EXPECT_EQ(base, mapping_base);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE)), 0u);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(view.data()) % dtype_size(view.dtype()), 0u);

      // The bytes sit in the file exactly where the header says.
      ASSERT_LE(header.data_start + entry.end, on_disk.size());
      const std::string expected_bytes(static_cast<const char*>(original.data()), original.nbytes());
      EXPECT_EQ(on_disk.substr(header.data_start + entry.begin, entry.end - entry.begin), expected_bytes);
    }
    survivor = file.tensor("F64.shape4");
    EXPECT_TRUE(contains(error_from([&] { file.tensor("absent"); }), "no tensor named 'absent'"));
  }
  // The file object is gone; the view keeps the mapping alive.
  const Tensor& expected = tensors[4 * std::size(kAllDTypes)].second;
  ASSERT_EQ(tensors[4 * std::size(kAllDTypes)].first, "F64.shape4");
  EXPECT_TRUE(survivor.bit_equal(expected));
}

TEST(SafetensorsRoundTrip, NoMetadataAndNoTensors) {
  const std::string dir = testing::temp_dir();
  write_safetensors(dir + "/empty.safetensors", {});
  const SafetensorsFile empty = SafetensorsFile::open(dir + "/empty.safetensors");
  EXPECT_TRUE(empty.names().empty());
  EXPECT_TRUE(empty.metadata().empty());
  EXPECT_EQ(empty.file_size(), empty.header().data_start);
  // "{}" padded to 8 bytes: the header never says "__metadata__" when there is none.
  EXPECT_EQ(read_all(dir + "/empty.safetensors"), le64(8) + "{}      ");
}

TEST(SafetensorsRoundTrip, WriterKeepsCallerOrderAmongEqualElementSizes) {
  std::mt19937_64 rng(7);
  NamedTensors tensors = {{"z_u8", random_tensor(DType::kU8, {3}, rng)},
                          {"b_f32", random_tensor(DType::kF32, {2}, rng)},
                          {"a_i32", random_tensor(DType::kI32, {1}, rng)},
                          {"m_f64", random_tensor(DType::kF64, {1}, rng)},
                          {"c_bf16", random_tensor(DType::kBF16, {3}, rng)}};
  const std::string path = testing::temp_dir() + "/order.safetensors";
  write_safetensors(path, tensors);
  const std::vector<std::string> expected = {"m_f64", "b_f32", "a_i32", "c_bf16", "z_u8"};
  EXPECT_EQ(SafetensorsFile::open(path).names(), expected);
}

// ---------------------------------------------------------------------------------
// The real checkpoint in ../shared

TEST(SafetensorsRead, Stories260KCheckpoint) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string path = shared + "/models/stories260K/hf/model.safetensors";
  const SafetensorsFile file = SafetensorsFile::open(path);
  // 47 tensors (5 layers x 9, embeddings, final norm; lm_head is tied) plus the
  // "__metadata__" entry, which makes 48 top-level keys in the JSON.
  EXPECT_EQ(file.names().size(), 47u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  const Tensor embed = file.tensor("model.embed_tokens.weight");
  EXPECT_EQ(embed.dtype(), DType::kF32);
  EXPECT_EQ(embed.shape(), (Shape{512, 64}));
  EXPECT_FALSE(embed.owns_storage());
  int64_t total = 0;
  for (const auto& name : file.names()) total += file.tensor(name).numel();
  EXPECT_EQ(total, 260032);
  // The reference writer leaves no holes either.
  EXPECT_EQ(file.header().entries.front().begin, 0u);
  EXPECT_EQ(file.header().entries.back().end, file.file_size() - file.header().data_start);

  // The checkpoint API finds the same file from its folder.
  const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open(shared + "/models/stories260K/hf");
  EXPECT_EQ(checkpoint.names(), file.names());
  EXPECT_TRUE(checkpoint.tensor("model.embed_tokens.weight").bit_equal(embed));
}

// ---------------------------------------------------------------------------------
// Malformed files

TEST(SafetensorsRead, TooShortForTheLengthPrefix) {
  expect_open_error("", "truncated: 0 bytes");
  expect_open_error(std::string("\x02\0\0\0\0\0\0", 7), "truncated: 7 bytes");
}

TEST(SafetensorsRead, HeaderLengthPastEndOfFile) {
  expect_open_error(le64(100) + "{}", "header length 100 runs past the end of the file (10 bytes)");
  expect_open_error(le64(uint64_t{1} << 63) + "{}",
                    "header length 9223372036854775808 runs past the end of the file (10 bytes)");
  expect_open_error(le64(~uint64_t{0}) + "{}", "header length 18446744073709551615 runs past the end");
  expect_open_error(le64(3) + "{}", "header length 3 runs past the end of the file (10 bytes)");
}

TEST(SafetensorsRead, HeaderLengthAboveTheLimit) {
  // A sparse file just over 100 MB, so the length fits in the file and only the
  // size limit can reject it (costs no disk blocks).
  const std::string path = testing::temp_dir() + "/huge.safetensors";
  write_raw(path, le64(100'000'001));
  fs::resize_file(path, 8 + 100'000'001);
  const std::string message = error_from([&] { SafetensorsFile::open(path); });
  EXPECT_EQ(message, path + ": header length 100000001 exceeds the 100 MB limit");
}

struct MalformedHeader {
  const char* what;
  std::string header;
  size_t data_size;
  std::string phrase;
};

TEST(SafetensorsRead, MalformedHeadersNameFileAndProblem) {
  const std::string w = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  // The baseline must be valid, so each case below fails for its own reason only.
  {
    const std::string path = testing::temp_dir() + "/ok.safetensors";
    write_raw(path, safetensors_bytes(w, 24));
    EXPECT_EQ(SafetensorsFile::open(path).tensor("w").shape(), (Shape{2, 3}));
  }
  const std::vector<MalformedHeader> cases = {
      {"empty header", "", 0, "header is not well-formed JSON"},
      {"not JSON", R"({"w": )", 0, "header is not well-formed JSON"},
      {"trailing garbage", R"({} x)", 0, "header is not well-formed JSON"},
      {"NUL padding", std::string("{}\0\0", 4), 0, "header is not well-formed JSON (NUL byte at header offset 2)"},
      {"junk after NUL", std::string("{}\0junk", 7), 0, "header is not well-formed JSON (NUL byte at header offset 2)"},
      {"invalid UTF-8 key", "{\"\xff\":{}}", 0, "header is not well-formed JSON"},
      {"array", "[1,2]", 0, "header must be a JSON object, found array"},
      {"string", R"("w")", 0, "header must be a JSON object, found string"},
      {"entry not an object", R"({"w":5})", 0, "tensor 'w': entry must be an object, found number"},
      {"entry an array", R"({"w":["F32",[1],[0,4]]})", 4, "tensor 'w': entry must be an object, found array"},
      {"empty name", R"({"":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", 4, "empty tensor name in header"},
      {"missing dtype", R"({"w":{"shape":[2,3],"data_offsets":[0,24]}})", 24, "tensor 'w': missing \"dtype\""},
      {"missing shape", R"({"w":{"dtype":"F32","data_offsets":[0,24]}})", 24, "tensor 'w': missing \"shape\""},
      {"missing offsets", R"({"w":{"dtype":"F32","shape":[2,3]}})", 24, "tensor 'w': missing \"data_offsets\""},
      {"unknown dtype", R"({"w":{"dtype":"F7","shape":[2,3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': unknown dtype \"F7\""},
      {"lower-case dtype", R"({"w":{"dtype":"f32","shape":[2,3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': unknown dtype \"f32\""},
      {"dtype a number", R"({"w":{"dtype":4,"shape":[2,3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': \"dtype\" must be a string"},
      {"dtype null", R"({"w":{"dtype":null,"shape":[2,3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': \"dtype\" must be a string"},
      {"shape not an array", R"({"w":{"dtype":"F32","shape":6,"data_offsets":[0,24]}})", 24,
       "tensor 'w': \"shape\" must be an array"},
      {"negative dim", R"({"w":{"dtype":"F32","shape":[-2,-3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': shape dimension must be a non-negative integer, found -2"},
      {"string dim", R"({"w":{"dtype":"F32","shape":["2",3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': shape dimension must be a non-negative integer, found string"},
      {"integral float dim", R"({"w":{"dtype":"F32","shape":[2.0,3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': shape dimension must be a non-negative integer, found 2.0"},
      {"fractional dim", R"({"w":{"dtype":"F32","shape":[2.5,3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': shape dimension must be a non-negative integer, found 2.5"},
      {"nested dim", R"({"w":{"dtype":"F32","shape":[[2],3],"data_offsets":[0,24]}})", 24,
       "tensor 'w': shape dimension must be a non-negative integer, found array"},
      {"dim above uint64", R"({"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,0]}})", 0,
       "tensor 'w': shape dimension must be a non-negative integer, found 1.8446744073709552e+19"},
      {"dim above int64", R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}})", 0,
       "tensor 'w': shape dimension 9223372036854775808 too large"},
      {"numel overflows int64", R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0,
       "tensor 'w': element count of shape [4294967296, 4294967296] overflows 64 bits"},
      {"bytes overflow uint64", R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0,
       "tensor 'w': byte size of shape [4611686018427387904] overflows"},
      {"size mismatch", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 24,
       "tensor 'w': shape [2, 3] x F32 needs 24 bytes, data_offsets span 20"},
      {"size mismatch zero", R"({"w":{"dtype":"F32","shape":[0,3],"data_offsets":[0,4]}})", 4,
       "tensor 'w': shape [0, 3] x F32 needs 0 bytes, data_offsets span 4"},
      {"reversed offsets", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}})", 24,
       "tensor 'w': data_offsets [24, 0] are reversed"},
      {"end past data", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})", 20,
       "tensor 'w': data_offsets end 24 is past the data section (20 bytes)"},
      {"huge end", R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]}})", 8,
       "tensor 'w': data_offsets end 18446744073709551615 is past the data section (8 bytes)"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24,
       "tensor 'b': data_offsets [8, 24] overlap tensor 'a' [0, 16]"},
      {"identical ranges", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8,
       "overlap tensor 'a' [0, 8]"},
      {"metadata an array", R"({"__metadata__":["pt"]})", 0, "\"__metadata__\" must be an object of strings"},
      {"metadata a string", R"({"__metadata__":"pt"})", 0, "\"__metadata__\" must be an object of strings"},
      {"metadata value a number", R"({"__metadata__":{"format":"pt","k":1}})", 0,
       "\"__metadata__\" value of \"k\" must be a string, found number"},
      {"metadata value null", R"({"__metadata__":{"k":null}})", 0,
       "\"__metadata__\" value of \"k\" must be a string, found null"},
      {"three offsets", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24,24]}})", 24,
       "tensor 'w': \"data_offsets\" must be [begin, end]"},
      {"one offset", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24]}})", 24,
       "tensor 'w': \"data_offsets\" must be [begin, end]"},
      {"offsets an object", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":{"0":0,"1":24}}})", 24,
       "tensor 'w': \"data_offsets\" must be [begin, end]"},
      {"negative offset", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[-1,23]}})", 24,
       "tensor 'w': data_offsets[0] must be a non-negative integer, found -1"},
      {"string offset", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,"24"]}})", 24,
       "tensor 'w': data_offsets[1] must be a non-negative integer, found string"},
  };
  for (const MalformedHeader& c : cases) {
    SCOPED_TRACE(c.what);
    expect_open_error(safetensors_bytes(c.header, c.data_size), c.phrase);
  }
}

TEST(SafetensorsRead, ParseHeaderNamesTheCallersLabel) {
  const std::string bytes = safetensors_bytes("[]", 0);
  const std::span<const std::byte> span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());
  EXPECT_EQ(error_from([&] { parse_safetensors_header(span, "label"); }),
            "label: header must be a JSON object, found array");
}

// A hostile header can nest arrays arbitrarily deep inside the 100 MB limit. The
// error message must not recurse over the nesting (json::dump() does, one stack
// frame per level) — this crashed with a stack overflow before it was fixed.
TEST(SafetensorsRead, DeeplyNestedShapeIsAnErrorNotAStackOverflow) {
  const size_t depth = 2'000'000;
  const std::string header = R"({"w":{"dtype":"F32","data_offsets":[0,0],"shape":[)" + std::string(depth, '[') +
                             std::string(depth, ']') + "]}}";
  expect_open_error(safetensors_bytes(header, 0),
                    "tensor 'w': shape dimension must be a non-negative integer, found array");
  const std::string offsets = R"({"w":{"dtype":"F32","shape":[],"data_offsets":[)" + std::string(depth, '[') +
                              std::string(depth, ']') + ",4]}}";
  expect_open_error(safetensors_bytes(offsets, 4),
                    "tensor 'w': data_offsets[0] must be a non-negative integer, found array");
}

TEST(SafetensorsRead, MisalignedTensorIsCopiedNotViewed) {
  // Another writer may put an F32 tensor at data offset 2. The header (8-byte prefix plus
  // a header padded to 8) keeps the data section aligned, so offset 2 misaligns the view:
  // the reader must hand out an aligned copy with the same bytes.
  std::string header = R"({"pad":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                       R"("w":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data = "\x01\x02";
  const float values[2] = {1.5f, -2.25f};
  data.append(reinterpret_cast<const char*>(values), sizeof values);
  const std::string path = testing::temp_dir() + "/misaligned.safetensors";
  write_raw(path, le64(header.size()) + header + data);
  const auto file = SafetensorsFile::open(path);
  const Tensor w = file.tensor("w");
  EXPECT_TRUE(w.owns_storage());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data()) % alignof(float), 0u);
  EXPECT_EQ(w.values<float>()[0], 1.5f);
  EXPECT_EQ(w.values<float>()[1], -2.25f);
  EXPECT_FALSE(file.tensor("pad").owns_storage());  // bytes need no alignment: still a view
}

TEST(SafetensorsRead, EveryTruncationOfAValidFileIsAnError) {
  std::mt19937_64 rng(3);
  const std::string dir = testing::temp_dir();
  const std::string full_path = dir + "/full.safetensors";
  write_safetensors(full_path,
                    {{"a", random_tensor(DType::kF32, {2, 3}, rng)},
                     {"b", random_tensor(DType::kI8, {5}, rng)},
                     {"c", random_tensor(DType::kBF16, {4}, rng)}},
                    {{"format", "pt"}});
  const std::string full = read_all(full_path);
  const SafetensorsHeader header = SafetensorsFile::open(full_path).header();
  ASSERT_EQ(header.entries.size(), 3u);

  const std::string path = dir + "/cut.safetensors";
  for (size_t length = 0; length < full.size(); ++length) {
    SCOPED_TRACE("truncated to " + std::to_string(length) + " of " + std::to_string(full.size()) + " bytes");
    write_raw(path, full.substr(0, length));
    const std::string message = error_from([&] { SafetensorsFile::open(path); });
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    // Which check fires depends only on where the cut falls.
    if (length < 8) {
      EXPECT_TRUE(contains(message, "truncated: " + std::to_string(length) + " bytes")) << message;
    } else if (length < header.data_start) {
      EXPECT_TRUE(contains(message, "runs past the end of the file")) << message;
    } else {
      EXPECT_TRUE(contains(message, "is past the data section (" + std::to_string(length - header.data_start) +
                                        " bytes)"))
          << message;
    }
  }
}

// ---------------------------------------------------------------------------------
// Sharded checkpoints

class SafetensorsCheckpointTest : public ::testing::Test {
 protected:
  static constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
  static constexpr const char* kShard2 = "model-00002-of-00002.safetensors";

  void SetUp() override {
    std::mt19937_64 rng(11);
    a_ = random_tensor(DType::kF32, {4, 2}, rng);
    b_ = random_tensor(DType::kBF16, {3}, rng);
    c_ = random_tensor(DType::kI64, {2, 2}, rng);
    dir_ = testing::temp_dir();
  }

  void write_shards(const NamedTensors& first, const NamedTensors& second) {
    write_safetensors(dir_ + "/" + kShard1, first);
    write_safetensors(dir_ + "/" + kShard2, second);
  }
  void write_index(const std::string& text) { write_raw(dir_ + "/model.safetensors.index.json", text); }
  std::string index_path() const { return dir_ + "/model.safetensors.index.json"; }

  std::string index_json(const std::string& weight_map) const {
    return R"({"metadata":{"total_size":152},"weight_map":{)" + weight_map + "}}";
  }
  std::string good_map() const {
    return std::string(R"("a":")") + kShard1 + R"(","b":")" + kShard1 + R"(","c":")" + kShard2 + "\"";
  }

  Tensor a_, b_, c_;
  std::string dir_;
};

TEST_F(SafetensorsCheckpointTest, OpensAllShardsFromFolderOrIndex) {
  write_shards({{"a", a_}, {"b", b_}}, {{"c", c_}});
  write_index(index_json(good_map()));
  for (const std::string& target : {dir_, index_path()}) {
    SCOPED_TRACE(target);
    const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open(target);
    ASSERT_EQ(checkpoint.shards().size(), 2u);
    EXPECT_EQ(checkpoint.names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_TRUE(checkpoint.tensor("a").bit_equal(a_));
    EXPECT_TRUE(checkpoint.tensor("b").bit_equal(b_));
    EXPECT_TRUE(checkpoint.tensor("c").bit_equal(c_));
    EXPECT_FALSE(checkpoint.tensor("c").owns_storage());
    EXPECT_FALSE(checkpoint.contains("d"));
    EXPECT_TRUE(contains(error_from([&] { checkpoint.tensor("d"); }), "no tensor named 'd'"));
    EXPECT_EQ(checkpoint.total_file_size(),
              fs::file_size(dir_ + "/" + kShard1) + fs::file_size(dir_ + "/" + kShard2));
  }
}

TEST_F(SafetensorsCheckpointTest, SingleFileFolderNeedsNoIndex) {
  write_safetensors(dir_ + "/model.safetensors", {{"a", a_}});
  const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open(dir_);
  EXPECT_EQ(checkpoint.names(), std::vector<std::string>{"a"});
  EXPECT_TRUE(checkpoint.tensor("a").bit_equal(a_));
}

TEST_F(SafetensorsCheckpointTest, FolderWithoutAnUnambiguousFile) {
  const std::string empty = error_from([&] { SafetensorsCheckpoint::open(dir_); });
  EXPECT_TRUE(contains(empty, dir_ + ": no .safetensors file in this folder")) << empty;
  write_shards({{"a", a_}}, {{"c", c_}});
  const std::string several = error_from([&] { SafetensorsCheckpoint::open(dir_); });
  EXPECT_TRUE(contains(several, dir_ + ": several .safetensors files and no model.safetensors.index.json")) << several;
}

TEST_F(SafetensorsCheckpointTest, MissingShard) {
  write_safetensors(dir_ + "/" + kShard1, {{"a", a_}, {"b", b_}});
  write_index(index_json(good_map()));
  const std::string message = error_from([&] { SafetensorsCheckpoint::open(dir_); });
  EXPECT_TRUE(contains(message, index_path() + ": missing shard " + dir_ + "/" + kShard2)) << message;
}

TEST_F(SafetensorsCheckpointTest, IndexPointsToTheWrongShard) {
  write_shards({{"a", a_}, {"b", b_}}, {{"c", c_}});
  write_index(index_json(std::string(R"("a":")") + kShard1 + R"(","b":")" + kShard2 + R"(","c":")" + kShard2 + "\""));
  const std::string message = error_from([&] { SafetensorsCheckpoint::open(dir_); });
  EXPECT_TRUE(contains(message, dir_ + "/" + kShard1 + ": tensor 'b' is mapped to " + kShard2 + " by the index"))
      << message;
}

TEST_F(SafetensorsCheckpointTest, TensorMissingFromTheWeightMap) {
  write_shards({{"a", a_}, {"b", b_}}, {{"c", c_}});
  write_index(index_json(std::string(R"("a":")") + kShard1 + R"(","c":")" + kShard2 + "\""));
  const std::string message = error_from([&] { SafetensorsCheckpoint::open(dir_); });
  EXPECT_TRUE(contains(message, dir_ + "/" + kShard1 + ": tensor 'b' is not in the index's weight_map")) << message;
}

TEST_F(SafetensorsCheckpointTest, WeightMapNamesATensorNoShardHas) {
  write_shards({{"a", a_}, {"b", b_}}, {{"c", c_}});
  write_index(index_json(good_map() + R"(,"d":")" + kShard2 + "\""));
  const std::string message = error_from([&] { SafetensorsCheckpoint::open(dir_); });
  EXPECT_TRUE(contains(message, dir_ + "/" + kShard2 + ": tensor 'd' listed in the index is missing from this shard"))
      << message;
}

TEST_F(SafetensorsCheckpointTest, DuplicateTensorAcrossShards) {
  write_shards({{"a", a_}, {"b", b_}}, {{"a", a_}, {"c", c_}});
  write_index(index_json(good_map()));
  const std::string message = error_from([&] { SafetensorsCheckpoint::open(dir_); });
  EXPECT_TRUE(contains(message, dir_ + "/" + kShard2 + ": tensor 'a' also appears in " + dir_ + "/" + kShard1))
      << message;
}

TEST_F(SafetensorsCheckpointTest, MalformedIndex) {
  write_shards({{"a", a_}, {"b", b_}}, {{"c", c_}});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"weight_map": {"a": )", "not well-formed JSON"},
      {"", "not well-formed JSON"},
      {"[]", "expected an object with a \"weight_map\" object"},
      {R"({"metadata":{}})", "expected an object with a \"weight_map\" object"},
      {R"({"weight_map":[]})", "expected an object with a \"weight_map\" object"},
      {R"({"weight_map":{"a":1}})", "weight_map entry 'a' must be a file name"},
      {R"({"weight_map":{"a":"../model-00001-of-00002.safetensors"}})",
       "weight_map entry 'a' names an invalid shard \"../model-00001-of-00002.safetensors\""},
      {R"({"weight_map":{"a":""}})", "weight_map entry 'a' names an invalid shard \"\""},
      {R"({"weight_map":{}})", "\"weight_map\" lists no tensors"},
      {std::string(R"({"weight_map":{"a":"x"}})") + std::string(1, '\0') + "junk", "not well-formed JSON (NUL byte"},
  };
  for (const auto& [text, phrase] : cases) {
    SCOPED_TRACE(text);
    write_index(text);
    const std::string message = error_from([&] { SafetensorsCheckpoint::open(dir_); });
    EXPECT_TRUE(contains(message, index_path() + ": " + phrase)) << message;
  }
}

TEST_F(SafetensorsCheckpointTest, BadShardIsReportedWithItsPath) {
  write_shards({{"a", a_}, {"b", b_}}, {{"c", c_}});
  write_raw(dir_ + "/" + kShard2, "garbage");
  write_index(index_json(good_map()));
  const std::string message = error_from([&] { SafetensorsCheckpoint::open(dir_); });
  EXPECT_TRUE(contains(message, dir_ + "/" + kShard2 + ": truncated: 7 bytes")) << message;
}

// ---------------------------------------------------------------------------------
// Writer

bool folder_is_empty(const std::string& dir) { return fs::directory_iterator(dir) == fs::directory_iterator(); }

TEST(SafetensorsWrite, ExactBytesWithSpacePaddedHeader) {
  const float values[2] = {1.0f, -2.0f};
  const std::string path = testing::temp_dir() + "/one.safetensors";
  write_safetensors(path, {{"w", Tensor::copy_of(DType::kF32, {2}, values, sizeof values)}});
  // nlohmann::json orders keys alphabetically; the 54-byte JSON gets 2 spaces so the
  // data section starts at 8 + 56 = 64.
  const std::string json = R"({"w":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})";
  ASSERT_EQ(json.size(), 54u);
  const std::string expected = le64(56) + json + "  " + std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  EXPECT_EQ(read_all(path), expected);
}

TEST(SafetensorsWrite, HeaderIsPaddedToAMultipleOfEightForEveryLength) {
  // Names of length 1..8 walk the JSON length through every residue mod 8.
  const std::string dir = testing::temp_dir();
  std::set<uint64_t> residues;
  for (int n = 1; n <= 8; ++n) {
    const std::string path = dir + "/pad" + std::to_string(n) + ".safetensors";
    const uint8_t byte = 42;
    write_safetensors(path, {{std::string(n, 'x'), Tensor::copy_of(DType::kU8, {1}, &byte, 1)}});
    const std::string bytes = read_all(path);
    const uint64_t length = SafetensorsFile::open(path).header().header_size;
    EXPECT_EQ(length % 8, 0u);
    const std::string header = bytes.substr(8, length);
    const size_t close = header.rfind('}');
    residues.insert((close + 1) % 8);
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
    EXPECT_LT(length - (close + 1), 8u) << "padding is minimal";
    EXPECT_EQ(bytes.back(), '\x2a');
  }
  EXPECT_EQ(residues.size(), 8u);
}

TEST(SafetensorsWrite, DuplicateOrReservedNamesLeaveNoFileBehind) {
  const float value = 1.0f;
  const Tensor t = Tensor::copy_of(DType::kF32, {}, &value, sizeof value);
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/dup.safetensors";
  const std::vector<std::pair<NamedTensors, std::string>> cases = {
      {{{"w", t}, {"v", t}, {"w", t}}, "duplicate tensor name 'w'"},
      {{{"w", t}, {"", t}}, "cannot write a tensor with an empty name"},
      {{{"__metadata__", t}}, "\"__metadata__\" is reserved"},
  };
  for (const auto& [tensors, phrase] : cases) {
    SCOPED_TRACE(phrase);
    const std::string message = error_from([&] { write_safetensors(path, tensors, {{"format", "pt"}}); });
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_TRUE(contains(message, phrase)) << message;
    EXPECT_TRUE(folder_is_empty(dir)) << "a failed write left a file in " << dir;
  }
}

TEST(SafetensorsWrite, FailedWriteKeepsThePreviousFile) {
  const float value = 1.0f;
  const Tensor t = Tensor::copy_of(DType::kF32, {}, &value, sizeof value);
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/keep.safetensors";
  write_safetensors(path, {{"w", t}});
  const std::string before = read_all(path);
  EXPECT_THROW(write_safetensors(path, {{"w", t}, {"w", t}}), Error);
  EXPECT_EQ(read_all(path), before);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(SafetensorsWrite, MissingDirectoryIsAnError) {
  const float value = 1.0f;
  const std::string path = testing::temp_dir() + "/no/such/dir/x.safetensors";
  const std::string message =
      error_from([&] { write_safetensors(path, {{"w", Tensor::copy_of(DType::kF32, {}, &value, sizeof value)}}); });
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  EXPECT_TRUE(contains(message, "cannot create a temporary file")) << message;
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace lowbit
