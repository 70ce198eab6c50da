// QuantizedTensor: dequantized values against hand-computed ones, the packed layout, exact
// bits-per-weight accounting, and refusals of malformed parts.
#include "lowbit/compress/quantized_tensor.h"

#include <gtest/gtest.h>

#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;

TEST(QuantizedTensor, SymmetricInt4GroupsWithRaggedLastGroup) {
  // int4 symmetric: two's complement codes, values -7..7 (code 8 = -8 decodes but is unused).
  QuantizedTensor t(2, 5, QuantScheme::integer(4, 2, /*symmetric=*/true));
  EXPECT_EQ(t.groups_per_row(), 3);
  EXPECT_EQ(t.row_bytes(), 3);
  const std::vector<uint8_t> row0 = {1, 13, 7, 9, 2};  // 1, -3, 7, -7, 2
  const std::vector<uint8_t> row1 = {0, 15, 3, 5, 10};  // 0, -1, 3, 5, -6
  t.set_row(0, row0, std::vector<float>{0.5f, 0.25f, 2.0f});
  t.set_row(1, row1, std::vector<float>{1.5f, 0.125f, 0.0625f});
  const std::vector<float> expected = {0.5f, -1.5f, 1.75f, -1.75f, 4.0f, 0.0f, -1.5f, 0.375f, 0.625f, -0.375f};
  EXPECT_EQ(t.dequantize(), expected);
  std::vector<float> row(5);
  t.dequantize_row(1, row);
  EXPECT_EQ(row, std::vector<float>(expected.begin() + 5, expected.end()));
  // Each row packed on its own, LSB-first: codes 1, 13 -> 0xD1; 7, 9 -> 0x97; 2 -> 0x02.
  const auto packed = t.packed_row(0);
  EXPECT_EQ(std::vector<uint8_t>(packed.begin(), packed.end()), (std::vector<uint8_t>{0xD1, 0x97, 0x02}));
  EXPECT_EQ(t.codes(), (std::vector<uint8_t>{1, 13, 7, 9, 2, 0, 15, 3, 5, 10}));
  // Scales as an F16 tensor: the exact f16 bit patterns.
  const Tensor scales = t.scales_tensor();
  EXPECT_EQ(scales.dtype(), DType::kF16);
  EXPECT_EQ(scales.shape(), (Shape{2, 3}));
  const auto* bits = static_cast<const uint16_t*>(scales.data());
  EXPECT_EQ(bits[0], 0x3800);  // 0.5
  EXPECT_EQ(bits[5], 0x2C00);  // 0.0625
}

TEST(QuantizedTensor, AsymmetricUint3WithZeroPoints) {
  QuantizedTensor t(1, 4, QuantScheme::integer(3, 0, /*symmetric=*/false));
  EXPECT_TRUE(t.scheme().asymmetric());
  EXPECT_EQ(t.group_size(), 4);
  t.set_row(0, std::vector<uint8_t>{0, 3, 7, 5}, std::vector<float>{0.5f}, std::vector<uint8_t>{3});
  EXPECT_EQ(t.dequantize(), (std::vector<float>{-1.5f, 0.0f, 2.0f, 1.0f}));
  EXPECT_EQ(t.zero_point(0, 0), 3);
  // 4 three-bit codes = 2 bytes, one f16 scale, one 3-bit zero point = 1 byte.
  EXPECT_EQ(t.storage_bytes(), 5);
  EXPECT_DOUBLE_EQ(t.bits_per_weight(), 10.0);
  EXPECT_EQ(t.packed_zero_points(), (std::vector<uint8_t>{3}));
}

TEST(QuantizedTensor, LookupGridNf4) {
  QuantizedTensor t(1, 3, QuantScheme::with_format(Format::nf4(), 0, DType::kF32));
  t.set_row(0, std::vector<uint8_t>{0, 7, 15}, std::vector<float>{0.3f});
  const Format nf4 = Format::nf4();  // levels() views the format's table: keep the format alive
  const auto levels = nf4.levels();
  EXPECT_EQ(levels[7], 0.0f);
  EXPECT_EQ(t.dequantize(), (std::vector<float>{levels[0] * 0.3f, 0.0f, levels[15] * 0.3f}));
  EXPECT_EQ(t.dequantize()[0], -0.3f);
}

