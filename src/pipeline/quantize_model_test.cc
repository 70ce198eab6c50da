// The layer-sequential pipeline: calibration sampling, recipes, and quantize_model checked against
// the algorithms called directly (exact), the sequential protocol rebuilt by hand, AWQ folding's
// fp equivalence, thread-count determinism, refusals, and quality on the real stories260K model.
#include "lowbit/pipeline/quantize_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "lowbit/compress/gptq.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/compress/statistics.h"
#include "lowbit/core/atomic_file.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/io/tokenizer.h"
#include "lowbit/pipeline/awq_folding.h"
#include "lowbit/pipeline/calibration.h"
#include "testing/random_model.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::awkward_config;
using testing::error_from;
using testing::write_random_model;

std::shared_ptr<const ModelFiles> open_shared(const std::string& path) {
  return std::make_shared<ModelFiles>(open_model(path));
}

// n sequences of `length` pseudo-random token ids below `vocab`.
std::vector<std::vector<int32_t>> random_sequences(int n, int length, int vocab) {
  std::vector<int32_t> stream(2000);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<int32_t>((i * 7919 + i / 3) % vocab);
  return sample_calibration(stream, {n, length, 5});
}

void expect_same_tensor(const QuantizedTensor& a, const QuantizedTensor& b, const std::string& name) {
  SCOPED_TRACE(name);
  ASSERT_EQ(a.rows(), b.rows());
  ASSERT_EQ(a.cols(), b.cols());
  EXPECT_EQ(a.scheme().to_string(), b.scheme().to_string());
  EXPECT_TRUE(std::ranges::equal(a.packed_codes(), b.packed_codes()));
  EXPECT_TRUE(std::ranges::equal(a.scales(), b.scales()));
  EXPECT_TRUE(std::ranges::equal(a.zero_points(), b.zero_points()));
  EXPECT_TRUE(std::ranges::equal(a.g_idx(), b.g_idx()));
}

TEST(Calibration, SamplesAreSeededWindowsOfTheText) {
  std::vector<int32_t> tokens(1000);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i);
  const auto a = sample_calibration(tokens, {16, 64, 3});
  ASSERT_EQ(a.size(), 16u);
  std::set<int32_t> starts;
  for (const auto& s : a) {
    ASSERT_EQ(s.size(), 64u);
    for (size_t i = 1; i < s.size(); ++i) ASSERT_EQ(s[i], s[0] + static_cast<int32_t>(i));  // contiguous
    EXPECT_LE(s.back(), 999);
    starts.insert(s[0]);
  }
  EXPECT_GT(starts.size(), 12u);  // 16 draws from 937 starts rarely collide
  EXPECT_EQ(sample_calibration(tokens, {16, 64, 3}), a);
  EXPECT_NE(sample_calibration(tokens, {16, 64, 4}), a);
  EXPECT_EQ(sample_calibration(tokens, {3, 1000, 0})[2], tokens);  // exactly one possible window
  EXPECT_TRUE(testing::contains(error_from([&] { sample_calibration(tokens, {4, 1001, 0}); }), "fewer than one sequence"));
  EXPECT_TRUE(testing::contains(error_from([&] { sample_calibration(tokens, {0, 10, 0}); }), "--nsamples"));
  EXPECT_TRUE(testing::contains(error_from([&] { sample_calibration(tokens, {1, 0, 0}); }), "--seqlen"));
}

