// `lowbit quantize` end to end on the real stories260K model, and its refusals: one line on
// stderr, exit code 2, and no output folder.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <tuple>
#include <nlohmann/json.hpp>

#include "lowbit/io/gguf.h"
#include "testing/random_model.h"
#include "lowbit/numerics/ggml_quants.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::run_cli;

// `lowbit eval ppl --json` of `model` on two windows of the TinyStories file; NaN (and a failure) when
// the command fails.
double tinystories_perplexity(const std::string& model, const std::string& shared) {
  const auto ppl = run_cli("eval ppl -m " + model + " -f " + shared + "/data/tinystories/tinystories_val.txt --chunks 2 --json");
  if (ppl.exit_code != 0) {
    ADD_FAILURE() << ppl.err;
    return std::nan("");
  }
  return nlohmann::json::parse(ppl.out)["perplexity"].get<double>();
}

TEST(QuantizeCli, GptqFolderRunsEvaluatesAndInspects) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string out = testing::temp_dir() + "/gptq4";
  const auto r = run_cli("quantize -m " + shared + "/models/stories260K/hf --method gptq --bits 4 --group 32 --calib " +
                         shared + "/data/tinystories/tinystories_val.txt --nsamples 8 --seqlen 64 --keep '*.down_proj=8' -o " +
                         out + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  ASSERT_EQ(report["layers"].size(), 37u);  // embeddings + 5 blocks x 7 + lm_head
  EXPECT_EQ(report["calibration_tokens"], 8 * 64);
  EXPECT_EQ(report["layers"][7]["name"], "model.layers.0.mlp.down_proj");
  EXPECT_EQ(report["layers"][7]["plan"], "uint8 g32 (F16 scales, zero points)");
  EXPECT_EQ(report["layers"][1]["plan"], "uint4 g32 (F16 scales, zero points)");
  EXPECT_TRUE(report["layers"][1]["relative_error"].is_number());
  EXPECT_TRUE(contains(r.err, "block 5/5"));  // progress per block on stderr
  // 4-bit g32 with f16 scale and 4-bit zero per group: 4 + 16/32 + 4/32 = 4.625 bits (down_proj:
  // 8 bits, 172 inputs in 6 groups of which the last is ragged).
  EXPECT_GT(report["quantized_bits_per_weight"].get<double>(), 4.625);
  EXPECT_LT(report["quantized_bits_per_weight"].get<double>(), 8.0);

  const auto inspect = run_cli("inspect " + out + " --no-tensors");
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_TRUE(contains(inspect.out, "compressed:   35 layers"));
  const auto run = run_cli("run -m " + out + " -p 'Once upon a time' -n 8");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const double perplexity = tinystories_perplexity(out, shared);
  EXPECT_GT(perplexity, 1.0);
  EXPECT_LT(perplexity, 20.0);  // the fp32 model scores about 4 here; a broken layer scores hundreds
}

// --format gguf:TYPE: a GGUF file on the type's grid, with the stated fallback for rows that are
// not whole blocks, per-layer types through --keep, and the file evaluates in lowbit.
TEST(QuantizeCli, GgufFormatWritesAFileThatEvaluates) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string out = testing::temp_dir() + "/stories-q4_0.gguf";
  const auto r = run_cli("quantize -m " + shared + "/models/stories260K/hf --method gptq --format gguf:q4_0 --calib " +
                         shared + "/data/tinystories/tinystories_val.txt --nsamples 4 --seqlen 64 --keep '*.o_proj=q8_0' -o " +
                         out + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "model.layers.0.mlp.down_proj: rows of 172 inputs are not whole blocks of 32; kept f16")) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["recipe"]["scheme"]["format"], "int4:full");
  EXPECT_EQ(report["recipe"]["scheme"]["signed_scales"], true);
  EXPECT_EQ(report["layers"][1]["plan"], "int4:full g32 (F16 scales, signed)");
  EXPECT_EQ(report["layers"][4]["plan"], "int8 g32 (F16 scales, signed)");  // o_proj: q8_0
  EXPECT_EQ(report["layers"][7]["plan"], "kept f16");  // down_proj
  EXPECT_EQ(report["bytes_written"], std::filesystem::file_size(out));

  const auto inspect = run_cli("inspect " + out);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_TRUE(contains(inspect.out, "q4_0")) << inspect.out;
  const double perplexity = tinystories_perplexity(out, shared);
  EXPECT_GT(perplexity, 1.0);
  EXPECT_LT(perplexity, 20.0);
}

