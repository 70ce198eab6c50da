// Tests for open_model (include/lowbit/io/model_files.h).
//
// What matters: a user names a model however it arrived (HF folder, its .safetensors file,
// a llama2.c folder or .bin) and every form must come out the same: same config, same
// Hugging Face tensor names, same bytes. A checkpoint that does not match its config
// (missing, misshapen or unknown tensors) must be refused by name, since a forward pass
// over it would silently compute garbage; formats lowbit cannot read yet are refused
// plainly.
#include "lowbit/io/model_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/io/llama2c.h"
#include "lowbit/io/safetensors.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;
using testing::expect_same_config;
using testing::read_all;
using testing::write_raw;

namespace fs = std::filesystem;



// Expects open_model(path) to throw an Error whose message starts with `where` and contains
// every fragment; returns the message.
std::string expect_open_error(const std::string& path, const std::string& where, std::vector<std::string> fragments) {
  try {
    open_model(path);
    ADD_FAILURE() << "opened " << path;
    return "";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(where + ": ", 0), 0u) << message;
    for (const auto& fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos) << message << "\nlacks: " << fragment;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
}

// A new HF folder holding stories260K's config.json and its tensors after `edit`.
std::string edited_hf_copy(const std::string& shared, const std::function<void(NamedTensors&)>& edit) {
  const std::string source = shared + "/models/stories260K/hf";
  const std::string folder = testing::temp_dir() + "/model";
  fs::create_directories(folder);
  const SafetensorsFile file = SafetensorsFile::open(source + "/model.safetensors");
  NamedTensors tensors;
  for (const auto& name : file.names()) tensors.emplace_back(name, file.tensor(name));
  edit(tensors);
  write_safetensors(folder + "/model.safetensors", tensors);
  write_raw(folder + "/config.json", read_all(source + "/config.json"));
  return folder;
}

void erase_tensor(NamedTensors& tensors, const std::string& name) {
  for (auto it = tensors.begin(); it != tensors.end(); ++it)
    if (it->first == name) {
      tensors.erase(it);
      return;
    }
  FAIL() << "no tensor " << name;
}

void replace_tensor(NamedTensors& tensors, const std::string& name, Tensor replacement) {
  for (auto& [n, t] : tensors)
    if (n == name) {
      t = std::move(replacement);
      return;
    }
  FAIL() << "no tensor " << name;
}

// ---------------------------------------------------------------------------------
// The four ways to name stories260K

TEST(ModelFiles, OpensEveryFormOfStories260K) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string root = shared + "/models/stories260K";
  struct Case {
    std::string path;
    ModelFormat format;
    std::string weight_file;
    uint64_t file_size;
  };
  const std::vector<Case> cases = {
      {root + "/hf", ModelFormat::kHuggingFace, root + "/hf/model.safetensors", 1'045'112},
      {root + "/hf/model.safetensors", ModelFormat::kHuggingFace, root + "/hf/model.safetensors", 1'045'112},
      {root + "/llama2c", ModelFormat::kLlama2c, root + "/llama2c/stories260K.bin", 1'056'540},
      {root + "/llama2c/stories260K.bin", ModelFormat::kLlama2c, root + "/llama2c/stories260K.bin", 1'056'540},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(test.path);
    const ModelFiles model = open_model(test.path);
    EXPECT_EQ(model.format, test.format);
    EXPECT_EQ(model.path, test.path);  // as the user gave it
    ASSERT_TRUE(model.config.has_value());
    const LlamaConfig& c = *model.config;
    EXPECT_EQ(c.model_type, "llama");
    EXPECT_EQ(c.hidden_size, 64);
    EXPECT_EQ(c.intermediate_size, 172);
    EXPECT_EQ(c.num_hidden_layers, 5);
    EXPECT_EQ(c.num_attention_heads, 8);
    EXPECT_EQ(c.num_key_value_heads, 4);
    EXPECT_EQ(c.head_dim, 8);
    EXPECT_EQ(c.vocab_size, 512);
    EXPECT_EQ(c.max_position_embeddings, 512);
    EXPECT_EQ(c.rms_norm_eps, 1e-5);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_EQ(model.tensors.size(), 47u);
    EXPECT_EQ(model.parameter_count(), 260'032);
    ASSERT_EQ(model.weight_files.size(), 1u);
    EXPECT_EQ(fs::path(model.weight_files[0]).filename(), fs::path(test.weight_file).filename());
    EXPECT_TRUE(fs::equivalent(model.weight_files[0], test.weight_file));
    EXPECT_EQ(model.file_size, test.file_size);
    EXPECT_EQ(model.tokenizer, TokenizerKind::kLlama2c);
    EXPECT_EQ(fs::path(model.tokenizer_path).filename(), "tok512.bin");
    EXPECT_EQ(model.tokenizer_vocab_size, 512);
    EXPECT_EQ(model.find("lm_head.weight"), nullptr);  // tied
    const Tensor* embedding = model.find("model.embed_tokens.weight");
    ASSERT_NE(embedding, nullptr);
    EXPECT_EQ(embedding->shape(), (Shape{512, 64}));
  }
}