TEST(Recipe, DefaultsRulesAndJson) {
  QuantRecipe r;
  EXPECT_FALSE(r.plan_for("lm_head").quantize);
  EXPECT_FALSE(r.plan_for("model.embed_tokens").quantize);
  EXPECT_EQ(r.plan_for("model.layers.0.mlp.down_proj").scheme.to_string(), r.scheme.to_string());
  r.rules.push_back(parse_keep_rule("*.down_proj=8", r.scheme));
  r.rules.push_back(parse_keep_rule("model.layers.1.*=f32", r.scheme));
  r.rules.push_back(parse_keep_rule("lm_head=6", r.scheme));
  EXPECT_EQ(r.plan_for("model.layers.0.mlp.down_proj").scheme.element.to_string(), "uint8");
  EXPECT_EQ(r.plan_for("model.layers.0.mlp.down_proj").scheme.group_size, 128);
  EXPECT_EQ(r.plan_for("model.layers.1.mlp.down_proj").to_string(), "kept f32");  // the later rule wins
  EXPECT_EQ(r.plan_for("lm_head").scheme.element.to_string(), "uint6");
  EXPECT_EQ(r.plan_for("model.layers.0.self_attn.q_proj").scheme.element.to_string(), "uint4");

  const QuantRecipe back = QuantRecipe::from_json(r.to_json(), "recipe.json");
  EXPECT_EQ(back.to_json(), r.to_json());
  const auto parsed = QuantRecipe::from_json(nlohmann::json::parse(R"({"method": "awq+gptq",
      "scheme": {"format": "nf4", "group_size": 64}, "gptq": {"act_order": true},
      "layers": [{"match": "*.o_proj", "keep": "bf16"}, {"match": "*.v_proj", "format": "int8", "group_size": 0}]})"),
                                             "r.json");
  EXPECT_EQ(parsed.method, QuantMethod::kAwqGptq);
  EXPECT_EQ(parsed.plan_for("model.layers.2.self_attn.q_proj").to_string(), "nf4 g64 (F16 scales)");
  EXPECT_EQ(parsed.plan_for("model.layers.2.self_attn.o_proj").to_string(), "kept bf16");
  EXPECT_EQ(parsed.plan_for("model.layers.2.self_attn.v_proj").scheme.element.to_string(), "int8");
  EXPECT_TRUE(parsed.gptq.act_order);

  auto refused = [](const char* text) {
    return error_from([&] { QuantRecipe::from_json(nlohmann::json::parse(text), "r.json"); });
  };
  EXPECT_TRUE(testing::contains(refused(R"({"methd": "gptq"})"), "unknown key 'methd'"));
  EXPECT_TRUE(testing::contains(refused(R"({"method": "gptx"})"), "gptx"));
  EXPECT_TRUE(testing::contains(refused(R"({"scheme": {"format": "int12"}})"), "r.json: scheme"));
  EXPECT_TRUE(testing::contains(refused(R"({"scheme": {"group_size": -1}})"), "group_size"));
  EXPECT_TRUE(testing::contains(refused(R"({"layers": [{"keep": "f16"}]})"), "needs 'match'"));
  EXPECT_TRUE(testing::contains(refused(R"({"layers": [{"match": "x", "keep": "f8"}]})"), "layers[0]"));
  EXPECT_TRUE(testing::contains(refused(R"({"gptq": {"percdamp": -1}})"), "percdamp"));
  EXPECT_TRUE(testing::contains(error_from([&] { parse_keep_rule("lm_head", r.scheme); }), "NAME="));
  EXPECT_TRUE(testing::contains(error_from([&] { parse_keep_rule("lm_head=9", r.scheme); }), "2..8"));
  EXPECT_TRUE(testing::contains(error_from([&] { parse_keep_rule("lm_head=q4", r.scheme); }), "not f32, f16 or bf16"));
}

// Without calibration RTN is layer-local: the pipeline must give exactly quantize_rtn of each
// source weight, keep what the recipe keeps, and carry biases over.
TEST(QuantizeModel, RtnEqualsTheAlgorithmPerLayer) {
  const auto files = open_shared(write_random_model(awkward_config()));
  QuantRecipe recipe;
  recipe.method = QuantMethod::kRtn;
  recipe.scheme = QuantScheme::integer(4, 16, true);
  recipe.rules.push_back(parse_keep_rule("*.up_proj=f32", recipe.scheme));
  const QuantizeResult result = quantize_model(files, recipe, {});
  const LlamaModel model(files);
  int quantized = 0;
  for (const std::string& name : model.linear_names()) {
    const LayerPlan plan = recipe.plan_for(name);
    ASSERT_EQ(result.contents.quantized.count(name), plan.quantize ? 1u : 0u) << name;
    if (!plan.quantize) continue;
    const Tensor& w = *files->find(name + ".weight");
    RtnOptions options;
    options.scheme = plan.scheme;
    expect_same_tensor(result.contents.quantized.at(name),
                       quantize_rtn(w.to_f32_vector(), w.dim(0), w.dim(1), options), name);
    ++quantized;
  }
  EXPECT_EQ(quantized, 2 * 6);
  EXPECT_EQ(result.contents.biases.at("model.layers.1.self_attn.k_proj"),
            files->find("model.layers.1.self_attn.k_proj.bias")->to_f32_vector());
  bool up_kept = false;
  for (const auto& [name, tensor] : result.contents.dense)
    if (name == "model.layers.0.mlp.up_proj.weight") up_kept = tensor.dtype() == DType::kF32;
  EXPECT_TRUE(up_kept);
  EXPECT_FALSE(result.contents.config.tie_word_embeddings);
  EXPECT_TRUE(std::isnan(result.layers[1].relative_error));  // no calibration, no error figure
}

