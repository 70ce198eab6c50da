#include "compress/group_quantizer.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/core/half.h"

namespace lowbit::compress_detail {
namespace {

// The (scale, min) points of one group's float-minimum search whose Lloyd continuation has been
// explored (see choose_float_min), each with the depth (refits from its candidate) at which it was
// entered: explored from depth j, its continuation was followed for kMaxRefits − j more refits.
// A set of 64-bit keys, open addressing in a per-thread table; each instance takes its own
// generation stamp, so a new one starts empty in O(1) (and nested instances would only lose entries,
// never see another's). Full beyond kLimit, it stops adding: lookups stay correct, later
// trajectories just retrace more.
class ExploredPoints {
 public:
  ExploredPoints() {
    if (++counter_ == 0) stamps_.fill(0), counter_ = 1;  // wrapped: clear once in 2^32 searches
    generation_ = counter_;
  }
  static uint64_t key(const GroupParams& p) {
    return static_cast<uint64_t>(std::bit_cast<uint32_t>(p.scale)) << 32 | std::bit_cast<uint32_t>(p.min);
  }
  // The depth at which k was entered, or −1.
  int depth(uint64_t k) const {
    for (size_t i = slot(k);; i = (i + 1) & kMask) {
      if (stamps_[i] != generation_) return -1;
      if (keys_[i] == k) return depths_[i];
    }
  }
  // Enter k at `depth`, or lower its depth if it is there.
  void enter(uint64_t k, int depth) {
    size_t i = slot(k);
    for (; stamps_[i] == generation_; i = (i + 1) & kMask)
      if (keys_[i] == k) {
        depths_[i] = static_cast<uint8_t>(std::min<int>(depths_[i], depth));
        return;
      }
    if (size_ >= kLimit) return;
    stamps_[i] = generation_, keys_[i] = k, depths_[i] = static_cast<uint8_t>(depth), ++size_;
  }

 private:
  static constexpr size_t kSlots = 2048, kMask = kSlots - 1, kLimit = kSlots * 3 / 4;
  static size_t slot(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 53); }  // 11 bits
  static thread_local std::array<uint64_t, kSlots> keys_;
  static thread_local std::array<uint32_t, kSlots> stamps_;
  static thread_local std::array<uint8_t, kSlots> depths_;
  static thread_local uint32_t counter_;
  uint32_t generation_ = 0;
  size_t size_ = 0;
};
thread_local std::array<uint64_t, ExploredPoints::kSlots> ExploredPoints::keys_{};
thread_local std::array<uint32_t, ExploredPoints::kSlots> ExploredPoints::stamps_{};
thread_local std::array<uint8_t, ExploredPoints::kSlots> ExploredPoints::depths_{};
thread_local uint32_t ExploredPoints::counter_ = 0;

}  // namespace

GroupQuantizer::GroupQuantizer(const QuantScheme& scheme, const ScaleOptions& scale, float tensor_scale)
    : element_(scheme.element), block_format_(scheme.block_format()), scale_options_(scale), tensor_scale_(tensor_scale) {
  // Weights saturate at the grid's largest value, never overflow to Inf: a clipped scale (MSE
  // search) puts values beyond it on purpose, and e5m2-like grids would otherwise encode Inf.
  if (element_.kind() == Format::Kind::kFloat && element_.overflow() == Overflow::kSpecial) {
    element_ = element_.with_overflow(Overflow::kSaturate);
    block_format_.element = element_;
  }
  super_ = scheme.super_block;
  asymmetric_ = scheme.asymmetric();
  float_min_ = scheme.float_min;
  mirror_ = scheme.signed_scales && element_.lowest_value() != -element_.max_value();
  integer_ = element_.kind() == Format::Kind::kInt;
  if (integer_) {
    fraction_scale_ = std::ldexp(1.0, element_.fraction_bits());
    int_min_ = element_.int_min();
    int_max_ = element_.int_max();
    max_code_ = static_cast<double>(element_.code_count() - 1);
    mask_ = static_cast<int32_t>(element_.code_count() - 1);
  }
  zero_code_ = static_cast<uint8_t>(element_.encode(0.0f));
  // Scale formats saturate (QuantScheme::block_format): the fast paths of round_scale clamp too.
  scale_fp16_ = block_format_.scale == Format::fp16().with_overflow(Overflow::kSaturate);
  scale_fp32_ = block_format_.scale == Format::fp32().with_overflow(Overflow::kSaturate);
  for (uint32_t code = 0; code < element_.code_count(); ++code) levels_[code] = element_.decode(code);
  // Options the search refuses (percentile out of range, mean |x| with zero points, ...) are
  // refused here, before any parallel loop, rather than inside one.
  const float one = 1.0f;
  choose({&one, 1}, {});
}

