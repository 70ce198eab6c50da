#include "lowbit/core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "lowbit/core/half.h"

namespace lowbit {

std::string shape_to_string(const Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) throw Error("negative dimension in shape " + shape_to_string(shape));
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / dim)
      throw Error("element count of shape " + shape_to_string(shape) + " overflows 64 bits");
    count *= dim;
  }
  return count;
}

namespace {
// 64-byte alignment: a cache line and an AVX-512 register; kernels rely on it.
std::shared_ptr<void> allocate_aligned(size_t size) {
  const size_t rounded = (size + 63) / 64 * 64;
  void* memory = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!memory) throw Error("out of memory allocating " + std::to_string(size) + " bytes");
  return std::shared_ptr<void>(memory, std::free);
}

// Element count of a validated shape whose byte size also fits in int64 (file offsets
// and stream sizes are signed); a wrapped byte count would let a small allocation or a
// small file span back a huge tensor.
int64_t checked_numel(DType dtype, const Shape& shape) {
  const int64_t numel = shape_numel(shape);
  if (numel > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(dtype_size(dtype)))
    throw Error("byte size of " + std::string(dtype_name(dtype)) + " tensor of shape " + shape_to_string(shape) +
                " overflows 64 bits");
  return numel;
}

// Called after checked_numel, so every partial product fits unless a later dimension
// is 0; then the tensor has no elements and the strides saturate instead of overflowing.
std::vector<int64_t> row_major_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    if (shape[i] != 0 && stride > std::numeric_limits<int64_t>::max() / shape[i])
      stride = std::numeric_limits<int64_t>::max();
    else
      stride *= shape[i];
  }
  return strides;
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keepalive, bool owned)
    : dtype_(dtype),
      shape_(std::move(shape)),
      numel_(checked_numel(dtype_, shape_)),
      data_(data),
      keepalive_(std::move(keepalive)),
      owned_(owned) {
  strides_ = row_major_strides(shape_);
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  const int64_t numel = checked_numel(dtype, shape);
  const size_t size = static_cast<size_t>(numel) * dtype_size(dtype);
  auto storage = allocate_aligned(size);
  std::memset(storage.get(), 0, size);
  const void* data = storage.get();
  return Tensor(dtype, std::move(shape), data, std::move(storage), true);
}

Tensor Tensor::copy_of(DType dtype, Shape shape, const void* bytes, size_t size) {
  Tensor tensor = zeros(dtype, std::move(shape));
  if (size != tensor.nbytes())
    throw Error("copy_of: " + std::to_string(size) + " bytes given for " + std::string(dtype_name(dtype)) +
                " tensor of shape " + shape_to_string(tensor.shape()) + " (" + std::to_string(tensor.nbytes()) +
                " bytes)");
  if (size) std::memcpy(tensor.mutable_data(), bytes, size);
  return tensor;
}

Tensor Tensor::borrowed(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keepalive) {
  return Tensor(dtype, std::move(shape), data, std::move(keepalive), false);
}

void* Tensor::mutable_data() {
  if (!owned_) throw Error("tensor is a read-only view of a mapped file; copy it before writing");
  return const_cast<void*>(data_);
}

void Tensor::check_dtype(DType expected) const {
  if (dtype_ != expected)
    throw Error("tensor has dtype " + std::string(dtype_name(dtype_)) + ", expected " +
                std::string(dtype_name(expected)));
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_)
    throw Error("cannot reshape " + shape_to_string(shape_) + " to " + shape_to_string(shape));
  return Tensor(dtype_, std::move(shape), data_, keepalive_, owned_);
}

Tensor Tensor::row(int64_t index) const {
  if (shape_.empty() || index < 0 || index >= shape_[0])
    throw Error("row " + std::to_string(index) + " out of range for shape " + shape_to_string(shape_));
  Shape rest(shape_.begin() + 1, shape_.end());
  const size_t offset = static_cast<size_t>(index * strides_[0]) * dtype_size(dtype_);
  return Tensor(dtype_, std::move(rest), static_cast<const std::byte*>(data_) + offset, keepalive_, owned_);
}

void widen_to_f32(DType dtype, const void* data, int64_t count, float* out) {
  const size_t n = static_cast<size_t>(count);
  switch (dtype) {
    case DType::kF32:
      if (n) std::memcpy(out, data, n * sizeof(float));
      return;
    case DType::kF16: convert_f16_to_f32(static_cast<const uint16_t*>(data), out, n); return;
    case DType::kBF16: convert_bf16_to_f32(static_cast<const uint16_t*>(data), out, n); return;
    case DType::kF8E4M3:
    case DType::kF8E5M2:
    case DType::kF8E8M0: {
      const auto* bytes = static_cast<const uint8_t*>(data);
      float (*widen)(uint8_t) = dtype == DType::kF8E4M3   ? f8e4m3_bits_to_f32
                                : dtype == DType::kF8E5M2 ? f8e5m2_bits_to_f32
                                                          : e8m0_bits_to_f32;
      for (size_t i = 0; i < n; ++i) out[i] = widen(bytes[i]);
      return;
    }
    default: throw Error("cannot widen " + std::string(dtype_name(dtype)) + " values to F32");
  }
}

std::vector<float> Tensor::to_f32_vector() const {
  std::vector<float> out(static_cast<size_t>(numel_));
  switch (dtype_) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kF8E4M3:
    case DType::kF8E5M2:
    case DType::kF8E8M0:
      widen_to_f32(dtype_, data_, numel_, out.data());
      return out;
    case DType::kF64:
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(static_cast<const double*>(data_)[i]);
      return out;
    default:
      throw Error("cannot convert " + std::string(dtype_name(dtype_)) + " tensor to F32");
  }
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return copy_of(dtype_, shape_, data_, nbytes());
  // F64 sources go through F32 (two roundings); checkpoints in F64 are rare and the
  // engine computes in F32 anyway.
  const std::vector<float> wide = to_f32_vector();
  Tensor out = zeros(dtype, shape_);
  const size_t n = wide.size();
  switch (dtype) {
    case DType::kF32:
      if (n) std::memcpy(out.mutable_data(), wide.data(), n * sizeof(float));
      break;
    case DType::kF16:
      convert_f32_to_f16(wide.data(), static_cast<uint16_t*>(out.mutable_data()), n);
      break;
    case DType::kBF16:
      convert_f32_to_bf16(wide.data(), static_cast<uint16_t*>(out.mutable_data()), n);
      break;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) static_cast<double*>(out.mutable_data())[i] = wide[i];
      break;
    default:
      throw Error("cannot convert " + std::string(dtype_name(dtype_)) + " tensor to " +
                  std::string(dtype_name(dtype)));
  }
  return out;
}

bool Tensor::bit_equal(const Tensor& other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ &&
         (nbytes() == 0 || std::memcmp(data_, other.data_, nbytes()) == 0);
}

}  // namespace lowbit
