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

// One quantized linear layer as config.json records it.
struct QuantizedLayerSpec {
  Format format = Format::int_symmetric(4);  // the code grid (Format::to_string() in the file)
  int64_t group_size = 0;                    // input columns per scale; 0 = one scale per row
  DType scale_dtype = DType::kF16;           // kF16, kBF16 or kF32
  int64_t in_features = 0;                   // cols
  int64_t out_features = 0;                  // rows

  int bits() const { return format.bits(); }
  // Unsigned integer grids (uintB) carry a zero point per group (the .qzeros tensor).
  bool asymmetric() const { return format.kind() == Format::Kind::kInt && !format.twos_complement(); }
  int64_t groups() const;          // scales per row: 1 per row, else ceil(in / group_size)
  int64_t row_bytes() const;       // bytes of packed codes per row: ceil(in * bits / 8)
  int64_t zero_row_bytes() const;  // bytes of packed zero points per row: ceil(groups * bits / 8)
};

// The part tensors of a quantized layer and their suffixes.
inline constexpr const char* kQweightSuffix = ".qweight";
inline constexpr const char* kScalesSuffix = ".scales";
inline constexpr const char* kQzerosSuffix = ".qzeros";
inline constexpr const char* kGidxSuffix = ".g_idx";

struct QuantizedPart {
  std::string name;  // full tensor name, e.g. "lm_head.qweight"
  DType dtype;
  Shape shape;
  bool required = true;  // g_idx is optional
};
// qweight U8 [out, row_bytes], scales <scale_dtype> [out, groups], qzeros U8 [out, zero_row_bytes]
// (asymmetric only), g_idx I32 [in] (optional).
std::vector<QuantizedPart> quantized_parts(const std::string& layer, const QuantizedLayerSpec& spec);

// "f16" | "bf16" | "f32" (the spelling config.json uses) and back; parse returns nullopt otherwise.
std::string scale_dtype_name(DType dtype);
std::optional<DType> parse_scale_dtype(std::string_view name);

// config.json's quantization_config → layers by name. `where` names the file in errors. Refuses
// a quant_method other than "lowbit", a newer format_version, and any malformed layer entry
// (unknown format, bits outside 1..8, group size outside 0..in_features, unknown scale dtype).
std::map<std::string, QuantizedLayerSpec> parse_quantization_config(const nlohmann::json& quantization_config,
                                                                     const std::string& where);
// The JSON of one layer entry, as the writer records it.
nlohmann::json quantized_layer_json(const QuantizedLayerSpec& spec);

}  // namespace lowbit
