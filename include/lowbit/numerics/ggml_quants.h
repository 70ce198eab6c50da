// ggml's tensor types: the plain ones (F32, F16, BF16, integers) and the block-quantized
// ones llama.cpp stores in GGUF files (Q4_0 … Q8_0, the k-quants Q2_K … Q6_K, IQ4_NL, IQ4_XS).
// Each block type packs `block_size` consecutive values of a row into `type_size` bytes;
// docs/FORMATS.md ("ggml block types") describes every layout in our words. Dequantization
// is bit-exact with ggml's reference (`dequantize_row_*` in ggml-quants.c): every type but
// the lattice-codebook IQ1/IQ2/IQ3 ones decodes, and src/numerics/ggml_quants_test.cc checks
// each value against the `gguf` Python package (testdata made by scripts/make-ggml-golden.py).
// NVFP4 (40: 64 values, four UE4M3 scales of 16) is listed; the types ggml added after it (Q1_0 = 41,
// Q2_0 = 42) are not yet: find_ggml_type returns nullptr for them, as for ggml's retired numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace lowbit {

// Values are ggml's `enum ggml_type` numbers (they are stored in GGUF files).
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kIQ2_XXS = 16, kIQ2_XS = 17, kIQ3_XXS = 18, kIQ1_S = 19, kIQ4_NL = 20, kIQ3_S = 21, kIQ2_S = 22,
  kIQ4_XS = 23, kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kIQ1_M = 29, kBF16 = 30,
  kTQ1_0 = 34, kTQ2_0 = 35, kMXFP4 = 39, kNVFP4 = 40,
};

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;   // ggml's spelling: "f32", "q4_0", "q4_K", "iq4_nl", …
  uint32_t block_size;     // values per block (1 for plain types)
  uint32_t type_size;      // bytes per block
  bool can_dequantize;     // lowbit implements its dequantization
};

// Traits of a raw type number read from a file; nullptr when ggml has no such type.
const GgmlTypeTraits* find_ggml_type(uint32_t raw);
const GgmlTypeTraits& ggml_traits(GgmlType type);
// Case-insensitive name lookup ("Q4_K", "q4_k", "bf16"); nullopt when unknown.
std::optional<GgmlType> parse_ggml_type(std::string_view name);

// Bytes of a row of `row_length` values; Error when row_length is not a multiple of the
// type's block size.
uint64_t ggml_row_bytes(GgmlType type, uint64_t row_length);

// Decodes out.size() values (a multiple of the block size) from `data`, which must hold
// exactly out.size() / block_size blocks. Error for types with can_dequantize == false.
// Bit-exact with ggml's dequantize_row_<type> (Q8_1 and the integer/f64 types, which ggml
// does not dequantize, give q·d and the number as the nearest float). Runs in parallel
// over chunks of blocks (parallel.h); the result does not depend on the thread count.
void ggml_dequantize(GgmlType type, std::span<const std::byte> data, std::span<float> out);

// Encodes `in` (a multiple of the block size) into `out` (exactly the bytes it needs) the
// way ggml's reference quantizer (`quantize_row_<type>_ref`) does, for F32, F16, BF16,
// Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1; Error for other types. Bit-exact, also for NaN and Inf
// inputs, where ggml's C casts them to integers (undefined) and lowbit does what ggml built
// for x86 does; f16 NaNs are written as ggml writes them (sign | 0x7E00).
void ggml_quantize(GgmlType type, std::span<const float> in, std::span<std::byte> out);
bool ggml_can_quantize(GgmlType type);

}  // namespace lowbit
