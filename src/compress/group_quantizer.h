// The one per-group rule every method in compress/ uses: choose a group's scale (and zero point)
// with numerics' scale search, then round each weight with that stored scale. RTN applies it to
// the original weights; GPTQ to the error-compensated ones, group by group. Sharing it is what
// makes GPTQ with H = I reproduce RTN code for code. Internal to the compress module.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/numerics/block_format.h"

namespace lowbit::compress_detail {

// Throws Error(where, ...) unless weight has rows x cols finite values.
void check_weight(std::span<const float> weight, int64_t rows, int64_t cols, const char* where);
// Throws Error(where, ...) unless importance is empty or cols finite values >= 0.
void check_importance(std::span<const float> importance, int64_t cols, const char* where);

struct GroupParams {
  float scale = 0;   // the stored (rounded) scale, times the tensor scale when there is one
  int32_t zero = 0;  // asymmetric grids
  float min = 0;     // float-minimum grids: the stored (rounded) minimum
};

class GroupQuantizer {
 public:
  // tensor_scale: the tensor's QuantizedTensor::tensor_scale() (schemes with F8_E4M3 scales), else 1.
  GroupQuantizer(const QuantScheme& scheme, const ScaleOptions& scale, float tensor_scale = 1.0f);

  // numerics' choose_block_scale on the group's values (importance: empty or one weight per value).
  // With signed scales on a grid whose ends differ, also on the negated values (a mirrored grid,
  // negative scale), keeping whichever has the smaller (importance-weighted) squared error; ties
  // keep the positive scale.
  GroupParams choose(std::span<const float> values, std::span<const float> importance) const;

  // Columns that share parameters: the super-block for two-level scales, else the group (0: the row).
  int64_t unit(int64_t group) const { return super_.size != 0 ? super_.size : group; }
  // The parameters of every group of one unit (values: the unit's weights; out: one per group of
  // `group` columns, the last possibly shorter). Without super-blocks, choose() per group. With
  // them (ggml's k-quants): each group's own (scale, min) from choose(), then f16 factors d (and
  // dmin) for the super-block, and for each group the integers sc (and m) nearest to its scale
  // (and −min) over d, or one step either side, whichever gives the group the least
  // (importance-weighted) error; over a few candidate d around max|scale| / max|sc| the one with
  // the least total error wins. Every scale is then exactly d × sc in f32, every min −(dmin × m).
  void choose_groups(std::span<const float> values, std::span<const float> importance, int64_t group,
                     std::span<GroupParams> out) const;

  // The code of x under `p`, round-to-nearest-even: element.encode(x / scale) (with the group's
  // zero point for uintB); the code of 0 when the scale is 0. Integer grids take a direct path that
  // equals Format::encode (nearest-even on the integer value, saturating).
  uint8_t encode(float x, const GroupParams& p) const {
    if (float_min_) {  // code = round((x − min) / scale) in [0, 2^b − 1]
      if (p.scale == 0.0f) return 0;
      const double t = std::nearbyint((static_cast<double>(x) - p.min) / p.scale);
      return static_cast<uint8_t>(t < 0 ? 0 : (t > max_code_ ? max_code_ : t));
    }
    if (p.scale == 0.0f) return zero_code(p);
    const float y = x / p.scale;
    if (integer_) {
      double t = std::nearbyint(static_cast<double>(y) * fraction_scale_);
      const double lo = asymmetric_ ? -static_cast<double>(p.zero) : int_min_;
      const double hi = asymmetric_ ? max_code_ - static_cast<double>(p.zero) : int_max_;
      t = t < lo ? lo : (t > hi ? hi : t);
      return static_cast<uint8_t>((static_cast<int32_t>(t) + (asymmetric_ ? p.zero : 0)) & mask_);
    }
    return static_cast<uint8_t>(element_.encode(y));
  }

  // The value a code stands for, exactly as QuantizedTensor::dequantize computes it.
  float value(uint8_t code, const GroupParams& p) const {
    if (float_min_) return static_cast<float>(code) * p.scale + p.min;
    if (asymmetric_) return static_cast<float>(static_cast<int>(code) - p.zero) * p.scale;
    return levels_[code] * p.scale;
  }

  // encode and value for n weights at once, weight r with its own scale and zero point (GPTQ
  // rounds a column of a row tile this way). The same codes and values as the scalar calls; the
  // integer path is written so that the compiler can vectorize it.
  // mins: float-minimum grids' per-weight minimums (null otherwise).
  void round(const float* x, const float* scales, const int32_t* zeros, const float* mins, int64_t n, uint8_t* codes,
             float* values) const;
  // The code nearest to 0 (exactly 0 except on float-minimum grids).
  uint8_t zero_code(const GroupParams& p) const {
    if (float_min_) return encode(0.0f, p);
    return asymmetric_ ? static_cast<uint8_t>(p.zero) : zero_code_;
  }
  // block_format_.scale.quantize(x), with the f16 and f32 scales of the float-minimum types taken by
  // the direct conversions (the generic Format path was a third of the search's time).
  float round_scale(float x) const;
  bool fast_scale_rounding() const { return scale_fp16_ || scale_fp32_; }
  bool float_min() const { return float_min_; }
  bool asymmetric() const { return asymmetric_; }

 private:
  Format element_;
  BlockFormat block_format_;
  ScaleOptions scale_options_;
  float tensor_scale_ = 1.0f;
  // Squared error of the group under p, weighted by importance when given.
  double error(std::span<const float> values, std::span<const float> importance, const GroupParams& p) const;
  // Float-minimum grids: the range [lo, hi] shrunk about its centre (the clipping search's candidates,
  // or just the full range) — and, searching, widened by up to one step — each candidate polished by
  // Lloyd's alternation (weighted least-squares refit, re-round) while its error falls, the best kept.
  GroupParams choose_float_min(std::span<const float> values, std::span<const float> importance) const;

  QuantScheme::SuperBlock super_;
  void choose_super_block(std::span<const float> values, std::span<const float> importance, int64_t group,
                          std::span<GroupParams> out) const;
  bool asymmetric_ = false, integer_ = false, mirror_ = false, float_min_ = false;
  bool scale_fp16_ = false, scale_fp32_ = false;
  double fraction_scale_ = 1, int_min_ = 0, int_max_ = 0, max_code_ = 0;
  int32_t mask_ = 0;
  uint8_t zero_code_ = 0;
  float levels_[256] = {};
};

}  // namespace lowbit::compress_detail
