// SIMD rounding kernels (Google Highway, runtime dispatch). See kernel_params.h for the method;
// the scalar codec in format.cc is the oracle these are tested against on every target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/numerics/quantize_kernels.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/core/random.h"
#include "numerics/quantize_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::numerics_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;
using MU = hn::Mask<DU>;

// Whether to add one quantum to the truncated magnitude: the definitions of
// numerics_detail::round_magnitude_up on (trunc, fraction * 2^32).
template <Rounding kMode>
HWY_INLINE MU RoundUp(MU odd, VU frac, MU inexact, MU negative, VU random) {
  const DU du;
  const VU half = hn::Set(du, 0x80000000u);
  if constexpr (kMode == Rounding::kNearestEven) {
    return hn::Or(hn::Gt(frac, half), hn::And(hn::Eq(frac, half), odd));
  } else if constexpr (kMode == Rounding::kNearestAway) {
    return hn::Not(hn::Gt(half, frac));
  } else if constexpr (kMode == Rounding::kTowardZero) {
    return hn::FirstN(du, 0);
  } else if constexpr (kMode == Rounding::kTowardPositive) {
    return hn::AndNot(negative, inexact);
  } else if constexpr (kMode == Rounding::kTowardNegative) {
    return hn::And(negative, inexact);
  } else if constexpr (kMode == Rounding::kStochastic) {
    return hn::Gt(frac, random);
  } else {
    return hn::And(inexact, hn::Not(hn::Gt(half, random)));
  }
}

