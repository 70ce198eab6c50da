// Runtime-dispatched (Highway) kernels behind quantize.h and block_format.h. Internal.
//
// All kernels process `count` consecutive elements x[i] = in[i] / divisor, and write
// value[i] = round(x[i]) * multiplier and/or the code (1, 2 or 4 bytes each). `random` holds the
// 32 random bits of each element for the stochastic modes (nullptr otherwise). Each kernel is
// bit-identical to the scalar codec in format.cc; quantize_test.cc checks that on every target.
#pragma once

#include <cstddef>
#include <cstdint>

#include "numerics/kernel_params.h"

namespace lowbit::numerics_detail {

struct KernelOutput {
  float* values = nullptr;  // may be nullptr
  void* codes = nullptr;    // may be nullptr
  int code_bytes = 0;       // 1, 2 or 4 when codes is set
  float multiplier = 1.0f;  // applied to values
};

struct KernelInput {
  const float* in = nullptr;
  size_t count = 0;
  const uint32_t* random = nullptr;  // one word per element for stochastic modes
  float divisor = 1.0f;              // without groups: x = in / divisor
  // Groups: consecutive runs of `group` elements (the last may be shorter); group g uses
  // scales[g] as divisor and as the output multiplier, and a zero scale gives the zero code and
  // the value 0 (an all-zero block, or a scale that underflowed).
  size_t group = 0;
  const float* scales = nullptr;
  // Where the caller's input array ends (for software prefetch; default: in + count).
  const float* input_end = nullptr;
};

// Path kGrid or kLookup of `params`.
void round_vectorized(const KernelParams& params, Rounding mode, const KernelInput& in, const KernelOutput& out);

// Block statistics of each consecutive group of `group` elements (the last may be shorter):
// lo = min(x, 0), hi = max(x, 0) (both NaN when any x is NaN); with `magnitude`, hi = max |x|
// and lo = -hi.
void group_ranges(const float* in, size_t count, size_t group, bool magnitude, float* lo, float* hi);

// Philox4x32-10 words for counter blocks first_block .. first_block + blocks - 1 of
// CounterRng(seed, stream), written in element order: out[4 * j + w] = block(first_block + j)[w].
// Equal to CounterRng::block (random_test.cc checks the scalar one against Random123's vectors).
void philox_blocks(uint64_t seed, uint64_t stream, uint64_t first_block, size_t blocks, uint32_t* out);

}  // namespace lowbit::numerics_detail
