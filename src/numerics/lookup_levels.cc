#include "numerics/lookup_levels.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace lowbit {

namespace {
// bitsandbytes/functional.py, NF4 data type (the values printed by create_normal_map()).
constexpr std::array<float, 16> kNf4 = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};
// The construction above for 8 levels, evaluated in double and rounded to float; the test
// re-derives it from the normal quantile function.
constexpr std::array<float, 8> kNf3 = {
    -1.0f,
    -0.5350226163864136f,
    -0.24693140387535095f,
    0.0f,
    0.18333742022514343f,
    0.38199394941329956f,
    0.6229856610298157f,
    1.0f,
};
}  // namespace

std::span<const float> nf4_levels() { return kNf4; }
std::span<const float> nf3_levels() { return kNf3; }

std::vector<float> logarithmic_levels(int bits, bool sqrt2) {
  const int count = (1 << (bits - 1)) - 1;  // per sign
  std::vector<float> levels;
  levels.reserve(2 * count + 1);
  for (int k = 0; k < count; ++k) {
    // 2^(-k/2) rounded once from double: exact for even k, correctly rounded otherwise.
    const float level = static_cast<float>(sqrt2 ? std::exp2(-0.5 * k) : std::ldexp(1.0, -k));
    levels.push_back(level);
    levels.push_back(-level);
  }
  levels.push_back(0.0f);
  std::sort(levels.begin(), levels.end());
  return levels;
}

}  // namespace lowbit
