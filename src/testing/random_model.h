// Small random-weight Llama-family models for tests: exact, fast, and shaped to catch mistakes.
#pragma once

#include <string>

#include "lowbit/core/dtype.h"
#include "lowbit/io/hf_config.h"

namespace lowbit::testing {

// Every feature switched on: grouped-query attention (6 query heads on 2 kv heads), attention
// biases (Qwen2), an untied head, odd sizes, llama3 RoPE scaling.
LlamaConfig awkward_config();

// Writes a model folder (config.json + model.safetensors) with weights uniform in ±0.25 and norm
// gains in [0.8, 1.2] drawn from CounterRng(seed), stored as `dtype`; returns its path (a fresh
// folder under testing::temp_dir()).
std::string write_random_model(const LlamaConfig& config, DType dtype = DType::kF32, uint64_t seed = 7);

}  // namespace lowbit::testing