TEST(ModelFiles, HfAndLlama2cTensorsEqualByName) {
  LOWBIT_REQUIRE_SHARED(shared);
  const ModelFiles hf = open_model(shared + "/models/stories260K/hf");
  const ModelFiles llama2c = open_model(shared + "/models/stories260K/llama2c/stories260K.bin");
  ASSERT_EQ(hf.tensors.size(), llama2c.tensors.size());
  std::set<std::string> names;
  for (const auto& [name, tensor] : hf.tensors) {
    SCOPED_TRACE(name);
    names.insert(name);
    const Tensor* other = llama2c.find(name);
    ASSERT_NE(other, nullptr);
    EXPECT_TRUE(tensor.bit_equal(*other));
  }
  EXPECT_EQ(names.size(), 47u);
  // Every tensor is the one the config asks for, with its shape.
  const auto expected = expected_llama_tensors(*hf.config);
  ASSERT_EQ(expected.size(), 47u);
  for (const auto& [name, shape] : expected) {
    ASSERT_NE(hf.find(name), nullptr) << name;
    EXPECT_EQ(hf.find(name)->shape(), shape) << name;
  }
}

TEST(ModelFiles, BareSafetensorsFileHasNoConfig) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string path = testing::temp_dir() + "/alone.safetensors";
  fs::copy_file(shared + "/models/stories260K/hf/model.safetensors", path);
  const ModelFiles model = open_model(path);
  EXPECT_EQ(model.format, ModelFormat::kSafetensorsFile);
  EXPECT_FALSE(model.config.has_value());
  EXPECT_EQ(model.tensors.size(), 47u);
  EXPECT_EQ(model.parameter_count(), 260'032);
  EXPECT_EQ(model.tokenizer, TokenizerKind::kNone);
  EXPECT_TRUE(model.tokenizer_path.empty());
  EXPECT_EQ(model.file_size, 1'045'112u);
}

// ---------------------------------------------------------------------------------
// Checkpoints that do not match their config

TEST(ModelFiles, RefusesMissingTensor) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder =
      edited_hf_copy(shared, [](NamedTensors& t) { erase_tensor(t, "model.layers.3.mlp.up_proj.weight"); });
  expect_open_error(folder, folder, {"missing tensor 'model.layers.3.mlp.up_proj.weight' required by the config"});
}

TEST(ModelFiles, RefusesWrongShape) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = edited_hf_copy(shared, [](NamedTensors& t) {
    replace_tensor(t, "model.embed_tokens.weight", Tensor::zeros(DType::kF32, {512, 63}));
  });
  expect_open_error(folder, folder,
                    {"tensor 'model.embed_tokens.weight' has shape [512, 63], the config implies [512, 64]"});
  // Transposed is wrong too, even with the right element count.
  const std::string transposed = edited_hf_copy(shared, [](NamedTensors& t) {
    replace_tensor(t, "model.layers.0.mlp.down_proj.weight", Tensor::zeros(DType::kF32, {172, 64}));
  });
  expect_open_error(transposed, transposed, {"'model.layers.0.mlp.down_proj.weight'", "[172, 64]", "[64, 172]"});
}

TEST(ModelFiles, RefusesUnknownExtraTensor) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = edited_hf_copy(shared, [](NamedTensors& t) {
    t.emplace_back("model.layers.0.self_attn.q_proj.bias", Tensor::zeros(DType::kF32, {64}));
  });
  expect_open_error(folder, folder, {"unexpected tensor 'model.layers.0.self_attn.q_proj.bias' for a llama model"});
  const std::string typo = edited_hf_copy(shared, [](NamedTensors& t) {
    t.emplace_back("model.layers.5.input_layernorm.weight", Tensor::zeros(DType::kF32, {64}));  // a sixth layer
  });
  expect_open_error(typo, typo, {"unexpected tensor 'model.layers.5.input_layernorm.weight'"});
}

TEST(ModelFiles, RefusesIntegerWeights) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = edited_hf_copy(shared, [](NamedTensors& t) {
    replace_tensor(t, "model.norm.weight", Tensor::zeros(DType::kI32, {64}));
  });
  expect_open_error(folder, folder, {"tensor 'model.norm.weight' has integer dtype I32"});
}

