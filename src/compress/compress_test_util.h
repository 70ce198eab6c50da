// Test-only helpers shared by the compress tests: seeded synthetic weights and activations,
// a plain XᵀX, and plain output errors. Nothing here is used by the library.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "lowbit/core/random.h"

namespace lowbit::testing {

// Roughly normal (Irwin-Hall of 4 uniforms, unit variance) values from CounterRng(seed, stream).
inline std::vector<float> normal_values(size_t n, uint64_t seed, float scale = 1.0f, uint64_t stream = 0) {
  const CounterRng rng(seed, stream);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const float s = rng.uniform(4 * i) + rng.uniform(4 * i + 1) + rng.uniform(4 * i + 2) + rng.uniform(4 * i + 3) - 2.0f;
    v[i] = s * std::sqrt(3.0f) * scale;
  }
  return v;
}

// Activations [tokens x cols] with strong correlation between neighbouring channels
// (x_j = ρ x_{j-1} + sqrt(1 - ρ²) z_j) and a few large channels, like transformer inputs.
inline std::vector<float> correlated_activations(int64_t tokens, int64_t cols, uint64_t seed, float rho = 0.9f) {
  const std::vector<float> z = normal_values(static_cast<size_t>(tokens * cols), seed);
  std::vector<float> x(z.size());
  const float mix = std::sqrt(1.0f - rho * rho);
  for (int64_t t = 0; t < tokens; ++t) {
    float prev = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const float v = j == 0 ? z[static_cast<size_t>(t * cols)] : rho * prev + mix * z[static_cast<size_t>(t * cols + j)];
      prev = v;
      x[static_cast<size_t>(t * cols + j)] = v * (j % 17 == 3 ? 6.0f : 1.0f);
    }
  }
  return x;
}

// XᵀX in double, written plainly.
inline std::vector<double> plain_gram(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < cols; ++i) {
      const double xi = x[static_cast<size_t>(r * cols + i)];
      for (int64_t j = 0; j < cols; ++j) h[static_cast<size_t>(i * cols + j)] += xi * x[static_cast<size_t>(r * cols + j)];
    }
  return h;
}

// ‖X Wᵀ − X Ŵᵀ‖²_F in double, written plainly. x: tokens x cols; w, w_hat: rows x cols.
inline double output_error(const std::vector<float>& x, int64_t tokens, const std::vector<float>& w,
                           const std::vector<float>& w_hat, int64_t rows, int64_t cols) {
  double total = 0;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double y = 0;
      for (int64_t j = 0; j < cols; ++j)
        y += static_cast<double>(x[static_cast<size_t>(t * cols + j)]) *
             (static_cast<double>(w[static_cast<size_t>(r * cols + j)]) - w_hat[static_cast<size_t>(r * cols + j)]);
      total += y * y;
    }
  return total;
}

}  // namespace lowbit::testing
