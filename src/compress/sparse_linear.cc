#include "lowbit/compress/sparse_linear.h"

#include <cblas.h>

#include <algorithm>
#include <optional>

#include "lowbit/compress/quantized_linear.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/kernels/sparse24_gemv.h"
#include "lowbit/linalg/blas.h"

namespace lowbit {

namespace {

// Output rows per work item: fixed, so each output comes from the same kernel call for any thread count.
constexpr int64_t kRowTile = 64;

// Whether the 2:4 kernel reads these values: floats, or 8-bit two's complement codes without zero
// points whose scale groups never split a group of 4 columns.
bool kernel_reads(const SparseTensor& w) {
  const SparseLayoutSpec& layout = w.layout();
  if (layout.bitmap() || layout.n != 2 || layout.m != 4) return false;
  if (!w.quantized()) return true;
  const QuantizedTensor& q = w.quantized_tensor();
  const Format& f = q.scheme().element;
  return f.kind() == Format::Kind::kInt && f.twos_complement() && f.bits() == 8 && f.fraction_bits() == 0 &&
         q.g_idx().empty() && (q.scheme().group_size == 0 || q.scheme().group_size % 4 == 0);
}

// A 2:4 layer on the sparse kernel: decode (one token) reads the kept values and their 2-bit
// positions only; several tokens widen a tile of rows to f32 and run sgemm on it, like
// QuantizedLinear. Resident: the kernel's layout, about half the dense bytes.
class Sparse24Linear final : public LinearLayer {
 public:
  Sparse24Linear(Sparse24Matrix weight, std::vector<float> bias) : w_(std::move(weight)), bias_(std::move(bias)) {
    pin_blas_to_one_thread();
  }
  int64_t in_features() const override { return w_.cols(); }
  int64_t out_features() const override { return w_.rows(); }
  uint64_t weight_bytes() const override { return w_.storage_bytes(); }
  void weight_row(int64_t row, float* out) const override { w_.to_dense_rows(row, row + 1, out); }

  void forward(const float* x, int64_t tokens, float* y) const override {
    const int64_t in = w_.cols(), out = w_.rows();
    if (tokens <= 0 || out == 0) return;
    const int64_t tiles = (out + kRowTile - 1) / kRowTile;
    parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
      if (tokens == 1) {
        sparse24_gemv_rows(w_, x, begin * kRowTile, std::min(out, end * kRowTile), y);
        return;
      }
      thread_local std::vector<float> tile;
      for (int64_t t = begin; t < end; ++t) {
        const int64_t row0 = t * kRowTile, rows = std::min(kRowTile, out - row0);
        tile.resize(static_cast<size_t>(rows * in));
        w_.to_dense_rows(row0, row0 + rows, tile.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(tokens), static_cast<int>(rows),
                    static_cast<int>(in), 1.0f, x, static_cast<int>(in), tile.data(), static_cast<int>(in), 0.0f,
                    y + row0, static_cast<int>(out));
      }
    });
    if (bias_.empty()) return;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t o = 0; o < out; ++o) y[t * out + o] += bias_[static_cast<size_t>(o)];
  }

 private:
  Sparse24Matrix w_;
  std::vector<float> bias_;
};

}  // namespace

std::unique_ptr<LinearLayer> make_sparse_linear(std::shared_ptr<const SparseTensor> weight, std::vector<float> bias) {
  require(bias.empty() || static_cast<int64_t>(bias.size()) == weight->rows(), "sparse linear",
          "bias has " + std::to_string(bias.size()) + " values for " + std::to_string(weight->rows()) + " outputs");
  if (kernel_reads(*weight)) {
    Sparse24Matrix matrix;
    if (weight->quantized()) {
      matrix = Sparse24Matrix::from_quantized(weight->quantized_tensor());
    } else {
      const std::vector<float> dense = weight->dense();
      matrix = Sparse24Matrix::from_dense(dense.data(), weight->rows(), weight->cols(), weight->value_dtype());
    }
    return std::make_unique<Sparse24Linear>(std::move(matrix), std::move(bias));
  }
  if (weight->quantized())
    return std::make_unique<QuantizedLinear>(std::make_shared<QuantizedTensor>(weight->quantized_tensor()), std::move(bias));
  std::optional<Tensor> b;
  if (!bias.empty()) b = Tensor::copy_of(DType::kF32, {weight->rows()}, bias.data(), bias.size() * sizeof(float));
  const std::vector<float> dense = weight->dense();
  // Exact: every value is representable in its dtype.
  Tensor w = Tensor::copy_of(DType::kF32, {weight->rows(), weight->cols()}, dense.data(), dense.size() * sizeof(float))
                 .to(weight->value_dtype());
  return std::make_unique<DenseLinear>(std::move(w), std::move(b));
}

}  // namespace lowbit
