#include "lowbit/numerics/quantize.h"

#include <algorithm>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "numerics/elementwise.h"

namespace lowbit {

namespace numerics_detail {

namespace {

void round_chunks(const Format& format, const KernelParams& params, Rounding mode, const RandomKey& key,
                  uint64_t first_index, const float* in, size_t count, float divisor, size_t group,
                  const float* scales, const KernelOutput& out) {
  // Chunks bound the random-bit buffer; with groups they end on group boundaries, and groups
  // longer than a chunk run one by one with their scale as the divisor.
  constexpr size_t kChunk = 4096;
  if (scales && group > kChunk) {
    for (size_t g = 0, begin = 0; begin < count; ++g, begin += group) {
      const size_t n = std::min(group, count - begin);
      KernelOutput piece = out;
      piece.multiplier = scales[g];
      if (out.values) piece.values = out.values + begin;
      if (out.codes) piece.codes = static_cast<char*>(out.codes) + begin * static_cast<size_t>(out.code_bytes);
      if (scales[g] != 0.0f) {
        round_chunks(format, params, mode, key, first_index + begin, in + begin, n, scales[g], 0, nullptr, piece);
        continue;
      }
      if (piece.values) std::fill(piece.values, piece.values + n, 0.0f);
      for (size_t i = 0; piece.codes && i < n; ++i) {
        if (piece.code_bytes == 1) static_cast<uint8_t*>(piece.codes)[i] = static_cast<uint8_t>(params.zero_code);
        else if (piece.code_bytes == 2) static_cast<uint16_t*>(piece.codes)[i] = static_cast<uint16_t>(params.zero_code);
        else static_cast<uint32_t*>(piece.codes)[i] = params.zero_code;
      }
    }
    return;
  }
  const size_t chunk = scales ? group * std::max<size_t>(1, kChunk / group) : kChunk;
  alignas(64) uint32_t words[kChunk + 16];
  for (size_t begin = 0; begin < count; begin += chunk) {
    const size_t n = std::min(chunk, count - begin);
    const uint32_t* random = nullptr;
    if (is_stochastic(mode)) {
      const uint64_t index = first_index + begin;
      const uint64_t first_block = index / 4, last_block = (index + n - 1) / 4;
      philox_blocks(key.seed, key.stream, first_block, static_cast<size_t>(last_block - first_block + 1), words);
      random = words + index % 4;
    }
    KernelOutput piece = out;
    if (out.values) piece.values = out.values + begin;
    if (out.codes) piece.codes = static_cast<char*>(out.codes) + begin * static_cast<size_t>(out.code_bytes);
    const float* piece_scales = scales ? scales + begin / group : nullptr;
    if (params.path != KernelParams::Path::kScalar) {
      KernelInput input;
      input.in = in + begin;
      input.count = n;
      input.random = random;
      input.divisor = divisor;
      input.group = group;
      input.scales = piece_scales;
      input.input_end = in + count;
      round_vectorized(params, mode, input, piece);
      continue;
    }
    for (size_t i = 0; i < n; ++i) {
      const float scale = piece_scales ? piece_scales[i / group] : divisor;
      const float multiplier = piece_scales ? scale : piece.multiplier;
      uint32_t code;
      float value;
      if (piece_scales && scale == 0.0f) {
        code = params.zero_code;
        value = 0.0f;
      } else {
        code = format.encode(scale != 1.0f ? in[begin + i] / scale : in[begin + i], mode, random ? random[i] : 0);
        value = format.decode(code);
        if (multiplier != 1.0f) value *= multiplier;
      }
      if (piece.values) piece.values[i] = value;
      if (piece.codes) {
        if (piece.code_bytes == 1) static_cast<uint8_t*>(piece.codes)[i] = static_cast<uint8_t>(code);
        else if (piece.code_bytes == 2) static_cast<uint16_t*>(piece.codes)[i] = static_cast<uint16_t>(code);
        else static_cast<uint32_t*>(piece.codes)[i] = code;
      }
    }
  }
}

}  // namespace

void round_span(const Format& format, const KernelParams& params, Rounding mode, const RandomKey& key,
                uint64_t first_index, const float* in, size_t count, float divisor, const KernelOutput& out) {
  round_chunks(format, params, mode, key, first_index, in, count, divisor, 0, nullptr, out);
}

void round_span_groups(const Format& format, const KernelParams& params, Rounding mode, const RandomKey& key,
                       uint64_t first_index, const float* in, size_t count, size_t group, const float* scales,
                       const KernelOutput& out) {
  round_chunks(format, params, mode, key, first_index, in, count, 1.0f, group, scales, out);
}

}  // namespace numerics_detail

namespace {

using numerics_detail::KernelOutput;

void run(std::span<const float> in, size_t out_size, const Format& format, Rounding mode, const RandomKey& key,
         float* values, void* codes, int code_bytes, const char* what) {
  if (in.size() != out_size)
    throw Error(what, "input has " + std::to_string(in.size()) + " elements but output has " +
                          std::to_string(out_size));
  if (codes && format.bits() > 8 * code_bytes)
    throw Error(what, "format " + format.to_string() + " has " + std::to_string(format.bits()) +
                          "-bit codes; they do not fit " + std::to_string(8 * code_bytes) + "-bit integers");
  const auto params = numerics_detail::make_kernel_params(format, mode);
  parallel_for(static_cast<int64_t>(in.size()), numerics_detail::kElementGrain, [&](int64_t begin, int64_t end) {
    KernelOutput out;
    out.values = values ? values + begin : nullptr;
    out.codes = codes ? static_cast<char*>(codes) + begin * code_bytes : nullptr;
    out.code_bytes = code_bytes;
    numerics_detail::round_span(format, params, mode, key, key.offset + static_cast<uint64_t>(begin),
                                in.data() + begin, static_cast<size_t>(end - begin), 1.0f, out);
  });
}

template <class Code>
void decode_codes(std::span<const Code> codes, std::span<float> out, const Format& format) {
  if (codes.size() != out.size())
    throw Error("decode", "input has " + std::to_string(codes.size()) + " codes but output has " +
                              std::to_string(out.size()) + " elements");
  const uint64_t count = format.code_count();
  if (format.bits() <= 16) {
    std::vector<float> table(static_cast<size_t>(count));
    for (uint32_t code = 0; code < count; ++code) table[code] = format.decode(code);
    for (size_t i = 0; i < codes.size(); ++i)
      if (codes[i] >= count)
        throw Error("decode", "code " + std::to_string(codes[i]) + " at index " + std::to_string(i) +
                                  " is out of range for " + format.to_string());
    parallel_for(static_cast<int64_t>(codes.size()), numerics_detail::kElementGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = table[codes[i]];
    });
    return;
  }
  for (size_t i = 0; i < codes.size(); ++i) out[i] = format.decode(static_cast<uint32_t>(codes[i]));
}

}  // namespace

