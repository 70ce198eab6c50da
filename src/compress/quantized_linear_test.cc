// QuantizedLinear: the same output as a DenseLinear over the dequantized matrix — bit for bit on
// the dequantized path (several tokens: sgemm on dequantized tiles; one token with packed_decode =
// false, or on a layout without a packed kernel), within 1e-5 of Σ|W||x| per row on the packed
// one-token path (the default for integer grids, kernels/packed_gemv.h); independent of the thread
// count either way; bias added.
#include "lowbit/compress/quantized_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "compress/compress_test_util.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/kernels/int8_gemm.h"
#include "lowbit/kernels/int8_gemv.h"
#include "lowbit/kernels/packed_gemv.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::normal_values;

// 150 rows: two full tiles of 64 and a ragged one; 100 columns: no multiple of any SIMD width.
constexpr int64_t kRows = 150, kCols = 100;

std::shared_ptr<const QuantizedTensor> quantized_weight(const QuantScheme& scheme) {
  RtnOptions options;
  options.scheme = scheme;
  return std::make_shared<const QuantizedTensor>(
      quantize_rtn(normal_values(static_cast<size_t>(kRows * kCols), 11, 0.05f), kRows, kCols, options));
}

DenseLinear dense_over(const QuantizedTensor& q, const std::vector<float>& bias = {}) {
  const auto w = q.dequantize();
  std::optional<Tensor> b;
  if (!bias.empty()) b = Tensor::copy_of(DType::kF32, {q.rows()}, bias.data(), bias.size() * sizeof(float));
  return DenseLinear(Tensor::copy_of(DType::kF32, {q.rows(), q.cols()}, w.data(), w.size() * sizeof(float)), b);
}

std::vector<float> run(const LinearLayer& layer, const std::vector<float>& x, int64_t tokens) {
  std::vector<float> y(static_cast<size_t>(tokens * layer.out_features()), -1.0f);
  layer.forward(x.data(), tokens, y.data());
  return y;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// One token through the packed kernel: each output within 1e-5 of Σ_c |W[o, c]| |x[c]| (+ bias).
void expect_close_to_dense(const QuantizedTensor& q, const std::vector<float>& x, const std::vector<float>& got,
                           const std::vector<float>& dense) {
  const auto w = q.dequantize();
  ASSERT_EQ(got.size(), dense.size());
  for (int64_t o = 0; o < q.rows(); ++o) {
    double magnitude = 0;
    for (int64_t c = 0; c < q.cols(); ++c)
      magnitude += std::abs(static_cast<double>(w[static_cast<size_t>(o * q.cols() + c)]) * x[static_cast<size_t>(c)]);
    EXPECT_NEAR(got[static_cast<size_t>(o)], dense[static_cast<size_t>(o)], 1e-5 * magnitude + 1e-30) << "row " << o;
  }
}

TEST(QuantizedLinear, EqualsDenseLinearOverTheDequantizedMatrix) {
  const QuantScheme schemes[] = {QuantScheme::integer(4, 32, true), QuantScheme::integer(3, 0, false),
                                 QuantScheme::with_format(Format::nf4(), 64, DType::kBF16)};
  for (const auto& scheme : schemes) {
    SCOPED_TRACE(scheme.to_string());
    const auto q = quantized_weight(scheme);
    const DenseLinear dense = dense_over(*q);
    // Packed decode is the default wherever the kernel handles the layout (here all three: int4, uint3
    // and NF4's lookup).
    EXPECT_TRUE(QuantizedLinear(q).packed_decode());
    EXPECT_EQ(QuantizedLinear(q).packed_decode(), packed_gemv_supported(*q));
    for (const bool packed : {false, true}) {
      const QuantizedLinear layer(q, {}, packed);
      EXPECT_EQ(layer.in_features(), kCols);
      EXPECT_EQ(layer.out_features(), kRows);
      EXPECT_EQ(layer.packed_decode(), packed && packed_gemv_supported(*q));
      for (const int64_t tokens : {1, 2, 7}) {
        const auto x = normal_values(static_cast<size_t>(tokens * kCols), 5);
        if (tokens == 1 && layer.packed_decode()) {
          expect_close_to_dense(*q, x, run(layer, x, tokens), run(dense, x, tokens));
        } else {
          EXPECT_TRUE(bit_equal(run(layer, x, tokens), run(dense, x, tokens))) << tokens << " tokens, packed " << packed;
        }
      }
    }
  }
}

TEST(QuantizedLinear, GidxPermutedGroupsMatchTheDequantizedMatrix) {
  auto q = std::make_shared<QuantizedTensor>(*quantized_weight(QuantScheme::integer(4, 25, true)));
  std::vector<int32_t> g_idx(kCols);
  for (int64_t c = 0; c < kCols; ++c) g_idx[static_cast<size_t>(c)] = static_cast<int32_t>((c * 7) % 4);
  q->set_g_idx(g_idx);
  const QuantizedLinear layer(q, {}, /*packed_decode=*/true);  // g_idx: no packed kernel
  EXPECT_FALSE(layer.packed_decode());
  const DenseLinear dense = dense_over(*q);
  const auto x = normal_values(static_cast<size_t>(3 * kCols), 8);
  EXPECT_TRUE(bit_equal(run(layer, x, 3), run(dense, x, 3)));
  EXPECT_TRUE(bit_equal(run(layer, x, 1), run(dense, x, 1)));
}

TEST(QuantizedLinear, BitIdenticalForOneAndTwoThreads) {
  for (const bool packed : {false, true}) {
    const QuantizedLinear layer(quantized_weight(QuantScheme::integer(4, 32, true)), {}, packed);
    for (const int64_t tokens : {1, 9}) {
      const auto x = normal_values(static_cast<size_t>(tokens * kCols), 3);
      set_num_threads(1);
      const auto one = run(layer, x, tokens);
      set_num_threads(2);
      const auto two = run(layer, x, tokens);
      set_num_threads(0);
      EXPECT_TRUE(bit_equal(one, two)) << tokens << " tokens, packed " << packed;
    }
  }
}

TEST(QuantizedLinear, AddsItsBias) {
  const auto q = quantized_weight(QuantScheme::integer(4, 32, true));
  std::vector<float> bias(kRows);
  for (int64_t o = 0; o < kRows; ++o) bias[static_cast<size_t>(o)] = 0.25f * static_cast<float>(o % 5) - 0.5f;
  const DenseLinear dense = dense_over(*q, bias);
  for (const bool packed : {false, true}) {
    const QuantizedLinear plain(q, {}, packed), biased(q, bias, packed);
    for (const int64_t tokens : {1, 4}) {
      const auto x = normal_values(static_cast<size_t>(tokens * kCols), 4);
      const auto without = run(plain, x, tokens), with = run(biased, x, tokens);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t o = 0; o < kRows; ++o) {
          const size_t i = static_cast<size_t>(t * kRows + o);
          ASSERT_EQ(with[i], without[i] + bias[static_cast<size_t>(o)]) << t << ", " << o;
        }
      if (tokens == 1 && packed) {
        expect_close_to_dense(*q, x, with, run(dense, x, tokens));
      } else {
        EXPECT_TRUE(bit_equal(with, run(dense, x, tokens))) << tokens << " tokens, packed " << packed;
      }
    }
    EXPECT_EQ(biased.bias(), bias);
  }
}

