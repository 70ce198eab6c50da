#include "lowbit/core/tensor.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/core/half.h"

namespace lowbit {
namespace {

// Expects `statement` to throw lowbit::Error whose message contains `fragment`.
#define EXPECT_ERROR_CONTAINING(statement, fragment)                                       \
  do {                                                                                     \
    try {                                                                                  \
      statement;                                                                           \
      ADD_FAILURE() << #statement " did not throw";                                        \
    } catch (const ::lowbit::Error& error) {                                               \
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos)               \
          << "message: " << error.what() << "\nexpected to contain: " << (fragment);       \
    }                                                                                      \
  } while (0)

template <class T>
Tensor tensor_of(DType dtype, Shape shape, const std::vector<T>& values) {
  return Tensor::copy_of(dtype, std::move(shape), values.data(), values.size() * sizeof(T));
}

std::vector<uint16_t> u16_values(const Tensor& t) {
  std::vector<uint16_t> out(static_cast<size_t>(t.numel()));
  std::memcpy(out.data(), t.data(), t.nbytes());
  return out;
}

TEST(TensorTest, ShapeToString) {
  EXPECT_EQ(shape_to_string({}), "[]");
  EXPECT_EQ(shape_to_string({7}), "[7]");
  EXPECT_EQ(shape_to_string({2, 3, 4}), "[2, 3, 4]");
}

TEST(TensorTest, ShapeNumel) {
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(shape_numel({5, 0, 7}), 0);
  EXPECT_EQ(shape_numel({int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
  EXPECT_EQ(shape_numel({std::numeric_limits<int64_t>::max()}), std::numeric_limits<int64_t>::max());
  // A zero anywhere makes the product 0 even when the other dimensions are huge.
  EXPECT_EQ(shape_numel({0, int64_t{1} << 40, int64_t{1} << 40}), 0);
}

TEST(TensorTest, ShapeNumelRejectsOverflowAndNegativeDimensions) {
  EXPECT_ERROR_CONTAINING(shape_numel({int64_t{1} << 32, int64_t{1} << 32}), "overflows");
  EXPECT_ERROR_CONTAINING(shape_numel({std::numeric_limits<int64_t>::max(), 2}), "overflows");
  EXPECT_ERROR_CONTAINING(shape_numel({3, int64_t{1} << 62}), "[3, 4611686018427387904]");
  EXPECT_ERROR_CONTAINING(shape_numel({2, -1}), "negative dimension in shape [2, -1]");
  EXPECT_ERROR_CONTAINING(shape_numel({0, -1}), "negative");
  EXPECT_ERROR_CONTAINING(Tensor::zeros(DType::kF32, {2, -3}), "[2, -3]");
  EXPECT_ERROR_CONTAINING(Tensor::zeros(DType::kF32, {int64_t{1} << 40, int64_t{1} << 40}), "overflows");
  const float dummy = 0;
  EXPECT_ERROR_CONTAINING(Tensor::borrowed(DType::kF32, {-1}, &dummy, nullptr), "negative");
  EXPECT_ERROR_CONTAINING(
      Tensor::borrowed(DType::kF32, {int64_t{1} << 40, int64_t{1} << 40, int64_t{1} << 40}, &dummy, nullptr),
      "overflows");
}

TEST(TensorTest, ByteSizeOverflowIsRejected) {
  // 2^61 elements fit in int64, but 2^61 * 8 bytes does not fit in 64 bits: a wrapped
  // byte count would let a tiny allocation (or a tiny file span) back a huge tensor.
  // Byte counts must fit in int64 (file offsets and streamsize are signed).
  EXPECT_ERROR_CONTAINING(Tensor::zeros(DType::kF64, {int64_t{1} << 61}), "overflows");
  const float dummy = 0;
  EXPECT_ERROR_CONTAINING(Tensor::borrowed(DType::kF32, {int64_t{1} << 62}, &dummy, nullptr), "overflows");
  EXPECT_ERROR_CONTAINING(Tensor::borrowed(DType::kBF16, {int64_t{1} << 31, int64_t{1} << 31}, &dummy, nullptr),
                          "overflows");
}

TEST(TensorTest, ZeroElementTensorsWithHugeDimensionsAreFine) {
  const Tensor t = Tensor::zeros(DType::kF32, {0, int64_t{1} << 40, int64_t{1} << 40});
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.nbytes(), 0u);
  EXPECT_EQ(t.rank(), 3u);
}

TEST(TensorTest, ZerosIsOwnedAlignedAndZero) {
  const Tensor t = Tensor::zeros(DType::kF32, {2, 3, 5});
  EXPECT_EQ(t.dtype(), DType::kF32);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(t.rank(), 3u);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(2), 5);
  EXPECT_THROW(t.dim(3), std::out_of_range);
  EXPECT_EQ(t.numel(), 30);
  EXPECT_EQ(t.nbytes(), 120u);
  EXPECT_TRUE(t.owns_storage());
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  for (std::byte b : t.bytes()) ASSERT_EQ(b, std::byte{0});
  for (float v : t.values<float>()) ASSERT_EQ(v, 0.0f);
}

TEST(TensorTest, ScalarAndEmptyShapes) {
  const Tensor scalar = Tensor::zeros(DType::kF16, {});
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.nbytes(), 2u);
  EXPECT_TRUE(scalar.strides().empty());
  const Tensor empty = Tensor::zeros(DType::kI32, {4, 0});
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_EQ(empty.nbytes(), 0u);
  EXPECT_TRUE(empty.values<int32_t>().empty());
  EXPECT_TRUE(empty.bit_equal(Tensor::zeros(DType::kI32, {4, 0})));
}

TEST(TensorTest, StridesAreRowMajorInElements) {
  EXPECT_EQ(Tensor::zeros(DType::kF32, {2, 3, 4}).strides(), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(Tensor::zeros(DType::kU8, {7}).strides(), (std::vector<int64_t>{1}));
  EXPECT_EQ(Tensor::zeros(DType::kF64, {5, 1, 3}).strides(), (std::vector<int64_t>{3, 3, 1}));
}

TEST(TensorTest, CopyOfCopiesTheBytes) {
  std::vector<float> source = {1, 2, 3, 4, 5, 6};
  const Tensor t = tensor_of(DType::kF32, {2, 3}, source);
  source[0] = 99;  // the tensor owns its copy
  EXPECT_TRUE(t.owns_storage());
  EXPECT_NE(t.data(), static_cast<const void*>(source.data()));
  const auto values = t.values<float>();
  EXPECT_EQ(std::vector<float>(values.begin(), values.end()), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(TensorTest, CopyOfRejectsAWrongByteCount) {
  const std::vector<float> source(5);
  EXPECT_ERROR_CONTAINING(Tensor::copy_of(DType::kF32, {2, 3}, source.data(), 20),
                          "20 bytes given for F32 tensor of shape [2, 3] (24 bytes)");
}

TEST(TensorTest, BorrowedViewsShareBytesAndKeepTheOwnerAlive) {
  auto owner = std::make_shared<std::vector<int32_t>>(std::vector<int32_t>{10, 20, 30, 40, 50, 60});
  const std::weak_ptr<std::vector<int32_t>> watch = owner;
  const int32_t* data = owner->data();
  Tensor t = Tensor::borrowed(DType::kI32, {3, 2}, data, owner);
  owner.reset();
  EXPECT_FALSE(watch.expired()) << "the view must keep its bytes alive";
  EXPECT_EQ(t.data(), static_cast<const void*>(data));
  EXPECT_FALSE(t.owns_storage());
  EXPECT_EQ(t.values<int32_t>()[5], 60);
  const Tensor row = t.row(2);
  t = Tensor();
  EXPECT_FALSE(watch.expired()) << "a row view also keeps the bytes alive";
  EXPECT_EQ(row.values<int32_t>()[0], 50);
}

TEST(TensorTest, BorrowedViewsAreReadOnly) {
  const std::vector<float> storage = {1, 2, 3, 4};
  Tensor t = Tensor::borrowed(DType::kF32, {2, 2}, storage.data(), nullptr);
  EXPECT_ERROR_CONTAINING(t.mutable_data(), "read-only");
  EXPECT_THROW(t.mutable_values<float>(), Error);
  Tensor row = t.row(1);
  EXPECT_THROW(row.mutable_data(), Error);
  Tensor reshaped = t.reshaped({4});
  EXPECT_THROW(reshaped.mutable_data(), Error);
  // Converting gives an owned, writable copy.
  Tensor copy = t.to(DType::kF32);
  EXPECT_TRUE(copy.owns_storage());
  EXPECT_NE(copy.data(), t.data());
  copy.mutable_values<float>()[0] = 7;
  EXPECT_EQ(storage[0], 1.0f);
}

TEST(TensorTest, ReshapedSharesStorage) {
  Tensor t = tensor_of(DType::kF32, {2, 3}, std::vector<float>{0, 1, 2, 3, 4, 5});
  Tensor r = t.reshaped({3, 2});
  EXPECT_EQ(r.data(), t.data());
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.strides(), (std::vector<int64_t>{2, 1}));
  t.mutable_values<float>()[4] = 40;
  EXPECT_EQ(r.values<float>()[4], 40.0f);
  r.mutable_values<float>()[1] = 10;
  EXPECT_EQ(t.values<float>()[1], 10.0f);
  EXPECT_ERROR_CONTAINING(t.reshaped({4, 2}), "cannot reshape [2, 3] to [4, 2]");
  EXPECT_THROW(t.reshaped({-2, -3}), Error);
  EXPECT_EQ(t.reshaped({6}).numel(), 6);
  EXPECT_EQ(t.reshaped({1, 6, 1}).strides(), (std::vector<int64_t>{6, 1, 1}));
}

TEST(TensorTest, RowIsAViewIntoTheFirstAxis) {
  std::vector<float> values(24);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  Tensor t = tensor_of(DType::kF32, {2, 3, 4}, values);
  const Tensor row = t.row(1);
  EXPECT_EQ(row.shape(), (Shape{3, 4}));
  EXPECT_EQ(row.data(), static_cast<const void*>(static_cast<const float*>(t.data()) + 12));
  EXPECT_EQ(row.values<float>()[0], 12.0f);
  EXPECT_EQ(row.values<float>()[11], 23.0f);
  EXPECT_EQ(row.row(2).values<float>()[3], 23.0f);
  // Views of an owned tensor write through to it.
  Tensor row0 = t.row(0);
  row0.mutable_values<float>()[2] = -1;
  EXPECT_EQ(t.values<float>()[2], -1.0f);
  // Rank 1 -> a scalar view.
  const Tensor vector = tensor_of(DType::kI64, {3}, std::vector<int64_t>{7, 8, 9});
  EXPECT_EQ(vector.row(2).rank(), 0u);
  EXPECT_EQ(vector.row(2).values<int64_t>()[0], 9);
  EXPECT_ERROR_CONTAINING(t.row(2), "row 2 out of range for shape [2, 3, 4]");
  EXPECT_THROW(t.row(-1), Error);
  EXPECT_THROW(vector.row(0).row(0), Error);  // rank 0 has no rows
}

TEST(TensorTest, TypedAccessChecksTheDType) {
  Tensor t = Tensor::zeros(DType::kF16, {4});
  EXPECT_ERROR_CONTAINING(t.values<float>(), "tensor has dtype F16, expected F32");
  EXPECT_THROW(t.mutable_values<uint32_t>(), Error);
  EXPECT_THROW(t.values<int16_t>(), Error);
  const Tensor i8 = Tensor::zeros(DType::kI8, {4});
  EXPECT_THROW(i8.values<uint8_t>(), Error);
  EXPECT_EQ(i8.values<int8_t>().size(), 4u);
  const Tensor f64 = Tensor::zeros(DType::kF64, {2});
  EXPECT_EQ(f64.values<double>().size(), 2u);
}

TEST(TensorTest, ConvertF32ToF16AndBF16ExactValues) {
  const std::vector<float> values = {1.0f, -2.0f, 65504.0f, 65520.0f, 0x1p-25f, 1.0f + 0x1p-11f, 0.1f,
                                     0x1p-24f, -0.0f, 1.0f + 0x1p-8f, 3.0e38f};
  const Tensor f32 = tensor_of(DType::kF32, {static_cast<int64_t>(values.size())}, values);
  const Tensor f16 = f32.to(DType::kF16);
  EXPECT_EQ(f16.dtype(), DType::kF16);
  EXPECT_EQ(f16.shape(), f32.shape());
  EXPECT_EQ(u16_values(f16), (std::vector<uint16_t>{0x3C00, 0xC000, 0x7BFF, 0x7C00, 0x0000, 0x3C00, 0x2E66,
                                                     0x0001, 0x8000, 0x3C04, 0x7C00}));
  const Tensor bf16 = f32.to(DType::kBF16);
  EXPECT_EQ(u16_values(bf16), (std::vector<uint16_t>{0x3F80, 0xC000, 0x4780, 0x4780, 0x3300, 0x3F80, 0x3DCD,
                                                      0x3380, 0x8000, 0x3F80, 0x7F62}));
}

TEST(TensorTest, ConvertWidensExactly) {
  const std::vector<uint16_t> halves = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0x3555};
  const Tensor f16 = tensor_of(DType::kF16, {7}, halves);
  const Tensor f32 = f16.to(DType::kF32);
  const auto v = f32.values<float>();
  EXPECT_EQ(std::vector<float>(v.begin(), v.end()),
            (std::vector<float>{1.0f, -2.0f, 65504.0f, 0x1p-24f, -0.0f, INFINITY, 0.333251953125f}));
  EXPECT_TRUE(std::signbit(v[4]));
  const Tensor bf16 = tensor_of(DType::kBF16, {2}, std::vector<uint16_t>{0x3F81, 0xC040});
  EXPECT_EQ(bf16.to_f32_vector(), (std::vector<float>{1.0078125f, -3.0f}));
  const Tensor f64 = bf16.to(DType::kF64);
  EXPECT_EQ(f64.values<double>()[0], 1.0078125);
  EXPECT_EQ(f64.to(DType::kF32).values<float>()[1], -3.0f);
}

TEST(TensorTest, F16RoundTripsThroughF32ForEveryPattern) {
  std::vector<uint16_t> all;
  for (uint32_t h = 0; h <= 0xFFFF; ++h)
    if ((h & 0x7C00) != 0x7C00 || (h & 0x3FF) == 0) all.push_back(static_cast<uint16_t>(h));  // not NaN
  const Tensor f16 = tensor_of(DType::kF16, {static_cast<int64_t>(all.size())}, all);
  EXPECT_TRUE(f16.to(DType::kF32).to(DType::kF16).bit_equal(f16));
  EXPECT_TRUE(f16.to(DType::kF64).to(DType::kF16).bit_equal(f16));
  // Every f16 value is exact in f32 and f64, but not in bf16 (8 significant bits):
  // 1 + 2^-10 rounds to 1.
  const Tensor one_plus = tensor_of(DType::kF16, {1}, std::vector<uint16_t>{0x3C01});
  EXPECT_EQ(u16_values(one_plus.to(DType::kBF16)), (std::vector<uint16_t>{0x3F80}));
}

TEST(TensorTest, BF16RoundTripsThroughF32AndF16WhereExact) {
  std::vector<uint16_t> all;
  for (uint32_t b = 0; b <= 0xFFFF; ++b)
    if ((b & 0x7F80) != 0x7F80 || (b & 0x7F) == 0) all.push_back(static_cast<uint16_t>(b));
  const Tensor bf16 = tensor_of(DType::kBF16, {static_cast<int64_t>(all.size())}, all);
  EXPECT_TRUE(bf16.to(DType::kF32).to(DType::kBF16).bit_equal(bf16));
  // bf16 values in f16's normal range with <= 8 significant bits survive bf16 -> f16 -> bf16.
  const std::vector<uint16_t> some = {0x3F80, 0xBFC0, 0x4780 - 0x0001 /* 65280 */, 0x3880 /* 2^-14 */, 0x0000};
  const Tensor small = tensor_of(DType::kBF16, {5}, some);
  EXPECT_TRUE(small.to(DType::kF16).to(DType::kBF16).bit_equal(small));
  EXPECT_EQ(u16_values(small.to(DType::kF16)), (std::vector<uint16_t>{0x3C00, 0xBE00, 0x7BF8, 0x0400, 0x0000}));
}

TEST(TensorTest, ConvertToTheSameDTypeCopies) {
  Tensor t = tensor_of(DType::kI32, {2}, std::vector<int32_t>{-5, 7});
  Tensor copy = t.to(DType::kI32);
  EXPECT_TRUE(copy.bit_equal(t));
  EXPECT_NE(copy.data(), t.data());
  copy.mutable_values<int32_t>()[0] = 0;
  EXPECT_EQ(t.values<int32_t>()[0], -5);
}

TEST(TensorTest, ConvertRefusesIntegerReinterpretation) {
  const Tensor i32 = Tensor::zeros(DType::kI32, {2});
  EXPECT_ERROR_CONTAINING(i32.to(DType::kF32), "cannot convert I32 tensor to F32");
  EXPECT_THROW(i32.to_f32_vector(), Error);
  const Tensor f32 = Tensor::zeros(DType::kF32, {2});
  EXPECT_ERROR_CONTAINING(f32.to(DType::kI32), "cannot convert F32 tensor to I32");
  EXPECT_THROW(f32.to(DType::kU8), Error);
}

TEST(TensorTest, BitEqual) {
  const Tensor a = tensor_of(DType::kF32, {2, 2}, std::vector<float>{1, 2, 3, 4});
  EXPECT_TRUE(a.bit_equal(a));
  EXPECT_TRUE(a.bit_equal(tensor_of(DType::kF32, {2, 2}, std::vector<float>{1, 2, 3, 4})));
  EXPECT_FALSE(a.bit_equal(tensor_of(DType::kF32, {2, 2}, std::vector<float>{1, 2, 3, 5})));
  EXPECT_FALSE(a.bit_equal(a.reshaped({4})));                                // shape differs
  EXPECT_FALSE(a.bit_equal(tensor_of(DType::kI32, {2, 2}, std::vector<float>{1, 2, 3, 4})));  // dtype differs
  // Bitwise, not numeric: +0 and -0 differ, identical NaNs are equal.
  EXPECT_FALSE(tensor_of(DType::kF32, {1}, std::vector<float>{0.0f})
                   .bit_equal(tensor_of(DType::kF32, {1}, std::vector<float>{-0.0f})));
  const std::vector<float> nan = {NAN};
  EXPECT_TRUE(tensor_of(DType::kF32, {1}, nan).bit_equal(tensor_of(DType::kF32, {1}, nan)));
  // A borrowed view equals an owned copy of the same bytes.
  const Tensor view = Tensor::borrowed(DType::kF32, {2, 2}, a.data(), nullptr);
  EXPECT_TRUE(view.bit_equal(a));
}

}  // namespace
}  // namespace lowbit
