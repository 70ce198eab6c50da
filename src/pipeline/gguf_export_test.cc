// GGUF export of quantize_model's result: the file, read back (lowbit's GGUF reader decodes with
// ggml's dequantization, bit-exact), holds exactly the values lowbit quantized and evaluates —
// layer by layer, the RoPE row order undone, the tied embedding on its own grid — and what no
// GGUF type holds is refused before anything is written.
#include "lowbit/pipeline/gguf_export.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <memory>

#include "lowbit/compress/ggml_blocks.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/error.h"
#include "lowbit/io/gguf.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/pipeline/quantize_model.h"
#include "lowbit/pipeline/quantized_model.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

QuantRecipe gguf_recipe(GgmlType type) {
  QuantRecipe recipe;
  recipe.method = QuantMethod::kRtn;
  recipe.scheme = ggml_quantizer_scheme(type);
  recipe.clip_search = true;
  // stories260K's down_proj has 172 inputs, not whole blocks of 32: kept f16 (the CLI's fallback).
  recipe.rules.push_back(parse_keep_rule("*.down_proj=f16", recipe.scheme));
  recipe.rules.push_back(parse_keep_rule("model.layers.1.mlp.up_proj=f32", recipe.scheme));
  return recipe;
}

// Bit for bit, except that +0 and −0 count alike: e2m1's code 8 is −0 in lowbit, +0 in ggml's decoding.
void expect_bitwise(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i] + 0.0f), std::bit_cast<uint32_t>(b[i] + 0.0f)) << what << " value " << i;
}

TEST(GgufExport, FileHoldsExactlyTheValuesLowbitQuantized) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto files = std::make_shared<ModelFiles>(open_model(shared + "/models/stories260K/hf"));
  // (stories260K's other rows have 64 inputs: whole NVFP4 blocks of 64 too.)
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kIQ4_NL, GgmlType::kMXFP4, GgmlType::kNVFP4}) {
    const std::string name(ggml_traits(type).name);
    const QuantRecipe recipe = gguf_recipe(type);
    const QuantizeResult result = quantize_model(files, recipe, {});
    const std::string path = testing::temp_dir() + "/stories-" + name + ".gguf";
    GgufExportOptions options;
    options.file_type = llama_file_type(type);
    const GgufWriteReport report = write_quantized_gguf(path, *files, result.contents, options);
    EXPECT_EQ(report.types.at(name), 5 * 6 - 1) << name;  // q, k, v, o, gate, up per block, one up kept f32
    EXPECT_EQ(report.types.at("q8_0"), 1);                 // the embedding (the tied head)
    EXPECT_EQ(report.types.at("f16"), 5);                  // down_proj

    const GgufFile file = GgufFile::open(path);
    EXPECT_EQ(file.at("general.file_type").as_uint("test"), static_cast<uint64_t>(llama_file_type(type)));
    EXPECT_EQ(file.find_tensor("blk.0.attn_q.weight")->type, type);
    EXPECT_EQ(file.find_tensor("blk.1.ffn_up.weight")->type, GgmlType::kF32);
    const ModelFiles back = open_model(path);
    for (const auto& [layer, tensor] : result.contents.quantized)
      expect_bitwise(back.find(layer + ".weight")->to_f32_vector(), tensor.dequantize(), name + " " + layer);
    for (const auto& [tensor_name, tensor] : result.contents.dense) {
      if (tensor_name == "model.embed_tokens.weight") continue;
      expect_bitwise(back.find(tensor_name)->to_f32_vector(), tensor.to_f32_vector(), name + " " + tensor_name);
    }
    // The embedding: lowbit's RTN on Q8_0's grid, from the source's f32 values.
    const Tensor& embedding = *files->find("model.embed_tokens.weight");
    RtnOptions rtn;
    rtn.scheme = *ggml_block_scheme(GgmlType::kQ8_0);
    rtn.scheme.signed_scales = true;
    rtn.scale.search = ScaleSearch::kMse;
    expect_bitwise(back.find("model.embed_tokens.weight")->to_f32_vector(),
                   quantize_rtn(embedding.to_f32_vector(), embedding.dim(0), embedding.dim(1), rtn).dequantize(),
                   name + " embedding");
  }
}

// The k-quants in a real file: SmolLM2's down_proj rows (1536 inputs) are whole 256-value
// super-blocks. Two of them quantized to Q4_K and Q6_K (the rest kept f16, for speed), written,
// read back through ggml's dequantization: exactly the values lowbit quantized, in blocks of the type.
TEST(GgufExport, KQuantTensorsHoldExactlyTheValuesLowbitQuantized) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto files = std::make_shared<ModelFiles>(open_model(shared + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"));
  QuantRecipe recipe;
  recipe.method = QuantMethod::kRtn;
  recipe.scheme = ggml_quantizer_scheme(GgmlType::kQ4_K);
  recipe.clip_search = true;
  recipe.rules.push_back(parse_keep_rule("*=f16", recipe.scheme));
  for (const auto& [layer, type] : {std::pair{"model.layers.0.mlp.down_proj", GgmlType::kQ4_K},
                                    std::pair{"model.layers.1.mlp.down_proj", GgmlType::kQ6_K}}) {
    QuantRule rule;
    rule.pattern = layer;
    rule.plan.scheme = ggml_quantizer_scheme(type);
    recipe.rules.push_back(rule);
  }
  const QuantizeResult result = quantize_model(files, recipe, {});
  ASSERT_EQ(result.contents.quantized.size(), 2u);
  const std::string path = testing::temp_dir() + "/smollm2-kquants.gguf";
  GgufExportOptions options;
  options.embedding_type = GgmlType::kF16;
  options.file_type = llama_file_type(GgmlType::kQ4_K);
  const GgufWriteReport report = write_quantized_gguf(path, *files, result.contents, options);
  EXPECT_EQ(report.types.at("q4_K"), 1);
  EXPECT_EQ(report.types.at("q6_K"), 1);
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.at("general.file_type").as_uint("test"), 14u);  // LLAMA_FTYPE_MOSTLY_Q4_K_S
  EXPECT_EQ(file.find_tensor("blk.0.ffn_down.weight")->type, GgmlType::kQ4_K);
  EXPECT_EQ(file.find_tensor("blk.1.ffn_down.weight")->type, GgmlType::kQ6_K);
  const ModelFiles back = open_model(path);
  for (const auto& [layer, tensor] : result.contents.quantized)
    expect_bitwise(back.find(layer + ".weight")->to_f32_vector(), tensor.dequantize(), layer);
}

