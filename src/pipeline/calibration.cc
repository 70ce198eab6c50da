#include "lowbit/pipeline/calibration.h"

#include <string>

#include "lowbit/core/error.h"
#include "lowbit/core/random.h"

namespace lowbit {

std::vector<std::vector<int32_t>> sample_calibration(std::span<const int32_t> tokens, const CalibrationOptions& o) {
  if (o.nsamples <= 0) throw Error("--nsamples must be positive, found " + std::to_string(o.nsamples));
  if (o.seqlen <= 0) throw Error("--seqlen must be positive, found " + std::to_string(o.seqlen));
  const int64_t size = static_cast<int64_t>(tokens.size());
  if (size < o.seqlen)
    throw Error("calibration text has " + std::to_string(size) + " tokens, fewer than one sequence of " +
                std::to_string(o.seqlen) + " (--seqlen)");
  const uint64_t starts = static_cast<uint64_t>(size - o.seqlen) + 1;
  const CounterRng rng(o.seed, /*stream=*/0x63616c6962ULL);  // "calib"
  std::vector<std::vector<int32_t>> samples;
  samples.reserve(static_cast<size_t>(o.nsamples));
  for (int64_t i = 0; i < o.nsamples; ++i) {
    // 64 random bits reduced modulo the number of starts: the bias is below 2^-40 for any text.
    const uint64_t r = (uint64_t{rng.bits(2 * static_cast<uint64_t>(i))} << 32) | rng.bits(2 * static_cast<uint64_t>(i) + 1);
    const auto start = tokens.begin() + static_cast<int64_t>(r % starts);
    samples.emplace_back(start, start + o.seqlen);
  }
  return samples;
}

}  // namespace lowbit
