// The int8-activation GEMV: activation rounding, dispatch, and the scalar definition every kernel
// finishes with (kernels/int8_gemv.h). Compiled with -ffp-contract=off (CMakeLists.txt): the
// canonical sums are written as separate multiplies and fmas, and must stay so.
#include "lowbit/kernels/int8_gemv.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/kernels/packed_gemv.h"
#include "lowbit/numerics/packing.h"
#include "src/kernels/int8_gemv_internal.h"

namespace lowbit {
namespace int8_detail {

namespace {
// tree(v): v[i] + v[i+8], then +4, +2, +1 (the header's fixed order).
inline float tree(float* v) {
  for (size_t half = kLanes / 2; half >= 1; half /= 2)
    for (size_t i = 0; i < half; ++i) v[i] = v[i] + v[i + half];
  return v[0];
}
}  // namespace

float finish_row(const Args& a, size_t r, size_t run0, size_t group0, float* acc, float* cor) {
  const uint8_t* row = a.codes + r * a.row_bytes;
  const float* scales = a.scales + r * a.groups;
  for (size_t run = run0; run < a.runs; ++run) {
    const size_t c0 = run * a.run_cols, c1 = std::min(a.cols, c0 + a.run_cols);
    int32_t p = 0;
    for (size_t c = c0; c < c1; ++c) {
      const uint32_t code = packed_code_at(row, a.row_bytes, c, a.bits);
      const int32_t u = static_cast<int32_t>(a.mapped ? a.map[code] : code ^ a.flip);
      p += (u - a.offset) * a.q[c];
    }
    const float s = scales[a.groups <= 1 ? 0 : c0 / a.group] * a.factor;
    const float d = a.run_scale[run] * s;
    acc[run % kLanes] = std::fma(static_cast<float>(p), d, acc[run % kLanes]);
  }
  if (a.has_correction) {
    const uint8_t* zeros = a.zeros ? a.zeros + r * a.groups : nullptr;
    const float* mins = a.mins ? a.mins + r * a.groups : nullptr;
    // Two's complement: u = v + 2^(b−1), the zero point every group has; mapped levels: u = 2^f·v − min.
    for (size_t g = group0; g < a.groups; ++g) {
      const int z = zeros ? zeros[g] : a.implicit_zero;
      const float s = scales[g] * a.factor;
      const float k = static_cast<float>(a.offset - z) * s;
      cor[g % kLanes] = std::fma(k, a.group_x[g], cor[g % kLanes]);
      if (mins) cor[g % kLanes] = std::fma(mins[g], a.group_x[g], cor[g % kLanes]);
    }
  }
  return tree(acc) + tree(cor);
}

// x rounded per 32-column block: q (natural order) and dx per block. q = round-half-even(x · 127/amax),
// by adding and subtracting 1.5·2^23 (exact for |v| < 2^22; the file is compiled without contraction,
// so the product is rounded first, as written): plain float operations the compiler vectorizes, where
// nearbyint and a division per column were library calls (they made prefill's rounding as slow as its
// matrix products).
void round_blocks_scalar(const float* x, size_t cols, int8_t* q, float* dx) {
  const size_t blocks = (cols + kBlock - 1) / kBlock;
  constexpr float kMagic = 12582912.0f;  // 1.5 · 2^23
  for (size_t b = 0; b < blocks; ++b) {
    const size_t c0 = b * kBlock, c1 = std::min(cols, c0 + kBlock);
    float amax = 0.0f, poison = 0.0f;
    for (size_t c = c0; c < c1; ++c) {
      amax = std::max(amax, std::fabs(x[c]));
      poison += x[c] * 0.0f;  // NaN if any value is Inf or NaN
    }
    const float d = amax / 127.0f;
    if (poison != 0.0f || !(d > 0.0f)) {
      // Inf/NaN: q 0 and dx NaN, so the outputs become NaN as the f32 path's would; all zero: q 0, dx 0.
      dx[b] = poison != 0.0f ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      std::fill(q + c0, q + c1, int8_t{0});
      continue;
    }
    dx[b] = d;
    const float inverse = 127.0f / amax;
    for (size_t c = c0; c < c1; ++c) {
      const float product = x[c] * inverse;
      const float v = (product + kMagic) - kMagic;
      q[c] = static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, v)));
    }
  }
}

