#include "lowbit/model/llama.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <numbers>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/kernels/decode_attention.h"
#include "lowbit/linalg/blas.h"

namespace lowbit {

namespace {
std::atomic<DType> g_kv_cache_dtype{DType::kF32};

void require_cache_dtype(DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kF16)
    throw Error("KV cache", "elements must be F32 or F16, not " + std::string(dtype_name(dtype)));
}
}  // namespace

void set_kv_cache_dtype(DType dtype) {
  require_cache_dtype(dtype);
  g_kv_cache_dtype = dtype;
}
DType kv_cache_dtype() { return g_kv_cache_dtype; }

KvCache::KvCache(const LlamaConfig& config, int64_t capacity, DType dtype)
    : capacity_(capacity), kv_dim_(config.kv_dim()), dtype_(dtype) {
  if (capacity <= 0) throw Error("KV cache capacity must be positive");
  require_cache_dtype(dtype);
  const size_t bytes = static_cast<size_t>(capacity * kv_dim_) * dtype_size(dtype);
  keys_.assign(static_cast<size_t>(config.num_hidden_layers), std::vector<uint8_t>(bytes));
  values_ = keys_;
}

int64_t KvCache::bytes() const {
  return 2 * static_cast<int64_t>(keys_.size()) * capacity_ * kv_dim_ * static_cast<int64_t>(dtype_size(dtype_));
}

