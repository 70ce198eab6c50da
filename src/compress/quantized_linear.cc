#include "lowbit/compress/quantized_linear.h"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <span>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/kernels/dense_gemv.h"
#include "lowbit/kernels/int8_gemm.h"
#include "lowbit/kernels/int8_gemv.h"
#include "lowbit/kernels/packed_gemv.h"
#include "lowbit/linalg/blas.h"

namespace lowbit {

namespace {
// Output rows per work item, as DenseLinear: fixed (never derived from the thread count) so each
// output element comes from the same sgemm/GEMV call whatever --threads is.
constexpr int64_t kRowTile = 64;
std::atomic<ActivationPrecision> g_activation_precision{ActivationPrecision::kF32};

// One token's rows, one contiguous 16-row-aligned range per thread. The decode kernels compute every
// row alone (packed_gemv.h, int8_gemv.h: a row's bits do not depend on how rows are split; tested on
// 1 and 2 threads), so unlike prefill's sgemm tiles this split may follow the thread count. Fixed
// 64-row tiles split SmolLM2's 192- and 576-row layers 2:1 and 5:4 over two threads, and made a
// kernel call per 64 rows of a 49152-row head.
template <class Rows>
void decode_rows(int64_t out, Rows&& rows) {
  const int64_t threads = std::max(1, num_threads());
  const int64_t span = ((out + threads - 1) / threads + 15) / 16 * 16;
  parallel_for((out + span - 1) / span, 1, [&](int64_t begin, int64_t end) {
    rows(begin * span, std::min(out, end * span));
  });
}
}  // namespace

void set_activation_precision(ActivationPrecision activations) { g_activation_precision = activations; }
ActivationPrecision activation_precision() { return g_activation_precision; }

QuantizedLinear::QuantizedLinear(std::shared_ptr<const QuantizedTensor> weight, std::vector<float> bias,
                                 bool packed_decode)
    : weight_(std::move(weight)), bias_(std::move(bias)) {
  require(weight_ != nullptr, "quantized linear", "no weight tensor");
  require(bias_.empty() || static_cast<int64_t>(bias_.size()) == weight_->rows(), "quantized linear",
          "bias has " + std::to_string(bias_.size()) + " values for " + std::to_string(weight_->rows()) + " outputs");
  packed_ = packed_decode && packed_gemv_supported(*weight_);
  int8_ = packed_ && int8_gemv_supported(*weight_);
  int8_prefill_ = packed_ && int8_gemm_supported(*weight_);
  pin_blas_to_one_thread();
}

void QuantizedLinear::forward(const float* x, int64_t tokens, float* y) const {
  const int64_t out = weight_->rows();
  if (tokens <= 0 || out == 0) return;
  const int64_t tiles = (out + kRowTile - 1) / kRowTile;
  if (tokens == 1 && int8_ && activation_precision() == ActivationPrecision::kInt8) {
    // x rounded to int8 once per token, then integer dot products over the same fixed tiles.
    thread_local Int8GemvInput input;
    int8_gemv_prepare(*weight_, x, input);
    const Int8GemvInput& shared = input;
    decode_rows(out, [&](int64_t begin, int64_t end) { int8_gemv_rows(*weight_, shared, begin, end, y); });
  } else if (tokens > 1 && int8_prefill_ && activation_precision() == ActivationPrecision::kInt8) {
    // Prefill: every token rounded once, then each tile's panels run all tokens (int8_gemm.h).
    thread_local Int8GemmInput input;
    int8_gemm_prepare(*weight_, x, tokens, input);
    const Int8GemmInput& shared = input;
    parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
      int8_gemm_rows(*weight_, shared, begin * kRowTile, std::min(out, end * kRowTile), y, out);
    });
  } else if (tokens == 1 && packed_) {
    // Decode: straight from the packed codes; each row's sum does not depend on the tiling.
    // x is prepared once (group sums, permuted order) and shared by every tile.
    thread_local PackedGemvInput input;
    packed_gemv_prepare(*weight_, x, input);
    const PackedGemvInput& shared = input;
    decode_rows(out, [&](int64_t begin, int64_t end) { packed_gemv_rows(*weight_, shared, begin, end, y); });
  } else {
    dequantized_forward(x, tokens, y);
  }
  if (bias_.empty()) return;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < out; ++o) y[t * out + o] += bias_[static_cast<size_t>(o)];
}