TEST(ModelFiles, AcceptsTiedLmHeadAndRotaryBuffers) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = edited_hf_copy(shared, [](NamedTensors& t) {
    const Tensor embedding = t.front().second;
    t.emplace_back("lm_head.weight", embedding);
    t.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", Tensor::zeros(DType::kF32, {4}));
  });
  const ModelFiles model = open_model(folder);
  EXPECT_EQ(model.tensors.size(), 49u);
  EXPECT_NE(model.find("lm_head.weight"), nullptr);
  // A tied lm_head of the wrong shape is still refused.
  const std::string wrong = edited_hf_copy(shared, [](NamedTensors& t) {
    t.emplace_back("lm_head.weight", Tensor::zeros(DType::kF32, {511, 64}));
  });
  expect_open_error(wrong, wrong, {"unexpected tensor 'lm_head.weight'"});
}

TEST(ModelFiles, RefusesMalformedConfig) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = edited_hf_copy(shared, [](NamedTensors&) {});
  ASSERT_NO_THROW(open_model(folder));
  write_raw(folder + "/config.json", "{\"model_type\": \"llama\",");
  expect_open_error(folder, folder + "/config.json", {"not well-formed JSON"});
  // Through the .safetensors file as well.
  expect_open_error(folder + "/model.safetensors", folder + "/config.json", {"not well-formed JSON"});
  // A config that disagrees with the weights: one layer too few leaves layer 4 unexpected.
  std::string config = read_all(shared + "/models/stories260K/hf/config.json");
  const auto at = config.find("\"num_hidden_layers\": 5");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 22, "\"num_hidden_layers\": 4");
  write_raw(folder + "/config.json", config);
  expect_open_error(folder, folder, {"unexpected tensor 'model.layers.4."});
}

TEST(ModelFiles, RefusesBrokenTokenizerBesideTheModel) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = edited_hf_copy(shared, [](NamedTensors&) {});
  const std::string tokenizer = read_all(shared + "/models/stories260K/hf/tok512.bin");
  write_raw(folder + "/tok512.bin", tokenizer.substr(0, 5000));
  expect_open_error(folder, folder + "/tok512.bin", {"truncated", "while reading token"});
}

// ---------------------------------------------------------------------------------
// Tokenizer discovery

TEST(ModelFiles, FindsTokenizerKinds) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = edited_hf_copy(shared, [](NamedTensors&) {});
  EXPECT_EQ(open_model(folder).tokenizer, TokenizerKind::kNone);
  write_raw(folder + "/tokenizer.model", "not read on open");
  EXPECT_EQ(open_model(folder).tokenizer, TokenizerKind::kSentencePiece);
  EXPECT_EQ(open_model(folder).tokenizer_path, folder + "/tokenizer.model");
  write_raw(folder + "/tokenizer.json", "{}");
  const ModelFiles model = open_model(folder);
  EXPECT_EQ(model.tokenizer, TokenizerKind::kHuggingFaceJson);  // preferred over tokenizer.model
  EXPECT_EQ(model.tokenizer_path, folder + "/tokenizer.json");
  EXPECT_EQ(model.tokenizer_vocab_size, 0);

  EXPECT_EQ(tokenizer_kind_name(TokenizerKind::kNone), "none");
  EXPECT_EQ(tokenizer_kind_name(TokenizerKind::kLlama2c), "llama2c");
  EXPECT_EQ(tokenizer_kind_name(TokenizerKind::kSentencePiece), "sentencepiece");
  EXPECT_EQ(tokenizer_kind_name(TokenizerKind::kHuggingFaceJson), "tokenizer.json");
  EXPECT_EQ(model_format_name(ModelFormat::kHuggingFace), "huggingface");
  EXPECT_EQ(model_format_name(ModelFormat::kSafetensorsFile), "safetensors");
  EXPECT_EQ(model_format_name(ModelFormat::kLlama2c), "llama2c");
}

// ---------------------------------------------------------------------------------
// Paths that are not models lowbit can read

TEST(ModelFiles, RefusesTruncatedGguf) {
  // Detected as GGUF by its magic, then refused by the reader with the file named.
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string whole = testing::read_all(shared + "/models/stories260K/gguf-v1/tinyllamas-stories-260k-f32.gguf");
  const std::string path = testing::temp_dir() + "/truncated.gguf";
  testing::write_raw(path, whole.substr(0, whole.size() / 2));
  expect_open_error(path, path, {"outside", "data section"});
}

