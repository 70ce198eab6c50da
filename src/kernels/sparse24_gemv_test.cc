// The 2:4 sparse GEMV on every compiled SIMD target, for f32/f16/bf16 values and int8 codes
// (per-row, g32, g36, g128, ragged last groups), with shapes that exercise every tail (cols not
// a multiple of 4, 8, 16, 32; odd row counts):
//   - inputs whose products and sums are exact in f32: kernel = reference = the dense product, bit for bit
//   - random inputs: kernel and reference within 1e-5 of Σ|W·x| of a double-precision dense product
//   - any split of the rows gives the same bits
//   - the layout, storage_bytes, to_dense round trips, and every refusal.
#include "lowbit/kernels/sparse24_gemv.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "compress/compress_test_util.h"
#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/random.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

struct Shape {
  int64_t rows, cols;
};

// Shapes with every kind of tail: cols % 4 = 1, 2, 3, cols not a multiple of 8/16/32, wide rows.
const Shape kShapes[] = {{1, 1},   {3, 3},    {5, 7},  {37, 5},   {9, 33},
                         {37, 67}, {11, 130}, {6, 258}, {4, 1000}, {13, 1024}};

// Which columns of group q (width w) hold nonzeros: 0, 1 or 2 of them (2 most often), random places.
std::vector<int> pattern(const CounterRng& rng, uint64_t& k, int w) {
  const int count = std::min(w, std::min(2, static_cast<int>(rng.bits(k++) % 4)));
  std::vector<int> places;
  while (static_cast<int>(places.size()) < count) {
    const int p = static_cast<int>(rng.bits(k++) % static_cast<uint32_t>(w));
    if (std::find(places.begin(), places.end(), p) == places.end()) places.push_back(p);
  }
  return places;
}

float round_to(DType dtype, float v) {
  if (dtype == DType::kF16) return f16_bits_to_f32(f32_to_f16_bits(v));
  if (dtype == DType::kBF16) return bf16_bits_to_f32(f32_to_bf16_bits(v));
  return v;
}

// A dense 2:4 matrix whose nonzeros are representable in `dtype`: random in (-1, 1), or
// multiples of 1/8 up to 8 when `exact` (so with x in multiples of 1/4 up to 2 every product and
// partial sum over up to 1024 columns is exact in f32).
std::vector<float> random_24(int64_t rows, int64_t cols, DType dtype, uint64_t seed, bool exact) {
  const CounterRng rng(seed, static_cast<uint64_t>(dtype));
  std::vector<float> w(static_cast<size_t>(rows * cols), 0.0f);
  uint64_t k = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c0 = 0; c0 < cols; c0 += 4)
      for (const int p : pattern(rng, k, static_cast<int>(std::min<int64_t>(4, cols - c0)))) {
        float v = 0.0f;
        while (v == 0.0f)
          v = exact ? static_cast<float>(static_cast<int>(rng.bits(k++) % 129) - 64) / 8.0f
                    : round_to(dtype, rng.uniform(k++) * 2 - 1);
        w[static_cast<size_t>(r * cols + c0 + p)] = v;
      }
  return w;
}

std::vector<float> input(int64_t cols, uint64_t seed, bool exact) {
  if (!exact) return testing::normal_values(static_cast<size_t>(cols), seed);
  const CounterRng rng(seed, 99);
  std::vector<float> x(static_cast<size_t>(cols));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(rng.bits(i) % 17) - 8) / 4.0f;
  return x;
}

// An 8-bit symmetric QuantizedTensor with 2:4 codes: random codes in ±127 (and -128, which
// decodes too), f16 scales in [0.01, 0.03) — or, when `exact`, codes and scales m/8 (m = 1..7)
// whose products with the `exact` x stay exact in f32.
QuantizedTensor random_quantized(int64_t rows, int64_t cols, const QuantScheme& scheme, uint64_t seed, bool exact) {
  QuantizedTensor t(rows, cols, scheme);
  const CounterRng rng(seed, 7);
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  std::vector<float> scales(static_cast<size_t>(t.groups_per_row()));
  uint64_t k = 0;
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(codes.begin(), codes.end(), 0);
    for (int64_t c0 = 0; c0 < cols; c0 += 4)
      for (const int p : pattern(rng, k, static_cast<int>(std::min<int64_t>(4, cols - c0)))) {
        int v = 0;
        while (v == 0) v = static_cast<int>(rng.bits(k++) % 256) - 128;
        codes[static_cast<size_t>(c0 + p)] = static_cast<uint8_t>(static_cast<int8_t>(v));
      }
    for (auto& s : scales)
      s = exact ? static_cast<float>(1 + rng.bits(k++) % 7) / 8.0f
                : f16_bits_to_f32(f32_to_f16_bits(0.01f + 0.02f * rng.uniform(k++)));
    t.set_row(r, codes, scales);
  }
  return t;
}

