// ggml block types: the type table against ggml's, bit-exact conformance with the `gguf`
// package (testdata/ggml_golden.bin, made by scripts/make-ggml-golden.py), the layouts of
// docs/FORMATS.md checked with blocks packed by hand, quantization error bounds, chunking
// and thread invariance, and refusal of malformed sizes.
#include "lowbit/numerics/ggml_quants.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"

namespace lowbit {
namespace {

using Bytes = std::vector<std::byte>;

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

// Runs `fn`, expects a lowbit::Error whose message contains every one of `parts`.
template <class Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected lowbit::Error";
  } catch (const Error& e) {
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

std::vector<float> dequantize(GgmlType type, const Bytes& data, size_t values) {
  std::vector<float> out(values);
  ggml_dequantize(type, data, out);
  return out;
}

Bytes quantize(GgmlType type, const std::vector<float>& in) {
  Bytes out(ggml_row_bytes(type, in.size()));
  ggml_quantize(type, in, out);
  return out;
}

void put_u16(Bytes& b, size_t at, uint16_t v) {
  b[at] = std::byte(v & 0xFF);
  b[at + 1] = std::byte(v >> 8);
}
void put_f16(Bytes& b, size_t at, float v) { put_u16(b, at, f32_to_f16_bits(v)); }
uint8_t byte_at(const Bytes& b, size_t at) { return std::to_integer<uint8_t>(b[at]); }
float f16_at(const Bytes& b, size_t at) { return f16_bits_to_f32(static_cast<uint16_t>(byte_at(b, at) | byte_at(b, at + 1) << 8)); }

// --- the type table ---------------------------------------------------------------------

struct Expected {
  uint32_t raw;
  const char* name;
  uint32_t block_size, type_size;
  bool dequantize;
};

// From ggml/src/ggml.c's type_traits and ggml-common.h's block structs (sizeof(block_q8_1) = 36).
constexpr Expected kGgml[] = {
    {0, "f32", 1, 4, true},         {1, "f16", 1, 2, true},          {2, "q4_0", 32, 18, true},
    {3, "q4_1", 32, 20, true},      {6, "q5_0", 32, 22, true},       {7, "q5_1", 32, 24, true},
    {8, "q8_0", 32, 34, true},      {9, "q8_1", 32, 36, true},       {10, "q2_K", 256, 84, true},
    {11, "q3_K", 256, 110, true},   {12, "q4_K", 256, 144, true},    {13, "q5_K", 256, 176, true},
    {14, "q6_K", 256, 210, true},   {15, "q8_K", 256, 292, true},    {16, "iq2_xxs", 256, 66, false},
    {17, "iq2_xs", 256, 74, false}, {18, "iq3_xxs", 256, 98, false}, {19, "iq1_s", 256, 50, false},
    {20, "iq4_nl", 32, 18, true},   {21, "iq3_s", 256, 110, false},  {22, "iq2_s", 256, 82, false},
    {23, "iq4_xs", 256, 136, true}, {24, "i8", 1, 1, true},          {25, "i16", 1, 2, true},
    {26, "i32", 1, 4, true},        {27, "i64", 1, 8, true},         {28, "f64", 1, 8, true},
    {29, "iq1_m", 256, 56, false},  {30, "bf16", 1, 2, true},        {34, "tq1_0", 256, 54, true},
    {35, "tq2_0", 256, 66, true},   {39, "mxfp4", 32, 17, true},     {40, "nvfp4", 64, 36, true},
};

TEST(GgmlTypes, TableMatchesGgml) {
  int known = 0;
  for (uint32_t raw = 0; raw < 300; ++raw) {
    const GgmlTypeTraits* t = find_ggml_type(raw);
    const Expected* e = nullptr;
    for (const Expected& x : kGgml)
      if (x.raw == raw) e = &x;
    if (e == nullptr) {
      EXPECT_EQ(t, nullptr) << raw;
      continue;
    }
    ++known;
    ASSERT_NE(t, nullptr) << raw;
    EXPECT_EQ(static_cast<uint32_t>(t->type), raw);
    EXPECT_EQ(t->name, e->name);
    EXPECT_EQ(t->block_size, e->block_size) << e->name;
    EXPECT_EQ(t->type_size, e->type_size) << e->name;
    EXPECT_EQ(t->can_dequantize, e->dequantize) << e->name;
    EXPECT_EQ(&ggml_traits(t->type), t);
  }
  EXPECT_EQ(known, 33);
  EXPECT_EQ(find_ggml_type(0xFFFFFFFFu), nullptr);
  expect_error([] { ggml_traits(static_cast<GgmlType>(4)); }, {"unknown ggml type", "4"});
}

TEST(GgmlTypes, ParseRoundTripsEveryName) {
  for (const Expected& e : kGgml) {
    const GgmlType type = static_cast<GgmlType>(e.raw);
    std::string upper = e.name, lower = e.name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(parse_ggml_type(e.name), type) << e.name;
    EXPECT_EQ(parse_ggml_type(upper), type) << upper;
    EXPECT_EQ(parse_ggml_type(lower), type) << lower;
    EXPECT_EQ(parse_ggml_type(ggml_traits(type).name), type);
  }
  EXPECT_EQ(parse_ggml_type("Q4_k"), GgmlType::kQ4_K);
  for (std::string_view bad : {"", "q4", "q4_2", "q4_0 ", " f32", "iq4_nl_4_4", "nvfp4x", "float32", "q4_k_m"})
    EXPECT_EQ(parse_ggml_type(bad), std::nullopt) << bad;
  EXPECT_EQ(parse_ggml_type(std::string_view("f32\0", 4)), std::nullopt);
}

TEST(GgmlTypes, RowBytes) {
  EXPECT_EQ(ggml_row_bytes(GgmlType::kQ4_K, 4096), 16u * 144);
  EXPECT_EQ(ggml_row_bytes(GgmlType::kQ8_0, 576), 18u * 34);
  EXPECT_EQ(ggml_row_bytes(GgmlType::kF32, 3), 12u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::kBF16, 0), 0u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::kIQ2_XXS, 512), 132u);  // sizes are known even where decoding is not
  expect_error([] { ggml_row_bytes(GgmlType::kQ4_0, 33); }, {"q4_0", "33", "block size 32"});
  expect_error([] { ggml_row_bytes(GgmlType::kQ6_K, 128); }, {"q6_K", "128", "256"});
  // 2^61 f64 values are exactly 2^64 bytes: one too many for a uint64_t.
  EXPECT_EQ(ggml_row_bytes(GgmlType::kF64, (uint64_t{1} << 61) - 1), UINT64_MAX - 7);
  expect_error([] { ggml_row_bytes(GgmlType::kF64, uint64_t{1} << 61); }, {"f64", "overflow"});
  expect_error([] { ggml_row_bytes(GgmlType::kQ8_K, UINT64_MAX / 256 * 256); }, {"q8_K", "overflow"});
}

