// The constants the SIMD rounding kernels (quantize_kernels.cc) need, derived once per call
// from a Format and a rounding mode. Internal to the numerics module.
//
// The kernels round on the binary32 bit pattern, which is exact and branch-free:
//  * path A, magnitudes at or above the format's smallest normal (minifloats): the format's
//    normal binades coincide with binary32's, so rounding drops `shift` = 23 - m low bits of the
//    magnitude; a carry out of the mantissa increments the exponent, which is the correct result.
//    code = (bits >> shift) - ((127 - bias) << m).
//  * path B, a fixed quantum q (minifloat subnormals / flushed range, and every integer format):
//    with the 24-bit significand S and field E of |x|, |x| / q = S * 2^-(fixed_shift_base - max(E,1)),
//    so the integer part and the 32-bit fraction come from two variable shifts.
// Both produce (truncated count, fraction as a 32-bit fixed-point number, inexact), on which every
// rounding mode is one comparison — the same definitions as numerics_detail::round_magnitude_up.
#pragma once

#include <array>
#include <cstdint>

#include "lowbit/numerics/format.h"
#include "lowbit/numerics/rounding.h"

namespace lowbit::numerics_detail {

struct KernelParams {
  enum class Path : uint8_t {
    kGrid,    // minifloats with emin >= -126 (or E8M0-like), and integers
    kLookup,  // <= 16 levels; deterministic modes: code = #{i : x >= thresholds[i]}
    kScalar,  // everything else runs the scalar codec
  };
  Path path = Path::kScalar;
  bool is_float = false;

  // Path A (minifloat normal range).
  uint32_t normal_min_bits = 0xFFFFFFFFu;  // |x| bits >= this take path A (integers: never)
  uint32_t shift = 0;                      // 23 - m
  uint32_t frac_shift = 0;                 // 32 - shift, or 0 when shift == 0
  uint32_t normal_code_offset = 0;         // (127 - bias) << m, subtracted mod 2^32
  bool normal_ties_up = false;             // m = 0: ties between powers of two go up (see format.cc)

  // Path B (fixed quantum).
  int32_t fixed_shift_base = 0;  // 150 + log2(fixed_quantum)
  float fixed_quantum = 0;
  uint32_t fixed_code_shift = 0;  // m for flushed formats (the count 1 is the smallest normal)
  // When fixed_quantum is a binary32 subnormal (e8 formats: bf16, tf32, fp32), count * quantum is
  // built as the bit pattern count << fixed_value_shift (exact: the results stay <= 2^-126), so no
  // arithmetic ever touches a subnormal operand — x86 takes a ~100-cycle assist for those.
  bool fixed_value_by_bits = false;
  uint32_t fixed_value_shift = 0;
  // Formats without zero (E8M0): path B counts are at least 1 and code = count - 1.
  uint32_t fixed_min_count = 0;
  uint32_t fixed_code_sub = 0;

  // Saturation: magnitudes are clamped to these bit patterns before rounding.
  uint32_t positive_limit_bits = 0x7F800000u;
  uint32_t negative_limit_bits = 0x7F800000u;
  bool saturating = true;  // minifloats: no overflow handling needed after the clamp

  // Minifloat specials.
  bool signed_float = false;
  bool has_nan = false;
  uint32_t max_bits = 0;       // binary32 bits of the largest finite value
  uint32_t max_code = 0;       // magnitude codes
  uint32_t special_code = 0;   // Inf, or NaN for finite+NaN formats (non-saturating overflow)
  uint32_t special_bits = 0;   // binary32 bits of the overflow special value
  uint32_t nan_code = 0;       // canonical NaN magnitude code (0 when the format has no NaN)
  uint32_t sign_code = 0;      // the code's sign bit

  uint32_t zero_code = 0;  // the code of 0 (what blocks with a zero scale hold)

  // Integers: code = (value + code_offset) & code_mask.
  int32_t code_offset = 0;
  uint32_t code_mask = 0;

  // Lookup formats.
  // Entries past the format's are NaN (no x compares >= NaN), so 16-lane targets can search the
  // tables in registers; 17 entries so that levels + 1 is a full 16-entry table too.
  int lookup_count = 0;
  std::array<float, 17> thresholds{};
  std::array<float, 17> levels{};
  uint32_t lookup_nan_code = 0;
};

// `mode` matters only for lookup thresholds; grid parameters are mode-independent.
KernelParams make_kernel_params(const Format& format, Rounding mode);
// The parameters of format.with_zero_point(zero) for an unsigned integer `format` whose
// parameters are `base` (cheaper than building the Format: asymmetric blocks each have one).
KernelParams with_zero_point(const KernelParams& base, const Format& format, int32_t zero);

}  // namespace lowbit::numerics_detail
