// The Llama-family transformer (Llama 1/2/3, Mistral, Qwen2, SmolLM), written out plainly:
//   x = embed[token]
//   per block: h = RMSNorm(x)·g_attn; q,k,v = W_q h (+b), W_k h (+b), W_v h (+b);
//              RoPE on q,k (HF rotate_half pairing (i, i + d/2), θ, optional llama3 scaling);
//              causal grouped-query attention (query head j reads kv head j / (H/H_kv));
//              x += W_o attn;  h = RMSNorm(x)·g_ffn;  x += W_down(SiLU(W_gate h) ⊙ W_up h)
//   logits = W_out RMSNorm(x)·g_final   (W_out = embed when tied)
// Activations are f32; weights stay in their stored dtype (see DenseLinear).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/io/model_files.h"
#include "lowbit/model/linear.h"

namespace lowbit {

// Keys and values of every block for positions [0, length).
class KvCache {
 public:
  KvCache(const LlamaConfig& config, int64_t capacity);
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  void clear() { length_ = 0; }

 private:
  friend class LlamaModel;
  int64_t capacity_ = 0, length_ = 0, kv_dim_ = 0;
  std::vector<std::vector<float>> keys_, values_;  // per block: [capacity, kv_dim]
};

class LlamaModel {
 public:
  // Builds the model over `files`' tensors (views stay valid: the model keeps `files`).
  explicit LlamaModel(std::shared_ptr<const ModelFiles> files);

  const LlamaConfig& config() const { return config_; }
  const ModelFiles& files() const { return *files_; }

  // Runs `tokens` at positions cache.length() ... and appends them to the cache.
  // `logits` receives [tokens.size(), vocab] when `all_logits`, else [1, vocab] for the
  // last token. Error when the cache would overflow or a token id is out of range.
  void forward(std::span<const int32_t> tokens, KvCache& cache, float* logits, bool all_logits) const;

  // Linear layers by Hugging Face name without ".weight", e.g. "model.layers.3.mlp.down_proj",
  // and "lm_head" for the output head.
  std::vector<std::string> linear_names() const;
  const LinearLayer& linear(const std::string& name) const;
  // Swaps in another implementation (e.g. a quantized layer) with the same shape.
  void replace_linear(const std::string& name, std::unique_ptr<LinearLayer> layer);
  // Calibration tap: called with each linear layer's input before it runs.
  using LinearObserver = std::function<void(const std::string& name, const float* x, int64_t tokens, int64_t in)>;
  void set_linear_observer(LinearObserver observer) { observer_ = std::move(observer); }

  // Bytes of weights one decode step reads (all linear layers + one embedding row).
  uint64_t weight_bytes_per_token() const;

 private:
  struct Block {
    std::vector<float> attn_norm, ffn_norm;
    std::string prefix;
  };
  void run_linear(const std::string& name, const float* x, int64_t tokens, float* y) const;
  void attention(size_t layer, const float* q, KvCache& cache, int64_t start, int64_t tokens,
                 float* out) const;

  std::shared_ptr<const ModelFiles> files_;
  LlamaConfig config_;
  Tensor embedding_;
  std::vector<float> final_norm_;
  std::vector<Block> blocks_;
  std::map<std::string, std::unique_ptr<LinearLayer>> linears_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  LinearObserver observer_;
};

// RoPE inverse frequencies θ^(-2i/d), with Llama 3's frequency-dependent scaling when configured.
std::vector<float> rope_inverse_frequencies(const LlamaConfig& config);

}  // namespace lowbit