// --format nvfp4 / mxfp4: the block-scaled 4-bit float layouts, through AWQ (whose scale search
// follows NVFP4's tensor scale) and GPTQ; the folders record their 8-bit scales and evaluate.
TEST(QuantizeCli, BlockScaledFloatLayoutsQuantizeAndEvaluate) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string calib = " --calib " + shared + "/data/tinystories/tinystories_val.txt --nsamples 4 --seqlen 64";
  for (const auto& [format, method, plan, scale_dtype] :
       {std::tuple{"nvfp4", "awq", "e2m1 g16 (F8_E4M3 scales x f32 tensor scale)", "ue4m3"},
        std::tuple{"mxfp4", "gptq", "e2m1 g32 (F8_E8M0 scales)", "e8m0"}}) {
    SCOPED_TRACE(format);
    const std::string out = testing::temp_dir() + "/" + format;
    const auto r = run_cli("quantize -m " + shared + "/models/stories260K/hf --method " + method + " --format " + format +
                           calib + " -o " + out + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto report = nlohmann::json::parse(r.out);
    EXPECT_EQ(report["layers"][1]["plan"], plan);
    EXPECT_EQ(report["recipe"]["scheme"]["scale_dtype"], scale_dtype);
    const auto config = nlohmann::json::parse(testing::read_all(out + "/config.json"));
    EXPECT_EQ(config["quantization_config"]["layers"]["model.layers.0.mlp.down_proj"]["scale_dtype"], scale_dtype);
    const double perplexity = tinystories_perplexity(out, shared);
    EXPECT_GT(perplexity, 1.0);
    EXPECT_LT(perplexity, 20.0);  // the fp32 model scores about 4 here; a broken layer scores hundreds
  }
}

// --format gguf:mxfp4 / gguf:nvfp4: ggml's 4-bit float blocks. On a model whose rows of 96 inputs are
// whole 32-value blocks but not whole 64-value NVFP4 blocks, those layers take MXFP4 (said once per
// layer), the rest NVFP4; the file holds those types and evaluates.
TEST(QuantizeCli, Fp4GgufTypesWithTheirFallback) {
  LlamaConfig c = testing::awkward_config();
  c.model_type = "llama";
  c.hidden_size = 96;
  c.intermediate_size = 64;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.attention_bias = false;
  c.rope_scaling.reset();
  const std::string model = testing::write_random_model(c);
  const std::string out = testing::temp_dir() + "/random-nvfp4.gguf";
  const auto r = run_cli("quantize -m " + model + " --method rtn --format gguf:nvfp4 -o " + out + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "model.layers.0.self_attn.q_proj: rows of 96 inputs are not whole nvfp4 blocks of 64; mxfp4"))
      << r.err;
  const GgufFile file = GgufFile::open(out);
  EXPECT_EQ(file.find_tensor("blk.0.attn_q.weight")->type, GgmlType::kMXFP4);
  EXPECT_EQ(file.find_tensor("blk.0.ffn_down.weight")->type, GgmlType::kNVFP4);  // 64 inputs
  EXPECT_EQ(file.at("general.file_type").as_uint("test"), 39u);                  // LLAMA_FTYPE_MOSTLY_NVFP4
  const auto mx = run_cli("quantize -m " + model + " --method rtn --format gguf:mxfp4 -o " + out + "-mx.gguf");
  ASSERT_EQ(mx.exit_code, 0) << mx.err;
  EXPECT_EQ(GgufFile::open(out + "-mx.gguf").find_tensor("blk.0.ffn_down.weight")->type, GgmlType::kMXFP4);
  const std::string ids = testing::temp_dir() + "/ids.txt";
  testing::write_raw(ids, "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17");
  const auto ppl = run_cli("eval ppl -m " + out + " --ids " + ids + " --ctx 8 --json");
  ASSERT_EQ(ppl.exit_code, 0) << ppl.err;
  EXPECT_TRUE(std::isfinite(nlohmann::json::parse(ppl.out)["perplexity"].get<double>()));
}

