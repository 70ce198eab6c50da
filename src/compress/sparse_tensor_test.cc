// SparseTensor: the stored N:M and bitmap layouts byte for byte on small cases, exact round trips
// for float and quantized values, storage sizes, and refusals of malformed parts.
#include "lowbit/compress/sparse_tensor.h"

#include <gtest/gtest.h>

#include "compress/compress_test_util.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;

void expect_round_trip(const SparseTensor& t) {
  const QuantizedLayerSpec spec = t.spec();
  std::vector<float> scales;
  std::vector<uint8_t> zeros;
  if (t.quantized()) {
    const auto s = t.quantized_tensor().scales();
    scales.assign(s.begin(), s.end());
    const auto z = t.quantized_tensor().zero_points();
    zeros.assign(z.begin(), z.end());
  }
  const SparseTensor back = SparseTensor::from_stored(spec, t.stored_index(), t.stored_values(), scales, zeros);
  EXPECT_EQ(back.dense(), t.dense());
  EXPECT_TRUE(std::ranges::equal(back.mask(), t.mask()));
  EXPECT_EQ(back.storage_bytes(), t.storage_bytes());
  // storage_bytes is counted from the layout: it must equal the bytes the stored parts take.
  int64_t stored = static_cast<int64_t>(t.stored_index().size() + t.stored_values().size());
  if (t.quantized()) {
    const QuantizedTensor& q = t.quantized_tensor();
    stored += static_cast<int64_t>(q.scales().size() * dtype_size(q.scheme().scale_dtype) + q.packed_zero_points().size());
  }
  EXPECT_EQ(t.storage_bytes(), stored);
  EXPECT_EQ(back.quantized(), t.quantized());
  if (t.quantized()) {
    EXPECT_TRUE(std::ranges::equal(back.quantized_tensor().packed_codes(), t.quantized_tensor().packed_codes()));
  }
}

TEST(SparseTensor, TwoOfFourStoresSlotsAndTheirPositions) {
  // One row of 10 columns: groups [0..3], [4..7], [8..9].
  const std::vector<float> w = {0, 1.5f, 0, -2, 3, 0, 0, 0, 0, 7};
  std::vector<uint8_t> mask(10);
  for (int c = 0; c < 10; ++c) mask[c] = w[c] != 0;  // group 1 keeps only one: padded with position 1
  const SparseTensor t = SparseTensor::from_float(w, mask, 1, 10, SparsityPattern::parse("2:4"), DType::kF32);
  // Slots: (1, 3), (0, 1), (0, 1) at 2 bits each, LSB first: 1 | 3<<2 | 0<<4 | 1<<6 = 0x4D, then 0 | 1<<2 = 0x04.
  EXPECT_EQ(t.stored_index(), (std::vector<uint8_t>{0x4D, 0x04}));
  const std::vector<uint8_t> values = t.stored_values();
  ASSERT_EQ(values.size(), 6 * 4u);
  std::vector<float> slots(6);
  std::memcpy(slots.data(), values.data(), values.size());
  EXPECT_EQ(slots, (std::vector<float>{1.5f, -2, 3, 0, 0, 7}));
  EXPECT_EQ(t.storage_bytes(), 2 + 24);
  EXPECT_EQ(t.dense(), w);
  EXPECT_DOUBLE_EQ(t.sparsity(), 0.4);  // 6 slots of 10 columns
  expect_round_trip(t);
  EXPECT_TRUE(contains(error_from([&] { SparseTensor::from_float(w, std::vector<uint8_t>(10, 1), 1, 10, SparsityPattern::parse("2:4"), DType::kF32); }),
                       "row 0, column 0: the group keeps 4 weights, 2:4 allows 2"));
}

TEST(SparseTensor, BitmapStoresOneBitPerWeight) {
  const std::vector<float> w = {1, 0, 0, 2, 0, 0, 0, 0, 3, /*row 1*/ 0, 0, 0, 0, 0, 0, 0, 0, 4};
  std::vector<uint8_t> mask(w.size());
  for (size_t i = 0; i < w.size(); ++i) mask[i] = w[i] != 0;
  const SparseTensor t = SparseTensor::from_float(w, mask, 2, 9, SparsityPattern::parse("50%"), DType::kF16);
  EXPECT_EQ(t.stored_index(), (std::vector<uint8_t>{0x09, 0x01, 0x00, 0x01}));
  EXPECT_EQ(t.stored_values().size(), 4 * 2u);
  EXPECT_EQ(t.storage_bytes(), 4 + 8);
  EXPECT_DOUBLE_EQ(t.bits_per_weight(), 8.0 * 12 / 18);
  expect_round_trip(t);
}