// One vector of grid rounding (minifloats when kFloat, else integers); codes only when kCodes.
template <Rounding kMode, bool kFloat, bool kCodes>
HWY_INLINE void GridVector(const KernelParams& p, VF x, VU random, VU& code, VF& value) {
  // Only stochastic rounding needs the fraction exactly when |x| / q < 2^-32; the other modes
  // need it below 1/2 (nearest) or nonzero (directed), which S itself is.
  constexpr bool kExactFraction = kMode == Rounding::kStochastic;
  const DF df;
  const DU du;
  const DI di;
  const VU bits = hn::BitCast(du, x);
  const MU negative = hn::RebindMask(du, hn::Lt(hn::BitCast(di, bits), hn::Zero(di)));
  VU magnitude = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
  const MU is_nan = hn::Gt(magnitude, hn::Set(du, 0x7F800000u));
  const MU is_inf = hn::Eq(magnitude, hn::Set(du, 0x7F800000u));
  if (p.positive_limit_bits == p.negative_limit_bits)
    magnitude = hn::Min(magnitude, hn::Set(du, p.positive_limit_bits));
  else
    magnitude = hn::Min(magnitude, hn::IfThenElse(negative, hn::Set(du, p.negative_limit_bits),
                                                  hn::Set(du, p.positive_limit_bits)));

  // Path B: fixed quantum. sh = number of fraction bits of |x| / q in the 24-bit significand S;
  // it is >= 1 on every lane whose result is used (path A takes the rest, integers are clamped).
  const VU field = hn::ShiftRight<23>(magnitude);
  const VU significand = hn::Or(hn::And(magnitude, hn::Set(du, 0x7FFFFFu)),
                                hn::IfThenElseZero(hn::Ne(field, hn::Zero(du)), hn::Set(du, 0x800000u)));
  const auto sh_signed =
      hn::Sub(hn::Set(di, p.fixed_shift_base), hn::BitCast(di, hn::Max(field, hn::Set(du, 1u))));
  const VU k31 = hn::Set(du, 31u), k32 = hn::Set(du, 32u);
  const VU sh = hn::BitCast(du, hn::Min(hn::Max(sh_signed, hn::Set(di, 1)), hn::Set(di, 63)));
  VU trunc = hn::IfThenElseZero(hn::Gt(k32, sh), (significand >> hn::Min(sh, k31)));
  VU frac = significand << hn::Sub(k32, hn::Min(sh, k32));  // shift 0 when sh >= 32: frac = S
  if constexpr (kExactFraction)
    frac = hn::IfThenElse(hn::Gt(sh, k32), (significand >> hn::Min(hn::Sub(sh, k32), k31)), frac);

  MU in_a = hn::FirstN(du, 0);
  if constexpr (kFloat) {
    // Path A: normal range, drop `shift` bits of the binary32 pattern.
    in_a = hn::Not(hn::Gt(hn::Set(du, p.normal_min_bits), magnitude));
    const VU trunc_a = hn::ShiftRightSame(magnitude, static_cast<int>(p.shift));
    const VU frac_a = hn::ShiftLeftSame(hn::And(magnitude, hn::Set(du, (1u << p.shift) - 1u)),
                                        static_cast<int>(p.frac_shift));
    trunc = hn::IfThenElse(in_a, trunc_a, trunc);
    frac = hn::IfThenElse(in_a, frac_a, frac);
  }
  const MU inexact = hn::Ne(frac, hn::Zero(du));

  MU odd = hn::Ne(hn::And(trunc, hn::Set(du, 1u)), hn::Zero(du));
  if (kFloat && p.normal_ties_up) odd = hn::Or(odd, in_a);
  const MU up = RoundUp<kMode>(odd, frac, inexact, negative, random);
  VU count = hn::Sub(trunc, hn::VecFromMask(du, up));  // mask lanes are all ones = -1
  if (kFloat && p.fixed_min_count) count = hn::IfThenElse(in_a, count, hn::Max(count, hn::Set(du, p.fixed_min_count)));

  if constexpr (kFloat) {
    const VU value_a = hn::ShiftLeftSame(count, static_cast<int>(p.shift));
    const VU value_b =
        p.fixed_value_by_bits
            ? hn::ShiftLeftSame(count, static_cast<int>(p.fixed_value_shift))
            : hn::BitCast(du, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, count)), hn::Set(df, p.fixed_quantum)));
    VU value_bits = hn::IfThenElse(in_a, value_a, value_b);
    VU c;
    if constexpr (kCodes)
      c = hn::IfThenElse(in_a, hn::Sub(count, hn::Set(du, p.normal_code_offset)),
                         hn::Sub(hn::ShiftLeftSame(count, static_cast<int>(p.fixed_code_shift)),
                                 hn::Set(du, p.fixed_code_sub)));
    if (!p.saturating) {
      // Past the largest finite value: IEEE 754 7.4 (saturating formats were clamped above).
      const MU overflow = hn::Gt(value_bits, hn::Set(du, p.max_bits));
      MU to_special;
      if constexpr (kMode == Rounding::kTowardZero) {
        to_special = is_inf;
      } else if constexpr (kMode == Rounding::kTowardPositive) {
        to_special = hn::Or(is_inf, hn::Not(negative));
      } else if constexpr (kMode == Rounding::kTowardNegative) {
        to_special = hn::Or(is_inf, negative);
      } else {
        to_special = hn::Not(hn::FirstN(du, 0));
      }
      value_bits = hn::IfThenElse(
          overflow, hn::IfThenElse(to_special, hn::Set(du, p.special_bits), hn::Set(du, p.max_bits)), value_bits);
      if constexpr (kCodes)
        c = hn::IfThenElse(overflow,
                           hn::IfThenElse(to_special, hn::Set(du, p.special_code), hn::Set(du, p.max_code)), c);
    }
    if (p.has_nan) {
      value_bits = hn::IfThenElse(is_nan, hn::Set(du, 0x7FC00000u), value_bits);
      if constexpr (kCodes) c = hn::IfThenElse(is_nan, hn::Set(du, p.nan_code), c);
    } else {
      value_bits = hn::IfThenZeroElse(is_nan, value_bits);
      if constexpr (kCodes) c = hn::IfThenZeroElse(is_nan, c);
    }
    if (p.signed_float) {
      const MU keep_sign = p.has_nan ? negative : hn::AndNot(is_nan, negative);
      value_bits = hn::Or(value_bits, hn::IfThenElseZero(keep_sign, hn::Set(du, 0x80000000u)));
      if constexpr (kCodes) c = hn::Or(c, hn::IfThenElseZero(keep_sign, hn::Set(du, p.sign_code)));
    }
    value = hn::BitCast(df, value_bits);
    if constexpr (kCodes) code = c;
  } else {
    const auto v = hn::BitCast(di, count);
    const auto sv = hn::IfThenElse(hn::RebindMask(di, negative), hn::Neg(v), v);
    const auto zeroed = hn::IfThenZeroElse(hn::RebindMask(di, is_nan), sv);
    if constexpr (kCodes)
      code = hn::And(hn::BitCast(du, hn::Add(zeroed, hn::Set(di, p.code_offset))), hn::Set(du, p.code_mask));
    value = hn::Mul(hn::ConvertTo(df, zeroed), hn::Set(df, p.fixed_quantum));
  }
}

