// f16/bf16 <-> f32 conversions against independent oracles.
//
// Oracles: GCC's _Float16 (its conversions are libgcc soft-fp __extendhfsf2 /
// __truncsfhf2, correctly rounded and written independently of lowbit) for f16, and a
// reference that rounds in double arithmetic for bf16. The scalar functions are then
// the oracle for the Highway bulk functions, checked on every compiled-in target.
#include "lowbit/core/half.h"
#include "lowbit/numerics/format.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace lowbit {
namespace {

static_assert(std::numeric_limits<float>::is_iec559);

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }
float float_of(uint32_t bits) { return std::bit_cast<float>(bits); }

// volatile keeps GCC from constant-folding the oracle with its own folder, so the
// runtime soft-fp conversion is what gets compared.
float oracle_f16_to_f32(uint16_t h) {
  volatile uint16_t in = h;
  const _Float16 value = std::bit_cast<_Float16>(static_cast<uint16_t>(in));
  return static_cast<float>(value);
}
uint16_t oracle_f32_to_f16(float f) {
  volatile float in = f;
  return std::bit_cast<uint16_t>(static_cast<_Float16>(static_cast<float>(in)));
}

bool is_f16_nan(uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }
bool is_bf16_nan(uint16_t b) { return (b & 0x7F80u) == 0x7F80u && (b & 0x7Fu) != 0; }

std::string hex(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08X", value);
  return text;
}

// Reports at most a few mismatches per test instead of millions of lines.
class MismatchLog {
 public:
  explicit MismatchLog(std::string what) : what_(std::move(what)) {}
  ~MismatchLog() {
    EXPECT_EQ(count_, 0u) << what_ << ": " << count_ << " mismatches in total";
  }
  void add(const std::string& detail) {
    if (count_++ < 10) ADD_FAILURE() << what_ << ": " << detail;
  }
  size_t count() const { return count_; }

 private:
  std::string what_;
  size_t count_ = 0;
};

// ---------------------------------------------------------------------------------------
// f16 -> f32

