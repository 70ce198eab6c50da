// The one place that turns "where x sits between two grid points" into a rounding decision,
// shared by every scalar codec (minifloat, integer, lookup) so the modes mean the same thing
// everywhere. See rounding.h for the definitions.
#pragma once

#include <cmath>
#include <cstdint>

#include "lowbit/numerics/rounding.h"

namespace lowbit::numerics_detail {

// Stochastic rounding: up iff random < floor(fraction * 2^32). fraction in [0, 1).
inline bool stochastic_up(double fraction, uint32_t random) {
  return static_cast<uint64_t>(random) < static_cast<uint64_t>(std::floor(std::ldexp(fraction, 32)));
}

// Rounding of a magnitude t + fraction (t an integer number of quanta, fraction in [0, 1)):
// whether to move to t + 1. `odd` is whether the code of t is odd (the tie rule of
// round-to-nearest-even); `negative` is the sign of the original value, which decides the
// directed modes (toward +Inf grows the magnitude of positives only).
inline bool round_magnitude_up(Rounding mode, double fraction, bool odd, bool negative, uint32_t random) {
  if (fraction == 0.0) return false;
  switch (mode) {
    case Rounding::kNearestEven: return fraction > 0.5 || (fraction == 0.5 && odd);
    case Rounding::kNearestAway: return fraction >= 0.5;
    case Rounding::kTowardZero: return false;
    case Rounding::kTowardPositive: return !negative;
    case Rounding::kTowardNegative: return negative;
    case Rounding::kStochastic: return stochastic_up(fraction, random);
    case Rounding::kStochasticEqual: return random >= 0x80000000u;
  }
  return false;
}

}  // namespace lowbit::numerics_detail
