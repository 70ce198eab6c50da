// The engine against (1) a deliberately naive reference written here with plain loops in
// double precision, on a random-weight model with awkward sizes, and (2) the real
// stories260K model's reference outputs (../shared/models/stories260K/REFERENCE.md).
#include "lowbit/model/llama.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "lowbit/core/atomic_file.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/io/tokenizer.h"
#include "lowbit/model/generate.h"
#include "testing/random_model.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::awkward_config;
using testing::write_random_model;

// Plain-loop reference of the forward pass, all in double, every position's logits; with
// `f16_cache` keys (after RoPE) and values rounded to f16, as an f16 KV cache holds them.
std::vector<double> naive_logits(const ModelFiles& files, const std::vector<int32_t>& tokens, bool f16_cache = false) {
  const LlamaConfig& c = *files.config;
  auto w = [&](const std::string& name) { return files.find(name)->to_f32_vector(); };
  const int64_t n = static_cast<int64_t>(tokens.size()), d = c.hidden_size, hd = c.head_dim;
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, ff = c.intermediate_size;
  const auto embed = w("model.embed_tokens.weight");
  std::vector<std::vector<double>> x(n, std::vector<double>(d));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) x[t][i] = embed[tokens[t] * d + i];
  auto norm = [&](const std::vector<double>& v, const std::vector<float>& g) {
    double ss = 0;
    for (double e : v) ss += e * e;
    const double s = 1.0 / std::sqrt(ss / v.size() + c.rms_norm_eps);
    std::vector<double> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = v[i] * s * g[i];
    return out;
  };
  auto matvec = [](const std::vector<float>& W, const std::vector<double>& v, int64_t rows) {
    std::vector<double> out(rows, 0.0);
    const int64_t cols = static_cast<int64_t>(v.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) out[r] += W[r * cols + k] * v[k];
    return out;
  };
  const auto inv_freq = rope_inverse_frequencies(c);
  auto rope = [&](std::vector<double>& v, int64_t heads, int64_t pos) {
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double a = pos * static_cast<double>(inv_freq[i]);
        const double x0 = v[h * hd + i], x1 = v[h * hd + i + hd / 2];
        v[h * hd + i] = x0 * std::cos(a) - x1 * std::sin(a);
        v[h * hd + i + hd / 2] = x1 * std::cos(a) + x0 * std::sin(a);
      }
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto g1 = w(p + "input_layernorm.weight"), g2 = w(p + "post_attention_layernorm.weight");
    const auto Wq = w(p + "self_attn.q_proj.weight"), Wk = w(p + "self_attn.k_proj.weight");
    const auto Wv = w(p + "self_attn.v_proj.weight"), Wo = w(p + "self_attn.o_proj.weight");
    const auto bq = w(p + "self_attn.q_proj.bias"), bk = w(p + "self_attn.k_proj.bias"), bv = w(p + "self_attn.v_proj.bias");
    const auto Wg = w(p + "mlp.gate_proj.weight"), Wu = w(p + "mlp.up_proj.weight"), Wd = w(p + "mlp.down_proj.weight");
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (int64_t t = 0; t < n; ++t) {
      const auto h = norm(x[t], g1);
      q[t] = matvec(Wq, h, H * hd);
      k[t] = matvec(Wk, h, Hkv * hd);
      v[t] = matvec(Wv, h, Hkv * hd);
      for (int64_t i = 0; i < H * hd; ++i) q[t][i] += bq[i];
      for (int64_t i = 0; i < Hkv * hd; ++i) k[t][i] += bk[i], v[t][i] += bv[i];
      rope(q[t], H, t);
      rope(k[t], Hkv, t);
      if (f16_cache)
        for (int64_t i = 0; i < Hkv * hd; ++i) {
          k[t][i] = f16_bits_to_f32(f32_to_f16_bits(static_cast<float>(k[t][i])));
          v[t][i] = f16_bits_to_f32(f32_to_f16_bits(static_cast<float>(v[t][i])));
        }
    }
    for (int64_t t = 0; t < n; ++t) {
      std::vector<double> attn(H * hd, 0.0);
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / Hkv);
        std::vector<double> s(t + 1);
        double m = -1e300, z = 0;
        for (int64_t j = 0; j <= t; ++j) {
          s[j] = 0;
          for (int64_t e = 0; e < hd; ++e) s[j] += q[t][h * hd + e] * k[j][g * hd + e];
          s[j] /= std::sqrt(static_cast<double>(hd));
          m = std::max(m, s[j]);
        }
        for (int64_t j = 0; j <= t; ++j) z += s[j] = std::exp(s[j] - m);
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t e = 0; e < hd; ++e) attn[h * hd + e] += s[j] / z * v[j][g * hd + e];
      }
      const auto o = matvec(Wo, attn, d);
      for (int64_t i = 0; i < d; ++i) x[t][i] += o[i];
      const auto h = norm(x[t], g2);
      const auto gate = matvec(Wg, h, ff), up = matvec(Wu, h, ff);
      std::vector<double> act(ff);
      for (int64_t i = 0; i < ff; ++i) act[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      const auto down = matvec(Wd, act, d);
      for (int64_t i = 0; i < d; ++i) x[t][i] += down[i];
    }
  }
  const auto final_norm = w("model.norm.weight");
  const auto head = w(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  std::vector<double> logits;
  for (int64_t t = 0; t < n; ++t) {
    const auto out = matvec(head, norm(x[t], final_norm), c.vocab_size);
    logits.insert(logits.end(), out.begin(), out.end());
  }
  return logits;
}

