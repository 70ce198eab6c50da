// Decode (one token) matrix-vector product straight from a QuantizedTensor's packed layout:
// y[r] = Σ_c W[r, c] · x[c] for rows [row_begin, row_end), the codes unpacked and scaled in
// registers — no f32 copy of the weights, so a 4-bit matrix costs ~1/8 of the f32 bytes read.
//
// Handled layouts (packed_gemv_supported): integer grids without g_idx —
//   asymmetric  Format::uint(b) with per-group zero points: W = (code − z) · s
//   symmetric   two's complement integer grids (Format::int_symmetric(b), int_full(b), any
//               fraction bits): W = sign_extend_b(code) · 2^-f · s — exactly Format::decode
//   float min   Format::uint(b) with a float minimum per group (ggml's Q4_1/Q5_1):
//               W = code · s + m, run as the unsigned codes plus m · Σ_{c in g} x_c per group
//   lookup      4-bit grids of 16 levels (NF4, IQ4_NL's codebook) and 4-bit floats (e2m1, the
//               MXFP4/NVFP4 element), groups of an even size: W = value[code] · s, the 16 values
//               looked up in registers
//   FP8         Format::e4m3() codes: W = e4m3(code) · s, each code widened to f32 in registers
// for any bits 1..8 and any group size (per-row, ragged last group). 2-, 4- and 8-bit codes
// with byte-aligned groups are unpacked in SIMD registers (Highway, chosen at run time); every
// other width/grouping is unpacked one row at a time into a small byte buffer first.
//
// Arithmetic, per row and group g (columns c0..c1):
//     acc_g = Σ_c value_c · x_c      (value_c = code_c, or the signed integer)
//     y    += s_g · (acc_g − z_g · Σ_{c in g} x_c)     (z_g = 0 for symmetric grids)
// with Σx per group formed once per token (packed_gemv_prepare). The summation order of a row depends only on the row
// and the instruction set, never on [row_begin, row_end), so any split of rows over threads
// gives bit-identical results. The result is not bit-equal to dequantize-then-dot (different
// rounding); it agrees within a few f32 ulps of Σ|W_rc · x_c|.
//
// Layouts not handled (other lookup grids such as NF3, other minifloats, g_idx) fall back inside
// packed_gemv_rows to dequantizing each row to f32 and dense_gemv_rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"

namespace lowbit {

// Whether packed_gemv_rows reads this tensor's packed codes directly (see above).
bool packed_gemv_supported(const QuantizedTensor& w);

// x prepared for one tensor layout: Σx per group (asymmetric grids) and x in the order the 2-/4-bit
// SIMD steps read it. Built once per token by packed_gemv_prepare and then shared, read-only, by
// every thread's packed_gemv_rows, so a row tile does not redo O(cols) work. Points at x: x
// must outlive it and stay unchanged.
struct PackedGemvInput {
  const float* x = nullptr;
  int64_t cols = 0, groups = 0, group_size = 0;
  int bits = 0;
  std::vector<float> group_sums;  // [groups], asymmetric grids only
  std::vector<float> permuted;    // [cols], 2-/4-bit byte-aligned layouts only
  size_t permuted_lanes = 0;      // the vector width `permuted` was made for
  std::vector<float> code_values; // float elements (e2m1: 16, FP8 e4m3: 256): each code's value,
  std::optional<Format> code_format;  // the format code_values were made for (kept while it stays the same)
};
void packed_gemv_prepare(const QuantizedTensor& w, const float* x, PackedGemvInput& input);
// y[r] for r in [row_begin, row_end) from a prepared x (Error when prepared for another layout).
void packed_gemv_rows(const QuantizedTensor& w, const PackedGemvInput& input, int64_t row_begin, int64_t row_end,
                      float* y);

// The same, preparing x itself (O(cols) per call). y indexed by absolute row; x has w.cols()
// values. Throws Error for a bad row range.
void packed_gemv_rows(const QuantizedTensor& w, const float* x, int64_t row_begin, int64_t row_end, float* y);

// The same arithmetic in plain scalar C++, one column at a time (the test oracle). Supported
// layouts only (throws Error otherwise).
void packed_gemv_rows_reference(const QuantizedTensor& w, const float* x, int64_t row_begin, int64_t row_end,
                                float* y);

}  // namespace lowbit
