// lowbit inspect MODEL [--json]: architecture, tensor table, parameter count, file size.
#include <algorithm>
#include <cstdio>
#include <map>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/io/gguf_model.h"
#include "lowbit/io/model_files.h"
#include "lowbit/pipeline/quantized_model.h"

namespace lowbit::cli {

namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
  bool tensors = true;
  bool metadata = false;
};

// What a GGUF file stores: per-type tensor counts and the true bits per weight (every
// byte of tensor data, block scales and mins included, over every weight).
struct GgufSummary {
  std::map<std::string, int64_t> type_counts;
  uint64_t tensor_bytes = 0;
  uint64_t elements = 0;
  double bits_per_weight() const { return elements ? 8.0 * static_cast<double>(tensor_bytes) / static_cast<double>(elements) : 0; }
};

GgufSummary summarize(const GgufFile& file) {
  GgufSummary summary;
  for (const auto& info : file.tensors()) {
    summary.type_counts[std::string(ggml_traits(info.type).name)]++;
    summary.tensor_bytes += info.size_bytes;
    summary.elements += info.element_count();
  }
  return summary;
}

std::string type_counts_text(const GgufSummary& summary) {
  std::vector<std::pair<int64_t, std::string>> sorted;
  for (const auto& [name, count] : summary.type_counts) sorted.emplace_back(-count, name);
  std::sort(sorted.begin(), sorted.end());
  std::string text;
  for (const auto& [negative_count, name] : sorted) text += (text.empty() ? "" : ", ") + std::to_string(-negative_count) + " " + name;
  return text;
}

// The ggml type a GGUF stored a (HF-named) tensor in; empty for other formats.
std::string stored_type(const ModelFiles& model, const std::string& name) {
  if (!model.gguf) return "";
  const auto gguf_name = gguf_tensor_name(name);
  const GgufTensorInfo* info = gguf_name ? model.gguf->find_tensor(*gguf_name) : nullptr;
  return info ? std::string(ggml_traits(info->type).name) : "";
}

// A lowbit quantized (or sparse) folder: each layer's scheme, sparsity and true bits per weight
// (codes or values, scales, zero points, g_idx and sparse index over its out x in weights), and the
// whole model's bits per weight with every other tensor counted at its stored dtype width.
struct CompressedLayer {
  std::string name, scheme, format, scale_dtype, sparse_layout;  // sparse_layout "" for dense layers
  int64_t group_size = 0, rows = 0, cols = 0, storage_bytes = 0;
  bool g_idx = false;
  double sparsity = 0;
  double bits_per_weight() const { return rows * cols > 0 ? 8.0 * static_cast<double>(storage_bytes) / static_cast<double>(rows * cols) : 0; }
};

struct QuantizedSummary {
  std::map<std::string, CompressedLayer> layers;
  uint64_t quantized_bytes = 0, quantized_weights = 0;
  uint64_t model_bytes = 0, model_parameters = 0;
  double quantized_bits_per_weight() const { return quantized_weights ? 8.0 * quantized_bytes / quantized_weights : 0; }
  double model_bits_per_weight() const { return model_parameters ? 8.0 * model_bytes / model_parameters : 0; }
};

CompressedLayer describe(const std::string& name, const QuantizedTensor& q) {
  return {name, q.scheme().to_string(), q.scheme().element.to_string(), std::string(dtype_name(q.scheme().scale_dtype)), "",
          q.scheme().group_size, q.rows(), q.cols(), q.storage_bytes(), !q.g_idx().empty(), 0};
}

QuantizedSummary summarize_quantized(const ModelFiles& model) {
  QuantizedSummary summary;
  for (const auto& [name, layer] : read_quantized_layers(model)) summary.layers[name] = describe(name, *layer);
  for (const auto& [name, layer] : read_sparse_layers(model)) {
    CompressedLayer row;
    if (layer->quantized()) {
      row = describe(name, layer->quantized_tensor());
    } else {
      row = {name, std::string(dtype_name(layer->value_dtype())), std::string(dtype_name(layer->value_dtype())), "", "",
             0, layer->rows(), layer->cols(), 0, false, 0};
    }
    row.sparse_layout = layer->layout().to_string();
    row.scheme = row.sparse_layout + " sparse, " + row.scheme;
    row.sparsity = layer->sparsity();
    row.storage_bytes = layer->storage_bytes();
    summary.layers[name] = row;
  }
  for (const auto& [name, layer] : summary.layers) {
    summary.quantized_bytes += static_cast<uint64_t>(layer.storage_bytes);
    summary.quantized_weights += static_cast<uint64_t>(layer.rows * layer.cols);
  }
  summary.model_bytes = summary.quantized_bytes;
  for (const auto& [name, tensor] : model.tensors) {
    const auto dot = name.rfind('.');
    if (dot != std::string::npos && summary.layers.contains(name.substr(0, dot)) && !name.ends_with(".bias")) continue;
    summary.model_bytes += tensor.nbytes();
  }
  summary.model_parameters = static_cast<uint64_t>(model.parameter_count());
  return summary;
}

