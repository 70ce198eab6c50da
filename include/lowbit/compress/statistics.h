// Calibration statistics the compression methods declare they need, accumulated batch by batch
// from a linear layer's inputs X [tokens x cols] (row-major f32) by the calibration pipeline:
//   * H = Σ XᵀX — GPTQ (gptq.h) and importance-weighted RTN (its diagonal, Σ x_j²);
//   * per-input-channel Σ|x|, Σx², max |x| — AWQ's mean |x| scales, imatrix-style importance,
//     SmoothQuant's max |x|.
// Sums are kept in double; means divide by the number of rows seen. Deterministic for any thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/linalg/gram.h"

namespace lowbit {

// hessian[cols x cols] (row-major, symmetric, start from zeros) += Xᵀ X for a batch x [rows x cols].
// Unnormalized: GPTQ is invariant to H's scale (its damping is relative), and a mean is H / rows.
// kFloatChunks (default): f32 products summed over at most 256 rows, then in double (sgemm speed,
// error independent of how many batches); kDouble: exact products, double sums (half the speed).
// Throws Error when sizes do not match or x holds a non-finite value.
void accumulate_hessian(std::span<double> hessian, std::span<const float> x, int64_t rows, int64_t cols,
                        GramPrecision precision = GramPrecision::kFloatChunks);

// Per-input-channel sums over every row added.
class ChannelStatistics {
 public:
  explicit ChannelStatistics(int64_t channels = 0);

  // Adds a batch x [rows x channels]. Throws Error when sizes do not match or a value is not finite.
  void add(std::span<const float> x, int64_t rows);

  int64_t channels() const { return static_cast<int64_t>(sum_abs_.size()); }
  int64_t count() const { return count_; }  // rows added
  std::span<const double> sum_abs() const { return sum_abs_; }
  std::span<const double> sum_square() const { return sum_square_; }
  std::span<const float> max_abs() const { return max_abs_; }
  // Σ|x| / count and Σx² / count per channel (zeros before any row was added).
  std::vector<float> mean_abs() const;
  std::vector<float> mean_square() const;

 private:
  std::vector<double> sum_abs_, sum_square_;
  std::vector<float> max_abs_;
  int64_t count_ = 0;
};

// Σ_r (W − Ŵ)_r H (W − Ŵ)_rᵀ = ‖X (W − Ŵ)ᵀ‖²_F when H = XᵀX: the output error a quantized weight
// causes on the calibration inputs, from H alone. w, w_hat: rows x cols; hessian: cols x cols.
// In double; O(rows · cols²).
double hessian_weighted_error(std::span<const float> w, std::span<const float> w_hat, int64_t rows, int64_t cols,
                              std::span<const double> hessian);

// Σ_r a_r H a_rᵀ for the m rows of a [m x cols], with H given in f32 [cols x cols]: one sgemm
// P = a·H into `product` (m x cols of scratch), then Σ a ∘ P in double. The fast form of
// hessian_weighted_error (a = W − Ŵ) for code that scores many candidates or large layers;
// single-threaded, so callers split rows over fixed tiles and add the tiles in order (determinism).
double quadratic_form_rows(const float* a, int64_t m, int64_t cols, const float* h, float* product);

}  // namespace lowbit
