// SparseTensor: a pruned weight matrix W [rows = outputs, cols = inputs] — its mask, and its values
// either as floats of a dtype (F32/F16/BF16) or as a QuantizedTensor whose pruned entries hold the
// code that stands for exactly 0 (joint sparsity + quantization). What the pruning methods return
// (sparsity.h, sparsegpt.h) and what the writers store compressed.
//
// Stored layouts (docs/FORMATS.md, "sparse layers"; io/quantized_layout.h SparseLayoutSpec):
//   N:M     each aligned group of m columns keeps exactly min(n, width) slots: the kept positions in
//           ascending order, padded (when a group keeps fewer) with the lowest pruned positions,
//           which then hold the value 0. Per row: slot positions at index_bits each, packed; the
//           slots' values ([rows, slots] floats, or their codes packed at `bits` per row).
//   bitmap  one bit per weight (1 = kept); the kept values in row-major order (floats), or each
//           row's kept codes packed on their own (rows start on a byte), rows one after another.
// A quantized layer's scales and zero points stay per (row, group of original columns), as in
// QuantizedTensor; the pruned entries' codes are not stored (they decode to 0 by definition).
//
// In memory the values are dense (rows x cols, zeros at pruned entries) — what calibration and
// the densified forward pass need; kernels repack (kernels/sparse24_gemv.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/compress/sparsity.h"
#include "lowbit/core/dtype.h"
#include "lowbit/io/quantized_layout.h"

namespace lowbit {

class SparseTensor {
 public:
  SparseTensor() = default;

  // Float values: `weight` rows x cols f32; the kept values are rounded (nearest-even) to
  // value_dtype, the pruned ones (mask 0) set to 0. N:M patterns store slots as above; unstructured
  // ones a bitmap. Throws Error when sizes disagree, a weight is not finite, or the mask breaks an
  // N:M pattern (more than n kept in a group).
  static SparseTensor from_float(std::span<const float> weight, std::vector<uint8_t> mask, int64_t rows, int64_t cols,
                                 const SparsityPattern& pattern, DType value_dtype);
  // Quantized values: every entry the mask prunes must decode to exactly 0 (Error otherwise, naming
  // it). No g_idx (Error).
  static SparseTensor from_quantized(QuantizedTensor tensor, std::vector<uint8_t> mask, const SparsityPattern& pattern);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  const SparseLayoutSpec& layout() const { return layout_; }
  bool quantized() const { return quantized_.has_value(); }
  const QuantizedTensor& quantized_tensor() const;  // Error unless quantized()
  DType value_dtype() const { return value_dtype_; }  // float values' dtype
  std::span<const uint8_t> mask() const { return mask_; }
  // The fraction of weights pruned (mask zeros; N:M padding slots count as kept).
  double sparsity() const { return mask_sparsity(mask_); }
  // The f32 matrix it stands for, rows x cols (zeros at pruned entries).
  std::vector<float> dense() const;
  // The spec config.json records (sparse layout; the quantized scheme or the float dtype).
  QuantizedLayerSpec spec() const;

  // The stored parts (io/quantized_layout.h quantized_parts names them):
  std::vector<uint8_t> stored_index() const;  // .sparse_index (N:M) or .sparse_bitmap, rows x bytes
  std::vector<uint8_t> stored_values() const; // .values bytes (floats of value_dtype) or .qweight bytes
  // Bytes of everything stored (index + values + scales + zero points).
  int64_t storage_bytes() const;
  double bits_per_weight() const;  // 8 · storage_bytes / (rows · cols)

  // Back from the stored parts: `spec` as config.json records it; index and values as above;
  // scales [rows x groups] and unpacked zero points [rows x groups] (asymmetric grids) for quantized
  // layers. Validates everything (sizes, positions ascending and in range, bitmap pad bits zero,
  // codes and pad bits, values finite); throws Error.
  static SparseTensor from_stored(const QuantizedLayerSpec& spec, std::span<const uint8_t> index,
                                  std::span<const uint8_t> values, std::vector<float> scales = {},
                                  std::vector<uint8_t> zero_points = {});

 private:
  int64_t rows_ = 0, cols_ = 0;
  SparseLayoutSpec layout_;
  std::vector<uint8_t> mask_;                 // rows x cols, 1 = kept (N:M: the stored slots)
  std::optional<QuantizedTensor> quantized_;  // quantized values
  std::vector<float> values_;                 // float values: rows x cols, exact in value_dtype_
  DType value_dtype_ = DType::kF16;
};

}  // namespace lowbit
