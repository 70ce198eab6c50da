// Tests for Hugging Face config.json parsing (include/lowbit/io/hf_config.h).
//
// What matters: the config decides every tensor shape lowbit expects and every number the
// forward pass uses, so (1) real configs must come out field for field as written; (2) a
// config lowbit cannot run (another architecture, impossible head counts, unsupported RoPE
// scaling) must be refused with an Error naming the file and the field, never accepted and
// run wrongly; (3) what to_json() writes must parse back to the same config, since
// `lowbit convert` writes configs that lowbit and transformers read again.
#include "lowbit/io/hf_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "lowbit/core/error.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;
using testing::expect_same_config;
using testing::read_all;
using testing::write_raw;

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kWhere = "models/x/config.json";

// A small valid Llama config (stories260K's numbers; head_dim derived, not given); tests
// mutate one field at a time.
json tiny_config() {
  return json{{"model_type", "llama"},   {"hidden_size", 64},        {"intermediate_size", 172},
              {"num_hidden_layers", 5},   {"num_attention_heads", 8}, {"num_key_value_heads", 4},
              {"vocab_size", 512},        {"max_position_embeddings", 512}, {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0},    {"tie_word_embeddings", true}, {"bos_token_id", 1},
              {"eos_token_id", 2},        {"torch_dtype", "float32"}};
}

// Expects parse_hf_config to throw an Error whose message starts with the file and contains
// every one of `fragments`.
void expect_refused(const json& config, std::initializer_list<std::string> fragments) {
  try {
    const LlamaConfig c = parse_hf_config(config, kWhere);
    ADD_FAILURE() << "accepted: " << config.dump();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(std::string(kWhere) + ": ", 0), 0u) << message;
    for (const auto& fragment : fragments) EXPECT_NE(message.find(fragment), std::string::npos) << message << "\nlacks: " << fragment;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

json with(json config, const std::string& key, const json& value) {
  config[key] = value;
  return config;
}

json without(json config, const std::string& key) {
  config.erase(key);
  return config;
}


void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// ---------------------------------------------------------------------------------
// Real configs

TEST(HfConfig, Stories260KRealConfig) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = shared + "/models/stories260K/hf";
  const LlamaConfig c = load_hf_config(folder);  // a folder: reads its config.json
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
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.rope_scaling.has_value());
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.bos_token_id, std::optional<int64_t>(1));
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.torch_dtype, DType::kF32);
  EXPECT_EQ(c.q_dim(), 64);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_EQ(c.parameter_count(), 260'032);

  // The file path itself gives the same config.
  expect_same_config(load_hf_config(folder + "/config.json"), c);
}

TEST(HfConfig, SmolLM2RealConfig) {
  LOWBIT_REQUIRE_SHARED(shared);
  const LlamaConfig c = load_hf_config(shared + "/models/smollm2-135m/config.json");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.num_attention_heads, 9);
  EXPECT_EQ(c.num_key_value_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_FALSE(c.rope_scaling.has_value());  // "rope_scaling": null
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.bos_token_id, std::optional<int64_t>(1));
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.torch_dtype, DType::kBF16);
  EXPECT_EQ(c.q_dim(), 576);
  EXPECT_EQ(c.kv_dim(), 192);
  // The figure shared/README.md states for SmolLM2-135M.
  EXPECT_EQ(c.parameter_count(), 134'515'008);
}

// ---------------------------------------------------------------------------------
// Accepted variants

TEST(HfConfig, HeadDimDefaultsToHiddenOverHeads) {
  const LlamaConfig c = parse_hf_config(without(tiny_config(), "head_dim"), kWhere);
  EXPECT_EQ(c.head_dim, 8);
  // num_key_value_heads defaults to num_attention_heads (multi-head attention).
  const LlamaConfig mha = parse_hf_config(without(tiny_config(), "num_key_value_heads"), kWhere);
  EXPECT_EQ(mha.num_key_value_heads, 8);
  EXPECT_EQ(mha.kv_dim(), 64);
}

