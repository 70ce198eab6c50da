// The lowbit quantized layout inside a Hugging Face folder (docs/FORMATS.md, "lowbit quantized
// safetensors"): config.json's "quantization_config" {"quant_method": "lowbit", "format_version": 1,
// "layers": {"<linear name>": {format, group_size, scale_dtype, in_features, out_features}}} and,
// per listed layer, the tensors <name>.qweight / .scales / .qzeros / .g_idx in place of <name>.weight.
//
// This is the io half: parsing the config and the shapes it implies, so that open_model can check
// a folder without knowing compress/. Building QuantizedTensors from the parts is
// pipeline/quantized_model.h.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/dtype.h"
#include "lowbit/core/tensor.h"
#include "lowbit/numerics/format.h"

namespace lowbit {

inline constexpr const char* kLowbitQuantMethod = "lowbit";
inline constexpr int kLowbitQuantFormatVersion = 1;

// How a sparse layer's kept weights are located (docs/FORMATS.md, "sparse layers").
//   N:M     every aligned group of m input columns stores min(n, group width) slots, each with its
//           position in the group (index_bits() bits, packed per row like codes): .sparse_index
//           U8 [out, ceil(slots · index_bits / 8)]; the values are [out, slots].
//   bitmap  one bit per weight (LSB-first per row, rows padded to a byte): .sparse_bitmap
//           U8 [out, ceil(in / 8)]; the values of all rows follow one another, 1-D.
struct SparseLayoutSpec {
  int n = 0, m = 0;  // N:M with m > 0; bitmap when m == 0

  bool bitmap() const { return m == 0; }
  int index_bits() const;                 // ceil(log2 m), at least 1
  int64_t slots(int64_t in_features) const;  // N:M: stored values per row
  std::string to_string() const;          // "2:4" or "bitmap"
};

// One quantized (or sparse) linear layer as config.json records it.
struct QuantizedLayerSpec {
  Format format = Format::int_symmetric(4);  // the code grid (Format::to_string() in the file)
  int64_t group_size = 0;                    // input columns per scale; 0 = one scale per row
  DType scale_dtype = DType::kF16;           // kF16, kBF16, kF32, kF8E4M3 (UE4M3 + tensor scale) or kF8E8M0
  int64_t in_features = 0;                   // cols
  int64_t out_features = 0;                  // rows
  // Sparse layers: the layout, and whether the kept values are codes of `format` (with scales and
  // zero points as above, over the original columns) or plain floats of `value_dtype`.
  std::optional<SparseLayoutSpec> sparse;
  bool quantized = true;                     // false only for sparse layers with float values
  DType value_dtype = DType::kF16;           // kF32, kF16 or kBF16 (float values)

  int bits() const { return format.bits(); }
  // Unsigned integer grids (uintB) carry a zero point per group (the .qzeros tensor).
  bool asymmetric() const { return format.kind() == Format::Kind::kInt && !format.twos_complement(); }
  int64_t groups() const;          // scales per row: 1 per row, else ceil(in / group_size)
  int64_t row_bytes() const;       // bytes of packed codes per row: ceil(in * bits / 8)
  int64_t zero_row_bytes() const;  // bytes of packed zero points per row: ceil(groups * bits / 8)
};

// The part tensors of a quantized layer and their suffixes.
// The layer a part tensor belongs to ("lm_head" for "lm_head.qweight"), or "" for other names.
std::string quantized_part_layer(const std::string& name);
inline constexpr const char* kQweightSuffix = ".qweight";
inline constexpr const char* kScalesSuffix = ".scales";
inline constexpr const char* kQzerosSuffix = ".qzeros";
inline constexpr const char* kGidxSuffix = ".g_idx";
inline constexpr const char* kValuesSuffix = ".values";               // sparse float values
inline constexpr const char* kSparseIndexSuffix = ".sparse_index";    // N:M slot positions
inline constexpr const char* kSparseBitmapSuffix = ".sparse_bitmap";  // unstructured bitmap
inline constexpr const char* kTensorScaleSuffix = ".tensor_scale";    // NVFP4's f32 second level

struct QuantizedPart {
  std::string name;  // full tensor name, e.g. "lm_head.qweight"
  DType dtype;
  Shape shape;
  bool required = true;     // g_idx is optional
  bool any_length = false;  // 1-D of a length only the data tells (bitmap layouts' values)
};
// qweight U8 [out, row_bytes], scales <scale_dtype> [out, groups], qzeros U8 [out, zero_row_bytes]
// (asymmetric only), tensor_scale F32 [1] (ue4m3 scales only), g_idx I32 [in] (optional). Sparse layers: the index or bitmap, then the
// values — qweight (codes of the kept weights, N:M [out, ceil(slots · bits / 8)], bitmap each row
// packed on its own, 1-D) with scales and qzeros as above, or .values of value_dtype — and no g_idx.
std::vector<QuantizedPart> quantized_parts(const std::string& layer, const QuantizedLayerSpec& spec);

// "f16" | "bf16" | "f32" (the spelling config.json uses for scales, kept layers and float values) and
// back; group scales (eight_bit) also "ue4m3" (NVFP4, with a tensor scale) and "e8m0" (MX). parse
// returns nullopt otherwise.
std::string scale_dtype_name(DType dtype);
std::optional<DType> parse_scale_dtype(std::string_view name, bool eight_bit = false);

// config.json's quantization_config → layers by name. `where` names the file in errors. Refuses
// a quant_method other than "lowbit", a newer format_version, and any malformed layer entry
// (unknown format, bits outside 1..8, group size outside 0..in_features, unknown scale dtype).
std::map<std::string, QuantizedLayerSpec> parse_quantization_config(const nlohmann::json& quantization_config,
                                                                     const std::string& where);
// The JSON of one layer entry, as the writer records it.
nlohmann::json quantized_layer_json(const QuantizedLayerSpec& spec);

}  // namespace lowbit
