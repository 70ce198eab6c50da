// Choosing block scales: the range statistic (absmax, percentile, MSE-optimal clipping,
// mean |x|) and the rule that turns a range into a scale code (absmax division or the OCP MX
// shared exponent).
#include <algorithm>
#include <cfloat>
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

namespace numerics_detail {

ScaleRuleConstants::ScaleRuleConstants(const BlockFormat& format)
    : format_(&format),
      asymmetric_(format.element.kind() == Format::Kind::kInt && !format.element.twos_complement()),
      element_max_(static_cast<float>(asymmetric_ ? format.element.int_max() : format.element.max_value())),
      element_emax_(std::ilogb(static_cast<float>(format.element.max_value()))),
      smallest_exponent_(std::ilogb(format.scale.min_positive())),
      largest_exponent_(std::ilogb(format.scale.max_value())),
      rounding_(format.rule == ScaleRule::kMx ? Rounding::kNearestEven : format.scale_rounding) {}

float ScaleRuleConstants::raw_scale(float lo, float hi, float tensor_scale) const {
  if (format_->rule == ScaleRule::kMx) {
    if (!(hi <= FLT_MAX)) return NAN;  // Inf or NaN in the block: the whole block is NaN
    const float range = hi == 0.0f ? 0x1p-126f : hi;  // microxcaling: log2(0 + FP32_MIN_NORMAL)
    const int exponent = std::ilogb(range) - element_emax_;
    if (exponent > largest_exponent_) return NAN;
    return std::ldexp(1.0f, std::max(exponent, smallest_exponent_));
  }
  float raw;
  if (asymmetric_) raw = (std::max(hi, 0.0f) - std::min(lo, 0.0f)) / element_max_;
  else raw = hi / element_max_;
  if (format_->tensor_scale) raw /= tensor_scale;
  return std::isnan(lo) ? NAN : raw;
}

float ScaleRuleConstants::raw_scale_from_mean(float mean, float tensor_scale) const {
  if (format_->rule == ScaleRule::kMx) return raw_scale(-mean, mean, tensor_scale);
  return format_->tensor_scale ? mean / tensor_scale : mean;
}

int32_t ScaleRuleConstants::zero_point(float lo, float scale) const {
  if (!asymmetric_ || !(scale > 0) || !std::isfinite(scale)) return 0;
  const float zero = std::nearbyint(-std::min(lo, 0.0f) / scale);
  return static_cast<int32_t>(std::clamp(zero, 0.0f, element_max_));
}

BlockScale ScaleRuleConstants::finish(float raw, float lo) const {
  BlockScale out;
  out.scale_code = format_->scale.encode(raw, rounding_);
  out.scale = format_->scale.decode(out.scale_code);
  out.zero_point = zero_point(lo, out.scale);
  return out;
}

}  // namespace numerics_detail

namespace {

using numerics_detail::ScaleRuleConstants;

// The nearest-rank percentile p (0..100) of `values` (modified in place).
float nearest_rank(std::vector<float>& values, double p) {
  // ceil(p n / 100), forgiving the last-bit error of p (99.9 * 1000 / 100 must be rank 999).
  const double rank = std::ceil(p * static_cast<double>(values.size()) / 100.0 - 1e-9);
  const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

// Σ w (x - q(x))² of the block quantized with `scale` (round-to-nearest-even).
double squared_error(std::span<const float> values, std::span<const float> importance, const BlockFormat& bf,
                     const BlockScale& scale, float tensor_scale, std::vector<float>& scratch) {
  const float effective = scale.scale * tensor_scale;
  scratch.resize(values.size());
  if (effective == 0.0f || !std::isfinite(effective)) {
    std::fill(scratch.begin(), scratch.end(), 0.0f);
  } else {
    const bool asymmetric = bf.element.kind() == Format::Kind::kInt && !bf.element.twos_complement();
    const Format element = asymmetric ? bf.element.with_zero_point(scale.zero_point) : bf.element;
    const auto params = numerics_detail::make_kernel_params(element, Rounding::kNearestEven);
    numerics_detail::KernelOutput out;
    out.values = scratch.data();
    out.multiplier = effective;
    numerics_detail::round_span(element, params, Rounding::kNearestEven, {}, 0, values.data(), values.size(), effective,
                                out);
  }
  double error = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double d = static_cast<double>(values[i]) - scratch[i];
    error += (importance.empty() ? 1.0 : static_cast<double>(importance[i])) * d * d;
  }
  return error;
}

float absmax(std::span<const float> values) {
  float m = 0.0f;
  bool nan = false;
  for (float v : values) {
    m = std::max(m, std::fabs(v));
    nan |= std::isnan(v);
  }
  return nan ? NAN : m;
}

}  // namespace