// (Redefined for each target: foreach_target.h includes this file once per target.)
#undef LOWBIT_LOOKUP_PERMUTE
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define LOWBIT_LOOKUP_PERMUTE 1  // 16 float lanes: a whole <= 16-entry table fits one register
#else
#define LOWBIT_LOOKUP_PERMUTE 0
#endif

#if LOWBIT_LOOKUP_PERMUTE
// #{i : x >= table[i]} for an increasing table of at most 15 entries padded with NaN (which no x
// reaches), by binary search with in-register table lookups.
HWY_INLINE hn::Vec<DI> CountAtOrAbove(VF x, VF table) {
  const DF df;
  const DI di;
  auto index = hn::Zero(di);
  for (int step = 8; step >= 1; step /= 2) {
    const auto probe = hn::Add(index, hn::Set(di, step - 1));
    const VF t = hn::TableLookupLanes(table, hn::IndicesFromVec(df, probe));
    index = hn::IfThenElse(hn::RebindMask(di, hn::Ge(x, t)), hn::Add(index, hn::Set(di, step)), index);
  }
  return index;
}

// 16 table entries (KernelParams pads its tables with NaN).
HWY_INLINE VF Table(const float* values) { return hn::LoadU(DF(), values); }
#endif

HWY_INLINE void LookupVector(const KernelParams& p, VF x, VU& code, VF& value) {
  const DF df;
  const DU du;
#if LOWBIT_LOOKUP_PERMUTE
  const auto index = CountAtOrAbove(x, Table(p.thresholds.data()));
  VU c = hn::BitCast(du, index);
  VF v = hn::TableLookupLanes(Table(p.levels.data()), hn::IndicesFromVec(df, index));
#else
  VU c = hn::Zero(du);
  VF v = hn::Set(df, p.levels[0]);
  for (int i = 0; i + 1 < p.lookup_count; ++i) {
    const auto at_or_above = hn::Not(hn::Lt(x, hn::Set(df, p.thresholds[i])));  // NaN lanes fixed below
    c = hn::Sub(c, hn::VecFromMask(du, hn::RebindMask(du, at_or_above)));
    v = hn::IfThenElse(at_or_above, hn::Set(df, p.levels[i + 1]), v);
  }
#endif
  const auto is_nan = hn::IsNaN(x);
  code = hn::IfThenElse(hn::RebindMask(du, is_nan), hn::Set(du, p.lookup_nan_code), c);
  value = hn::IfThenElse(is_nan, hn::Set(df, p.levels[p.lookup_nan_code]), v);
}