// GPTQ's sequential protocol rebuilt by hand: each layer's H must come from inputs produced by
// every layer before it already quantized (earlier blocks, and earlier stages of its own block),
// and the layer must equal quantize_gptq on that H — bit for bit.
TEST(QuantizeModel, GptqFollowsTheSequentialProtocolExactly) {
  const LlamaConfig config = awkward_config();
  const auto files = open_shared(write_random_model(config));
  QuantRecipe recipe;
  recipe.method = QuantMethod::kGptq;
  recipe.scheme = QuantScheme::integer(3, 16, false);
  recipe.rules.push_back(parse_keep_rule("lm_head=4", recipe.scheme));
  const auto calibration = random_sequences(4, 24, config.vocab_size);
  const QuantizeResult result = quantize_model(files, recipe, calibration);
  const auto& quantized = result.contents.quantized;

  LlamaModel reference(files);
  const std::vector<std::string> order = reference.linear_names();  // q k v o gate up down per block, lm_head
  const std::vector<int> stage_of = {0, 0, 0, 1, 2, 2, 3};
  for (size_t t = 0; t < order.size(); ++t) {
    const std::string& target = order[t];
    const size_t block = t / 7;
    // A fresh model with every layer of an earlier stage quantized as the pipeline did.
    LlamaModel model(files);
    for (size_t i = 0; i < order.size(); ++i) {
      const bool earlier = target == "lm_head" ? order[i] != "lm_head"
                                               : i / 7 < block || (i / 7 == block && stage_of[i % 7] < stage_of[t % 7]);
      if (!earlier) continue;
      std::vector<float> bias;
      if (auto it = result.contents.biases.find(order[i]); it != result.contents.biases.end()) bias = it->second;
      model.replace_linear(order[i], std::make_unique<QuantizedLinear>(
                                         std::make_shared<QuantizedTensor>(quantized.at(order[i])), bias));
    }
    const int64_t cols = model.linear(target).in_features(), rows = model.linear(target).out_features();
    std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
    model.set_linear_observer([&](const std::string& name, const float* x, int64_t n, int64_t in) {
      if (name == target) accumulate_hessian(h, {x, static_cast<size_t>(n * in)}, n, in);
    });
    std::vector<float> logits(static_cast<size_t>(24 * config.vocab_size));
    for (const auto& sequence : calibration) {
      KvCache cache(config, 24);
      model.forward(sequence, cache, logits.data(), true);
    }
    GptqOptions options = recipe.gptq;
    options.scheme = recipe.plan_for(target).scheme;
    const Tensor& w = *files->find(target + ".weight");
    expect_same_tensor(quantized.at(target), quantize_gptq(w.to_f32_vector(), rows, cols, h, options).tensor, target);
  }
  EXPECT_EQ(result.calibration_tokens, 4 * 24);
}

TEST(QuantizeModel, SameBytesForOneAndTwoThreads) {
  const LlamaConfig config = awkward_config();
  const auto files = open_shared(write_random_model(config));
  QuantRecipe recipe;
  recipe.method = QuantMethod::kAwqGptq;
  recipe.scheme = QuantScheme::integer(4, 16, false);
  const auto calibration = random_sequences(3, 20, config.vocab_size);
  set_num_threads(1);
  const QuantizeResult one = quantize_model(files, recipe, calibration);
  set_num_threads(2);
  const QuantizeResult two = quantize_model(files, recipe, calibration);
  set_num_threads(0);
  ASSERT_EQ(one.contents.quantized.size(), two.contents.quantized.size());
  for (const auto& [name, tensor] : one.contents.quantized) expect_same_tensor(tensor, two.contents.quantized.at(name), name);
  ASSERT_EQ(one.contents.dense.size(), two.contents.dense.size());
  for (size_t i = 0; i < one.contents.dense.size(); ++i) {
    const Tensor &a = one.contents.dense[i].second, &b = two.contents.dense[i].second;
    ASSERT_EQ(a.nbytes(), b.nbytes());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0) << one.contents.dense[i].first;
  }
}