void expect_close(const float* actual, const std::vector<double>& expected, size_t offset, size_t count, double tolerance) {
  double scale = 0;
  for (size_t i = 0; i < count; ++i) scale = std::max(scale, std::abs(expected[offset + i]));
  for (size_t i = 0; i < count; ++i)
    ASSERT_NEAR(actual[i], expected[offset + i], tolerance * scale) << "logit " << i << " of row at " << offset;
}

class LlamaEngineCache : public ::testing::TestWithParam<DType> {};
INSTANTIATE_TEST_SUITE_P(KvCacheDType, LlamaEngineCache, ::testing::Values(DType::kF32, DType::kF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Against the naive reference for both KV cache element types (f16: the reference rounds its keys and
// values the same way, so the engine must agree as closely as with f32).
TEST_P(LlamaEngineCache, PrefillAndDecodeMatchNaiveReference) {
  const DType cache_dtype = GetParam();
  const LlamaConfig config = awkward_config();
  auto files = std::make_shared<ModelFiles>(open_model(write_random_model(config, DType::kF32)));
  const LlamaModel model(files);
  const std::vector<int32_t> tokens = {3, 17, 52, 0, 9, 9, 41, 23, 5, 30, 11};
  const auto expected = naive_logits(*files, tokens, cache_dtype == DType::kF16);
  const size_t vocab = static_cast<size_t>(config.vocab_size);

  KvCache cache(config, 32, cache_dtype);
  EXPECT_EQ(cache.dtype(), cache_dtype);
  std::vector<float> logits(tokens.size() * vocab);
  model.forward(tokens, cache, logits.data(), true);
  for (size_t t = 0; t < tokens.size(); ++t) expect_close(&logits[t * vocab], expected, t * vocab, vocab, 1e-5);

  // Step-by-step decode with the KV cache: after a 4-token prefill, one token at a time.
  KvCache step_cache(config, 32, cache_dtype);
  std::vector<float> step(vocab);
  model.forward(std::span<const int32_t>(tokens.data(), 4), step_cache, step.data(), false);
  expect_close(step.data(), expected, 3 * vocab, vocab, 1e-5);
  for (size_t t = 4; t < tokens.size(); ++t) {
    model.forward(std::span<const int32_t>(&tokens[t], 1), step_cache, step.data(), false);
    expect_close(step.data(), expected, t * vocab, vocab, 1e-5);
  }
  EXPECT_EQ(step_cache.length(), static_cast<int64_t>(tokens.size()));
}

TEST(LlamaEngine, Bf16WeightsComputeWithTheirExactValues) {
  // The naive reference reads the same bf16 tensors widened exactly, so agreement to 1e-5
  // shows the engine converts per tile without any other rounding.
  const LlamaConfig config = awkward_config();
  auto files = std::make_shared<ModelFiles>(open_model(write_random_model(config, DType::kBF16)));
  const LlamaModel model(files);
  const std::vector<int32_t> tokens = {1, 2, 3, 50, 49, 7};
  const auto expected = naive_logits(*files, tokens);
  KvCache cache(config, 16);
  std::vector<float> logits(tokens.size() * config.vocab_size);
  model.forward(tokens, cache, logits.data(), true);
  for (size_t t = 0; t < tokens.size(); ++t)
    expect_close(&logits[t * config.vocab_size], expected, t * config.vocab_size, config.vocab_size, 1e-5);
}

// Prefill of 100 tokens, then 40 decode steps (decode attention splits the cache into chunks of 64
// positions, so these cross two chunk boundaries): the same bits on 1 and 2 threads, for both caches.
TEST_P(LlamaEngineCache, BitIdenticalForOneAndTwoThreads) {
  const LlamaConfig config = awkward_config();
  auto files = std::make_shared<ModelFiles>(open_model(write_random_model(config, DType::kF16)));
  const LlamaModel model(files);
  std::vector<int32_t> tokens(140);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 37 + 5) % config.vocab_size);
  const size_t prefill = 100, vocab = static_cast<size_t>(config.vocab_size);
  auto run = [&](int threads) {
    set_num_threads(threads);
    KvCache cache(config, 160, GetParam());
    std::vector<float> logits(tokens.size() * vocab);
    model.forward(std::span<const int32_t>(tokens.data(), prefill), cache, logits.data(), true);
    for (size_t t = prefill; t < tokens.size(); ++t)
      model.forward(std::span<const int32_t>(&tokens[t], 1), cache, &logits[t * vocab], false);
    return logits;
  };
  const auto one = run(1), two = run(2);
  set_num_threads(0);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
}

TEST(LlamaEngine, KvCacheHoldsF32OrF16AndRefusesOtherDTypes) {
  const LlamaConfig config = awkward_config();
  const KvCache f32(config, 10, DType::kF32), f16(config, 10, DType::kF16);
  EXPECT_EQ(f32.bytes(), 2 * config.num_hidden_layers * 10 * config.kv_dim() * 4);
  EXPECT_EQ(f16.bytes(), f32.bytes() / 2);
  EXPECT_THROW(KvCache(config, 10, DType::kBF16), Error);
  EXPECT_THROW(set_kv_cache_dtype(DType::kI8), Error);
  EXPECT_EQ(kv_cache_dtype(), DType::kF32);  // the default, unchanged by the refused call
  set_kv_cache_dtype(DType::kF16);
  EXPECT_EQ(KvCache(config, 4).dtype(), DType::kF16);
  set_kv_cache_dtype(DType::kF32);
}

TEST(LlamaEngine, RefusesOverflowAndBadTokens) {
  const LlamaConfig config = awkward_config();
  auto files = std::make_shared<ModelFiles>(open_model(write_random_model(config, DType::kF32)));
  const LlamaModel model(files);
  KvCache cache(config, 4);
  std::vector<float> logits(config.vocab_size);
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  EXPECT_THROW(model.forward(five, cache, logits.data(), false), Error);
  const std::vector<int32_t> bad = {53};
  EXPECT_THROW(model.forward(bad, cache, logits.data(), false), Error);
}

// The block-level API the calibration pipeline walks with must compute what forward() computes:
// every linear layer's input, observed both ways, is bit-identical.
TEST(LlamaEngine, BlockByBlockWalkSeesTheSameInputsAsForward) {
  const LlamaConfig config = awkward_config();
  auto files = std::make_shared<ModelFiles>(open_model(write_random_model(config, DType::kF32)));
  LlamaModel model(files);
  std::vector<int32_t> tokens(19);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 11 + 3) % config.vocab_size);
  std::map<std::string, std::vector<float>> seen;
  model.set_linear_observer([&](const std::string& name, const float* x, int64_t n, int64_t in) {
    if (name != "lm_head") seen[name].assign(x, x + n * in);
  });
  KvCache cache(config, 32);
  model.forward(tokens, cache, nullptr, false);
  const auto from_forward = seen;
  ASSERT_EQ(from_forward.size(), 14u);

  seen.clear();
  std::vector<float> x(tokens.size() * config.hidden_size);
  model.embed(tokens, x.data());
  for (int64_t layer = 0; layer < model.num_blocks(); ++layer)
    model.forward_block(layer, x.data(), static_cast<int64_t>(tokens.size()));
  EXPECT_EQ(seen, from_forward);

  // Stopping before a layer: its input is observed, nothing after it runs.
  std::vector<std::string> order;
  model.set_linear_observer([&](const std::string& name, const float*, int64_t, int64_t) { order.push_back(name); });
  model.embed(tokens, x.data());
  model.forward_block(1, x.data(), static_cast<int64_t>(tokens.size()), "model.layers.1.mlp.gate_proj");
  const std::vector<std::string> expected = {"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj",
                                             "model.layers.1.self_attn.v_proj", "model.layers.1.self_attn.o_proj",
                                             "model.layers.1.mlp.gate_proj"};
  EXPECT_EQ(order, expected);
  EXPECT_THROW(model.forward_block(0, x.data(), 3, "model.layers.1.mlp.up_proj"), Error);
  EXPECT_THROW(model.forward_block(2, x.data(), 3), Error);
}

