// Format: one value type for every scalar number format lowbit speaks — minifloats ExMy,
// integers, and lookup formats (NF4/NF3, logarithmic levels, user codebooks). A format maps
// codes (the bit patterns, 0 .. 2^bits - 1) to values and back; block-scaled formats (MX,
// NVFP4, grouped INT) combine an element Format with a scale Format in block_format.h.
//
// Bit layouts are in docs/FORMATS.md. In short:
//   kFloat   [sign][exponent e bits][mantissa m bits], value (-1)^s 2^(E-bias) 1.M, E = field;
//            field 0 is IEEE subnormal (0.M 2^(1-bias)), flushed to zero, or — for E8M0 —
//            an ordinary binade (no zero). The top field holds Inf/NaN as `Specials` says.
//   kInt     b-bit integers times 2^-fraction_bits; two's complement codes (signed) or
//            code = value + zero_point (unsigned / asymmetric).
//   kLookup  code i = the i-th of n strictly increasing levels (n <= 256).
//
// Every value of every Format is exactly representable in binary32 (construction checks it),
// so encode/decode work on float without double rounding. The scalar encode() is the oracle:
// it computes in double arithmetic straight from the definition above (lookup stochastic
// rounding in binary32, see rounding.h), and the vectorized bulk paths in quantize.h are tested
// to agree with it bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/numerics/rounding.h"

namespace lowbit {

// How a minifloat uses its all-ones exponent field.
enum class Specials : uint8_t {
  kIeee,       // mantissa 0: ±Inf; otherwise NaN (fp32, fp16, bf16, e5m2)
  kFiniteNan,  // no Inf; only the all-ones magnitude is NaN (OCP e4m3 "FN", E8M0 0xFF)
  kNone,       // every code is a finite number (OCP FP6 e3m2/e2m3, FP4 e2m1)
};

// What the all-zeros exponent field means.
enum class Subnormals : uint8_t {
  kGradual,  // IEEE subnormals 0.M x 2^(1-bias)
  kFlush,    // only ±0: values below the smallest normal round between 0 and it
  kNone,     // an ordinary binade 1.M x 2^(-bias); the format has no zero (OCP E8M0)
};

// What happens to finite values beyond the largest finite value.
enum class Overflow : uint8_t {
  kSaturate,  // clamp to ±max (OCP "SAT"; always the case for formats without Inf/NaN, integers, lookups)
  kSpecial,   // IEEE: to ±Inf where the format has Inf, else NaN (OCP non-saturating mode).
              // Directed modes keep IEEE's exceptions: toward zero gives ±max, and so does
              // rounding toward the opposite infinity.
};

class Format {
 public:
  enum class Kind : uint8_t { kFloat, kInt, kLookup };

  struct MinifloatSpec {
    int exponent_bits = 0;          // 1..8
    int mantissa_bits = 0;          // 0..23
    std::optional<int> bias;        // default 2^(e-1) - 1
    bool sign = true;               // false: unsigned scale formats (ue8m0, ue4m3)
    Specials specials = Specials::kIeee;
    Subnormals subnormals = Subnormals::kGradual;
    std::optional<Overflow> overflow;  // default: kSpecial for kIeee, else kSaturate
  };

  // Presets (OCP "OFP8" v1.0 and OCP MX v1.0 element/scale types).
  static Format fp32();   // e8m23
  static Format tf32();   // e8m10 (19 bits)
  static Format bf16();   // e8m7
  static Format fp16();   // e5m10
  static Format e4m3();   // OCP FP8 E4M3 (FN): bias 7, max 448, no Inf, NaN 0x7F/0xFF, saturating
  static Format e5m2();   // OCP FP8 E5M2: bias 15, max 57344, IEEE Inf/NaN
  static Format e3m2();   // OCP FP6 E3M2: bias 3, max 28, no Inf/NaN
  static Format e2m3();   // OCP FP6 E2M3: bias 1, max 7.5, no Inf/NaN
  static Format e2m1();   // OCP FP4 E2M1: bias 1, values ±{0, .5, 1, 1.5, 2, 3, 4, 6}
  static Format ue8m0();  // OCP E8M0 scale: 2^(code-127), code 0..254; 0xFF NaN; no zero, no sign
  static Format ue4m3();  // unsigned E4M3 (NVFP4 block scale): 7 bits, max 448, 0x7F NaN

  // Any ExMy; throws Error when a value would not be exactly representable in binary32.
  static Format minifloat(const MinifloatSpec& spec);
  // IEEE-like ExMy: default bias, subnormals, Inf/NaN, overflow to Inf.
  static Format minifloat(int exponent_bits, int mantissa_bits);

  // Integers, value = integer * 2^-fraction_bits.
  // Symmetric ("restricted") range -(2^(b-1)-1) .. 2^(b-1)-1, b = 2..16, two's complement codes.
  static Format int_symmetric(int bits, int fraction_bits = 0);
  // Full two's complement range -2^(b-1) .. 2^(b-1)-1, b = 1..16.
  static Format int_full(int bits, int fraction_bits = 0);
  // Unsigned 0 .. 2^b-1, b = 1..16 (asymmetric quantization adds a zero point, below).
  static Format uint(int bits);
  // {-1, 0, +1} as 2-bit two's complement codes (= int_symmetric(2)); scaled by α in blocks.
  static Format ternary();
  // {-1, +1}: code 0 = -1, code 1 = +1 (a lookup format; scaled by α in blocks).
  static Format binary();