TEST(GgmlTypes, QuantizableTypes) {
  const std::set<GgmlType> expected = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0,
                                       GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1};
  for (const Expected& e : kGgml) {
    const auto type = static_cast<GgmlType>(e.raw);
    EXPECT_EQ(ggml_can_quantize(type), expected.count(type) == 1) << e.name;
  }
}

// --- conformance with the gguf package -----------------------------------------------------

struct GoldenRecord {
  uint32_t kind;  // 0 dequantize, 1 quantize
  GgmlType type;
  Bytes bytes;
  std::vector<uint32_t> values;
};

std::vector<GoldenRecord> read_golden() {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "testdata" / "ggml_golden.bin";
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(path.string(), "cannot open (made by scripts/make-ggml-golden.py)");
  const std::vector<char> blob((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  size_t at = 0;
  const auto take = [&](size_t n) {
    if (blob.size() - at < n) throw Error(path.string(), "truncated at byte " + std::to_string(at));
    const char* p = blob.data() + at;
    at += n;
    return p;
  };
  const auto u32 = [&] {
    const auto* p = reinterpret_cast<const unsigned char*>(take(4));
    return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  };
  if (std::memcmp(take(8), "LBGGMLG1", 8) != 0) throw Error(path.string(), "bad magic");
  std::vector<GoldenRecord> records(u32());
  for (GoldenRecord& r : records) {
    r.kind = u32();
    r.type = static_cast<GgmlType>(u32());
    const uint32_t n = u32();
    const uint32_t m = u32();
    const char* bytes = take(m);
    r.bytes.resize(m);
    std::memcpy(r.bytes.data(), bytes, m);
    r.values.resize(n);
    for (uint32_t& v : r.values) v = u32();
  }
  if (at != blob.size()) throw Error(path.string(), "trailing bytes");
  return records;
}

TEST(GgmlGolden, MatchesGgufBitForBit) {
  const std::vector<GoldenRecord> records = read_golden();
  std::set<GgmlType> dequantized, quantized;
  for (const GoldenRecord& r : records) {
    const GgmlTypeTraits& t = ggml_traits(r.type);
    SCOPED_TRACE(std::string(r.kind == 0 ? "dequantize " : "quantize ") + std::string(t.name));
    std::vector<float> values(r.values.size());
    for (size_t i = 0; i < values.size(); ++i) values[i] = std::bit_cast<float>(r.values[i]);
    if (r.kind == 0) {
      const std::vector<float> out = dequantize(r.type, r.bytes, values.size());
      size_t wrong = 0;
      for (size_t i = 0; i < out.size(); ++i) {
        if (bits_of(out[i]) == r.values[i]) continue;
        if (++wrong <= 5)
          ADD_FAILURE() << "value " << i << ": lowbit " << out[i] << " (0x" << std::hex << bits_of(out[i])
                        << "), gguf " << values[i] << " (0x" << r.values[i] << ")" << std::dec;
      }
      EXPECT_EQ(wrong, 0u);
      dequantized.insert(r.type);
    } else {
      const Bytes out = quantize(r.type, values);
      ASSERT_EQ(out.size(), r.bytes.size());
      size_t wrong = 0;
      for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] == r.bytes[i]) continue;
        if (++wrong <= 5)
          ADD_FAILURE() << "byte " << i << " (block " << i / t.type_size << "): lowbit 0x" << std::hex
                        << int(byte_at(out, i)) << ", gguf 0x" << int(byte_at(r.bytes, i)) << std::dec;
      }
      EXPECT_EQ(wrong, 0u);
      quantized.insert(r.type);
    }
  }
  // Every type lowbit decodes is in the file, except the two gguf has no dequantizer for
  // (Q8_1, Q8_K: checked by hand below); every type it encodes likewise.
  for (const Expected& e : kGgml) {
    const auto type = static_cast<GgmlType>(e.raw);
    const bool in_gguf = e.dequantize && type != GgmlType::kQ8_1 && type != GgmlType::kQ8_K;
    EXPECT_EQ(dequantized.count(type), in_gguf ? 1u : 0u) << e.name;
    EXPECT_EQ(quantized.count(type), ggml_can_quantize(type) ? 1u : 0u) << e.name;
  }
}

