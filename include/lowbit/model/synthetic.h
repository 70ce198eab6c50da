// Random-weight Llama models of any size, for benchmarks and tests that need a model too
// large for the caches without shipping one. Weights are uniform in ±0.5/sqrt(in) (norm
// gains ≈ 1) drawn from CounterRng(seed, tensor index), so the same call makes the same model.
#pragma once

#include <cstdint>
#include <string>

#include "lowbit/io/model_files.h"

namespace lowbit {

ModelFiles make_synthetic_model(const LlamaConfig& config, DType dtype, uint64_t seed);

// Named shapes: "tiny" (for tests), "135m" (SmolLM2-135M's shape), "1b" (TinyLlama-1.1B's
// shape: 22 layers, hidden 2048, ff 5632, 32/4 heads, vocab 32000). Error for other names.
LlamaConfig synthetic_config(const std::string& name);

}  // namespace lowbit
