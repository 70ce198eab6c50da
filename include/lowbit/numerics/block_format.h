// Block-scaled quantization: an element Format times a per-block scale stored in a scale
// Format, over blocks chosen by a Granularity. Covers OCP MX v1.0 (MXFP8/6/4, MXINT8: blocks of
// 32, E8M0 shared scale), NVFP4 (e2m1 elements, blocks of 16, ue4m3 block scale times an fp32
// per-tensor scale), NF4/NF3 with QLoRA absmax blocks, grouped INT with optional zero points
// (GPTQ/AWQ layouts), dynamic fixed point with a shared power-of-two exponent, and any other
// element x scale x block combination, including square 2-D tiles.
//
// Tensors are seen as a 2-D [rows, cols] view: rank 1 is one row; higher ranks flatten the
// leading dimensions into rows (the last axis is contiguous). The result keeps codes and scales
// (quantized methods and kernels consume them), not only the fake-quantized floats.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/tensor.h"
#include "lowbit/numerics/format.h"
#include "lowbit/numerics/rounding.h"

namespace lowbit {

// Which elements share a scale: blocks of block_rows x block_cols elements of the 2-D view,
// 0 meaning the whole dimension. Blocks at the right and bottom edges are cut short when a
// dimension is not a multiple (172 columns in groups of 32: five groups of 32, one of 12).
struct Granularity {
  int64_t block_rows = 0;
  int64_t block_cols = 0;

  static Granularity per_tensor() { return {0, 0}; }
  static Granularity per_row() { return {1, 0}; }
  static Granularity per_column() { return {0, 1}; }
  // `size` consecutive elements along `axis` (1: within a row, 0: down a column).
  static Granularity groups(int64_t size, int axis = 1);
  // Tiles of rows x cols; square tiles make quantize(Wᵀ) equal quantize(W)ᵀ.
  static Granularity tiles(int64_t rows, int64_t cols) { return {rows, cols}; }

  // "tensor", "row", "column", "group 32", "group 32 along axis 0", "tile 16x16".
  std::string to_string() const;
  friend bool operator==(const Granularity&, const Granularity&) = default;
};

// How a block's range becomes its scale.
enum class ScaleRule : uint8_t {
  // scale = range / element.max_value() (divided by the tensor scale when there is one), then
  // rounded into the scale format with `scale_rounding`. Unsigned integer elements are
  // asymmetric: scale = (hi - lo) / (2^b - 1) over [lo, hi] ∋ 0, zero point = round(-lo / scale).
  kAbsmax,
  // OCP MX v1.0 section 6.3: X = 2^(floor(log2(range)) - emax_elem), emax_elem = floor(log2 of the
  // element max); range 0 counts as 2^-126, exponents clamp below at the scale format's smallest
  // and a range that is Inf/NaN, or an exponent past the scale format's largest, gives NaN (the
  // reference implementation, microsoft/microxcaling mx_ops.py). Elements then saturate.
  kMx,
};

struct BlockFormat {
  Format element = Format::e2m1();
  Format scale = Format::fp32();
  Granularity granularity = Granularity::groups(32);
  ScaleRule rule = ScaleRule::kAbsmax;
  Rounding scale_rounding = Rounding::kNearestEven;  // kAbsmax; deterministic modes only
  // NVFP4's second level: an fp32 tensor scale S = amax(tensor) / (scale.max * element.max)
  // (amax/(448*6) for NVFP4); block scales store range / element.max / S; values are
  // code * (block scale * S).
  bool tensor_scale = false;
  std::string name;  // the preset's name, empty for custom combinations

  // OCP MX v1.0 concrete formats: 32 elements along rows, E8M0 scale, kMx rule, saturating elements.
  static BlockFormat mxfp8_e4m3();
  static BlockFormat mxfp8_e5m2();
  static BlockFormat mxfp6_e3m2();
  static BlockFormat mxfp6_e2m3();
  static BlockFormat mxfp4();
  static BlockFormat mxint8();  // int8 with an implicit 2^-6 (values -2 .. 1 63/64)
  // NVFP4: e2m1, 16 along rows, ue4m3 block scales (round-to-nearest-even, saturating), fp32 tensor scale.
  static BlockFormat nvfp4();
  // NVFP4 with 16x16 tiles (the weight layout of NVFP4 training, Wᵀ quantizes like W).
  static BlockFormat nvfp4_2d();
  // QLoRA: absmax blocks of 64 along rows with fp32 scales.
  static BlockFormat nf4();
  static BlockFormat nf3();
  // Grouped integers as GPTQ/AWQ store them: fp16 scales, groups along rows (0 = per row);
  // asymmetric uses unsigned codes with a zero point per group.
  static BlockFormat int_grouped(int bits, int64_t group, bool asymmetric);
  // Dynamic fixed point: b-bit symmetric integer mantissas sharing a power-of-two exponent
  // (E8M0) per tensor or per block, chosen as the smallest that does not clip
  // (rule kAbsmax, scale rounding toward +Inf). See fixed_point.h for the accumulator rule.
  static BlockFormat dynamic_fixed_point(int bits, Granularity granularity = Granularity::per_tensor());