TEST(QuantizedTensor, GroupIndexMapsColumnsToGroups) {
  QuantizedTensor t(1, 4, QuantScheme::integer(4, 2, true));
  t.set_row(0, std::vector<uint8_t>{1, 1, 2, 1}, std::vector<float>{1.0f, 8.0f});
  EXPECT_EQ(t.dequantize(), (std::vector<float>{1, 1, 16, 8}));
  t.set_g_idx({1, 0, 0, 1});
  EXPECT_EQ(t.group_of(0), 1);
  EXPECT_EQ(t.dequantize(), (std::vector<float>{8, 1, 2, 8}));
  EXPECT_EQ(t.storage_bytes(), 2 + 4 + 16);
}

TEST(QuantizedTensor, BitsPerWeightCountsEveryOverhead) {
  // int4 g128 f16: 4 bits + 16/128 = 4.125.
  QuantizedTensor sym(4, 256, QuantScheme::integer(4, 128, true));
  EXPECT_EQ(sym.storage_bytes(), 4 * 128 + 4 * 2 * 2);
  EXPECT_DOUBLE_EQ(sym.bits_per_weight(), 4.125);
  // uint4 g128: plus a 4-bit zero point per group, packed per row (2 groups -> 1 byte).
  QuantizedTensor asym(4, 256, QuantScheme::integer(4, 128, false));
  EXPECT_EQ(asym.storage_bytes(), 528 + 4);
  EXPECT_DOUBLE_EQ(asym.bits_per_weight(), 4.15625);
  // int3 per row, f32 scales, 100 columns: rows of ceil(300 / 8) = 38 bytes.
  QuantizedTensor row(4, 100, QuantScheme::integer(3, 0, true, DType::kF32));
  EXPECT_EQ(row.row_bytes(), 38);
  EXPECT_EQ(row.storage_bytes(), 4 * 38 + 4 * 4);
  EXPECT_DOUBLE_EQ(row.bits_per_weight(), 3.36);
  // A g_idx adds 4 bytes per column.
  std::vector<int32_t> g_idx(256);
  for (int c = 0; c < 256; ++c) g_idx[static_cast<size_t>(c)] = (c + 1) % 2;
  sym.set_g_idx(g_idx);
  EXPECT_DOUBLE_EQ(sym.bits_per_weight(), (528.0 + 1024.0) * 8 / 1024);
  // bf16 scales count 2 bytes, 2-bit codes; ragged last group (100 = 3 x 32 + 4).
  QuantizedTensor ragged(2, 100, QuantScheme::integer(2, 32, false, DType::kBF16));
  EXPECT_EQ(ragged.groups_per_row(), 4);
  EXPECT_EQ(ragged.storage_bytes(), 2 * 25 + 2 * 4 * 2 + 2 * 1);
}

TEST(QuantizedTensor, RefusesBadSchemes) {
  EXPECT_TRUE(contains(error_from([] { QuantScheme::integer(9, 0, true); }), "bits must be 1..8, found 9"));
  EXPECT_TRUE(contains(error_from([] { QuantScheme::integer(0, 0, false); }), "bits must be 1..8, found 0"));
  EXPECT_TRUE(contains(error_from([] { QuantizedTensor(2, 64, QuantScheme::with_format(Format::int_symmetric(12), 0)); }),
                       "bits per code must be 1..8, found 12"));
  EXPECT_TRUE(contains(error_from([] { QuantizedTensor(2, 64, QuantScheme::with_format(Format::fp16(), 0)); }),
                       "bits per code must be 1..8, found 16"));
  EXPECT_TRUE(contains(error_from([] { QuantizedTensor(2, 64, QuantScheme::integer(4, 128, true)); }),
                       "group size 128 is larger than a row of 64 columns"));
  EXPECT_TRUE(contains(error_from([] { QuantizedTensor(2, 64, QuantScheme::integer(4, -1, true)); }),
                       "group size must be >= 0"));
  EXPECT_TRUE(contains(error_from([] { QuantizedTensor(2, 64, QuantScheme::integer(4, 32, true, DType::kI32)); }),
                       "scale dtype must be F16, BF16, F32, F8_E4M3 (with a tensor scale) or F8_E8M0, found I32"));
  EXPECT_TRUE(contains(error_from([] { QuantizedTensor(2, 64, QuantScheme::with_format(Format::ue8m0(), 0)); }),
                       "has no negative values"));
}

