#include "numerics/kernel_params.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

namespace lowbit::numerics_detail {

namespace {

uint32_t bits_of(float value) { return std::bit_cast<uint32_t>(value); }

// Monotone map of binary32 onto uint32 (-Inf < ... < -0 < +0 < ... < +Inf).
uint32_t order_key(float value) {
  const uint32_t bits = bits_of(value);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}
float from_order_key(uint32_t key) {
  return std::bit_cast<float>((key & 0x80000000u) ? key & 0x7FFFFFFFu : ~key);
}

// The smallest float x with encode(x) > code: deterministic rounding into a lookup format is
// monotone, so a binary search over the ordered floats finds it, and comparing x >= threshold
// in the kernel reproduces the scalar codec exactly (including at ties).
float lookup_threshold(const Format& format, Rounding mode, uint32_t code) {
  uint32_t lo = order_key(-INFINITY), hi = order_key(INFINITY);  // encode(lo) <= code < encode(hi)
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (format.encode(from_order_key(mid), mode) > code) hi = mid;
    else lo = mid;
  }
  return from_order_key(hi);
}

}  // namespace

KernelParams with_zero_point(const KernelParams& base, const Format& format, int32_t zero) {
  KernelParams p = base;
  const int32_t top = static_cast<int32_t>(format.code_count() - 1);
  p.code_offset = zero;
  p.zero_code = static_cast<uint32_t>(zero);
  p.positive_limit_bits = bits_of(static_cast<float>(top - zero));
  p.negative_limit_bits = bits_of(static_cast<float>(zero));
  return p;
}

KernelParams make_kernel_params(const Format& format, Rounding mode) {
  KernelParams p;
  p.zero_code = format.zero_code();
  switch (format.kind()) {
    case Format::Kind::kFloat: {
      const int m = format.mantissa_bits();
      const bool no_zero = format.subnormals() == Subnormals::kNone;
      const int emin = no_zero ? -format.bias() : 1 - format.bias();
      // Path A needs the format's normal binades to be binary32 normal binades. E8M0 (m = 0,
      // emin = -127) still works: below 2^-126 its only values are 2^-127 and 2^-126, one
      // fixed-quantum grid.
      if (emin < -126 && !(no_zero && m == 0 && emin == -127)) return p;  // scalar
      p.path = KernelParams::Path::kGrid;
      p.is_float = true;
      p.normal_min_bits = std::max(bits_of(std::ldexp(1.0f, emin)), 0x00800000u);
      p.shift = static_cast<uint32_t>(23 - m);
      p.frac_shift = p.shift == 0 ? 0 : 32 - p.shift;
      p.normal_code_offset = static_cast<uint32_t>(127 - format.bias()) << m;
      p.normal_ties_up = m == 0;
      const int quantum_log2 = format.subnormals() == Subnormals::kGradual ? emin - m : emin;
      p.fixed_quantum = std::ldexp(1.0f, quantum_log2);
      p.fixed_shift_base = 150 + quantum_log2;
      p.fixed_code_shift = format.subnormals() == Subnormals::kFlush ? static_cast<uint32_t>(m) : 0;
      if (no_zero) {  // everything below the smallest value rounds to it (code 0)
        p.fixed_min_count = 1;
        p.fixed_code_sub = 1;
      }
      // binary32's own subnormal grid (m = 23, emin = -126): path A is exact everywhere, and
      // path B would need a zero-bit fraction shift.
      if (quantum_log2 == -149) p.normal_min_bits = 0;
      if (quantum_log2 < -126) {
        p.fixed_value_by_bits = true;
        p.fixed_value_shift = static_cast<uint32_t>(quantum_log2 + 149);
      }
      p.max_bits = bits_of(static_cast<float>(format.max_value()));
      const uint32_t magnitude_bits = static_cast<uint32_t>(format.exponent_bits() + m);
      p.signed_float = format.is_signed();
      p.sign_code = p.signed_float ? uint32_t{1} << magnitude_bits : 0;
      p.max_code = format.encode(static_cast<float>(format.max_value()));
      p.has_nan = format.has_nan();
      p.nan_code = p.has_nan ? format.encode(NAN) : 0;
      p.special_code = format.has_inf() ? format.encode(INFINITY) : p.nan_code;
      p.special_bits = format.has_inf() ? 0x7F800000u : 0x7FC00000u;
      p.saturating = format.saturates();
      if (format.saturates()) p.positive_limit_bits = p.negative_limit_bits = p.max_bits;
      if (!p.signed_float) p.negative_limit_bits = 0;
      return p;
    }
    case Format::Kind::kInt: {
      p.path = KernelParams::Path::kGrid;
      p.fixed_quantum = std::ldexp(1.0f, -format.fraction_bits());
      p.fixed_shift_base = 150 - format.fraction_bits();
      p.positive_limit_bits = bits_of(static_cast<float>(format.max_value()));
      p.negative_limit_bits = bits_of(std::fabs(static_cast<float>(format.lowest_value())));
      p.code_offset = format.twos_complement() ? 0 : format.zero_point();
      p.code_mask = static_cast<uint32_t>(format.code_count() - 1);
      return p;
    }
    case Format::Kind::kLookup: {
      const auto levels = format.levels();
      if (levels.size() > 16) return p;
      // The thresholds cost a binary search over the floats per level (~500 scalar encodes), and a
      // clipping search asks for the same table once per candidate scale of every group, so each
      // thread keeps the last table it built (same levels and mode: the same thresholds).
      struct Memo {
        std::vector<float> levels;
        Rounding mode = Rounding::kNearestEven;
        KernelParams params;
      };
      thread_local Memo memo;
      if (!memo.levels.empty() && memo.mode == mode && std::ranges::equal(memo.levels, levels)) return memo.params;
      p.path = KernelParams::Path::kLookup;
      p.lookup_count = static_cast<int>(levels.size());
      p.thresholds.fill(NAN);
      p.levels.fill(NAN);
      for (size_t i = 0; i < levels.size(); ++i) p.levels[i] = levels[i];
      if (!is_stochastic(mode))  // stochastic modes compare with the levels themselves
        for (uint32_t i = 0; i + 1 < levels.size(); ++i) p.thresholds[i] = lookup_threshold(format, mode, i);
      p.lookup_nan_code = format.encode(NAN);
      memo = {std::vector<float>(levels.begin(), levels.end()), mode, p};
      return p;
    }
  }
  return p;
}

}  // namespace lowbit::numerics_detail