TEST(ModelFiles, RefusesNonexistentPath) {
  const std::string path = testing::temp_dir() + "/no/such/model";
  expect_open_error(path, path, {"no such file or folder"});
}

TEST(ModelFiles, RefusesFoldersWithoutOneModel) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string empty = testing::temp_dir();
  expect_open_error(empty, empty, {"not a model folder"});
  // A lone tokenizer is not a checkpoint.
  fs::copy_file(shared + "/models/stories260K/llama2c/tok512.bin", empty + "/tok512.bin");
  expect_open_error(empty, empty, {"not a model folder"});
  // Two checkpoints: ambiguous, so the user must name one.
  const std::string two = testing::temp_dir();
  fs::copy_file(shared + "/models/stories260K/llama2c/stories260K.bin", two + "/a.bin");
  fs::copy_file(shared + "/models/stories260K/llama2c/stories260K.bin", two + "/b.bin");
  expect_open_error(two, two, {"several llama2.c checkpoints"});
  EXPECT_EQ(open_model(two + "/a.bin").parameter_count(), 260'032);
}

TEST(ModelFiles, RefusesFileThatIsNoModel) {
  const std::string dir = testing::temp_dir();
  const std::string text = dir + "/notes.txt";
  write_raw(text, "hello, this is not a checkpoint at all");
  expect_open_error(text, text, {"implausible llama2.c header"});
  const std::string tiny = dir + "/tiny.bin";
  write_raw(tiny, "abc");
  expect_open_error(tiny, tiny, {"truncated"});
  const std::string broken = dir + "/broken.safetensors";
  write_raw(broken, std::string("\x10\x00\x00\x00\x00\x00\x00\x00{", 9));
  expect_open_error(broken, broken, {"header length 16 runs past the end of the file"});
}

// ---------------------------------------------------------------------------------
// expected_llama_tensors

TEST(ModelFiles, ExpectedTensorsFollowTheConfig) {
  LlamaConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 172;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 8;
  c.vocab_size = 512;
  c.tie_word_embeddings = true;
  auto expected = expected_llama_tensors(c);
  ASSERT_EQ(expected.size(), 1u + 2 * 9 + 1);
  EXPECT_EQ(expected.front().first, "model.embed_tokens.weight");
  EXPECT_EQ(expected.back().first, "model.norm.weight");
  EXPECT_EQ(expected[1], (std::pair<std::string, Shape>{"model.layers.0.input_layernorm.weight", {64}}));
  EXPECT_EQ(expected[2], (std::pair<std::string, Shape>{"model.layers.0.self_attn.q_proj.weight", {64, 64}}));
  EXPECT_EQ(expected[3], (std::pair<std::string, Shape>{"model.layers.0.self_attn.k_proj.weight", {32, 64}}));
  EXPECT_EQ(expected[4], (std::pair<std::string, Shape>{"model.layers.0.self_attn.v_proj.weight", {32, 64}}));
  EXPECT_EQ(expected[5], (std::pair<std::string, Shape>{"model.layers.0.self_attn.o_proj.weight", {64, 64}}));
  EXPECT_EQ(expected[7], (std::pair<std::string, Shape>{"model.layers.0.mlp.gate_proj.weight", {172, 64}}));
  EXPECT_EQ(expected[9], (std::pair<std::string, Shape>{"model.layers.0.mlp.down_proj.weight", {64, 172}}));

  // Untied, with biases and an explicit head_dim (q_dim 128 != hidden 64).
  c.tie_word_embeddings = false;
  c.attention_bias = true;
  c.mlp_bias = true;
  c.head_dim = 16;
  expected = expected_llama_tensors(c);
  ASSERT_EQ(expected.size(), 1u + 2 * 15 + 2);
  EXPECT_EQ(expected.back(), (std::pair<std::string, Shape>{"lm_head.weight", {512, 64}}));
  std::map<std::string, Shape> by_name(expected.begin(), expected.end());
  EXPECT_EQ(by_name["model.layers.1.self_attn.q_proj.weight"], (Shape{128, 64}));
  EXPECT_EQ(by_name["model.layers.1.self_attn.q_proj.bias"], (Shape{128}));
  EXPECT_EQ(by_name["model.layers.1.self_attn.k_proj.bias"], (Shape{64}));
  EXPECT_EQ(by_name["model.layers.1.self_attn.o_proj.weight"], (Shape{64, 128}));
  EXPECT_EQ(by_name["model.layers.1.mlp.down_proj.bias"], (Shape{64}));
  EXPECT_EQ(by_name["model.layers.1.mlp.up_proj.bias"], (Shape{172}));
}

}  // namespace
}  // namespace lowbit