// Stochastic rounding between the neighbouring levels lo <= x < hi (Format::encode_lookup).
template <Rounding kMode>
HWY_INLINE void LookupStochasticVector(const KernelParams& p, VF x, VU random, VU& code, VF& value) {
  const DF df;
  const DU du;
  const int n = p.lookup_count;
#if LOWBIT_LOOKUP_PERMUTE
  const DI di;
  const VF levels = Table(p.levels.data());
  const auto lo_index = CountAtOrAbove(x, Table(p.levels.data() + 1));
  VU index = hn::BitCast(du, lo_index);
  const VF lo = hn::TableLookupLanes(levels, hn::IndicesFromVec(df, lo_index));
  const auto hi_index = hn::Min(hn::Add(lo_index, hn::Set(di, 1)), hn::Set(di, n - 1));
  const VF hi = hn::TableLookupLanes(levels, hn::IndicesFromVec(df, hi_index));
#else
  VU index = hn::Zero(du);
  VF lo = hn::Set(df, p.levels[0]), hi = hn::Set(df, p.levels[1]);
  for (int k = 1; k < n; ++k) {
    const auto at_or_above = hn::Not(hn::Lt(x, hn::Set(df, p.levels[k])));
    index = hn::Sub(index, hn::VecFromMask(du, hn::RebindMask(du, at_or_above)));
    lo = hn::IfThenElse(at_or_above, hn::Set(df, p.levels[k]), lo);
    if (k + 1 < n) hi = hn::IfThenElse(at_or_above, hn::Set(df, p.levels[k + 1]), hi);
  }
#endif
  const auto below = hn::Not(hn::Gt(x, hn::Set(df, p.levels[0])));      // x <= first level
  const auto above = hn::Not(hn::Lt(x, hn::Set(df, p.levels[n - 1])));  // x >= last level
  hn::Mask<DF> up;
  if constexpr (kMode == Rounding::kStochastic) {
    const VF f = hn::Div(hn::Sub(x, lo), hn::Sub(hi, lo));
    const VF threshold = hn::Floor(hn::Mul(f, hn::Set(df, 0x1p24f)));
    up = hn::Lt(hn::ConvertTo(df, hn::BitCast(hn::RebindToSigned<DF>(), hn::ShiftRight<8>(random))), threshold);
  } else {
    up = hn::And(hn::Ne(x, lo), hn::RebindMask(df, hn::Not(hn::Gt(hn::Set(du, 0x80000000u), random))));
  }
  up = hn::AndNot(hn::Or(below, above), up);
  code = hn::Sub(index, hn::VecFromMask(du, hn::RebindMask(du, up)));
  value = hn::IfThenElse(up, hi, lo);
  const auto is_nan = hn::IsNaN(x);
  code = hn::IfThenElse(hn::RebindMask(du, is_nan), hn::Set(du, p.lookup_nan_code), code);
  value = hn::IfThenElse(is_nan, hn::Set(df, p.levels[p.lookup_nan_code]), value);
}

HWY_INLINE void StoreOutputs(const KernelOutput& out, size_t i, VU code, VF value) {
  const DF df;
  const DU du;
  if (out.values) {
    if (out.multiplier != 1.0f) value = hn::Mul(value, hn::Set(df, out.multiplier));
    hn::StoreU(value, df, out.values + i);
  }
  if (out.codes) {
    if (out.code_bytes == 1) {
      const hn::Rebind<uint8_t, DU> d8;
      hn::StoreU(hn::TruncateTo(d8, code), d8, static_cast<uint8_t*>(out.codes) + i);
    } else if (out.code_bytes == 2) {
      const hn::Rebind<uint16_t, DU> d16;
      hn::StoreU(hn::TruncateTo(d16, code), d16, static_cast<uint16_t*>(out.codes) + i);
    } else {
      hn::StoreU(code, du, static_cast<uint32_t*>(out.codes) + i);
    }
  }
}

// Runs `body` on every vector of x = in / divisor and stores its outputs. The tail goes through
// the same vector code on a padded copy, so every element sees exactly the same operations.
// (Non-temporal stores were tried for large outputs and halved throughput on the benchmark
// machine, whose memcpy does not stream either; see docs/BENCHMARKS.md.)
// Software prefetch distance. The benchmark machine's hardware prefetcher leaves streaming
// chop/encode latency-bound: prefetching 4 KiB ahead took e4m3 encode from 0.52 to 1.5 Gelem/s
// and chop from 0.87 to 1.3 (one thread, 256 MiB). `input_end` bounds it (no address past the
// caller's array is formed or touched).
constexpr uintptr_t kPrefetchBytes = 4096;

