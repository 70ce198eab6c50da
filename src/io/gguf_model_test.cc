// A llama GGUF as a lowbit model: metadata → config, names, the RoPE row permutation, tied
// output; and lowbit models written as GGUF and read back. The real files in ../shared are
// the references: the SmolLM2 GGUF (../shared/models/smollm2-135m/REFERENCE.md) and the
// stories260K weights in three independent encodings.
#include "lowbit/io/gguf_model.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "lowbit/core/error.h"
#include "lowbit/core/random.h"
#include "lowbit/io/llama2c.h"
#include "lowbit/io/tokenizer.h"
#include "lowbit/model/generate.h"
#include "lowbit/model/llama.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;
using testing::temp_dir;

std::string smollm2_path(const std::string& shared) {
  return shared + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
}

TEST(GgufModel, NamesMapBothWays) {
  EXPECT_EQ(hf_tensor_name("blk.12.attn_q.weight"), "model.layers.12.self_attn.q_proj.weight");
  EXPECT_EQ(hf_tensor_name("blk.0.ffn_down.weight"), "model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(hf_tensor_name("token_embd.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(hf_tensor_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(hf_tensor_name("output_norm.weight"), "model.norm.weight");
  EXPECT_EQ(hf_tensor_name("blk.x.attn_q.weight"), std::nullopt);
  EXPECT_EQ(hf_tensor_name("blk.1.attn_q"), std::nullopt);
  EXPECT_EQ(hf_tensor_name("rope_freqs.weight"), std::nullopt);
  for (const char* name : {"model.layers.3.input_layernorm.weight", "model.layers.29.mlp.up_proj.weight",
                           "model.layers.7.self_attn.o_proj.weight", "model.embed_tokens.weight", "lm_head.weight"}) {
    const auto gguf = gguf_tensor_name(name);
    ASSERT_TRUE(gguf) << name;
    EXPECT_EQ(hf_tensor_name(*gguf), name);
  }
}

TEST(GgufModel, RopePermutationMatchesLlama2cAndInverts) {
  // 3 heads of dim 8, rows of 5 floats: the byte permutation must agree with the float one
  // llama2.c loading uses, and to_hf=false must undo it.
  const int64_t heads = 3, head_dim = 8, cols = 5;
  std::vector<float> rows(static_cast<size_t>(heads * head_dim * cols));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i);
  const auto expected = permute_rope_rows_to_hf(rows.data(), heads, head_dim, cols);
  const auto to_hf = permute_rope_rows(std::as_bytes(std::span<const float>(rows)), heads, head_dim, cols * sizeof(float), true);
  ASSERT_EQ(to_hf.size(), expected.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(to_hf.data(), expected.data(), to_hf.size()), 0);
  const auto back = permute_rope_rows(to_hf, heads, head_dim, cols * sizeof(float), false);
  EXPECT_EQ(std::memcmp(back.data(), rows.data(), back.size()), 0);
  // Row 1 of head 0 in HF order (rotate_half: first half are the even interleaved rows) is old row 2.
  EXPECT_EQ(expected[1 * cols], rows[2 * cols]);
}

TEST(GgufModel, SmolLM2OpensWithTheReferenceArchitecture) {
  LOWBIT_REQUIRE_SHARED(shared);
  const ModelFiles model = open_model(smollm2_path(shared));
  EXPECT_EQ(model.format, ModelFormat::kGguf);
  EXPECT_EQ(model.tokenizer, TokenizerKind::kGguf);
  ASSERT_TRUE(model.config);
  const LlamaConfig& c = *model.config;
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.num_attention_heads, 9);
  EXPECT_EQ(c.num_key_value_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c.rope_theta, 100000.0);
  EXPECT_FLOAT_EQ(static_cast<float>(c.rms_norm_eps), 1e-5f);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(model.parameter_count(), 134515008);
  EXPECT_EQ(model.tensors.size(), 272u);
  EXPECT_EQ(model.find("lm_head.weight"), nullptr);
  ASSERT_NE(model.find("model.layers.29.mlp.down_proj.weight"), nullptr);
  EXPECT_EQ(model.find("model.layers.29.mlp.down_proj.weight")->shape(), (Shape{576, 1536}));
  EXPECT_EQ(model.find("model.embed_tokens.weight")->dtype(), DType::kF32);
  // The config restated by the HF-style config.json beside the file agrees.
  const LlamaConfig hf = load_hf_config(shared + "/models/smollm2-135m/config.json");
  EXPECT_EQ(hf.num_key_value_heads, c.num_key_value_heads);
  EXPECT_EQ(hf.intermediate_size, c.intermediate_size);
  EXPECT_EQ(hf.tie_word_embeddings, c.tie_word_embeddings);
}