TEST(SparseTensor, FloatValuesAreRoundedToTheirDtype) {
  const std::vector<float> w = {0.1f, 0.2f, 0.3f, 0.4f};
  const SparseTensor t = SparseTensor::from_float(w, {1, 0, 0, 1}, 1, 4, SparsityPattern::parse("2:4"), DType::kBF16);
  EXPECT_EQ(t.dense(), (std::vector<float>{bf16_bits_to_f32(f32_to_bf16_bits(0.1f)), 0, 0, bf16_bits_to_f32(f32_to_bf16_bits(0.4f))}));
  expect_round_trip(t);
}

TEST(SparseTensor, QuantizedValuesRoundTripInBothLayouts) {
  const int64_t rows = 9, cols = 70;
  std::vector<float> w = testing::normal_values(rows * cols, 3);
  for (const char* text : {"2:4", "4:8", "60%"}) {
    for (bool symmetric : {true, false}) {
      SCOPED_TRACE(std::string(text) + (symmetric ? " int" : " uint"));
      const auto pattern = SparsityPattern::parse(text);
      std::vector<float> pruned = w;
      const auto mask = magnitude_mask(w, rows, cols, pattern);
      apply_mask(pruned, mask);
      RtnOptions options;
      options.scheme = QuantScheme::integer(3, 32, symmetric);
      const SparseTensor t = SparseTensor::from_quantized(quantize_rtn(pruned, rows, cols, options), mask, pattern);
      expect_round_trip(t);
      // Values: kept codes at 3 bits; scales f16 per group; zero points packed per row.
      const int64_t kept = static_cast<int64_t>(std::count(t.mask().begin(), t.mask().end(), 1));
      EXPECT_LE(static_cast<int64_t>(t.stored_values().size()), (kept * 3 + 7) / 8 + rows);
      EXPECT_LT(t.bits_per_weight(), t.quantized_tensor().bits_per_weight() + (pattern.nm() ? 1.5 : 1.01));
    }
  }
}

TEST(SparseTensor, RefusesMalformedParts) {
  const std::vector<float> w = {1, 2, 0, 0, 0, 0, 3, 4};
  const SparseTensor t = SparseTensor::from_float(w, {1, 1, 0, 0, 0, 0, 1, 1}, 1, 8, SparsityPattern::parse("2:4"), DType::kF16);
  const QuantizedLayerSpec spec = t.spec();
  // Positions must ascend within the group: (1, 0) in the first group.
  EXPECT_TRUE(contains(error_from([&] { SparseTensor::from_stored(spec, std::vector<uint8_t>{0x01}, t.stored_values()); }),
                       "must ascend"));
  EXPECT_TRUE(contains(error_from([&] { SparseTensor::from_stored(spec, t.stored_index(), std::vector<uint8_t>(6)); }),
                       "values: 6 bytes for 4 kept weights"));
  std::vector<uint8_t> inf = t.stored_values();
  inf[0] = 0x00, inf[1] = 0x7C;  // f16 +Inf
  EXPECT_TRUE(contains(error_from([&] { SparseTensor::from_stored(spec, t.stored_index(), inf); }), "not finite"));

  const SparseTensor b = SparseTensor::from_float(w, {1, 1, 0, 0, 0, 0, 1, 1}, 1, 6 + 2, SparsityPattern::parse("50%"), DType::kF16);
  QuantizedLayerSpec narrow = b.spec();
  narrow.in_features = 6;  // bit 6 and 7 are now past the row
  EXPECT_TRUE(contains(error_from([&] { SparseTensor::from_stored(narrow, b.stored_index(), b.stored_values()); }),
                       "sets bits past column 5"));
  // A quantized layer whose pruned weight is not zero.
  RtnOptions options;
  options.scheme = QuantScheme::integer(4, 0, true);
  EXPECT_TRUE(contains(error_from([&] { SparseTensor::from_quantized(quantize_rtn(w, 1, 8, options), {1, 0, 1, 1, 1, 1, 1, 1}, SparsityPattern::parse("50%")); }),
                       "row 0, column 1: a pruned weight decodes to"));
}

}  // namespace
}  // namespace lowbit