// --- layouts, checked against blocks packed by hand per docs/FORMATS.md --------------------

TEST(GgmlDequantize, LegacyBlocksByHand) {
  {  // Q8_0: d = 0.5, codes −128, −1, 0, 1, 127, …
    Bytes b(34, std::byte{0});
    put_f16(b, 0, 0.5f);
    b[2] = std::byte{0x80};
    b[3] = std::byte{0xFF};
    b[5] = std::byte{1};
    b[6] = std::byte{127};
    const auto y = dequantize(GgmlType::kQ8_0, b, 32);
    EXPECT_EQ(y[0], -64.0f);
    EXPECT_EQ(y[1], -0.5f);
    EXPECT_EQ(y[2], 0.0f);
    EXPECT_EQ(y[3], 0.5f);
    EXPECT_EQ(y[4], 63.5f);
  }
  {  // Q4_0: byte j holds value j (low nibble) and value j + 16 (high nibble), offset 8.
    Bytes b(18, std::byte{0});
    put_f16(b, 0, 2.0f);
    b[2] = std::byte{0xF0};  // value 0: code 0 → −16; value 16: code 15 → 14
    b[17] = std::byte{0x98};  // value 15: code 8 → 0; value 31: code 9 → 2
    const auto y = dequantize(GgmlType::kQ4_0, b, 32);
    EXPECT_EQ(y[0], -16.0f);
    EXPECT_EQ(y[16], 14.0f);
    EXPECT_EQ(y[15], 0.0f);
    EXPECT_EQ(y[31], 2.0f);
  }
  {  // Q4_1: value = q·d + m.
    Bytes b(20, std::byte{0});
    put_f16(b, 0, 0.25f);
    put_f16(b, 2, -1.0f);
    b[4] = std::byte{0x3C};  // value 0: 12 → 2; value 16: 3 → −0.25
    const auto y = dequantize(GgmlType::kQ4_1, b, 32);
    EXPECT_EQ(y[0], 2.0f);
    EXPECT_EQ(y[16], -0.25f);
    EXPECT_EQ(y[1], -1.0f);
  }
  {  // Q5_0 and Q5_1: bit j of qh is the fifth bit of value j (value j + 16: bit j + 16).
    Bytes b(22, std::byte{0});
    put_f16(b, 0, 1.0f);
    b[2] = std::byte{0x01};  // qh bit 0: value 0
    b[5] = std::byte{0x80};  // qh bit 31: value 31
    b[6] = std::byte{0x21};  // value 0: low 1 | 16 = 17 → 1; value 16: 2 → −14
    b[21] = std::byte{0x70};  // value 15: 0 → −16; value 31: 7 | 16 = 23 → 7
    const auto y = dequantize(GgmlType::kQ5_0, b, 32);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[16], -14.0f);
    EXPECT_EQ(y[15], -16.0f);
    EXPECT_EQ(y[31], 7.0f);
    Bytes c(24, std::byte{0});
    put_f16(c, 0, 0.5f);
    put_f16(c, 2, 3.0f);
    c[4 + 2] = std::byte{0x04};  // qh bit 18: value 18
    c[8 + 2] = std::byte{0x51};  // value 2: 1 → 3.5; value 18: 5 | 16 = 21 → 13.5
    const auto z = dequantize(GgmlType::kQ5_1, c, 32);
    EXPECT_EQ(z[2], 3.5f);
    EXPECT_EQ(z[18], 13.5f);
  }
  {  // Q8_1 (no gguf dequantizer): d | s | 32 int8, value q·d; s is ignored.
    Bytes b(36, std::byte{0});
    put_f16(b, 0, 0.125f);
    put_f16(b, 2, 1000.0f);
    b[4] = std::byte{0xF8};  // −8
    b[35] = std::byte{100};
    const auto y = dequantize(GgmlType::kQ8_1, b, 32);
    EXPECT_EQ(y[0], -1.0f);
    EXPECT_EQ(y[31], 12.5f);
    EXPECT_EQ(y[1], 0.0f);
  }
  {  // Q8_K (no gguf dequantizer): d is an f32, then 256 int8, then 16 int16 sums.
    Bytes b(292, std::byte{0});
    const uint32_t d = bits_of(0.1f);
    for (int i = 0; i < 4; ++i) b[i] = std::byte((d >> (8 * i)) & 0xFF);
    b[4] = std::byte{3};
    b[4 + 255] = std::byte{0x81};  // −127
    const auto y = dequantize(GgmlType::kQ8_K, b, 256);
    EXPECT_EQ(y[0], 0.1f * 3.0f);
    EXPECT_EQ(y[255], 0.1f * -127.0f);
  }
  {  // MXFP4: E8M0 scale 2^(e−127) times the E2M1 value (ggml: half scale × doubled level).
    Bytes b(17, std::byte{0});
    b[0] = std::byte{128};     // 2^1
    b[1] = std::byte{0xD7};    // value 0: code 7 → 6·2 = 12; value 16: code 13 → −3·2 = −6
    const auto y = dequantize(GgmlType::kMXFP4, b, 32);
    EXPECT_EQ(y[0], 12.0f);
    EXPECT_EQ(y[16], -6.0f);
    b[0] = std::byte{0};       // 2^−127: a subnormal scale, 0.5 → 2^−128
    b[1] = std::byte{0x01};
    EXPECT_EQ(dequantize(GgmlType::kMXFP4, b, 32)[0], std::ldexp(1.0f, -128));
  }
  {  // NVFP4 (ggml-common.h block_nvfp4): d[4] UE4M3, one per 16 values, then 32 bytes; sub-block s's
     // value j < 8 is the low nibble of qs[8s + j], value j + 8 its high nibble. ggml reads 0x7F as 0.
    Bytes b(36, std::byte{0});
    b[0] = std::byte{0x38};   // 0.0111.000: 1.0
    b[1] = std::byte{0x01};   // subnormal 2^-9
    b[2] = std::byte{0x7F};   // E4M3's NaN pattern: 0 in ggml
    b[3] = std::byte{0x7E};   // 448
    b[4 + 0] = std::byte{0xD7};        // sub-block 0: value 0 = code 7 (6), value 8 = code 13 (−3)
    b[4 + 8] = std::byte{0x01};        // sub-block 1: value 16 = code 1 (0.5)
    b[4 + 16] = std::byte{0x07};       // sub-block 2: value 32 = code 7, scale 0
    b[4 + 24 + 7] = std::byte{0x90};   // sub-block 3: value 63 = code 9 (−0.5)
    const auto y = dequantize(GgmlType::kNVFP4, b, 64);
    EXPECT_EQ(y[0], 6.0f);
    EXPECT_EQ(y[8], -3.0f);
    EXPECT_EQ(y[16], std::ldexp(0.5f, -9));
    EXPECT_EQ(y[32], 0.0f);
    EXPECT_EQ(y[63], -224.0f);
    EXPECT_EQ(y[1], 0.0f);
  }
}