  // Lookup formats; levels sorted ascending, code = index.
  static Format nf4();  // QLoRA NormalFloat4 (Dettmers et al. 2023), the 16 bitsandbytes levels
  static Format nf3();  // the same construction with 8 levels (see lookup_levels.cc)
  // 0 and ±2^-k, k = 0 .. 2^(b-1)-2 (2^b - 1 levels), b = 2..8 (Miyashita et al. 2016).
  static Format log2_levels(int bits);
  // 0 and ±2^(-k/2), k = 0 .. 2^(b-1)-2: power-of-√2 levels, finer than power-of-two.
  static Format log_sqrt2_levels(int bits);
  // 2..256 finite, strictly increasing levels. `name` is used by to_string() when given.
  static Format codebook(std::vector<float> levels, std::string name = "");

  // Parses a name: presets ("e4m3", "fp16", "nf4", ...), "eXmY[:modifier...]" with modifiers
  // bias=N, ieee, fn, finite, nosub, flush, unsigned, sat, nosat; "intB[:full][:frac=F]",
  // "uintB[:zero=Z]", "binary", "ternary", "logB[:sqrt2]", "codebook:v0,v1,...".
  // Throws Error naming the spelling and what was expected.
  static Format parse(std::string_view name);
  // The canonical name; parse(to_string()) == *this.
  std::string to_string() const;
  // A one-line description of the layout, e.g. "1 sign, 4 exponent (bias 7), 3 mantissa bits; no Inf; NaN 0x7f".
  std::string describe() const;

  // The same format with another overflow policy (minifloats with Inf or NaN only).
  Format with_overflow(Overflow overflow) const;
  // Unsigned integer formats: values code - zero_point, zero_point in 0 .. 2^b - 1.
  Format with_zero_point(int32_t zero_point) const;

  Kind kind() const { return kind_; }
  int bits() const { return bits_; }
  uint64_t code_count() const { return uint64_t{1} << bits_; }
  bool is_signed() const;  // has negative values
  bool has_inf() const { return kind_ == Kind::kFloat && specials_ == Specials::kIeee; }
  bool has_nan() const { return kind_ == Kind::kFloat && specials_ != Specials::kNone; }
  bool saturates() const { return overflow_ == Overflow::kSaturate; }

  double max_value() const { return max_; }          // largest finite value
  double lowest_value() const { return lowest_; }    // most negative finite value (0 for unsigned)
  double min_normal() const { return min_normal_; }  // smallest positive normal (int: one step; lookup: smallest positive level)
  double min_positive() const { return min_positive_; }  // smallest positive value (the min subnormal where there are subnormals)

  // kFloat fields.
  int exponent_bits() const { return exponent_bits_; }
  int mantissa_bits() const { return mantissa_bits_; }
  int bias() const { return bias_; }
  Specials specials() const { return specials_; }
  Subnormals subnormals() const { return subnormals_; }
  Overflow overflow() const { return overflow_; }
  // kInt fields: integer range (in steps of 2^-fraction_bits).
  int32_t int_min() const { return int_min_; }
  int32_t int_max() const { return int_max_; }
  int fraction_bits() const { return fraction_bits_; }
  bool twos_complement() const { return twos_complement_; }
  int32_t zero_point() const { return zero_point_; }
  // kLookup levels (empty otherwise).
  std::span<const float> levels() const;

  // The value of a code. Codes that no value encodes to (NaN patterns besides the canonical one,
  // lookup codes past the last level -> NaN, the unused -2^(b-1) of symmetric integers, which
  // decodes to its two's complement value) still decode; see is_canonical(). Throws Error when
  // code >= code_count().
  float decode(uint32_t code) const;
  // The code of x under `mode`; `random` are the 32 bits a stochastic mode consumes (see rounding.h).
  // NaN encodes to the canonical NaN (sign kept) where the format has NaN, else to the code of 0.
  uint32_t encode(float x, Rounding mode = Rounding::kNearestEven, uint32_t random = 0) const;
  // decode(encode(x, ...)).
  float quantize(float x, Rounding mode = Rounding::kNearestEven, uint32_t random = 0) const {
    return decode(encode(x, mode, random));
  }
  // Whether encode(decode(code)) == code (NaN codes: whether it is the canonical NaN).
  bool is_canonical(uint32_t code) const;
  // The code of +0 (ue8m0: of its smallest value, 2^-127).
  uint32_t zero_code() const;

  friend bool operator==(const Format& a, const Format& b);

 private:
  struct Lookup;
  Format() = default;
  void finish();  // validates and derives max_/min_... from the defining fields
  uint32_t encode_float(float x, Rounding mode, uint32_t random) const;
  uint32_t encode_int(float x, Rounding mode, uint32_t random) const;
  uint32_t encode_lookup(float x, Rounding mode, uint32_t random) const;
  float decode_float(uint32_t code) const;

  Kind kind_ = Kind::kFloat;
  int bits_ = 0;
  // kFloat
  int exponent_bits_ = 0, mantissa_bits_ = 0, bias_ = 0;
  bool sign_ = true;
  Specials specials_ = Specials::kIeee;
  Subnormals subnormals_ = Subnormals::kGradual;
  Overflow overflow_ = Overflow::kSaturate;
  // kInt
  int32_t int_min_ = 0, int_max_ = 0, zero_point_ = 0;
  int fraction_bits_ = 0;
  bool twos_complement_ = true;
  // kLookup
  std::shared_ptr<const Lookup> lookup_;
  // derived
  double max_ = 0, lowest_ = 0, min_normal_ = 0, min_positive_ = 0;
  uint32_t max_code_ = 0;  // magnitude code of max_ (kFloat)
};

inline bool operator!=(const Format& a, const Format& b) { return !(a == b); }

// Every named preset of one value, for `lowbit formats` and tests (element formats only).
std::vector<Format> preset_formats();

}  // namespace lowbit