// A 4-bit non-integer grid whose 16 levels are integers times 2^−f, f ≤ 6, spanning at most 64 (e2m1:
// f = 1, 2v from −12 to 12): map[code] = 2^f·v − min, zero = −min, factor = 2^−f. The 4-bit kernels'
// int16 pair sums then stay below 4·64·127 < 2^15, as for integer codes. False for other grids.
namespace {
bool find_small_integer_levels(const Format& f, uint8_t* map, int& zero, float& factor) {
  for (int fraction = 0; fraction <= 6; ++fraction) {
    double t[16], lo = 0, hi = 0;
    bool integral = true;
    for (uint32_t code = 0; code < 16 && integral; ++code) {
      const double v = f.decode(code);
      if (!std::isfinite(v)) return false;
      t[code] = std::ldexp(v, fraction);
      integral = t[code] == std::nearbyint(t[code]);
      lo = code == 0 ? t[code] : std::min(lo, t[code]);
      hi = code == 0 ? t[code] : std::max(hi, t[code]);
    }
    if (!integral) continue;
    if (hi - lo > 64) return false;
    for (uint32_t code = 0; code < 16; ++code) map[code] = static_cast<uint8_t>(t[code] - lo);
    zero = static_cast<int>(-lo);
    factor = static_cast<float>(std::ldexp(1.0, -fraction));
    return true;
  }
  return false;
}
}  // namespace

bool small_integer_levels(const Format& f, uint8_t* map, int& zero, float& factor) {
  if (f.bits() != 4 || f.kind() == Format::Kind::kInt) return false;
  // Asked on every layer call (the support checks and the argument setup): the last format's answer is
  // kept per thread, where decoding its 16 levels again cost ~300 ns a time.
  struct Memo {
    std::optional<Format> format;
    bool found = false;
    uint8_t map[16] = {};
    int zero = 0;
    float factor = 1.0f;
  };
  thread_local Memo memo;
  if (!(memo.format && *memo.format == f)) {
    memo.found = find_small_integer_levels(f, memo.map, memo.zero, memo.factor);
    memo.format = f;
  }
  if (memo.found) {
    std::copy(memo.map, memo.map + 16, map);
    zero = memo.zero;
    factor = memo.factor;
  }
  return memo.found;
}

}  // namespace int8_detail