nlohmann::json to_json(const QuantizedSummary& summary, const ModelFiles& model) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& [name, layer] : summary.layers) {
    nlohmann::json entry = {{"name", name},
                            {"scheme", layer.scheme},
                            {"format", layer.format},
                            {"group_size", layer.group_size},
                            {"scale_dtype", layer.scale_dtype},
                            {"g_idx", layer.g_idx},
                            {"shape", Shape{layer.rows, layer.cols}},
                            {"storage_bytes", layer.storage_bytes},
                            {"bits_per_weight", layer.bits_per_weight()},
                            {"sparsity", layer.sparsity}};
    if (!layer.sparse_layout.empty()) entry["sparse_layout"] = layer.sparse_layout;
    layers.push_back(entry);
  }
  return {{"config", model.quantization_config},
          {"quantized_layers", summary.layers.size()},
          {"quantized_weights", summary.quantized_weights},
          {"quantized_bits_per_weight", summary.quantized_bits_per_weight()},
          {"model_bits_per_weight", summary.model_bits_per_weight()},
          {"layers", layers}};
}

void print_quantized(const QuantizedSummary& summary) {
  std::printf("compressed:   %zu layers, %.4f bits/weight over their %s weights (scales, zero points, g_idx, sparse index included)\n",
              summary.layers.size(), summary.quantized_bits_per_weight(),
              with_thousands(static_cast<long long>(summary.quantized_weights)).c_str());
  std::printf("bits/weight:  %.4f over all %s parameters (other tensors at their stored width)\n",
              summary.model_bits_per_weight(), with_thousands(static_cast<long long>(summary.model_parameters)).c_str());
  size_t width = 5, scheme_width = 40;
  auto scheme_text = [](const auto& layer) { return layer.scheme + (layer.g_idx ? " g_idx" : ""); };
  for (const auto& [name, layer] : summary.layers) {
    width = std::max(width, name.size());
    scheme_width = std::max(scheme_width, scheme_text(layer).size());
  }
  std::printf("\n  %-*s  %-*s  %-14s  %8s  %11s\n", (int)width, "layer", (int)scheme_width, "scheme", "shape", "sparsity",
              "bits/weight");
  for (const auto& [name, layer] : summary.layers) {
    char sparsity[16] = "-";
    if (!layer.sparse_layout.empty()) std::snprintf(sparsity, sizeof sparsity, "%.2f%%", 100 * layer.sparsity);
    std::printf("  %-*s  %-*s  %-14s  %8s  %11.4f\n", (int)width, name.c_str(), (int)scheme_width,
                scheme_text(layer).c_str(), shape_to_string(Shape{layer.rows, layer.cols}).c_str(), sparsity,
                layer.bits_per_weight());
  }
}

nlohmann::json to_json(const ModelFiles& model) {
  nlohmann::json j;
  j["path"] = model.path;
  j["format"] = model_format_name(model.format);
  j["weight_files"] = model.weight_files;
  j["file_size"] = model.file_size;
  j["parameters"] = model.parameter_count();
  if (model.config) j["config"] = model.config->to_json();
  j["tokenizer"] = {{"kind", tokenizer_kind_name(model.tokenizer)}, {"path", model.tokenizer_path}};
  if (model.tokenizer_vocab_size) j["tokenizer"]["vocab_size"] = model.tokenizer_vocab_size;
  j["metadata"] = model.metadata;
  if (model.gguf) {
    const GgufSummary summary = summarize(*model.gguf);
    nlohmann::json metadata = nlohmann::json::object();
    for (const auto& [key, value] : model.gguf->metadata()) metadata[key] = value.to_display();
    j["gguf"] = {{"version", model.gguf->version()},
                 {"alignment", model.gguf->alignment()},
                 {"tensor_types", summary.type_counts},
                 {"tensor_bytes", summary.tensor_bytes},
                 {"bits_per_weight", summary.bits_per_weight()},
                 {"metadata", metadata}};
  }
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& [name, tensor] : model.tensors) {
    nlohmann::json entry = {{"name", name}, {"dtype", dtype_name(tensor.dtype())}, {"shape", tensor.shape()}, {"bytes", tensor.nbytes()}};
    if (model.gguf) {
      const auto gguf_name = gguf_tensor_name(name);
      const GgufTensorInfo* info = gguf_name ? model.gguf->find_tensor(*gguf_name) : nullptr;
      if (info) entry["stored"] = {{"name", info->name}, {"type", ggml_traits(info->type).name}, {"bytes", info->size_bytes}};
    }
    tensors.push_back(entry);
  }
  j["tensors"] = tensors;
  if (model.quantized()) j["quantization"] = to_json(summarize_quantized(model), model);
  return j;
}