// Q4_K/Q5_K: eight (scale, min) pairs of 6 bits packed into 12 bytes as FORMATS.md describes.
void pack_k4_scales(Bytes& b, size_t at, const int sc[8], const int m[8]) {
  for (int j = 0; j < 4; ++j) {
    b[at + j] = std::byte((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    b[at + 4 + j] = std::byte((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    b[at + 8 + j] = std::byte((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

TEST(GgmlDequantize, KQuantSubBlockScalesAsDocumented) {
  const int sc[8] = {1, 63, 17, 32, 5, 60, 33, 48};
  const int m[8] = {0, 9, 63, 31, 50, 2, 16, 47};
  const float d = 0.5f, dmin = 0.25f;
  {  // Q4_K with every code 3: sub-block s = 32s … 32s+31 is d·sc·3 − dmin·m.
    Bytes b(144, std::byte{0x33});
    put_f16(b, 0, d);
    put_f16(b, 2, dmin);
    pack_k4_scales(b, 4, sc, m);
    const auto y = dequantize(GgmlType::kQ4_K, b, 256);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], d * sc[i / 32] * 3 - dmin * m[i / 32]) << i;
  }
  {  // Q5_K with codes 3 + 16 wherever the value index is odd (fifth bits in qh).
    Bytes b(176, std::byte{0x33});
    put_f16(b, 0, d);
    put_f16(b, 2, dmin);
    pack_k4_scales(b, 4, sc, m);
    for (int l = 0; l < 32; ++l) b[16 + l] = std::byte(l % 2 ? 0xFF : 0x00);  // qh[l]: all sub-blocks
    const auto y = dequantize(GgmlType::kQ5_K, b, 256);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], d * sc[i / 32] * (i % 2 ? 19 : 3) - dmin * m[i / 32]) << i;
  }
  {  // Q3_K: sixteen 6-bit scales (offset 32); codes 2 with the hmask bit set, i.e. 2.
    Bytes b(110, std::byte{0});
    int s[16];
    for (int i = 0; i < 16; ++i) s[i] = (i * 23 + 5) % 64;
    for (int i = 0; i < 16; ++i) {
      b[96 + (i % 8)] |= std::byte((s[i] & 15) << (i < 8 ? 0 : 4));
      b[96 + 8 + i % 4] |= std::byte((s[i] >> 4) << (2 * (i / 4)));
    }
    for (int i = 0; i < 32; ++i) b[i] = std::byte{0xFF};       // hmask: high bits set → no −4
    for (int i = 32; i < 96; ++i) b[i] = std::byte{0xAA};      // every 2-bit code = 2
    put_f16(b, 108, 0.75f);
    const auto y = dequantize(GgmlType::kQ3_K, b, 256);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.75f * (s[i / 16] - 32) * 2) << i;
    for (int i = 0; i < 32; ++i) b[i] = std::byte{0};         // high bits clear → 2 − 4
    const auto z = dequantize(GgmlType::kQ3_K, b, 256);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(z[i], 0.75f * (s[i / 16] - 32) * -2) << i;
  }
  {  // Q2_K: scale nibble low, min nibble high, per 16 values.
    Bytes b(84, std::byte{0x55});  // every 2-bit code = 1
    for (int i = 0; i < 16; ++i) b[i] = std::byte((i & 15) | ((15 - i) << 4));
    put_f16(b, 80, d);
    put_f16(b, 82, dmin);
    const auto y = dequantize(GgmlType::kQ2_K, b, 256);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], d * (i / 16) - dmin * (15 - i / 16)) << i;
  }
  {  // Q6_K: int8 scales per 16 values; all 6-bit codes 33 (→ +1): low nibble 1, high bits 2.
    Bytes b(210, std::byte{0x11});
    for (int i = 128; i < 192; ++i) b[i] = std::byte{0xAA};
    for (int i = 0; i < 16; ++i) b[192 + i] = std::byte(static_cast<uint8_t>(static_cast<int8_t>(i * 17 - 128)));
    put_f16(b, 208, 0.5f);
    const auto y = dequantize(GgmlType::kQ6_K, b, 256);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.5f * static_cast<float>((i / 16) * 17 - 128)) << i;
  }
  {  // IQ4_XS: 6-bit scales split into scales_l nibbles and scales_h bit pairs; level 8 = +1.
    Bytes b(136, std::byte{0x88});
    put_f16(b, 0, 0.5f);
    const int ls[8] = {0, 63, 32, 33, 31, 1, 40, 20};
    uint16_t high = 0;
    for (int ib = 0; ib < 8; ++ib) high |= static_cast<uint16_t>((ls[ib] >> 4) << (2 * ib));
    put_u16(b, 2, high);
    for (int ib = 0; ib < 8; ib += 2) b[4 + ib / 2] = std::byte((ls[ib] & 15) | ((ls[ib + 1] & 15) << 4));
    const auto y = dequantize(GgmlType::kIQ4_XS, b, 256);
    for (int i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.5f * (ls[i / 32] - 32) * 1) << i;
  }
}