// A GGUF opened to run keeps its block weights packed (resident about its own size) and runs them
// on QuantizedLinear: prefill (dequantized 64-row tiles into sgemm) gives the dequantized model's
// logits bit for bit, decode (the packed GEMV) the same greedy tokens and logits within f32 rounding.
TEST(GgufExport, OpenedToRunTheBlocksStayPackedAndAgreeWithTheDequantizedModel) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto source = std::make_shared<ModelFiles>(open_model(shared + "/models/stories260K/hf"));
  for (GgmlType type : ggml_scheme_types()) {
    const std::string name(ggml_traits(type).name);
    SCOPED_TRACE(name);
    const std::string path = testing::temp_dir() + "/run-" + name + ".gguf";
    GgufExportOptions options;
    options.file_type = llama_file_type(type);
    options.replace_existing = true;
    write_quantized_gguf(path, *source, quantize_model(source, gguf_recipe(type), {}).contents, options);

    const auto dense_files = std::make_shared<ModelFiles>(open_model(path));
    const auto packed_files = std::make_shared<ModelFiles>(open_model_to_run(path));
    // 29 block linears in `type` (down_proj f16, one up_proj f32) and the Q8_0 embedding.
    EXPECT_EQ(packed_files->gguf_blocks.size(), 30u);
    EXPECT_EQ(packed_files->find("model.layers.0.self_attn.q_proj.weight"), nullptr);
    EXPECT_NE(packed_files->find("model.layers.0.mlp.down_proj.weight"), nullptr);
    EXPECT_EQ(packed_files->parameter_count(), dense_files->parameter_count());
    const auto dense = load_llama_model(dense_files), packed = load_llama_model(packed_files);
    EXPECT_NE(dynamic_cast<const QuantizedLinear*>(&packed->linear("model.layers.0.self_attn.q_proj")), nullptr);
    EXPECT_NE(dynamic_cast<const QuantizedLinear*>(&packed->embedding()), nullptr);
    // Resident: the packed codes with f32 scales, under half the f32 copy even for Q8_0 (with the f16
    // down_proj and f32 up_proj alike in both).
    EXPECT_LT(packed->weight_bytes_per_token(), dense->weight_bytes_per_token() / 2);

    const LlamaConfig& c = dense->config();
    std::vector<int32_t> prompt(40);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 37 + 11) % c.vocab_size);
    KvCache dense_cache(c, 64), packed_cache(c, 64);
    std::vector<float> a(prompt.size() * static_cast<size_t>(c.vocab_size)), b(a.size());
    dense->forward(prompt, dense_cache, a.data(), true);
    packed->forward(prompt, packed_cache, b.data(), true);
    expect_bitwise(a, b, name + " prefill logits");
    std::vector<float> la(static_cast<size_t>(c.vocab_size)), lb(la.size());
    int32_t ta = prompt.back(), tb = ta;
    for (int step = 0; step < 8; ++step) {
      dense->forward(std::span<const int32_t>(&ta, 1), dense_cache, la.data(), false);
      packed->forward(std::span<const int32_t>(&tb, 1), packed_cache, lb.data(), false);
      float scale = 0;
      for (float v : la) scale = std::max(scale, std::fabs(v));
      for (size_t v = 0; v < la.size(); ++v) ASSERT_NEAR(la[v], lb[v], 1e-4f * scale) << "step " << step << " logit " << v;
      ta = static_cast<int32_t>(std::max_element(la.begin(), la.end()) - la.begin());
      tb = static_cast<int32_t>(std::max_element(lb.begin(), lb.end()) - lb.begin());
      ASSERT_EQ(ta, tb) << "step " << step;
    }
  }
}

TEST(GgufExport, RefusesWhatNoGgufTypeHoldsAndWritesNothing) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto files = std::make_shared<ModelFiles>(open_model(shared + "/models/stories260K/hf"));
  QuantRecipe recipe = gguf_recipe(GgmlType::kQ4_0);
  recipe.rules.push_back(parse_keep_rule("model.layers.2.self_attn.v_proj=3", recipe.scheme));
  const QuantizeResult result = quantize_model(files, recipe, {});
  const std::string path = testing::temp_dir() + "/refused.gguf";
  std::string message;
  try {
    write_quantized_gguf(path, *files, result.contents, {});
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_EQ(message, path + ": layer 'model.layers.2.self_attn.v_proj' is quantized as int3 g32 (F16 scales, signed), "
                            "which no GGUF block type holds (q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl, mxfp4, nvfp4 and the k-quants' grids do)");
  EXPECT_FALSE(std::filesystem::exists(path));
  GgufExportOptions q41;
  q41.embedding_type = GgmlType::kQ4_K;
  message.clear();
  try {
    write_quantized_gguf(path, *files, result.contents, q41);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_EQ(message, path + ": the embedding type must be f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0 or iq4_nl, not q4_K");
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace lowbit