struct Reference {
  std::vector<double> exact, magnitude;  // Σ W·x and Σ |W·x| per row, in double
};

Reference dense_product(const std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<float>& x) {
  Reference ref;
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0, mag = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const double p = static_cast<double>(w[static_cast<size_t>(r * cols + c)]) * x[static_cast<size_t>(c)];
      sum += p;
      mag += std::abs(p);
    }
    ref.exact.push_back(sum);
    ref.magnitude.push_back(mag);
  }
  return ref;
}

// On every compiled target: exact inputs give the dense product bit for bit (kernel and reference);
// random inputs agree within 1e-5 of Σ|W·x|; rows alone, in odd-sized ranges and in two halves give
// the same bits as the whole call.
void check_on_every_target(const Sparse24Matrix& m, const std::vector<float>& dense, const std::vector<float>& x,
                           bool exact) {
  const int64_t rows = m.rows(), cols = m.cols();
  const Reference ref = dense_product(dense, rows, cols, x);
  std::vector<float> oracle(static_cast<size_t>(rows), -1.0f);
  sparse24_gemv_rows_reference(m, x.data(), 0, rows, oracle.data());
  for (int64_t r = 0; r < rows; ++r) {
    if (exact) {
      ASSERT_TRUE(same_bits(oracle[r], static_cast<float>(ref.exact[r]))) << "oracle row " << r << ": " << oracle[r];
    } else {
      ASSERT_NEAR(oracle[r], ref.exact[r], 1e-5 * ref.magnitude[r] + 1e-30) << "oracle row " << r;
    }
  }
  for (uint64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::vector<float> y(static_cast<size_t>(rows), -1.0f);
    sparse24_gemv_rows(m, x.data(), 0, rows, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      if (exact) {
        ASSERT_TRUE(same_bits(y[r], oracle[r])) << "row " << r << ": " << y[r] << " vs " << oracle[r];
      } else {
        ASSERT_NEAR(y[r], ref.exact[r], 1e-5 * ref.magnitude[r] + 1e-30) << "row " << r;
      }
    }
    // Row splits: one row at a time, ranges of 3 from an odd start, two uneven halves.
    std::vector<float> alone(static_cast<size_t>(rows), -2.0f), threes(alone), halves(alone);
    for (int64_t r = 0; r < rows; ++r) sparse24_gemv_rows(m, x.data(), r, r + 1, alone.data());
    sparse24_gemv_rows(m, x.data(), 0, std::min<int64_t>(rows, 1), threes.data());
    for (int64_t r = 1; r < rows; r += 3) sparse24_gemv_rows(m, x.data(), r, std::min(rows, r + 3), threes.data());
    sparse24_gemv_rows(m, x.data(), 0, rows / 2 + 1, halves.data());
    sparse24_gemv_rows(m, x.data(), rows / 2 + 1, rows, halves.data());
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_TRUE(same_bits(alone[r], y[r])) << "row " << r << " alone";
      ASSERT_TRUE(same_bits(threes[r], y[r])) << "row " << r << " in threes";
      ASSERT_TRUE(same_bits(halves[r], y[r])) << "row " << r << " in halves";
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Sparse24Gemv, FloatValuesOnEveryTarget) {
  uint64_t seed = 1;
  for (const DType dtype : {DType::kF32, DType::kF16, DType::kBF16})
    for (const Shape& shape : kShapes)
      for (const bool exact : {true, false}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + std::to_string(shape.rows) + "x" +
                     std::to_string(shape.cols) + (exact ? " exact" : " random"));
        const auto dense = random_24(shape.rows, shape.cols, dtype, seed++, exact);
        const auto m = Sparse24Matrix::from_dense(dense.data(), shape.rows, shape.cols, dtype);
        ASSERT_EQ(m.value_dtype(), dtype);
        const auto back = m.to_dense();
        ASSERT_EQ(std::memcmp(back.data(), dense.data(), dense.size() * sizeof(float)), 0) << "to_dense";
        check_on_every_target(m, dense, input(shape.cols, seed++, exact), exact);
      }
}

