// A linear layer whose weight is a QuantizedTensor: what quantized model files load into
// (pipeline/quantized_model.h) and what calibration swaps in after quantizing a layer.
//
// By default the forward pass dequantizes fixed tiles of 64 output rows into a thread-local f32
// buffer and then does exactly what DenseLinear does for f32 weights over that tile: cblas_sgemm
// for several tokens, the fused GEMV kernel for one. So its output equals a DenseLinear over the
// dequantized matrix bit for bit.
//
// With packed_decode (opt-in, constructor), one token (decode) on integer grids without g_idx
// (kernels/packed_gemv.h) instead runs the packed GEMV: codes, scales and zero points read as
// stored, over the same fixed tiles of 64 output rows. That result is within a few f32 ulps of
// Σ|W·x| of DenseLinear over the dequantized matrix, not bit-equal (which is why it is not the
// default yet: model-level tests compare decode logits bit for bit). Several tokens, and layouts
// the kernel does not handle, take the dequantized path either way.
//
// Either way work is split over fixed row tiles and each row's sum is formed independently of
// the split, so the output is the same for any thread count. No whole-matrix f32 copy is made.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/model/linear.h"

namespace lowbit {

class QuantizedLinear final : public LinearLayer {
 public:
  // bias: empty, or one value per output row (else Error). packed_decode: one token uses the
  // packed GEMV where the layout allows (see above).
  explicit QuantizedLinear(std::shared_ptr<const QuantizedTensor> weight, std::vector<float> bias = {},
                           bool packed_decode = false);

  int64_t in_features() const override { return weight_->cols(); }
  int64_t out_features() const override { return weight_->rows(); }
  void forward(const float* x, int64_t tokens, float* y) const override;
  // The stored bytes (codes, scales, zero points, g_idx): what a packed kernel would read.
  uint64_t weight_bytes() const override { return static_cast<uint64_t>(weight_->storage_bytes()); }

  const QuantizedTensor& tensor() const { return *weight_; }
  const std::shared_ptr<const QuantizedTensor>& shared_tensor() const { return weight_; }
  const std::vector<float>& bias() const { return bias_; }
  // Whether one token runs the packed GEMV: requested and packed_gemv_supported(tensor()).
  bool packed_decode() const { return packed_; }

 private:
  // Dequantized f32 tiles, then sgemm (several tokens) or the dense GEMV (one); no bias.
  void dequantized_forward(const float* x, int64_t tokens, float* y) const;

  std::shared_ptr<const QuantizedTensor> weight_;
  std::vector<float> bias_;
  bool packed_ = false;  // one token reads the packed codes (requested and supported)
};

}  // namespace lowbit