  // Presets by name: mxfp8 (= mxfp8_e4m3), mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4,
  // mxint8, nvfp4, nvfp4_2d, nf4_b64 / nf3_b64 (QLoRA), intB_gN / uintB_gN / intB_row, dfpB,
  // dfpB_gN. nullopt when the name is none of these.
  static std::optional<BlockFormat> parse_preset(std::string_view name);
  // The preset names and one-line descriptions, for `lowbit formats`.
  static std::vector<BlockFormat> presets();

  // The preset name, or a description such as "e2m1 x ue4m3 / group 16 / absmax / tensor scale".
  std::string to_string() const;
  // Storage per element including scales (and zero points) for a block of full size,
  // scales counted in whole bytes: mxfp4 4.25, nvfp4 4.5, nf4_b64 4.5.
  double bits_per_element() const;
  // Throws Error unless the combination is usable (e.g. kMx needs a power-of-two scale format).
  void validate() const;
};

// How the range a block's scale comes from is chosen.
enum class ScaleSearch : uint8_t {
  kAbsmax,      // max |x| (asymmetric: min and max)
  kPercentile,  // the percentile-th value of |x| (asymmetric: of x at p and 100 - p), nearest rank
  kMse,         // the clipping ratio c = 1 - k / mse_grid, k < mse_max_shrink * mse_grid, minimizing
                // Σ importance_i (x_i - q(x_i))² with round-to-nearest-even (GPTQ's search; ties keep the larger c)
  kAbsMean,     // scale = mean |x| (XNOR-Net / BitNet b1.58 for binary and ternary)
};

struct ScaleOptions {
  ScaleSearch search = ScaleSearch::kAbsmax;
  double percentile = 99.9;
  int mse_grid = 100;
  double mse_max_shrink = 0.8;
};

struct BlockQuantizeOptions {
  Rounding rounding = Rounding::kNearestEven;  // elements
  RandomKey random;                            // element i (row-major) draws bits(random.offset + i)
  ScaleOptions scale;
  std::span<const float> importance;  // empty, or one weight >= 0 per element, for kMse
};

// Codes and scales of a block-quantized tensor.
struct BlockQuantized {
  BlockFormat format;
  Shape shape;
  int64_t rows = 0, cols = 0;              // the 2-D view
  int64_t block_rows = 0, block_cols = 0;  // resolved block extents
  int64_t grid_rows = 0, grid_cols = 0;    // blocks down and across; block b = (b / grid_cols, b % grid_cols)
  std::vector<uint16_t> codes;             // one per element, row-major, in the element format
  std::vector<uint32_t> scale_codes;       // one per block, in the scale format
  std::vector<float> scales;               // scale.decode(scale_codes[b])
  std::vector<int32_t> zero_points;        // asymmetric formats: per block, values are code - zero point
  float tensor_scale = 1.0f;               // NVFP4's fp32 second level, else 1

  int64_t block_count() const { return grid_rows * grid_cols; }
  int64_t block_of(int64_t row, int64_t col) const { return (row / block_rows) * grid_cols + col / block_cols; }
  // What block b's codes decode with (the element format with b's zero point).
  Format element_format(int64_t block) const;
  // The multiplier of block b's decoded codes: scales[b] * tensor_scale in fp32.
  float effective_scale(int64_t block) const;
  // value = element_format(b).decode(code) * effective_scale(b).
  std::vector<float> dequantize() const;
  void dequantize(std::span<float> out) const;
};

BlockQuantized quantize_blocks(std::span<const float> values, const Shape& shape, const BlockFormat& format,
                               const BlockQuantizeOptions& options = {});
// dequantize(quantize_blocks(...)) without materializing codes.
void quantize_dequantize_blocks(std::span<const float> in, std::span<float> out, const Shape& shape,
                                const BlockFormat& format, const BlockQuantizeOptions& options = {});

// One block's scale (for per-group quantizers such as GPTQ that quantize column by column).
struct BlockScale {
  float scale = 0;          // decoded scale (without the tensor scale)
  uint32_t scale_code = 0;  // in format.scale
  int32_t zero_point = 0;   // asymmetric formats
};
BlockScale choose_block_scale(std::span<const float> values, std::span<const float> importance,
                              const BlockFormat& format, const ScaleOptions& options = {}, float tensor_scale = 1.0f);
// NVFP4's per-tensor scale for `values` (1 when the format has none, or all values are 0).
float compute_tensor_scale(std::span<const float> values, const BlockFormat& format);

}  // namespace lowbit