TEST(Sparse24Gemv, Int8CodesOnEveryTarget) {
  // Group sizes: per-row, 32, 36 (groups start mid-byte in the metadata), 128; with the shapes'
  // widths most last groups are ragged.
  uint64_t seed = 100;
  for (const int64_t group : {int64_t{0}, int64_t{32}, int64_t{36}, int64_t{128}})
    for (const Shape& shape : kShapes) {
      if (group > shape.cols) continue;
      for (const bool full : {false, true})
        for (const bool exact : {true, false}) {
          const QuantScheme scheme = QuantScheme::with_format(full ? Format::int_full(8) : Format::int_symmetric(8),
                                                              group);
          SCOPED_TRACE(scheme.to_string() + " " + std::to_string(shape.rows) + "x" + std::to_string(shape.cols) +
                       (exact ? " exact" : " random"));
          const auto t = random_quantized(shape.rows, shape.cols, scheme, seed++, exact);
          const auto m = Sparse24Matrix::from_quantized(t);
          ASSERT_EQ(m.value_dtype(), DType::kI8);
          ASSERT_EQ(m.scale_groups_per_row(), t.groups_per_row());
          const auto dense = t.dequantize();
          const auto back = m.to_dense();
          ASSERT_EQ(std::memcmp(back.data(), dense.data(), dense.size() * sizeof(float)), 0) << "to_dense";
          check_on_every_target(m, dense, input(shape.cols, seed++, exact), exact);
        }
    }
}

TEST(Sparse24Gemv, TinyValuesWidenExactlyOnEveryTarget) {
  // f16 subnormals (k · 2^-24) and bf16 values near f32's smallest normal, with small integer x:
  // every product and sum is exact, so each target must give the dense product bit for bit.
  for (const DType dtype : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const int64_t rows = 7, cols = 70;
    const float unit = dtype == DType::kF16 ? 0x1p-24f : 0x1p-120f;
    std::vector<float> dense(static_cast<size_t>(rows * cols), 0.0f);
    for (size_t i = 0; i < dense.size(); i += 2) dense[i + (i / 4) % 2] = unit * static_cast<float>(1 + (i * 37) % 127);
    const auto m = Sparse24Matrix::from_dense(dense.data(), rows, cols, dtype);
    std::vector<float> x(static_cast<size_t>(cols));
    for (size_t c = 0; c < x.size(); ++c) x[c] = static_cast<float>(static_cast<int>(c % 9) - 4);
    check_on_every_target(m, dense, x, /*exact=*/true);
  }
}

TEST(Sparse24Gemv, LayoutIsAsDocumented) {
  // Row 0: groups {0, 5, 0, 7}, {3, 0, 0, 0}, {0, 0} (ragged); row 1: {0, 0, 0, 0}, {0, 0, 2, 0}, {0, 4}.
  const std::vector<float> dense = {0, 5, 0, 7, 3, 0, 0, 0, 0, 0,  //
                                    0, 0, 0, 0, 0, 0, 2, 0, 0, 4};
  const auto m = Sparse24Matrix::from_dense(dense.data(), 2, 10, DType::kF32);
  ASSERT_EQ(m.groups_per_row(), 3);
  ASSERT_EQ(m.slots_per_row(), 6);
  ASSERT_EQ(m.metadata_row_bytes(), 2);
  const float values[12] = {5, 7, 3, 0, 0, 0, 0, 0, 2, 0, 4, 0};
  EXPECT_EQ(std::memcmp(m.values(), values, sizeof(values)), 0);
  // Positions, 2 bits per slot LSB-first; empty slots point at position 0.
  // Row 0: slots 1, 3, 0, 0 | 0, 0.  Row 1: slots 0, 0, 2, 0 | 1, 0.
  const uint8_t meta[4] = {0x01 | 0x03 << 2, 0x00, 0x02 << 4, 0x01};
  EXPECT_EQ(std::memcmp(m.metadata(), meta, sizeof(meta)), 0);
  EXPECT_EQ(m.storage_bytes(), 2u * (6 * 4 + 2));
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<float> y(2);
  sparse24_gemv_rows(m, x.data(), 0, 2, y.data());
  EXPECT_EQ(y[0], 5.0f * 2 + 7.0f * 4 + 3.0f * 5);
  EXPECT_EQ(y[1], 2.0f * 7 + 4.0f * 10);
}

