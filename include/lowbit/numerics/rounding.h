// Rounding modes of the numerics layer, and the key that makes stochastic rounding
// reproducible.
//
// Every mode is defined on the grid of representable values around x (lo <= x <= hi,
// the two neighbours; lo == hi when x is representable):
//   kNearestEven      nearest; ties to the neighbour whose code is even (IEEE 754 default)
//   kNearestAway      nearest; ties to the neighbour of larger magnitude
//   kTowardZero       truncation (lookup formats: the neighbour of smaller magnitude, +a on a
//                     tie between -a and +a — truncation whenever lo and hi have x's sign)
//   kTowardPositive   ceiling
//   kTowardNegative   floor
//   kStochastic       hi with probability (x - lo) / (hi - lo), else lo: E[round(x)] = x
//                     (Gupta et al. 2015, "Deep learning with limited numerical precision";
//                     Connolly, Higham & Mary 2021, "Stochastic rounding and its probabilistic
//                     backward error analysis").
//   kStochasticEqual  hi or lo with probability 1/2 each when x is not representable
//                     (the "SR with equal probabilities" mode of Connolly-Higham-Mary / pychop).
//
// Stochastic decisions consume 32 random bits r per element: round up iff
// r < floor(f * 2^32), f = (x - lo) / (hi - lo), so P(up) = floor(f * 2^32) / 2^32, which
// is exact whenever f has at most 32 fractional bits (every float input against a
// minifloat or integer grid finer than 2^-8 of the input's own ulp) and otherwise low by
// less than 2^-32. kStochasticEqual rounds up iff r >= 2^31. The bits for element i are
// CounterRng(seed, stream).bits(offset + i): a pure function of the element index, so the
// result does not depend on thread count, chunking or SIMD width. Lookup formats (NF4,
// codebooks) compute f in binary32 and compare at 24-bit resolution — up iff
// (r >> 8) < floor(f * 2^24) — which their SIMD kernel reproduces exactly; the bias is below
// 2^-24 of a step.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace lowbit {

enum class Rounding : uint8_t {
  kNearestEven,
  kNearestAway,
  kTowardZero,
  kTowardPositive,
  kTowardNegative,
  kStochastic,
  kStochasticEqual,
};

inline constexpr Rounding kAllRoundings[] = {
    Rounding::kNearestEven,    Rounding::kNearestAway,    Rounding::kTowardZero, Rounding::kTowardPositive,
    Rounding::kTowardNegative, Rounding::kStochastic,     Rounding::kStochasticEqual};

inline constexpr bool is_stochastic(Rounding mode) {
  return mode == Rounding::kStochastic || mode == Rounding::kStochasticEqual;
}

// Canonical spelling: "nearest", "nearest-away", "toward-zero", "up", "down", "stochastic",
// "stochastic-equal".
std::string_view rounding_name(Rounding mode);
// Accepts the canonical spellings and common aliases ("rne", "rna", "rtz", "ceil", "floor",
// "sr", ...); nullopt when unknown.
std::optional<Rounding> parse_rounding(std::string_view name);
// Throws lowbit::Error naming the accepted spellings when `name` is unknown.
Rounding parse_rounding_or_throw(std::string_view name);

// Which random bits stochastic rounding uses: element i of a call reads
// CounterRng(seed, stream).bits(offset + i). Use one stream per tensor, and pass the
// element's index within its tensor as offset when a call covers part of a tensor.
struct RandomKey {
  uint64_t seed = 0;
  uint64_t stream = 0;
  uint64_t offset = 0;
};

}  // namespace lowbit