TEST(GgmlDequantize, NonUniformAndTernaryLevels) {
  {  // IQ4_NL's 16 levels, codes 0…15 in the low nibbles.
    const float levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    Bytes b(18, std::byte{0});
    put_f16(b, 0, 0.5f);
    for (int j = 0; j < 16; ++j) b[2 + j] = std::byte(j | ((15 - j) << 4));
    const auto y = dequantize(GgmlType::kIQ4_NL, b, 32);
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(y[j], 0.5f * levels[j]);
      EXPECT_EQ(y[j + 16], 0.5f * levels[15 - j]);
    }
  }
  {  // TQ2_0: value 32k + m of each 128 is bits 2k of qs[m]; code − 1.
    Bytes b(66, std::byte{0});
    b[0] = std::byte{0b10'01'00'10};  // values 0, 32, 64, 96: codes 2, 0, 1, 2
    put_f16(b, 64, 3.0f);
    const auto y = dequantize(GgmlType::kTQ2_0, b, 256);
    EXPECT_EQ(y[0], 3.0f);
    EXPECT_EQ(y[32], -3.0f);
    EXPECT_EQ(y[64], 0.0f);
    EXPECT_EQ(y[96], 3.0f);
    EXPECT_EQ(y[1], -3.0f);
  }
  {  // TQ1_0: five trits per byte as ⌈digits·256/243⌉, most significant digit first.
    Bytes b(54, std::byte{0});
    const int trits[5] = {2, 0, 1, 1, 2};  // values 0, 32, 64, 96, 128
    int digits = 0;
    for (int t : trits) digits = digits * 3 + t;
    b[0] = std::byte(static_cast<uint8_t>((digits * 256 + 242) / 243));
    put_f16(b, 52, 1.5f);
    const auto y = dequantize(GgmlType::kTQ1_0, b, 256);
    for (int n = 0; n < 5; ++n) EXPECT_EQ(y[32 * n], 1.5f * (trits[n] - 1)) << n;
    EXPECT_EQ(y[1], -1.5f);  // byte 0 → digits 0 → −d
  }
}

