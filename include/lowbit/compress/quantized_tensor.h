// QuantizedTensor: a weight matrix W [rows = outputs, cols = inputs] stored as packed b-bit codes
// of a scalar grid (a numerics Format), with one scale — and, for asymmetric integer grids, one
// zero point — per (row, group of input columns). What every compression method returns and what
// writers and kernels consume.
//
// Value of element (r, c), with g = group_of(c):
//     symmetric grids   W[r, c] = element.decode(code[r, c]) * scale[r, g]
//     asymmetric (uintB) W[r, c] = (code[r, c] - zero_point[r, g]) * scale[r, g]
// computed in f32 (one rounding: the product). Scales are stored values of `scale_dtype`
// (f16 by default): a method chooses a scale, rounds it into the dtype, and rounds the weights
// with that rounded scale, so the dequantized value is exactly what the stored bytes imply.
//
// Groups: `group_size` consecutive input columns share a scale (0 = the whole row); the last group
// of a row is shorter when cols is not a multiple. With act-order GPTQ and dynamic groups, the
// columns of a group are not consecutive: then g_idx[c] names column c's group (as GPTQ's g_idx
// tensor does); otherwise g_idx is empty and group_of(c) = c / group_size.
//
// Layout (what storage_bytes() counts, and what writers store):
//   codes        rows x row_bytes(), row_bytes = ceil(cols * bits / 8): each row packed on its own
//                (numerics packing: LSB-first, code i at bits [i*b, (i+1)*b) of the row, pad bits 0)
//   scales       rows x groups_per_row() values of scale_dtype (2 bytes for f16/bf16, 4 for f32)
//   zero points  asymmetric grids only: rows x groups_per_row() codes of `bits` bits, each row
//                packed like the codes (ceil(groups * bits / 8) bytes per row)
//   g_idx        when present: cols int32
//   minimums     float_min schemes only: rows x groups_per_row() values of scale_dtype
//   tensor scale F8_E4M3 scales only: one f32 (NVFP4's second level)
//
// 8-bit float scales give the real MX and NVFP4 layouts (BlockFormat::mxfp4() / nvfp4() in numerics):
//   MXFP4  e2m1 codes, groups of 32, F8_E8M0 scales (2^(e-127), unsigned, no zero);
//   NVFP4  e2m1 codes, groups of 16, F8_E4M3 scales read as unsigned UE4M3, times one f32 tensor
//          scale S. NVFP4 lets S be any f32 (amax / (448 · 6)); lowbit holds it to a power of two, so
//          that scale × S is exact and the held f32 scales (scale() below, what kernels read) decode
//          exactly what the bytes say. scales_tensor() and from_parts() deal in the stored values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/dtype.h"
#include "lowbit/core/tensor.h"
#include "lowbit/numerics/block_format.h"
#include "lowbit/numerics/format.h"

namespace lowbit {

// What grid, which grouping, which scale dtype. Shared by every method (rtn.h, gptq.h).
struct QuantScheme {
  // The scalar grid, 1..8 bits: Format::int_symmetric(b) (symmetric ±(2^(b-1)-1), the default),
  // Format::uint(b) (asymmetric: per-group zero point), Format::int_full(b), Format::nf4(),
  // Format::e2m1(), Format::e4m3(), codebooks, ... Scales map each group's range onto the grid's
  // largest magnitude (numerics' absmax rule); non-uniform grids round to the nearest level.
  Format element = Format::int_symmetric(4);
  // Input columns per scale; 0 = one scale per row (per-channel).
  int64_t group_size = 128;
  // kF16 (default, what GPTQ/AWQ checkpoints store), kBF16, kF32, kF8E8M0 (MX: powers of two) or
  // kF8E4M3 (NVFP4: UE4M3 with a tensor scale; see the layout above). Scales beyond the dtype's range
  // saturate to its largest finite value; scales below its smallest subnormal round to 0 (the group
  // then decodes to 0 — use kF32 for weights that tiny).
  DType scale_dtype = DType::kF16;
  // Whether each group also chooses its scale's sign. A grid whose ends differ (int_full's extra
  // -2^(b-1), IQ4_NL's -127 vs 113) can then put its longer end on the side of the group's largest
  // magnitude — a negative scale mirrors the grid — as ggml's Q4_0/Q5_0/IQ4_NL quantizers do
  // (their d = max / lowest level, signed). Symmetric grids gain nothing; zero-point grids refuse
  // it. The stored scale simply is negative: decoding needs no flag.
  bool signed_scales = false;
  // Unsigned grids only (uintB): a float minimum per group instead of an integer zero point,
  // value = code × scale + min (ggml's Q4_1/Q5_1), the min stored like the scale (scale_dtype). Such
  // tensors are written as GGUF only; they decode through the dequantized path, not packed_gemv.
  bool float_min = false;
  // F8_E4M3 scales only: the tensor scale is held at 1 (ggml's NVFP4 blocks have none), so that a
  // method's scales are UE4M3 values themselves. The layout is unchanged (S = 1 is still stored).
  bool unit_tensor_scale = false;

