// lowbit quantize --model M --method rtn|gptq|awq|awq+gptq --bits B [--group G] [--sym] [--format F]
//                 --calib FILE [--nsamples N --seqlen L --seed S] [--keep NAME=f16|8 ...] [--recipe FILE]
//                 [--act-order] [--static-groups] [--percdamp P] [--clip-search] -o OUT [--force] [--json]
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/core/mapped_file.h"
#include "lowbit/io/json_file.h"
#include "lowbit/io/quantized_layout.h"
#include "lowbit/io/tokenizer.h"
#include "lowbit/pipeline/calibration.h"
#include "lowbit/pipeline/quantize_model.h"
#include "lowbit/pipeline/quantized_model.h"

namespace lowbit::cli {

namespace {

struct QuantizeCliOptions {
  std::string model, method = "gptq", format, calib, recipe, output, scale_dtype = "f16";
  int bits = 4;
  int64_t group = 128;
  bool sym = false, act_order = false, static_groups = false, clip_search = false, force = false, json = false;
  double percdamp = 0.01;
  std::vector<std::string> keep;
  CalibrationOptions calibration;
};

DType scale_dtype_option(const std::string& text) {
  if (const auto dtype = parse_scale_dtype(text)) return *dtype;
  throw Error("--scale-dtype", "expected f16, bf16 or f32, found '" + text + "'");
}

// Flags given on the command line override the recipe file; a recipe's layer rules come first,
// then every --keep, so the command line has the last word.
QuantRecipe build_recipe(const QuantizeCliOptions& o, const CLI::App& app) {
  QuantRecipe recipe;
  if (!o.recipe.empty()) recipe = QuantRecipe::from_json(read_json_file(o.recipe), o.recipe);
  auto given = [&](const char* flag) { return app.count(flag) > 0; };
  if (given("--method") || o.recipe.empty()) recipe.method = parse_quant_method(o.method);
  if (!o.format.empty()) {
    if (given("--bits") || given("--sym")) throw Error("--format", "gives the grid itself; drop --bits/--sym");
    recipe.scheme.element = Format::parse(o.format);
  } else if (given("--bits") || given("--sym") || o.recipe.empty()) {
    if (o.bits < 1 || o.bits > 8) throw Error("--bits", "must be 1..8, found " + std::to_string(o.bits));
    recipe.scheme.element = o.sym ? Format::int_symmetric(o.bits) : Format::uint(o.bits);
  }
  if (given("--group") || o.recipe.empty()) recipe.scheme.group_size = o.group;
  if (given("--scale-dtype") || o.recipe.empty()) recipe.scheme.scale_dtype = scale_dtype_option(o.scale_dtype);
  if (recipe.scheme.group_size < 0) throw Error("--group", "must be >= 0 (0 = one scale per row), found " + std::to_string(recipe.scheme.group_size));
  if (given("--act-order")) recipe.gptq.act_order = true;
  if (given("--static-groups")) recipe.gptq.static_groups = true;
  if (given("--percdamp")) recipe.gptq.percdamp = o.percdamp;
  if (!(recipe.gptq.percdamp >= 0)) throw Error("--percdamp", "must be >= 0");
  if (given("--clip-search")) recipe.clip_search = true;
  for (const std::string& keep : o.keep) recipe.rules.push_back(parse_keep_rule(keep, recipe.scheme));
  return recipe;
}

std::string error_cell(double e) {
  if (std::isnan(e)) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3e", e);
  return buffer;
}

nlohmann::json report_json(const LayerReport& r) {
  nlohmann::json j = {{"name", r.name}, {"plan", r.plan}, {"rows", r.rows}, {"cols", r.cols},
                      {"bits_per_weight", r.bits_per_weight}, {"seconds", r.seconds}};
  j["relative_error"] = std::isnan(r.relative_error) ? nlohmann::json(nullptr) : nlohmann::json(r.relative_error);
  if (r.awq_alpha >= 0) j["awq_alpha"] = r.awq_alpha;
  return j;
}

}  // namespace

Runner add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeCliOptions>();
  app.add_option("--model,-m", o->model, "model folder or file (HF folder, .safetensors, llama2.c .bin, .gguf)")->required();
  app.add_option("--method", o->method,
                 "rtn (round to nearest, no calibration), gptq (Hessian error feedback; default), awq (activation-aware "
                 "scales + weight clipping, then rtn) or awq+gptq (AWQ scales, then GPTQ rounding)");
  app.add_option("--bits,-b", o->bits, "bits per weight code, 1..8 (default 4)");
  app.add_option("--group,-g", o->group, "input columns per scale; 0 = one scale per output row (default 128)");
  app.add_flag("--sym", o->sym, "symmetric integer grid ±(2^(b-1)-1), no zero points (default: asymmetric uintB with a zero point per group, as GPTQ/AWQ)");
  app.add_option("--format", o->format, "any grid instead of --bits/--sym: int4, uint3, nf4, e2m1, e4m3, ... (see lowbit formats)");
  app.add_option("--scale-dtype", o->scale_dtype, "dtype of the stored scales: f16 (default), bf16 or f32");
  app.add_option("--calib,-c", o->calib, "UTF-8 calibration text, tokenized with the model's tokenizer (needed by all but rtn)");
  app.add_option("--nsamples", o->calibration.nsamples, "calibration sequences (default 128)");
  app.add_option("--seqlen", o->calibration.seqlen, "tokens per calibration sequence (default 512)");
  app.add_option("--seed", o->calibration.seed, "seed of the calibration sampling (default 0)");
  app.add_option("--keep", o->keep,
                 "NAME=f16|bf16|f32 keeps a layer unquantized, NAME=B quantizes it at B bits; NAME is a glob over layer "
                 "names (lm_head, model.embed_tokens, '*.down_proj', model.layers.0.*). Repeatable; later wins. "
                 "Default: embeddings and lm_head kept f16");
  app.add_option("--recipe", o->recipe, "JSON recipe (method, scheme, gptq options, per-layer rules); flags given override it");
  app.add_flag("--act-order", o->act_order, "GPTQ: quantize columns in order of decreasing Hessian diagonal (stores g_idx unless --static-groups; on SmolLM2 it turns GPTQ from worse than RTN off the calibration domain to better, see docs/BENCHMARKS.md)");
  app.add_flag("--static-groups", o->static_groups, "GPTQ: choose group scales up front (act-order without g_idx)");
  app.add_option("--percdamp", o->percdamp, "GPTQ: damping as a fraction of mean(diag H) (default 0.01)");
  app.add_flag("--clip-search", o->clip_search, "RTN/GPTQ: search each group's clipping range (MSE, weighted by diag H)");
  app.add_option("--output,-o", o->output, "output model folder (config.json, model.safetensors, tokenizer)")->required();
  app.add_flag("--force", o->force, "replace OUT if it exists");
  app.add_flag("--json", o->json, "print the report as one JSON object");
  app.footer(
      "Examples:\n"
      "  lowbit quantize -m ../shared/models/stories260K/hf --method gptq --bits 4 --group 32 \\\n"
      "      --calib ../shared/data/tinystories/tinystories_val.txt -o out/stories-gptq4\n"
      "  lowbit quantize -m model.gguf --method awq --bits 3 --calib text.txt --keep '*.down_proj=4' -o out/q3\n"
      "The output loads in lowbit run / eval / inspect; its layout is in docs/FORMATS.md.");
  CLI::App* self = &app;
  return [o, self] {
    const QuantRecipe recipe = build_recipe(*o, *self);
    // Output problems are found now, not after the work.
    if (std::filesystem::exists(o->output) && !o->force)
      throw Error(o->output, "already exists (pass --force to replace it)");
    auto files = std::make_shared<ModelFiles>(open_model(o->model));
    std::vector<std::vector<int32_t>> calibration;
    if (needs_calibration(recipe.method) && o->calib.empty())
      throw Error("--calib", "method " + std::string(quant_method_name(recipe.method)) + " needs a calibration text");
    if (!o->calib.empty()) {
      const auto tokenizer = load_tokenizer(*files);
      try {
        calibration = sample_calibration(tokenizer->encode(read_text_file(o->calib), false), o->calibration);
      } catch (const Error& e) {
        throw Error(o->calib, e.what());
      }
    }
    const bool tty = ::isatty(STDERR_FILENO);
    QuantizeResult result = quantize_model(files, recipe, calibration, [&](const BlockProgress& p) {
      if (p.block == 0) {
        std::fprintf(stderr, "quantizing %s: %s, %s, %zu x %lld calibration tokens\n", o->model.c_str(),
                     std::string(quant_method_name(recipe.method)).c_str(), recipe.scheme.to_string().c_str(),
                     calibration.size(), calibration.empty() ? 0LL : (long long)calibration[0].size());
        return;
      }
      std::fprintf(stderr, "block %lld/%lld  %.1f s  mean relative output error %s%s", (long long)p.block,
                   (long long)p.blocks, p.seconds, error_cell(p.mean_relative_error).c_str(), tty ? "   \r" : "\n");
      if (tty && p.block == p.blocks) std::fprintf(stderr, "\n");
    });
    result.contents.quantization_config["calibration"] = {
        {"text", o->calib}, {"nsamples", calibration.size()},
        {"seqlen", calibration.empty() ? 0 : calibration[0].size()}, {"seed", o->calibration.seed}};
    const std::filesystem::path parent = std::filesystem::absolute(o->output).parent_path();
    std::error_code ignored;
    std::filesystem::create_directories(parent, ignored);  // like mkdir -p; the writer reports failures
    const uint64_t bytes = write_quantized_model(o->output, *files, result.contents, o->force);

    // Sizes: quantized layers at their stored bits, the rest at their dtype width.
    double quantized_bits = 0, quantized_weights = 0, model_bits = 0, parameters = 0;
    for (const auto& [name, tensor] : result.contents.quantized) {
      quantized_bits += 8.0 * static_cast<double>(tensor.storage_bytes());
      quantized_weights += static_cast<double>(tensor.rows() * tensor.cols());
    }
    model_bits = quantized_bits;
    parameters = quantized_weights;
    for (const auto& [name, tensor] : result.contents.dense) {
      model_bits += 8.0 * static_cast<double>(tensor.nbytes());
      parameters += static_cast<double>(tensor.numel());
    }
    for (const auto& [name, bias] : result.contents.biases) {
      model_bits += 32.0 * static_cast<double>(bias.size());
      parameters += static_cast<double>(bias.size());
    }
    const double quantized_bpw = quantized_weights > 0 ? quantized_bits / quantized_weights : 0;
    const double model_bpw = parameters > 0 ? model_bits / parameters : 0;

    if (o->json) {
      nlohmann::json layers = nlohmann::json::array();
      for (const LayerReport& r : result.layers) layers.push_back(report_json(r));
      std::cout << nlohmann::json{{"model", o->model},
                                  {"output", o->output},
                                  {"recipe", recipe.to_json()},
                                  {"calibration_tokens", result.calibration_tokens},
                                  {"layers", layers},
                                  {"quantized_bits_per_weight", quantized_bpw},
                                  {"model_bits_per_weight", model_bpw},
                                  {"parameters", static_cast<int64_t>(parameters)},
                                  {"bytes_written", bytes},
                                  {"seconds", result.seconds}}
                       .dump(2)
                << "\n";
      return 0;
    }
    std::printf("%-36s %-28s %13s %7s %11s %7s\n", "layer", "scheme", "shape", "bpw", "rel. error", "sec");
    for (const LayerReport& r : result.layers) {
      const std::string shape = std::to_string(r.rows) + "x" + std::to_string(r.cols);
      std::string plan = r.plan;
      if (r.awq_alpha >= 0) {
        char alpha[24];
        std::snprintf(alpha, sizeof alpha, " a=%.2f", r.awq_alpha);
        plan += alpha;
      }
      std::printf("%-36s %-28s %13s %7.3f %11s %7.2f\n", r.name.c_str(), plan.c_str(), shape.c_str(), r.bits_per_weight,
                  error_cell(r.relative_error).c_str(), r.seconds);
    }
    std::printf("\nquantized layers: %.4f bits per weight (codes + scales + zero points + g_idx)\n", quantized_bpw);
    std::printf("whole model:      %.4f bits per weight over %s parameters\n", model_bpw,
                with_thousands(static_cast<long long>(parameters)).c_str());
    std::printf("written:          %s (%s bytes) in %.1f s\n", o->output.c_str(),
                with_thousands(static_cast<long long>(bytes)).c_str(), result.seconds);
    return 0;
  };
}

}  // namespace lowbit::cli
