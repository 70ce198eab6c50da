#include "lowbit/io/quantized_layout.h"

#include <algorithm>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/numerics/packing.h"

namespace lowbit {

using nlohmann::json;

int64_t QuantizedLayerSpec::groups() const {
  if (group_size <= 0) return in_features > 0 ? 1 : 0;
  return (in_features + group_size - 1) / group_size;
}

int64_t QuantizedLayerSpec::row_bytes() const {
  return static_cast<int64_t>(packed_bytes(static_cast<size_t>(in_features), bits()));
}

int64_t QuantizedLayerSpec::zero_row_bytes() const {
  return static_cast<int64_t>(packed_bytes(static_cast<size_t>(groups()), bits()));
}

int SparseLayoutSpec::index_bits() const {
  int bits = 1;
  while ((1 << bits) < m) ++bits;
  return bits;
}

int64_t SparseLayoutSpec::slots(int64_t in_features) const {
  if (bitmap()) return 0;
  return (in_features / m) * n + std::min<int64_t>(n, in_features % m);
}

std::string SparseLayoutSpec::to_string() const {
  return bitmap() ? "bitmap" : std::to_string(n) + ":" + std::to_string(m);
}

std::string quantized_part_layer(const std::string& name) {
  for (const char* suffix : {kQweightSuffix, kScalesSuffix, kQzerosSuffix, kGidxSuffix, kValuesSuffix,
                             kSparseIndexSuffix, kSparseBitmapSuffix, kTensorScaleSuffix})
    if (name.ends_with(suffix)) return name.substr(0, name.size() - std::string_view(suffix).size());
  return "";
}

std::vector<QuantizedPart> quantized_parts(const std::string& layer, const QuantizedLayerSpec& spec) {
  std::vector<QuantizedPart> parts;
  if (spec.sparse) {
    const SparseLayoutSpec& sparse = *spec.sparse;
    const int64_t slots = sparse.slots(spec.in_features);
    if (sparse.bitmap())
      parts.push_back({layer + kSparseBitmapSuffix, DType::kU8, {spec.out_features, (spec.in_features + 7) / 8}, true});
    else
      parts.push_back({layer + kSparseIndexSuffix, DType::kU8,
                       {spec.out_features, static_cast<int64_t>(packed_bytes(static_cast<size_t>(slots), sparse.index_bits()))}, true});
    if (!spec.quantized) {
      if (sparse.bitmap()) parts.push_back({layer + kValuesSuffix, spec.value_dtype, {0}, true, true});
      else parts.push_back({layer + kValuesSuffix, spec.value_dtype, {spec.out_features, slots}, true});
      return parts;
    }
    if (sparse.bitmap()) parts.push_back({layer + kQweightSuffix, DType::kU8, {0}, true, true});
    else
      parts.push_back({layer + kQweightSuffix, DType::kU8,
                       {spec.out_features, static_cast<int64_t>(packed_bytes(static_cast<size_t>(slots), spec.bits()))}, true});
    parts.push_back({layer + kScalesSuffix, spec.scale_dtype, {spec.out_features, spec.groups()}, true});
    if (spec.asymmetric()) parts.push_back({layer + kQzerosSuffix, DType::kU8, {spec.out_features, spec.zero_row_bytes()}, true});
    return parts;
  }
  parts.push_back({layer + kQweightSuffix, DType::kU8, {spec.out_features, spec.row_bytes()}, true});
  parts.push_back({layer + kScalesSuffix, spec.scale_dtype, {spec.out_features, spec.groups()}, true});
  if (spec.asymmetric()) parts.push_back({layer + kQzerosSuffix, DType::kU8, {spec.out_features, spec.zero_row_bytes()}, true});
  if (spec.scale_dtype == DType::kF8E4M3) parts.push_back({layer + kTensorScaleSuffix, DType::kF32, {1}, true});
  parts.push_back({layer + kGidxSuffix, DType::kI32, {spec.in_features}, false});
  return parts;
}

std::string scale_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kF32: return "f32";
    case DType::kF8E4M3: return "ue4m3";
    case DType::kF8E8M0: return "e8m0";
    default: throw Error("scale dtype " + std::string(dtype_name(dtype)) + " is not F16, BF16, F32, F8_E4M3 or F8_E8M0");
  }
}

