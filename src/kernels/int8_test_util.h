// Test helpers shared by the int8-activation kernels' tests (int8_gemv_test, int8_gemm_test): random
// packed tensors over every grid the kernels read, and bitwise float comparison.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/core/half.h"
#include "lowbit/core/random.h"

namespace lowbit {
namespace {

// kE2m1: 4-bit floats (MXFP4/NVFP4's element), the int8 GEMV's mapped levels; 4 bits only.
enum class Grid { kZeroPoint, kSigned, kFloatMin, kE2m1 };

std::string grid_name(Grid g) {
  return g == Grid::kZeroPoint ? "zero-point" : g == Grid::kSigned ? "twos-complement" : g == Grid::kFloatMin ? "float-min" : "e2m1";
}

QuantScheme scheme_of(Grid grid, int bits, int64_t group) {
  if (grid == Grid::kE2m1) return QuantScheme::with_format(Format::e2m1(), group);
  if (grid == Grid::kFloatMin) {
    QuantScheme s = QuantScheme::with_format(Format::uint(bits), group);
    s.float_min = true;
    return s;
  }
  return QuantScheme::integer(bits, group, grid == Grid::kSigned);
}

// Random codes over the whole range (−2^(b−1) included), f16 scales, zero points and minimums.
QuantizedTensor random_tensor(int64_t rows, int64_t cols, Grid grid, int bits, int64_t group, uint64_t seed) {
  const QuantScheme scheme = scheme_of(grid, bits, group);
  QuantizedTensor t(rows, cols, scheme);
  const CounterRng rng(seed, 3);
  const int64_t groups = t.groups_per_row();
  std::vector<uint8_t> codes(static_cast<size_t>(cols)), zeros;
  std::vector<float> scales(static_cast<size_t>(groups)), mins;
  uint64_t k = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& c : codes) c = static_cast<uint8_t>(rng.bits(k++) % (1u << bits));
    for (auto& s : scales) s = f16_bits_to_f32(f32_to_f16_bits(0.01f + 0.02f * rng.uniform(k++)));
    zeros.clear();
    mins.clear();
    for (int64_t g = 0; g < groups; ++g) {
      if (grid == Grid::kZeroPoint) zeros.push_back(static_cast<uint8_t>(rng.bits(k++) % (1u << bits)));
      if (grid == Grid::kFloatMin) mins.push_back(f16_bits_to_f32(f32_to_f16_bits(-0.2f + 0.1f * rng.uniform(k++))));
    }
    t.set_row(r, codes, scales, zeros, mins);
  }
  return t;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

}  // namespace
}  // namespace lowbit
