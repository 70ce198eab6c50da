// Internal to the int8-activation GEMV (kernels/int8_gemv.h): what a kernel gets resolved from the
// tensor and the prepared x, and the scalar code every kernel finishes its rows with.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/numerics/format.h"

namespace lowbit::int8_detail {

constexpr size_t kBlock = 32;  // columns per activation scale
constexpr size_t kLanes = 16;  // canonical accumulator lanes (header: acc[r mod 16], cor[g mod 16])

struct Args {
  const uint8_t* codes = nullptr;  // rows x row_bytes, LSB-first at `bits`
  size_t row_bytes = 0, cols = 0, group = 1, groups = 0;
  size_t run_cols = 8, runs = 0;   // R and ⌈cols / R⌉
  int bits = 4;
  uint8_t flip = 0;                // XOR that turns a code into offset binary u (2^(b−1) for two's complement)
  // 4-bit grids of small integer levels times 2^−f (e2m1: 2v ∈ {0, ±1, ±2, ±3, ±4, ±6, ±8, ±12}): u =
  // map[code] = 2^f·v − min, a byte in [0, 64] (vpshufb), instead of code XOR flip.
  bool mapped = false;
  uint8_t map[16] = {};
  int implicit_zero = 0;           // z_g where there are no zero points: flip, or a mapped grid's −min
  int offset = 0;                  // o: 128 for 8 bits, else 0 (w = u − o)
  bool has_correction = false;     // some k_g can be non-zero (zero points, flipped codes, minimums, 8-bit u)
  const float* scales = nullptr;   // rows x groups
  const uint8_t* zeros = nullptr;  // rows x groups, or null
  const float* mins = nullptr;     // rows x groups, or null
  float factor = 1.0f;             // 2^−f of a two's complement grid
  const int8_t* q = nullptr;       // the rounded x, permuted inside the first `vector_cols` columns (4 bits)
  const float* run_scale = nullptr;
  const int32_t* run_bias = nullptr;
  const float* group_x = nullptr;
  size_t step_cols = 0;            // columns per vector step of the kernel (0: scalar, q natural)
};

// One token's prepared x as a kernel reads it, and where its outputs go (y[r]).
struct TokenX {
  const int8_t* q = nullptr;
  const float* run_scale = nullptr;
  const int32_t* run_bias = nullptr;
  const float* group_x = nullptr;
  float* y = nullptr;
};

// `a` reading token `t`'s prepared x.
inline Args with_token(Args a, const TokenX& t) {
  a.q = t.q;
  a.run_scale = t.run_scale;
  a.run_bias = t.run_bias;
  a.group_x = t.group_x;
  return a;
}

// Row r's canonical sums from run `run0` and group `group0` on (the kernel having added the runs and
// groups before them into acc and cor, in canonical lanes), then y = tree(acc) + tree(cor). Reads q
// at columns ≥ run0·R in natural order. Lives in its own translation unit, compiled without FMA
// contraction, so that every kernel finishes with the same scalar operations.
float finish_row(const Args& a, size_t r, size_t run0, size_t group0, float* acc, float* cor);

// A 4-bit non-integer grid of small integer levels times 2^−f (e2m1: f = 1): map[code] = 2^f·level − min,
// zero = −min, factor = 2^−f. False for other grids (then nothing is written).
bool small_integer_levels(const Format& f, uint8_t* map, int& zero, float& factor);
// Whether `f` is such a grid (the support checks, which need no table).
inline bool has_small_integer_levels(const Format& f) {
  uint8_t map[16];
  int zero = 0;
  float factor = 1;
  return small_integer_levels(f, map, zero, factor);
}

// x rounded per 32-column block (kernels/int8_gemv.h): q[cols] in natural order, dx[⌈cols/32⌉]; on
// AVX-512BW CPUs by round_blocks_avx512, which gives the scalar definition's bits.
void round_blocks(const float* x, size_t cols, int8_t* q, float* dx);
void round_blocks_scalar(const float* x, size_t cols, int8_t* q, float* dx);
// Σq over each run of `run_cols` columns (runs never straddle a block): sums[⌈cols/run_cols⌉].
void run_sums_scalar(const int8_t* q, size_t cols, size_t run_cols, int32_t* sums);
// q in the 4-bit kernels' order (int8_gemv_prepare): each `step` columns as its evens then its odds, and
// for step 128 (AVX-512) a trailing 64 likewise; the rest natural.
void permute_steps_scalar(const int8_t* natural, size_t cols, size_t step, int8_t* out);

// Whether a vector kernel whose steps are `step_cols` columns can form each lane's group scale
// (one group per row, groups a multiple of the step, or 2/4/8 groups per step — 8 only on AVX-512's
// 128-column 4-bit steps in groups of 16; AVX2's steps hold at most 4 groups of 16).
inline bool vector_scales(const Args& a, size_t step_cols) {
  if (a.groups <= 1 || a.group % step_cols == 0) return true;
  const size_t per = step_cols % a.group == 0 ? step_cols / a.group : 0;
  return per == 2 || per == 4 || per == 8;
}

#if defined(__x86_64__) || defined(__i386__)
void rows_avx2(const Args& a, size_t row_begin, size_t row_end, float* y);
// Rows [row_begin, row_end) for each of `tokens` tokens (a's own per-token fields are not read).
void rows_avx512(const Args& a, const TokenX* tok, size_t tokens, size_t row_begin, size_t row_end);
void rows_avx512_vnni(const Args& a, const TokenX* tok, size_t tokens, size_t row_begin, size_t row_end);
// Preparing x on AVX-512BW, each equal to its scalar counterpart in int8_gemv.cc: round_blocks; the
// sums of q over runs of 8 columns (sums[⌈cols/8⌉]); the 4-bit step order of the AVX-512 kernels.
void round_blocks_avx512(const float* x, size_t cols, int8_t* q, float* dx);
void run_sums8_avx512(const int8_t* q, size_t cols, int32_t* sums);
void permute_steps_avx512(const int8_t* natural, size_t cols, int8_t* out);
#endif

}  // namespace lowbit::int8_detail