TEST(GgmlDequantize, PlainTypesAndSpecialValues) {
  Bytes h(4);
  put_u16(h, 0, 0x7C01);  // f16 signaling NaN: widened quiet, as ggml's F16C path does
  put_u16(h, 2, 0xFC00);
  auto y = dequantize(GgmlType::kF16, h, 2);
  EXPECT_EQ(bits_of(y[0]), 0x7FC02000u);
  EXPECT_EQ(y[1], -INFINITY);
  put_u16(h, 0, 0x7F81);  // bf16 widening is a shift: even a signaling NaN keeps its bits
  y = dequantize(GgmlType::kBF16, h, 2);
  EXPECT_EQ(bits_of(y[0]), 0x7F810000u);
  Bytes i32(4);
  for (int i = 0; i < 4; ++i) i32[i] = std::byte(((16777217u) >> (8 * i)) & 0xFF);
  EXPECT_EQ(dequantize(GgmlType::kI32, i32, 1)[0], 16777216.0f);  // 2^24 + 1 rounds to even
}

// --- sizes and refusals --------------------------------------------------------------------

TEST(GgmlDequantize, RejectsBadSizesAndTypes) {
  std::vector<float> out(64);
  Bytes data(36);
  ggml_dequantize(GgmlType::kQ4_0, data, out);
  expect_error([&] { ggml_dequantize(GgmlType::kQ4_0, std::span(data).first(35), out); },
               {"ggml_dequantize", "q4_0", "36 bytes", "data has 35"});
  expect_error([&] { ggml_dequantize(GgmlType::kQ4_0, Bytes(37), out); }, {"data has 37"});
  expect_error([&] { ggml_dequantize(GgmlType::kQ4_0, data, std::span(out).first(63)); },
               {"q4_0", "63", "block size 32"});
  expect_error([&] { ggml_dequantize(GgmlType::kQ4_K, Bytes(144), std::span(out).first(32)); }, {"q4_K", "256"});
  for (GgmlType type : {GgmlType::kIQ2_XXS, GgmlType::kIQ2_XS, GgmlType::kIQ3_XXS, GgmlType::kIQ1_S,
                        GgmlType::kIQ3_S, GgmlType::kIQ2_S, GgmlType::kIQ1_M}) {
    const GgmlTypeTraits& t = ggml_traits(type);
    std::vector<float> o(256);
    expect_error([&] { ggml_dequantize(type, Bytes(t.type_size), o); },
                 {std::string(t.name), "does not implement"});
  }
  expect_error([&] { ggml_dequantize(static_cast<GgmlType>(41), data, out); }, {"unknown ggml type", "41"});
  // Empty input is fine.
  ggml_dequantize(GgmlType::kQ6_K, {}, {});
}

