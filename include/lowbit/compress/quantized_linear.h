// A linear layer whose weight is a QuantizedTensor: what quantized model files load into
// (pipeline/quantized_model.h) and what calibration swaps in after quantizing a layer.
//
// The forward pass dequantizes fixed tiles of 64 output rows into a thread-local f32 buffer
// and then does exactly what DenseLinear does for f32 weights over that tile: cblas_sgemm for
// several tokens, the fused GEMV kernel for one. So its output equals a DenseLinear over the
// dequantized matrix bit for bit, and — work being split over fixed row tiles — is the same for
// any thread count. No whole-matrix f32 copy is ever made (a packed kernel is the kernels issue).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/model/linear.h"

namespace lowbit {

class QuantizedLinear final : public LinearLayer {
 public:
  // bias: empty, or one value per output row (else Error).
  explicit QuantizedLinear(std::shared_ptr<const QuantizedTensor> weight, std::vector<float> bias = {});

  int64_t in_features() const override { return weight_->cols(); }
  int64_t out_features() const override { return weight_->rows(); }
  void forward(const float* x, int64_t tokens, float* y) const override;
  // The stored bytes (codes, scales, zero points, g_idx): what a packed kernel would read.
  uint64_t weight_bytes() const override { return static_cast<uint64_t>(weight_->storage_bytes()); }

  const QuantizedTensor& tensor() const { return *weight_; }
  const std::shared_ptr<const QuantizedTensor>& shared_tensor() const { return weight_; }
  const std::vector<float>& bias() const { return bias_; }

 private:
  std::shared_ptr<const QuantizedTensor> weight_;
  std::vector<float> bias_;
};

}  // namespace lowbit