// A linear factory replaces chosen layers at construction; a layer of the wrong shape is refused.
TEST(LlamaEngine, LinearFactoryBuildsChosenLayersAndChecksShapes) {
  const LlamaConfig config = awkward_config();
  auto files = std::make_shared<ModelFiles>(open_model(write_random_model(config, DType::kF32)));
  const std::string name = "model.layers.0.mlp.down_proj";
  const LlamaModel model(files, [&](const std::string& n) -> std::unique_ptr<LinearLayer> {
    if (n != name) return nullptr;
    return std::make_unique<DenseLinear>(Tensor::zeros(DType::kF32, {config.hidden_size, config.intermediate_size}));
  });
  EXPECT_EQ(dynamic_cast<const DenseLinear&>(model.linear(name)).weight().to_f32_vector(),
            std::vector<float>(config.hidden_size * config.intermediate_size, 0.0f));
  EXPECT_THROW(LlamaModel(files, [&](const std::string& n) -> std::unique_ptr<LinearLayer> {
                 if (n != name) return nullptr;
                 return std::make_unique<DenseLinear>(Tensor::zeros(DType::kF32, {config.intermediate_size, config.hidden_size}));
               }),
               Error);
}

class Stories260K : public ::testing::TestWithParam<const char*> {};

TEST_P(Stories260K, GreedyFromBosReproducesReferenceText) {
  LOWBIT_REQUIRE_SHARED(shared);
  auto files = std::make_shared<ModelFiles>(open_model(shared + "/models/stories260K/" + GetParam()));
  const auto tokenizer = load_tokenizer(*files);
  const LlamaModel model(files);
  GenerationOptions options;
  options.max_new_tokens = 60;
  std::vector<int32_t> prompt = {1};
  const auto result = generate(model, prompt, options, tokenizer->eos_id(), nullptr);
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), result.tokens.begin(), result.tokens.end());
  EXPECT_EQ(tokenizer->decode(all),
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
            "she saw a big, red ball. She wanted to play with it, but it was too high");
}

