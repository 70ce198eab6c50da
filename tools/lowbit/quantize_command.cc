// lowbit quantize --model M --method rtn|gptq|awq|awq+gptq --bits B [--group G] [--sym] [--format F]
//                 --calib FILE [--nsamples N --seqlen L --seed S] [--keep NAME=f16|8 ...] [--recipe FILE]
//                 [--act-order] [--static-groups] [--percdamp P] [--clip-search]
//                 [--prune magnitude|wanda|sparsegpt (--sparsity R | --nm N:M)] -o OUT [--force] [--json]
// lowbit sparsify --model M --method magnitude|wanda|sparsegpt (--sparsity R | --nm N:M)
//                 [--bits B --group G ... --quant-method rtn|gptq|awq|awq+gptq] [--dtype f16|bf16|f32]
//                 --calib FILE -o OUT
// One command body: sparsify is quantize whose --method names the pruning method and whose
// quantization is optional (--bits or --format turns it on).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <filesystem>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/core/mapped_file.h"
#include "lowbit/compress/ggml_blocks.h"
#include "lowbit/io/json_file.h"
#include "lowbit/io/quantized_layout.h"
#include "lowbit/pipeline/recipe.h"
#include "lowbit/io/tokenizer.h"
#include "lowbit/pipeline/budget.h"
#include "lowbit/pipeline/calibration.h"
#include "lowbit/pipeline/gguf_export.h"
#include "lowbit/pipeline/quantize_model.h"
#include "lowbit/pipeline/quantized_model.h"

