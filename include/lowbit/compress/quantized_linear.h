// A linear layer whose weight is a QuantizedTensor: what quantized model files load into
// (pipeline/quantized_model.h) and what calibration swaps in after quantizing a layer.
//
// One token (decode) on integer grids without g_idx (kernels/packed_gemv.h: packed_gemv_supported)
// runs the packed GEMV by default: codes, scales and zero points read as stored, over fixed tiles
// of 64 output rows, so a 4-bit layer reads ~1/8 of the bytes an f32 copy would. Its result is
// within a few f32 ulps of Σ|W·x| of DenseLinear over the dequantized matrix, not bit-equal
// (different rounding order), so decode logits agree with the dequantized dense model to a
// tolerance, not bit for bit.
//
// Several tokens (prefill), layouts the kernel does not handle (lookup grids such as NF4,
// minifloats, g_idx), and packed_decode = false take the dequantized path: fixed tiles of 64
// rows dequantized into a thread-local f32 buffer, then exactly what DenseLinear does for f32
// weights over that tile (cblas_sgemm for several tokens, the fused GEMV kernel for one). That
// path equals a DenseLinear over the dequantized matrix bit for bit; packed_decode = false is
// kept so tests (and comparisons) can ask for it on one token too.
//
// Int8 activations (set_activation_precision(kInt8), the CLI's --activations int8): one token on a
// layout with an int8 kernel (kernels/int8_gemv.h: 4-/8-bit integer grids, groups of multiples of
// 32) is rounded to int8 per 32 columns and multiplied with integer dot products instead, what ggml
// does for its block types; the result is W·x̂ for the rounded x̂, so it differs from the f32 path by
// the activation rounding. Several tokens on a layout with an int8 GEMM (kernels/int8_gemm.h: every
// 4-bit grid, 8-bit two's complement) are rounded alike and run through it (rows of 16 in the SIMD
// lanes, panels repacked per call): each token's result is W·x̂ again, differing from the one-token
// kernel's only in f32 rounding order. Other layouts keep
// f32. Process-wide, like the thread count.
//
// Either way work is split over fixed row tiles and each row's sum is formed independently of
// the split, so the output is the same for any thread count. No whole-matrix f32 copy is made.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/model/linear.h"

namespace lowbit {

// How one token's activations meet packed weights (see above). Default kF32.
enum class ActivationPrecision { kF32, kInt8 };
void set_activation_precision(ActivationPrecision activations);
ActivationPrecision activation_precision();

class QuantizedLinear final : public LinearLayer {
 public:
  // bias: empty, or one value per output row (else Error). packed_decode: one token uses the
  // packed GEMV where the layout allows (see above); false forces the dequantized path.
  explicit QuantizedLinear(std::shared_ptr<const QuantizedTensor> weight, std::vector<float> bias = {},
                           bool packed_decode = true);

  int64_t in_features() const override { return weight_->cols(); }
  int64_t out_features() const override { return weight_->rows(); }
  void forward(const float* x, int64_t tokens, float* y) const override;
  // The stored bytes (codes, scales, zero points, g_idx): what the packed kernel reads.
  uint64_t weight_bytes() const override { return static_cast<uint64_t>(weight_->storage_bytes()); }
  void weight_row(int64_t row, float* out) const override { weight_->dequantize_row(row, {out, static_cast<size_t>(weight_->cols())}); }

  const QuantizedTensor& tensor() const { return *weight_; }
  const std::shared_ptr<const QuantizedTensor>& shared_tensor() const { return weight_; }
  const std::vector<float>& bias() const { return bias_; }
  // Whether one token runs the packed GEMV: requested (the default) and packed_gemv_supported(tensor()).
  bool packed_decode() const { return packed_; }
  // Whether one token runs the int8 GEMV under ActivationPrecision::kInt8 (packed and int8_gemv_supported).
  bool int8_decode() const { return int8_; }
  // Whether several tokens run the int8 GEMM under ActivationPrecision::kInt8 (packed and int8_gemm_supported).
  bool int8_prefill() const { return int8_prefill_; }

  // LinearLayer::forward_token_together for up to 4 QuantizedLinear layers: each layer's x is prepared,
  // then the layers' output rows, taken as one range, are split over the threads. Every row is computed
  // exactly as by forward (rows are independent of the split), so the outputs are the same bits. False
  // unless every layer is a QuantizedLinear running the packed or int8 GEMV for one token under the
  // current setting.
  bool forward_token_together(std::span<const LinearLayer* const> layers, const float* x,
                              std::span<float* const> y) const override;

 private:
  // Dequantized f32 tiles, then sgemm (several tokens) or the dense GEMV (one); no bias.
  void dequantized_forward(const float* x, int64_t tokens, float* y) const;

  std::shared_ptr<const QuantizedTensor> weight_;
  std::vector<float> bias_;
  bool packed_ = false;  // one token reads the packed codes (requested and supported)
  bool int8_ = false;    // ... and has an int8-activation kernel
  bool int8_prefill_ = false;  // ... and an int8-activation GEMM for several tokens
};

}  // namespace lowbit