void print_text(const ModelFiles& model, bool with_tensors, bool with_metadata) {
  std::printf("model:        %s\n", model.path.c_str());
  std::printf("format:       %s (%zu weight file%s, %s bytes)\n", std::string(model_format_name(model.format)).c_str(),
              model.weight_files.size(), model.weight_files.size() == 1 ? "" : "s",
              with_thousands(static_cast<long long>(model.file_size)).c_str());
  if (model.config) {
    const LlamaConfig& c = *model.config;
    std::printf("architecture: %s, %lld layers, hidden %lld, intermediate %lld, heads %lld (kv %lld, head_dim %lld)\n",
                c.model_type.c_str(), (long long)c.num_hidden_layers, (long long)c.hidden_size,
                (long long)c.intermediate_size, (long long)c.num_attention_heads, (long long)c.num_key_value_heads,
                (long long)c.head_dim);
    std::printf("              vocab %lld, context %lld, rms_norm_eps %g, rope_theta %g%s%s, %s embeddings, dtype %s\n",
                (long long)c.vocab_size, (long long)c.max_position_embeddings, c.rms_norm_eps, c.rope_theta,
                c.rope_scaling ? ", rope_scaling " : "", c.rope_scaling ? c.rope_scaling->type.c_str() : "",
                c.tie_word_embeddings ? "tied" : "separate", std::string(dtype_name(c.torch_dtype)).c_str());
  } else {
    std::printf("architecture: unknown (no config.json beside the file)\n");
  }
  if (model.tokenizer != TokenizerKind::kNone) {
    std::printf("tokenizer:    %s (%s", std::string(tokenizer_kind_name(model.tokenizer)).c_str(),
                std::filesystem::path(model.tokenizer_path).filename().c_str());
    if (model.tokenizer_vocab_size) std::printf(", %lld tokens", (long long)model.tokenizer_vocab_size);
    std::printf(")\n");
  } else {
    std::printf("tokenizer:    none found\n");
  }
  std::printf("parameters:   %s\n", with_thousands(model.parameter_count()).c_str());
  std::printf("tensors:      %zu\n", model.tensors.size());
  if (model.gguf) {
    const GgufSummary summary = summarize(*model.gguf);
    std::printf("gguf:         version %u, %zu metadata keys, alignment %llu\n", model.gguf->version(),
                model.gguf->metadata().size(), (unsigned long long)model.gguf->alignment());
    std::printf("stored types: %s\n", type_counts_text(summary).c_str());
    std::printf("bits/weight:  %.4f (%s bytes of tensor data, block scales and mins included; held as f32 in memory)\n",
                summary.bits_per_weight(), with_thousands(static_cast<long long>(summary.tensor_bytes)).c_str());
    if (with_metadata) {
      std::printf("\n");
      for (const auto& [key, value] : model.gguf->metadata()) std::printf("  %s = %s\n", key.c_str(), value.to_display().c_str());
    }
  }
  if (model.quantized()) print_quantized(summarize_quantized(model));
  if (!with_tensors) return;
  size_t width = 4;
  for (const auto& [name, tensor] : model.tensors) width = std::max(width, name.size());
  const bool stored = model.gguf != nullptr;
  std::printf("\n  %-*s  %-7s  %-14s  %12s%s\n", (int)width, "name", "dtype", "shape", "bytes", stored ? "  stored" : "");
  for (const auto& [name, tensor] : model.tensors)
    std::printf("  %-*s  %-7s  %-14s  %12s%s%s\n", (int)width, name.c_str(), std::string(dtype_name(tensor.dtype())).c_str(),
                shape_to_string(tensor.shape()).c_str(), with_thousands(static_cast<long long>(tensor.nbytes())).c_str(),
                stored ? "  " : "", stored_type(model, name).c_str());
}

}  // namespace

Runner add_inspect_command(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  app.add_option("MODEL", options->model, "model folder or file")->required();
  app.add_flag("--json", options->json, "print one JSON object instead of text");
  app.add_flag("!--no-tensors", options->tensors, "omit the per-tensor table");
  app.add_flag("--metadata", options->metadata, "list every GGUF metadata key (GGUF files)");
  app.footer(
      "Examples:\n"
      "  lowbit inspect ../shared/models/stories260K/hf\n"
      "  lowbit inspect ../shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf --no-tensors --metadata");
  return [options] {
    const ModelFiles model = open_model(options->model);
    if (options->json)
      std::cout << to_json(model).dump(2) << "\n";
    else
      print_text(model, options->tensors, options->metadata);
    return 0;
  };
}

}  // namespace lowbit::cli