TEST(HalfTest, F16ToF32KnownValues) {
  EXPECT_EQ(f16_bits_to_f32(0x0000), 0.0f);
  EXPECT_EQ(bits_of(f16_bits_to_f32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(f16_bits_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_bits_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_bits_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_bits_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_bits_to_f32(0x0400), 0x1p-14f);  // smallest normal
  EXPECT_EQ(f16_bits_to_f32(0x03FF), 1023 * 0x1p-24f);  // largest subnormal
  EXPECT_EQ(f16_bits_to_f32(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(f16_bits_to_f32(0x8001), -0x1p-24f);
  EXPECT_EQ(f16_bits_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_bits_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  // NaNs come out quiet with the payload moved to the top of the f32 mantissa, as
  // IEEE conversion, F16C and _Float16 all do.
  EXPECT_EQ(bits_of(f16_bits_to_f32(0x7E00)), 0x7FC00000u);
  EXPECT_EQ(bits_of(f16_bits_to_f32(0x7C01)), 0x7FC02000u);  // signaling -> quiet
  EXPECT_EQ(bits_of(f16_bits_to_f32(0xFD00)), 0xFFE00000u);
  EXPECT_EQ(bits_of(f16_bits_to_f32(0x7FFF)), 0x7FFFE000u);
}

TEST(HalfTest, F16ToF32MatchesFloat16OracleForAllPatterns) {
  MismatchLog log("f16_bits_to_f32 vs _Float16");
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float got = f16_bits_to_f32(static_cast<uint16_t>(h));
    const float want = oracle_f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      if (!std::isnan(got) || std::signbit(got) != std::signbit(want))
        log.add("h=" + hex(h) + " got " + hex(bits_of(got)) + ", want a NaN like " + hex(bits_of(want)));
    } else if (bits_of(got) != bits_of(want)) {
      log.add("h=" + hex(h) + " got " + hex(bits_of(got)) + " want " + hex(bits_of(want)));
    }
  }
}

TEST(HalfTest, F16RoundTripsThroughF32ForAllPatterns) {
  MismatchLog log("f32_to_f16_bits(f16_bits_to_f32(h))");
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const uint16_t back = f32_to_f16_bits(f16_bits_to_f32(static_cast<uint16_t>(h)));
    if (is_f16_nan(static_cast<uint16_t>(h))) {
      // A NaN stays a NaN of the same sign, quiet, with the payload kept.
      const uint16_t want = static_cast<uint16_t>(h | 0x0200u);
      if (back != want) log.add("NaN h=" + hex(h) + " came back as " + hex(back) + ", want " + hex(want));
    } else if (back != h) {
      log.add("h=" + hex(h) + " came back as " + hex(back));
    }
  }
}

// ---------------------------------------------------------------------------------------
// f32 -> f16

struct NarrowCase {
  uint32_t f32_bits;
  uint16_t f16_bits;
  const char* why;
};

// Hand-derived expectations; every one is also checked against _Float16.
const NarrowCase kF16NarrowCases[] = {
    {0x00000000u, 0x0000, "+0"},
    {0x80000000u, 0x8000, "-0 keeps its sign"},
    {0x3F800000u, 0x3C00, "1"},
    {0xC0000000u, 0xC000, "-2"},
    {0x3DCCCCCDu, 0x2E66, "0.1 rounds down"},
    {0x3EAAAAABu, 0x3555, "1/3"},
    {0x477FE000u, 0x7BFF, "65504, the largest finite f16"},
    {0x477FEFFFu, 0x7BFF, "65519.996 (just below the overflow threshold)"},
    {0x477FF000u, 0x7C00, "65520 is the tie above 65504 and rounds to Inf"},
    {0x47800000u, 0x7C00, "65536"},
    {0x501502F9u, 0x7C00, "1e10"},
    {0x7F7FFFFFu, 0x7C00, "FLT_MAX"},
    {0xFF7FFFFFu, 0xFC00, "-FLT_MAX"},
    {0x7F800000u, 0x7C00, "+Inf"},
    {0xFF800000u, 0xFC00, "-Inf"},
    {0x3F801000u, 0x3C00, "1 + 2^-11: tie, rounds to even 1"},
    {0x3F801001u, 0x3C01, "just above the tie"},
    {0x3F803000u, 0x3C02, "1 + 3*2^-11: tie, rounds up to even"},
    {0x45001000u, 0x6800, "2049: tie between 2048 and 2050 goes to 2048"},
    {0x45003000u, 0x6802, "2051: tie between 2050 and 2052 goes to 2052"},
    {0x38800000u, 0x0400, "2^-14, the smallest normal"},
    {0x387FC000u, 0x03FF, "1023 * 2^-24, the largest subnormal"},
    {0x387FE000u, 0x0400, "1023.5 * 2^-24: tie, rounds up into the smallest normal (even)"},
    {0x387FDFFFu, 0x03FF, "just below that tie"},
    {0x387FFFFFu, 0x0400, "just below the smallest normal"},
    {0x33800000u, 0x0001, "2^-24, the smallest subnormal"},
    {0x33000000u, 0x0000, "2^-25: tie between 0 and 2^-24 goes to even 0"},
    {0x33000001u, 0x0001, "just above 2^-25"},
    {0xB3000000u, 0x8000, "-2^-25 -> -0"},
    {0x33400000u, 0x0001, "3*2^-26 = 0.75 * 2^-24"},
    {0x32FFFFFFu, 0x0000, "just below 2^-25"},
    {0x33C00000u, 0x0002, "1.5 * 2^-24: tie goes to even 2"},
    {0x34200000u, 0x0002, "2.5 * 2^-24: tie goes to even 2"},
    {0x34600000u, 0x0004, "3.5 * 2^-24: tie goes to even 4"},
    {0x34100000u, 0x0002, "2.25 * 2^-24"},
    {0x00000001u, 0x0000, "smallest f32 subnormal"},
    {0x807FFFFFu, 0x8000, "largest negative f32 subnormal"},
    {0x00800000u, 0x0000, "smallest f32 normal"},
};

TEST(HalfTest, F32ToF16HandPickedCases) {
  for (const auto& c : kF16NarrowCases) {
    const float value = float_of(c.f32_bits);
    EXPECT_EQ(f32_to_f16_bits(value), c.f16_bits) << c.why << " (" << hex(c.f32_bits) << ")";
    EXPECT_EQ(oracle_f32_to_f16(value), c.f16_bits) << "oracle disagrees with the hand expectation: " << c.why;
  }
}

TEST(HalfTest, F32ToF16NaNsStayQuietNaNsWithTopPayload) {
  const uint32_t nans[] = {0x7FC00000u, 0x7F800001u, 0x7FA00000u, 0xFFA00000u, 0x7FFFFFFFu,
                           0xFFFFFFFFu, 0x7F802000u, 0x7FBFE000u, 0xFF800001u};
  for (uint32_t bits : nans) {
    const uint16_t got = f32_to_f16_bits(float_of(bits));
    const uint16_t want = static_cast<uint16_t>(((bits >> 16) & 0x8000u) | 0x7E00u | ((bits >> 13) & 0x3FFu));
    EXPECT_EQ(got, want) << hex(bits);
    EXPECT_TRUE(is_f16_nan(got)) << hex(bits);
    const uint16_t oracle = oracle_f32_to_f16(float_of(bits));
    EXPECT_TRUE(is_f16_nan(oracle));
    EXPECT_EQ(got & 0x8000u, oracle & 0x8000u);
  }
}

// Checks f32_to_f16_bits against the _Float16 oracle for one input.
void check_f32_to_f16(uint32_t bits, MismatchLog& log) {
  const float value = float_of(bits);
  const uint16_t got = f32_to_f16_bits(value);
  if (std::isnan(value)) {
    if (!is_f16_nan(got) || !(got & 0x0200u) || (got & 0x8000u) != ((bits >> 16) & 0x8000u))
      log.add("NaN input " + hex(bits) + " gave " + hex(got));
    return;
  }
  const uint16_t want = oracle_f32_to_f16(value);
  if (got != want) log.add("f32 " + hex(bits) + " got " + hex(got) + " want " + hex(want));
}

// Inputs where rounding to f16 is decided: for every finite f16 magnitude, the exact
// midpoint to the next one up (a tie) and its f32 neighbours, in both signs.
std::vector<uint32_t> f16_rounding_boundaries() {
  std::vector<uint32_t> out;
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const double low = f16_bits_to_f32(static_cast<uint16_t>(h));
    const double high = h + 1 == 0x7C00 ? 65536.0 : f16_bits_to_f32(static_cast<uint16_t>(h + 1));
    const float midpoint = static_cast<float>((low + high) / 2);  // exact: 12 significant bits
    const uint32_t mid = bits_of(midpoint);
    for (int64_t delta = -2; delta <= 2; ++delta) {
      const uint32_t b = static_cast<uint32_t>(mid + delta);
      out.push_back(b);
      out.push_back(b | 0x80000000u);
    }
    out.push_back(bits_of(static_cast<float>(low)));
    out.push_back(bits_of(static_cast<float>(low)) | 0x80000000u);
  }
  return out;
}

TEST(HalfTest, F32ToF16MatchesFloat16OracleOnAStridedSweep) {
  MismatchLog log("f32_to_f16_bits vs _Float16 (sweep)");
  // Step 211 (prime) visits 20.3 million patterns spread over every exponent and sign,
  // and every residue of the low mantissa bits over the run.
  size_t checked = 0;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFu; bits += 211, ++checked) check_f32_to_f16(static_cast<uint32_t>(bits), log);
  EXPECT_GE(checked, 20'000'000u);
}