TEST(HfConfig, DefaultsForOptionalFields) {
  json config = tiny_config();
  for (const char* key : {"max_position_embeddings", "rms_norm_eps", "rope_theta", "tie_word_embeddings", "bos_token_id",
                          "eos_token_id", "torch_dtype"})
    config.erase(key);
  const LlamaConfig c = parse_hf_config(config, kWhere);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.torch_dtype, DType::kF32);
  // Untied: the output head counts separately.
  EXPECT_EQ(c.parameter_count(), 260'032 + 512 * 64);
}

TEST(HfConfig, Qwen2HasAttentionBiasByDefault) {
  const LlamaConfig c = parse_hf_config(with(tiny_config(), "model_type", "qwen2"), kWhere);
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  // q, k and v biases: 64 + 2 * 32 per layer.
  EXPECT_EQ(c.parameter_count(), 260'032 + 5 * (64 + 2 * 32));
  // Llama has none unless asked.
  EXPECT_FALSE(parse_hf_config(tiny_config(), kWhere).attention_bias);
  EXPECT_TRUE(parse_hf_config(with(tiny_config(), "attention_bias", true), kWhere).attention_bias);
}

TEST(HfConfig, MistralAcceptedWithSlidingWindow) {
  json config = with(tiny_config(), "model_type", "mistral");
  config["sliding_window"] = 4096;
  const LlamaConfig c = parse_hf_config(config, kWhere);
  EXPECT_EQ(c.model_type, "mistral");
  EXPECT_EQ(c.sliding_window, std::optional<int64_t>(4096));
  EXPECT_FALSE(c.attention_bias);
  config["sliding_window"] = nullptr;
  EXPECT_FALSE(parse_hf_config(config, kWhere).sliding_window.has_value());
}

TEST(HfConfig, Llama3RopeScaling) {
  json config = tiny_config();
  config["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 8.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  config["rope_theta"] = 500000.0;
  const LlamaConfig c = parse_hf_config(config, kWhere);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->type, "llama3");
  EXPECT_EQ(c.rope_scaling->factor, 8.0);
  EXPECT_EQ(c.rope_scaling->low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_EQ(c.rope_theta, 500000.0);

  // Older transformers spell the key "type"; non-default values are kept.
  config["rope_scaling"] = {{"type", "llama3"},
                            {"factor", 32.0},
                            {"low_freq_factor", 2.0},
                            {"high_freq_factor", 8.0},
                            {"original_max_position_embeddings", 4096}};
  const LlamaConfig legacy = parse_hf_config(config, kWhere);
  ASSERT_TRUE(legacy.rope_scaling.has_value());
  EXPECT_EQ(legacy.rope_scaling->factor, 32.0);
  EXPECT_EQ(legacy.rope_scaling->low_freq_factor, 2.0);
  EXPECT_EQ(legacy.rope_scaling->high_freq_factor, 8.0);
  EXPECT_EQ(legacy.rope_scaling->original_max_position_embeddings, 4096);

  // "default" means no scaling at all.
  config["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_FALSE(parse_hf_config(config, kWhere).rope_scaling.has_value());
}

TEST(HfConfig, EosTokenIdAsList) {
  const LlamaConfig c = parse_hf_config(with(tiny_config(), "eos_token_id", json::array({2, 7, 511})), kWhere);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7, 511}));
  const LlamaConfig empty = parse_hf_config(with(tiny_config(), "eos_token_id", json::array()), kWhere);
  EXPECT_TRUE(empty.eos_token_ids.empty());
}

TEST(HfConfig, TorchDtypeSpellings) {
  EXPECT_EQ(parse_hf_config(with(tiny_config(), "torch_dtype", "bfloat16"), kWhere).torch_dtype, DType::kBF16);
  EXPECT_EQ(parse_hf_config(with(tiny_config(), "torch_dtype", "float16"), kWhere).torch_dtype, DType::kF16);
  EXPECT_EQ(parse_hf_config(with(tiny_config(), "torch_dtype", "float32"), kWhere).torch_dtype, DType::kF32);
}