// A k-quant output on stories260K, whose rows (64 and 172 inputs) are no whole 256-value
// super-blocks: each layer gets llama.cpp's fallback (q4_K → q5_0), said once per layer, and the
// 172-input down_proj, not whole blocks of 32 either, stays f16. The file evaluates.
TEST(QuantizeCli, KQuantFormatFallsBackAsLlamaCppDoes) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string out = testing::temp_dir() + "/stories-q4_k.gguf";
  const auto r = run_cli("quantize -m " + shared + "/models/stories260K/hf --method rtn --format gguf:q4_k -o " + out + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "model.layers.0.self_attn.q_proj: rows of 64 inputs are not whole super-blocks of 256; q5_0 "
                              "instead of q4_K, as llama.cpp does")) << r.err;
  EXPECT_TRUE(contains(r.err, "model.layers.0.mlp.down_proj: rows of 172 inputs are not whole blocks of 32; kept f16")) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["layers"][1]["plan"], "int5:full g32 (F16 scales, signed)");  // q_proj: q5_0
  EXPECT_EQ(report["layers"][7]["plan"], "kept f16");                           // down_proj
  const GgufFile file = GgufFile::open(out);
  EXPECT_EQ(file.find_tensor("blk.0.attn_q.weight")->type, GgmlType::kQ5_0);
  EXPECT_EQ(file.at("general.file_type").as_uint("test"), 14u);  // LLAMA_FTYPE_MOSTLY_Q4_K_S, as llama-quantize names it
  EXPECT_LT(tinystories_perplexity(out, shared), 20.0);
}

// --budget on lowbit's own grids: --bits 2 and every wider width up to 8, chosen per tensor (the
// table too) within the budget; the folder runs.
TEST(QuantizeCli, BudgetOnLowbitGridsMixesWidthsWithinIt) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string out = testing::temp_dir() + "/budget-native";
  const auto r = run_cli("quantize -m " + shared + "/models/stories260K/hf --method rtn --bits 2 --group 32 --budget 3.5 --calib " +
                         shared + "/data/tinystories/tinystories_val.txt --nsamples 4 --seqlen 64 -o " + out + " --force --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = nlohmann::json::parse(r.out);
  const auto& budget = report["budget"];
  EXPECT_LE(budget["bits_per_weight"].get<double>(), 3.5);
  EXPECT_GT(budget["bits_per_weight"].get<double>(), 3.0);
  ASSERT_EQ(budget["tensors"].size(), 31u);  // 5 blocks x 6 linears of 64 inputs (not down_proj), and the table
  std::set<std::string> types;
  for (const auto& [name, tensor] : budget["tensors"].items()) {
    types.insert(tensor["type"].get<std::string>());
    EXPECT_EQ(tensor["bits"].size(), 7u) << name;  // uint2 .. uint8
    EXPECT_GT(tensor["measured_kld"].get<double>(), 0.0) << name;
  }
  EXPECT_TRUE(types.contains("uint2") && types.size() >= 2) << r.out;
  EXPECT_EQ(report["layers"][0]["name"], "model.embed_tokens");
  EXPECT_EQ(report["layers"][0]["plan"].get<std::string>().substr(0, 4), "uint") << report["layers"][0]["plan"];
  EXPECT_LT(tinystories_perplexity(out, shared), 50.0);
}