TEST(GgmlQuantize, RejectsBadSizesAndTypes) {
  std::vector<float> in(64, 1.0f);
  Bytes out(40);
  expect_error([&] { ggml_quantize(GgmlType::kQ4_1, in, std::span(out).first(39)); },
               {"ggml_quantize", "q4_1", "40 bytes", "output has 39"});
  expect_error([&] { ggml_quantize(GgmlType::kQ4_1, std::span(in).first(48), out); }, {"48", "block size 32"});
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kIQ4_NL, GgmlType::kQ8_1, GgmlType::kI8})
    expect_error([&] { ggml_quantize(type, in, out); }, {std::string(ggml_traits(type).name), "no reference quantizer"});
  ggml_quantize(GgmlType::kQ8_0, {}, {});
}

// --- quantization properties -------------------------------------------------------------

std::vector<float> random_values(uint64_t seed, size_t n) {
  const CounterRng rng(seed, 0);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const float scale = std::ldexp(1.0f, static_cast<int>(rng.bits(2 * (i / 32)) % 24) - 12);  // per block
    v[i] = (2.0f * rng.uniform(2 * i + 1) - 1.0f) * scale;
  }
  return v;
}

// Each value comes back within half a step of the grid it was rounded to, plus what storing
// d (and m) in f16 costs: the codes are computed with the exact float d, the values rebuilt
// with its f16 rounding. Symmetric types have one exception, the code clamp: ggml maps the
// extreme value to code 0 (−8 or −16 steps), so values of the other sign beyond 7.5 (15.5)
// steps can only reach +7 (+15) steps and are off by up to a full step.
TEST(GgmlQuantize, ErrorWithinHalfAStep) {
  struct Case {
    GgmlType type;
    int levels;      // codes 0 … levels − 1
    bool symmetric;  // d = extreme / −(levels/2), no min
  };
  for (const Case c : {Case{GgmlType::kQ8_0, 255, true}, Case{GgmlType::kQ4_0, 16, true},
                       Case{GgmlType::kQ5_0, 32, true}, Case{GgmlType::kQ4_1, 16, false},
                       Case{GgmlType::kQ5_1, 32, false}}) {
    SCOPED_TRACE(std::string(ggml_traits(c.type).name));
    const std::vector<float> x = random_values(static_cast<uint64_t>(c.type), 32 * 500);
    const Bytes q = quantize(c.type, x);
    const std::vector<float> y = dequantize(c.type, q, x.size());
    const size_t type_size = ggml_traits(c.type).type_size;
    for (size_t blk = 0; blk < x.size() / 32; ++blk) {
      const float* xb = x.data() + 32 * blk;
      float lo = xb[0], hi = xb[0], amax = 0.0f, extreme = 0.0f;
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, xb[j]);
        hi = std::max(hi, xb[j]);
        if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), extreme = xb[j];
      }
      const float d16 = f16_at(q, blk * type_size);
      double step, f16_cost;
      if (c.type == GgmlType::kQ8_0) {
        step = amax / 127.0;
        f16_cost = 127 * std::fabs(step - d16);
      } else if (c.symmetric) {
        step = std::fabs(extreme) / (c.levels / 2);
        f16_cost = (c.levels / 2) * std::fabs(step - std::fabs(d16));
      } else {
        step = (static_cast<double>(hi) - lo) / (c.levels - 1);
        f16_cost = (c.levels - 1) * std::fabs(step - d16) + std::fabs(lo - f16_at(q, blk * type_size + 2));
      }
      for (int j = 0; j < 32; ++j) {
        const double err = std::fabs(static_cast<double>(y[32 * blk + j]) - xb[j]);
        const bool clamped = c.symmetric && c.type != GgmlType::kQ8_0 && xb[j] * extreme < 0 &&
                             std::fabs(xb[j]) > (c.levels / 2 - 0.5) * step;
        const double bound = (clamped ? 1.0 : 0.5) * step + f16_cost + 1e-6 * amax;
        ASSERT_LE(err, bound) << "block " << blk << " value " << j << ": " << xb[j] << " → " << y[32 * blk + j];
      }
    }
  }
}

// A zero block comes back as zeros; in Q4_0/Q5_0 they are −0, because ggml's scale is
// max / −8 (or −16) = −0 and (q − 8)·d = 0·(−0). A constant block whose scales are exact
// in f16 (−31.75 = −127 · 0.25) comes back exactly.
TEST(GgmlQuantize, ZeroAndConstantBlocks) {
  const std::vector<float> zeros(32, 0.0f), constant(32, -31.75f);
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    SCOPED_TRACE(std::string(ggml_traits(type).name));
    const bool negative = type == GgmlType::kQ4_0 || type == GgmlType::kQ5_0;
    for (float v : dequantize(type, quantize(type, zeros), 32)) EXPECT_EQ(bits_of(v), negative ? 0x80000000u : 0u);
    for (float v : dequantize(type, quantize(type, constant), 32)) EXPECT_EQ(v, -31.75f);
  }
}

