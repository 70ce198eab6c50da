// Round-to-nearest (RTN) weight quantization: every (row, group) gets a scale from its own
// weights, then each weight rounds to the nearest grid value. The baseline every other method is
// measured against, and the per-group rule GPTQ reuses.
#pragma once

#include <cstdint>
#include <span>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/numerics/block_format.h"

namespace lowbit {

struct RtnOptions {
  // Grid, group size, scale dtype. Default: int4 (symmetric ±7), groups of 128, f16 scales.
  QuantScheme scheme;
  // How a group's range becomes its scale (numerics' ScaleSearch):
  //   kAbsmax      range = max |w| (asymmetric: [min(w, 0), max(w, 0)]) — the default.
  //   kMse         clipping search: the range times c = 1 - k/mse_grid for k = 0, 1, ... while
  //                k < mse_max_shrink * mse_grid, keeping the c with the least Σ_j v_j (w_j - ŵ_j)²
  //                (v = importance, or 1). Defaults mse_grid 100, mse_max_shrink 0.8: the 80
  //                candidates 1.00, 0.99, ..., 0.21 of GPTQ's `--mse` quantizer (which uses the
  //                2.4-norm; we use squared error, the quantity GPTQ and imatrix minimize). AWQ's
  //                weight-clipping grid is mse_grid 20, mse_max_shrink 0.5. Asymmetric grids shrink
  //                both ends. Each candidate scale is rounded into the scale dtype before it is
  //                scored, so the winner is scored as it will be stored.
  //   kPercentile  range = the given percentile of |w|.
  //   kAbsMean     scale = mean |w| (binary / ternary grids).
  ScaleOptions scale;
  // Empty, or one weight >= 0 per input column (e.g. diag(H) = Σ x_j² over calibration inputs —
  // llama.cpp's imatrix idea): kMse then minimizes Σ_j importance_j (W_ij - Ŵ_ij)² per group.
  // Ignored by the other searches (the rounding itself is always to the nearest value).
  std::span<const float> importance;
};

// weight: rows x cols, row-major f32 (rows = outputs, cols = inputs). Throws Error for a scheme
// that does not validate for cols, mismatched sizes, non-finite weights or importance, or
// negative importance. Parallel over rows; the result does not depend on the thread count.
QuantizedTensor quantize_rtn(std::span<const float> weight, int64_t rows, int64_t cols,
                             const RtnOptions& options = {});

}  // namespace lowbit
