// Bit tables of every <= 8-bit preset against the values their specifications define, and the
// rounding behaviour at every boundary between neighbouring codes.
//
// Oracles: the OCP 8-bit Floating Point Specification (OFP8) rev 1.0 and the OCP Microscaling
// Formats (MX) Specification v1.0 — the formulas are written out here from the spec text, and
// anchored by literal values quoted from the spec tables (e4m3 max 448 = S.1111.110, min
// subnormal 2^-9; e5m2 max 57344, Inf S.11111.00; FP6/FP4 maxima 28, 7.5, 6; E8M0 2^-127..2^127).
// For fp16/bf16 the foundation's conversions in lowbit/core/half.h (tested against libgcc) are
// the oracle.
#include "lowbit/numerics/format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"

namespace lowbit {
namespace {

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

// OFP8/MX minifloat value from the spec's definition: (-1)^S * 2^(E-bias) * 1.M for E > 0,
// (-1)^S * 2^(1-bias) * 0.M for E = 0. `nan_rule` says which codes are NaN/Inf.
enum class NanRule { kNone, kAllOnes, kIeee };
double spec_minifloat(uint32_t code, int e, int m, int bias, bool sign, NanRule rule) {
  const int magnitude_bits = e + m;
  const uint32_t magnitude = code & ((1u << magnitude_bits) - 1);
  const bool negative = sign && (code >> magnitude_bits);
  const uint32_t E = magnitude >> m, M = magnitude & ((1u << m) - 1);
  double v;
  if (rule == NanRule::kAllOnes && magnitude == (1u << magnitude_bits) - 1) return NAN;
  if (rule == NanRule::kIeee && E == (1u << e) - 1) v = M == 0 ? INFINITY : NAN;
  else if (E == 0) v = std::ldexp(M / std::ldexp(1.0, m), 1 - bias);
  else v = std::ldexp(1.0 + M / std::ldexp(1.0, m), static_cast<int>(E) - bias);
  return negative ? -v : v;
}

void expect_table(const Format& f, const std::vector<double>& want) {
  ASSERT_EQ(want.size(), f.code_count()) << f.to_string();
  for (uint32_t code = 0; code < f.code_count(); ++code) {
    const float got = f.decode(code);
    if (std::isnan(want[code])) {
      EXPECT_TRUE(std::isnan(got)) << f.to_string() << " code " << code;
      continue;
    }
    EXPECT_EQ(static_cast<double>(got), want[code]) << f.to_string() << " code " << code;
    EXPECT_EQ(std::signbit(got), std::signbit(want[code])) << f.to_string() << " code " << code << " sign";
  }
}

// Every code decodes, and every canonical code re-encodes to itself under every rounding mode
// and any random bits (a representable value never rounds).
void expect_codes_round_trip(const Format& f) {
  int canonical = 0;
  for (uint32_t code = 0; code < f.code_count(); ++code) {
    const float value = f.decode(code);
    if (!f.is_canonical(code)) continue;
    ++canonical;
    for (Rounding mode : kAllRoundings)
      for (uint32_t random : {0u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu})
        ASSERT_EQ(f.encode(value, mode, random), code)
            << f.to_string() << " code " << code << " value " << value << " mode " << rounding_name(mode);
  }
  EXPECT_GT(canonical, 0);
}

std::vector<double> spec_table(int e, int m, int bias, bool sign, NanRule rule) {
  std::vector<double> out;
  for (uint32_t code = 0; code < (1u << (e + m + (sign ? 1 : 0))); ++code)
    out.push_back(spec_minifloat(code, e, m, bias, sign, rule));
  return out;
}

TEST(FormatTable, E4m3MatchesOfp8) {
  const Format f = Format::e4m3();
  EXPECT_EQ(f.bits(), 8);
  expect_table(f, spec_table(4, 3, 7, true, NanRule::kAllOnes));
  expect_codes_round_trip(f);
  // Literal anchors from the OFP8 table.
  EXPECT_EQ(f.decode(0x7E), 448.0f);
  EXPECT_EQ(f.decode(0xFE), -448.0f);
  EXPECT_EQ(f.decode(0x01), 0x1p-9f);  // min subnormal
  EXPECT_EQ(f.decode(0x07), 7 * 0x1p-9f);
  EXPECT_EQ(f.decode(0x08), 0x1p-6f);  // min normal
  EXPECT_EQ(f.decode(0x38), 1.0f);
  EXPECT_EQ(f.decode(0x77), 240.0f);
  EXPECT_TRUE(std::isnan(f.decode(0x7F)));
  EXPECT_TRUE(std::isnan(f.decode(0xFF)));
  EXPECT_EQ(bits_of(f.decode(0x80)), 0x80000000u);  // -0
  EXPECT_EQ(f.max_value(), 448.0);
  EXPECT_EQ(f.min_normal(), 0x1p-6);
  EXPECT_EQ(f.min_positive(), 0x1p-9);
  EXPECT_FALSE(f.has_inf());
  EXPECT_TRUE(f.has_nan());
  EXPECT_TRUE(f.saturates());
  int nans = 0;
  for (uint32_t code = 0; code < 256; ++code) nans += std::isnan(f.decode(code));
  EXPECT_EQ(nans, 2);
}

TEST(FormatTable, E5m2MatchesOfp8) {
  const Format f = Format::e5m2();
  expect_table(f, spec_table(5, 2, 15, true, NanRule::kIeee));
  expect_codes_round_trip(f);
  EXPECT_EQ(f.decode(0x7B), 57344.0f);
  EXPECT_EQ(f.decode(0x01), 0x1p-16f);
  EXPECT_EQ(f.decode(0x04), 0x1p-14f);
  EXPECT_EQ(f.decode(0x7C), INFINITY);
  EXPECT_EQ(f.decode(0xFC), -INFINITY);
  for (uint32_t code : {0x7Du, 0x7Eu, 0x7Fu, 0xFDu, 0xFEu, 0xFFu}) EXPECT_TRUE(std::isnan(f.decode(code)));
  EXPECT_EQ(f.max_value(), 57344.0);
  EXPECT_TRUE(f.has_inf());
  EXPECT_FALSE(f.saturates());
  // e5m2 is the upper byte of fp16 (same exponent range): every code agrees with half.h.
  for (uint32_t code = 0; code < 256; ++code) {
    const float via_half = f16_bits_to_f32(static_cast<uint16_t>(code << 8));
    if (std::isnan(via_half)) EXPECT_TRUE(std::isnan(f.decode(code)));
    else EXPECT_EQ(bits_of(f.decode(code)), bits_of(via_half)) << code;
  }
}

TEST(FormatTable, Fp6AndFp4MatchMx) {
  const Format e3m2 = Format::e3m2(), e2m3 = Format::e2m3(), e2m1 = Format::e2m1();
  expect_table(e3m2, spec_table(3, 2, 3, true, NanRule::kNone));
  expect_table(e2m3, spec_table(2, 3, 1, true, NanRule::kNone));
  expect_table(e2m1, spec_table(2, 1, 1, true, NanRule::kNone));
  for (const Format& f : {e3m2, e2m3, e2m1}) {
    expect_codes_round_trip(f);
    EXPECT_FALSE(f.has_inf());
    EXPECT_FALSE(f.has_nan());
    EXPECT_TRUE(f.saturates());
  }
  EXPECT_EQ(e3m2.bits(), 6);
  EXPECT_EQ(e3m2.max_value(), 28.0);
  EXPECT_EQ(e3m2.min_normal(), 0.25);
  EXPECT_EQ(e3m2.min_positive(), 0.0625);
  EXPECT_EQ(e2m3.max_value(), 7.5);
  EXPECT_EQ(e2m3.min_normal(), 1.0);
  EXPECT_EQ(e2m3.min_positive(), 0.125);
  // FP4 E2M1, written out from the MX spec's table.
  expect_table(e2m1, {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6});
  EXPECT_EQ(e2m1.bits(), 4);
}

TEST(FormatTable, Ue8m0MatchesMxScale) {
  const Format f = Format::ue8m0();
  EXPECT_EQ(f.bits(), 8);
  for (uint32_t code = 0; code < 255; ++code) EXPECT_EQ(static_cast<double>(f.decode(code)), std::ldexp(1.0, int(code) - 127));
  EXPECT_TRUE(std::isnan(f.decode(0xFF)));
  expect_codes_round_trip(f);
  EXPECT_EQ(f.max_value(), 0x1p127);
  EXPECT_EQ(f.lowest_value(), 0x1p-127);
  EXPECT_FALSE(f.is_signed());
  // No zero: 0 and negatives clamp to the smallest scale; overflow saturates.
  EXPECT_EQ(f.encode(0.0f), 0u);
  EXPECT_EQ(f.encode(-3.0f), 0u);
  EXPECT_EQ(f.encode(INFINITY), 0xFEu);
  EXPECT_EQ(f.encode(NAN), 0xFFu);
  // 1.5 * 2^k is a tie between powers of two, whose significands are both 1: it goes up (as
  // ml_dtypes' float8_e8m0fnu rounds).
  EXPECT_EQ(f.encode(1.5f), 128u);
  EXPECT_EQ(f.encode(3.0f), 129u);
  EXPECT_EQ(f.encode(0x1.8p-127f), 1u);
  EXPECT_EQ(f.encode(1.4f), 127u);
  EXPECT_EQ(f.encode(1.01f, Rounding::kTowardPositive), 128u);
  EXPECT_EQ(f.encode(1.99f, Rounding::kTowardZero), 127u);
}

TEST(FormatTable, Ue4m3IsThePositiveHalfOfE4m3) {
  const Format f = Format::ue4m3(), e4m3 = Format::e4m3();
  EXPECT_EQ(f.bits(), 7);
  for (uint32_t code = 0; code < 127; ++code) EXPECT_EQ(f.decode(code), e4m3.decode(code));
  EXPECT_TRUE(std::isnan(f.decode(0x7F)));
  expect_codes_round_trip(f);
  EXPECT_EQ(f.max_value(), 448.0);
  EXPECT_EQ(f.encode(-1.0f), 0u);
  EXPECT_EQ(f.encode(1000.0f), 0x7Eu);
}

TEST(FormatTable, IntegerFormats) {
  const Format int4 = Format::int_symmetric(4);
  expect_table(int4, {0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1});
  EXPECT_FALSE(int4.is_canonical(0x8));  // -8 decodes but is never produced
  EXPECT_EQ(int4.encode(-100.0f), 0x9u);
  expect_codes_round_trip(int4);
  const Format full = Format::int_full(4);
  EXPECT_TRUE(full.is_canonical(0x8));
  EXPECT_EQ(full.encode(-100.0f), 0x8u);
  expect_codes_round_trip(full);
  const Format u4 = Format::uint(4);
  for (uint32_t code = 0; code < 16; ++code) EXPECT_EQ(u4.decode(code), float(code));
  expect_codes_round_trip(u4);
  EXPECT_EQ(u4.encode(-3.0f), 0u);
  const Format z = Format::uint(4).with_zero_point(5);
  for (uint32_t code = 0; code < 16; ++code) EXPECT_EQ(z.decode(code), float(int(code) - 5));
  expect_codes_round_trip(z);
  EXPECT_EQ(z.encode(-100.0f), 0u);
  EXPECT_EQ(z.encode(100.0f), 15u);
  const Format ternary = Format::ternary();
  expect_table(ternary, {0, 1, -2, -1});
  EXPECT_EQ(ternary.encode(0.4f), 0u);
  EXPECT_EQ(ternary.encode(-0.6f), 3u);
  // MXINT8 elements: int8 with an implicit 2^-6 (OCP MX 5.3), ±1.984375.
  const Format mxint8 = Format::int_symmetric(8, 6);
  EXPECT_EQ(mxint8.max_value(), 127.0 / 64);
  EXPECT_EQ(mxint8.decode(0x80), -2.0f);
  EXPECT_EQ(mxint8.decode(0x01), 1.0f / 64);
  expect_codes_round_trip(mxint8);
  expect_codes_round_trip(Format::int_symmetric(16));
  EXPECT_EQ(Format::int_symmetric(16).max_value(), 32767.0);
}

TEST(FormatTable, LookupFormats) {
  const Format nf4 = Format::nf4();
  EXPECT_EQ(nf4.bits(), 4);
  ASSERT_EQ(nf4.levels().size(), 16u);
  EXPECT_EQ(nf4.decode(0), -1.0f);
  EXPECT_EQ(nf4.decode(7), 0.0f);
  EXPECT_EQ(nf4.decode(8), 0.07958029955625534f);
  EXPECT_EQ(nf4.decode(15), 1.0f);
  expect_codes_round_trip(nf4);
  const Format nf3 = Format::nf3();
  EXPECT_EQ(nf3.bits(), 3);
  EXPECT_EQ(nf3.decode(3), 0.0f);
  expect_codes_round_trip(nf3);
  const Format log4 = Format::log2_levels(4);
  ASSERT_EQ(log4.levels().size(), 15u);
  expect_table(log4, {-1, -0.5, -0.25, -0.125, -0.0625, -0.03125, -0.015625, 0, 0.015625, 0.03125, 0.0625, 0.125,
                      0.25, 0.5, 1, NAN});
  EXPECT_FALSE(log4.is_canonical(15));
  expect_codes_round_trip(log4);
  const Format sqrt2 = Format::log_sqrt2_levels(3);
  EXPECT_EQ(sqrt2.levels().size(), 7u);
  EXPECT_EQ(sqrt2.decode(6), 1.0f);
  EXPECT_EQ(sqrt2.decode(5), static_cast<float>(std::sqrt(0.5)));
  EXPECT_EQ(sqrt2.decode(4), 0.5f);
  const Format binary = Format::binary();
  expect_table(binary, {-1, 1});
  EXPECT_EQ(binary.encode(0.0f), 1u);  // a tie between -a and +a goes to +a
  EXPECT_EQ(binary.encode(NAN), 1u);
}

// NormalFloat levels re-derived from their construction (QLoRA appendix E): quantiles of the
// standard normal at evenly spaced probabilities, normalized to [-1, 1].
double normal_quantile(double p) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}
std::vector<double> normal_float_levels(int bits, double offset) {
  const int half = 1 << (bits - 1);
  std::vector<double> levels{0.0};
  for (int i = 0; i < half; ++i) levels.push_back(normal_quantile(offset + (0.5 - offset) * i / half));
  for (int i = 0; i < half - 1; ++i) levels.push_back(-normal_quantile(offset + (0.5 - offset) * i / (half - 1)));
  std::sort(levels.begin(), levels.end());
  const double top = levels.back();
  for (double& level : levels) level /= top;
  return levels;
}

TEST(FormatTable, NormalFloatLevelsFollowTheirConstruction) {
  const auto nf4 = normal_float_levels(4, 0.9677083);
  const auto nf3 = normal_float_levels(3, (1 - 1.0 / 14 + 1 - 1.0 / 16) / 2);
  for (size_t i = 0; i < 16; ++i) EXPECT_NEAR(Format::nf4().levels()[i], nf4[i], 1e-6) << i;
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(Format::nf3().levels()[i], nf3[i], 1e-6) << i;
}

// ---------------------------------------------------------------------------------------------
// Rounding at every boundary between neighbouring values.

float next_down(float x) { return std::nextafter(x, -INFINITY); }
float next_up(float x) { return std::nextafter(x, INFINITY); }

struct Neighbour {
  float value;
  uint32_t code;
};

// Canonical finite values in ascending order (one zero: +0).
std::vector<Neighbour> ascending_values(const Format& f) {
  std::vector<Neighbour> out;
  for (uint32_t code = 0; code < f.code_count(); ++code) {
    const float v = f.decode(code);
    if (!f.is_canonical(code) || !std::isfinite(v) || (v == 0 && std::signbit(v))) continue;
    out.push_back({v, code});
  }
  std::sort(out.begin(), out.end(), [](const Neighbour& a, const Neighbour& b) { return a.value < b.value; });
  return out;
}

// The value `f` must return when x lies strictly between lo and hi, as bits (so -0 is checked).
void expect_quantizes_to(const Format& f, float x, Rounding mode, float want, uint32_t random = 0) {
  float expected = want;
  // Signed-zero formats keep the sign of x on a zero result.
  if (want == 0.0f && f.kind() == Format::Kind::kFloat && f.is_signed() && std::signbit(x)) expected = -0.0f;
  const float got = f.quantize(x, mode, random);
  EXPECT_EQ(bits_of(got), bits_of(expected)) << f.to_string() << " x=" << x << " (" << std::hexfloat << x
                                             << std::defaultfloat << ") mode " << rounding_name(mode) << " got "
                                             << got << " want " << expected;
}

void check_every_boundary(const Format& f) {
  const auto values = ascending_values(f);
  ASSERT_GE(values.size(), 2u);
  const bool lookup = f.kind() == Format::Kind::kLookup;
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    const Neighbour lo = values[i], hi = values[i + 1];
    const double mid_exact = (static_cast<double>(lo.value) + hi.value) / 2;
    const float mid = static_cast<float>(mid_exact);
    if (static_cast<double>(mid) != mid_exact) {
      // Lookup levels need not have representable midpoints; check the sides only.
      ASSERT_TRUE(lookup) << f.to_string() << ": midpoint of " << lo.value << " and " << hi.value;
      const float below = static_cast<double>(mid) < mid_exact ? mid : next_down(mid);
      expect_quantizes_to(f, below, Rounding::kNearestEven, lo.value);
      expect_quantizes_to(f, next_up(below), Rounding::kNearestEven, hi.value);
      continue;
    }
    const bool mid_negative = mid < 0 || (mid == 0 && false);
    const Neighbour small = (std::fabs(lo.value) < std::fabs(hi.value)) ? lo : hi;
    const Neighbour large = (std::fabs(lo.value) < std::fabs(hi.value)) ? hi : lo;
    // Ties: even code (for sign-magnitude negatives the zero candidate is -0, code 1000..0,
    // also even).
    // Integers round the integer value to even (round(x) + zero point); others the code.
    auto parity = [&](const Neighbour& n) {
      if (f.kind() == Format::Kind::kInt) return static_cast<uint32_t>(std::ldexp(std::fabs(n.value), f.fraction_bits())) % 2;
      const bool sign_magnitude = f.kind() == Format::Kind::kFloat && f.is_signed();
      return n.value == 0 && mid_negative && sign_magnitude ? 0u : n.code % 2;
    };
    const bool no_mantissa = f.kind() == Format::Kind::kFloat && f.mantissa_bits() == 0;
    if (no_mantissa && lo.value != 0 && hi.value != 0) {
      expect_quantizes_to(f, mid, Rounding::kNearestEven, large.value);  // significands both 1: up
    } else if (std::fabs(lo.value) == std::fabs(hi.value)) {
      expect_quantizes_to(f, mid, Rounding::kNearestEven, std::fabs(hi.value));  // ±a tie: +a
    } else if (parity(lo) != parity(hi)) {
      expect_quantizes_to(f, mid, Rounding::kNearestEven, parity(lo) == 0 ? lo.value : hi.value);
    } else {
      // Only a flushed format's {0, min normal} pair has two even codes: 0 wins the tie.
      ASSERT_TRUE(lo.value == 0.0f || hi.value == 0.0f) << f.to_string();
      expect_quantizes_to(f, mid, Rounding::kNearestEven, 0.0f);
    }
    expect_quantizes_to(f, next_down(mid), Rounding::kNearestEven, lo.value);
    expect_quantizes_to(f, next_up(mid), Rounding::kNearestEven, hi.value);
    expect_quantizes_to(f, next_down(mid), Rounding::kNearestAway, lo.value);
    expect_quantizes_to(f, next_up(mid), Rounding::kNearestAway, hi.value);
    if (std::fabs(lo.value) != std::fabs(hi.value)) {
      expect_quantizes_to(f, mid, Rounding::kNearestAway, large.value);
      expect_quantizes_to(f, mid, Rounding::kTowardZero, small.value);
    }
    expect_quantizes_to(f, mid, Rounding::kTowardPositive, hi.value);
    expect_quantizes_to(f, mid, Rounding::kTowardNegative, lo.value);
    expect_quantizes_to(f, next_up(lo.value), Rounding::kTowardPositive, hi.value);
    expect_quantizes_to(f, next_down(hi.value), Rounding::kTowardNegative, lo.value);
    // Stochastic at the midpoint: random 0 always moves away from the truncated candidate,
    // random 2^32-1 never does (P(up) = 1/2 in between).
    const Neighbour truncated = lookup ? lo : small, other = lookup ? hi : large;
    expect_quantizes_to(f, mid, Rounding::kStochastic, other.value, 0);
    expect_quantizes_to(f, mid, Rounding::kStochastic, truncated.value, 0xFFFFFFFFu);
    expect_quantizes_to(f, mid, Rounding::kStochastic, other.value, 0x7FFFFFFFu);
    expect_quantizes_to(f, mid, Rounding::kStochastic, truncated.value, 0x80000000u);
    expect_quantizes_to(f, next_up(lo.value), Rounding::kStochasticEqual, lookup ? hi.value : other.value, 0x80000000u);
    expect_quantizes_to(f, next_up(lo.value), Rounding::kStochasticEqual, lookup ? lo.value : truncated.value,
                        0x7FFFFFFFu);
  }
}