TEST(Sparse24Gemv, StorageBytesCountValuesMetadataAndScales) {
  std::vector<float> zeros(37 * 67, 0.0f);
  // 67 columns: 17 groups, 34 slots, 9 metadata bytes per row.
  EXPECT_EQ(Sparse24Matrix::from_dense(zeros.data(), 37, 67, DType::kF16).storage_bytes(), 37u * (34 * 2 + 9));
  EXPECT_EQ(Sparse24Matrix::from_dense(zeros.data(), 37, 67, DType::kF32).storage_bytes(), 37u * (34 * 4 + 9));
  EXPECT_EQ(Sparse24Matrix::from_dense(zeros.data(), 1, 1, DType::kBF16).storage_bytes(), 2u * 2 + 1);
  // int8 g32 over 130 columns: 33 groups, 66 slots, 17 metadata bytes, 5 f32 scales per row.
  const auto t = random_quantized(10, 130, QuantScheme::integer(8, 32, true), 3, false);
  EXPECT_EQ(Sparse24Matrix::from_quantized(t).storage_bytes(), 10u * (66 + 17 + 5 * 4));
  // The benchmark's layer: 4096 x 4096 f16 is 4.5 bytes per 4 columns.
  std::vector<float> big(4096 * 4096, 0.0f);
  EXPECT_EQ(Sparse24Matrix::from_dense(big.data(), 4096, 4096, DType::kF16).storage_bytes(), 4096u * 4096 * 9 / 8);
}

TEST(Sparse24Gemv, EmptyShapesAndSignedZeros) {
  const std::vector<float> dense = {-0.0f, 1.0f, -0.0f, 0.0f};
  const auto m = Sparse24Matrix::from_dense(dense.data(), 1, 4, DType::kF16);
  const auto back = m.to_dense();
  EXPECT_TRUE(same_bits(back[0], 0.0f));  // zeros are not stored: +0 comes back
  EXPECT_EQ(back[1], 1.0f);
  const auto none = Sparse24Matrix::from_dense(nullptr, 3, 0, DType::kBF16);
  std::vector<float> y(3, -1.0f);
  sparse24_gemv_rows(none, nullptr, 0, 3, y.data());
  EXPECT_EQ(y, std::vector<float>(3, 0.0f));
  const auto no_rows = Sparse24Matrix::from_dense(nullptr, 0, 5, DType::kF32);
  const std::vector<float> x(5, 1.0f);
  sparse24_gemv_rows(no_rows, x.data(), 0, 0, y.data());
  EXPECT_EQ(no_rows.storage_bytes(), 0u);
}