namespace lowbit::cli {

namespace {

struct QuantizeCliOptions {
  bool sparsify = false;  // which command: sparsify (prune first, quantize optionally) or quantize
  std::string prune, sparsity, nm, scope = "row", quant_method, dtype = "f16";
  std::string model, method = "gptq", format, calib, recipe, output, scale_dtype = "f16", embedding_type = "q8_0";
  int bits = 4;
  int64_t group = 128;
  bool sym = false, act_order = false, static_groups = false, clip_search = false, force = false, json = false;
  double percdamp = 0.01, budget = 0;
  std::vector<std::string> keep;
  CalibrationOptions calibration;
};

DType scale_dtype_option(const std::string& text) {
  if (const auto dtype = parse_scale_dtype(text, true)) return *dtype;
  throw Error("--scale-dtype", "expected f16, bf16, f32, ue4m3 (NVFP4's, with a tensor scale) or e8m0 (MX), found '" + text + "'");
}

// Flags given on the command line override the recipe file; a recipe's layer rules come first,
// then every --keep, so the command line has the last word.
// Whether the command line set `flag` (false for a flag this command does not have: sparsify and
// quantize differ in flags).
bool flag_given(const CLI::App& app, const char* flag) {
  const CLI::Option* option = app.get_option_no_throw(flag);
  return option && option->count() > 0;
}

// The pruning half: --sparsity / --nm and the method (quantize: --prune, default sparsegpt;
// sparsify: --method). Returns whether the weights are quantized too.
void build_sparsity(const QuantizeCliOptions& o, const CLI::App& app, QuantRecipe& recipe) {
  auto given = [&](const char* flag) { return flag_given(app, flag); };
  if (given("--sparsity") && given("--nm")) throw Error("--nm", "give either --sparsity R or --nm N:M, not both");
  const bool pattern = given("--sparsity") || given("--nm");
  if (o.sparsify) {
    if (!pattern && !recipe.sparsity.enabled()) throw Error("--sparsity", "sparsify needs --sparsity R (e.g. 50%) or --nm N:M (e.g. 2:4)");
    if (given("--method") || o.recipe.empty()) recipe.sparsity.method = parse_prune_method(o.method);
    if (recipe.sparsity.method == PruneMethod::kNone) throw Error("--method", "sparsify needs magnitude, wanda or sparsegpt");
    const bool quantize = given("--bits") || given("--format") || given("--sym");
    if (o.recipe.empty() || quantize) recipe.quantize = quantize;
    if (!o.quant_method.empty()) recipe.method = parse_quant_method(o.quant_method);
    else if (o.recipe.empty()) recipe.method = o.calib.empty() ? QuantMethod::kRtn : QuantMethod::kGptq;
  } else if (pattern || given("--prune")) {
    recipe.sparsity.method = parse_prune_method(o.prune.empty() ? "sparsegpt" : o.prune);
    if (recipe.sparsity.method == PruneMethod::kNone) recipe.sparsity = {};
    else if (!pattern) throw Error("--prune", "needs --sparsity R (e.g. 50%) or --nm N:M (e.g. 2:4)");
  }
  try {
    if (given("--sparsity")) recipe.sparsity.pattern = SparsityPattern::parse(o.sparsity);
    if (given("--nm")) {
      recipe.sparsity.pattern = SparsityPattern::parse(o.nm);
      if (!recipe.sparsity.pattern.nm()) throw Error("expected N:M, e.g. 2:4");
    }
  } catch (const Error& e) {
    throw Error(given("--nm") ? "--nm" : "--sparsity", e.what());
  }
  if (given("--scope")) {
    if (o.scope != "row" && o.scope != "layer") throw Error("--scope", "expected row or layer, found '" + o.scope + "'");
    recipe.sparsity.scope = o.scope == "layer" ? MaskScope::kLayer : MaskScope::kRow;
  }
  if (given("--dtype")) {
    const auto dtype = parse_scale_dtype(o.dtype);
    if (!dtype) throw Error("--dtype", "expected f16, bf16 or f32, found '" + o.dtype + "'");
    recipe.sparse_dtype = *dtype;
  }
}

// A budget grid as reports name it: the ggml type ("q5_0") or lowbit's element format ("uint3").
std::string budget_grid_name(const QuantScheme& scheme) {
  const auto type = ggml_type_of_scheme(scheme);
  return type ? std::string(ggml_traits(*type).name) : scheme.element.to_string();
}

// --format gguf:TYPE: the GGUF block type the output is written in; nullopt for lowbit grids.
std::optional<GgmlType> gguf_output_type(const std::string& format) {
  if (!format.starts_with("gguf:")) return std::nullopt;
  const auto type = parse_ggml_type(format.substr(5));
  if (!type || !(ggml_block_scheme(*type) || ggml_kquant_scheme(*type)))
    throw Error("--format", "GGUF export takes gguf:q8_0, gguf:q5_1, gguf:q5_0, gguf:q4_1, gguf:q4_0, gguf:iq4_nl, gguf:mxfp4, "
                            "gguf:nvfp4 or a k-quant gguf:q6_k, gguf:q5_k, gguf:q4_k, gguf:q3_k, gguf:q2_k, found '" + format + "'");
  return type;
}

QuantRecipe build_recipe(const QuantizeCliOptions& o, const CLI::App& app) {
  QuantRecipe recipe;
  if (!o.recipe.empty()) recipe = QuantRecipe::from_json(read_json_file(o.recipe), o.recipe);
  auto given = [&](const char* flag) { return flag_given(app, flag); };
  if (!o.sparsify && (given("--method") || o.recipe.empty())) recipe.method = parse_quant_method(o.method);
  const auto gguf = gguf_output_type(o.format);
  if (gguf) {
    if (given("--bits") || given("--sym")) throw Error("--format", "gives the grid itself; drop --bits/--sym");
    recipe.scheme = ggml_quantizer_scheme(*gguf);
    if (given("--group") && o.group != recipe.scheme.group_size)
      throw Error("--group", o.format + " groups hold " + std::to_string(recipe.scheme.group_size) + " weights, found --group " +
                                 std::to_string(o.group));
    if (given("--scale-dtype") && scale_dtype_option(o.scale_dtype) != recipe.scheme.scale_dtype)
      throw Error("--scale-dtype", o.format + " stores " + scale_dtype_name(recipe.scheme.scale_dtype) + " scales");
    recipe.clip_search = true;
  } else if (const auto preset = QuantScheme::preset(o.format)) {
    // A whole layout (grid, group, scale dtype): flags may restate it, not change it.
    if (given("--bits") || given("--sym")) throw Error("--format", o.format + " gives the grid itself; drop --bits/--sym");
    if (given("--group") && o.group != preset->group_size)
      throw Error("--group", o.format + " groups hold " + std::to_string(preset->group_size) + " weights, found --group " +
                                 std::to_string(o.group));
    if (given("--scale-dtype") && scale_dtype_option(o.scale_dtype) != preset->scale_dtype)
      throw Error("--scale-dtype", o.format + " stores " + scale_dtype_name(preset->scale_dtype) + " scales, found " + o.scale_dtype);
    recipe.scheme = *preset;
  } else if (!o.format.empty()) {
    if (given("--bits") || given("--sym")) throw Error("--format", "gives the grid itself; drop --bits/--sym");
    recipe.scheme.element = Format::parse(o.format);
  } else if (given("--bits") || given("--sym") || o.recipe.empty()) {
    if (o.bits < 1 || o.bits > 8) throw Error("--bits", "must be 1..8, found " + std::to_string(o.bits));
    recipe.scheme.element = o.sym ? Format::int_symmetric(o.bits) : Format::uint(o.bits);
  }
  const bool layout = gguf || QuantScheme::preset(o.format);  // the group and scale dtype come with the format
  if (!layout && (given("--group") || o.recipe.empty())) recipe.scheme.group_size = o.group;
  if (!layout && (given("--scale-dtype") || o.recipe.empty())) recipe.scheme.scale_dtype = scale_dtype_option(o.scale_dtype);
  if (recipe.scheme.group_size < 0) throw Error("--group", "must be >= 0 (0 = one scale per row), found " + std::to_string(recipe.scheme.group_size));
  if (given("--act-order")) recipe.gptq.act_order = true;
  if (given("--static-groups")) recipe.gptq.static_groups = true;
  if (given("--percdamp")) recipe.gptq.percdamp = o.percdamp;
  if (!(recipe.gptq.percdamp >= 0)) throw Error("--percdamp", "must be >= 0");
  if (given("--clip-search")) recipe.clip_search = true;
  for (const std::string& keep : o.keep) {
    // GGUF output: NAME=TYPE gives a layer another block type (a per-tensor mixture).
    const size_t eq = keep.rfind('=');
    const auto type = gguf && eq != std::string::npos ? parse_ggml_type(keep.substr(eq + 1)) : std::nullopt;
    if (type && (ggml_block_scheme(*type) || ggml_kquant_scheme(*type))) {
      QuantRule rule;
      rule.pattern = keep.substr(0, eq);
      rule.plan.scheme = ggml_quantizer_scheme(*type);
      recipe.rules.push_back(rule);
      continue;
    }
    recipe.rules.push_back(parse_keep_rule(keep, recipe.scheme));
  }
  build_sparsity(o, app, recipe);
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
  if (r.sparsity > 0) j["sparsity"] = r.sparsity;
  return j;
}

Runner add_compress_command(CLI::App& app, bool sparsify) {
  auto o = std::make_shared<QuantizeCliOptions>();
  o->sparsify = sparsify;
  const char* verb = sparsify ? "sparsifying" : "quantizing";
  app.add_option("--model,-m", o->model, "model folder or file (HF folder, .safetensors, llama2.c .bin, .gguf)")->required();
  if (sparsify) {
    app.add_option("--method", o->method,
                   "magnitude (|W|, no calibration), wanda (|W|·‖x‖ per output row) or sparsegpt (OBS pruning with "
                   "weight reconstruction; with --bits, pruning and quantization in one pass)")->required();
    app.add_option("--quant-method", o->quant_method,
                   "with --bits: how magnitude/wanda masks are quantized: rtn, gptq (keeps pruned weights at zero while "
                   "compensating; default with --calib), awq, awq+gptq");
    app.add_option("--dtype", o->dtype, "without --bits: dtype of the kept values, f16 (default), bf16 or f32");
    app.add_option("--bits,-b", o->bits, "also quantize the kept weights to B bits, 1..8 (joint sparsity + quantization)");
  } else {
    app.add_option("--method", o->method,
                   "rtn (round to nearest, no calibration), gptq (Hessian error feedback; default), awq (activation-aware "
                   "scales + weight clipping, then rtn) or awq+gptq (AWQ scales, then GPTQ rounding)");
    app.add_option("--prune", o->prune, "also prune: magnitude, wanda or sparsegpt (default with --sparsity/--nm)");
    app.add_option("--bits,-b", o->bits, "bits per weight code, 1..8 (default 4)");
  }
  app.add_option("--sparsity", o->sparsity, "unstructured: fraction of each row's weights pruned, e.g. 50% or 0.5 (0..99%)");
  app.add_option("--nm", o->nm, "semi-structured: keep N of every M consecutive inputs, e.g. 2:4 (runs on the 2:4 kernel) or 4:8");
  app.add_option("--scope", o->scope, "magnitude with --sparsity: rank weights per row (default) or over the whole layer");
  app.add_option("--group,-g", o->group, "input columns per scale; 0 = one scale per output row (default 128)");
  app.add_flag("--sym", o->sym, "symmetric integer grid ±(2^(b-1)-1), no zero points (default: asymmetric uintB with a zero point per group, as GPTQ/AWQ)");
  app.add_option("--format", o->format,
                 "any grid instead of --bits/--sym: int4, uint3, nf4, e2m1, e4m3, ... (see lowbit formats); a block "
                 "layout: mxfp4 (e2m1, 32 per e8m0 scale), mxfp8 (e4m3, 32 per e8m0), nvfp4 (e2m1, 16 per ue4m3 "
                 "scale x an f32 tensor scale); or "
                 "gguf:q8_0|q5_1|q5_0|q4_1|q4_0|iq4_nl|mxfp4|nvfp4|q6_k|q5_k|q4_k|q3_k|q2_k to write a GGUF file llama.cpp runs, "
                 "quantized on that type's grid (k-quants: tensors whose rows are not whole 256-value super-blocks get "
                 "llama.cpp's fallback type, e.g. q4_k -> q5_0)");
  if (!sparsify)
    app.add_option("--budget", o->budget,
                   "with --calib: bits per weight to spend over the block linears and the embedding table; each tensor "
                   "gets the base grid (--bits B, or --format gguf:TYPE) or a wider one (up to 8 bits, or the wider GGUF "
                   "types) where the measured KL divergence says it matters most");
  if (!sparsify)
    app.add_option("--embedding-type", o->embedding_type,
                   "with --format gguf:TYPE: the token embedding's type, q8_0 (default; llama.cpp's choice for a tied "
                   "head), q5_0, q4_0, iq4_nl, f16, bf16 or f32");
  app.add_option("--scale-dtype", o->scale_dtype,
                 "dtype of the stored scales: f16 (default), bf16, f32, e8m0 (MX's powers of two) or ue4m3 (NVFP4's, "
                 "with an f32 tensor scale per layer)");
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
      "  lowbit quantize -m model.gguf --method gptq --format gguf:iq4_nl --calib text.txt -o out/model-iq4_nl.gguf\n"
      "      (a GGUF llama.cpp runs; --keep '*.down_proj=q8_0' mixes types, --keep model.embed_tokens=q4_0 shrinks the table)\n"
      "The output loads in lowbit run / eval / inspect; its layout is in docs/FORMATS.md.");
  if (sparsify)
    app.footer(
        "Examples:\n"
        "  lowbit sparsify -m ../shared/models/stories260K/hf --method sparsegpt --nm 2:4 \\\n"
        "      --calib ../shared/data/tinystories/tinystories_val.txt -o out/stories-2of4\n"
        "  lowbit sparsify -m model --method wanda --sparsity 50% --bits 4 --calib text.txt -o out/w50-q4\n"
        "Kept values are stored compressed (N:M slots with their positions, or a bitmap; docs/FORMATS.md);\n"
        "2:4 layers with f16/bf16/f32 or 8-bit values run on the sparse kernel, others densified.");
  CLI::App* self = &app;
  return [o, self, verb] {
    QuantRecipe recipe = build_recipe(*o, *self);
    // Output problems are found now, not after the work.
    if (std::filesystem::exists(o->output) && !o->force)
      throw Error(o->output, "already exists (pass --force to replace it)");
    if (flag_given(*self, "--budget") && !gguf_output_type(o->format) &&
        !(recipe.scheme.element.kind() == Format::Kind::kInt && !recipe.scheme.float_min))
      throw Error("--budget", "needs an integer grid (--bits B: B to 8 bits) or --format gguf:TYPE (that type and the wider ones)");
    if (const auto out = gguf_output_type(o->format);
        flag_given(*self, "--budget") && out && (ggml_kquant_scheme(*out) || *out == GgmlType::kMXFP4 || *out == GgmlType::kNVFP4))
      throw Error("--budget", "spends bits over the 32-value integer types (q4_0 ... q8_0, iq4_nl); a k-quant or "
                              "mxfp4/nvfp4 base type is not supported");
    auto files = std::make_shared<ModelFiles>(open_model(o->model));
    const auto gguf = gguf_output_type(o->format);
    std::vector<std::string> notes;  // printed once every check has passed (errors stay one line)
    GgufExportOptions exported;
    if (gguf) {
      const auto embedding = parse_ggml_type(o->embedding_type);
      if (!embedding || !(is_ggml_scheme_type(*embedding) || *embedding == GgmlType::kF32 ||
                          *embedding == GgmlType::kF16 || *embedding == GgmlType::kBF16))
        throw Error("--embedding-type", "expected q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl, f16, bf16 or f32, found '" + o->embedding_type + "'");
      exported.embedding_type = *embedding;
      exported.file_type = llama_file_type(*gguf);
      exported.replace_existing = o->force;
      if (recipe.sparsity.enabled()) throw Error("--format", "GGUF has no sparse layout; prune into a lowbit folder instead");
      for (const auto& [name, tensor] : files->tensors) {
        if (tensor.rank() != 2 || name == "model.embed_tokens.weight" || !name.ends_with(".weight")) continue;
        const std::string linear = name.substr(0, name.size() - 7);
        if (tensor.dim(1) % 32 != 0 && recipe.plan_for(linear).quantize) {
          // The stated fallback: rows that are not whole 32-value blocks stay f16 (llama.cpp
          // refuses such tensors for these types).
          QuantRule f16;
          f16.pattern = linear;
          f16.plan.quantize = false;
          f16.plan.keep_dtype = DType::kF16;
          recipe.rules.push_back(f16);
          notes.push_back(linear + ": rows of " + std::to_string(tensor.dim(1)) + " inputs are not whole blocks of 32; kept f16");
          continue;
        }
        if (const LayerPlan plan = recipe.plan_for(linear);
            plan.quantize && ggml_type_of_scheme(plan.scheme) == GgmlType::kNVFP4 && tensor.dim(1) % 64 != 0) {
          // NVFP4's blocks hold 64 values: rows of whole 32-value blocks only take MXFP4 (the same e2m1 codes).
          QuantRule rule;
          rule.pattern = linear;
          rule.plan.scheme = ggml_quantizer_scheme(GgmlType::kMXFP4);
          recipe.rules.push_back(rule);
          notes.push_back(linear + ": rows of " + std::to_string(tensor.dim(1)) + " inputs are not whole nvfp4 blocks of 64; mxfp4");
        }
        if (const LayerPlan plan = recipe.plan_for(linear); plan.quantize && plan.scheme.super_block.size != 0 &&
                                                            tensor.dim(1) % plan.scheme.super_block.size != 0) {
          // The stated fallback for k-quants: llama.cpp's type for rows that are not whole super-blocks.
          const GgmlType k = *ggml_type_of_scheme(plan.scheme), fallback = ggml_kquant_fallback(k);
          QuantRule rule;
          rule.pattern = linear;
          rule.plan.scheme = ggml_quantizer_scheme(fallback);
          recipe.rules.push_back(rule);
          notes.push_back(linear + ": rows of " + std::to_string(tensor.dim(1)) + " inputs are not whole super-blocks of 256; " +
                          std::string(ggml_traits(fallback).name) + " instead of " + std::string(ggml_traits(k).name) +
                          ", as llama.cpp does");
        }
        const LayerPlan plan = recipe.plan_for(linear);
        if (plan.quantize && !ggml_type_of_scheme(plan.scheme))
          throw Error("--keep", "layer '" + linear + "' would be " + plan.scheme.to_string() +
                                    ", which no GGUF block type holds (give it q8_0, q5_0, q4_0, iq4_nl or f16)");
      }
    } else if (flag_given(*self, "--embedding-type")) {
      throw Error("--embedding-type", "only applies to --format gguf:TYPE");
    }
    std::vector<std::vector<int32_t>> calibration;
    if (needs_calibration(recipe.method) && recipe.quantize && o->calib.empty())
      throw Error("--calib", "method " + std::string(quant_method_name(recipe.method)) + " needs a calibration text");
    if (recipe.sparsity.needs_calibration() && o->calib.empty())
      throw Error("--calib", "pruning method " + std::string(prune_method_name(recipe.sparsity.method)) +
                                 " needs a calibration text");
    if (!o->calib.empty()) {
      const auto tokenizer = load_tokenizer(*files);
      try {
        calibration = sample_calibration(tokenizer->encode(read_text_file(o->calib), false), o->calibration);
      } catch (const Error& e) {
        throw Error(o->calib, e.what());
      }
    }
    std::optional<BudgetPlan> budget;
    if (flag_given(*self, "--budget")) {
      if (calibration.empty()) throw Error("--budget", "needs --calib: the sensitivities are measured on it");
      std::vector<QuantScheme> candidates;
      if (gguf) {
        // The ladder: TYPE, then every wider type (by true bits per weight).
        std::vector<std::pair<double, QuantScheme>> ladder;
        const double base_bits = ggml_traits(*gguf).type_size * 8.0 / 32;
        for (GgmlType type : ggml_scheme_types()) {
          const double bits = ggml_traits(type).type_size * 8.0 / 32;
          if (type == *gguf || bits > base_bits) ladder.emplace_back(bits, ggml_quantizer_scheme(type));
        }
        std::stable_sort(ladder.begin(), ladder.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (size_t i = 0; i < ladder.size(); ++i)
          if (i == 0 || ladder[i].first > ladder[i - 1].first) candidates.push_back(ladder[i].second);  // one per width
      } else {
        // lowbit's own grids: the recipe's integer grid at its width and every wider one up to 8 bits,
        // same group size, scale dtype and symmetry.
        for (int bits = recipe.scheme.bits(); bits <= 8; ++bits) {
          QuantScheme scheme = recipe.scheme;
          scheme.element = recipe.scheme.element.twos_complement()
                               ? (recipe.scheme.element.int_min() == -recipe.scheme.element.int_max()
                                      ? Format::int_symmetric(bits)
                                      : Format::int_full(bits))
                               : Format::uint(bits);
          candidates.push_back(scheme);
        }
      }
      const bool tty = ::isatty(STDERR_FILENO);
      const auto started = std::chrono::steady_clock::now();
      budget = plan_budget(files, candidates, o->budget, calibration, 512, [&](int64_t done, int64_t total) {
        // (the budget is checked before the first call: a refusal stays one line)
        if (done == 1) std::fprintf(stderr, "budget: measuring every tensor on %zu grids and its KL on the model\n", candidates.size());
        if (!tty && done % 16 != 0 && done != total) return;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::fprintf(stderr, "budget: tensor %lld/%lld  %.0f s%s", (long long)done, (long long)total, seconds,
                     tty ? "   \r" : "\n");
      });
      if (tty) std::fprintf(stderr, "\n");
      std::map<std::string, int> counts;
      for (const auto& [name, scheme] : budget->schemes) {
        if (recipe.plan_for(name).quantize || name == "model.embed_tokens") {
          QuantRule rule;
          rule.pattern = name;
          rule.plan.scheme = scheme;
          recipe.rules.push_back(rule);
        }
        counts[budget_grid_name(scheme)]++;
      }
      std::string summary;
      for (const auto& [type, count] : counts) summary += " " + type + " x" + std::to_string(count);
      notes.push_back("budget: " + std::to_string(budget->bits_per_weight) + " bits per weight over the planned tensors:" + summary);
    }
    for (const std::string& note : notes) std::fprintf(stderr, "%s\n", note.c_str());
    const bool tty = ::isatty(STDERR_FILENO);
    QuantizeResult result = quantize_model(files, recipe, calibration, [&](const BlockProgress& p) {
      if (p.block == 0) {
        std::string what = recipe.quantize ? std::string(quant_method_name(recipe.method)) + ", " + recipe.scheme.to_string()
                                           : "float " + scale_dtype_name(recipe.sparse_dtype);
        if (recipe.sparsity.enabled()) what = recipe.sparsity.to_string() + ", " + what;
        std::fprintf(stderr, "%s %s: %s, %zu x %lld calibration tokens\n", verb, o->model.c_str(), what.c_str(),
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
    uint64_t bytes = 0;
    if (gguf) {
      bytes = write_quantized_gguf(o->output, *files, result.contents, exported).bytes_written;
    } else {
      bytes = write_quantized_model(o->output, *files, result.contents, o->force);
    }

    // Sizes: quantized layers at their stored bits, the rest at their dtype width.
    double quantized_bits = 0, quantized_weights = 0, model_bits = 0, parameters = 0;
    for (const auto& [name, tensor] : result.contents.quantized) {
      quantized_bits += 8.0 * static_cast<double>(tensor.storage_bytes());
      quantized_weights += static_cast<double>(tensor.rows() * tensor.cols());
    }
    for (const auto& [name, tensor] : result.contents.sparse) {
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
    // A GGUF's embedding is re-encoded by the writer: count the file itself (metadata and
    // tokenizer included: the true bits per weight of what users download).
    const double model_bpw = parameters <= 0 ? 0 : gguf ? 8.0 * static_cast<double>(bytes) / parameters : model_bits / parameters;

    if (o->json) {
      nlohmann::json layers = nlohmann::json::array();
      for (const LayerReport& r : result.layers) layers.push_back(report_json(r));
      nlohmann::json budget_json = nullptr;
      if (budget) {
        budget_json = {{"target_bits_per_weight", o->budget}, {"bits_per_weight", budget->bits_per_weight}};
        for (size_t i = 0; i < budget->items.size(); ++i) {
          const BudgetItem& item = budget->items[i];
          budget_json["tensors"][item.name] = {
              {"type", budget_grid_name(budget->schemes.at(item.name))},
              {"bits", item.bits}, {"relative_errors", item.relative_errors},
              {"measured_kld", item.measured_kld}, {"estimated_kld", item.errors}};
        }
      }
      std::cout << nlohmann::json{{"model", o->model},
                                  {"budget", budget_json},
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
    std::printf("%-36s %-28s %13s %7s %8s %11s %7s\n", "layer", "scheme", "shape", "bpw", "sparsity", "rel. error", "sec");
    for (const LayerReport& r : result.layers) {
      const std::string shape = std::to_string(r.rows) + "x" + std::to_string(r.cols);
      std::string plan = r.plan;
      if (r.awq_alpha >= 0) {
        char alpha[24];
        std::snprintf(alpha, sizeof alpha, " a=%.2f", r.awq_alpha);
        plan += alpha;
      }
      char sparsity[16] = "-";
      if (r.sparsity > 0) std::snprintf(sparsity, sizeof sparsity, "%.2f%%", 100 * r.sparsity);
      std::printf("%-36s %-28s %13s %7.3f %8s %11s %7.2f\n", r.name.c_str(), plan.c_str(), shape.c_str(), r.bits_per_weight,
                  sparsity, error_cell(r.relative_error).c_str(), r.seconds);
    }
    std::printf("\n%s layers: %.4f bits per weight (values + scales + zero points + g_idx + sparse index)\n",
                recipe.sparsity.enabled() ? "compressed" : "quantized", quantized_bpw);
    std::printf("%s %.4f bits per weight over %s parameters\n", gguf ? "whole file:      " : "whole model:     ", model_bpw,
                with_thousands(static_cast<long long>(parameters)).c_str());
    std::printf("written:          %s (%s bytes) in %.1f s\n", o->output.c_str(),
                with_thousands(static_cast<long long>(bytes)).c_str(), result.seconds);
    return 0;
  };
}

}  // namespace

Runner add_quantize_command(CLI::App& app) { return add_compress_command(app, false); }
Runner add_sparsify_command(CLI::App& app) { return add_compress_command(app, true); }

}  // namespace lowbit::cli
