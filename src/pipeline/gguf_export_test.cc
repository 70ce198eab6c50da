// GGUF export of quantize_model's result: the file, read back (lowbit's GGUF reader decodes with
// ggml's dequantization, bit-exact), holds exactly the values lowbit quantized and evaluates —
// layer by layer, the RoPE row order undone, the tied embedding on its own grid — and what no
// GGUF type holds is refused before anything is written.
#include "lowbit/pipeline/gguf_export.h"

#include <gtest/gtest.h>

#include <bit>
#include <filesystem>
#include <memory>

#include "lowbit/compress/ggml_blocks.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/error.h"
#include "lowbit/io/gguf.h"
#include "lowbit/pipeline/quantize_model.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

QuantRecipe gguf_recipe(GgmlType type) {
  QuantRecipe recipe;
  recipe.method = QuantMethod::kRtn;
  recipe.scheme = *ggml_block_scheme(type);
  recipe.scheme.signed_scales = true;
  recipe.clip_search = true;
  // stories260K's down_proj has 172 inputs, not whole blocks of 32: kept f16 (the CLI's fallback).
  recipe.rules.push_back(parse_keep_rule("*.down_proj=f16", recipe.scheme));
  recipe.rules.push_back(parse_keep_rule("model.layers.1.mlp.up_proj=f32", recipe.scheme));
  return recipe;
}

void expect_bitwise(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << what << " value " << i;
}

TEST(GgufExport, FileHoldsExactlyTheValuesLowbitQuantized) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto files = std::make_shared<ModelFiles>(open_model(shared + "/models/stories260K/hf"));
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kIQ4_NL}) {
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
                            "which no GGUF block type holds (q8_0, q5_1, q5_0, q4_1, q4_0 and iq4_nl grids do)");
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