void GroupQuantizer::round(const float* x, const float* scales, const int32_t* zeros, const float* mins, int64_t n,
                           uint8_t* codes, float* values) const {
  if (!integer_ || float_min_) {
    for (int64_t r = 0; r < n; ++r) {
      const GroupParams p{scales[r], zeros ? zeros[r] : 0, mins ? mins[r] : 0.0f};
      codes[r] = encode(x[r], p);
      values[r] = value(codes[r], p);
    }
    return;
  }
  // Round-to-nearest-even by the 1.5·2^23 trick: for |t| < 2^22, t + 1.5·2^23 lies where the float
  // spacing is 1, so the addition rounds t to an integer (ties to even) and the subtraction is
  // exact. t is clamped into the grid's integer range first (at most 2^16 in magnitude), which
  // cannot change a saturating result. Equals std::nearbyint, so the codes equal encode()'s.
  constexpr float kMagic = 0x1.8p23f;
  const float step = static_cast<float>(fraction_scale_), inverse_step = static_cast<float>(1.0 / fraction_scale_);
  const float int_min = static_cast<float>(int_min_), int_max = static_cast<float>(int_max_);
  const float max_code = static_cast<float>(max_code_);
  for (int64_t r = 0; r < n; ++r) {
    const float s = scales[r];
    const bool live = s != 0.0f;  // negative: a mirrored grid (signed scales)
    const float z = asymmetric_ ? static_cast<float>(zeros[r]) : 0.0f;
    const float lo = asymmetric_ ? -z : int_min, hi = asymmetric_ ? max_code - z : int_max;
    float t = (live ? x[r] / (live ? s : 1.0f) : 0.0f) * step;
    t = t < lo ? lo : (t > hi ? hi : t);
    t = (t + kMagic) - kMagic;
    const int32_t code = (static_cast<int32_t>(t) + static_cast<int32_t>(z)) & mask_;
    codes[r] = live ? static_cast<uint8_t>(code) : (asymmetric_ ? static_cast<uint8_t>(zeros[r]) : zero_code_);
    values[r] = live ? t * inverse_step * s : 0.0f;
  }
}

GroupParams GroupQuantizer::choose(std::span<const float> values, std::span<const float> importance) const {
  if (float_min_) return choose_float_min(values, importance);
  const BlockScale s = choose_block_scale(values, importance, block_format_, scale_options_, tensor_scale_);
  const GroupParams plain{s.scale * tensor_scale_, s.zero_point};  // exact: the tensor scale is a power of two
  if (!mirror_) return plain;
  thread_local std::vector<float> negated;
  negated.resize(values.size());
  for (size_t i = 0; i < values.size(); ++i) negated[i] = -values[i];
  const GroupParams mirrored{-choose_block_scale(negated, importance, block_format_, scale_options_, tensor_scale_).scale *
                                 tensor_scale_,
                             0};
  return error(values, importance, mirrored) < error(values, importance, plain) ? mirrored : plain;
}

float GroupQuantizer::round_scale(float x) const {
  // Saturating f16 and f32 rounded by the direct conversions (nearest-even, like the Format): beyond
  // the largest finite value (f16 65504, f32 FLT_MAX; Inf included) the Format gives that value with
  // x's sign. NaN keeps the generic path (its canonical NaN). Checked against the Format by
  // GgmlBlocks.ScaleRoundingEqualsTheScaleFormat.
  if (scale_fp16_ && !std::isnan(x))
    return std::fabs(x) > 65504.0f ? std::copysign(65504.0f, x) : f16_bits_to_f32(f32_to_f16_bits(x));
  if (scale_fp32_ && !std::isnan(x))
    return std::isinf(x) ? std::copysign(std::numeric_limits<float>::max(), x) : x;
  return block_format_.scale.quantize(x);
}