  // Two-level scales, as ggml's k-quants (Q2_K … Q6_K) store them: the groups of each run of `size`
  // columns (a super-block) share one f16 factor d, and each group's scale is d × an integer in
  // [scale_lo, scale_hi]; with float minimums, each group's minimum is −dmin × an integer in
  // [0, min_hi] with one more f16 dmin per super-block. The scales and minimums themselves are held
  // as f32 values (scale_dtype kF32), where d × integer is exact, so decoding is unchanged; methods
  // choose d, dmin and the integers together (group_quantizer's choose_super_block) and GGUF export
  // recovers them. size 0 (the default): every group's scale stands alone.
  struct SuperBlock {
    int64_t size = 0;
    int32_t scale_lo = 0, scale_hi = 0;  // the integer multiplying d
    int32_t min_hi = 0;                  // float_min: the integer multiplying dmin, 0 … min_hi
    // Bits each stored integer takes (what storage_bytes counts): ceil(log2(range size)).
    int scale_bits() const;
    int min_bits() const;
    bool operator==(const SuperBlock&) const = default;
  };
  SuperBlock super_block;

  // Integer grids: symmetric = Format::int_symmetric(bits), asymmetric = Format::uint(bits).
  static QuantScheme integer(int bits, int64_t group_size, bool symmetric, DType scale_dtype = DType::kF16);
  // Any grid.
  static QuantScheme with_format(Format element, int64_t group_size, DType scale_dtype = DType::kF16);
  // The block-scaled layouts by name: "mxfp4" (e2m1, groups of 32, E8M0 scales), "mxfp8" (e4m3, 32,
  // E8M0) and "nvfp4" (e2m1, 16, UE4M3 scales times a tensor scale); nullopt for other names.
  static std::optional<QuantScheme> preset(std::string_view name);

  int bits() const { return element.bits(); }
  // MX's E8M0 and NVFP4's UE4M3 scales: unsigned, a byte each.
  bool eight_bit_scales() const { return scale_dtype == DType::kF8E4M3 || scale_dtype == DType::kF8E8M0; }
  // F8_E4M3 scales (UE4M3's range 2^-9 .. 448 cannot hold weight scales alone) come with an f32 tensor scale.
  bool has_tensor_scale() const { return scale_dtype == DType::kF8E4M3; }
  // The tensor scale a method uses for these weights: the smallest power of two S with
  // max|w| / S <= 448 · element max (1 without a tensor scale, or with unit_tensor_scale).
  float tensor_scale_for(std::span<const float> weights) const;
  // Unsigned integer grids carry a zero point per group (unless they carry a float minimum).
  bool asymmetric() const;
  // The numerics view of the scheme (element, saturating scale format, groups along rows), for
  // numerics' scale search (choose_block_scale) and block quantizer.
  BlockFormat block_format() const;
  // Throws Error (naming the option and the value found) unless the scheme can quantize rows of
  // `cols` columns: bits 1..8, group_size 0..cols, scale dtype f16/bf16/f32, a grid with positive
  // values and — unless it is an unsigned integer grid — negative ones too.
  void validate(int64_t cols) const;
  // e.g. "int4 g128 (f16 scales)", "uint3 per-row (f16 scales, zero points)", "nf4 g64 (f32 scales)".
  std::string to_string() const;
};

class QuantizedTensor {
 public:
  QuantizedTensor() = default;
  // rows x cols, every code 0, every scale 0 (every value 0), zero points 0, no g_idx.
  // Throws Error when the scheme does not validate for `cols` or a size is negative.
  QuantizedTensor(int64_t rows, int64_t cols, QuantScheme scheme);

