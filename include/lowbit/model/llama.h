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

// The element type of KV caches built without an explicit one (the CLI's --kv-cache): kF32 (the
// default: attention reads exactly the keys and values the layers computed) or kF16 (half the bytes
// a long-context decode step reads, as llama.cpp's default cache; keys and values rounded to f16
// once, when written, and read so by prefill and decode alike). Error for other dtypes.
void set_kv_cache_dtype(DType dtype);
DType kv_cache_dtype();

// Keys and values of every block for positions [0, length).
class KvCache {
 public:
  KvCache(const LlamaConfig& config, int64_t capacity, DType dtype = kv_cache_dtype());
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  DType dtype() const { return dtype_; }
  int64_t bytes() const;  // what the cache holds in memory
  void clear() { length_ = 0; }

 private:
  friend class LlamaModel;
  int64_t capacity_ = 0, length_ = 0, kv_dim_ = 0;
  DType dtype_ = DType::kF32;
  std::vector<std::vector<uint8_t>> keys_, values_;  // per block: [capacity, kv_dim] of dtype_
};

class LlamaModel {
 public:
  // Builds a linear layer for a name (see linear_names()), or returns nullptr for the default:
  // a DenseLinear over "<name>.weight" (+ ".bias"). How quantized model files plug in.
  using LinearFactory = std::function<std::unique_ptr<LinearLayer>(const std::string& name)>;

  // Builds the model over `files`' tensors (views stay valid: the model keeps `files`).
  explicit LlamaModel(std::shared_ptr<const ModelFiles> files, const LinearFactory& make_linear = {});

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

  // --- Block-level access, for layer-sequential calibration (src/pipeline) ---
  int64_t num_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  // The block's seven linear layers in execution order: q, k, v, o, gate, up, down.
  std::vector<std::string> block_linear_names(int64_t layer) const;
  // The embedding table as a layer (its rows are looked up; tied, it is also the output head).
  const LinearLayer& embedding() const { return *embedding_; }
  // x [tokens, hidden] = the embeddings of `tokens`.
  void embed(std::span<const int32_t> tokens, float* x) const;
  // Runs block `layer` in place on one sequence x [tokens, hidden] at positions 0..tokens-1 (no
  // cache; the observer sees each linear's input as in forward()). With `stop_before` naming one of
  // the block's linears, returns as soon as that layer's input has been computed and observed,
  // without running it; x is then left unspecified. Same arithmetic as forward().
  void forward_block(int64_t layer, float* x, int64_t tokens, const std::string& stop_before = "") const;
  // The output head's input: the final RMSNorm of x [tokens, hidden] into out [tokens, hidden].
  void final_norm(const float* x, int64_t tokens, float* out) const;
  // The RMSNorm gains in front of the attention (q/k/v) and the MLP (gate/up) of a block: mutable,
  // so that equivalence transforms (AWQ scales) can be folded into them.
  enum class BlockNorm { kAttention, kMlp };
  std::span<float> norm_gain(int64_t layer, BlockNorm which);

 private:
  struct Block {
    std::vector<float> attn_norm, ffn_norm;
    std::string prefix;
  };
  void run_linear(const std::string& name, const float* x, int64_t tokens, float* y) const;
  // One layer's cache rows: [capacity, kv_dim] keys and values of `dtype` (kF32 or kF16).
  struct KvRows {
    void* keys = nullptr;
    void* values = nullptr;
    DType dtype = DType::kF32;
  };
  // One block on x [tokens, hidden] at positions start..start+tokens-1; `kv` holds the layer's
  // cache rows (positions < start already filled). Stops before the block's linear number
  // `stop_index` (0..6; 7 runs the whole block).
  void run_block(size_t layer, float* x, int64_t tokens, int64_t start, const KvRows& kv, int stop_index) const;
  void attention(const float* q, const KvRows& kv, int64_t start, int64_t tokens, float* out) const;

  std::shared_ptr<const ModelFiles> files_;
  LlamaConfig config_;
  std::shared_ptr<const LinearLayer> embedding_;  // rows looked up by token id
  std::vector<float> final_norm_;
  std::vector<Block> blocks_;
  std::map<std::string, std::unique_ptr<LinearLayer>> linears_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  LinearObserver observer_;
};

// RoPE inverse frequencies θ^(-2i/d), with Llama 3's frequency-dependent scaling when configured.
std::vector<float> rope_inverse_frequencies(const LlamaConfig& config);

}  // namespace lowbit
