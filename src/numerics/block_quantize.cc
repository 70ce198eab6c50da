// Block-scaled quantization: scales per block (scale.cc), then every element rounded with its
// block's scale by the element-wise kernels. Both passes are parallel and deterministic: blocks
// and elements write only their own outputs, and stochastic rounding draws from the element's
// row-major index.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/numerics/block_format.h"
#include "numerics/elementwise.h"
#include "numerics/kernel_params.h"
#include "numerics/scale_rule.h"

namespace lowbit {

namespace {

struct Layout {
  int64_t rows = 0, cols = 0, block_rows = 1, block_cols = 1, grid_rows = 0, grid_cols = 0;

  int64_t blocks() const { return grid_rows * grid_cols; }
  int64_t block_of(int64_t row, int64_t col) const { return (row / block_rows) * grid_cols + col / block_cols; }
};

Layout layout_of(const Shape& shape, const Granularity& granularity) {
  Layout l;
  const int64_t numel = shape_numel(shape);
  l.cols = shape.empty() ? 1 : shape.back();
  l.rows = l.cols == 0 ? 0 : numel / l.cols;
  l.block_rows = granularity.block_rows > 0 ? granularity.block_rows : std::max<int64_t>(l.rows, 1);
  l.block_cols = granularity.block_cols > 0 ? granularity.block_cols : std::max<int64_t>(l.cols, 1);
  l.grid_rows = (l.rows + l.block_rows - 1) / l.block_rows;
  l.grid_cols = (l.cols + l.block_cols - 1) / l.block_cols;
  return l;
}

// Block b's elements: a view when they are contiguous (whole rows, or part of one row),
// else gathered into `scratch` row by row.
std::span<const float> block_elements(const float* data, const Layout& l, int64_t b, std::vector<float>& scratch) {
  const int64_t r0 = (b / l.grid_cols) * l.block_rows, r1 = std::min(l.rows, r0 + l.block_rows);
  const int64_t c0 = (b % l.grid_cols) * l.block_cols, c1 = std::min(l.cols, c0 + l.block_cols);
  if (c0 == 0 && c1 == l.cols)
    return {data + r0 * l.cols, static_cast<size_t>((r1 - r0) * l.cols)};
  if (r1 - r0 == 1) return {data + r0 * l.cols + c0, static_cast<size_t>(c1 - c0)};
  scratch.clear();
  for (int64_t r = r0; r < r1; ++r) scratch.insert(scratch.end(), data + r * l.cols + c0, data + r * l.cols + c1);
  return scratch;
}

struct Scales {
  std::vector<uint32_t> codes;
  std::vector<float> values;
  std::vector<int32_t> zero_points;
  float tensor_scale = 1.0f;
};

// Grain (in blocks) that gives each parallel task about kElementGrain elements.
int64_t block_grain(const Layout& l) {
  return std::max<int64_t>(1, numerics_detail::kElementGrain / (l.block_rows * l.block_cols));
}

Scales compute_scales(std::span<const float> values, const Layout& l, const BlockFormat& format,
                      const BlockQuantizeOptions& options) {
  Scales s;
  s.tensor_scale = compute_tensor_scale(values, format);
  const int64_t blocks = l.blocks();
  s.codes.resize(static_cast<size_t>(blocks));
  s.values.resize(static_cast<size_t>(blocks));
  const numerics_detail::ScaleRuleConstants rule(format);
  if (rule.asymmetric()) s.zero_points.resize(static_cast<size_t>(blocks));
  const ScaleSearch search = options.scale.search;
  if (search == ScaleSearch::kAbsmax || (search == ScaleSearch::kAbsMean && !rule.asymmetric())) {
    // Fast path: block statistics, then all raw scales rounded into the scale format in one
    // vectorized pass. Same operations as choose_block_scale, so the same scales.
    std::vector<float> raw(static_cast<size_t>(blocks)), lows(static_cast<size_t>(blocks));
    if (search == ScaleSearch::kAbsmax && l.block_rows == 1 && l.block_cols < l.cols) {
      // Groups along rows: one kernel call per row computes every group's range.
      const int64_t grain = std::max<int64_t>(1, numerics_detail::kElementGrain / l.cols);
      parallel_for(l.rows, grain, [&](int64_t begin, int64_t end) {
        std::vector<float> highs(static_cast<size_t>(l.grid_cols));
        for (int64_t row = begin; row < end; ++row) {
          float* row_lows = lows.data() + row * l.grid_cols;
          numerics_detail::group_ranges(values.data() + row * l.cols, static_cast<size_t>(l.cols),
                                        static_cast<size_t>(l.block_cols), !rule.asymmetric(), row_lows, highs.data());
          for (int64_t g = 0; g < l.grid_cols; ++g)
            raw[static_cast<size_t>(row * l.grid_cols + g)] = rule.raw_scale(row_lows[g], highs[g], s.tensor_scale);
        }
      });
    } else {
      parallel_for(blocks, block_grain(l), [&](int64_t begin, int64_t end) {
        std::vector<float> scratch;
        for (int64_t b = begin; b < end; ++b) {
          const auto block = block_elements(values.data(), l, b, scratch);
          float lo = 0.0f, hi = 0.0f;
          if (search == ScaleSearch::kAbsMean) {
            double sum = 0;
            bool nan = false;
            for (float v : block) {
              sum += std::fabs(static_cast<double>(v));
              nan |= std::isnan(v);
            }
            const float mean = block.empty() ? 0.0f : static_cast<float>(sum / static_cast<double>(block.size()));
            raw[static_cast<size_t>(b)] = rule.raw_scale_from_mean(nan ? NAN : mean, s.tensor_scale);
            lows[static_cast<size_t>(b)] = 0.0f;
            continue;
          }
          numerics_detail::group_ranges(block.data(), block.size(), std::max<size_t>(block.size(), 1),
                                        !rule.asymmetric(), &lo, &hi);
          raw[static_cast<size_t>(b)] = rule.raw_scale(lo, hi, s.tensor_scale);
          lows[static_cast<size_t>(b)] = lo;
        }
      });
    }
    const Rounding rounding = format.rule == ScaleRule::kMx ? Rounding::kNearestEven : format.scale_rounding;
    if (format.rule == ScaleRule::kMx && format.scale.subnormals() == Subnormals::kNone) {
      // E8M0-like scales: the raw MX scale is an exact power of two 2^e whose code is e + bias.
      const uint32_t nan_code = format.scale.encode(NAN);
      const int bias = format.scale.bias();
      for (int64_t b = 0; b < blocks; ++b) {
        const float x = raw[static_cast<size_t>(b)];
        s.values[static_cast<size_t>(b)] = x;
        s.codes[static_cast<size_t>(b)] = std::isnan(x) ? nan_code : static_cast<uint32_t>(std::ilogb(x) + bias);
      }
      return s;
    }
    const auto params = numerics_detail::make_kernel_params(format.scale, rounding);
    parallel_for(blocks, numerics_detail::kElementGrain, [&](int64_t begin, int64_t end) {
      numerics_detail::KernelOutput out;
      out.values = s.values.data() + begin;
      out.codes = s.codes.data() + begin;
      out.code_bytes = 4;
      numerics_detail::round_span(format.scale, params, rounding, {}, 0, raw.data() + begin,
                                  static_cast<size_t>(end - begin), 1.0f, out);
      for (int64_t b = begin; b < end && rule.asymmetric(); ++b)
        s.zero_points[static_cast<size_t>(b)] = rule.zero_point(lows[static_cast<size_t>(b)], s.values[static_cast<size_t>(b)]);
    });
    return s;
  }
  parallel_for(blocks, block_grain(l), [&](int64_t begin, int64_t end) {
    std::vector<float> scratch, importance_scratch;
    for (int64_t b = begin; b < end; ++b) {
      const auto block = block_elements(values.data(), l, b, scratch);
      std::span<const float> importance;
      if (!options.importance.empty()) importance = block_elements(options.importance.data(), l, b, importance_scratch);
      const BlockScale scale = choose_block_scale(block, importance, format, options.scale, s.tensor_scale);
      s.codes[static_cast<size_t>(b)] = scale.scale_code;
      s.values[static_cast<size_t>(b)] = scale.scale;
      if (!s.zero_points.empty()) s.zero_points[static_cast<size_t>(b)] = scale.zero_point;
    }
  });
  return s;
}

// Rounds every element with its block's scale; writes values (times the scale) and/or codes.
// Work is split into pieces of one row and whole blocks, so each piece's scales are contiguous.
void round_elements(std::span<const float> in, const Layout& l, const BlockFormat& format, const Scales& scales,
                    const BlockQuantizeOptions& options, float* values, uint16_t* codes) {
  if (in.empty()) return;
  const bool asymmetric = !scales.zero_points.empty();
  const auto params = numerics_detail::make_kernel_params(format.element, options.rounding);
  std::vector<float> effective(scales.values.size());
  for (size_t b = 0; b < effective.size(); ++b) effective[b] = scales.values[b] * scales.tensor_scale;
  // A block spanning whole rows is split freely (every piece of the row has the same scale).
  const bool row_block = l.block_cols >= l.cols;
  const int64_t piece_cols =
      row_block ? std::min(l.cols, numerics_detail::kElementGrain)
                : l.block_cols * std::max<int64_t>(1, numerics_detail::kElementGrain / l.block_cols);
  const int64_t pieces_per_row = (l.cols + piece_cols - 1) / piece_cols;
  const int64_t grain = std::max<int64_t>(1, numerics_detail::kElementGrain / std::min(l.cols, piece_cols));
  const RandomKey& key = options.random;
  parallel_for(l.rows * pieces_per_row, grain, [&](int64_t begin, int64_t end) {
    for (int64_t piece = begin; piece < end; ++piece) {
      const int64_t row = piece / pieces_per_row;
      const int64_t c0 = (piece % pieces_per_row) * piece_cols, c1 = std::min(l.cols, c0 + piece_cols);
      const int64_t first = row * l.cols + c0;
      const int64_t first_block = (row / l.block_rows) * l.grid_cols + c0 / l.block_cols;
      numerics_detail::KernelOutput out;
      out.values = values ? values + first : nullptr;
      out.codes = codes ? codes + first : nullptr;
      out.code_bytes = 2;
      if (!asymmetric) {
        numerics_detail::round_span_groups(format.element, params, options.rounding, key,
                                           key.offset + static_cast<uint64_t>(first), in.data() + first,
                                           static_cast<size_t>(c1 - c0),
                                           static_cast<size_t>(row_block ? c1 - c0 : l.block_cols),
                                           effective.data() + first_block, out);
        continue;
      }
      // Asymmetric: each block rounds with its own zero point (integers always take the SIMD path,
      // so the base format stands in for the scalar fallback that never runs).
      for (int64_t c = c0, b = first_block; c < c1; c += l.block_cols, ++b) {
        const int64_t n = std::min(c1, c + l.block_cols) - c;
        const auto block_params = numerics_detail::with_zero_point(params, format.element, scales.zero_points[b]);
        numerics_detail::KernelOutput block_out = out;
        if (values) block_out.values = values + row * l.cols + c;
        if (codes) block_out.codes = codes + row * l.cols + c;
        const uint64_t index = key.offset + static_cast<uint64_t>(row * l.cols + c);
        numerics_detail::round_span_groups(format.element, block_params, options.rounding, key, index,
                                           in.data() + row * l.cols + c, static_cast<size_t>(n),
                                           static_cast<size_t>(n), &effective[static_cast<size_t>(b)], block_out);
      }
    }
  });
}

void check_inputs(std::span<const float> values, const Shape& shape, const BlockFormat& format,
                  const BlockQuantizeOptions& options) {
  format.validate();
  const int64_t numel = shape_numel(shape);
  require(static_cast<int64_t>(values.size()) == numel, "block quantization",
          "shape " + shape_to_string(shape) + " has " + std::to_string(numel) + " elements but " +
              std::to_string(values.size()) + " values were given");
  require(options.importance.empty() || options.importance.size() == values.size(), "block quantization",
          "importance has " + std::to_string(options.importance.size()) + " weights for " +
              std::to_string(values.size()) + " values");
}

}  // namespace

Format BlockQuantized::element_format(int64_t block) const {
  if (zero_points.empty()) return format.element;
  return format.element.with_zero_point(zero_points.at(static_cast<size_t>(block)));
}

float BlockQuantized::effective_scale(int64_t block) const { return scales.at(static_cast<size_t>(block)) * tensor_scale; }

std::vector<float> BlockQuantized::dequantize() const {
  std::vector<float> out(codes.size());
  dequantize(out);
  return out;
}

void BlockQuantized::dequantize(std::span<float> out) const {
  require(out.size() == codes.size(), "dequantize",
          "output has " + std::to_string(out.size()) + " elements, codes " + std::to_string(codes.size()));
  const Format& element = format.element;
  const uint64_t count = element.code_count();
  std::vector<float> table(static_cast<size_t>(count));
  for (uint64_t code = 0; code < count; ++code) table[code] = element.decode(static_cast<uint32_t>(code));
  for (size_t i = 0; i < codes.size(); ++i)
    if (codes[i] >= count)
      throw Error("dequantize", "code " + std::to_string(codes[i]) + " at index " + std::to_string(i) +
                                    " is out of range for " + element.to_string());
  parallel_for(static_cast<int64_t>(codes.size()), numerics_detail::kElementGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = block_of(i / cols, i % cols);
      const float effective = effective_scale(b);
      const uint16_t code = codes[static_cast<size_t>(i)];
      // Unsigned elements decode to code - zero point (element_format(b)), computed directly.
      const float value = zero_points.empty() ? table[code]
                                              : static_cast<float>(static_cast<int32_t>(code) - zero_points[b]);
      out[static_cast<size_t>(i)] = effective == 0.0f ? 0.0f : value * effective;
    }
  });
}