namespace {
using int8_detail::Args;
constexpr const char* kWhere = "int8 GEMV";

bool cpu_has(Int8Kernel k) {
#if defined(__x86_64__) || defined(__i386__)
  switch (k) {
    case Int8Kernel::kScalar:
      return true;
    case Int8Kernel::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Int8Kernel::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && cpu_has(Int8Kernel::kAvx2);
    case Int8Kernel::kAvx512Vnni:
      return cpu_has(Int8Kernel::kAvx512) && __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return k == Int8Kernel::kScalar;
#endif
}

// Columns per vector step (0 for the scalar kernel).
size_t step_cols(Int8Kernel k, int bits) {
  switch (k) {
    case Int8Kernel::kScalar:
      return 0;
    case Int8Kernel::kAvx2:
      return bits <= 4 ? 64 : 32;
    case Int8Kernel::kAvx512:
    case Int8Kernel::kAvx512Vnni:
      return bits <= 4 ? 128 : 64;
  }
  return 0;
}

// Everything but the per-token parts, from the tensor.
Args tensor_args(const QuantizedTensor& w) {
  Args a;
  a.codes = w.packed_codes().data();
  a.row_bytes = static_cast<size_t>(w.row_bytes());
  a.cols = static_cast<size_t>(w.cols());
  a.group = static_cast<size_t>(w.group_size());
  a.groups = static_cast<size_t>(w.groups_per_row());
  a.bits = w.bits();
  a.run_cols = a.bits <= 4 ? 8 : 4;  // 2- and 3-bit codes are widened to the 4-bit kernels' nibbles
  a.runs = (a.cols + a.run_cols - 1) / a.run_cols;
  a.offset = a.bits == 8 ? 128 : 0;
  a.scales = w.scales().data();
  const Format& f = w.scheme().element;
  if (f.kind() != Format::Kind::kInt) {
    a.mapped = int8_detail::small_integer_levels(f, a.map, a.implicit_zero, a.factor);
  } else if (f.twos_complement()) {
    a.flip = static_cast<uint8_t>(1u << (a.bits - 1));
    a.implicit_zero = a.flip;
    a.factor = static_cast<float>(std::ldexp(1.0, -f.fraction_bits()));
  }
  a.zeros = w.zero_points().empty() ? nullptr : w.zero_points().data();
  a.mins = w.mins().empty() ? nullptr : w.mins().data();
  // k_g = (o − z_g)·s'_g + m_g is structurally zero only for 8-bit two's complement codes (z = o = 128).
  a.has_correction = a.zeros != nullptr || a.mins != nullptr || a.implicit_zero != a.offset;
  return a;
}

void check_range(const QuantizedTensor& w, int64_t row_begin, int64_t row_end) {
  require(row_begin >= 0 && row_begin <= row_end && row_end <= w.rows(), kWhere,
          "rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ") outside a tensor of " +
              std::to_string(w.rows()) + " rows");
}

// Whether x's preparation runs its AVX-512BW helpers (the same values as the scalar code).
bool prepare_on_avx512() {
  static const bool avx512 = cpu_has(Int8Kernel::kAvx512);
  return avx512;
}

void round_blocks(const float* x, size_t cols, std::vector<int8_t>& q, std::vector<float>& dx) {
  q.resize(cols);
  dx.resize((cols + int8_detail::kBlock - 1) / int8_detail::kBlock);
  int8_detail::round_blocks(x, cols, q.data(), dx.data());
}

void run_sums(const int8_t* q, size_t cols, size_t run_cols, int32_t* sums) {
#if defined(__x86_64__) || defined(__i386__)
  if (run_cols == 8 && prepare_on_avx512()) return int8_detail::run_sums8_avx512(q, cols, sums);
#endif
  int8_detail::run_sums_scalar(q, cols, run_cols, sums);
}

void permute_steps(const int8_t* natural, size_t cols, size_t step, int8_t* out) {
#if defined(__x86_64__) || defined(__i386__)
  if (step == 128 && prepare_on_avx512()) return int8_detail::permute_steps_avx512(natural, cols, out);
#endif
  int8_detail::permute_steps_scalar(natural, cols, step, out);
}
}  // namespace

namespace int8_detail {
void run_sums_scalar(const int8_t* q, size_t cols, size_t run_cols, int32_t* sums) {
  for (size_t c0 = 0; c0 < cols; c0 += run_cols) {
    int32_t sum = 0;
    for (size_t c = c0; c < std::min(cols, c0 + run_cols); ++c) sum += q[c];
    sums[c0 / run_cols] = sum;
  }
}

void permute_steps_scalar(const int8_t* natural, size_t cols, size_t step, int8_t* out) {
  std::copy(natural, natural + cols, out);
  const auto permute = [&](size_t c, size_t width) {
    for (size_t i = 0; i < width / 2; ++i) {
      out[c + i] = natural[c + 2 * i];
      out[c + width / 2 + i] = natural[c + 2 * i + 1];
    }
  };
  size_t c = 0;
  for (; c + step <= cols; c += step) permute(c, step);
  if (step == 128 && c + 64 <= cols) permute(c, 64);  // AVX-512's trailing half step
}

void round_blocks(const float* x, size_t cols, int8_t* q, float* dx) {
#if defined(__x86_64__) || defined(__i386__)
  if (prepare_on_avx512()) return round_blocks_avx512(x, cols, q, dx);
#endif
  round_blocks_scalar(x, cols, q, dx);
}
}  // namespace int8_detail