std::optional<DType> parse_scale_dtype(std::string_view name, bool eight_bit) {
  if (name == "f16") return DType::kF16;
  if (name == "bf16") return DType::kBF16;
  if (name == "f32") return DType::kF32;
  if (eight_bit && name == "ue4m3") return DType::kF8E4M3;
  if (eight_bit && name == "e8m0") return DType::kF8E8M0;
  return std::nullopt;
}

namespace {

int64_t layer_int(const json& entry, const char* key, const std::string& where) {
  if (!entry.contains(key)) throw Error(where, std::string("missing \"") + key + "\"");
  const json& value = entry[key];
  if (!value.is_number_integer()) throw Error(where, std::string("\"") + key + "\" must be an integer, found " + value.dump());
  return value.get<int64_t>();
}

std::string layer_string(const json& entry, const char* key, const std::string& where) {
  if (!entry.contains(key)) throw Error(where, std::string("missing \"") + key + "\"");
  const json& value = entry[key];
  if (!value.is_string()) throw Error(where, std::string("\"") + key + "\" must be a string, found " + value.dump());
  return value.get<std::string>();
}

std::optional<SparseLayoutSpec> parse_sparsity(const json& entry, const std::string& where) {
  if (!entry.contains("sparsity")) return std::nullopt;
  const std::string here = where + ": \"sparsity\"";
  const json& sparsity = entry["sparsity"];
  if (!sparsity.is_object()) throw Error(here, "must be an object, found " + sparsity.dump());
  const std::string layout = layer_string(sparsity, "layout", here);
  SparseLayoutSpec spec;
  if (layout == "bitmap") return spec;
  if (layout != "n:m") throw Error(here, "\"layout\" must be \"n:m\" or \"bitmap\", found \"" + layout + "\"");
  const int64_t n = layer_int(sparsity, "n", here), m = layer_int(sparsity, "m", here);
  if (!(n >= 1 && n < m && m <= 64))
    throw Error(here, "N:M needs 1 <= n < m <= 64, found " + std::to_string(n) + ":" + std::to_string(m));
  spec.n = static_cast<int>(n);
  spec.m = static_cast<int>(m);
  return spec;
}

void parse_features(const json& entry, const std::string& where, QuantizedLayerSpec& spec) {
  spec.in_features = layer_int(entry, "in_features", where);
  spec.out_features = layer_int(entry, "out_features", where);
  if (spec.in_features <= 0 || spec.out_features <= 0)
    throw Error(where, "in_features and out_features must be positive, found " + std::to_string(spec.in_features) +
                           " and " + std::to_string(spec.out_features));
}

QuantizedLayerSpec parse_layer(const json& entry, const std::string& where) {
  if (!entry.is_object()) throw Error(where, "must be an object, found " + entry.dump());
  QuantizedLayerSpec spec;
  spec.sparse = parse_sparsity(entry, where);
  if (entry.contains("dtype")) {
    // A sparse layer with float values: no grid, no scales.
    if (!spec.sparse) throw Error(where, "\"dtype\" (float values) is only for sparse layers; this one has no \"sparsity\"");
    const std::string dtype = layer_string(entry, "dtype", where);
    const auto value_dtype = parse_scale_dtype(dtype);
    if (!value_dtype) throw Error(where, "\"dtype\" must be f16, bf16 or f32, found \"" + dtype + "\"");
    spec.quantized = false;
    spec.value_dtype = *value_dtype;
    parse_features(entry, where, spec);
    return spec;
  }
  const std::string format = layer_string(entry, "format", where);
  try {
    spec.format = Format::parse(format);
  } catch (const Error& e) {
    throw e.with_context(where + ": \"format\"");
  }
  if (spec.bits() < 1 || spec.bits() > 8)
    throw Error(where, "format " + format + " has " + std::to_string(spec.bits()) + " bits; quantized layers hold 1..8");
  const std::string scale = layer_string(entry, "scale_dtype", where);
  const auto scale_dtype = parse_scale_dtype(scale, true);
  if (!scale_dtype) throw Error(where, "\"scale_dtype\" must be f16, bf16, f32, ue4m3 or e8m0, found \"" + scale + "\"");
  spec.scale_dtype = *scale_dtype;
  if (spec.sparse && spec.scale_dtype == DType::kF8E4M3)
    throw Error(where, "sparse layers store no tensor scale, so no ue4m3 scales (use f16, bf16, f32 or e8m0)");
  spec.in_features = layer_int(entry, "in_features", where);
  spec.out_features = layer_int(entry, "out_features", where);
  spec.group_size = layer_int(entry, "group_size", where);
  if (spec.in_features <= 0 || spec.out_features <= 0)
    throw Error(where, "in_features and out_features must be positive, found " + std::to_string(spec.in_features) +
                           " and " + std::to_string(spec.out_features));
  if (spec.group_size < 0 || spec.group_size > spec.in_features)
    throw Error(where, "\"group_size\" must be 0 (per row) .. in_features " + std::to_string(spec.in_features) +
                           ", found " + std::to_string(spec.group_size));
  return spec;
}

}  // namespace