// ---------------------------------------------------------------------------------
// Refusals: each names the file and the field

TEST(HfConfig, RefusesOtherArchitectures) {
  expect_refused(with(tiny_config(), "model_type", "gpt2"), {"unsupported architecture", "\"gpt2\""});
  expect_refused(with(tiny_config(), "model_type", "LLaMA"), {"unsupported architecture", "\"LLaMA\""});
  expect_refused(without(tiny_config(), "model_type"), {"model_type"});
  expect_refused(with(tiny_config(), "model_type", 3), {"model_type"});
}

TEST(HfConfig, RefusesHeadsNotDividingHiddenSize) {
  // 64 / 6 is not whole and no head_dim says otherwise.
  json config = with(tiny_config(), "num_attention_heads", 6);
  config["num_key_value_heads"] = 2;
  expect_refused(config, {"num_attention_heads (6)", "does not divide", "hidden_size (64)"});
}

TEST(HfConfig, RefusesKvHeadsNotDividingHeads) {
  expect_refused(with(tiny_config(), "num_key_value_heads", 3), {"num_attention_heads (8)", "num_key_value_heads (3)"});
  expect_refused(with(tiny_config(), "num_key_value_heads", 16), {"num_key_value_heads (16)"});
}

TEST(HfConfig, RefusesZeroAndNegativeSizes) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_key_value_heads", "vocab_size",
                          "max_position_embeddings", "head_dim"}) {
    for (int value : {0, -1, -64}) {
      SCOPED_TRACE(std::string(key) + " = " + std::to_string(value));
      expect_refused(with(tiny_config(), key, value), {std::string("\"") + key + "\" must be positive"});
    }
  }
  // Checked before it is used as a divisor.
  expect_refused(with(tiny_config(), "num_attention_heads", 0), {"num_attention_heads must be positive"});
  expect_refused(with(tiny_config(), "num_attention_heads", -8), {"num_attention_heads must be positive"});
}

TEST(HfConfig, RefusesNonIntegerSizes) {
  expect_refused(with(tiny_config(), "hidden_size", "64"), {"\"hidden_size\" must be an integer", "\"64\""});
  expect_refused(with(tiny_config(), "hidden_size", 64.0), {"\"hidden_size\" must be an integer"});
  expect_refused(with(tiny_config(), "hidden_size", 64.5), {"\"hidden_size\" must be an integer", "64.5"});
  expect_refused(with(tiny_config(), "vocab_size", true), {"\"vocab_size\" must be an integer"});
  expect_refused(without(tiny_config(), "hidden_size"), {"missing \"hidden_size\""});
  expect_refused(without(tiny_config(), "vocab_size"), {"missing \"vocab_size\""});
  expect_refused(with(tiny_config(), "rope_theta", "10000"), {"\"rope_theta\" must be a number"});
  expect_refused(with(tiny_config(), "tie_word_embeddings", 1), {"\"tie_word_embeddings\" must be true or false"});
}

TEST(HfConfig, RefusesOddHeadDim) {
  expect_refused(with(tiny_config(), "head_dim", 7), {"head_dim 7 must be even"});
  // Derived: 12 / 4 = 3.
  json config = tiny_config();
  config["hidden_size"] = 12;
  config["num_attention_heads"] = 4;
  config["num_key_value_heads"] = 2;
  expect_refused(config, {"head_dim 3 must be even"});
}

TEST(HfConfig, RefusesUnsupportedRopeScaling) {
  expect_refused(with(tiny_config(), "rope_scaling", json{{"rope_type", "yarn"}, {"factor", 4.0}}),
                 {"rope_scaling", "\"yarn\""});
  expect_refused(with(tiny_config(), "rope_scaling", json{{"type", "linear"}, {"factor", 2.0}}), {"rope_scaling", "\"linear\""});
  expect_refused(with(tiny_config(), "rope_scaling", json{{"factor", 2.0}}), {"rope_scaling"});
  expect_refused(with(tiny_config(), "rope_scaling", "llama3"), {"rope_scaling"});
  // llama3 with impossible numbers.
  expect_refused(with(tiny_config(), "rope_scaling",
                      json{{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0}, {"high_freq_factor", 1.0}}),
                 {"rope_scaling"});
  expect_refused(with(tiny_config(), "rope_scaling", json{{"rope_type", "llama3"}, {"factor", 0.5}}), {"rope_scaling"});
}

