// Element-wise rounding of float arrays into a Format: fake quantization ("chop"), encoding to
// codes and decoding back. Vectorized with Highway (runtime dispatch) and parallel over
// lowbit::parallel_for; element i of a call gives exactly
//   format.quantize(in[i], mode, CounterRng(key.seed, key.stream).bits(key.offset + i))
// (the scalar codec of format.h is the oracle), for any thread count and SIMD target.
// Block-scaled quantization (MX, NVFP4, grouped INT) is in block_format.h.
#pragma once

#include <cstdint>
#include <span>

#include "lowbit/numerics/format.h"
#include "lowbit/numerics/rounding.h"

namespace lowbit {

// out[i] = the value in[i] rounds to. `in` and `out` may be the same span (in place);
// otherwise they must not overlap. Throws Error when the sizes differ.
void quantize_dequantize(std::span<const float> in, std::span<float> out, const Format& format,
                         Rounding mode = Rounding::kNearestEven, const RandomKey& key = {});

// codes[i] = format.encode(in[i], ...). The code type must be wide enough for format.bits().
void encode(std::span<const float> in, std::span<uint8_t> codes, const Format& format,
            Rounding mode = Rounding::kNearestEven, const RandomKey& key = {});
void encode(std::span<const float> in, std::span<uint16_t> codes, const Format& format,
            Rounding mode = Rounding::kNearestEven, const RandomKey& key = {});
void encode(std::span<const float> in, std::span<uint32_t> codes, const Format& format,
            Rounding mode = Rounding::kNearestEven, const RandomKey& key = {});

// out[i] = format.decode(codes[i]). Throws Error naming the first code >= format.code_count().
void decode(std::span<const uint8_t> codes, std::span<float> out, const Format& format);
void decode(std::span<const uint16_t> codes, std::span<float> out, const Format& format);
void decode(std::span<const uint32_t> codes, std::span<float> out, const Format& format);

}  // namespace lowbit
