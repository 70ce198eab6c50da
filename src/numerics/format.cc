// Format construction, validation and the scalar codec (the oracle of the numerics layer).
//
// The codec computes in double from the defining fields, independently of the bit tricks the
// vector kernels use: a float input has 24 significant bits and every grid quantum is a power
// of two, so r = |x| / q, floor(r) and r - floor(r) are exact in double.
#include "lowbit/numerics/format.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "lowbit/core/error.h"
#include "numerics/lookup_levels.h"
#include "numerics/rounding_decision.h"

namespace lowbit {

struct Format::Lookup {
  std::vector<float> levels;
  std::string name;  // empty: a user codebook named by its levels
};

namespace {

std::string hex_code(uint32_t code, int bits) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%0*x", (bits + 3) / 4, code);
  return text;
}

std::string number(double value) {
  char text[40];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

Overflow default_overflow(Specials specials) {
  return specials == Specials::kIeee ? Overflow::kSpecial : Overflow::kSaturate;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction

Format Format::minifloat(const MinifloatSpec& spec) {
  const std::string where = "format e" + std::to_string(spec.exponent_bits) + "m" + std::to_string(spec.mantissa_bits);
  require(spec.exponent_bits >= 1 && spec.exponent_bits <= 8, where, "exponent bits must be 1..8");
  require(spec.mantissa_bits >= 0 && spec.mantissa_bits <= 23, where, "mantissa bits must be 0..23");
  require(!(spec.specials == Specials::kIeee && (spec.exponent_bits < 2 || spec.mantissa_bits < 1)), where,
          "IEEE Inf/NaN need at least 2 exponent bits and 1 mantissa bit (use fn or finite)");
  Format f;
  f.kind_ = Kind::kFloat;
  f.exponent_bits_ = spec.exponent_bits;
  f.mantissa_bits_ = spec.mantissa_bits;
  f.bias_ = spec.bias.value_or((1 << (spec.exponent_bits - 1)) - 1);
  f.sign_ = spec.sign;
  f.specials_ = spec.specials;
  f.subnormals_ = spec.subnormals;
  f.overflow_ = spec.overflow.value_or(default_overflow(spec.specials));
  require(!(f.specials_ == Specials::kNone && f.overflow_ == Overflow::kSpecial), where,
          "a format without Inf and NaN can only saturate");
  f.bits_ = (f.sign_ ? 1 : 0) + f.exponent_bits_ + f.mantissa_bits_;
  f.finish();
  return f;
}

namespace {
Format::MinifloatSpec make_spec(int e, int m, std::optional<int> bias = std::nullopt, bool sign = true,
                                Specials specials = Specials::kIeee, Subnormals subnormals = Subnormals::kGradual) {
  Format::MinifloatSpec spec;
  spec.exponent_bits = e;
  spec.mantissa_bits = m;
  spec.bias = bias;
  spec.sign = sign;
  spec.specials = specials;
  spec.subnormals = subnormals;
  return spec;
}
}  // namespace

Format Format::minifloat(int exponent_bits, int mantissa_bits) { return minifloat(make_spec(exponent_bits, mantissa_bits)); }
Format Format::fp32() { return minifloat(8, 23); }
Format Format::tf32() { return minifloat(8, 10); }
Format Format::bf16() { return minifloat(8, 7); }
Format Format::fp16() { return minifloat(5, 10); }
Format Format::e4m3() { return minifloat(make_spec(4, 3, 7, true, Specials::kFiniteNan)); }
Format Format::e5m2() { return minifloat(make_spec(5, 2, 15, true, Specials::kIeee)); }
Format Format::e3m2() { return minifloat(make_spec(3, 2, 3, true, Specials::kNone)); }
Format Format::e2m3() { return minifloat(make_spec(2, 3, 1, true, Specials::kNone)); }
Format Format::e2m1() { return minifloat(make_spec(2, 1, 1, true, Specials::kNone)); }
Format Format::ue8m0() { return minifloat(make_spec(8, 0, 127, false, Specials::kFiniteNan, Subnormals::kNone)); }
Format Format::ue4m3() { return minifloat(make_spec(4, 3, 7, false, Specials::kFiniteNan)); }

Format Format::int_symmetric(int bits, int fraction_bits) {
  require(bits >= 2 && bits <= 16, "format int" + std::to_string(bits), "symmetric integers need 2..16 bits");
  Format f = int_full(bits, fraction_bits);
  f.int_min_ = -f.int_max_;
  f.finish();
  return f;
}

Format Format::int_full(int bits, int fraction_bits) {
  require(bits >= 1 && bits <= 16, "format int" + std::to_string(bits), "integers need 1..16 bits");
  require(fraction_bits >= 0 && fraction_bits <= 32, "format int" + std::to_string(bits),
          "fraction bits must be 0..32, found " + std::to_string(fraction_bits));
  Format f;
  f.kind_ = Kind::kInt;
  f.bits_ = bits;
  f.int_min_ = -(int32_t{1} << (bits - 1));
  f.int_max_ = (int32_t{1} << (bits - 1)) - 1;
  f.fraction_bits_ = fraction_bits;
  f.twos_complement_ = true;
  f.finish();
  return f;
}

Format Format::uint(int bits) {
  require(bits >= 1 && bits <= 16, "format uint" + std::to_string(bits), "integers need 1..16 bits");
  Format f;
  f.kind_ = Kind::kInt;
  f.bits_ = bits;
  f.int_min_ = 0;
  f.int_max_ = (int32_t{1} << bits) - 1;
  f.twos_complement_ = false;
  f.finish();
  return f;
}

Format Format::ternary() { return int_symmetric(2); }

Format Format::binary() { return codebook({-1.0f, 1.0f}, "binary"); }

Format Format::nf4() {
  const auto levels = nf4_levels();
  return codebook({levels.begin(), levels.end()}, "nf4");
}

Format Format::nf3() {
  const auto levels = nf3_levels();
  return codebook({levels.begin(), levels.end()}, "nf3");
}

Format Format::log2_levels(int bits) {
  require(bits >= 2 && bits <= 8, "format log" + std::to_string(bits), "logarithmic formats need 2..8 bits");
  return codebook(logarithmic_levels(bits, false), "log" + std::to_string(bits));
}

Format Format::log_sqrt2_levels(int bits) {
  require(bits >= 2 && bits <= 8, "format log" + std::to_string(bits), "logarithmic formats need 2..8 bits");
  return codebook(logarithmic_levels(bits, true), "log" + std::to_string(bits) + ":sqrt2");
}

Format Format::codebook(std::vector<float> levels, std::string name) {
  const std::string where = "codebook" + (name.empty() ? "" : " " + name);
  require(levels.size() >= 2 && levels.size() <= 256, where,
          "needs 2..256 levels, found " + std::to_string(levels.size()));
  for (size_t i = 0; i < levels.size(); ++i) {
    require(std::isfinite(levels[i]), where, "level " + std::to_string(i) + " is not finite");
    if (levels[i] == 0.0f) levels[i] = 0.0f;  // -0 and +0 are one level
    require(i == 0 || levels[i] > levels[i - 1], where,
            "levels must be strictly increasing (level " + std::to_string(i) + " = " + number(levels[i]) + ")");
  }
  Format f;
  f.kind_ = Kind::kLookup;
  f.bits_ = std::max(1, static_cast<int>(std::bit_width(levels.size() - 1)));
  f.lookup_ = std::make_shared<const Lookup>(Lookup{std::move(levels), std::move(name)});
  f.finish();
  return f;
}

void Format::finish() {
  switch (kind_) {
    case Kind::kFloat: {
      // Not to_string(): naming a float format constructs the presets, which call finish().
      const std::string where = "format e" + std::to_string(exponent_bits_) + "m" + std::to_string(mantissa_bits_) +
                                " bias " + std::to_string(bias_);
      const int m = mantissa_bits_;
      const uint32_t all_ones = (uint32_t{1} << (exponent_bits_ + m)) - 1;
      const uint32_t exponent_mask = (uint32_t{1} << exponent_bits_) - 1;
      if (specials_ == Specials::kIeee)
        max_code_ = ((exponent_mask - 1) << m) | ((uint32_t{1} << m) - 1);
      else if (specials_ == Specials::kFiniteNan)
        max_code_ = all_ones - 1;
      else
        max_code_ = all_ones;
      const int emin = subnormals_ == Subnormals::kNone ? -bias_ : 1 - bias_;
      require(emin - m >= -149, where,
              "its smallest step 2^" + std::to_string(emin - m) + " is below binary32's 2^-149");
      min_normal_ = std::ldexp(1.0, emin);
      min_positive_ = subnormals_ == Subnormals::kGradual ? std::ldexp(1.0, emin - m) : min_normal_;
      max_ = decode_float(max_code_);
      require(std::isfinite(max_) && max_ <= FLT_MAX && max_ > 0, where,
              "its largest value is outside binary32's finite range");
      lowest_ = sign_ ? -max_ : (subnormals_ == Subnormals::kNone ? min_normal_ : 0.0);
      break;
    }
    case Kind::kInt: {
      const double step = std::ldexp(1.0, -fraction_bits_);
      max_ = int_max_ * step;
      lowest_ = int_min_ * step;
      min_normal_ = min_positive_ = step;
      break;
    }
    case Kind::kLookup: {
      const auto& levels = lookup_->levels;
      max_ = levels.back();
      lowest_ = levels.front();
      const auto positive = std::upper_bound(levels.begin(), levels.end(), 0.0f);
      min_normal_ = min_positive_ = positive == levels.end() ? 0.0 : *positive;
      break;
    }
  }
}

Format Format::with_overflow(Overflow overflow) const {
  require((kind_ == Kind::kFloat && specials_ != Specials::kNone) || overflow == Overflow::kSaturate,
          "format " + to_string(), "has no Inf or NaN to overflow to; it always saturates");
  Format f = *this;
  f.overflow_ = overflow;
  return f;
}

Format Format::with_zero_point(int32_t zero_point) const {
  // Called per block by asymmetric quantization: no strings unless something is wrong.
  if (!(kind_ == Kind::kInt && !twos_complement_))
    throw Error("format " + to_string(), "only unsigned integer formats take a zero point");
  const int32_t top = (int32_t{1} << bits_) - 1;
  if (zero_point < 0 || zero_point > top)
    throw Error("format " + to_string(),
                "zero point must be 0.." + std::to_string(top) + ", found " + std::to_string(zero_point));
  Format f = *this;
  f.zero_point_ = zero_point;
  f.int_min_ = -zero_point;
  f.int_max_ = top - zero_point;
  f.finish();
  return f;
}

bool Format::is_signed() const {
  switch (kind_) {
    case Kind::kFloat: return sign_;
    case Kind::kInt: return int_min_ < 0;
    case Kind::kLookup: return lookup_->levels.front() < 0;
  }
  return false;
}

std::span<const float> Format::levels() const {
  if (kind_ != Kind::kLookup) return {};
  return lookup_->levels;
}

bool operator==(const Format& a, const Format& b) {
  if (a.kind_ != b.kind_ || a.bits_ != b.bits_) return false;
  switch (a.kind_) {
    case Format::Kind::kFloat:
      return a.exponent_bits_ == b.exponent_bits_ && a.mantissa_bits_ == b.mantissa_bits_ && a.bias_ == b.bias_ &&
             a.sign_ == b.sign_ && a.specials_ == b.specials_ && a.subnormals_ == b.subnormals_ &&
             a.overflow_ == b.overflow_;
    case Format::Kind::kInt:
      return a.int_min_ == b.int_min_ && a.int_max_ == b.int_max_ && a.zero_point_ == b.zero_point_ &&
             a.fraction_bits_ == b.fraction_bits_ && a.twos_complement_ == b.twos_complement_;
    case Format::Kind::kLookup:
      return a.lookup_->levels == b.lookup_->levels && a.lookup_->name == b.lookup_->name;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Decoding

float Format::decode(uint32_t code) const {
  if (code >= code_count())
    throw Error("format " + to_string(), "code " + std::to_string(code) + " is out of range for " +
                                             std::to_string(bits_) + " bits");
  switch (kind_) {
    case Kind::kFloat:
      return static_cast<float>(decode_float(code));
    case Kind::kInt: {
      int32_t value;
      if (twos_complement_) {
        value = static_cast<int32_t>(code);
        if (code >> (bits_ - 1)) value -= static_cast<int32_t>(uint32_t{1} << bits_);
      } else {
        value = static_cast<int32_t>(code) - zero_point_;
      }
      return static_cast<float>(std::ldexp(static_cast<double>(value), -fraction_bits_));
    }
    case Kind::kLookup: {
      const auto& levels = lookup_->levels;
      return code < levels.size() ? levels[code] : std::numeric_limits<float>::quiet_NaN();
    }
  }
  return 0.0f;
}

float Format::decode_float(uint32_t code) const {
  const int m = mantissa_bits_;
  const uint32_t magnitude_bits = static_cast<uint32_t>(exponent_bits_ + m);
  const bool negative = sign_ && ((code >> magnitude_bits) & 1u);
  const uint32_t magnitude = code & ((uint32_t{1} << magnitude_bits) - 1);
  const uint32_t field = magnitude >> m;
  const uint32_t mantissa = magnitude & ((uint32_t{1} << m) - 1);
  const uint32_t exponent_mask = (uint32_t{1} << exponent_bits_) - 1;
  double value;
  if (specials_ == Specials::kIeee && field == exponent_mask) {
    value = mantissa == 0 ? HUGE_VAL : std::numeric_limits<double>::quiet_NaN();
  } else if (specials_ == Specials::kFiniteNan && magnitude == (uint32_t{1} << magnitude_bits) - 1) {
    value = std::numeric_limits<double>::quiet_NaN();
  } else if (field == 0 && subnormals_ == Subnormals::kGradual) {
    value = std::ldexp(static_cast<double>(mantissa), 1 - bias_ - m);
  } else if (field == 0 && subnormals_ == Subnormals::kFlush) {
    value = 0.0;
  } else {
    value = std::ldexp(static_cast<double>(mantissa | (uint32_t{1} << m)), static_cast<int>(field) - bias_ - m);
  }
  return static_cast<float>(negative ? -value : value);
}

// ---------------------------------------------------------------------------------------------
// Encoding

uint32_t Format::encode(float x, Rounding mode, uint32_t random) const {
  switch (kind_) {
    case Kind::kFloat: return encode_float(x, mode, random);
    case Kind::kInt: return encode_int(x, mode, random);
    case Kind::kLookup: return encode_lookup(x, mode, random);
  }
  return 0;
}

uint32_t Format::zero_code() const { return encode(0.0f); }

uint32_t Format::encode_float(float x, Rounding mode, uint32_t random) const {
  const int m = mantissa_bits_;
  const uint32_t magnitude_bits = static_cast<uint32_t>(exponent_bits_ + m);
  const uint32_t sign_code = sign_ ? uint32_t{1} << magnitude_bits : 0;
  const uint32_t exponent_mask = (uint32_t{1} << exponent_bits_) - 1;
  const bool negative = std::signbit(x);
  const uint32_t sign = negative ? sign_code : 0;
  const uint32_t nan_code = specials_ == Specials::kIeee ? (exponent_mask << m) | (uint32_t{1} << (m - 1))
                                                          : (uint32_t{1} << magnitude_bits) - 1;
  const uint32_t special_code = specials_ == Specials::kIeee ? exponent_mask << m : nan_code;

  if (std::isnan(x)) return has_nan() ? sign | nan_code : 0;
  if (!sign_ && negative) return 0;  // unsigned formats: negatives (and -0) clamp to the lowest code
  double a = std::fabs(static_cast<double>(x));
  if (std::isinf(a)) return sign | (overflow_ == Overflow::kSaturate ? max_code_ : special_code);
  if (overflow_ == Overflow::kSaturate) a = std::min(a, max_);
  if (subnormals_ == Subnormals::kNone) a = std::max(a, min_normal_);  // no zero: clamp up to the smallest value

  // The grid around a: quantum q, and the parity of the code of the truncated candidate.
  double q;
  int exponent = 0;
  const bool normal = a >= min_normal_;
  if (normal) {
    exponent = std::ilogb(a);
    q = std::ldexp(1.0, exponent - m);
  } else {
    q = min_positive_;  // gradual: one subnormal step; flush: the grid is {0, min_normal}
  }
  const double r = a / q;
  const double t = std::floor(r);
  const double f = r - t;
  // With no mantissa bits both neighbours of a tie between powers of two have significand 1,
  // so IEEE's even rule does not decide; the tie goes to the larger magnitude (as ml_dtypes'
  // float8_e8m0fnu does). Elsewhere the even code wins.
  const bool odd = (normal && m == 0) || std::fmod(t, 2.0) != 0.0;
  const bool up = numerics_detail::round_magnitude_up(mode, f, odd, negative, random);
  const double v = (t + (up ? 1.0 : 0.0)) * q;

  if (v > max_) {
    // Only reachable without saturation. IEEE 754 7.4: directed roundings that point back
    // toward zero deliver the largest finite value instead of infinity.
    const bool to_special = !(mode == Rounding::kTowardZero || (mode == Rounding::kTowardPositive && negative) ||
                              (mode == Rounding::kTowardNegative && !negative));
    return sign | (to_special ? special_code : max_code_);
  }
  if (v == 0.0) return sign;
  if (v < min_normal_) return sign | static_cast<uint32_t>(v / min_positive_);  // gradual subnormal
  const int e = std::ilogb(v);
  const uint32_t field = static_cast<uint32_t>(e + bias_);
  const uint32_t mantissa = static_cast<uint32_t>((std::ldexp(v, -e) - 1.0) * std::ldexp(1.0, m));
  return sign | (field << m) | mantissa;
}

uint32_t Format::encode_int(float x, Rounding mode, uint32_t random) const {
  const uint32_t mask = static_cast<uint32_t>(code_count() - 1);
  const int32_t offset = twos_complement_ ? 0 : zero_point_;
  if (std::isnan(x)) return static_cast<uint32_t>(offset) & mask;
  const bool negative = std::signbit(x);
  const double limit = negative ? -static_cast<double>(int_min_) : static_cast<double>(int_max_);
  double a = std::ldexp(std::fabs(static_cast<double>(x)), fraction_bits_);
  a = std::min(a, limit);  // integers always saturate; Inf lands on the limit
  const double t = std::floor(a);
  const double f = a - t;
  const bool up = numerics_detail::round_magnitude_up(mode, f, std::fmod(t, 2.0) != 0.0, negative, random);
  const int32_t v = static_cast<int32_t>(t) + (up ? 1 : 0);
  return static_cast<uint32_t>((negative ? -v : v) + offset) & mask;
}

uint32_t Format::encode_lookup(float x, Rounding mode, uint32_t random) const {
  const auto& levels = lookup_->levels;
  const uint32_t n = static_cast<uint32_t>(levels.size());
  if (std::isnan(x)) {  // the code of 0 whatever the mode (as for the other formats without NaN)
    x = 0.0f;
    mode = Rounding::kNearestEven;
  }
  if (x <= levels.front()) return 0;
  if (x >= levels.back()) return n - 1;
  const uint32_t i = static_cast<uint32_t>(std::upper_bound(levels.begin(), levels.end(), x) - levels.begin()) - 1;
  if (x == levels[i]) return i;
  const double lo = levels[i], hi = levels[i + 1], value = x;
  // Which side of the midpoint x lies on, exactly: lo + hi = m + err (two-sum, exact in double),
  // and 2x - m is exact by Sterbenz whenever it is small enough to be compared with err.
  const double m = lo + hi;
  const double hi_part = m - lo;
  const double err = (lo - (m - hi_part)) + (hi - hi_part);
  const double d = 2.0 * value - m;
  auto nearest = [&](bool away) {
    if (d < err) return i;
    if (d > err) return i + 1;
    // A tie between levels of equal magnitude (x = 0 between -a and +a) goes to the positive
    // one in both nearest modes, so that binary formats map 0 (and NaN) to +a, like sign(0) = +1.
    if (std::fabs(hi) == std::fabs(lo)) return hi > 0 ? i + 1 : i;
    if (!away) return (i % 2 == 0) ? i : i + 1;
    return std::fabs(hi) > std::fabs(lo) ? i + 1 : i;
  };
  switch (mode) {
    case Rounding::kNearestEven: return nearest(false);
    case Rounding::kNearestAway: return nearest(true);
    // The neighbour of smaller magnitude: truncation when both have x's sign, and still monotone
    // (hence well defined for thresholds) when the interval straddles 0.
    case Rounding::kTowardZero:
      if (std::fabs(lo) == std::fabs(hi)) return hi > 0 ? i + 1 : i;
      return std::fabs(lo) < std::fabs(hi) ? i : i + 1;
    case Rounding::kTowardPositive: return i + 1;
    case Rounding::kTowardNegative: return i;
    case Rounding::kStochastic: {
      // In binary32 and at 24-bit resolution, so the SIMD kernel computes the same thing:
      // up iff (random >> 8) < floor(f * 2^24), f = (x - lo) / (hi - lo).
      const float f = (x - levels[i]) / (levels[i + 1] - levels[i]);
      return static_cast<float>(random >> 8) < std::floor(f * 0x1p24f) ? i + 1 : i;
    }
    case Rounding::kStochasticEqual: return random >= 0x80000000u ? i + 1 : i;
  }
  return i;
}

bool Format::is_canonical(uint32_t code) const {
  if (code >= code_count()) return false;
  const float value = decode(code);
  if (kind_ == Kind::kLookup && std::isnan(value)) return false;
  return encode(value) == code;
}

// ---------------------------------------------------------------------------------------------
// Names

namespace {

struct FloatPreset {
  const char* name;
  Format (*make)();
};
constexpr FloatPreset kFloatPresets[] = {
    {"fp32", Format::fp32}, {"tf32", Format::tf32}, {"bf16", Format::bf16}, {"fp16", Format::fp16},
    {"e4m3", Format::e4m3}, {"e5m2", Format::e5m2}, {"e3m2", Format::e3m2}, {"e2m3", Format::e2m3},
    {"e2m1", Format::e2m1}, {"ue8m0", Format::ue8m0}, {"ue4m3", Format::ue4m3},
};

struct Alias {
  const char* alias;
  const char* name;
};
constexpr Alias kAliases[] = {
    {"f32", "fp32"},         {"float32", "fp32"},     {"float", "fp32"},      {"bfloat16", "bf16"},
    {"f16", "fp16"},         {"float16", "fp16"},     {"half", "fp16"},       {"fp8_e4m3", "e4m3"},
    {"e4m3fn", "e4m3"},      {"fp8e4m3", "e4m3"},     {"float8_e4m3fn", "e4m3"}, {"fp8_e5m2", "e5m2"},
    {"fp8e5m2", "e5m2"},     {"float8_e5m2", "e5m2"}, {"fp6_e3m2", "e3m2"},   {"fp6_e2m3", "e2m3"},
    {"fp4", "e2m1"},         {"fp4_e2m1", "e2m1"},    {"e8m0", "ue8m0"},      {"fp8_e8m0", "ue8m0"},
};

// The spec a float format is named relative to: its preset if (e, m, sign) has one, else the
// IEEE-like default "eXmY" / "ueXmY".
std::pair<std::string, Format::MinifloatSpec> float_base(int e, int m, bool sign) {
  for (const auto& preset : kFloatPresets) {
    const Format f = preset.make();
    if (f.exponent_bits() == e && f.mantissa_bits() == m && f.is_signed() == sign) {
      Format::MinifloatSpec spec = make_spec(e, m, f.bias(), sign, f.specials(), f.subnormals());
      spec.overflow = f.overflow();
      return {preset.name, spec};
    }
  }
  Format::MinifloatSpec spec = make_spec(e, m, (1 << (e - 1)) - 1, sign);
  spec.overflow = Overflow::kSpecial;
  if (m == 0) {  // IEEE specials need a mantissa bit; the default for m = 0 is finite + NaN
    spec.specials = Specials::kFiniteNan;
    spec.overflow = Overflow::kSaturate;
  }
  return {(sign ? "e" : "ue") + std::to_string(e) + "m" + std::to_string(m), spec};
}

std::string lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

// Parses a whole decimal integer, or nullopt.
std::optional<int> parse_int(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative || text[0] == '+') i = 1;
  if (i == text.size()) return std::nullopt;
  int value = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return negative ? -value : value;
}

// "e4m3" -> (4, 3); nullopt when the text is not exactly eXmY.
std::optional<std::pair<int, int>> parse_exmy(std::string_view text) {
  if (text.size() < 4 || text[0] != 'e') return std::nullopt;
  const size_t m_at = text.find('m');
  if (m_at == std::string_view::npos) return std::nullopt;
  const auto e = parse_int(text.substr(1, m_at - 1));
  const auto m = parse_int(text.substr(m_at + 1));
  if (!e || !m || text[1] == '-' || text[1] == '+' || text[m_at + 1] == '-' || text[m_at + 1] == '+')
    return std::nullopt;
  return std::make_pair(*e, *m);
}

[[noreturn]] void unknown_format(std::string_view name, const std::string& why) {
  throw Error("format \"" + std::string(name) + "\"",
              why + " (expected a preset such as e4m3, e5m2, e3m2, e2m3, e2m1, ue8m0, ue4m3, fp16, bf16, tf32, fp32, "
                    "int4, uint4, nf4, nf3, binary, ternary, log4, or eXmY[:bias=N][:ieee|fn|finite][:flush|nozero]"
                    "[:sat|nosat], intB[:full][:frac=F], uintB[:zero=Z], logB[:sqrt2], codebook:v0,v1,...; mxfp4, "
                    "nvfp4 and the other block formats are BlockFormat presets)");
}

Format parse_float(std::string_view full, const std::string& base_name, const std::vector<std::string>& modifiers) {
  bool sign = true;
  std::string core = base_name;
  for (const auto& alias : kAliases)
    if (core == alias.alias) core = alias.name;
  if (core.size() > 1 && core[0] == 'u' && core[1] == 'e') {
    sign = false;
    core = core.substr(1);
  }
  const auto exmy = [&]() -> std::optional<std::pair<int, int>> {
    for (const auto& preset : kFloatPresets)
      if (core == preset.name || "u" + core == preset.name) {
        const Format f = preset.make();
        if (std::string(preset.name) == "ue8m0" || std::string(preset.name) == "ue4m3") sign = false;
        return std::make_pair(f.exponent_bits(), f.mantissa_bits());
      }
    return parse_exmy(core);
  }();
  if (!exmy) unknown_format(full, "unknown format");
  if (exmy->first < 1 || exmy->first > 8 || exmy->second < 0 || exmy->second > 23)
    unknown_format(full, "exponent bits must be 1..8 and mantissa bits 0..23");
  auto [name, spec] = float_base(exmy->first, exmy->second, sign);
  std::optional<Specials> specials;
  std::optional<Overflow> overflow;
  for (const auto& modifier : modifiers) {
    if (modifier.rfind("bias=", 0) == 0) {
      const auto bias = parse_int(modifier.substr(5));
      if (!bias) unknown_format(full, "bias must be an integer");
      spec.bias = *bias;
    } else if (modifier == "ieee") {
      specials = Specials::kIeee;
    } else if (modifier == "fn") {
      specials = Specials::kFiniteNan;
    } else if (modifier == "finite") {
      specials = Specials::kNone;
    } else if (modifier == "flush" || modifier == "nosub") {
      spec.subnormals = Subnormals::kFlush;
    } else if (modifier == "nozero") {
      spec.subnormals = Subnormals::kNone;
    } else if (modifier == "sub") {
      spec.subnormals = Subnormals::kGradual;
    } else if (modifier == "sat") {
      overflow = Overflow::kSaturate;
    } else if (modifier == "nosat") {
      overflow = Overflow::kSpecial;
    } else {
      unknown_format(full, "unknown modifier \"" + modifier + "\"");
    }
  }
  if (specials) {
    spec.specials = *specials;
    spec.overflow = default_overflow(*specials);
  }
  if (overflow) spec.overflow = *overflow;
  return Format::minifloat(spec);
}

}  // namespace

Format Format::parse(std::string_view name) {
  const std::string text = lowered(name);
  if (text.empty()) unknown_format(name, "empty name");
  if (text.rfind("codebook:", 0) == 0) {
    std::vector<float> levels;
    for (const auto& item : split(std::string_view(text).substr(9), ',')) {
      char* end = nullptr;
      const float value = std::strtof(item.c_str(), &end);
      if (item.empty() || end != item.c_str() + item.size()) unknown_format(name, "codebook level \"" + item + "\" is not a number");
      levels.push_back(value);
    }
    return codebook(std::move(levels));
  }
  const auto parts = split(text, ':');
  std::string base = parts[0];
  for (const auto& alias : kAliases)
    if (base == alias.alias) base = alias.name;
  const std::vector<std::string> modifiers(parts.begin() + 1, parts.end());
  auto no_modifiers = [&] {
    if (!modifiers.empty()) unknown_format(name, "\"" + base + "\" takes no modifiers");
  };
  if (base == "nf4") return no_modifiers(), nf4();
  if (base == "nf3") return no_modifiers(), nf3();
  if (base == "binary") return no_modifiers(), binary();
  if (base == "ternary") return no_modifiers(), ternary();
  if (base.rfind("log", 0) == 0) {
    const auto bits = parse_int(std::string_view(base).substr(3));
    if (!bits) unknown_format(name, "expected logB with B the bit width");
    if (modifiers.empty()) return log2_levels(*bits);
    if (modifiers.size() == 1 && modifiers[0] == "sqrt2") return log_sqrt2_levels(*bits);
    unknown_format(name, "the only modifier of logB is sqrt2");
  }
  if (base.rfind("uint", 0) == 0 || (base.rfind("int", 0) == 0)) {
    const bool is_unsigned = base[0] == 'u';
    const auto bits = parse_int(std::string_view(base).substr(is_unsigned ? 4 : 3));
    if (!bits) unknown_format(name, "expected intB or uintB with B the bit width");
    bool full = false;
    int fraction = 0;
    std::optional<int> zero;
    for (const auto& modifier : modifiers) {
      if (!is_unsigned && modifier == "full") {
        full = true;
      } else if (!is_unsigned && modifier.rfind("frac=", 0) == 0) {
        const auto value = parse_int(modifier.substr(5));
        if (!value) unknown_format(name, "frac must be an integer");
        fraction = *value;
      } else if (is_unsigned && modifier.rfind("zero=", 0) == 0) {
        zero = parse_int(modifier.substr(5));
        if (!zero) unknown_format(name, "zero must be an integer");
      } else {
        unknown_format(name, "unknown modifier \"" + modifier + "\"");
      }
    }
    if (is_unsigned) return zero ? uint(*bits).with_zero_point(*zero) : uint(*bits);
    return full ? int_full(*bits, fraction) : int_symmetric(*bits, fraction);
  }
  return parse_float(name, base, modifiers);
}

std::string Format::to_string() const {
  switch (kind_) {
    case Kind::kFloat: {
      auto [name, base] = float_base(exponent_bits_, mantissa_bits_, sign_);
      if (bias_ != base.bias) name += ":bias=" + std::to_string(bias_);
      Overflow implied = base.overflow.value_or(default_overflow(base.specials));
      if (specials_ != base.specials) {
        name += specials_ == Specials::kIeee ? ":ieee" : specials_ == Specials::kFiniteNan ? ":fn" : ":finite";
        implied = default_overflow(specials_);
      }
      if (subnormals_ != base.subnormals)
        name += subnormals_ == Subnormals::kFlush ? ":flush" : subnormals_ == Subnormals::kNone ? ":nozero" : ":sub";
      if (overflow_ != implied) name += overflow_ == Overflow::kSaturate ? ":sat" : ":nosat";
      return name;
    }
    case Kind::kInt: {
      if (!twos_complement_)
        return "uint" + std::to_string(bits_) + (zero_point_ ? ":zero=" + std::to_string(zero_point_) : "");
      std::string name = "int" + std::to_string(bits_);
      const bool full = int_min_ != -int_max_;
      if (bits_ == 2 && !full && fraction_bits_ == 0) return "ternary";
      if (full) name += ":full";
      if (fraction_bits_) name += ":frac=" + std::to_string(fraction_bits_);
      return name;
    }
    case Kind::kLookup: {
      if (!lookup_->name.empty()) return lookup_->name;
      std::string name = "codebook:";
      for (size_t i = 0; i < lookup_->levels.size(); ++i) name += (i ? "," : "") + number(lookup_->levels[i]);
      return name;
    }
  }
  return "?";
}

std::string Format::describe() const {
  switch (kind_) {
    case Kind::kFloat: {
      std::string text = (sign_ ? "1 sign + " : "unsigned, ") + std::to_string(exponent_bits_) + " exponent (bias " +
                         std::to_string(bias_) + ") + " + std::to_string(mantissa_bits_) + " mantissa bits; ";
      text += subnormals_ == Subnormals::kGradual ? "subnormals"
              : subnormals_ == Subnormals::kFlush ? "no subnormals (flushed to 0)"
                                                  : "no zero (exponent field 0 is 2^-bias)";
      const uint32_t magnitude_bits = static_cast<uint32_t>(exponent_bits_ + mantissa_bits_);
      const uint32_t all_ones = (uint32_t{1} << magnitude_bits) - 1;
      if (specials_ == Specials::kIeee)
        text += "; Inf " + hex_code(all_ones ^ ((uint32_t{1} << mantissa_bits_) - 1), bits_) + ", NaN " +
                hex_code(all_ones, bits_) + " and others";
      else if (specials_ == Specials::kFiniteNan)
        text += "; no Inf; NaN " + hex_code(all_ones, bits_) +
                (sign_ ? "/" + hex_code(all_ones | (uint32_t{1} << magnitude_bits), bits_) : "");
      else
        text += "; no Inf or NaN";
      text += overflow_ == Overflow::kSaturate ? "; saturating" : "; overflows to Inf/NaN";
      return text;
    }
    case Kind::kInt: {
      std::string text = std::to_string(bits_) + "-bit " + (twos_complement_ ? "two's complement" : "unsigned") +
                         " integers " + std::to_string(int_min_) + ".." + std::to_string(int_max_);
      if (!twos_complement_ && zero_point_) text += " (code - " + std::to_string(zero_point_) + ")";
      if (fraction_bits_) text += " x 2^-" + std::to_string(fraction_bits_);
      return text;
    }
    case Kind::kLookup: {
      std::string text = std::to_string(lookup_->levels.size()) + " levels:";
      for (float level : lookup_->levels) text += " " + number(level);
      return text;
    }
  }
  return "";
}

std::vector<Format> preset_formats() {
  return {Format::fp32(),         Format::tf32(),          Format::bf16(),
          Format::fp16(),         Format::e5m2(),          Format::e4m3(),
          Format::e3m2(),         Format::e2m3(),          Format::e2m1(),
          Format::ue8m0(),        Format::ue4m3(),         Format::int_symmetric(16),
          Format::int_symmetric(8), Format::int_symmetric(8, 6), Format::int_symmetric(4),
          Format::int_symmetric(3), Format::ternary(),     Format::uint(8),
          Format::uint(4),        Format::binary(),        Format::nf4(),
          Format::nf3(),          Format::log2_levels(4),  Format::log_sqrt2_levels(4)};
}

}  // namespace lowbit