template <class Body>
HWY_INLINE void ForEachVector(const float* in, size_t count, float divisor, const uint32_t* random,
                              const KernelOutput& out, const Body& body, const float* input_end) {
  const DF df;
  const DU du;
  const size_t lanes = hn::Lanes(df);
  const bool divide = divisor != 1.0f;
  const VF divisor_v = hn::Set(df, divisor);
  const uintptr_t prefetch_end = reinterpret_cast<uintptr_t>(input_end);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    const uintptr_t ahead = reinterpret_cast<uintptr_t>(in + i) + kPrefetchBytes;
    if (ahead < prefetch_end) hwy::Prefetch(reinterpret_cast<const float*>(ahead));
    VF x = hn::LoadU(df, in + i);
    if (divide) x = hn::Div(x, divisor_v);
    const VU r = random ? hn::LoadU(du, random + i) : hn::Zero(du);
    VU code;
    VF value;
    body(x, r, code, value);
    StoreOutputs(out, i, code, value);
  }
  if (i == count) return;
  constexpr size_t kMaxLanes = 64;
  HWY_ALIGN float x_buf[kMaxLanes] = {};
  HWY_ALIGN uint32_t r_buf[kMaxLanes] = {};
  HWY_ALIGN float value_buf[kMaxLanes] = {};
  HWY_ALIGN uint32_t code_buf[kMaxLanes] = {};
  const size_t rest = count - i;
  std::memcpy(x_buf, in + i, rest * sizeof(float));
  if (random) std::memcpy(r_buf, random + i, rest * sizeof(uint32_t));
  VF x = hn::Load(df, x_buf);
  if (divide) x = hn::Div(x, divisor_v);
  VU code;
  VF value;
  body(x, hn::Load(du, r_buf), code, value);
  KernelOutput local = out;
  local.values = out.values ? value_buf : nullptr;
  local.codes = out.codes ? code_buf : nullptr;
  local.code_bytes = 4;
  StoreOutputs(local, 0, code, value);
  if (out.values) std::memcpy(out.values + i, value_buf, rest * sizeof(float));
  if (out.codes) {
    for (size_t j = 0; j < rest; ++j) {
      if (out.code_bytes == 1) static_cast<uint8_t*>(out.codes)[i + j] = static_cast<uint8_t>(code_buf[j]);
      else if (out.code_bytes == 2) static_cast<uint16_t*>(out.codes)[i + j] = static_cast<uint16_t>(code_buf[j]);
      else static_cast<uint32_t*>(out.codes)[i + j] = code_buf[j];
    }
  }
}

// ForEachVector over the whole input, or group by group with each group's scale.
template <class Body>
HWY_INLINE void ForEachGroup(const KernelParams& p, const KernelInput& in, const KernelOutput& out, const Body& body) {
  const float* input_end = in.input_end ? in.input_end : in.in + in.count;
  if (!in.scales) return ForEachVector(in.in, in.count, in.divisor, in.random, out, body, input_end);
  for (size_t g = 0, begin = 0; begin < in.count; ++g, begin += in.group) {
    const size_t n = std::min(in.group, in.count - begin);
    const float scale = in.scales[g];
    KernelOutput local = out;
    local.multiplier = scale;
    if (out.values) local.values = out.values + begin;
    if (out.codes) local.codes = static_cast<char*>(out.codes) + begin * static_cast<size_t>(out.code_bytes);
    if (scale == 0.0f) {
      if (local.values) std::fill(local.values, local.values + n, 0.0f);
      for (size_t j = 0; local.codes && j < n; ++j) {
        if (out.code_bytes == 1) static_cast<uint8_t*>(local.codes)[j] = static_cast<uint8_t>(p.zero_code);
        else if (out.code_bytes == 2) static_cast<uint16_t*>(local.codes)[j] = static_cast<uint16_t>(p.zero_code);
        else static_cast<uint32_t*>(local.codes)[j] = p.zero_code;
      }
      continue;
    }
    ForEachVector(in.in + begin, n, scale, in.random ? in.random + begin : nullptr, local, body, input_end);
  }
}

