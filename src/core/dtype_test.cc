#include "lowbit/core/dtype.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>

namespace lowbit {
namespace {

struct Expected {
  DType dtype;
  size_t size;
  const char* name;
  bool floating;
};

// The safetensors spellings and element sizes, written out independently of dtype.cc.
constexpr Expected kExpected[] = {
    {DType::kF64, 8, "F64", true},        {DType::kF32, 4, "F32", true},
    {DType::kF16, 2, "F16", true},        {DType::kBF16, 2, "BF16", true},
    {DType::kF8E4M3, 1, "F8_E4M3", true}, {DType::kF8E5M2, 1, "F8_E5M2", true},
    {DType::kF8E8M0, 1, "F8_E8M0", true},
    {DType::kI64, 8, "I64", false},       {DType::kI32, 4, "I32", false},
    {DType::kI16, 2, "I16", false},       {DType::kI8, 1, "I8", false},
    {DType::kU64, 8, "U64", false},       {DType::kU32, 4, "U32", false},
    {DType::kU16, 2, "U16", false},       {DType::kU8, 1, "U8", false},
    {DType::kBool, 1, "BOOL", false},
};

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

TEST(DTypeTest, TableCoversEveryDType) {
  ASSERT_EQ(std::size(kAllDTypes), std::size(kExpected));
  for (size_t i = 0; i < std::size(kAllDTypes); ++i) EXPECT_EQ(kAllDTypes[i], kExpected[i].dtype) << i;
}

TEST(DTypeTest, SizeNameAndFloatingness) {
  for (const auto& e : kExpected) {
    EXPECT_EQ(dtype_size(e.dtype), e.size) << e.name;
    EXPECT_EQ(dtype_name(e.dtype), e.name);
    EXPECT_EQ(is_floating(e.dtype), e.floating) << e.name;
  }
}

TEST(DTypeTest, NamesAreUniqueAndRoundTrip) {
  std::set<std::string_view> names;
  for (DType dtype : kAllDTypes) {
    const std::string_view name = dtype_name(dtype);
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    EXPECT_EQ(parse_dtype(name), dtype) << name;
    EXPECT_EQ(parse_dtype_lenient(name), dtype) << name;
    EXPECT_EQ(parse_dtype_lenient(lower(name)), dtype) << lower(name);
  }
}

TEST(DTypeTest, StrictParsingRejectsEverythingElse) {
  for (const char* name : {"", "F128", "f32", "bf16", "FP32", "FLOAT", "F32 ", " F32", "F3", "F8", "F8_E4M3FN",
                           "I4", "U1", "BOOLEAN", "Q4_0"}) {
    EXPECT_EQ(parse_dtype(name), std::nullopt) << "'" << name << "'";
  }
  EXPECT_EQ(parse_dtype(std::string_view("F32\0", 4)), std::nullopt) << "embedded NUL";
}

TEST(DTypeTest, LenientSpellings) {
  const std::pair<const char*, DType> cases[] = {
      {"f32", DType::kF32},      {"float32", DType::kF32},  {"Float32", DType::kF32},   {"float", DType::kF32},
      {"fp32", DType::kF32},     {"f16", DType::kF16},      {"float16", DType::kF16},   {"half", DType::kF16},
      {"FP16", DType::kF16},     {"bf16", DType::kBF16},    {"bfloat16", DType::kBF16}, {"BFloat16", DType::kBF16},
      {"f64", DType::kF64},      {"double", DType::kF64},   {"float64", DType::kF64},   {"i8", DType::kI8},
      {"u8", DType::kU8},        {"bool", DType::kBool},    {"f8_e4m3", DType::kF8E4M3}, {"f8_e5m2", DType::kF8E5M2},
      {"i64", DType::kI64},      {"u32", DType::kU32},
  };
  for (const auto& [name, dtype] : cases) EXPECT_EQ(parse_dtype_lenient(name), dtype) << name;
}

TEST(DTypeTest, LenientParsingStillRejectsUnknownNames) {
  for (const char* name : {"", "f33", "floaty", "bf", "fp", "float 32", "f32x", "halfs", "q4_k", "e4m3"})
    EXPECT_EQ(parse_dtype_lenient(name), std::nullopt) << "'" << name << "'";
}

TEST(DTypeTest, DTypeOfMatchesSizes) {
  EXPECT_EQ(DTypeOf<float>::value, DType::kF32);
  EXPECT_EQ(dtype_size(DTypeOf<double>::value), sizeof(double));
  EXPECT_EQ(dtype_size(DTypeOf<int64_t>::value), sizeof(int64_t));
  EXPECT_EQ(dtype_size(DTypeOf<int32_t>::value), sizeof(int32_t));
  EXPECT_EQ(dtype_size(DTypeOf<int16_t>::value), sizeof(int16_t));
  EXPECT_EQ(dtype_size(DTypeOf<int8_t>::value), sizeof(int8_t));
  EXPECT_EQ(dtype_size(DTypeOf<uint64_t>::value), sizeof(uint64_t));
  EXPECT_EQ(dtype_size(DTypeOf<uint32_t>::value), sizeof(uint32_t));
  EXPECT_EQ(dtype_size(DTypeOf<uint8_t>::value), sizeof(uint8_t));
  EXPECT_FALSE(is_floating(DTypeOf<uint8_t>::value));
}

}  // namespace
}  // namespace lowbit
