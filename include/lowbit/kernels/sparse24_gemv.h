// 2:4 semi-structured sparse weights for decode (one token): y[r] = Σ_c W[r, c] · x[c] read straight
// from a compressed layout, so a 2:4 model runs without densifying and reads about half the bytes.
//
// 2:4 means: every aligned group of 4 consecutive input columns of a row (columns 4q .. 4q+3) holds
// at most 2 nonzeros; the last group of a row is shorter when cols is not a multiple of 4 and holds
// at most 2 as well. Each group keeps exactly two value *slots*, so the layout is regular:
//
//   values    rows x (2 · groups) of the value dtype, groups = ceil(cols / 4). Slot 2q + j of a row
//             holds the group's j-th nonzero in column order; a slot without a nonzero holds 0.
//   metadata  rows x ceil(groups / 2) bytes: slot s's position inside its group (0..3, column
//             4 · (s / 2) + position) in bits [2s, 2s + 2) of the row, LSB-first — 4 bits per group;
//             an empty slot has position 0 (always inside the group, even a ragged last one).
//   scales    8-bit values only: rows x scale groups as f32, W = int8 · scale[r, c / group_size].
//
// Bytes per 4 columns: f16/bf16 4 + 0.5 (dense: 8), int8 2 + 0.5 (+ scales; dense: 4), f32 8 + 0.5.
// The layout does not depend on the instruction set: a SIMD step of N lanes reads N slots (N / 2
// groups), the 2N bits of metadata for them, and the 2N values of x those groups span, and gathers
// x[4 · (s / 2) + position] into lane s by a two-table lane permute (AVX-512: one vpermt2ps).
//
// Arithmetic of a row (what sparse24_gemv_rows_reference does, slot by slot in order):
//   f32/f16/bf16   y = Σ_s value_s · x[col_s]
//   int8           y = Σ_g s_g · acc_g,   acc_g = Σ_{s in scale group g} code_s · x[col_s]
// The SIMD kernel sums the same products in lane order (several accumulators, then a lane sum), so
// it agrees with the reference within a few f32 ulps of Σ|W_rc · x_c| — and bit for bit whenever
// the products and partial sums are exact. The summation order of a row depends only on the row and
// the instruction set, never on [row_begin, row_end): any split of rows over threads gives
// bit-identical results. An empty slot adds 0 · x[4q] (NaN when that x is Inf or NaN).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/core/dtype.h"

namespace lowbit {

class Sparse24Matrix {
 public:
  Sparse24Matrix() = default;

  // From a dense row-major f32 matrix [rows x cols]. Values are stored as value_dtype (kF32, kF16,
  // kBF16); every nonzero must be finite and exactly representable in it. Zeros of either sign are
  // not stored (to_dense gives +0). Throws Error naming the row and column(s) of a group with more
  // than 2 nonzeros or of a value that does not fit.
  static Sparse24Matrix from_dense(const float* dense, int64_t rows, int64_t cols, DType value_dtype);

  // From an 8-bit two's complement QuantizedTensor (Format::int_symmetric(8) or int_full(8), no
  // fraction bits, no zero points, no g_idx) whose codes satisfy 2:4 (code 0 = zero). Any group size
  // that is per-row or a multiple of 4 (so no group of 4 columns straddles two scales), ragged last
  // group included. Values are the int8 codes, scales the tensor's scales as f32. Throws Error.
  static Sparse24Matrix from_quantized(const QuantizedTensor& w);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // kF32, kF16, kBF16, or kI8 for a matrix made by from_quantized.
  DType value_dtype() const { return dtype_; }
  int64_t groups_per_row() const { return (cols_ + 3) / 4; }
  int64_t slots_per_row() const { return 2 * groups_per_row(); }
  int64_t metadata_row_bytes() const { return (groups_per_row() + 1) / 2; }
  // int8: columns per scale (cols when per-row) and scales per row; 0 for float values.
  int64_t scale_group_size() const { return scale_group_; }
  int64_t scale_groups_per_row() const { return scale_groups_; }

  const uint8_t* values() const { return values_.data(); }  // rows x slots_per_row of value_dtype
  const uint8_t* metadata() const { return meta_.data(); }  // rows x metadata_row_bytes
  const float* scales() const { return scales_.data(); }    // rows x scale_groups_per_row, int8 only

  // What the kernel reads: values + metadata + scales (4 bytes each), the layout above exactly
  // (not the few bytes of padding after the metadata that let the kernel load 8 bytes at a time).
  uint64_t storage_bytes() const;
  // The f32 matrix it stands for, [rows x cols] row-major (int8: float(code) · scale, as
  // QuantizedTensor::dequantize computes it).
  std::vector<float> to_dense() const;
  // Rows [row_begin, row_end) of that matrix into out ((row_end − row_begin) x cols): what a
  // several-token product widens one tile at a time. Throws Error for a bad range.
  void to_dense_rows(int64_t row_begin, int64_t row_end, float* out) const;

 private:
  // Storage starting on a cache line, so the kernel's vector loads of a row rarely split lines.
  template <class T>
  struct CacheLineAllocator {
    using value_type = T;
    CacheLineAllocator() = default;
    template <class U>
    CacheLineAllocator(const CacheLineAllocator<U>&) {}
    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
    void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
    template <class U>
    bool operator==(const CacheLineAllocator<U>&) const { return true; }
  };

  int64_t rows_ = 0, cols_ = 0, scale_group_ = 0, scale_groups_ = 0;
  DType dtype_ = DType::kF32;
  std::vector<uint8_t, CacheLineAllocator<uint8_t>> values_;
  std::vector<uint8_t, CacheLineAllocator<uint8_t>> meta_;
  std::vector<float> scales_;
};

// y[r] for r in [row_begin, row_end); x has cols() values, y is indexed by absolute row. SIMD,
// the instruction set chosen at run time (Highway). Throws Error for a bad row range. Threads are
// the caller's (split the rows, as for dense_gemv_rows).
void sparse24_gemv_rows(const Sparse24Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y);

// The arithmetic above in plain scalar C++, slot by slot (the test oracle).
void sparse24_gemv_rows_reference(const Sparse24Matrix& w, const float* x, int64_t row_begin, int64_t row_end,
                                  float* y);

}  // namespace lowbit