std::vector<float> rope_inverse_frequencies(const LlamaConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
    if (c.rope_scaling && c.rope_scaling->type == "llama3") {
      // Llama 3.1: keep high frequencies, divide low ones by `factor`, blend in between.
      const auto& s = *c.rope_scaling;
      const double wavelength = 2 * std::numbers::pi / f;
      const double low_wavelength = s.original_max_position_embeddings / s.low_freq_factor;
      const double high_wavelength = s.original_max_position_embeddings / s.high_freq_factor;
      if (wavelength > low_wavelength) {
        f /= s.factor;
      } else if (wavelength >= high_wavelength) {
        const double smooth = (s.original_max_position_embeddings / wavelength - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    inv[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return inv;
}

namespace {

// The output head of a model with tied embeddings: the embedding table used as a linear layer
// (shared, so a compressed embedding is stored and resident once).
class TiedHead final : public LinearLayer {
 public:
  explicit TiedHead(std::shared_ptr<const LinearLayer> embedding) : embedding_(std::move(embedding)) {}
  int64_t in_features() const override { return embedding_->in_features(); }
  int64_t out_features() const override { return embedding_->out_features(); }
  void forward(const float* x, int64_t tokens, float* y) const override { embedding_->forward(x, tokens, y); }
  uint64_t weight_bytes() const override { return embedding_->weight_bytes(); }
  void weight_row(int64_t row, float* out) const override { embedding_->weight_row(row, out); }

 private:
  std::shared_ptr<const LinearLayer> embedding_;
};

// The linear layers of one block, in execution order.
constexpr const char* kBlockLinears[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                         "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

// RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x²) + eps) · g, accumulated in double.
void rms_norm(const float* x, const float* gain, int64_t n, double eps, float* out) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * gain[i];
}

// rotate_half RoPE on one head vector: (x_i, x_{i+d/2}) rotated by pos·inv_freq_i.
void apply_rope(float* v, int64_t head_dim, const float* inv_freq, int64_t position) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(position) * inv_freq[i];
    const float c = std::cos(angle), s = std::sin(angle);
    const float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

}  // namespace

LlamaModel::LlamaModel(std::shared_ptr<const ModelFiles> files, const LinearFactory& make_linear)
    : files_(std::move(files)) {
  if (!files_->config) throw Error(files_->path, "no config.json: cannot run a model without its architecture");
  config_ = *files_->config;
  auto tensor = [&](const std::string& name) -> const Tensor& {
    const Tensor* found = files_->find(name);
    if (!found) throw Error(files_->path, "missing tensor '" + name + "'");
    return *found;
  };
  auto optional_tensor = [&](const std::string& name) -> std::optional<Tensor> {
    const Tensor* found = files_->find(name);
    return found ? std::optional<Tensor>(*found) : std::nullopt;
  };
  auto build_linear = [&](const std::string& name) -> std::unique_ptr<LinearLayer> {
    if (make_linear)
      if (auto layer = make_linear(name)) return layer;
    return std::make_unique<DenseLinear>(tensor(name + ".weight"), optional_tensor(name + ".bias"));
  };
  // The embedding is a table of rows; stored compressed, the factory gives it as a layer whose
  // weight rows are looked up (and which, tied, is the output head as well).
  std::shared_ptr<LinearLayer> embedding = make_linear ? make_linear("model.embed_tokens") : nullptr;
  if (!embedding) embedding = std::make_shared<DenseLinear>(tensor("model.embed_tokens.weight"));
  if (embedding->out_features() != config_.vocab_size || embedding->in_features() != config_.hidden_size)
    throw Error(files_->path, "the embedding has shape [" + std::to_string(embedding->out_features()) + ", " +
                                  std::to_string(embedding->in_features()) + "], expected [" +
                                  std::to_string(config_.vocab_size) + ", " + std::to_string(config_.hidden_size) + "]");
  embedding_ = embedding;
  final_norm_ = tensor("model.norm.weight").to_f32_vector();
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    Block block;
    block.prefix = "model.layers." + std::to_string(l) + ".";
    block.attn_norm = tensor(block.prefix + "input_layernorm.weight").to_f32_vector();
    block.ffn_norm = tensor(block.prefix + "post_attention_layernorm.weight").to_f32_vector();
    for (const char* name : kBlockLinears) {
      const std::string full = block.prefix + name;
      linears_[full] = build_linear(full);
    }
    blocks_.push_back(std::move(block));
  }
  std::unique_ptr<LinearLayer> head_layer = make_linear ? make_linear("lm_head") : nullptr;
  if (!head_layer) {
    const Tensor* head = files_->find("lm_head.weight");
    if (head && !config_.tie_word_embeddings) head_layer = std::make_unique<DenseLinear>(*head);
    else head_layer = std::make_unique<TiedHead>(embedding);
  }
  linears_["lm_head"] = std::move(head_layer);
  // A factory may build layers of any shape: check them against the config here, once.
  const int64_t d = config_.hidden_size, ff = config_.intermediate_size;
  for (const auto& [name, layer] : linears_) {
    int64_t in = d, out = d;
    if (name.ends_with("q_proj")) out = config_.q_dim();
    if (name.ends_with("k_proj") || name.ends_with("v_proj")) out = config_.kv_dim();
    if (name.ends_with("o_proj")) in = config_.q_dim();
    if (name.ends_with("gate_proj") || name.ends_with("up_proj")) out = ff;
    if (name.ends_with("down_proj")) in = ff;
    if (name == "lm_head") out = config_.vocab_size;
    if (layer->in_features() != in || layer->out_features() != out)
      throw Error(files_->path, "linear layer '" + name + "' has shape [" + std::to_string(layer->out_features()) +
                                    ", " + std::to_string(layer->in_features()) + "], expected [" +
                                    std::to_string(out) + ", " + std::to_string(in) + "]");
  }
  inv_freq_ = rope_inverse_frequencies(config_);
}

std::vector<std::string> LlamaModel::block_linear_names(int64_t layer) const {
  if (layer < 0 || layer >= num_blocks())
    throw Error("block " + std::to_string(layer) + " outside the model's " + std::to_string(num_blocks()) + " blocks");
  std::vector<std::string> names;
  for (const char* name : kBlockLinears) names.push_back(blocks_[static_cast<size_t>(layer)].prefix + name);
  return names;
}

std::span<float> LlamaModel::norm_gain(int64_t layer, BlockNorm which) {
  if (layer < 0 || layer >= num_blocks())
    throw Error("block " + std::to_string(layer) + " outside the model's " + std::to_string(num_blocks()) + " blocks");
  Block& block = blocks_[static_cast<size_t>(layer)];
  return which == BlockNorm::kAttention ? std::span<float>(block.attn_norm) : std::span<float>(block.ffn_norm);
}

std::vector<std::string> LlamaModel::linear_names() const {
  std::vector<std::string> names;
  for (const auto& block : blocks_)
    for (const char* name : kBlockLinears) names.push_back(block.prefix + name);
  names.push_back("lm_head");
  return names;
}

const LinearLayer& LlamaModel::linear(const std::string& name) const {
  const auto it = linears_.find(name);
  if (it == linears_.end()) throw Error("no linear layer named '" + name + "'");
  return *it->second;
}

void LlamaModel::replace_linear(const std::string& name, std::unique_ptr<LinearLayer> layer) {
  const auto it = linears_.find(name);
  if (it == linears_.end()) throw Error("no linear layer named '" + name + "'");
  if (layer->in_features() != it->second->in_features() || layer->out_features() != it->second->out_features())
    throw Error("replacement for '" + name + "' has shape [" + std::to_string(layer->out_features()) + ", " +
                std::to_string(layer->in_features()) + "], expected [" + std::to_string(it->second->out_features()) +
                ", " + std::to_string(it->second->in_features()) + "]");
  it->second = std::move(layer);
}

uint64_t LlamaModel::weight_bytes_per_token() const {
  uint64_t total = 0;
  for (const auto& [name, layer] : linears_) total += layer->weight_bytes();
  return total + embedding_->weight_bytes() / static_cast<uint64_t>(config_.vocab_size);  // one row
}

void LlamaModel::run_linear(const std::string& name, const float* x, int64_t tokens, float* y) const {
  const LinearLayer& layer = *linears_.at(name);
  if (observer_) observer_(name, x, tokens, layer.in_features());
  layer.forward(x, tokens, y);
}

namespace {
// row[0 .. n) ← softmax(row): exp(v − max) summed in double, then each times the float inverse.
void softmax_in_place(float* row, int64_t n) {
  float max_score = -INFINITY;
  for (int64_t p = 0; p < n; ++p) max_score = std::max(max_score, row[p]);
  double total = 0;
  for (int64_t p = 0; p < n; ++p) {
    row[p] = std::exp(row[p] - max_score);
    total += row[p];
  }
  const float inverse = static_cast<float>(1.0 / total);
  for (int64_t p = 0; p < n; ++p) row[p] *= inverse;
}
}  // namespace

void LlamaModel::attention(const float* q, const KvRows& kv, int64_t start, int64_t tokens, float* out) const {
  const int64_t heads = config_.num_attention_heads, head_dim = config_.head_dim, kv_dim = config_.kv_dim();
  const int64_t group = heads / config_.num_key_value_heads, q_dim = config_.q_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  if (tokens > 1) {
    // sgemm reads f32: an f16 cache's rows [0, start + tokens) are widened into scratch first (the
    // same rounded values decode reads).
    const float* keys = static_cast<const float*>(kv.keys);
    const float* values = static_cast<const float*>(kv.values);
    thread_local std::vector<float> wide_keys, wide_values;
    if (kv.dtype == DType::kF16) {
      const size_t count = static_cast<size_t>((start + tokens) * kv_dim);
      wide_keys.resize(count);
      wide_values.resize(count);
      convert_f16_to_f32(static_cast<const uint16_t*>(kv.keys), wide_keys.data(), count);
      convert_f16_to_f32(static_cast<const uint16_t*>(kv.values), wide_values.data(), count);
      keys = wide_keys.data();
      values = wide_values.data();
    }
    // Prefill: one work item per (head, tile of up to kQueryTile consecutive queries), its scores
    // S = scale · Q_tile · Kᵀ and output P · V as two sgemm calls over every key the tile's last query
    // sees (the causal rest masked to weight 0), softmax in between. Against one (token, head) at a
    // time with a 64-wide dot per score, this is what made SmolLM2's 512-token prefill attention-bound
    // once the int8 GEMM sped up the linear layers. Fixed items and single-threaded BLAS inside them, so
    // the result does not depend on the thread count.
    constexpr int64_t kQueryTile = 16;
    const int64_t tiles = (tokens + kQueryTile - 1) / kQueryTile;
    parallel_for(heads * tiles, 1, [&](int64_t begin, int64_t end) {
      thread_local std::vector<float> scores;
      for (int64_t item = begin; item < end; ++item) {
        const int64_t h = item / tiles, t0 = item % tiles * kQueryTile;
        const int64_t m = std::min(kQueryTile, tokens - t0), keys_seen = start + t0 + m;
        const int64_t kv_head = h / group;
        scores.resize(static_cast<size_t>(m * keys_seen));
        gemm_f32(false, true, m, keys_seen, head_dim, scale, q + t0 * q_dim + h * head_dim, q_dim,
                 keys + kv_head * head_dim, kv_dim, 0.0f, scores.data(), keys_seen);
        for (int64_t i = 0; i < m; ++i) {
          float* row = scores.data() + i * keys_seen;
          const int64_t visible = start + t0 + i + 1;  // positions 0 .. start + t0 + i
          softmax_in_place(row, visible);
          std::fill(row + visible, row + keys_seen, 0.0f);
        }
        gemm_f32(false, false, m, head_dim, keys_seen, 1.0f, scores.data(), keys_seen, values + kv_head * head_dim,
                 kv_dim, 0.0f, out + t0 * q_dim + h * head_dim, q_dim);
      }
    });
    return;
  }
  // Decode (one query): one work item per (KV head, chunk of kDecodeChunk positions), each reading
  // its keys and values once for the KV head's query heads and returning partial softmaxes, merged
  // per head in chunk order (kernels/decode_attention.h). Fixed items, so the result does not
  // depend on the thread count; chunks spread a long context over the threads even with few KV heads.
  constexpr int64_t kDecodeChunk = 64;
  const int64_t positions = start + 1, chunks = (positions + kDecodeChunk - 1) / kDecodeChunk;
  const int64_t kv_heads = config_.num_key_value_heads, items = kv_heads * chunks;
  thread_local std::vector<float> max_score, sum, partial;  // [item][group] and [item][group][head_dim]
  max_score.resize(static_cast<size_t>(items * group));
  sum.resize(static_cast<size_t>(items * group));
  partial.resize(static_cast<size_t>(items * group * head_dim));
  float* max_out = max_score.data();
  float* sum_out = sum.data();
  float* partial_out = partial.data();
  parallel_for(items, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(group * kDecodeChunk));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t kv_head = item / chunks, p0 = item % chunks * kDecodeChunk;
      AttentionChunk c;
      c.q = q + kv_head * group * head_dim;
      const size_t at = static_cast<size_t>(p0 * kv_dim + kv_head * head_dim) * dtype_size(kv.dtype);
      c.keys = static_cast<const uint8_t*>(kv.keys) + at;
      c.values = static_cast<const uint8_t*>(kv.values) + at;
      c.dtype = kv.dtype;
      c.stride = kv_dim;
      c.positions = std::min(kDecodeChunk, positions - p0);
      c.group = group;
      c.head_dim = head_dim;
      c.scale = scale;
      attention_chunk(c, scores.data(), max_out + item * group, sum_out + item * group,
                      partial_out + item * group * head_dim);
    }
  });
  thread_local std::vector<float> head_max, head_sum;  // one head's chunks
  head_max.resize(static_cast<size_t>(chunks));
  head_sum.resize(static_cast<size_t>(chunks));
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t kv_head = h / group, j = h % group;
    for (int64_t k = 0; k < chunks; ++k) {
      head_max[k] = max_score[(kv_head * chunks + k) * group + j];
      head_sum[k] = sum[(kv_head * chunks + k) * group + j];
    }
    attention_merge(head_max.data(), head_sum.data(), partial.data() + (kv_head * chunks * group + j) * head_dim,
                    group * head_dim, chunks, head_dim, out + h * head_dim);
  }
}