TEST(FormatRounding, EveryBoundaryOfEverySmallPreset) {
  for (const Format& f : preset_formats()) {
    if (f.bits() > 8) continue;
    SCOPED_TRACE(f.to_string());
    check_every_boundary(f);
    expect_codes_round_trip(f);
  }
  check_every_boundary(Format::int_full(5));
  check_every_boundary(Format::uint(3).with_zero_point(3));
  check_every_boundary(Format::minifloat(3, 2));
  check_every_boundary(Format::parse("e4m3:flush"));
  check_every_boundary(Format::parse("e4m0:finite"));  // no mantissa, with zero and subnormal-free
  check_every_boundary(Format::parse("ue5m0"));
}

TEST(FormatRounding, Fp16AndBf16AgreeWithHalfConversions) {
  const Format fp16 = Format::fp16(), bf16 = Format::bf16();
  auto check = [&](uint32_t bits) {
    const float x = std::bit_cast<float>(bits);
    const uint16_t h = f32_to_f16_bits(x), b = f32_to_bf16_bits(x);
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(fp16.decode(fp16.encode(x))));
      return;
    }
    ASSERT_EQ(fp16.encode(x), h) << std::hexfloat << x;
    ASSERT_EQ(bf16.encode(x), b) << std::hexfloat << x;
  };
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFu; bits += 65537) check(static_cast<uint32_t>(bits));
  // Around every f16 rounding boundary of the binades near the subnormal range and the top.
  for (uint32_t h = 0; h < 0x7C00; h += 7) {
    const double lo = f16_bits_to_f32(static_cast<uint16_t>(h)), hi = f16_bits_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((lo + hi) / 2);
    for (float x : {mid, next_down(mid), next_up(mid), -mid}) check(bits_of(x));
  }
  for (float x : {65504.0f, 65519.0f, 65520.0f, 0x1p-24f, 0x1p-25f, next_up(0x1p-25f), 3.0e38f}) check(bits_of(x));
  // tf32 = f32 with 13 mantissa bits dropped by round-to-nearest-even.
  const Format tf32 = Format::tf32();
  for (uint64_t bits = 0; bits < 0x7F800000u; bits += 40961) {
    const uint32_t b = static_cast<uint32_t>(bits);
    const uint32_t rounded = (b + 0xFFFu + ((b >> 13) & 1u)) & ~0x1FFFu;
    ASSERT_EQ(bits_of(tf32.quantize(std::bit_cast<float>(b))), rounded) << b;
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-worked rounding, saturation and special values.

TEST(FormatRounding, NearestEvenTiesOnE2m1) {
  const Format f = Format::e2m1();
  EXPECT_EQ(f.quantize(0.25f), 0.0f);   // 0 (even) vs 0.5 (code 1)
  EXPECT_EQ(f.quantize(0.75f), 1.0f);   // 0.5 (code 1) vs 1 (code 2)
  EXPECT_EQ(f.quantize(1.25f), 1.0f);   // 1 (code 2) vs 1.5
  EXPECT_EQ(f.quantize(1.75f), 2.0f);
  EXPECT_EQ(f.quantize(2.5f), 2.0f);
  EXPECT_EQ(f.quantize(3.5f), 4.0f);
  EXPECT_EQ(f.quantize(5.0f), 4.0f);
  EXPECT_EQ(f.quantize(-5.0f), -4.0f);
  EXPECT_EQ(f.quantize(2.5f, Rounding::kNearestAway), 3.0f);
  EXPECT_EQ(f.quantize(-2.5f, Rounding::kNearestAway), -3.0f);
  EXPECT_EQ(f.quantize(5.9f, Rounding::kTowardZero), 4.0f);
  EXPECT_EQ(f.quantize(-5.9f, Rounding::kTowardZero), -4.0f);
  EXPECT_EQ(f.quantize(4.1f, Rounding::kTowardPositive), 6.0f);
  EXPECT_EQ(f.quantize(-4.1f, Rounding::kTowardPositive), -4.0f);
  EXPECT_EQ(f.quantize(-4.1f, Rounding::kTowardNegative), -6.0f);
  EXPECT_EQ(f.quantize(100.0f), 6.0f);  // saturates
  EXPECT_EQ(f.quantize(-INFINITY), -6.0f);
  EXPECT_EQ(f.quantize(100.0f, Rounding::kTowardPositive), 6.0f);
  EXPECT_EQ(f.encode(NAN), 0u);  // no NaN: NaN encodes as +0
  EXPECT_EQ(bits_of(f.quantize(-0.1f)), 0x80000000u);  // -0 keeps its sign
}

TEST(FormatRounding, SubnormalBoundariesOfE4m3) {
  const Format f = Format::e4m3();
  EXPECT_EQ(f.quantize(0x1p-10f), 0.0f);                  // half the min subnormal: tie to 0
  EXPECT_EQ(f.quantize(next_up(0x1p-10f)), 0x1p-9f);
  EXPECT_EQ(f.quantize(0x1.8p-9f), 0x1p-8f);              // 1.5 steps: tie to code 2
  EXPECT_EQ(f.quantize(0x1.4p-8f), 0x1p-8f);              // 2.5 steps: tie to code 2
  EXPECT_EQ(f.quantize(7.5f * 0x1p-9f), 0x1p-6f);         // largest subnormal vs min normal: even code 8
  EXPECT_EQ(f.quantize(next_down(7.5f * 0x1p-9f)), 7 * 0x1p-9f);
  EXPECT_EQ(f.quantize(1e-30f), 0.0f);
  EXPECT_EQ(f.quantize(1e-30f, Rounding::kTowardPositive), 0x1p-9f);
  EXPECT_EQ(f.quantize(-1e-30f, Rounding::kTowardNegative), -0x1p-9f);
  EXPECT_EQ(f.quantize(0x1p-149f, Rounding::kTowardPositive), 0x1p-9f);
  EXPECT_EQ(f.encode(0x1p-149f, Rounding::kStochastic, 0), 0u);  // P(up) = 2^-140 floors to 0
}

TEST(FormatRounding, SaturationAndNanPolicyOfE4m3) {
  const Format sat = Format::e4m3();
  const Format nonsat = sat.with_overflow(Overflow::kSpecial);
  EXPECT_EQ(sat.quantize(464.0f), 448.0f);   // tie between 448 (even 0x7E) and 480 (the NaN code)
  EXPECT_EQ(nonsat.quantize(464.0f), 448.0f);
  EXPECT_EQ(sat.quantize(465.0f), 448.0f);
  EXPECT_TRUE(std::isnan(nonsat.quantize(465.0f)));
  EXPECT_EQ(sat.quantize(1e30f), 448.0f);
  EXPECT_EQ(sat.quantize(INFINITY), 448.0f);
  EXPECT_EQ(sat.quantize(-INFINITY), -448.0f);
  EXPECT_TRUE(std::isnan(nonsat.quantize(INFINITY)));
  EXPECT_EQ(nonsat.quantize(1e30f, Rounding::kTowardZero), 448.0f);
  EXPECT_EQ(nonsat.encode(-1e30f, Rounding::kTowardPositive), 0xFEu);
  EXPECT_EQ(sat.encode(NAN), 0x7Fu);
  EXPECT_EQ(sat.encode(-NAN), 0xFFu);
}

TEST(FormatRounding, OverflowOfE5m2FollowsIeee) {
  const Format f = Format::e5m2();  // IEEE: max 57344 = 1.75 * 2^15, next step would be 2^16
  EXPECT_EQ(f.quantize(61439.0f), 57344.0f);
  EXPECT_EQ(f.quantize(61440.0f), INFINITY);  // the tie rounds to even: the "2^16" code, i.e. Inf
  EXPECT_EQ(f.quantize(-61440.0f), -INFINITY);
  EXPECT_EQ(f.quantize(1e9f, Rounding::kTowardZero), 57344.0f);
  EXPECT_EQ(f.quantize(1e9f, Rounding::kTowardNegative), 57344.0f);
  EXPECT_EQ(f.quantize(1e9f, Rounding::kTowardPositive), INFINITY);
  EXPECT_EQ(f.quantize(-1e9f, Rounding::kTowardPositive), -57344.0f);
  EXPECT_EQ(f.quantize(-1e9f, Rounding::kTowardNegative), -INFINITY);
  EXPECT_EQ(f.quantize(INFINITY, Rounding::kTowardZero), INFINITY);  // Inf is exact
  EXPECT_EQ(f.encode(NAN), 0x7Eu);
  const Format sat = f.with_overflow(Overflow::kSaturate);
  EXPECT_EQ(sat.quantize(1e9f), 57344.0f);
  EXPECT_EQ(sat.quantize(INFINITY), 57344.0f);  // OCP SAT mode clamps Inf too
  EXPECT_EQ(sat.encode(NAN), 0x7Eu);
}

TEST(FormatRounding, IntegerRoundingAndClamping) {
  const Format int4 = Format::int_symmetric(4);
  EXPECT_EQ(int4.quantize(2.5f), 2.0f);
  EXPECT_EQ(int4.quantize(3.5f), 4.0f);
  EXPECT_EQ(int4.quantize(-2.5f), -2.0f);
  EXPECT_EQ(int4.quantize(-2.5f, Rounding::kNearestAway), -3.0f);
  EXPECT_EQ(int4.quantize(6.6f), 7.0f);
  EXPECT_EQ(int4.quantize(7.4f), 7.0f);
  EXPECT_EQ(int4.quantize(-7.6f), -7.0f);
  EXPECT_EQ(int4.quantize(-1000.0f, Rounding::kTowardNegative), -7.0f);
  EXPECT_EQ(int4.quantize(2.1f, Rounding::kTowardPositive), 3.0f);
  EXPECT_EQ(int4.quantize(-2.1f, Rounding::kTowardPositive), -2.0f);
  EXPECT_EQ(bits_of(int4.quantize(-0.2f)), 0u);  // integers have one zero: +0
  EXPECT_EQ(int4.encode(NAN), 0u);
  const Format fixed = Format::int_symmetric(8, 6);
  EXPECT_EQ(fixed.quantize(1.0f / 128), 0.0f);  // tie at half a step to even 0
  EXPECT_EQ(fixed.quantize(3.0f / 128), 2.0f / 64);
  EXPECT_EQ(fixed.quantize(5.0f), 127.0f / 64);
  // Unsigned with a zero point rounds the integer value (round(x) then + zero point), so ties
  // go to the even value, not the even code.
  const Format z = Format::uint(4).with_zero_point(3);
  EXPECT_EQ(z.quantize(0.5f), 0.0f);
  EXPECT_EQ(z.encode(0.5f), 3u);
  EXPECT_EQ(z.quantize(1.5f), 2.0f);
  EXPECT_EQ(z.quantize(-2.5f), -2.0f);
  EXPECT_EQ(z.quantize(-7.0f), -3.0f);
  EXPECT_EQ(z.quantize(20.0f), 12.0f);
}

TEST(FormatRounding, LookupRounding) {
  const Format f = Format::codebook({-1.0f, -0.25f, 0.0f, 0.5f, 2.0f});
  EXPECT_EQ(f.quantize(1.25f), 2.0f);       // tie between index 3 and 4: even index 4
  EXPECT_EQ(f.quantize(0.25f), 0.0f);       // tie between index 2 and 3: even index 2
  EXPECT_EQ(f.quantize(0.25f, Rounding::kNearestAway), 0.5f);
  EXPECT_EQ(f.quantize(-0.625f), -1.0f);    // tie between index 0 and 1: even index 0
  EXPECT_EQ(f.quantize(0.3f, Rounding::kTowardZero), 0.0f);
  EXPECT_EQ(f.quantize(-0.3f, Rounding::kTowardZero), -0.25f);
  EXPECT_EQ(f.quantize(0.01f, Rounding::kTowardPositive), 0.5f);
  EXPECT_EQ(f.quantize(1e9f), 2.0f);
  EXPECT_EQ(f.quantize(-INFINITY), -1.0f);
  EXPECT_EQ(f.encode(NAN), 2u);  // NaN -> the code of 0
  const Format binary = Format::binary();
  EXPECT_EQ(binary.quantize(0.3f), 1.0f);
  EXPECT_EQ(binary.quantize(-0.3f), -1.0f);
  EXPECT_EQ(binary.quantize(0.0f, Rounding::kNearestAway), 1.0f);  // equal magnitudes: the positive one
  EXPECT_THROW(Format::codebook({1.0f, 0.5f}), Error);
  EXPECT_THROW(Format::codebook({1.0f}), Error);
  EXPECT_THROW(Format::codebook({0.0f, INFINITY}), Error);
}

// ---------------------------------------------------------------------------------------------
// Names.

TEST(FormatNames, ParseAndPrintRoundTrip) {
  std::vector<Format> formats = preset_formats();
  for (const char* name : {"e3m4", "ue5m2", "e4m3:ieee", "e5m2:sat", "e4m3:nosat", "e6m9:bias=20:flush", "e3m2:fn",
                           "e8m0:sub", "int4:full", "int6:frac=3", "int8:full:frac=6", "uint4:zero=8", "log5",
                           "log3:sqrt2", "codebook:-1,-0.5,0,0.5,1", "e2m0:finite", "e1m2:finite", "e4m3:nozero"}) {
    SCOPED_TRACE(name);
    formats.push_back(Format::parse(name));
  }
  for (const Format& f : formats) {
    const std::string name = f.to_string();
    EXPECT_EQ(Format::parse(name), f) << name;
    EXPECT_FALSE(f.describe().empty());
  }
  EXPECT_EQ(Format::parse("fp8_e4m3"), Format::e4m3());
  EXPECT_EQ(Format::parse("E4M3FN"), Format::e4m3());
  EXPECT_EQ(Format::parse("float16"), Format::fp16());
  EXPECT_EQ(Format::parse("fp4"), Format::e2m1());
  EXPECT_EQ(Format::parse("e8m0"), Format::ue8m0());
  EXPECT_EQ(Format::parse("int2"), Format::ternary());
  EXPECT_EQ(Format::parse("e5m10"), Format::fp16());
  EXPECT_EQ(Format::parse("e4m3:ieee").max_value(), 240.0);
  EXPECT_EQ(Format::parse("e4m3:ieee").to_string(), "e4m3:ieee");
  EXPECT_EQ(Format::parse("e5m2:sat").to_string(), "e5m2:sat");
  EXPECT_EQ(Format::parse("e3m4").max_value(), 15.5);
}

TEST(FormatNames, BadNamesThrowOneLineErrors) {
  for (const char* name : {"", "e9m3", "e4m24", "fp7", "int0", "int17", "uint4:full", "int4:zero=1", "e4m3:bogus",
                           "e4m3:bias=x", "codebook:1,abc", "codebook:1", "log1", "nf4:sat", "e0m3", "e4m3:bias=200",
                           "e2m1:nosat", "uint4:zero=16", "e8m23:bias=100"}) {
    try {
      Format::parse(name);
      ADD_FAILURE() << "accepted \"" << name << "\"";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      EXPECT_FALSE(message.empty());
    }
  }
  EXPECT_THROW(Format::e4m3().decode(256), Error);
}

}  // namespace
}  // namespace lowbit