TEST(GgufModel, Stories260KGgufV1EqualsTheHfConversionBitForBit) {
  // The GGUF v1 file keeps Meta's interleaved q/k rows; hf/ was permuted to rotate_half by
  // an independent converter. After lowbit un-permutes, every shared tensor must be identical.
  LOWBIT_REQUIRE_SHARED(shared);
  const ModelFiles gguf = open_model(shared + "/models/stories260K/gguf-v1/tinyllamas-stories-260k-f32.gguf");
  const ModelFiles hf = open_model(shared + "/models/stories260K/hf");
  EXPECT_EQ(gguf.gguf->version(), 1u);
  for (const auto& [name, tensor] : hf.tensors) {
    SCOPED_TRACE(name);
    const Tensor* other = gguf.find(name);
    ASSERT_NE(other, nullptr);
    EXPECT_TRUE(tensor.bit_equal(*other));
  }
  // The GGUF stores the tied head as its own tensor, equal to the embedding.
  ASSERT_NE(gguf.find("lm_head.weight"), nullptr);
  EXPECT_TRUE(gguf.find("lm_head.weight")->bit_equal(*hf.find("model.embed_tokens.weight")));
}

TEST(GgufModel, WrittenGgufReadsBackBitExactWithConfigAndTokenizer) {
  LOWBIT_REQUIRE_SHARED(shared);
  const ModelFiles source = open_model(shared + "/models/stories260K/hf");
  const std::string dir = temp_dir();
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0}) {
    const std::string name = std::string(ggml_traits(type).name);
    SCOPED_TRACE(name);
    const std::string path = dir + "/stories-" + name + ".gguf";
    GgufWriteOptions options;
    options.type = type;
    const auto report = write_model_gguf(source, path, options);
    EXPECT_EQ(report.tensors, 47);  // tied: no output.weight
    const ModelFiles back = open_model(path);
    LlamaConfig expected_config = *source.config;
    expected_config.torch_dtype = DType::kF32;
    // GGUF stores eps and theta as float32: equal as floats, then compare the rest exactly.
    EXPECT_EQ(static_cast<float>(back.config->rms_norm_eps), static_cast<float>(expected_config.rms_norm_eps));
    EXPECT_EQ(static_cast<float>(back.config->rope_theta), static_cast<float>(expected_config.rope_theta));
    expected_config.rms_norm_eps = back.config->rms_norm_eps;
    expected_config.rope_theta = back.config->rope_theta;
    testing::expect_same_config(*back.config, expected_config);
    for (const auto& [tensor_name, tensor] : source.tensors) {
      SCOPED_TRACE(tensor_name);
      const Tensor* other = back.find(tensor_name);
      ASSERT_NE(other, nullptr);
      const auto original = tensor.to_f32_vector();
      // The stored GGUF tensor decoded by ggml's rules: matrices in `type`, 1-D tensors in f32,
      // Q8_0 matrices whose rows are not a multiple of 32 (the 172-wide FFN) in f16.
      GgmlType stored = tensor.rank() == 1 ? GgmlType::kF32 : type;
      if (stored == GgmlType::kQ8_0 && tensor.shape().back() % 32 != 0) stored = GgmlType::kF16;
      std::vector<std::byte> encoded(ggml_row_bytes(stored, tensor.shape().back()) * (original.size() / tensor.shape().back()));
      ggml_quantize(stored, original, encoded);
      std::vector<float> expected(original.size());
      ggml_dequantize(stored, encoded, expected);
      const auto got = other->to_f32_vector();
      ASSERT_EQ(got.size(), expected.size());
      EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0);
      if (type == GgmlType::kF32) {
        EXPECT_TRUE(tensor.bit_equal(*other));
      }
    }
    // The tokenizer travels in the metadata and still encodes like the original.
    const auto original_tokenizer = load_tokenizer(source);
    const auto written_tokenizer = load_tokenizer(back);
    const std::string text = "Once upon a time, Lily saw a big red ball.";
    EXPECT_EQ(written_tokenizer->encode(text, true), original_tokenizer->encode(text, true));
  }
}