GroupParams GroupQuantizer::choose_float_min(std::span<const float> values, std::span<const float> importance) const {
  if (values.empty()) return {};
  float lo = values[0], hi = values[0];
  for (float v : values) lo = std::min(lo, v), hi = std::max(hi, v);
  const double levels = max_code_;  // 2^b − 1 steps
  // A bound that only guards termination (the error falls strictly at every kept step); SmolLM2's
  // blocks converge in a few steps.
  constexpr int kMaxRefits = 64;
  auto candidate = [&](double a, double b) {
    GroupParams p;
    p.scale = round_scale(static_cast<float>((b - a) / levels));
    p.min = round_scale(static_cast<float>(a));
    return p;
  };
  // One pass over the group under p gives both its (weighted) error, exactly as error() sums it, and
  // the least-squares refit of (scale, min) to p's codes: minimize Σ v (x − (q·d + m))², the step
  // ggml's make_qkx quantizers iterate (refit.scale 0: none, the codes do not determine one).
  struct Pass {
    double error;
    GroupParams refit;
  };
  auto pass = [&](const GroupParams& p) {
    double err = 0, sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      const uint8_t code = encode(values[i], p);
      const double v = importance.empty() ? 1.0 : static_cast<double>(importance[i]), x = values[i], q = code;
      const double d = x - value(code, p);
      err += v * d * d;
      sw += v, sq += v * q, sqq += v * q * q, sx += v * x, sqx += v * q * x;
    }
    Pass out{err, {}};
    const double det = sw * sqq - sq * sq;
    if (det > 0) {
      GroupParams r;
      r.scale = round_scale(static_cast<float>((sw * sqx - sq * sx) / det));
      r.min = round_scale(static_cast<float>((sqq * sx - sq * sqx) / det));
      if (r.scale > 0) out.refit = r;
    }
    return out;
  };
  if (!(hi > lo)) {  // a constant group: scale 0, every weight the minimum
    GroupParams p;
    p.min = round_scale(lo);
    return p;
  }
  GroupParams best = candidate(lo, hi);
  double best_error = best.scale > 0 ? error(values, importance, best) : HUGE_VAL;
  const bool search = scale_options_.search == ScaleSearch::kMse;
  const int steps = search ? static_cast<int>(scale_options_.mse_max_shrink * scale_options_.mse_grid) : 1;
  const double centre = 0.5 * (static_cast<double>(lo) + hi), half = 0.5 * (static_cast<double>(hi) - lo);
  // Each candidate range is then polished by Lloyd's alternation: re-round to the refitted (scale,
  // min), refit to the new codes, while the error falls. In exact arithmetic neither half-step can
  // raise the error; the f16 rounding of scale and min can, so a step is kept only when it lowers
  // the error — which also ends the loop, as a strictly falling error cannot revisit a point. One
  // refit (session 12's code) left the chosen point short of this fixed point in half the Q4_1
  // blocks; iterating lowers SmolLM2's dithered KLD in Q4_1 0.0866 → 0.0826 and in Q5_1 0.0235 →
  // 0.0221, past llama.cpp's imatrix files (docs/BENCHMARKS.md).
  //
  // Neighbouring candidates mostly converge to the same few points. A point's continuation depends
  // on the point alone (and on the refits left under kMaxRefits), so a trajectory that reaches a
  // point already explored (a candidate, or a refit that was kept) from at most its depth stops
  // there: what follows was seen, and the best is updated only on a strictly lower error, so the
  // result is bit-identical to retracing it, at a fraction of the work.
  ExploredPoints explored;
  auto seen = [&](const GroupParams& p, int depth) {
    const int d = explored.depth(ExploredPoints::key(p));
    return d >= 0 && d <= depth;
  };
  auto consider = [&](double a, double b) {
    const GroupParams p = candidate(a, b);
    if (!(p.scale > 0) || seen(p, 0)) return;  // no codes to refit / explored already
    explored.enter(ExploredPoints::key(p), 0);
    Pass at = pass(p);
    double e = at.error;
    if (e < best_error) best_error = e, best = p;
    for (int round = 0; round < kMaxRefits && at.refit.scale > 0; ++round) {
      const GroupParams r = at.refit;
      if (seen(r, round + 1)) break;
      const Pass next = pass(r);
      if (!(next.error < e)) break;
      explored.enter(ExploredPoints::key(r), round + 1);
      at = next, e = next.error;
      if (e < best_error) best_error = e, best = r;
    }
  };
  for (int k = 0; k < std::max(steps, 1); ++k) {
    const double c = 1.0 - static_cast<double>(k) / scale_options_.mse_grid;
    consider(centre - c * half, centre + c * half);
  }
  // The search also widens the range: from lo, steps of (hi − lo) / (levels − t), t = 0.1 … 1, as
  // ggml's make_qkx2_quants tries nmax − 1 … nmax + 1 steps. Weights that lie on a coarser grid —
  // e.g. a 4-bit grid seen by a 5-bit one, whose 15 steps are 30 of its 31 — are found exactly
  // only so (the refit then lands on them).
  if (search)
    for (int t = 1; t <= 10 && levels - 0.1 * t >= 0.5; ++t)
      consider(lo, lo + (static_cast<double>(hi) - lo) * levels / (levels - 0.1 * t));
  return best;
}

void GroupQuantizer::choose_groups(std::span<const float> values, std::span<const float> importance, int64_t group,
                                   std::span<GroupParams> out) const {
  if (super_.size != 0) return choose_super_block(values, importance, group, out);
  for (size_t g = 0; g < out.size(); ++g) {
    const size_t c0 = g * static_cast<size_t>(group), n = std::min(values.size() - c0, static_cast<size_t>(group));
    out[g] = choose(values.subspan(c0, n), importance.empty() ? importance : importance.subspan(c0, n));
  }
}

