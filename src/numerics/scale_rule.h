// A block format's scale rule with its constants precomputed, shared by the per-block scale
// search (scale.cc) and the bulk block quantizer (block_quantize.cc), so both produce the same
// scales bit for bit. Internal to the numerics module.
#pragma once

#include "lowbit/numerics/block_format.h"

namespace lowbit::numerics_detail {

class ScaleRuleConstants {
 public:
  explicit ScaleRuleConstants(const BlockFormat& format);

  bool asymmetric() const { return asymmetric_; }
  // The unrounded scale of a block spanning [lo, hi] (symmetric formats: hi = max |x|), before
  // rounding into the scale format: range / element max (÷ tensor scale), (hi - lo) / (2^b - 1)
  // for asymmetric formats, or the exact power of two of the MX rule (NaN for Inf/NaN ranges and
  // exponents past the scale format's largest).
  float raw_scale(float lo, float hi, float tensor_scale) const;
  // raw_scale for ScaleSearch::kAbsMean: mean |x| (÷ tensor scale); MX rounds it like a range.
  float raw_scale_from_mean(float mean, float tensor_scale) const;
  // The scale code and value of a raw scale, and the zero point of an asymmetric block.
  BlockScale finish(float raw, float lo) const;
  // Zero point of an asymmetric block with decoded scale `scale` whose minimum is lo.
  int32_t zero_point(float lo, float scale) const;

 private:
  const BlockFormat* format_;
  bool asymmetric_;
  float element_max_;     // element.max_value() (asymmetric: 2^b - 1)
  int element_emax_;      // floor(log2(element max)), the MX emax_elem
  int smallest_exponent_, largest_exponent_;  // of the scale format's powers of two
  Rounding rounding_;     // scale rounding (MX raw scales are exact)
};

}  // namespace lowbit::numerics_detail
