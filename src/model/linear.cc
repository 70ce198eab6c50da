#include "lowbit/model/linear.h"

#include <cblas.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/kernels/dense_gemv.h"

namespace lowbit {

namespace {
// Rows of W per work item. Fixed (not derived from the thread count) for determinism;
// 64 rows × 4096 inputs × 4 B = 1 MiB of widened weights, about one L2.
constexpr int64_t kRowTile = 64;

// OpenBLAS must not spawn its own threads under ours: we parallelize over row tiles.
void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}
}  // namespace

DenseLinear::DenseLinear(Tensor weight, std::optional<Tensor> bias) : weight_(std::move(weight)) {
  if (weight_.rank() != 2) throw Error("linear weight must be 2-D, found shape " + shape_to_string(weight_.shape()));
  if (weight_.dtype() != DType::kF32 && weight_.dtype() != DType::kF16 && weight_.dtype() != DType::kBF16)
    throw Error("linear weight dtype " + std::string(dtype_name(weight_.dtype())) + " is not F32, F16 or BF16");
  out_ = weight_.dim(0);
  in_ = weight_.dim(1);
  if (bias) {
    if (bias->shape() != Shape{out_}) throw Error("bias shape " + shape_to_string(bias->shape()) + " does not match " + std::to_string(out_) + " outputs");
    bias_ = bias->to_f32_vector();
  }
  single_threaded_blas();
}

void DenseLinear::forward(const float* x, int64_t tokens, float* y) const {
  if (tokens == 1) {
    // Decode: a fused GEMV that widens 16-bit weights in registers (bandwidth-bound).
    parallel_for(out_, kRowTile, [&](int64_t begin, int64_t end) {
      dense_gemv_rows(weight_.dtype(), weight_.data(), in_, x, begin, end, y);
    });
    add_bias(y, tokens);
    return;
  }
  const int64_t tiles = (out_ + kRowTile - 1) / kRowTile;
  const size_t element = dtype_size(weight_.dtype());
  const auto* base = static_cast<const std::byte*>(weight_.data());
  parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> widened;
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t row0 = tile * kRowTile;
      const int64_t rows = std::min(kRowTile, out_ - row0);
      const float* w;
      if (weight_.dtype() == DType::kF32) {
        w = reinterpret_cast<const float*>(base) + row0 * in_;
      } else {
        widened.resize(static_cast<size_t>(rows * in_));
        widen_to_f32(weight_.dtype(), base + static_cast<size_t>(row0 * in_) * element, rows * in_, widened.data());
        w = widened.data();
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(tokens), static_cast<int>(rows),
                  static_cast<int>(in_), 1.0f, x, static_cast<int>(in_), w, static_cast<int>(in_), 0.0f, y + row0,
                  static_cast<int>(out_));
    }
  });
  add_bias(y, tokens);
}

void DenseLinear::weight_row(int64_t row, float* out) const {
  if (row < 0 || row >= out_) throw Error("row " + std::to_string(row) + " outside a linear layer of " + std::to_string(out_) + " rows");
  const size_t element = dtype_size(weight_.dtype());
  widen_to_f32(weight_.dtype(), static_cast<const std::byte*>(weight_.data()) + static_cast<size_t>(row * in_) * element, in_, out);
}

void DenseLinear::add_bias(float* y, int64_t tokens) const {
  if (bias_.empty()) return;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < out_; ++o) y[t * out_ + o] += bias_[o];
}

}  // namespace lowbit