void GroupQuantizer::choose_super_block(std::span<const float> values, std::span<const float> importance, int64_t group,
                                        std::span<GroupParams> out) const {
  const size_t groups = out.size(), n = static_cast<size_t>(group);
  auto part = [&](std::span<const float> s, size_t g) { return s.empty() ? s : s.subspan(g * n, n); };
  // 1. Each group on its own, with unrounded (f32) scale and min.
  thread_local std::vector<GroupParams> own;
  own.resize(groups);
  double max_scale = 0, max_min = 0;
  float extreme = 0;  // the scale of largest magnitude, with its sign
  for (size_t g = 0; g < groups; ++g) {
    own[g] = choose(part(values, g), part(importance, g));
    if (float_min_ && own[g].min > 0) {
      // Minimums are −dmin × m with m >= 0 (ggml's k-quants force min <= 0 the same way): a group of
      // positive weights spans [0, max] instead.
      const auto v = part(values, g);
      own[g] = GroupParams{static_cast<float>(*std::max_element(v.begin(), v.end()) / max_code_), 0, 0.0f};
    }
    if (std::fabs(own[g].scale) > max_scale) max_scale = std::fabs(own[g].scale), extreme = own[g].scale;
    max_min = std::max(max_min, -static_cast<double>(own[g].min));
  }
  // The factors as f16 values (the stored d, dmin), in f32.
  static const Format kHalf = Format::fp16().with_overflow(Overflow::kSaturate);
  auto f16 = [](double x) { return kHalf.quantize(static_cast<float>(x)); };
  const float dmin = float_min_ && max_min > 0 ? f16(max_min / super_.min_hi) : 0.0f;
  // Candidate d: the largest scale mapped onto the top integer (or, for signed integers, the
  // bottom one, which is larger in magnitude), and a few points around it.
  std::vector<float> candidates;
  if (max_scale > 0) {
    std::vector<double> tops = {static_cast<double>(super_.scale_hi)};
    if (super_.scale_lo < 0) tops.push_back(static_cast<double>(super_.scale_lo));
    for (double top : tops)
      for (int k = -3; k <= 3; ++k) {
        const float d = f16(extreme / top * (1.0 + 0.02 * k));
        if (d != 0.0f && std::isfinite(d) && std::find(candidates.begin(), candidates.end(), d) == candidates.end())
          candidates.push_back(d);
      }
  }
  thread_local std::vector<GroupParams> trial;
  trial.resize(groups);
  double best_total = HUGE_VAL;
  auto clamp = [](double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); };
  for (float d : candidates) {
    double total = 0;
    for (size_t g = 0; g < groups && total < best_total; ++g) {
      const double sc0 = clamp(std::nearbyint(own[g].scale / d), super_.scale_lo, super_.scale_hi);
      const double m0 = dmin > 0 ? clamp(std::nearbyint(-own[g].min / dmin), 0, super_.min_hi) : 0;
      double best = HUGE_VAL;
      for (double sc = std::max<double>(sc0 - 1, super_.scale_lo); sc <= std::min<double>(sc0 + 1, super_.scale_hi); ++sc)
        for (double m = std::max(m0 - 1, 0.0); m <= (dmin > 0 ? std::min<double>(m0 + 1, super_.min_hi) : 0.0); ++m) {
          GroupParams p;
          p.scale = d * static_cast<float>(sc);
          if (p.scale == 0.0f) p.scale = 0.0f;  // +0, whatever d's sign
          p.min = m > 0 ? -(dmin * static_cast<float>(m)) : 0.0f;
          const double e = error(part(values, g), part(importance, g), p);
          if (e < best) best = e, trial[g] = p;
        }
      total += best;
    }
    if (total < best_total) {
      best_total = total;
      std::copy(trial.begin(), trial.end(), out.begin());
    }
  }
  if (candidates.empty())  // every group constant at 0 or its min: scales 0, minimums on dmin's grid
    for (size_t g = 0; g < groups; ++g) {
      const double m = dmin > 0 ? clamp(std::nearbyint(-own[g].min / dmin), 0, super_.min_hi) : 0;
      out[g] = GroupParams{0.0f, 0, m > 0 ? -(dmin * static_cast<float>(m)) : 0.0f};
    }
}

double GroupQuantizer::error(std::span<const float> values, std::span<const float> importance,
                             const GroupParams& p) const {
  double sum = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double d = static_cast<double>(values[i]) - value(encode(values[i], p), p);
    sum += (importance.empty() ? 1.0 : static_cast<double>(importance[i])) * d * d;
  }
  return sum;
}

}  // namespace lowbit::compress_detail