// ggml's C leaves float-to-int casts of NaN/Inf undefined; lowbit pins them to what ggml does
// on x86 (cvttss2si: code byte 0), so the output is at least deterministic and ggml's there.
TEST(GgmlQuantize, NonFiniteInputsAreDeterministic) {
  std::vector<float> x(32, 1.0f);
  x[5] = INFINITY;  // Q8_0: d = Inf, id = 1/Inf = 0, Inf·0 = NaN → code 0; finite values → 0
  Bytes q = quantize(GgmlType::kQ8_0, x);
  EXPECT_EQ(f16_at(q, 0), INFINITY);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(byte_at(q, 2 + j), 0) << j;
  x[5] = NAN;  // Q4_0: NaN never wins the absolute max; its code is byte 0 → value −8·d
  q = quantize(GgmlType::kQ4_0, x);
  EXPECT_EQ(f16_at(q, 0), -0.125f);
  EXPECT_EQ(byte_at(q, 2 + 5) & 0x0F, 0);
  EXPECT_EQ(dequantize(GgmlType::kQ4_0, q, 32)[0], 1.0f);
  // f16 NaNs are written as ggml's portable conversion writes them: sign | 0x7E00.
  const Bytes h = quantize(GgmlType::kF16, {std::bit_cast<float>(0x7F800001u), std::bit_cast<float>(0xFFC12345u),
                                            INFINITY, 65520.0f, 65519.0f});
  const uint16_t expected[] = {0x7E00, 0xFE00, 0x7C00, 0x7C00, 0x7BFF};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(byte_at(h, 2 * i) | byte_at(h, 2 * i + 1) << 8, expected[i]) << i;
  std::vector<float> y(32, 1.0f);
  y[31] = NAN;  // Q8_0: a NaN in last place survives ggml's MAX(); d = NaN is stored as 0x7E00
  EXPECT_EQ(byte_at(quantize(GgmlType::kQ8_0, y), 1), 0x7E);
}

// --- chunking and threads ----------------------------------------------------------------

TEST(GgmlDequantize, ChunkedAndThreadedMatchBlockByBlock) {
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kF16}) {
    const GgmlTypeTraits& t = ggml_traits(type);
    SCOPED_TRACE(std::string(t.name));
    const size_t values = 5 * 65536 + 7 * 256;  // several parallel chunks and a partial one
    const size_t blocks = values / t.block_size;
    Bytes data(blocks * t.type_size);
    const CounterRng rng(99, static_cast<uint64_t>(type));
    for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte(rng.bits(i) & 0xFF);
    for (size_t b = 0; b < blocks && t.block_size > 1; ++b) {  // keep the f16 scales finite
      const size_t at = b * t.type_size;
      data[at + 1] &= std::byte{0x3F};
      if (type == GgmlType::kQ4_K) data[at + 3] &= std::byte{0x3F};
    }
    std::vector<float> all(values), single(t.block_size), one_thread(values);
    ggml_dequantize(type, data, all);
    set_num_threads(1);
    ggml_dequantize(type, data, one_thread);
    set_num_threads(0);
    for (size_t b = 0; b < blocks; b += 97) {
      ggml_dequantize(type, std::span(data).subspan(b * t.type_size, t.type_size), single);
      for (size_t j = 0; j < t.block_size; ++j)
        ASSERT_EQ(bits_of(all[b * t.block_size + j]), bits_of(single[j])) << "block " << b;
    }
    EXPECT_EQ(std::memcmp(all.data(), one_thread.data(), values * sizeof(float)), 0);
  }
}

TEST(GgmlQuantize, ChunkedAndThreadedMatchBlockByBlock) {
  const std::vector<float> x = random_values(5, 5 * 65536 + 32 * 3);
  const Bytes all = quantize(GgmlType::kQ4_1, x);
  set_num_threads(1);
  const Bytes one_thread = quantize(GgmlType::kQ4_1, x);
  set_num_threads(0);
  EXPECT_EQ(all, one_thread);
  for (size_t b = 0; b < x.size() / 32; b += 101) {
    const Bytes single = quantize(GgmlType::kQ4_1, std::vector<float>(x.begin() + 32 * b, x.begin() + 32 * b + 32));
    ASSERT_TRUE(std::equal(single.begin(), single.end(), all.begin() + 20 * b)) << "block " << b;
  }
}

}  // namespace
}  // namespace lowbit