BlockScale choose_block_scale(std::span<const float> values, std::span<const float> importance,
                              const BlockFormat& format, const ScaleOptions& options, float tensor_scale) {
  if (!importance.empty() && importance.size() != values.size())
    throw Error("scale search", "importance has " + std::to_string(importance.size()) + " weights for " +
                                    std::to_string(values.size()) + " values");
  const ScaleRuleConstants rule(format);
  float lo = 0.0f, hi = 0.0f;
  bool nan = false;
  for (float v : values) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    nan |= std::isnan(v);
  }
  if (nan) lo = hi = NAN;
  if (!rule.asymmetric()) {
    hi = nan ? NAN : std::max(-lo, hi);
    lo = -hi;
  }
  auto from_range = [&](float range_lo, float range_hi) {
    return rule.finish(rule.raw_scale(range_lo, range_hi, tensor_scale), range_lo);
  };
  switch (options.search) {
    case ScaleSearch::kAbsmax:
      return from_range(lo, hi);
    case ScaleSearch::kPercentile: {
      if (!(options.percentile > 0 && options.percentile <= 100))
        throw Error("scale search", "percentile must be in (0, 100], found " + std::to_string(options.percentile));
      if (nan || values.empty()) return from_range(lo, hi);
      std::vector<float> copy(values.begin(), values.end());
      if (rule.asymmetric()) {
        const float top = nearest_rank(copy, options.percentile);
        const float bottom = nearest_rank(copy, 100.0 - options.percentile);
        return from_range(bottom, top);
      }
      for (float& v : copy) v = std::fabs(v);
      const float r = nearest_rank(copy, options.percentile);
      return from_range(-r, r);
    }
    case ScaleSearch::kAbsMean: {
      if (rule.asymmetric())
        throw Error("scale search", "mean |x| scales are for symmetric formats (binary, ternary, intB)");
      double sum = 0;
      for (float v : values) sum += std::fabs(static_cast<double>(v));
      const float mean = values.empty() ? 0.0f : static_cast<float>(sum / static_cast<double>(values.size()));
      return rule.finish(rule.raw_scale_from_mean(nan ? NAN : mean, tensor_scale), 0.0f);
    }
    case ScaleSearch::kMse: {
      if (options.mse_grid < 1 || !(options.mse_max_shrink > 0 && options.mse_max_shrink <= 1))
        throw Error("scale search", "mse_grid must be >= 1 and mse_max_shrink in (0, 1]");
      BlockScale best = from_range(lo, hi);
      if (nan || values.empty()) return best;
      std::vector<float> scratch;
      double best_error = squared_error(values, importance, format, best, tensor_scale, scratch);
      const int steps = static_cast<int>(std::ceil(options.mse_max_shrink * options.mse_grid));
      for (int k = 1; k < steps; ++k) {
        const float ratio = 1.0f - static_cast<float>(k) / static_cast<float>(options.mse_grid);
        const BlockScale candidate = from_range(ratio * lo, ratio * hi);
        if (candidate.scale_code == best.scale_code && candidate.zero_point == best.zero_point) continue;
        const double error = squared_error(values, importance, format, candidate, tensor_scale, scratch);
        if (error < best_error) {
          best = candidate;
          best_error = error;
        }
      }
      return best;
    }
  }
  return from_range(lo, hi);
}

float compute_tensor_scale(std::span<const float> values, const BlockFormat& format) {
  if (!format.tensor_scale) return 1.0f;
  const int64_t chunks = (static_cast<int64_t>(values.size()) + numerics_detail::kElementGrain - 1) /
                         numerics_detail::kElementGrain;
  std::vector<float> partial(static_cast<size_t>(std::max<int64_t>(chunks, 1)), 0.0f);
  parallel_for(static_cast<int64_t>(values.size()), numerics_detail::kElementGrain, [&](int64_t begin, int64_t end) {
    partial[static_cast<size_t>(begin / numerics_detail::kElementGrain)] =
        absmax(values.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)));
  });
  const float amax = absmax(partial);
  if (amax == 0.0f) return 1.0f;
  // NVFP4: the block holding amax then gets the largest block scale, 448, exactly.
  return amax / (static_cast<float>(format.scale.max_value()) * static_cast<float>(format.element.max_value()));
}

}  // namespace lowbit