void quantize_dequantize(std::span<const float> in, std::span<float> out, const Format& format, Rounding mode,
                         const RandomKey& key) {
  run(in, out.size(), format, mode, key, out.data(), nullptr, 0, "quantize_dequantize");
}

void encode(std::span<const float> in, std::span<uint8_t> codes, const Format& format, Rounding mode,
            const RandomKey& key) {
  run(in, codes.size(), format, mode, key, nullptr, codes.data(), 1, "encode");
}
void encode(std::span<const float> in, std::span<uint16_t> codes, const Format& format, Rounding mode,
            const RandomKey& key) {
  run(in, codes.size(), format, mode, key, nullptr, codes.data(), 2, "encode");
}
void encode(std::span<const float> in, std::span<uint32_t> codes, const Format& format, Rounding mode,
            const RandomKey& key) {
  run(in, codes.size(), format, mode, key, nullptr, codes.data(), 4, "encode");
}

void decode(std::span<const uint8_t> codes, std::span<float> out, const Format& format) {
  decode_codes(codes, out, format);
}
void decode(std::span<const uint16_t> codes, std::span<float> out, const Format& format) {
  decode_codes(codes, out, format);
}
void decode(std::span<const uint32_t> codes, std::span<float> out, const Format& format) {
  decode_codes(codes, out, format);
}

}  // namespace lowbit
