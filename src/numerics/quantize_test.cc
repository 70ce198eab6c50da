// The bulk (SIMD, parallel) paths against the scalar codec, on every Highway target compiled in
// and supported by this CPU, for every preset and rounding mode; plus decode, thread-count and
// chunking invariance.
#include "lowbit/numerics/quantize.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"

namespace lowbit {
namespace {

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

struct TargetOverride {
  explicit TargetOverride(int64_t target) { hwy::SetSupportedTargetsForTest(target); }
  ~TargetOverride() { hwy::SetSupportedTargetsForTest(0); }
};

struct ThreadOverride {
  explicit ThreadOverride(int threads) { set_num_threads(threads); }
  ~ThreadOverride() { set_num_threads(0); }
};

// Inputs that exercise every path: a sweep of all binary32 bit patterns, values at and between
// the format's own grid points (ties, ±1 ulp), and the special values.
std::vector<float> inputs_for(const Format& format) {
  std::vector<float> in;
  for (uint64_t b = 0; b <= 0xFFFFFFFFu; b += 0x80003) in.push_back(std::bit_cast<float>(static_cast<uint32_t>(b)));
  const uint64_t step = format.code_count() > 1024 ? format.code_count() / 1021 : 1;
  for (uint64_t code = 0; code < format.code_count(); code += step) {
    const float v = format.decode(static_cast<uint32_t>(code));
    if (!std::isfinite(v)) continue;
    const float next = code + 1 < format.code_count() ? format.decode(static_cast<uint32_t>(code + 1)) : v;
    const float mid = std::isfinite(next) ? static_cast<float>((static_cast<double>(v) + next) / 2) : v;
    for (float x : {v, std::nextafter(v, INFINITY), std::nextafter(v, -INFINITY), mid, std::nextafter(mid, INFINITY),
                    std::nextafter(mid, -INFINITY), v * 1.25f, v * 3.0f, v * 0.49f})
      in.push_back(x);
  }
  const lowbit::CounterRng rng(7, 1);
  const float scale = static_cast<float>(format.max_value() > 1e6 ? 1e3 : format.max_value());
  for (uint64_t i = 0; i < 4000; ++i) in.push_back((rng.uniform(2 * i) * 2.4f - 1.2f) * scale);
  for (float x : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 3.4e38f, -3.4e38f, 1e-45f, -1e-45f, 1.2e-38f,
                  static_cast<float>(format.max_value()), -static_cast<float>(format.max_value())})
    in.push_back(x);
  return in;
}

std::vector<Format> formats_under_test() {
  std::vector<Format> formats = preset_formats();
  for (const char* name : {"e4m3:nosat", "e5m2:sat", "e3m4", "e4m3:flush", "e2m2:finite:flush", "e6m9:bias=20",
                           "ue5m3:fn", "int4:full", "uint4:zero=7", "uint8:zero=3", "int12:frac=20", "uint1",
                           "log8", "codebook:-3,-1,0.25,2,7", "e4m0:finite", "ue5m0", "e3m0:flush:fn", "e4m3:nozero",
                           "ue5m0:nozero", "ue8m3:nozero", "e8m22", "e7m23", "codebook:-1,1", "log4:sqrt2"})
    formats.push_back(Format::parse(name));
  return formats;
}

TEST(NumericsQuantize, BulkEqualsScalarOnEveryTarget) {
  const auto targets = hwy::SupportedAndGeneratedTargets();
  std::string names;
  for (int64_t target : targets) names += std::string(hwy::TargetName(target)) + " ";
  std::printf("[          ] Highway targets under test: %s\n", names.c_str());
  const RandomKey key{12345, 678, 9};
  for (const Format& format : formats_under_test()) {
    const std::vector<float> in = inputs_for(format);
    for (Rounding mode : kAllRoundings) {
      const CounterRng rng(key.seed, key.stream);
      std::vector<uint32_t> want_codes(in.size());
      std::vector<float> want_values(in.size());
      for (size_t i = 0; i < in.size(); ++i) {
        want_codes[i] = format.encode(in[i], mode, is_stochastic(mode) ? rng.bits(key.offset + i) : 0);
        want_values[i] = format.decode(want_codes[i]);
      }
      for (int64_t target : targets) {
        TargetOverride override_target(target);
        const std::string what = std::string(hwy::TargetName(target)) + " " + format.to_string() + " " +
                                 std::string(rounding_name(mode));
        std::vector<float> values(in.size());
        quantize_dequantize(in, values, format, mode, key);
        std::vector<uint32_t> codes32(in.size());
        encode(in, std::span<uint32_t>(codes32), format, mode, key);
        int mismatches = 0;
        for (size_t i = 0; i < in.size() && mismatches < 5; ++i) {
          if (bits_of(values[i]) != bits_of(want_values[i]) && !(std::isnan(values[i]) && std::isnan(want_values[i]) &&
                                                                 format.kind() == Format::Kind::kLookup)) {
            ADD_FAILURE() << what << ": value of " << std::hexfloat << in[i] << " is " << values[i] << ", want "
                          << want_values[i];
            ++mismatches;
          }
          if (codes32[i] != want_codes[i]) {
            ADD_FAILURE() << what << ": code of " << std::hexfloat << in[i] << " is " << codes32[i] << ", want "
                          << want_codes[i];
            ++mismatches;
          }
        }
        ASSERT_EQ(mismatches, 0) << what;
        if (format.bits() <= 16) {
          std::vector<uint16_t> codes16(in.size());
          encode(in, std::span<uint16_t>(codes16), format, mode, key);
          for (size_t i = 0; i < in.size(); ++i) ASSERT_EQ(codes16[i], want_codes[i]) << what;
        }
        if (format.bits() <= 8) {
          std::vector<uint8_t> codes8(in.size());
          encode(in, std::span<uint8_t>(codes8), format, mode, key);
          for (size_t i = 0; i < in.size(); ++i) ASSERT_EQ(codes8[i], want_codes[i]) << what;
        }
      }
    }
  }
}

TEST(NumericsQuantize, InPlaceAndOddLengths) {
  const Format format = Format::e4m3();
  std::vector<float> in;
  for (int i = 0; i < 1000; ++i) in.push_back(std::sin(i * 0.37f) * 300.0f);
  for (size_t length : {0u, 1u, 3u, 15u, 16u, 17u, 33u, 999u}) {
    std::vector<float> data(in.begin(), in.begin() + length), want(length);
    for (size_t i = 0; i < length; ++i) want[i] = format.quantize(in[i]);
    quantize_dequantize(data, data, format);
    for (size_t i = 0; i < length; ++i) ASSERT_EQ(bits_of(data[i]), bits_of(want[i])) << length << " " << i;
  }
}

TEST(NumericsQuantize, SameResultForAnyThreadCountAndChunking) {
  std::vector<float> in(1 << 20);
  const CounterRng rng(3, 3);
  for (size_t i = 0; i < in.size(); ++i) in[i] = (rng.uniform(i) - 0.5f) * 20.0f;
  for (const Format& format : {Format::e2m1(), Format::int_symmetric(4), Format::bf16(), Format::nf4()}) {
    for (Rounding mode : {Rounding::kStochastic, Rounding::kStochasticEqual, Rounding::kNearestEven}) {
      const RandomKey key{99, 5, 1000};
      std::vector<float> one(in.size()), two(in.size()), pieces(in.size());
      {
        ThreadOverride threads(1);
        quantize_dequantize(in, one, format, mode, key);
      }
      {
        ThreadOverride threads(2);
        quantize_dequantize(in, two, format, mode, key);
      }
      // The same tensor quantized in uneven pieces, each told its offset.
      size_t begin = 0, piece = 1;
      while (begin < in.size()) {
        const size_t length = std::min(piece, in.size() - begin);
        RandomKey piece_key = key;
        piece_key.offset += begin;
        quantize_dequantize(std::span<const float>(in).subspan(begin, length),
                            std::span<float>(pieces).subspan(begin, length), format, mode, piece_key);
        begin += length;
        piece = piece * 3 + 1;
      }
      EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0)
          << format.to_string() << " " << rounding_name(mode);
      EXPECT_EQ(std::memcmp(one.data(), pieces.data(), one.size() * sizeof(float)), 0)
          << format.to_string() << " " << rounding_name(mode);
    }
  }
}

TEST(NumericsQuantize, DecodeUsesTheTableAndChecksRange) {
  const Format format = Format::e3m2();
  std::vector<uint8_t> codes(64);
  for (int i = 0; i < 64; ++i) codes[i] = static_cast<uint8_t>(i);
  std::vector<float> out(64);
  decode(codes, out, format);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(out[i], format.decode(i));
  codes[10] = 64;  // a 7-bit pattern in a 6-bit format
  EXPECT_THROW(decode(codes, out, format), Error);
  std::vector<uint16_t> wide = {0x3C00, 0x7C00};
  std::vector<float> wide_out(2);
  decode(wide, wide_out, Format::fp16());
  EXPECT_EQ(wide_out[0], 1.0f);
  EXPECT_EQ(wide_out[1], INFINITY);
}

TEST(NumericsQuantize, RejectsMismatchedSizesAndNarrowCodes) {
  std::vector<float> in(4), out(3);
  EXPECT_THROW(quantize_dequantize(in, out, Format::e4m3()), Error);
  std::vector<uint8_t> codes(4);
  EXPECT_THROW(encode(in, std::span<uint8_t>(codes), Format::fp16()), Error);
}

}  // namespace
}  // namespace lowbit