TEST(QuantizedTensor, RefusesMalformedRowsAndParts) {
  QuantizedTensor t(2, 4, QuantScheme::integer(3, 2, false));
  EXPECT_TRUE(contains(error_from([&] { t.set_row(0, std::vector<uint8_t>{0, 1, 8, 0}, std::vector<float>{1, 1}, std::vector<uint8_t>{0, 0}); }),
                       "8"));
  EXPECT_TRUE(contains(error_from([&] { t.set_row(0, std::vector<uint8_t>{0, 1, 2}, std::vector<float>{1, 1}, std::vector<uint8_t>{0, 0}); }),
                       "expected 4 codes, found 3"));
  EXPECT_TRUE(contains(error_from([&] { t.set_row(0, std::vector<uint8_t>{0, 1, 2, 3}, std::vector<float>{1, 1}); }),
                       "expected 2 zero points, found 0"));
  EXPECT_TRUE(contains(error_from([&] { t.set_row(0, std::vector<uint8_t>{0, 1, 2, 3}, std::vector<float>{0.1f, 1}, std::vector<uint8_t>{0, 0}); }),
                       "is not a finite F16 value"));
  EXPECT_TRUE(contains(error_from([&] { t.set_row(0, std::vector<uint8_t>{0, 1, 2, 3}, std::vector<float>{1, 1}, std::vector<uint8_t>{0, 9}); }),
                       "zero point 9"));
  EXPECT_TRUE(contains(error_from([&] { t.set_row(2, std::vector<uint8_t>{0, 1, 2, 3}, std::vector<float>{1, 1}, std::vector<uint8_t>{0, 0}); }),
                       "row 2 outside [0, 2)"));
  EXPECT_TRUE(contains(error_from([&] { t.set_g_idx({0, 1, 2, 0}); }), "g_idx[2] = 2 outside [0, 2)"));
  EXPECT_TRUE(contains(error_from([&] { t.set_g_idx({0, 1}); }), "g_idx has 2 entries for 4 columns"));

  const QuantScheme scheme = QuantScheme::integer(3, 2, false);
  // 4 three-bit codes per row: 2 bytes per row, the top 4 bits of each row's second byte padding.
  EXPECT_TRUE(contains(error_from([&] { QuantizedTensor::from_parts(2, 4, scheme, {0, 0, 0}, {1, 1, 1, 1}, {0, 0, 0, 0}); }),
                       "packed codes have 3 bytes, expected 2 rows x 2 = 4"));
  EXPECT_TRUE(contains(error_from([&] { QuantizedTensor::from_parts(2, 4, scheme, {0, 0, 0, 0xF0}, {1, 1, 1, 1}, {0, 0, 0, 0}); }),
                       "codes of row 1"));
  EXPECT_TRUE(contains(error_from([&] { QuantizedTensor::from_parts(2, 4, scheme, {0, 0, 0, 0}, {1, 1, 1}, {0, 0, 0, 0}); }),
                       "scales have 3 values, expected 2 x 2"));
  EXPECT_TRUE(contains(error_from([&] { QuantizedTensor::from_parts(2, 4, scheme, {0, 0, 0, 0}, {1, 1, 1, 1}); }),
                       "zero points have 0 values, expected 4"));
  EXPECT_TRUE(contains(error_from([&] { QuantizedTensor::from_parts(2, 4, scheme, {0, 0, 0, 0}, {1, 1, 1, NAN}, {0, 0, 0, 0}); }),
                       "scale 3"));
  const QuantizedTensor ok = QuantizedTensor::from_parts(2, 4, scheme, {0xFA, 0x0A, 0, 0}, {1, 1, 1, 1}, {1, 0, 0, 0});
  // Row 0: 0xFA 0x0A read LSB-first in 3-bit fields are codes 2, 7, 3, 5; group 0 has zero point 1.
  EXPECT_EQ(ok.dequantize(), (std::vector<float>{1, 6, 3, 5, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace lowbit