TEST(QuantizedLinear, WeightBytesAreTheStoredBytesAndBadBiasIsRefused) {
  const auto q = quantized_weight(QuantScheme::integer(3, 0, false));
  const QuantizedLinear layer(q);
  // 150 rows x (ceil(100*3/8) = 38 code bytes + 1 f16 scale + 1 packed 3-bit zero point).
  EXPECT_EQ(layer.weight_bytes(), static_cast<uint64_t>(kRows * (38 + 2 + 1)));
  EXPECT_EQ(layer.weight_bytes(), static_cast<uint64_t>(q->storage_bytes()));
  EXPECT_EQ(&layer.tensor(), q.get());
  const std::string message = testing::error_from([&] { QuantizedLinear(q, std::vector<float>(3, 0.0f)); });
  EXPECT_TRUE(testing::contains(message, "bias has 3 values for 150 outputs")) << message;
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// Under ActivationPrecision::kInt8 one token takes the int8 GEMV on layouts it has a kernel for
// (exactly its scalar definition, any thread count), keeps the f32 packed kernel elsewhere, and
// prefill is untouched.
TEST(QuantizedLinear, Int8ActivationsTakeTheInt8KernelWhereItExists) {
  struct Restore {
    ~Restore() {
      set_activation_precision(ActivationPrecision::kF32);
      set_num_threads(0);
    }
  } restore;
  const int64_t cols = 128;  // groups of 32 divide it (kCols = 100 has no int8 layout with groups)
  RtnOptions options;
  options.scheme = QuantScheme::integer(4, 32, false);
  const auto int4 = std::make_shared<const QuantizedTensor>(
      quantize_rtn(normal_values(static_cast<size_t>(kRows * cols), 12, 0.05f), kRows, cols, options));
  options.scheme = QuantScheme::with_format(Format::nf4(), 32);  // irrational levels: no int8 kernel
  const auto nf4 = std::make_shared<const QuantizedTensor>(
      quantize_rtn(normal_values(static_cast<size_t>(kRows * cols), 12, 0.05f), kRows, cols, options));
  const auto x = normal_values(static_cast<size_t>(cols), 13);
  const QuantizedLinear four(int4), nf4_layer(nf4);
  EXPECT_TRUE(four.int8_decode());
  EXPECT_FALSE(nf4_layer.int8_decode());

  std::vector<float> want(kRows), want_f32(kRows), f32_nf4(kRows);
  int8_gemv_rows_reference(*int4, x.data(), 0, kRows, want.data());
  four.forward(x.data(), 1, want_f32.data());
  nf4_layer.forward(x.data(), 1, f32_nf4.data());
  set_activation_precision(ActivationPrecision::kInt8);
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<float> y(kRows), y_nf4(kRows);
    four.forward(x.data(), 1, y.data());
    nf4_layer.forward(x.data(), 1, y_nf4.data());
    for (int64_t r = 0; r < kRows; ++r) {
      EXPECT_EQ(std::memcmp(&y[r], &want[r], sizeof(float)), 0) << threads << " threads, row " << r;
      EXPECT_EQ(std::memcmp(&y_nf4[r], &f32_nf4[r], sizeof(float)), 0) << threads << " threads, row " << r;
    }
    EXPECT_NE(y, want_f32);  // really the other path
  }
  // Several tokens (prefill): the int8 GEMM (int8_gemm.h) on 1 and 2 threads alike; NF4 keeps
  // the dequantized f32 path, whatever the setting.
  EXPECT_TRUE(four.int8_prefill());
  EXPECT_FALSE(nf4_layer.int8_prefill());
  const int64_t tokens = 6;
  const auto xs = normal_values(static_cast<size_t>(tokens * cols), 14);
  std::vector<float> want_prefill(static_cast<size_t>(tokens * kRows)), f32_prefill(want_prefill.size()),
      f32_nf4_prefill(want_prefill.size());
  int8_gemm_reference(*int4, xs.data(), tokens, 0, kRows, want_prefill.data(), kRows);
  set_activation_precision(ActivationPrecision::kF32);
  four.forward(xs.data(), tokens, f32_prefill.data());
  nf4_layer.forward(xs.data(), tokens, f32_nf4_prefill.data());
  set_activation_precision(ActivationPrecision::kInt8);
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<float> y(want_prefill.size()), y_nf4(want_prefill.size());
    four.forward(xs.data(), tokens, y.data());
    nf4_layer.forward(xs.data(), tokens, y_nf4.data());
    EXPECT_EQ(std::memcmp(y.data(), want_prefill.data(), y.size() * sizeof(float)), 0) << threads << " threads";
    EXPECT_EQ(std::memcmp(y_nf4.data(), f32_nf4_prefill.data(), y_nf4.size() * sizeof(float)), 0) << threads << " threads";
    EXPECT_NE(y, f32_prefill);  // really the other path
  }
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// Layers that read the same x (q/k/v, gate/up) in one parallel region give each layer's forward bits:
// f32 and int8 activations, layers of different widths (the joint row range splits inside a layer),
// a bias, 1 and 2 threads. A dense layer among them, or a layer without a packed kernel, is refused
// before anything is written.
TEST(QuantizedLinear, LayersRunTogetherGiveTheirOwnForwardBits) {
  struct Restore {
    ~Restore() {
      set_activation_precision(ActivationPrecision::kF32);
      set_num_threads(0);
    }
  } restore;
  const int64_t cols = 128;
  auto make = [&](const QuantScheme& scheme, int64_t rows, uint64_t seed) {
    RtnOptions options;
    options.scheme = scheme;
    return std::make_shared<const QuantizedTensor>(
        quantize_rtn(normal_values(static_cast<size_t>(rows * cols), seed, 0.05f), rows, cols, options));
  };
  std::vector<float> bias(40);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i);
  const QuantizedLinear a(make(QuantScheme::integer(4, 32, false), 150, 1));
  const QuantizedLinear b(make(QuantScheme::integer(4, 32, true), 40, 2), bias);
  const QuantizedLinear c(make(QuantScheme::integer(3, 64, false), 77, 3));
  const auto x = normal_values(static_cast<size_t>(cols), 4);
  const LinearLayer* layers[] = {&a, &b, &c};
  for (const ActivationPrecision activations : {ActivationPrecision::kF32, ActivationPrecision::kInt8}) {
    set_activation_precision(activations);
    for (const int threads : {1, 2}) {
      set_num_threads(threads);
      std::vector<float> ya(150, -1.0f), yb(40, -1.0f), yc(77, -1.0f);
      float* outs[] = {ya.data(), yb.data(), yc.data()};
      ASSERT_TRUE(a.forward_token_together(layers, x.data(), outs));
      EXPECT_TRUE(bit_equal(ya, run(a, x, 1))) << threads << " threads";
      EXPECT_TRUE(bit_equal(yb, run(b, x, 1))) << threads << " threads";
      EXPECT_TRUE(bit_equal(yc, run(c, x, 1))) << threads << " threads";
    }
  }
  // Not together: a dense layer among them; a layer on the dequantized path.
  const DenseLinear dense = dense_over(*make(QuantScheme::integer(4, 32, false), 20, 5));
  const QuantizedLinear unpacked(make(QuantScheme::integer(4, 32, false), 20, 6), {}, false);
  std::vector<float> y0(150, -1.0f), y1(20, -1.0f);
  float* outs[] = {y0.data(), y1.data()};
  const LinearLayer* with_dense[] = {&a, &dense};
  const LinearLayer* with_unpacked[] = {&a, &unpacked};
  EXPECT_FALSE(a.forward_token_together(with_dense, x.data(), outs));
  EXPECT_FALSE(a.forward_token_together(with_unpacked, x.data(), outs));
  EXPECT_FALSE(dense.forward_token_together(with_dense, x.data(), outs));
  EXPECT_EQ(y0, std::vector<float>(150, -1.0f));  // nothing written
}

}  // namespace
}  // namespace lowbit