void LlamaModel::embed(std::span<const int32_t> tokens, float* x) const {
  const int64_t d = config_.hidden_size;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int32_t id = tokens[t];
    if (id < 0 || id >= config_.vocab_size)
      throw Error("token id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(config_.vocab_size));
    embedding_->weight_row(id, x + static_cast<int64_t>(t) * d);
  }
}

void LlamaModel::run_block(size_t layer, float* xp, int64_t n, int64_t start, const KvRows& kv, int stop_index) const {
  const int64_t d = config_.hidden_size, q_dim = config_.q_dim(), kv_dim = config_.kv_dim();
  const int64_t ff = config_.intermediate_size, head_dim = config_.head_dim;
  const Block& block = blocks_[layer];
  const std::span<float> x(xp, static_cast<size_t>(n * d));
  // Scratch reused across blocks and calls (a 512-token SmolLM2 prefill allocated ~12 MB per block,
  // fresh zeroed pages each time); every element is written before it is read.
  struct Scratch {
    std::vector<float> h, attn, q, k, v, projected, gate, up;
  };
  // One scratch per nesting level: an observer may run blocks of its own (calibration searches).
  thread_local std::vector<std::unique_ptr<Scratch>> pool;
  thread_local size_t depth = 0;
  struct Level {
    Level() { ++depth; }
    ~Level() { --depth; }
  } level;
  if (pool.size() < depth) pool.push_back(std::make_unique<Scratch>());
  Scratch& scratch = *pool[depth - 1];
  const auto take = [](std::vector<float>& buffer, int64_t size) {
    if (buffer.size() < static_cast<size_t>(size)) buffer.resize(static_cast<size_t>(size));
    return std::span<float>(buffer.data(), static_cast<size_t>(size));
  };
  const std::span<float> h = take(scratch.h, n * d), attn = take(scratch.attn, n * q_dim), q = take(scratch.q, n * q_dim);
  const std::span<float> k = take(scratch.k, n * kv_dim), v = take(scratch.v, n * kv_dim);
  // Observes linear number `index` and reports whether the block stops there.
  auto stops_at = [&](int index, const float* input, int64_t in) {
    if (index != stop_index) return false;
    if (observer_) observer_(block.prefix + kBlockLinears[index], input, n, in);
    return true;
  };

  // One token of a whole block (decode): layers that read the same input run in one parallel region
  // where they can (LinearLayer::forward_token_together: the same bits; SmolLM2's layers are small
  // enough that a region's fork/join weighs against its work).
  const bool together = n == 1 && !observer_ && stop_index == 7;
  const auto run_together = [&](std::initializer_list<const char*> suffixes, const float* in,
                                std::initializer_list<float*> outs) {
    const LinearLayer* layers[4];
    size_t count = 0;
    for (const char* suffix : suffixes) layers[count++] = linears_.at(block.prefix + suffix).get();
    return together && layers[0]->forward_token_together({layers, count}, in, {outs.begin(), outs.size()});
  };

  for (int64_t t = 0; t < n; ++t) rms_norm(&x[t * d], block.attn_norm.data(), d, config_.rms_norm_eps, &h[t * d]);
  if (!run_together({"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}, h.data(),
                    {q.data(), k.data(), v.data()})) {
    if (stops_at(0, h.data(), d)) return;
    run_linear(block.prefix + "self_attn.q_proj", h.data(), n, q.data());
    if (stops_at(1, h.data(), d)) return;
    run_linear(block.prefix + "self_attn.k_proj", h.data(), n, k.data());
    if (stops_at(2, h.data(), d)) return;
    run_linear(block.prefix + "self_attn.v_proj", h.data(), n, v.data());
  }
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t head = 0; head < config_.num_attention_heads; ++head)
      apply_rope(&q[t * q_dim + head * head_dim], head_dim, inv_freq_.data(), start + t);
    for (int64_t head = 0; head < config_.num_key_value_heads; ++head)
      apply_rope(&k[t * kv_dim + head * head_dim], head_dim, inv_freq_.data(), start + t);
  }
  if (kv.dtype == DType::kF16) {  // rounded once, here; every later read sees the same f16 values
    convert_f32_to_f16(k.data(), static_cast<uint16_t*>(kv.keys) + start * kv_dim, k.size());
    convert_f32_to_f16(v.data(), static_cast<uint16_t*>(kv.values) + start * kv_dim, v.size());
  } else {
    std::copy(k.begin(), k.end(), static_cast<float*>(kv.keys) + start * kv_dim);
    std::copy(v.begin(), v.end(), static_cast<float*>(kv.values) + start * kv_dim);
  }
  attention(q.data(), kv, start, n, attn.data());
  if (stops_at(3, attn.data(), q_dim)) return;
  const std::span<float> projected = take(scratch.projected, n * d);
  run_linear(block.prefix + "self_attn.o_proj", attn.data(), n, projected.data());
  for (size_t i = 0; i < x.size(); ++i) x[i] += projected[i];

  for (int64_t t = 0; t < n; ++t) rms_norm(&x[t * d], block.ffn_norm.data(), d, config_.rms_norm_eps, &h[t * d]);
  if (stops_at(4, h.data(), d)) return;
  const std::span<float> gate = take(scratch.gate, n * ff), up = take(scratch.up, n * ff);
  if (!run_together({"mlp.gate_proj", "mlp.up_proj"}, h.data(), {gate.data(), up.data()})) {
    run_linear(block.prefix + "mlp.gate_proj", h.data(), n, gate.data());
    if (stops_at(5, h.data(), d)) return;
    run_linear(block.prefix + "mlp.up_proj", h.data(), n, up.data());
  }
  for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];  // SiLU(g)·u
  if (stops_at(6, gate.data(), ff)) return;
  run_linear(block.prefix + "mlp.down_proj", gate.data(), n, projected.data());
  for (size_t i = 0; i < x.size(); ++i) x[i] += projected[i];
}

