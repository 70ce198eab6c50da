#include "lowbit/core/dtype.h"

#include <algorithm>
#include <cctype>

namespace lowbit {

namespace {
struct DTypeInfo {
  DType dtype;
  size_t size;
  std::string_view name;
  bool floating;
};

constexpr DTypeInfo kInfo[] = {
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

const DTypeInfo& info(DType dtype) { return kInfo[static_cast<size_t>(dtype)]; }
}  // namespace

size_t dtype_size(DType dtype) { return info(dtype).size; }
std::string_view dtype_name(DType dtype) { return info(dtype).name; }
bool is_floating(DType dtype) { return info(dtype).floating; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& entry : kInfo)
    if (entry.name == name) return entry.dtype;
  return std::nullopt;
}

std::optional<DType> parse_dtype_lenient(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "FLOAT32" || upper == "FLOAT" || upper == "FP32") return DType::kF32;
  if (upper == "FLOAT16" || upper == "HALF" || upper == "FP16") return DType::kF16;
  if (upper == "BFLOAT16") return DType::kBF16;
  if (upper == "FLOAT64" || upper == "DOUBLE") return DType::kF64;
  return parse_dtype(upper);
}

}  // namespace lowbit