// AWQ's scales are an equivalence transform: after folding every block, the fp model computes
// the same logits (to f32 rounding). Multi-head attention, so v→o is folded too, and attention
// biases, which must be divided with v's rows. Outlier norm channels make the search pick α > 0.
TEST(AwqFolding, LeavesTheFpModelUnchanged) {
  LlamaConfig config = awkward_config();
  config.num_key_value_heads = config.num_attention_heads;  // MHA: v rows == o inputs
  const auto source = open_model(write_random_model(config));
  NamedTensors tensors;
  for (const auto& [name, tensor] : source.tensors) {
    Tensor copy = Tensor::copy_of(DType::kF32, tensor.shape(), tensor.data(), tensor.nbytes());
    if (name.ends_with("layernorm.weight"))
      for (int i = 0; i < 4; ++i) copy.mutable_values<float>()[i * 11] *= 12.0f;  // outlier channels
    tensors.emplace_back(name, copy);
  }
  const std::string dir = testing::temp_dir();
  write_safetensors(dir + "/model.safetensors", tensors);
  write_file_atomically(dir + "/config.json", config.to_json().dump());
  const auto files = open_shared(dir);

  QuantRecipe recipe;
  recipe.method = QuantMethod::kAwq;
  recipe.scheme = QuantScheme::integer(3, 16, true);
  const auto calibration = random_sequences(3, 20, config.vocab_size);
  auto logits_of = [&](const LlamaModel& model) {
    std::vector<float> all;
    for (const auto& sequence : calibration) {
      KvCache cache(config, 20);
      std::vector<float> logits(static_cast<size_t>(20 * config.vocab_size));
      model.forward(sequence, cache, logits.data(), true);
      all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
  };
  LlamaModel model(files);
  const std::vector<float> before = logits_of(model);
  std::vector<std::vector<float>> hidden;
  for (const auto& sequence : calibration) {
    hidden.emplace_back(static_cast<size_t>(20 * config.hidden_size));
    model.embed(sequence, hidden.back().data());
  }
  std::map<std::string, double> alpha;
  for (int64_t b = 0; b < model.num_blocks(); ++b) {
    alpha.merge(fold_awq_scales(model, b, hidden, 20, recipe));
    for (auto& x : hidden) model.forward_block(b, x.data(), 20);
  }
  EXPECT_EQ(alpha.size(), 14u);  // every consumer of all four groups in both blocks
  double largest_alpha = 0;
  for (const auto& [name, a] : alpha) largest_alpha = std::max(largest_alpha, a);
  EXPECT_GT(largest_alpha, 0.0);  // some scale is not 1: the check below is not vacuous
  const std::vector<float> after = logits_of(model);
  float scale = 0;
  for (float v : before) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < before.size(); ++i) ASSERT_NEAR(after[i], before[i], 1e-5f * scale) << i;
}

// Act-order with static groups: groups stay runs of consecutive columns (no g_idx), dynamic
// groups record g_idx; both write folders that load and run to finite logits close to fp32's.
TEST(QuantizeModel, ActOrderWithStaticOrDynamicGroupsGivesValidModels) {
  const LlamaConfig config = awkward_config();
  const auto files = open_shared(write_random_model(config));
  const auto calibration = random_sequences(3, 16, config.vocab_size);
  std::vector<float> reference(static_cast<size_t>(16 * config.vocab_size));
  {
    KvCache cache(config, 16);
    LlamaModel(files).forward(calibration[0], cache, reference.data(), true);
  }
  for (const bool static_groups : {true, false}) {
    SCOPED_TRACE(static_groups ? "static groups" : "dynamic groups");
    QuantRecipe recipe;
    recipe.scheme = QuantScheme::integer(8, 16, false);
    recipe.gptq.act_order = true;
    recipe.gptq.static_groups = static_groups;
    const QuantizeResult result = quantize_model(files, recipe, calibration);
    for (const auto& [name, tensor] : result.contents.quantized) EXPECT_EQ(tensor.g_idx().empty(), static_groups) << name;
    const std::string dir = testing::temp_dir() + "/q";
    write_quantized_model(dir, *files, result.contents, false);
    const auto model = load_llama_model(open_shared(dir));
    KvCache cache(config, 16);
    std::vector<float> logits(reference.size());
    model->forward(calibration[0], cache, logits.data(), true);
    double worst = 0, largest = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      ASSERT_TRUE(std::isfinite(logits[i]));
      worst = std::max(worst, std::fabs(static_cast<double>(logits[i]) - reference[i]));
      largest = std::max(largest, std::fabs(static_cast<double>(reference[i])));
    }
    // 8-bit weights stay within a few percent of the fp32 logits (measured: about 1%); a column or
    // group permutation applied wrongly moves them by tens of percent.
    EXPECT_LT(worst, 0.03 * largest) << "largest " << largest;
  }
}

