// lowbit convert IN OUT [--dtype f32|f16|bf16] [--type f32|f16|bf16|q8_0] [--force] [--json]
// OUT ending in .gguf writes a GGUF (llama.cpp's names and layout); anything else a HF folder.
#include <cstdio>
#include <optional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/io/convert.h"
#include "lowbit/io/gguf_model.h"

namespace lowbit::cli {

namespace {
struct ConvertCliOptions {
  std::string input, output, dtype, type;
  bool force = false;
  bool json = false;
};
}  // namespace

Runner add_convert_command(CLI::App& app) {
  auto options = std::make_shared<ConvertCliOptions>();
  app.add_option("IN", options->input, "model folder or file (llama2.c .bin, HF folder, .safetensors, .gguf)")->required();
  app.add_option("OUT", options->output,
                 "output: a folder (HF layout: safetensors + config.json + tokenizer), a .gguf file, or a .safetensors "
                 "file for a bare safetensors input")
      ->required();
  app.add_option("--dtype", options->dtype, "convert float tensors to f32, f16 or bf16 (round-to-nearest-even)");
  app.add_option("--type", options->type,
                 "tensor type: f32, f16, bf16, or (GGUF output only) q8_0; 1-D tensors stay f32 in GGUF. Default: the "
                 "source's float type (f32 for a block-quantized GGUF, dequantized exactly)");
  app.add_flag("--force", options->force, "replace OUT if it exists");
  app.add_flag("--json", options->json, "print a JSON summary");
  app.footer(
      "Examples:\n"
      "  lowbit convert ../shared/models/stories260K/llama2c/stories260K.bin out/stories260K-hf\n"
      "  lowbit convert out/stories260K-hf out/stories260K-bf16 --dtype bf16\n"
      "  lowbit convert ../shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf out/smollm2-f32.gguf --type f32\n"
      "  lowbit convert ../shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf out/smollm2-hf");
  return [options] {
    if (!options->type.empty() && !options->dtype.empty() && options->type != options->dtype)
      throw Error("--type", "given together with a different --dtype; use one");
    if (options->dtype.empty()) options->dtype = options->type;
    if (options->output.ends_with(".gguf")) {
      const ModelFiles model = open_model(options->input);
      GgufWriteOptions write;
      write.replace_existing = options->force;
      if (!options->dtype.empty()) {
        const auto type = parse_ggml_type(options->dtype);
        if (!type || !(*type == GgmlType::kF32 || *type == GgmlType::kF16 || *type == GgmlType::kBF16 || *type == GgmlType::kQ8_0))
          throw Error("--type", "expected f32, f16, bf16 or q8_0 for GGUF output, found \"" + options->dtype + "\"");
        write.type = *type;
      } else {
        // The source's float type when every matrix shares one, else f32.
        std::optional<DType> common;
        bool mixed = false;
        for (const auto& [name, tensor] : model.tensors)
          if (tensor.rank() == 2) {
            if (common && *common != tensor.dtype()) mixed = true;
            common = tensor.dtype();
          }
        write.type = mixed || !common ? GgmlType::kF32
                     : *common == DType::kF16 ? GgmlType::kF16
                     : *common == DType::kBF16 ? GgmlType::kBF16 : GgmlType::kF32;
      }
      const GgufWriteReport report = write_model_gguf(model, options->output, write);
      if (options->json) {
        std::cout << nlohmann::json{{"output", options->output},
                                    {"format", "gguf"},
                                    {"tensors", report.tensors},
                                    {"tensor_types", report.types},
                                    {"parameters", model.parameter_count()},
                                    {"bytes_written", report.bytes_written}}
                         .dump(2)
                  << "\n";
      } else {
        std::string types;
        for (const auto& [name, count] : report.types) types += (types.empty() ? "" : ", ") + std::to_string(count) + " " + name;
        std::printf("wrote %s: %lld tensors (%s), %s parameters, %s bytes\n", options->output.c_str(),
                    (long long)report.tensors, types.c_str(), with_thousands(model.parameter_count()).c_str(),
                    with_thousands((long long)report.bytes_written).c_str());
      }
      return 0;
    }
    ConvertOptions convert;
    convert.replace_existing = options->force;
    if (!options->dtype.empty()) {
      const auto dtype = parse_dtype_lenient(options->dtype);
      if (!dtype || !(*dtype == DType::kF32 || *dtype == DType::kF16 || *dtype == DType::kBF16))
        throw Error("--dtype", "expected f32, f16 or bf16, found \"" + options->dtype + "\"");
      convert.dtype = *dtype;
    }
    const ModelFiles model = open_model(options->input);
    const ConvertReport report = convert_model(model, options->output, convert);
    if (options->json) {
      std::cout << nlohmann::json{{"output", report.output},
                                  {"tensors", report.tensors},
                                  {"parameters", report.parameters},
                                  {"bytes_written", report.bytes_written}}
                       .dump(2)
                << "\n";
    } else {
      std::printf("wrote %s: %lld tensors, %s parameters, %s bytes\n", report.output.c_str(), (long long)report.tensors,
                  with_thousands(report.parameters).c_str(), with_thousands((long long)report.bytes_written).c_str());
    }
    return 0;
  };
}

}  // namespace lowbit::cli
