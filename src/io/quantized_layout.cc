#include "lowbit/io/quantized_layout.h"

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

std::vector<QuantizedPart> quantized_parts(const std::string& layer, const QuantizedLayerSpec& spec) {
  std::vector<QuantizedPart> parts;
  parts.push_back({layer + kQweightSuffix, DType::kU8, {spec.out_features, spec.row_bytes()}, true});
  parts.push_back({layer + kScalesSuffix, spec.scale_dtype, {spec.out_features, spec.groups()}, true});
  if (spec.asymmetric()) parts.push_back({layer + kQzerosSuffix, DType::kU8, {spec.out_features, spec.zero_row_bytes()}, true});
  parts.push_back({layer + kGidxSuffix, DType::kI32, {spec.in_features}, false});
  return parts;
}

std::string scale_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kF32: return "f32";
    default: throw Error("scale dtype " + std::string(dtype_name(dtype)) + " is not F16, BF16 or F32");
  }
}

std::optional<DType> parse_scale_dtype(std::string_view name) {
  if (name == "f16") return DType::kF16;
  if (name == "bf16") return DType::kBF16;
  if (name == "f32") return DType::kF32;
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

QuantizedLayerSpec parse_layer(const json& entry, const std::string& where) {
  if (!entry.is_object()) throw Error(where, "must be an object, found " + entry.dump());
  QuantizedLayerSpec spec;
  const std::string format = layer_string(entry, "format", where);
  try {
    spec.format = Format::parse(format);
  } catch (const Error& e) {
    throw e.with_context(where + ": \"format\"");
  }
  if (spec.bits() < 1 || spec.bits() > 8)
    throw Error(where, "format " + format + " has " + std::to_string(spec.bits()) + " bits; quantized layers hold 1..8");
  const std::string scale = layer_string(entry, "scale_dtype", where);
  const auto scale_dtype = parse_scale_dtype(scale);
  if (!scale_dtype) throw Error(where, "\"scale_dtype\" must be f16, bf16 or f32, found \"" + scale + "\"");
  spec.scale_dtype = *scale_dtype;
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
  return {{"format", spec.format.to_string()},
          {"group_size", spec.group_size},
          {"scale_dtype", scale_dtype_name(spec.scale_dtype)},
          {"in_features", spec.in_features},
          {"out_features", spec.out_features}};
}

}  // namespace lowbit
