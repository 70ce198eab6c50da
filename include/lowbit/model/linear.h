// Linear layers of the engine: y[t, o] = Σ_i x[t, i] · W[o, i] (+ b[o]), W stored [out, in]
// as in Hugging Face checkpoints.
//
// This is the seam where compression plugs in: the engine only calls LinearLayer, so a
// quantized or sparse implementation replaces a DenseLinear without touching the forward
// pass (LlamaModel::replace_linear), and calibration observes every layer's input
// (LlamaModel::set_linear_observer).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "lowbit/core/tensor.h"

namespace lowbit {

class LinearLayer {
 public:
  virtual ~LinearLayer() = default;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // x: [tokens, in] row-major; y: [tokens, out] row-major (overwritten).
  virtual void forward(const float* x, int64_t tokens, float* y) const = 0;
  // Bytes of weights read per forward (for bandwidth figures).
  virtual uint64_t weight_bytes() const = 0;
  // Row `row` of W as f32 (in_features values), exactly the values forward multiplies with: how a
  // token embedding is looked up when it is stored compressed (and is the tied output head).
  virtual void weight_row(int64_t row, float* out) const = 0;
  // One token through `layers` (this one first) that all read the same x — a block's q/k/v, or
  // gate/up — in one parallel region instead of one per layer, with the same bits as their forward
  // calls. False, having done nothing, where the layers cannot (the default; QuantizedLinear can).
  virtual bool forward_token_together(std::span<const LinearLayer* const> layers, const float* x,
                                      std::span<float* const> y) const {
    return false;
  }
};

// Dense weights as stored (F32, F16 or BF16). F32 weights feed sgemm directly; F16/BF16
// rows are widened per tile of output rows into a thread-local buffer, never as a whole
// copy of the model. Work is split over fixed tiles of output rows, so each output
// element is computed by the same sgemm call whatever the thread count (determinism).
class DenseLinear final : public LinearLayer {
 public:
  explicit DenseLinear(Tensor weight, std::optional<Tensor> bias = std::nullopt);
  int64_t in_features() const override { return in_; }
  int64_t out_features() const override { return out_; }
  void forward(const float* x, int64_t tokens, float* y) const override;
  uint64_t weight_bytes() const override { return weight_.nbytes(); }
  void weight_row(int64_t row, float* out) const override;
  const Tensor& weight() const { return weight_; }
  const std::vector<float>& bias() const { return bias_; }  // empty when the layer has none

 private:
  void add_bias(float* y, int64_t tokens) const;
  Tensor weight_;
  std::vector<float> bias_;
  int64_t in_ = 0, out_ = 0;
};

}  // namespace lowbit