void LlamaModel::final_norm(const float* x, int64_t tokens, float* out) const {
  const int64_t d = config_.hidden_size;
  for (int64_t t = 0; t < tokens; ++t) rms_norm(x + t * d, final_norm_.data(), d, config_.rms_norm_eps, out + t * d);
}

void LlamaModel::forward_block(int64_t layer, float* x, int64_t tokens, const std::string& stop_before) const {
  if (layer < 0 || layer >= num_blocks())
    throw Error("block " + std::to_string(layer) + " outside the model's " + std::to_string(num_blocks()) + " blocks");
  int stop_index = 7;
  if (!stop_before.empty()) {
    const std::string& prefix = blocks_[static_cast<size_t>(layer)].prefix;
    stop_index = -1;
    for (int i = 0; i < 7; ++i)
      if (stop_before == prefix + kBlockLinears[i]) stop_index = i;
    if (stop_index < 0) throw Error("'" + stop_before + "' is not a linear layer of block " + std::to_string(layer));
  }
  if (tokens <= 0) return;
  std::vector<float> keys(static_cast<size_t>(tokens * config_.kv_dim())), values(keys.size());
  run_block(static_cast<size_t>(layer), x, tokens, 0, KvRows{keys.data(), values.data(), DType::kF32}, stop_index);
}

void LlamaModel::forward(std::span<const int32_t> tokens, KvCache& cache, float* logits, bool all_logits) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return;
  const int64_t start = cache.length();
  if (start + n > cache.capacity())
    throw Error("sequence of " + std::to_string(start + n) + " tokens exceeds the context of " +
                std::to_string(cache.capacity()));
  const int64_t d = config_.hidden_size;
  std::vector<float> x(static_cast<size_t>(n * d)), h(x.size());
  embed(tokens, x.data());
  for (size_t layer = 0; layer < blocks_.size(); ++layer)
    run_block(layer, x.data(), n, start, KvRows{cache.keys_[layer].data(), cache.values_[layer].data(), cache.dtype_}, 7);
  cache.length_ = start + n;

  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  for (int64_t t = first; t < n; ++t) rms_norm(&x[t * d], final_norm_.data(), d, config_.rms_norm_eps, &h[(t - first) * d]);
  if (logits) run_linear("lm_head", h.data(), rows, logits);
}

}  // namespace lowbit
