// Tensor: dtype + shape + row-major strides over storage that is either owned
// (64-byte aligned heap memory) or borrowed (a zero-copy view into an mmap'd file).
//
// A borrowed view keeps whatever owns its bytes alive through `keepalive`, so a
// Tensor taken from a SafetensorsFile stays valid after the file object is gone.
// Borrowed views are read-only: mutable_data() on one throws, because the bytes
// belong to a file mapped PROT_READ.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/core/dtype.h"
#include "lowbit/core/error.h"

namespace lowbit {

using Shape = std::vector<int64_t>;

// "[2, 3, 4]"
std::string shape_to_string(const Shape& shape);
// Product of the dimensions; throws Error when a dimension is negative or the product
// overflows int64 (untrusted shapes come from files).
int64_t shape_numel(const Shape& shape);

// Widens `count` elements of an F32/F16/BF16 buffer to f32 (exact); Error for other dtypes.
// Used per row or per tile, so no caller has to copy a whole tensor to f32.
void widen_to_f32(DType dtype, const void* data, int64_t count, float* out);

class Tensor {
 public:
  Tensor() = default;

  // Owning, zero-filled.
  static Tensor zeros(DType dtype, Shape shape);
  // Owning copy of `bytes` (must be exactly numel * dtype_size bytes).
  static Tensor copy_of(DType dtype, Shape shape, const void* bytes, size_t size);
  // Borrowed, read-only view of `data`; `keepalive` owns the bytes.
  static Tensor borrowed(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keepalive);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }  // in elements, row-major
  int64_t dim(size_t axis) const { return shape_.at(axis); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool defined() const { return data_ != nullptr || numel_ == 0; }
  bool owns_storage() const { return owned_; }

  const void* data() const { return data_; }
  void* mutable_data();
  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(data_), nbytes()}; }

  // Typed access; throws Error when T does not match the dtype.
  template <class T> std::span<const T> values() const {
    check_dtype(DTypeOf<T>::value);
    return {static_cast<const T*>(data_), static_cast<size_t>(numel_)};
  }
  template <class T> std::span<T> mutable_values() {
    check_dtype(DTypeOf<T>::value);
    return {static_cast<T*>(mutable_data()), static_cast<size_t>(numel_)};
  }

  // The same bytes seen with another shape of equal element count (shares storage).
  Tensor reshaped(Shape shape) const;
  // Row `index` of the first axis, as a view sharing storage.
  Tensor row(int64_t index) const;
  // A converted owning copy. Float <-> float conversions round to nearest-even;
  // other conversions throw (no silent integer/float reinterpretation).
  Tensor to(DType dtype) const;
  // Every element as f32 (exact for f16/bf16/f32).
  std::vector<float> to_f32_vector() const;
  // Bitwise equality of dtype, shape and bytes.
  bool bit_equal(const Tensor& other) const;

 private:
  Tensor(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keepalive, bool owned);
  void check_dtype(DType expected) const;

  DType dtype_ = DType::kF32;
  Shape shape_;
  std::vector<int64_t> strides_;
  int64_t numel_ = 0;
  const void* data_ = nullptr;
  std::shared_ptr<const void> keepalive_;
  bool owned_ = false;
};

}  // namespace lowbit