std::string int8_kernel_name(Int8Kernel kernel) {
  switch (kernel) {
    case Int8Kernel::kScalar:
      return "scalar";
    case Int8Kernel::kAvx2:
      return "avx2";
    case Int8Kernel::kAvx512:
      return "avx512bw";
    case Int8Kernel::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

std::vector<Int8Kernel> int8_kernels_available() {
  std::vector<Int8Kernel> out;
  for (Int8Kernel k : {Int8Kernel::kScalar, Int8Kernel::kAvx2, Int8Kernel::kAvx512, Int8Kernel::kAvx512Vnni})
    if (cpu_has(k)) out.push_back(k);
  return out;
}

Int8Kernel int8_kernel_best() {
  static const Int8Kernel best = int8_kernels_available().back();
  return best;
}

bool int8_gemv_supported(const QuantizedTensor& w) {
  // The integer grids the f32 packed kernel reads (zero points, two's complement or a float minimum,
  // no g_idx), at 4 or 8 bits, and 4-bit grids of small integer levels (e2m1), with groups of a multiple
  // of 16 columns (or one per row).
  const Format& f = w.scheme().element;
  const bool integer = f.kind() == Format::Kind::kInt && (w.bits() == 2 || w.bits() == 3 || w.bits() == 4 || w.bits() == 8);
  if (!integer && !int8_detail::has_small_integer_levels(f)) return false;
  // Groups of whole runs within the 32-column activation blocks: multiples of 16 (NVFP4's 16 included).
  if (w.groups_per_row() > 1 && w.group_size() % 16 != 0) return false;
  return packed_gemv_supported(w);
}

std::vector<float> int8_rounded_activations(const float* x, int64_t cols) {
  std::vector<int8_t> q;
  std::vector<float> dx;
  round_blocks(x, static_cast<size_t>(cols), q, dx);
  std::vector<float> out(static_cast<size_t>(cols));
  for (size_t c = 0; c < out.size(); ++c) out[c] = dx[c / int8_detail::kBlock] * static_cast<float>(q[c]);
  return out;
}

void int8_gemv_prepare(const QuantizedTensor& w, const float* x, Int8GemvInput& input, Int8Kernel kernel) {
  if (!int8_gemv_supported(w)) throw Error(kWhere, "no int8 kernel for " + w.scheme().to_string());
  if (!cpu_has(kernel)) throw Error(kWhere, "the " + int8_kernel_name(kernel) + " kernel does not run on this CPU");
  const Args a = tensor_args(w);
  input.kernel = kernel;
  input.cols = w.cols();
  input.groups = w.groups_per_row();
  input.group_size = w.group_size();
  input.bits = w.bits();
  thread_local std::vector<int8_t> natural;
  thread_local std::vector<float> dx;
  round_blocks(x, a.cols, natural, dx);
  // Σq per run (runs never straddle a block, nor a group of 16 or more).
  input.run_bias.resize(a.runs);
  run_sums(natural.data(), a.cols, a.run_cols, input.run_bias.data());
  input.run_scale.resize(a.runs);
  // X_g = Σ_{b} dx_b · Σ_{c in b ∩ g} q_c, left to right: one segment per block when groups are whole
  // blocks, two per block for groups of 16 (the integer segment sums are exact in any order).
  input.group_x.assign(a.groups, 0.0f);
  size_t segment_block = 0, segment_group = 0;
  int32_t segment_sum = 0;
  for (size_t run = 0; run < a.runs; ++run) {
    const size_t block = run * a.run_cols / int8_detail::kBlock;
    const size_t group = a.groups <= 1 ? 0 : run * a.run_cols / a.group;
    if (block != segment_block || group != segment_group) {
      input.group_x[segment_group] += dx[segment_block] * static_cast<float>(segment_sum);
      segment_block = block, segment_group = group, segment_sum = 0;
    }
    input.run_scale[run] = dx[block];
    segment_sum += input.run_bias[run];
    input.run_bias[run] *= 128;
  }
  if (a.runs > 0) input.group_x[segment_group] += dx[segment_block] * static_cast<float>(segment_sum);
  // The kernel's order: 4-bit steps read the even columns' q, then the odd columns'.
  const size_t step = step_cols(kernel, a.bits);
  input.q.resize(a.cols);
  if (a.bits <= 4 && step != 0 && int8_detail::vector_scales(a, step))
    permute_steps(natural.data(), a.cols, step, input.q.data());
  else
    std::copy(natural.begin(), natural.end(), input.q.begin());
}

namespace {
void check_input(const QuantizedTensor& w, const Int8GemvInput& input) {
  require(input.cols == w.cols() && input.groups == w.groups_per_row() && input.group_size == w.group_size() &&
              input.bits == w.bits() && input.q.size() == static_cast<size_t>(w.cols()),
          kWhere, "input was prepared for another tensor layout");
}

int8_detail::TokenX token_of(const Int8GemvInput& input, float* y) {
  return {input.q.data(), input.run_scale.data(), input.run_bias.data(), input.group_x.data(), y};
}

// Rows [r0, r1) of every token in `tok` (all prepared for `kernel`), on that kernel.
void run_rows(const QuantizedTensor& w, Int8Kernel kernel, const int8_detail::TokenX* tok, size_t tokens, size_t r0,
              size_t r1) {
  Args a = tensor_args(w);
  const size_t step = step_cols(kernel, a.bits);
  a.step_cols = step != 0 && int8_detail::vector_scales(a, step) ? step : 0;
#if defined(__x86_64__) || defined(__i386__)
  if (a.step_cols != 0 && kernel == Int8Kernel::kAvx512) return int8_detail::rows_avx512(a, tok, tokens, r0, r1);
  if (a.step_cols != 0 && kernel == Int8Kernel::kAvx512Vnni) return int8_detail::rows_avx512_vnni(a, tok, tokens, r0, r1);
#endif
  for (size_t t = 0; t < tokens; ++t) {
    a = int8_detail::with_token(a, tok[t]);
#if defined(__x86_64__) || defined(__i386__)
    if (a.step_cols != 0 && kernel == Int8Kernel::kAvx2) {
      int8_detail::rows_avx2(a, r0, r1, tok[t].y);
      continue;
    }
#endif
    for (size_t r = r0; r < r1; ++r) {
      float acc[int8_detail::kLanes] = {}, cor[int8_detail::kLanes] = {};
      tok[t].y[r] = int8_detail::finish_row(a, r, 0, 0, acc, cor);
    }
  }
}
}  // namespace

void int8_gemv_rows(const QuantizedTensor& w, const Int8GemvInput& input, int64_t row_begin, int64_t row_end,
                    float* y) {
  check_range(w, row_begin, row_end);
  if (!int8_gemv_supported(w)) throw Error(kWhere, "no int8 kernel for " + w.scheme().to_string());
  check_input(w, input);
  const int8_detail::TokenX tok = token_of(input, y);
  run_rows(w, input.kernel, &tok, 1, static_cast<size_t>(row_begin), static_cast<size_t>(row_end));
}

void int8_gemv_rows_reference(const QuantizedTensor& w, const float* x, int64_t row_begin, int64_t row_end,
                              float* y) {
  check_range(w, row_begin, row_end);
  Int8GemvInput input;
  int8_gemv_prepare(w, x, input, Int8Kernel::kScalar);
  int8_gemv_rows(w, input, row_begin, row_end, y);
}

}  // namespace lowbit
