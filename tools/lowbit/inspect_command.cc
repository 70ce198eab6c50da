// lowbit inspect MODEL [--json]: architecture, tensor table, parameter count, file size.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/io/model_files.h"

namespace lowbit::cli {

namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
  bool tensors = true;
};

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
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& [name, tensor] : model.tensors)
    tensors.push_back({{"name", name}, {"dtype", dtype_name(tensor.dtype())}, {"shape", tensor.shape()}, {"bytes", tensor.nbytes()}});
  j["tensors"] = tensors;
  return j;
}

void print_text(const ModelFiles& model, bool with_tensors) {
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
  if (!with_tensors) return;
  size_t width = 4;
  for (const auto& [name, tensor] : model.tensors) width = std::max(width, name.size());
  std::printf("\n  %-*s  %-7s  %-14s  %12s\n", (int)width, "name", "dtype", "shape", "bytes");
  for (const auto& [name, tensor] : model.tensors)
    std::printf("  %-*s  %-7s  %-14s  %12s\n", (int)width, name.c_str(), std::string(dtype_name(tensor.dtype())).c_str(),
                shape_to_string(tensor.shape()).c_str(), with_thousands(static_cast<long long>(tensor.nbytes())).c_str());
}

}  // namespace

Runner add_inspect_command(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  app.add_option("MODEL", options->model, "model folder or file")->required();
  app.add_flag("--json", options->json, "print one JSON object instead of text");
  app.add_flag("!--no-tensors", options->tensors, "omit the per-tensor table");
  app.footer("Example: lowbit inspect ../shared/models/stories260K/hf");
  return [options] {
    const ModelFiles model = open_model(options->model);
    if (options->json)
      std::cout << to_json(model).dump(2) << "\n";
    else
      print_text(model, options->tensors);
    return 0;
  };
}

}  // namespace lowbit::cli
