#include "lowbit/compress/sparse_linear.h"

#include <optional>

#include "lowbit/compress/quantized_linear.h"
#include "lowbit/core/error.h"

namespace lowbit {

std::unique_ptr<LinearLayer> make_sparse_linear(std::shared_ptr<const SparseTensor> weight, std::vector<float> bias) {
  require(bias.empty() || static_cast<int64_t>(bias.size()) == weight->rows(), "sparse linear",
          "bias has " + std::to_string(bias.size()) + " values for " + std::to_string(weight->rows()) + " outputs");
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