template <Rounding kMode, bool kFloat>
void GridLoop(const KernelParams& p, const KernelInput& in, const KernelOutput& out) {
  if (out.codes) {
    ForEachGroup(p, in, out,
                 [&p](VF x, VU r, VU& code, VF& value) { GridVector<kMode, kFloat, true>(p, x, r, code, value); });
  } else {
    ForEachGroup(p, in, out, [&p](VF x, VU r, VU& code, VF& value) {
      code = hn::Zero(DU());
      GridVector<kMode, kFloat, false>(p, x, r, code, value);
    });
  }
}

template <bool kFloat>
void GridDispatch(const KernelParams& p, Rounding mode, const KernelInput& in, const KernelOutput& out) {
  switch (mode) {
    case Rounding::kNearestEven: return GridLoop<Rounding::kNearestEven, kFloat>(p, in, out);
    case Rounding::kNearestAway: return GridLoop<Rounding::kNearestAway, kFloat>(p, in, out);
    case Rounding::kTowardZero: return GridLoop<Rounding::kTowardZero, kFloat>(p, in, out);
    case Rounding::kTowardPositive: return GridLoop<Rounding::kTowardPositive, kFloat>(p, in, out);
    case Rounding::kTowardNegative: return GridLoop<Rounding::kTowardNegative, kFloat>(p, in, out);
    case Rounding::kStochastic: return GridLoop<Rounding::kStochastic, kFloat>(p, in, out);
    case Rounding::kStochasticEqual: return GridLoop<Rounding::kStochasticEqual, kFloat>(p, in, out);
  }
}

void RoundVectorized(const KernelParams& p, Rounding mode, const KernelInput& in, const KernelOutput& out) {
  if (p.path == KernelParams::Path::kLookup) {
    if (mode == Rounding::kStochastic) {
      ForEachGroup(p, in, out, [&p](VF x, VU r, VU& code, VF& value) {
        LookupStochasticVector<Rounding::kStochastic>(p, x, r, code, value);
      });
    } else if (mode == Rounding::kStochasticEqual) {
      ForEachGroup(p, in, out, [&p](VF x, VU r, VU& code, VF& value) {
        LookupStochasticVector<Rounding::kStochasticEqual>(p, x, r, code, value);
      });
    } else {
      ForEachGroup(p, in, out, [&p](VF x, VU, VU& code, VF& value) { LookupVector(p, x, code, value); });
    }
  } else if (p.is_float) {
    GridDispatch<true>(p, mode, in, out);
  } else {
    GridDispatch<false>(p, mode, in, out);
  }
}

// min(x, 0), max(x, 0) or max |x| of a block, NaN-propagating.
HWY_INLINE void Range(const float* in, size_t count, bool magnitude, float& lo, float& hi, const float* input_end) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  VF vlo = hn::Zero(df), vhi = hn::Zero(df);
  auto nan = hn::FirstN(df, 0);
  const uintptr_t prefetch_end = reinterpret_cast<uintptr_t>(input_end);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    const uintptr_t ahead = reinterpret_cast<uintptr_t>(in + i) + kPrefetchBytes;
    if (ahead < prefetch_end) hwy::Prefetch(reinterpret_cast<const float*>(ahead));
    VF x = hn::LoadU(df, in + i);
    nan = hn::Or(nan, hn::IsNaN(x));
    if (magnitude) x = hn::Abs(x);
    vlo = hn::Min(vlo, x);
    vhi = hn::Max(vhi, x);
  }
  float l = hn::GetLane(hn::MinOfLanes(df, vlo)), h = hn::GetLane(hn::MaxOfLanes(df, vhi));
  bool any_nan = !hn::AllFalse(df, nan);
  for (; i < count; ++i) {
    const float x = magnitude ? std::fabs(in[i]) : in[i];
    any_nan |= std::isnan(x);
    l = std::min(l, x);
    h = std::max(h, x);
  }
  if (any_nan) {
    lo = hi = NAN;
  } else {
    lo = magnitude ? -h : l;
    hi = h;
  }
}

// Range of each consecutive group of `group` elements (the last may be shorter).
void GroupRanges(const float* in, size_t count, size_t group, bool magnitude, float* lo, float* hi) {
  for (size_t g = 0, begin = 0; begin < count; ++g, begin += group)
    Range(in + begin, std::min(group, count - begin), magnitude, lo[g], hi[g], in + count);
}