TEST(HalfTest, F32ToF16MatchesFloat16OracleAtEveryRoundingBoundary) {
  MismatchLog log("f32_to_f16_bits vs _Float16 (boundaries)");
  const auto boundaries = f16_rounding_boundaries();
  EXPECT_GT(boundaries.size(), 300'000u);
  for (uint32_t bits : boundaries) check_f32_to_f16(bits, log);
  // Every f32 pattern around the overflow threshold and the subnormal/normal seam.
  for (uint32_t b = 0x477FE000u; b <= 0x47800100u; ++b) {
    check_f32_to_f16(b, log);
    check_f32_to_f16(b | 0x80000000u, log);
  }
  for (uint32_t b = 0x387F0000u; b <= 0x38810000u; ++b) check_f32_to_f16(b, log);
  for (uint32_t b = 0x32F00000u; b <= 0x33900000u; b += 7) check_f32_to_f16(b, log);
}

// ---------------------------------------------------------------------------------------
// bf16

TEST(HalfTest, BF16ToF32IsAShiftForAllPatterns) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const uint32_t got = bits_of(bf16_bits_to_f32(static_cast<uint16_t>(b)));
    if (got != (b << 16)) {
      ADD_FAILURE() << "bf16 " << hex(b) << " widened to " << hex(got);
      return;
    }
  }
  EXPECT_EQ(bf16_bits_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_bits_to_f32(0xC040), -3.0f);
}

