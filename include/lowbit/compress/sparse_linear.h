// The linear layer a sparse (pruned) weight runs as (pipeline/quantized_model.h loads them so).
//
// 2:4 patterns whose values the 2:4 kernel reads (kernels/sparse24_gemv.h: F32/F16/BF16 floats, or
// 8-bit symmetric integer codes) run without densifying: decode reads the kept values and their
// 2-bit positions only. Every other sparse layer runs densified: DenseLinear over its values in
// their own dtype, or QuantizedLinear over its codes (pruned entries hold the code for 0), so
// unstructured and other N:M models give exactly the outputs of the dense matrix they stand for.
#pragma once

#include <memory>
#include <vector>

#include "lowbit/compress/sparse_tensor.h"
#include "lowbit/model/linear.h"

namespace lowbit {

// bias: empty or one value per output row.
std::unique_ptr<LinearLayer> make_sparse_linear(std::shared_ptr<const SparseTensor> weight, std::vector<float> bias = {});

}  // namespace lowbit