bool QuantizedLinear::forward_token_together(std::span<const LinearLayer* const> all, const float* x,
                                             std::span<float* const> y) const {
  constexpr size_t kMaxLayers = 4;
  if (all.empty() || all.size() > kMaxLayers || y.size() != all.size()) return false;
  const bool int8 = activation_precision() == ActivationPrecision::kInt8;
  const QuantizedLinear* layers[kMaxLayers] = {};
  bool use_int8[kMaxLayers] = {};
  int64_t offset[kMaxLayers + 1] = {};
  for (size_t l = 0; l < all.size(); ++l) {
    layers[l] = dynamic_cast<const QuantizedLinear*>(all[l]);
    if (layers[l] == nullptr) return false;
    const QuantizedLinear& layer = *layers[l];
    if (!layer.packed_ || layer.in_features() != all[0]->in_features()) return false;
    use_int8[l] = int8 && layer.int8_;
    offset[l + 1] = offset[l] + layer.out_features();
  }
  // Each layer's prepared x, as forward prepares it (per thread: the calling thread prepares, the
  // region's threads only read).
  thread_local std::array<Int8GemvInput, kMaxLayers> int8_inputs;
  thread_local std::array<PackedGemvInput, kMaxLayers> packed_inputs;
  for (size_t l = 0; l < all.size(); ++l) {
    if (use_int8[l]) int8_gemv_prepare(*layers[l]->weight_, x, int8_inputs[l]);
    else packed_gemv_prepare(*layers[l]->weight_, x, packed_inputs[l]);
  }
  const auto& int8_shared = int8_inputs;
  const auto& packed_shared = packed_inputs;
  decode_rows(offset[all.size()], [&](int64_t begin, int64_t end) {
    for (size_t l = 0; l < all.size(); ++l) {
      const int64_t b = std::max(begin, offset[l]) - offset[l], e = std::min(end, offset[l + 1]) - offset[l];
      if (b >= e) continue;
      if (use_int8[l]) int8_gemv_rows(*layers[l]->weight_, int8_shared[l], b, e, y[l]);
      else packed_gemv_rows(*layers[l]->weight_, packed_shared[l], b, e, y[l]);
    }
  });
  for (size_t l = 0; l < all.size(); ++l)
    for (size_t o = 0; o < layers[l]->bias_.size(); ++o) y[l][o] += layers[l]->bias_[o];
  return true;
}

void QuantizedLinear::dequantized_forward(const float* x, int64_t tokens, float* y) const {
  const int64_t in = weight_->cols(), out = weight_->rows();
  const int64_t tiles = (out + kRowTile - 1) / kRowTile;
  parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> tile_weights;
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t row0 = tile * kRowTile;
      const int64_t rows = std::min(kRowTile, out - row0);
      tile_weights.resize(static_cast<size_t>(rows * in));
      for (int64_t r = 0; r < rows; ++r)
        weight_->dequantize_row(row0 + r, std::span<float>(tile_weights).subspan(static_cast<size_t>(r * in),
                                                                                 static_cast<size_t>(in)));
      if (tokens == 1) {
        // The GEMV kernel forms each row's sum independently of how rows are grouped, so
        // this equals DenseLinear's decode path over the same f32 weights.
        dense_gemv_rows(DType::kF32, tile_weights.data(), in, x, 0, rows, y + row0);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(tokens), static_cast<int>(rows),
                    static_cast<int>(in), 1.0f, x, static_cast<int>(in), tile_weights.data(), static_cast<int>(in),
                    0.0f, y + row0, static_cast<int>(out));
      }
    }
  });
}

}  // namespace lowbit