// A quantized embedding table: untied, RTN on the table; tied, quantized once as the head (GPTQ on
// the head's H) and looked up from the same codes. Written and loaded, the model's lookups and
// head are exactly the stored tensor's values.
TEST(QuantizeModel, QuantizedEmbeddingTiedOrNotIsLookedUpFromTheCodes) {
  for (bool tied : {false, true}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    LlamaConfig config = awkward_config();
    config.tie_word_embeddings = tied;
    const auto files = open_shared(write_random_model(config));
    const auto calibration = random_sequences(4, 12, config.vocab_size);
    QuantRecipe recipe;
    recipe.method = QuantMethod::kGptq;
    recipe.scheme = QuantScheme::integer(4, 16, false);
    recipe.rules.push_back(parse_keep_rule("model.embed_tokens=8", recipe.scheme));
    const QuantizeResult result = quantize_model(files, recipe, calibration);
    ASSERT_EQ(result.contents.quantized.count("model.embed_tokens"), 1u);
    EXPECT_EQ(result.contents.quantized.count("lm_head"), 0u);
    EXPECT_EQ(result.contents.config.tie_word_embeddings, tied);
    for (const auto& [name, tensor] : result.contents.dense) EXPECT_NE(name, "model.embed_tokens.weight");
    const QuantizedTensor& table = result.contents.quantized.at("model.embed_tokens");
    EXPECT_EQ(table.scheme().to_string(), "uint8 g16 (F16 scales, zero points)");
    EXPECT_EQ(result.layers.front().name, "model.embed_tokens");
    // Tied: quantized as the head, against its calibration inputs; untied: RTN, no error column.
    EXPECT_EQ(std::isnan(result.layers.front().relative_error), !tied);
    if (!tied) {
      RtnOptions rtn;
      rtn.scheme = table.scheme();
      const Tensor& source = *files->find("model.embed_tokens.weight");
      EXPECT_EQ(table.codes(), quantize_rtn(source.to_f32_vector(), source.dim(0), source.dim(1), rtn).codes());
    }

    const std::string dir = testing::temp_dir() + "/embedding-" + (tied ? "tied" : "untied");
    write_quantized_model(dir, *files, result.contents, true);
    const auto loaded = open_shared(dir);
    EXPECT_EQ(loaded->find("model.embed_tokens.weight"), nullptr);
    EXPECT_EQ(loaded->parameter_count(), files->parameter_count());
    const auto model = load_llama_model(loaded);
    const std::vector<float> values = table.dequantize();
    std::vector<float> x(static_cast<size_t>(config.hidden_size));
    for (int32_t id : {int32_t{0}, int32_t{7}, static_cast<int32_t>(config.vocab_size - 1)}) {
      model->embed(std::span<const int32_t>(&id, 1), x.data());
      EXPECT_EQ(x, std::vector<float>(values.begin() + id * config.hidden_size, values.begin() + (id + 1) * config.hidden_size));
    }
    if (tied) {  // the head multiplies by the same table
      std::vector<float> one_hot(static_cast<size_t>(config.hidden_size), 0.0f), logits(static_cast<size_t>(config.vocab_size));
      one_hot[5] = 1.0f;
      model->linear("lm_head").forward(one_hot.data(), 1, logits.data());
      for (int64_t v = 0; v < config.vocab_size; ++v)
        EXPECT_FLOAT_EQ(logits[static_cast<size_t>(v)], values[static_cast<size_t>(v * config.hidden_size + 5)]);
    }
    KvCache cache(config, 16);
    std::vector<float> logits(static_cast<size_t>(12 * config.vocab_size));
    model->forward(calibration[0], cache, logits.data(), true);
    for (float l : logits) ASSERT_TRUE(std::isfinite(l));
  }
}

