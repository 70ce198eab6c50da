// Pruning: which weights of a matrix W [rows = outputs, cols = inputs] become exactly zero.
//
// Patterns
//   unstructured  a fraction `ratio` of each row's weights is pruned (or of the whole matrix, for
//                 magnitude pruning with MaskScope::kLayer). A row of c columns loses
//                 round(ratio · c) weights, so the realized ratio is exact up to that rounding.
//   N:M           of every aligned group of M consecutive inputs at most N are kept (NVIDIA's 2:4
//                 semi-structured sparsity; Mishra et al. 2021). A ragged last group of r < M columns
//                 keeps min(N, r). The pruning always runs along the input dimension, the one a dot
//                 product reduces over, which is what sparse kernels skip.
//
// Criteria (a mask keeps, within each row or group, the weights with the largest score; ties go to
// the lower column, so masks are deterministic):
//   magnitude     |W_ij|                                  (Han et al. 2015)
//   Wanda         |W_ij| · ‖X_j‖₂, compared within each output row (Sun et al. 2023, "A Simple and
//                 Effective Pruning Approach for LLMs"; ‖X_j‖₂² = H_jj for H = XᵀX)
//   SparseGPT     w_ij² / [U_jj]², chosen block by block on the error-compensated weights
//                 (sparsegpt.h; Frantar & Alistarh 2023)
//
// Masks are rows x cols bytes, 1 = kept, 0 = pruned.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct SparsityPattern {
  double ratio = 0;  // unstructured: the fraction pruned, 0 <= ratio <= 0.99
  int n = 0, m = 0;  // N:M: keep at most n of every m (1 <= n < m <= 64); m = 0 for unstructured

  static SparsityPattern unstructured(double ratio);
  static SparsityPattern n_of_m(int n, int m);
  // "2:4" / "4:8" (N:M), "50%" or "0.5" (unstructured). Throws Error naming the text.
  static SparsityPattern parse(std::string_view text);

  bool nm() const { return m > 0; }
  // Nothing is pruned (ratio 0, unstructured).
  bool none() const { return !nm() && ratio == 0; }
  // Throws Error unless the fields are in range.
  void validate() const;
  // "2:4", "50%" (unstructured ratios as a percentage with up to two decimals).
  std::string to_string() const;

  // Unstructured: weights pruned among a row's first c columns, round(ratio · c). The pruned count
  // of columns [c0, c1) is pruned_before(c1) − pruned_before(c0), so blocks of a row add up exactly.
  int64_t pruned_before(int64_t c) const;
  // N:M: weights kept in a group of `size` (<= m) columns, min(n, size).
  int64_t kept_in_group(int64_t size) const;
  // The fraction of a rows x cols matrix this pattern prunes (what masks realize exactly).
  double pruned_fraction(int64_t rows, int64_t cols) const;
};

enum class MaskScope {
  kRow,    // each row loses its share (unstructured) — the default
  kLayer,  // unstructured magnitude pruning ranked over the whole matrix
};

// The mask keeping the largest scores (rows x cols, >= 0) under `pattern`. N:M ignores the scope.
// Throws Error for sizes that do not match, a pattern out of range, or non-finite scores.
std::vector<uint8_t> mask_from_scores(std::span<const float> scores, int64_t rows, int64_t cols,
                                      const SparsityPattern& pattern, MaskScope scope = MaskScope::kRow);

// Magnitude pruning mask: scores |W|.
std::vector<uint8_t> magnitude_mask(std::span<const float> weight, int64_t rows, int64_t cols,
                                    const SparsityPattern& pattern, MaskScope scope = MaskScope::kRow);

// Wanda mask: scores |W_ij| · input_norms[j], ranked within each row (input_norms: cols values >= 0,
// ‖X_j‖₂ over the calibration tokens; any positive multiple gives the same mask).
std::vector<uint8_t> wanda_mask(std::span<const float> weight, int64_t rows, int64_t cols,
                                const SparsityPattern& pattern, std::span<const float> input_norms);

// ‖X_j‖₂ = sqrt(H_jj) from H = XᵀX (cols x cols, e.g. accumulate_hessian).
std::vector<float> input_norms_from_hessian(std::span<const double> hessian, int64_t cols);

// Zeroes the pruned weights (mask 0) in place.
void apply_mask(std::span<float> weight, std::span<const uint8_t> mask);

// Throws Error(where, ...) naming the row and column of the first place where `mask` breaks
// `pattern`: an N:M group keeping more than min(n, size), or an unstructured row (or, with
// kLayer, the matrix) keeping a different count from what the ratio implies.
void check_mask(std::span<const uint8_t> mask, int64_t rows, int64_t cols, const SparsityPattern& pattern,
                MaskScope scope, const std::string& where);

// Fraction of zeros in a mask (or, for weights, of exact zeros).
double mask_sparsity(std::span<const uint8_t> mask);

}  // namespace lowbit