BlockQuantized quantize_blocks(std::span<const float> values, const Shape& shape, const BlockFormat& format,
                               const BlockQuantizeOptions& options) {
  check_inputs(values, shape, format, options);
  const Layout l = layout_of(shape, format.granularity);
  Scales scales = compute_scales(values, l, format, options);
  BlockQuantized q;
  q.format = format;
  q.shape = shape;
  q.rows = l.rows;
  q.cols = l.cols;
  q.block_rows = l.block_rows;
  q.block_cols = l.block_cols;
  q.grid_rows = l.grid_rows;
  q.grid_cols = l.grid_cols;
  q.codes.resize(values.size());
  round_elements(values, l, format, scales, options, nullptr, q.codes.data());
  q.scale_codes = std::move(scales.codes);
  q.scales = std::move(scales.values);
  q.zero_points = std::move(scales.zero_points);
  q.tensor_scale = scales.tensor_scale;
  return q;
}

void quantize_dequantize_blocks(std::span<const float> in, std::span<float> out, const Shape& shape,
                                const BlockFormat& format, const BlockQuantizeOptions& options) {
  check_inputs(in, shape, format, options);
  require(out.size() == in.size(), "block quantization",
          "output has " + std::to_string(out.size()) + " elements, input " + std::to_string(in.size()));
  const Layout l = layout_of(shape, format.granularity);
  const Scales scales = compute_scales(in, l, format, options);
  round_elements(in, l, format, scales, options, out.data(), nullptr);
}

}  // namespace lowbit