TEST(HfConfig, RefusesTokenIdsOutsideVocabulary) {
  expect_refused(with(tiny_config(), "bos_token_id", 512), {"bos_token_id 512 outside the vocabulary"});
  expect_refused(with(tiny_config(), "bos_token_id", -1), {"bos_token_id -1 outside the vocabulary"});
  expect_refused(with(tiny_config(), "eos_token_id", 512), {"eos_token_id 512 outside the vocabulary"});
  expect_refused(with(tiny_config(), "eos_token_id", json::array({2, 600})), {"eos_token_id 600 outside the vocabulary"});
  expect_refused(with(tiny_config(), "eos_token_id", json::array({2, "3"})), {"eos_token_id"});
  // The last valid id is fine.
  EXPECT_EQ(parse_hf_config(with(tiny_config(), "bos_token_id", 511), kWhere).bos_token_id, std::optional<int64_t>(511));
}

TEST(HfConfig, RefusesImplausibleNumbers) {
  expect_refused(with(tiny_config(), "rms_norm_eps", 0.0), {"rms_norm_eps"});
  expect_refused(with(tiny_config(), "rms_norm_eps", 1.0), {"rms_norm_eps"});
  expect_refused(with(tiny_config(), "rope_theta", -1.0), {"rope_theta"});
  expect_refused(with(tiny_config(), "torch_dtype", "int8"), {"torch_dtype", "\"int8\""});
  expect_refused(with(tiny_config(), "torch_dtype", "float12"), {"torch_dtype", "\"float12\""});
  // Dimensions so large that shapes and parameter counts would overflow are refused,
  // with no undefined behaviour on the way (the sanitizer build checks that).
  expect_refused(with(tiny_config(), "hidden_size", int64_t{1} << 40), {"exceeds"});
  expect_refused(with(tiny_config(), "vocab_size", int64_t{1} << 40), {"exceeds"});
  expect_refused(with(tiny_config(), "head_dim", int64_t{1} << 62), {"exceeds"});
  expect_refused(with(tiny_config(), "head_dim", INT64_MAX - 1), {"exceeds"});
  // Each size within bounds, but q_dim = 2^40 and hidden_size * q_dim = 2^64.
  json wide = tiny_config();
  wide["hidden_size"] = 1 << 24;
  wide["num_attention_heads"] = 1 << 20;
  wide["num_key_value_heads"] = 1 << 20;
  wide["head_dim"] = 1 << 20;
  expect_refused(wide, {"num_attention_heads * head_dim = 1099511627776 exceeds 2^24"});
  expect_refused(with(tiny_config(), "num_hidden_layers", 1 << 20), {"num_hidden_layers", "exceeds"});
}

TEST(HfConfig, RefusesNonObjects) {
  expect_refused(json::array({1, 2}), {"must be a JSON object"});
  expect_refused(json("llama"), {"must be a JSON object"});
  expect_refused(json(nullptr), {"must be a JSON object"});
}

