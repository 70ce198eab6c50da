#include "lowbit/numerics/fixed_point.h"

#include <string>

#include "lowbit/core/error.h"

namespace lowbit {

int64_t max_accumulation_terms(int mantissa_bits, int accumulator_bits) {
  require(mantissa_bits >= 2 && mantissa_bits <= 32, "max_accumulation_terms",
          "mantissa bits must be 2..32, found " + std::to_string(mantissa_bits));
  require(accumulator_bits >= 2 && accumulator_bits <= 64, "max_accumulation_terms",
          "accumulator bits must be 2..64, found " + std::to_string(accumulator_bits));
  using Wide = unsigned __int128;
  const Wide largest = (Wide{1} << (mantissa_bits - 1)) - 1;
  const Wide product = largest * largest;
  const Wide capacity = (Wide{1} << (accumulator_bits - 1)) - 1;
  const Wide terms = capacity / product;
  return terms > static_cast<Wide>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(terms);
}

}  // namespace lowbit