// Round-to-nearest-even of a finite f32 to bf16, decided by comparing distances in
// double arithmetic (exact: both candidates and the input have <= 24 significant bits).
uint16_t reference_f32_to_bf16(uint32_t bits) {
  const uint32_t sign = bits & 0x80000000u;
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  const double value = float_of(magnitude);
  const uint32_t down = magnitude >> 16;  // truncation towards zero
  const uint32_t up = down + 1;
  const double down_value = float_of(down << 16);
  // The candidate above the largest finite bf16 is 2^128 for rounding purposes
  // (IEEE: overflow happens at or past the midpoint to it).
  const double up_value = up == 0x7F80u ? std::ldexp(1.0, 128) : static_cast<double>(float_of(up << 16));
  uint32_t chosen;
  if (value - down_value < up_value - value) chosen = down;
  else if (value - down_value > up_value - value) chosen = up;
  else chosen = (down & 1u) ? up : down;
  return static_cast<uint16_t>((sign >> 16) | chosen);
}

TEST(HalfTest, F32ToBF16HandPickedCases) {
  const NarrowCase cases[] = {
      {0x3F800000u, 0x3F80, "1"},
      {0x3F808000u, 0x3F80, "tie: 1 + 2^-8 goes down to even"},
      {0x3F818000u, 0x3F82, "tie: goes up to even"},
      {0x3F808001u, 0x3F81, "just above the tie"},
      {0x3F807FFFu, 0x3F80, "just below the tie"},
      {0xBF818000u, 0xBF82, "negative tie"},
      {0x7F7F7FFFu, 0x7F7F, "stays finite"},
      {0x7F7F8000u, 0x7F80, "tie above the largest finite bf16 overflows to Inf"},
      {0x7F7FFFFFu, 0x7F80, "FLT_MAX -> Inf"},
      {0xFF7F8000u, 0xFF80, "-Inf"},
      {0x7F800000u, 0x7F80, "Inf"},
      {0xFF800000u, 0xFF80, "-Inf"},
      {0x80000000u, 0x8000, "-0"},
      {0x00008000u, 0x0000, "subnormal tie goes to even 0"},
      {0x00018000u, 0x0002, "subnormal tie goes up to even"},
      {0x007F8000u, 0x0080, "largest subnormals round into the smallest normal"},
      {0x7FC00000u, 0x7FC0, "quiet NaN"},
      {0x7F800001u, 0x7FC0, "signaling NaN with a low payload becomes quiet, not Inf"},
      {0x7FFFFFFFu, 0x7FFF, "NaN must not carry into the sign"},
      {0xFF810000u, 0xFFC1, "negative signaling NaN keeps sign and top payload, becomes quiet"},
      {0x7F80FFFFu, 0x7FC0, "NaN must not round to Inf"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(f32_to_bf16_bits(float_of(c.f32_bits)), c.f16_bits) << c.why << " (" << hex(c.f32_bits) << ")";
    if (!std::isnan(float_of(c.f32_bits))) {
      EXPECT_EQ(reference_f32_to_bf16(c.f32_bits), c.f16_bits) << "reference disagrees: " << c.why;
    }
  }
}

void check_f32_to_bf16(uint32_t bits, MismatchLog& log) {
  const uint16_t got = f32_to_bf16_bits(float_of(bits));
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
    const uint16_t want = static_cast<uint16_t>((bits >> 16) | 0x0040u);
    if (got != want || !is_bf16_nan(got)) log.add("NaN " + hex(bits) + " gave " + hex(got));
    return;
  }
  const uint16_t want = reference_f32_to_bf16(bits);
  if (got != want) log.add("f32 " + hex(bits) + " got " + hex(got) + " want " + hex(want));
}