TEST(HfConfig, LoadRefusesMalformedFiles) {
  const std::string dir = testing::temp_dir();
  const std::string not_json = dir + "/not-json.json";
  write_text(not_json, "{\"model_type\": \"llama\", ");
  try {
    load_hf_config(not_json);
    ADD_FAILURE() << "accepted truncated JSON";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), not_json + ": not well-formed JSON");
  }

  const std::string empty = dir + "/empty.json";
  write_text(empty, "");
  EXPECT_THROW(load_hf_config(empty), Error);

  const std::string array = dir + "/array.json";
  write_text(array, "[1, 2, 3]");
  try {
    load_hf_config(array);
    ADD_FAILURE() << "accepted a JSON array";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), array + ": config must be a JSON object");
  }

  // A folder without config.json names the config.json it looked for.
  const std::string folder = dir + "/no-config";
  fs::create_directories(folder);
  try {
    load_hf_config(folder);
    ADD_FAILURE() << "accepted a folder without config.json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(folder + "/config.json"), std::string::npos) << e.what();
  }

  // Field errors carry the file name too.
  const std::string bad = dir + "/config.json";
  write_text(bad, with(tiny_config(), "model_type", "gpt2").dump());
  try {
    load_hf_config(dir);
    ADD_FAILURE() << "accepted gpt2";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad + ": unsupported architecture", 0), 0u) << e.what();
  }
}

// ---------------------------------------------------------------------------------
// to_json

TEST(HfConfig, ToJsonRoundTrip) {
  std::vector<json> configs;
  configs.push_back(tiny_config());
  configs.push_back(with(with(tiny_config(), "model_type", "qwen2"), "eos_token_id", json::array({2, 5})));
  json mistral = with(tiny_config(), "model_type", "mistral");
  mistral["sliding_window"] = 256;
  mistral["torch_dtype"] = "bfloat16";
  mistral["tie_word_embeddings"] = false;
  configs.push_back(mistral);
  // Qwen2 with the non-default bias flags (to_json normally omits both keys for qwen2).
  json qwen2_flags = with(tiny_config(), "model_type", "qwen2");
  qwen2_flags["attention_bias"] = false;
  qwen2_flags["mlp_bias"] = true;
  configs.push_back(qwen2_flags);
  json llama3 = tiny_config();
  llama3["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 8.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  llama3["rms_norm_eps"] = 1.0e-5 / 3.0;  // needs all 17 digits to round-trip
  llama3["rope_theta"] = 500000.0;
  llama3["mlp_bias"] = true;
  llama3["attention_bias"] = true;
  llama3["torch_dtype"] = "float16";
  llama3["head_dim"] = 16;  // explicit head_dim != hidden / heads
  llama3.erase("bos_token_id");
  configs.push_back(llama3);

  for (const json& config : configs) {
    SCOPED_TRACE(config.dump());
    const LlamaConfig original = parse_hf_config(config, kWhere);
    const json written = original.to_json();
    // Through text, as a file would carry it.
    const LlamaConfig again = parse_hf_config(json::parse(written.dump(2)), "written");
    expect_same_config(again, original);
    EXPECT_EQ(written["hidden_act"], "silu");
    EXPECT_EQ(written["architectures"].size(), 1u);
  }
  EXPECT_EQ(parse_hf_config(configs[1], kWhere).to_json()["architectures"][0], "Qwen2ForCausalLM");
  EXPECT_EQ(parse_hf_config(configs[2], kWhere).to_json()["architectures"][0], "MistralForCausalLM");
  EXPECT_EQ(parse_hf_config(configs[2], kWhere).to_json()["torch_dtype"], "bfloat16");
  EXPECT_EQ(parse_hf_config(configs[0], kWhere).to_json()["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(parse_hf_config(configs[0], kWhere).to_json()["eos_token_id"], 2);  // a scalar when single
  // What transformers writes for Qwen2: no attention_bias / mlp_bias keys.
  EXPECT_FALSE(parse_hf_config(configs[1], kWhere).to_json().contains("attention_bias"));
  EXPECT_FALSE(parse_hf_config(configs[1], kWhere).to_json().contains("mlp_bias"));
}

TEST(HfConfig, ToJsonRoundTripOfRealConfigs) {
  LOWBIT_REQUIRE_SHARED(shared);
  for (const std::string& path : {shared + "/models/stories260K/hf/config.json", shared + "/models/smollm2-135m/config.json"}) {
    SCOPED_TRACE(path);
    const LlamaConfig original = load_hf_config(path);
    expect_same_config(parse_hf_config(json::parse(original.to_json().dump()), "written"), original);
  }
}

}  // namespace
}  // namespace lowbit