  // From stored parts (a loader): codes packed as described above, scales [rows x groups],
  // zero points unpacked [rows x groups] (empty for symmetric grids), g_idx [cols] or empty.
  // F8_E4M3 scales are the stored UE4M3 values, multiplied here by tensor_scale.
  // Validates everything: sizes, zero pad bits, codes/zero points < 2^bits, scales finite and
  // exactly representable in scale_dtype, g_idx entries in [0, groups). Throws Error.
  static QuantizedTensor from_parts(int64_t rows, int64_t cols, QuantScheme scheme, std::vector<uint8_t> packed_codes,
                                    std::vector<float> scales, std::vector<uint8_t> zero_points = {},
                                    std::vector<int32_t> g_idx = {}, std::vector<float> mins = {},
                                    float tensor_scale = 1.0f);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  const QuantScheme& scheme() const { return scheme_; }
  int bits() const { return scheme_.bits(); }
  // The resolved group size (cols for per-row schemes) and the number of groups per row.
  int64_t group_size() const { return group_; }
  int64_t groups_per_row() const { return groups_; }
  int64_t row_bytes() const { return row_bytes_; }
  int64_t group_of(int64_t col) const { return g_idx_.empty() ? col / group_ : g_idx_[static_cast<size_t>(col)]; }

  std::span<const uint8_t> packed_codes() const { return codes_; }
  std::span<const uint8_t> packed_row(int64_t row) const;
  std::span<const float> scales() const { return scales_; }        // [rows x groups], times the tensor scale
  // NVFP4's f32 second level (1 for other scale dtypes); every held scale is a stored value times it.
  float tensor_scale() const { return tensor_scale_; }
  // Sets it before any row is set (methods: scheme().tensor_scale_for(weights)). Throws Error unless
  // the scheme has a tensor scale (or the value is 1) and it is a power of two in 2^-117 .. 2^118.
  void set_tensor_scale(float tensor_scale);
  std::span<const uint8_t> zero_points() const { return zeros_; }  // [rows x groups], empty when symmetric
  std::span<const int32_t> g_idx() const { return g_idx_; }        // [cols] or empty
  std::span<const float> mins() const { return mins_; }            // [rows x groups], float_min schemes only
  float scale(int64_t row, int64_t group) const { return scales_[static_cast<size_t>(row * groups_ + group)]; }
  int zero_point(int64_t row, int64_t group) const {
    return zeros_.empty() ? 0 : zeros_[static_cast<size_t>(row * groups_ + group)];
  }
  // The stored scales as a [rows, groups] tensor of scale_dtype (exact: they are representable;
  // F8_E4M3 scales divided by the tensor scale first).
  Tensor scales_tensor() const;
  // Zero points packed per row at `bits` bits (rows x ceil(groups * bits / 8) bytes), as stored.
  std::vector<uint8_t> packed_zero_points() const;

  // Row r's codes, unpacked (cols entries).
  void codes_of_row(int64_t row, std::span<uint8_t> out) const;
  std::vector<uint8_t> codes() const;  // all rows, unpacked, row-major

  // Sets row r: codes (cols entries, each < 2^bits), its groups' scales (groups_per_row entries,
  // each representable in scale_dtype — methods round them so; with a tensor scale, each is a stored
  // UE4M3 value times tensor_scale()) and zero points (asymmetric only,
  // groups_per_row entries < 2^bits; otherwise empty). Throws Error on any mismatch. Rows may be
  // set concurrently from different threads.
  // Float-minimum schemes give each group's minimum (representable in scale_dtype) in `mins`.
  void set_row(int64_t row, std::span<const uint8_t> codes, std::span<const float> scales,
               std::span<const uint8_t> zero_points = {}, std::span<const float> mins = {});
  // Column → group map for non-consecutive groups (cols entries in [0, groups)); empty clears it.
  void set_g_idx(std::vector<int32_t> g_idx);

  // The f32 matrix the codes, scales and zero points stand for, [rows x cols] row-major.
  std::vector<float> dequantize() const;
  void dequantize(std::span<float> out) const;
  void dequantize_row(int64_t row, std::span<float> out) const;

  // Bytes of the layout above: codes + scales + zero points + g_idx (+ 4 for a tensor scale).
  int64_t storage_bytes() const;
  // 8 * storage_bytes() / (rows * cols): the true bits per weight including every overhead.
  double bits_per_weight() const;

 private:
  void check_row(int64_t row) const;

  int64_t rows_ = 0, cols_ = 0, group_ = 1, groups_ = 0, row_bytes_ = 0;
  QuantScheme scheme_;
  float tensor_scale_ = 1.0f;
  std::vector<uint8_t> codes_;   // rows x row_bytes_
  std::vector<float> scales_;    // rows x groups_
  std::vector<uint8_t> zeros_;   // rows x groups_ (asymmetric)
  std::vector<int32_t> g_idx_;   // cols or empty
  std::vector<float> mins_;      // rows x groups_ (float_min)
  std::vector<float> levels_;    // element.decode(code) for every code (symmetric dequantization)
};

}  // namespace lowbit