TEST(GgufModel, RewritingAGgufKeepsItsMetadataAndTensors) {
  LOWBIT_REQUIRE_SHARED(shared);
  const ModelFiles source = open_model(smollm2_path(shared));
  const std::string path = temp_dir() + "/smollm2-f32.gguf";
  write_model_gguf(source, path, {});
  const GgufFile written = GgufFile::open(path);
  // Every key but the ones describing the old encoding survives unchanged, in order.
  std::vector<std::pair<std::string, GgufValue>> kept;
  for (const auto& entry : source.gguf->metadata())
    if (entry.first != "general.file_type" && entry.first != "general.quantization_version") kept.push_back(entry);
  ASSERT_GE(written.metadata().size(), kept.size());
  for (size_t k = 0; k < kept.size(); ++k) {
    EXPECT_EQ(written.metadata()[k].first, kept[k].first);
    EXPECT_TRUE(written.metadata()[k].second == kept[k].second) << kept[k].first;
  }
  EXPECT_EQ(written.at("general.file_type").as_uint("file_type"), 0u);
  // Same names, dims and order as the source; every tensor the exact f32 dequantization.
  ASSERT_EQ(written.tensors().size(), source.gguf->tensors().size());
  for (size_t k = 0; k < written.tensors().size(); ++k) {
    const auto& a = source.gguf->tensors()[k];
    const auto& b = written.tensors()[k];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.dims, b.dims);
    EXPECT_EQ(b.type, GgmlType::kF32);
    if (k % 37 == 0) {  // a sample, decoded independently of the model loader
      std::vector<float> expected(a.element_count());
      ggml_dequantize(a.type, source.gguf->tensor_bytes(a), expected);
      const auto bytes = written.tensor_bytes(b);
      EXPECT_EQ(std::memcmp(bytes.data(), expected.data(), bytes.size()), 0) << a.name;
    }
  }
  EXPECT_EQ(written.file_size(), 539845664u);
}

TEST(GgufModel, RefusesWhatItCannotRun) {
  const std::string dir = temp_dir();
  auto write = [&](const std::string& name, GgufMetadata metadata) {
    const std::string path = dir + "/" + name;
    const std::vector<float> norm(8, 1.0f);
    write_gguf(path, metadata, {{"output_norm.weight", {8}, GgmlType::kF32, std::as_bytes(std::span<const float>(norm))}});
    return path;
  };
  GgufMetadata llama = {{"general.architecture", GgufValue::string("llama")}};
  EXPECT_TRUE(contains(error_from([&] { open_model(write("gpt2.gguf", {{"general.architecture", GgufValue::string("gpt2")}})); }),
                       "architecture \"gpt2\" is not supported"));
  EXPECT_TRUE(contains(error_from([&] { open_model(write("nokeys.gguf", llama)); }), "llama.block_count' is missing"));
  GgufMetadata partial = gguf_metadata_for_config([] {
    LlamaConfig c;
    c.hidden_size = 8, c.intermediate_size = 16, c.num_hidden_layers = 1, c.num_attention_heads = 2;
    c.num_key_value_heads = 1, c.head_dim = 4, c.vocab_size = 10;
    return c;
  }());
  for (auto& [key, value] : partial)
    if (key == "llama.rope.dimension_count") value = GgufValue::u32(2);
  EXPECT_TRUE(contains(error_from([&] { open_model(write("partial.gguf", partial)); }), "partial rotary"));
  GgufMetadata wrong_type = partial;
  for (auto& [key, value] : wrong_type)
    if (key == "llama.block_count") value = GgufValue::string("30");
  EXPECT_TRUE(contains(error_from([&] { open_model(write("type.gguf", wrong_type)); }), "llama.block_count: is string"));
  // A complete header with missing tensors names the first one the config requires.
  GgufMetadata complete = partial;
  for (auto& [key, value] : complete)
    if (key == "llama.rope.dimension_count") value = GgufValue::u32(4);
  EXPECT_TRUE(contains(error_from([&] { open_model(write("tensors.gguf", complete)); }), "missing tensor"));
}

// REFERENCE.md: greedy continuations of the f32 model, llama.cpp with --ignore-eos, 48 tokens.
TEST(GgufModel, SmolLM2GreedyContinuationsMatchLlamaCpp) {
  LOWBIT_REQUIRE_SHARED(shared);
  LOWBIT_SKIP_HEAVY_UNDER_SANITIZERS();
  auto files = std::make_shared<ModelFiles>(open_model(smollm2_path(shared)));
  const auto tokenizer = load_tokenizer(*files);
  const LlamaModel model(files);
  const std::pair<const char*, const char*> cases[] = {
      {"The capital of France is",
       "The capital of France is Paris.\n\nThe answer is: 2018-01-22 12:12:53.\n\nThe answer is: 2018-01-22 1"},
      {"Once upon a time, there was a little robot who",
       "Once upon a time, there was a little robot who had a special ability to make people happy. He was called "
       "\"The Happy One\" by his friends.\n\nOne day, a new friend of The Happy One appeared. He was called \"The Good "
       "Guy\" by his friends.\n"},  // the 48th token is the newline REFERENCE.md's block does not show
  };
  for (const auto& [prompt, expected] : cases) {
    GenerationOptions options;
    options.max_new_tokens = 48;
    options.stop_at_eos = false;
    const auto ids = tokenizer->encode(prompt, tokenizer->adds_bos());
    const auto result = generate(model, ids, options, tokenizer->eos_id(), nullptr);
    std::vector<int32_t> all = ids;
    all.insert(all.end(), result.tokens.begin(), result.tokens.end());
    EXPECT_EQ(result.tokens.size(), 48u);
    EXPECT_EQ(tokenizer->decode(all), expected);
  }
}

}  // namespace
}  // namespace lowbit