TEST(HalfTest, F32ToBF16MatchesDoubleReference) {
  MismatchLog log("f32_to_bf16_bits vs double reference");
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFu; bits += 211) check_f32_to_bf16(static_cast<uint32_t>(bits), log);
  // Every tie and its neighbours, for every bf16 magnitude, in both signs.
  for (uint32_t b = 0; b < 0x7F80u; ++b) {
    const uint32_t tie = (b << 16) | 0x8000u;
    for (uint32_t candidate : {tie - 1, tie, tie + 1, b << 16}) {
      check_f32_to_bf16(candidate, log);
      check_f32_to_bf16(candidate | 0x80000000u, log);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Bulk (Highway) conversions, on every target compiled in and supported by this CPU.

// Restores Highway's normal target choice even when an assertion returns early.
struct TargetOverride {
  explicit TargetOverride(int64_t target) { hwy::SetSupportedTargetsForTest(target); }
  ~TargetOverride() { hwy::SetSupportedTargetsForTest(0); }
};

std::vector<int64_t> targets_under_test() {
  std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  return targets;
}

// Chunk lengths around every vector width (4, 8, 16 lanes) so the tail loops run.
constexpr size_t kChunkLengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 1000, 4099};

// Runs `convert` over `in` in chunks of the lengths above, starting at odd offsets.
template <class In, class Out, class Convert>
std::vector<Out> convert_in_chunks(const std::vector<In>& in, Convert convert) {
  std::vector<Out> out(in.size() + 1);
  size_t position = 0, which = 0;
  while (position < in.size()) {
    const size_t length = std::min(kChunkLengths[which++ % std::size(kChunkLengths)], in.size() - position);
    convert(in.data() + position, out.data() + position, length);
    position += length;
  }
  // Also one call over everything at once (the main loop's steady state).
  std::vector<Out> whole(in.size());
  convert(in.data(), whole.data(), in.size());
  for (size_t i = 0; i < in.size(); ++i)
    if (std::memcmp(&whole[i], &out[i], sizeof(Out)) != 0) {
      ADD_FAILURE() << "chunked and whole conversions differ at " << i;
      break;
    }
  out.resize(in.size());
  return out;
}

TEST(HalfTest, BulkConversionsRunOnSeveralTargets) {
  const auto targets = targets_under_test();
  ASSERT_FALSE(targets.empty());
  std::string names;
  for (int64_t target : targets) names += std::string(hwy::TargetName(target)) + " ";
  std::printf("[          ] Highway targets under test: %s\n", names.c_str());
}

TEST(HalfTest, BulkWideningEqualsScalarForAllPatterns) {
  std::vector<uint16_t> all(0x10000);
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  for (int64_t target : targets_under_test()) {
    TargetOverride override_target(target);
    const std::string name = hwy::TargetName(target);
    for (bool brain : {false, true}) {
      MismatchLog log(name + (brain ? " convert_bf16_to_f32" : " convert_f16_to_f32"));
      const auto out = convert_in_chunks<uint16_t, float>(all, brain ? convert_bf16_to_f32 : convert_f16_to_f32);
      for (uint32_t i = 0; i < all.size(); ++i) {
        const uint16_t h = all[i];
        const float want = brain ? bf16_bits_to_f32(h) : f16_bits_to_f32(h);
        if (bits_of(out[i]) != bits_of(want))
          log.add("input " + hex(h) + " got " + hex(bits_of(out[i])) + " want " + hex(bits_of(want)));
      }
    }
  }
}

std::vector<float> narrowing_inputs() {
  std::vector<uint32_t> bits;
  for (uint64_t b = 0; b <= 0xFFFFFFFFu; b += 1031) bits.push_back(static_cast<uint32_t>(b));  // 4.2 million
  for (uint32_t b : f16_rounding_boundaries()) bits.push_back(b);
  for (uint32_t b = 0; b < 0x7F80u; b += 3) {  // bf16 ties
    bits.push_back((b << 16) | 0x8000u);
    bits.push_back((b << 16) | 0x8000u | 0x80000000u);
  }
  for (const auto& c : kF16NarrowCases) bits.push_back(c.f32_bits);
  for (uint32_t nan : {0x7FC00000u, 0x7F800001u, 0xFFA00000u, 0x7FFFFFFFu, 0x7F80FFFFu, 0xFF810000u})
    bits.push_back(nan);
  std::vector<float> out(bits.size());
  std::memcpy(out.data(), bits.data(), bits.size() * sizeof(float));
  return out;
}

TEST(HalfTest, BulkNarrowingEqualsScalarOnASweep) {
  const std::vector<float> in = narrowing_inputs();
  std::vector<uint16_t> want_f16(in.size()), want_bf16(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    want_f16[i] = f32_to_f16_bits(in[i]);
    want_bf16[i] = f32_to_bf16_bits(in[i]);
  }
  for (int64_t target : targets_under_test()) {
    TargetOverride override_target(target);
    const std::string name = hwy::TargetName(target);
    for (bool brain : {false, true}) {
      MismatchLog log(name + (brain ? " convert_f32_to_bf16" : " convert_f32_to_f16"));
      const auto out = convert_in_chunks<float, uint16_t>(in, brain ? convert_f32_to_bf16 : convert_f32_to_f16);
      const auto& want = brain ? want_bf16 : want_f16;
      for (size_t i = 0; i < in.size(); ++i)
        if (out[i] != want[i])
          log.add("input " + hex(bits_of(in[i])) + " got " + hex(out[i]) + " want " + hex(want[i]));
    }
  }
}

// FP8 and E8M0 widening: values written out from the OCP OFP8 / MX v1.0 tables, then every code
// against numerics' independent Format decoders (which the conformance suite checks against pychop).
TEST(HalfTest, EightBitFloatsWidenExactly) {
  EXPECT_EQ(f8e4m3_bits_to_f32(0x7E), 448.0f);   // S.1111.110: the largest finite
  EXPECT_EQ(f8e4m3_bits_to_f32(0x01), 0x1p-9f);  // the smallest subnormal
  EXPECT_EQ(f8e4m3_bits_to_f32(0x08), 0x1p-6f);  // the smallest normal
  EXPECT_EQ(f8e4m3_bits_to_f32(0xB9), -1.125f);  // 1.0111.001
  EXPECT_EQ(bits_of(f8e4m3_bits_to_f32(0x80)), 0x80000000u);
  EXPECT_TRUE(std::isnan(f8e4m3_bits_to_f32(0x7F)) && std::isnan(f8e4m3_bits_to_f32(0xFF)));
  EXPECT_EQ(f8e5m2_bits_to_f32(0x7B), 57344.0f);
  EXPECT_EQ(f8e5m2_bits_to_f32(0x01), 0x1p-16f);
  EXPECT_TRUE(std::isinf(f8e5m2_bits_to_f32(0xFC)) && f8e5m2_bits_to_f32(0xFC) < 0);
  EXPECT_EQ(e8m0_bits_to_f32(127), 1.0f);
  EXPECT_EQ(e8m0_bits_to_f32(0), 0x1p-127f);
  EXPECT_EQ(e8m0_bits_to_f32(254), 0x1p127f);
  EXPECT_TRUE(std::isnan(e8m0_bits_to_f32(255)));
  const Format e4m3 = Format::e4m3(), e5m2 = Format::e5m2(), e8m0 = Format::ue8m0();
  for (uint32_t code = 0; code < 256; ++code) {
    const auto b = static_cast<uint8_t>(code);
    for (auto [got, want] : {std::pair{f8e4m3_bits_to_f32(b), e4m3.decode(code)},
                             std::pair{f8e5m2_bits_to_f32(b), e5m2.decode(code)},
                             std::pair{e8m0_bits_to_f32(b), e8m0.decode(code)}})
      EXPECT_TRUE(bits_of(got) == bits_of(want) || (std::isnan(got) && std::isnan(want))) << code;
  }
}

TEST(HalfTest, BulkConversionsAcceptZeroLength) {
  convert_f16_to_f32(nullptr, nullptr, 0);
  convert_f32_to_f16(nullptr, nullptr, 0);
  convert_bf16_to_f32(nullptr, nullptr, 0);
  convert_f32_to_bf16(nullptr, nullptr, 0);
}

}  // namespace
}  // namespace lowbit