TEST(QuantizeCli, RefusalsAreOneLineWithExitTwoAndNoOutput) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string dir = testing::temp_dir();
  const std::string model = " -m " + shared + "/models/stories260K/hf";
  const std::string calib = " --calib " + shared + "/data/tinystories/tinystories_val.txt --nsamples 2 --seqlen 32";
  testing::write_raw(dir + "/bad-recipe.json", R"({"method": "gptq", "bitz": 4})");
  testing::write_raw(dir + "/short.txt", "Once upon a time");
  std::vector<std::pair<std::string, std::string>> cases = {
      {model + " --bits 9", "--bits: must be 1..8"},
      {model + " --bits 0", "--bits: must be 1..8"},
      {model + " --method gptq", "--calib: method gptq needs a calibration text"},
      {model + " --method best" + calib, "method 'best' is not one of"},
      {model + " --method rtn --group 100", "group"},
      {model + " --method rtn --group -3", "--group"},
      {model + " --method rtn --keep lm_head", "--keep lm_head: expected NAME="},
      {model + " --method rtn --group 32 --keep model.embed_tokens=4 --keep lm_head=8", "lm_head: the head is tied to model.embed_tokens"},
      {model + " --method rtn --keep model.embed_tokens=4", "model.embed_tokens: quantization scheme uint4 g128"},
      {model + " --method rtn --format nf4 --bits 3", "--format"},
      {model + " --method rtn --format int12", "int12"},
      {model + " --recipe " + dir + "/bad-recipe.json" + calib, "unknown key 'bitz'"},
      {model + " --method gptq --calib " + dir + "/short.txt --seqlen 64", "fewer than one sequence"},
      {model + " --method gptq --static-groups --group 0" + calib, "static groups"},
      {" -m " + dir + "/missing --method rtn", "missing"},
      {model + " --method rtn -o " + dir, "already exists"},
      {model + " --method rtn --format gguf:iq4_xs", "GGUF export takes gguf:q8_0, gguf:q5_1, gguf:q5_0, gguf:q4_1, gguf:q4_0, gguf:iq4_nl, gguf:mxfp4, gguf:nvfp4 or a k-quant"},
      {model + " --method rtn --format gguf:q4_0 --group 64", "--group: gguf:q4_0 groups hold 32 weights"},
      {model + " --method rtn --format gguf:q6_k --group 32", "--group: gguf:q6_k groups hold 16 weights"},
      {model + " --method rtn --format gguf:q4_k --budget 5" + calib, "--budget: spends bits over the 32-value integer types"},
      {model + " --method rtn --format gguf:q4_0 --bits 4", "--format: gives the grid itself"},
      {model + " --method rtn --format gguf:q4_0 --embedding-type q4_k", "--embedding-type: expected q8_0"},
      {model + " --method rtn --embedding-type q8_0", "--embedding-type: only applies to --format gguf:TYPE"},
      {model + " --method rtn --format gguf:q4_0 --keep '*.v_proj=3'", "which no GGUF block type holds"},
      {model + " --method rtn --format nf4 --budget 5", "--budget: needs an integer grid (--bits B: B to 8 bits) or --format gguf:TYPE"},
      {model + " --method rtn --budget 5", "--budget: needs --calib"},
      {model + " --method rtn --format nvfp4 --group 32", "--group: nvfp4 groups hold 16 weights, found --group 32"},
      {model + " --method rtn --format mxfp4 --scale-dtype f16", "--scale-dtype: mxfp4 stores e8m0 scales, found f16"},
      {model + " --method rtn --format mxfp4 --bits 4", "--format: mxfp4 gives the grid itself"},
      {model + " --method rtn --bits 4 --group 32 --scale-dtype e8m0", "8-bit float scales (NVFP4's UE4M3, MX's E8M0) are unsigned"},
      {model + " --method rtn --scale-dtype e5m2", "--scale-dtype: expected f16, bf16, f32, ue4m3"},
      {model + " --method rtn --format gguf:q4_0 --budget 5", "--budget: needs --calib"},
      {model + " --method rtn --format gguf:q4_0 --budget 4" + calib, "--budget: 4.0000 bits per weight is below the cheapest grids' 4.5000"},
  };
  // A quantized folder as input: refused by name rather than as a missing .weight tensor.
  const std::string quantized = dir + "/quantized";
  ASSERT_EQ(run_cli("quantize" + model + " --method rtn --group 32 -o " + quantized).exit_code, 0);
  cases.push_back({" -m " + quantized + " --method rtn --group 32", "is already quantized"});
  for (const auto& [args, expected] : cases) {
    SCOPED_TRACE(args);
    const std::string out = dir + "/out";
    const auto r = run_cli("quantize" + args + (contains(args, " -o ") ? "" : " -o " + out));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(contains(r.err, expected)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

}  // namespace
}  // namespace lowbit