TEST(QuantizeModel, RefusesImpossibleRecipesBeforeWorking) {
  const LlamaConfig config = awkward_config();
  const auto files = open_shared(write_random_model(config));
  const auto calibration = random_sequences(2, 8, config.vocab_size);
  QuantRecipe recipe;
  recipe.scheme = QuantScheme::integer(4, 16, false);
  EXPECT_TRUE(testing::contains(error_from([&] { quantize_model(files, recipe, {}); }), "needs calibration data"));
  QuantRecipe embed = recipe;
  QuantRule wide_embedding = parse_keep_rule("model.embed_tokens=4", recipe.scheme);
  wide_embedding.plan.scheme.group_size = 64;  // > 48 hidden
  embed.rules.push_back(wide_embedding);
  EXPECT_TRUE(testing::contains(error_from([&] { quantize_model(files, embed, calibration); }), "model.embed_tokens"));
  LlamaConfig tied_config = config;
  tied_config.tie_word_embeddings = true;
  QuantRecipe both = recipe;
  both.rules.push_back(parse_keep_rule("model.embed_tokens=4", recipe.scheme));
  both.rules.push_back(parse_keep_rule("lm_head=8", recipe.scheme));
  EXPECT_EQ(error_from([&] { quantize_model(open_shared(write_random_model(tied_config)), both, calibration); }),
            "lm_head: the head is tied to model.embed_tokens, which is quantized as uint4 g16 (F16 scales, zero points); "
            "give the head no plan of its own");
  QuantRecipe wide = recipe;
  wide.scheme.group_size = 40;  // > 37 inputs of down_proj
  EXPECT_TRUE(testing::contains(error_from([&] { quantize_model(files, wide, calibration); }), "mlp.down_proj"));
  QuantRecipe static_rows = recipe;
  static_rows.scheme.group_size = 0;
  static_rows.gptq.static_groups = true;
  EXPECT_TRUE(testing::contains(error_from([&] { quantize_model(files, static_rows, calibration); }), "static groups"));
  const std::vector<std::vector<int32_t>> ragged = {{1, 2, 3}, {1, 2}};
  EXPECT_TRUE(testing::contains(error_from([&] { quantize_model(files, recipe, ragged); }), "differ in length"));
}

// The quality claim on the real model: at 4 bits in groups of 32, GPTQ, AWQ and AWQ+GPTQ beat RTN
// in perplexity on held-out TinyStories text (calibration on a different seed of the same file;
// evaluation on its first 4096 tokens).
TEST(QuantizeModel, Stories260KCalibratedMethodsBeatRtn) {
  LOWBIT_REQUIRE_SHARED(shared);
  LOWBIT_SKIP_HEAVY_UNDER_SANITIZERS();
  const auto files = open_shared(shared + "/models/stories260K/hf");
  const auto tokenizer = load_tokenizer(*files);
  const auto tokens = tokenizer->encode(testing::read_all(shared + "/data/tinystories/tinystories_val.txt"), false);
  const auto calibration = sample_calibration(tokens, {32, 256, 1});
  const std::vector<int32_t> held_out(tokens.end() - 4096, tokens.end());
  auto perplexity = [&](QuantMethod method) {
    QuantRecipe recipe;
    recipe.method = method;
    recipe.scheme = QuantScheme::integer(4, 32, false);
    const QuantizeResult result = quantize_model(files, recipe, method == QuantMethod::kRtn ? decltype(calibration){} : calibration);
    const std::string dir = testing::temp_dir() + "/q";
    write_quantized_model(dir, *files, result.contents, false);
    const auto model = load_llama_model(open_shared(dir));
    PerplexityOptions options;
    options.context = 256;
    return evaluate_perplexity(*model, held_out, options).perplexity;
  };
  const double rtn = perplexity(QuantMethod::kRtn);
  EXPECT_LT(perplexity(QuantMethod::kGptq), rtn);
  EXPECT_LT(perplexity(QuantMethod::kAwq), rtn);
  EXPECT_LT(perplexity(QuantMethod::kAwqGptq), rtn);
}

}  // namespace
}  // namespace lowbit
