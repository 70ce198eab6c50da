// Dynamic fixed point: b-bit integer mantissas sharing one power-of-two exponent per tensor or
// per block (BlockFormat::dynamic_fixed_point), the scheme of integer training papers
// (Courbariaux et al. 2015, "Training deep neural networks with low precision multiplications";
// Das et al. 2018, "Mixed precision training of convolutional neural networks using integer
// operations", which uses INT16 mantissas with a shared exponent and INT32 accumulators).
//
// Accumulator-overflow rule. A dot product of two dynamic-fixed-point vectors multiplies the
// mantissas exactly (|m_a m_b| <= (2^(b-1) - 1)^2, the symmetric range; exponents add) and sums K
// products in an A-bit two's complement accumulator. The sum cannot overflow iff
//     K * (2^(b-1) - 1)^2 <= 2^(A-1) - 1,
// so at most max_accumulation_terms(b, A) products may be summed before the partial sum has to
// be converted (to fp32, or rescaled to a new shared exponent). INT16 x INT16 into INT32 allows
// only 2 terms (hence Das et al.'s chunked fp32 conversion); INT8 x INT8 into INT32 allows 133,144.
#pragma once

#include <cstdint>

namespace lowbit {

// The largest K for which K products of symmetric b-bit mantissas always fit an A-bit signed
// accumulator; 0 when not even one product fits. b in 2..32, A in 2..64.
int64_t max_accumulation_terms(int mantissa_bits, int accumulator_bits);

}  // namespace lowbit