// Philox4x32-10 on 32-bit lanes: one counter block per lane.
#if HWY_TARGET != HWY_SCALAR
HWY_INLINE void MulHiLo(VU a, uint32_t multiplier, VU& hi, VU& lo) {
  const DU du;
  const hn::RepartitionToWide<DU> dw;
  const VU m = hn::Set(du, multiplier);
  const auto even = hn::MulEven(a, m);  // products of lanes 0, 2, 4, ... as u64
  const auto odd = hn::MulEven(hn::BitCast(du, hn::ShiftRight<32>(hn::BitCast(dw, a))), m);
  hi = hn::OddEven(hn::BitCast(du, odd), hn::BitCast(du, hn::ShiftRight<32>(even)));
  lo = hn::OddEven(hn::BitCast(du, hn::ShiftLeft<32>(odd)), hn::BitCast(du, even));
}

void PhiloxBlocks(uint64_t seed, uint64_t stream, uint64_t first_block, size_t blocks, uint32_t* out) {
  const DU du;
  const size_t lanes = hn::Lanes(du);
  HWY_ALIGN uint32_t tail[4 * 64];
  for (size_t j = 0; j < blocks; j += lanes) {
    const uint64_t base = first_block + j;
    VU c0 = hn::Iota(du, static_cast<uint32_t>(base));
    VU c1 = hn::Sub(hn::Set(du, static_cast<uint32_t>(base >> 32)),
                 hn::VecFromMask(du, hn::Gt(hn::Set(du, static_cast<uint32_t>(base)), c0)));  // +1 on wrap
    VU c2 = hn::Set(du, static_cast<uint32_t>(stream));
    VU c3 = hn::Set(du, static_cast<uint32_t>(stream >> 32));
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      if (round > 0) {
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
      }
      VU hi0, lo0, hi1, lo1;
      MulHiLo(c0, 0xD2511F53u, hi0, lo0);
      MulHiLo(c2, 0xCD9E8D57u, hi1, lo1);
      c0 = hn::Xor(hn::Xor(hi1, c1), hn::Set(du, k0));
      c1 = lo1;
      c2 = hn::Xor(hn::Xor(hi0, c3), hn::Set(du, k1));
      c3 = lo0;
    }
    if (j + lanes <= blocks) {
      hn::StoreInterleaved4(c0, c1, c2, c3, du, out + 4 * j);
    } else {
      hn::StoreInterleaved4(c0, c1, c2, c3, du, tail);
      std::memcpy(out + 4 * j, tail, 4 * (blocks - j) * sizeof(uint32_t));
    }
  }
}
#else
// One-lane target: 64-bit lanes do not exist, so use the scalar generator.
void PhiloxBlocks(uint64_t seed, uint64_t stream, uint64_t first_block, size_t blocks, uint32_t* out) {
  const CounterRng rng(seed, stream);
  for (size_t j = 0; j < blocks; ++j) {
    const PhiloxCounter words = rng.block(first_block + j);
    std::memcpy(out + 4 * j, words.data(), sizeof words);
  }
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::numerics_detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::numerics_detail {
HWY_EXPORT(RoundVectorized);
HWY_EXPORT(PhiloxBlocks);
HWY_EXPORT(GroupRanges);

void round_vectorized(const KernelParams& params, Rounding mode, const KernelInput& in, const KernelOutput& out) {
  HWY_DYNAMIC_DISPATCH(RoundVectorized)(params, mode, in, out);
}

void group_ranges(const float* in, size_t count, size_t group, bool magnitude, float* lo, float* hi) {
  HWY_DYNAMIC_DISPATCH(GroupRanges)(in, count, group, magnitude, lo, hi);
}

void philox_blocks(uint64_t seed, uint64_t stream, uint64_t first_block, size_t blocks, uint32_t* out) {
  HWY_DYNAMIC_DISPATCH(PhiloxBlocks)(seed, stream, first_block, blocks, out);
}
}  // namespace lowbit::numerics_detail
#endif
