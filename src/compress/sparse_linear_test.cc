// make_sparse_linear: which sparse layers run on the 2:4 kernel and which densified, and that each
// gives the dense matrix's outputs — within f32 rounding for the kernel's decode, bit for bit where
// the same sgemm runs.
#include "lowbit/compress/sparse_linear.h"

#include <gtest/gtest.h>

#include <cmath>

#include "compress/compress_test_util.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/compress/rtn.h"

namespace lowbit {
namespace {

struct Layer {
  std::shared_ptr<const SparseTensor> sparse;
  std::vector<float> dense;  // what it stands for
};

Layer float_layer(int64_t rows, int64_t cols, const char* pattern, DType dtype) {
  const auto w = testing::normal_values(rows * cols, 17, 0.2f);
  const auto p = SparsityPattern::parse(pattern);
  auto t = std::make_shared<SparseTensor>(SparseTensor::from_float(w, magnitude_mask(w, rows, cols, p), rows, cols, p, dtype));
  return {t, t->dense()};
}

Layer quantized_layer(int64_t rows, int64_t cols, const char* pattern, QuantScheme scheme) {
  auto w = testing::normal_values(rows * cols, 19, 0.2f);
  const auto p = SparsityPattern::parse(pattern);
  const auto mask = magnitude_mask(w, rows, cols, p);
  apply_mask(w, mask);
  RtnOptions options;
  options.scheme = scheme;
  auto t = std::make_shared<SparseTensor>(SparseTensor::from_quantized(quantize_rtn(w, rows, cols, options), mask, p));
  return {t, t->dense()};
}

// Decode against a double-precision product: within 1e-5 of Σ|W x| per row.
void expect_decode_close(const LinearLayer& layer, const std::vector<float>& dense, int64_t rows, int64_t cols) {
  const auto x = testing::normal_values(cols, 23);
  std::vector<float> y(rows);
  layer.forward(x.data(), 1, y.data());
  for (int64_t r = 0; r < rows; ++r) {
    double exact = 0, magnitude = 0;
    for (int64_t c = 0; c < cols; ++c) {
      exact += static_cast<double>(dense[r * cols + c]) * x[c];
      magnitude += std::fabs(static_cast<double>(dense[r * cols + c]) * x[c]);
    }
    ASSERT_NEAR(y[r], exact, 1e-5 * magnitude + 1e-30) << "row " << r;
  }
}

TEST(SparseLinear, TwoOfFourFloatLayersRunOnTheKernel) {
  const int64_t rows = 150, cols = 90;  // ragged: 90 = 22 groups of 4 + 2 columns; 3 row tiles
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Layer layer = float_layer(rows, cols, "2:4", dtype);
    const std::vector<float> bias(rows, 0.5f);
    const auto linear = make_sparse_linear(layer.sparse, bias);
    // The kernel's layout: half the values plus 4 bits per group of 4.
    EXPECT_EQ(linear->weight_bytes(), static_cast<uint64_t>(rows * (46 * dtype_size(dtype) + 12)));
    const auto plain = make_sparse_linear(layer.sparse);
    expect_decode_close(*plain, layer.dense, rows, cols);
    // Several tokens: the widened tile through sgemm, exactly DenseLinear over the f32 matrix.
    const int64_t tokens = 5;
    const auto x = testing::normal_values(tokens * cols, 29);
    std::vector<float> y(tokens * rows), expected(tokens * rows);
    linear->forward(x.data(), tokens, y.data());
    const DenseLinear dense(Tensor::copy_of(DType::kF32, {rows, cols}, layer.dense.data(), layer.dense.size() * 4),
                            Tensor::copy_of(DType::kF32, {rows}, bias.data(), bias.size() * 4));
    dense.forward(x.data(), tokens, expected.data());
    EXPECT_EQ(y, expected);
  }
}

TEST(SparseLinear, Int8TwoOfFourRunsOnTheKernelOtherLayoutsDensified) {
  const int64_t rows = 70, cols = 64;
  const Layer int8 = quantized_layer(rows, cols, "2:4", QuantScheme::integer(8, 32, true));
  const auto kernel = make_sparse_linear(int8.sparse);
  EXPECT_LT(kernel->weight_bytes(), static_cast<uint64_t>(rows * cols));  // 8-bit dense would be rows x cols bytes
  EXPECT_EQ(dynamic_cast<const QuantizedLinear*>(kernel.get()), nullptr);
  expect_decode_close(*kernel, int8.dense, rows, cols);

  // uint4 2:4, 4:8 and bitmap layers run densified: QuantizedLinear / DenseLinear over what they stand for.
  for (const char* pattern : {"2:4", "4:8", "50%"}) {
    SCOPED_TRACE(pattern);
    const Layer q = quantized_layer(rows, cols, pattern, QuantScheme::integer(4, 32, false));
    const auto linear = make_sparse_linear(q.sparse);
    ASSERT_NE(dynamic_cast<const QuantizedLinear*>(linear.get()), nullptr);
    const QuantizedLinear reference(std::make_shared<QuantizedTensor>(q.sparse->quantized_tensor()));
    const auto x = testing::normal_values(3 * cols, 31);
    std::vector<float> y(3 * rows), expected(3 * rows);
    linear->forward(x.data(), 3, y.data());
    reference.forward(x.data(), 3, expected.data());
    EXPECT_EQ(y, expected);
  }
  const Layer bitmap = float_layer(rows, cols, "50%", DType::kF16);
  const auto dense = make_sparse_linear(bitmap.sparse);
  ASSERT_NE(dynamic_cast<const DenseLinear*>(dense.get()), nullptr);
  EXPECT_EQ(static_cast<const DenseLinear&>(*dense).weight().dtype(), DType::kF16);
  expect_decode_close(*dense, bitmap.dense, rows, cols);
}

}  // namespace
}  // namespace lowbit