std::map<std::string, QuantizedLayerSpec> parse_quantization_config(const json& config, const std::string& where) {
  const std::string here = where + ": quantization_config";
  if (!config.is_object()) throw Error(here, "must be an object, found " + config.dump());
  if (!config.contains("quant_method") || !config["quant_method"].is_string())
    throw Error(here, "has no \"quant_method\" string");
  const std::string method = config["quant_method"].get<std::string>();
  if (method != kLowbitQuantMethod)
    throw Error(where, "quantization_config.quant_method '" + method + "' is not supported (lowbit reads '" +
                           kLowbitQuantMethod + "')");
  if (!config.contains("format_version") || !config["format_version"].is_number_integer())
    throw Error(here, "has no integer \"format_version\"");
  const int64_t version = config["format_version"].get<int64_t>();
  if (version < 1 || version > kLowbitQuantFormatVersion)
    throw Error(here, "format_version " + std::to_string(version) + " is not supported (this lowbit reads " +
                          std::to_string(kLowbitQuantFormatVersion) + ")");
  if (!config.contains("layers") || !config["layers"].is_object())
    throw Error(here, "has no \"layers\" object");
  std::map<std::string, QuantizedLayerSpec> layers;
  for (const auto& [name, entry] : config["layers"].items())
    layers.emplace(name, parse_layer(entry, here + ".layers['" + name + "']"));
  return layers;
}

json quantized_layer_json(const QuantizedLayerSpec& spec) {
  json sparsity;
  if (spec.sparse) {
    sparsity = spec.sparse->bitmap() ? json{{"layout", "bitmap"}}
                                     : json{{"layout", "n:m"}, {"n", spec.sparse->n}, {"m", spec.sparse->m}};
  }
  if (!spec.quantized)
    return {{"dtype", scale_dtype_name(spec.value_dtype)},
            {"sparsity", sparsity},
            {"in_features", spec.in_features},
            {"out_features", spec.out_features}};
  json out = {{"format", spec.format.to_string()},
          {"group_size", spec.group_size},
          {"scale_dtype", scale_dtype_name(spec.scale_dtype)},
          {"in_features", spec.in_features},
          {"out_features", spec.out_features}};
  if (spec.sparse) out["sparsity"] = sparsity;
  return out;
}

}  // namespace lowbit