TEST(Sparse24Gemv, Refusals) {
  const auto message = [](const std::function<void()>& action) { return testing::error_from(action); };
  std::vector<float> dense(3 * 8, 0.0f);
  dense[2 * 8 + 4] = dense[2 * 8 + 5] = dense[2 * 8 + 7] = 1.0f;
  std::string m = message([&] { Sparse24Matrix::from_dense(dense.data(), 3, 8, DType::kF16); });
  EXPECT_TRUE(testing::contains(m, "sparse 2:4: row 2, columns 4..7 hold 3 nonzeros (at most 2 per group of 4)")) << m;
  // A ragged last group: columns 8..9 of 10.
  std::vector<float> ragged(10, 0.0f);
  ragged[0] = ragged[1] = ragged[8] = ragged[9] = 1.0f;
  EXPECT_NO_THROW(Sparse24Matrix::from_dense(ragged.data(), 1, 10, DType::kF32));
  ragged[2] = 1.0f;
  m = message([&] { Sparse24Matrix::from_dense(ragged.data(), 1, 10, DType::kF32); });
  EXPECT_TRUE(testing::contains(m, "row 0, columns 0..3 hold 3 nonzeros")) << m;

  std::vector<float> inexact(2 * 8, 0.0f);
  inexact[8 + 5] = 0.1f;
  m = message([&] { Sparse24Matrix::from_dense(inexact.data(), 2, 8, DType::kF16); });
  EXPECT_TRUE(
      testing::contains(m, "sparse 2:4: row 1, column 5: value 0.100000001 is not exactly representable in F16"))
      << m;
  m = message([&] { Sparse24Matrix::from_dense(inexact.data(), 2, 8, DType::kBF16); });
  EXPECT_TRUE(testing::contains(m, "row 1, column 5: value 0.100000001 is not exactly representable in BF16")) << m;
  EXPECT_NO_THROW(Sparse24Matrix::from_dense(inexact.data(), 2, 8, DType::kF32));
  inexact[3] = 1e5f;  // beyond f16's range
  m = message([&] { Sparse24Matrix::from_dense(inexact.data(), 2, 8, DType::kF16); });
  EXPECT_TRUE(testing::contains(m, "row 0, column 3: value 100000 is not exactly representable in F16")) << m;
  inexact[3] = INFINITY;
  m = message([&] { Sparse24Matrix::from_dense(inexact.data(), 2, 8, DType::kF32); });
  EXPECT_TRUE(testing::contains(m, "row 0, column 3: value inf is not finite")) << m;
  m = message([&] { Sparse24Matrix::from_dense(dense.data(), 3, 8, DType::kI8); });
  EXPECT_TRUE(testing::contains(m, "values must be F32, F16 or BF16, not I8")) << m;

  // Quantized: 3 nonzero codes in a group, group sizes not a multiple of 4, other grids.
  QuantizedTensor t(2, 64, QuantScheme::integer(8, 32, true));
  std::vector<uint8_t> codes(64, 0);
  codes[33] = codes[34] = codes[35] = 0xFF;  // -1
  t.set_row(1, codes, std::vector<float>{0.5f, 0.25f});
  m = message([&] { Sparse24Matrix::from_quantized(t); });
  EXPECT_TRUE(testing::contains(m, "row 1, columns 32..35 hold 3 nonzeros")) << m;
  m = message([&] { Sparse24Matrix::from_quantized(QuantizedTensor(2, 64, QuantScheme::integer(8, 30, true))); });
  EXPECT_TRUE(testing::contains(m, "group size 30 is not a multiple of 4")) << m;
  EXPECT_NO_THROW(Sparse24Matrix::from_quantized(QuantizedTensor(2, 30, QuantScheme::integer(8, 30, true))));
  m = message([&] { Sparse24Matrix::from_quantized(QuantizedTensor(2, 64, QuantScheme::integer(8, 32, false))); });
  EXPECT_TRUE(testing::contains(m, "8-bit two's complement integer grid")) << m;
  m = message([&] { Sparse24Matrix::from_quantized(QuantizedTensor(2, 64, QuantScheme::integer(4, 32, true))); });
  EXPECT_TRUE(testing::contains(m, "8-bit two's complement integer grid")) << m;

  const std::vector<float> row = {1, 0, 0, 2};
  std::vector<float> x(4, 1.0f), y(4);
  const auto ok = Sparse24Matrix::from_dense(row.data(), 1, 4, DType::kF32);
  m = message([&] { sparse24_gemv_rows(ok, x.data(), 0, 2, y.data()); });
  EXPECT_TRUE(testing::contains(m, "sparse 2:4: rows [0, 2) outside a matrix of 1 rows")) << m;
  m = message([&] { sparse24_gemv_rows_reference(ok, x.data(), 1, 0, y.data()); });
  EXPECT_TRUE(testing::contains(m, "rows [1, 0) outside")) << m;
}

}  // namespace
}  // namespace lowbit
