// The serial element-wise rounding loop shared by quantize.cc and block_format.cc: random bits,
// then the SIMD kernel where the format has one and the scalar codec where it does not.
// Internal to the numerics module.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/numerics/format.h"
#include "numerics/kernel_params.h"
#include "numerics/quantize_kernels.h"

namespace lowbit::numerics_detail {

// Rounds in[i] / divisor for i in [0, count) into `format` (whose kernel parameters for `mode`
// are `params`), element i drawing random bits CounterRng(key.seed, key.stream).bits(first_index + i).
// key.offset is ignored: first_index already says where the run sits in its tensor.
void round_span(const Format& format, const KernelParams& params, Rounding mode, const RandomKey& key,
                uint64_t first_index, const float* in, size_t count, float divisor, const KernelOutput& out);

// The same over consecutive groups of `group` elements (the last may be shorter), group g
// divided and multiplied by scales[g] (out.multiplier is ignored); a zero scale gives the
// zero code and the value 0.
void round_span_groups(const Format& format, const KernelParams& params, Rounding mode, const RandomKey& key,
                       uint64_t first_index, const float* in, size_t count, size_t group, const float* scales,
                       const KernelOutput& out);

// Elements per parallel_for chunk for element-wise passes: large enough to amortize the
// dispatch, small enough to split 2^20 elements over a few threads.
inline constexpr int64_t kElementGrain = int64_t{1} << 15;

}  // namespace lowbit::numerics_detail