TEST_P(Stories260K, ReferencePerplexityOfFirst512Tokens) {
  LOWBIT_REQUIRE_SHARED(shared);
  auto files = std::make_shared<ModelFiles>(open_model(shared + "/models/stories260K/" + GetParam()));
  const auto tokenizer = load_tokenizer(*files);
  const LlamaModel model(files);
  std::ifstream in(shared + "/data/tinystories/tinystories_val.txt", std::ios::binary);
  std::string text(4000, '\0');
  in.read(text.data(), 4000);
  auto ids = tokenizer->encode(text, true);
  ASSERT_GE(ids.size(), 512u);
  ids.resize(512);
  const auto result = evaluate_sequence(model, ids);
  EXPECT_EQ(result.tokens_scored, 511);
  EXPECT_NEAR(result.mean_nll, 1.3112137, 1e-4);
  EXPECT_NEAR(result.perplexity, 3.7106748, 4e-4);
  // An f16 KV cache (--kv-cache f16) moves the perplexity only by the keys' and values' rounding.
  set_kv_cache_dtype(DType::kF16);
  const auto half = evaluate_sequence(model, ids);
  set_kv_cache_dtype(DType::kF32);
  EXPECT_NE(half.mean_nll, result.mean_nll);
  EXPECT_NEAR(half.perplexity, 3.7106748, 4e-4);
}

// Three independent encodings of the same weights: HF safetensors, llama2.c and GGUF v1 (Meta
// layout, an untied copy of the output head, its own SentencePiece-style vocabulary).
INSTANTIATE_TEST_SUITE_P(EveryEncoding, Stories260K,
                         ::testing::Values("hf", "llama2c/stories260K.bin", "gguf-v1/tinyllamas-stories-260k-f32.gguf"),
                         [](const auto& info) { return std::string(info.index == 0 ? "hf" : info.index == 1 ? "llama2c" : "gguf"); });

}  // namespace
}  // namespace lowbit
