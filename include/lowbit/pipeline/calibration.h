// Calibration data: N sequences of L tokens drawn from a tokenized text, as GPTQ's and AWQ's
// reference scripts draw them (a uniformly random start per sequence, windows may overlap).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace lowbit {

struct CalibrationOptions {
  int64_t nsamples = 128;  // N sequences (GPTQ and AWQ use 128)
  int64_t seqlen = 512;    // L tokens each (AWQ's 512; GPTQ uses 2048 — costly on a small CPU)
  uint64_t seed = 0;       // start positions come from CounterRng(seed): same seed, same samples
};

// Sequence i is tokens[start_i, start_i + L) with start_i uniform in [0, size - L]. Throws Error
// when N or L is not positive, or the text holds fewer than L tokens.
std::vector<std::vector<int32_t>> sample_calibration(std::span<const int32_t> tokens, const CalibrationOptions& options);

}  // namespace lowbit
