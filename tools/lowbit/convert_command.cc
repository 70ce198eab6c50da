// lowbit convert IN OUT [--dtype f32|f16|bf16] [--force] [--json]
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/io/convert.h"

namespace lowbit::cli {

namespace {
struct ConvertCliOptions {
  std::string input, output, dtype;
  bool force = false;
  bool json = false;
};
}  // namespace

Runner add_convert_command(CLI::App& app) {
  auto options = std::make_shared<ConvertCliOptions>();
  app.add_option("IN", options->input, "model folder or file (llama2.c .bin, HF folder, .safetensors)")->required();
  app.add_option("OUT", options->output, "output folder (HF layout), or a .safetensors file for a bare safetensors input")
      ->required();
  app.add_option("--dtype", options->dtype, "convert float tensors to f32, f16 or bf16 (round-to-nearest-even)");
  app.add_flag("--force", options->force, "replace OUT if it exists");
  app.add_flag("--json", options->json, "print a JSON summary");
  app.footer(
      "Examples:\n"
      "  lowbit convert ../shared/models/stories260K/llama2c/stories260K.bin out/stories260K-hf\n"
      "  lowbit convert out/stories260K-hf out/stories260K-bf16 --dtype bf16");
  return [options] {
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
