// llama.cpp's block types as lowbit grids, so that every lowbit method (RTN with its MSE clipping
// search, GPTQ, AWQ, awq+gptq) can fill a GGUF file that llama.cpp runs unchanged.
//
// Four of ggml's 32-element types are exactly a QuantScheme: one f16 scale d per 32 consecutive
// weights of a row and value = grid value × d, computed in f32 with one rounding, as both
// ggml_dequantize (ggml's dequantize_row_*) and QuantizedTensor::dequantize compute it:
//   Q8_0    int8 ±127          (int_symmetric(8); ggml's own quantizer never writes -128)
//   Q5_0    int5 -16..15       (int_full(5);  ggml stores q + 16 as 4 low bits + 1 high bit)
//   Q4_0    int4 -8..7         (int_full(4);  ggml stores q + 8)
//   IQ4_NL  16 levels -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113
//           (ggml's kvalues_iq4nl as a codebook; the code is the level's index)
// Two more carry a float minimum per block (QuantScheme::float_min): value = q·d + m in f32, d and m f16:
//   Q4_1    uint4 0..15
//   Q5_1    uint5 0..31        (4 low bits + 1 high bit, as Q5_0)
// A tensor quantized with one of these schemes packs into the type's blocks bit for bit
// (pack_ggml_blocks), so what lowbit evaluated is what llama.cpp decodes.
//
// The k-quants are schemes with two-level scales (QuantScheme::super_block): in each 256-value
// super-block, every group's scale is one f16 d times a small integer (and its minimum −dmin times
// one), held as exact f32 values; decoding is ggml's (d·sc)·q − dmin·m:
//   Q2_K    uint2 g16 with minimums; sc 0..15, m 0..15 (4 bits each)
//   Q3_K    int3 −4..3 g16;          sc −32..31 (6 bits)
//   Q4_K    uint4 g32 with minimums; sc 0..63, m 0..63 (6 bits each)
//   Q5_K    uint5 g32 with minimums; sc 0..63, m 0..63
//   Q6_K    int6 −32..31 g16;        sc −128..127 (int8)
// Rows must be whole super-blocks; llama.cpp gives a tensor whose rows are not another type
// (ggml_kquant_fallback), and so does lowbit's quantize command.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/numerics/ggml_quants.h"

namespace lowbit {

// The scheme of a ggml block type (group 32, f16 scales; MXFP4: e2m1 in groups of 32 with E8M0 scales;
// NVFP4: e2m1 in groups of 16 with UE4M3 scales and a unit tensor scale); nullopt for types that are not one.
std::optional<QuantScheme> ggml_block_scheme(GgmlType type);
// The k-quant's scheme (above); nullopt for other types.
std::optional<QuantScheme> ggml_kquant_scheme(GgmlType type);
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
std::span<const GgmlType> ggml_kquant_types();
// The type llama.cpp's llama-quantize writes instead of k-quant `type` for a tensor whose rows are
// not whole super-blocks (tensor_type_fallback in llama-quant.cpp, llama.cpp as pinned by
// scripts/conformance): Q2_K, Q3_K → Q4_0; Q4_K → Q5_0; Q5_K → Q5_1; Q6_K → Q8_0. Other types
// are returned unchanged.
GgmlType ggml_kquant_fallback(GgmlType type);
// The scheme lowbit's methods quantize `type` with: ggml_block_scheme(type) with the scale's sign
// chosen per block (signed_scales, the layout is the same) on the types without a float minimum;
// for the k-quants, ggml_kquant_scheme(type). Throws Error for types without a scheme.
QuantScheme ggml_quantizer_scheme(GgmlType type);
// The ggml type whose scheme equals `scheme` exactly (signed_scales aside); nullopt when there is none.
std::optional<GgmlType> ggml_type_of_scheme(const QuantScheme& scheme);
// The integer types ggml_block_scheme knows, in ggml's numbering order (the budget's ladder, and the
// GGUF types lowbit loads as QuantizedTensors); MXFP4 and NVFP4 are not among them.
std::span<const GgmlType> ggml_scheme_types();
// Whether `type` is one of them (the types a whole embedding table may take, for instance).
bool is_ggml_scheme_type(GgmlType type);

// The tensor's rows as `type`'s blocks (rows × ggml_row_bytes(type, cols) bytes). Throws Error
// unless tensor.scheme() is ggml_block_scheme(type) (or the k-quant's scheme), cols is a multiple
// of the block (32, 64 for NVFP4, or 256), NVFP4's tensor scale is 1, the columns are in order (no g_idx: act-order GPTQ needs static groups
// to export) and, for the k-quants, each super-block's scales (minimums) are one f16 value times
// integers in the type's range, as lowbit's methods make them.
std::vector<std::byte> pack_ggml_blocks(const QuantizedTensor& tensor, GgmlType type);

// The inverse: `rows` rows of `type`'s blocks (cols values each, a multiple of 32) as a QuantizedTensor
// on ggml_block_scheme(type) with signed scales, decoding to exactly what ggml decodes — how a GGUF's
// tensors can run on lowbit's kernels without being dequantized. Throws Error for other types, a byte
// count that does not match, or a non-finite scale.
QuantizedTensor unpack_ggml_blocks(std::span<const std::byte> bytes, int64_t rows, int64_t cols, GgmlType type);

}  // namespace lowbit
