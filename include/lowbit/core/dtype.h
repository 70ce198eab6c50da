// Element types of tensors as they appear in model files.
//
// The names follow safetensors' dtype strings ("F32", "BF16", ...) because that is
// the format our users' checkpoints arrive in; GGUF block types are not dtypes (they
// are quantized layouts) and live in the io/numerics layers instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lowbit {

enum class DType : uint8_t {
  kF64,
  kF32,
  kF16,
  kBF16,
  kF8E4M3,  // OCP FP8 e4m3fn (finite, one NaN pattern)
  kF8E5M2,  // OCP FP8 e5m2 (IEEE-like)
  kF8E8M0,  // OCP MX E8M0 scale: 2^(code-127), no sign, no zero, 0xFF NaN (safetensors "F8_E8M0")
  kI64,
  kI32,
  kI16,
  kI8,
  kU64,
  kU32,
  kU16,
  kU8,
  kBool,
};

inline constexpr DType kAllDTypes[] = {
    DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3,
    DType::kF8E5M2, DType::kF8E8M0, DType::kI64, DType::kI32, DType::kI16, DType::kI8,
    DType::kU64, DType::kU32, DType::kU16, DType::kU8, DType::kBool};

// Bytes per element.
size_t dtype_size(DType dtype);
// The safetensors spelling, e.g. "BF16".
std::string_view dtype_name(DType dtype);
// Parses a safetensors dtype string; nullopt when unknown.
std::optional<DType> parse_dtype(std::string_view name);
// Parses user spellings too ("f32", "float16", "bf16", ...); nullopt when unknown.
std::optional<DType> parse_dtype_lenient(std::string_view name);
bool is_floating(DType dtype);

// C++ type -> DType, for typed access to tensor data.
template <class T> struct DTypeOf;
template <> struct DTypeOf<double> { static constexpr DType value = DType::kF64; };
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kI64; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::kI16; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kI8; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::kU64; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::kU32; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kU8; };

}  // namespace lowbit
