#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/sparse24_gemv.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/cache_control.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/kernels/sparse24_gemv.h"

// Parts shared by every target (this file is compiled once per Highway target).
#ifndef LOWBIT_SPARSE24_GEMV_SHARED
#define LOWBIT_SPARSE24_GEMV_SHARED
namespace lowbit::sparse24_detail {

// What one call needs, resolved from the matrix once.
struct Args {
  const uint8_t* values = nullptr;  // rows x slots values of the value dtype
  const uint8_t* meta = nullptr;    // rows x meta_bytes (+ 8 bytes of padding at the end)
  size_t slots = 0, meta_bytes = 0, cols = 0;
  const float* scales = nullptr;    // rows x scale_groups (int8), else null
  size_t scale_group = 0, scale_groups = 1;  // float values: one group of all cols, no scale
  const float* x = nullptr;
};

// 64 bits of a row's metadata starting at bit `bit` (the array is padded so this never reads
// past it): slot s's position is bits [2s, 2s + 2) of the row.
inline uint64_t meta_bits(const uint8_t* row, size_t bit) {
  uint64_t word;
  std::memcpy(&word, row + bit / 8, sizeof(word));
  return word >> (bit % 8);
}

inline size_t slot_position(const uint8_t* row, size_t slot) { return (row[slot / 4] >> (2 * (slot % 4))) & 3u; }
inline size_t slot_column(const uint8_t* row, size_t slot) { return 4 * (slot / 2) + slot_position(row, slot); }

// A stored value as f32 (scalar tails and the reference).
inline float value_at(const float* v, size_t i) {
  float f;
  std::memcpy(&f, v + i, sizeof(f));
  return f;
}
inline float value_at(const hwy::float16_t* v, size_t i) {
  uint16_t h;
  std::memcpy(&h, v + i, sizeof(h));
  return f16_bits_to_f32(h);
}
inline float value_at(const hwy::bfloat16_t* v, size_t i) {
  uint16_t h;
  std::memcpy(&h, v + i, sizeof(h));
  return bf16_bits_to_f32(h);
}
inline float value_at(const int8_t* v, size_t i) { return static_cast<float>(v[i]); }

// Slots [s, e) of one row in order: Σ value · x[column] (the reference order).
template <class V>
inline float slot_sum(const V* values, const uint8_t* meta, const float* x, size_t s, size_t e) {
  float sum = 0.0f;
  for (; s < e; ++s) sum += value_at(values, s) * x[slot_column(meta, s)];
  return sum;
}

// Rows in the documented order, slot by slot: the reference, and the kernel on targets narrower
// than four lanes.
template <class V>
void rows_in_order(const Args& a, size_t row_begin, size_t row_end, float* y) {
  for (size_t r = row_begin; r < row_end; ++r) {
    const V* values = reinterpret_cast<const V*>(a.values) + r * a.slots;
    const uint8_t* meta = a.meta + r * a.meta_bytes;
    if (a.scales == nullptr) {
      y[r] = slot_sum(values, meta, a.x, 0, 2 * ((a.cols + 3) / 4));
      continue;
    }
    float sum = 0.0f;
    for (size_t g = 0; g < a.scale_groups; ++g) {
      const size_t c0 = g * a.scale_group, c1 = std::min(a.cols, c0 + a.scale_group);
      sum += a.scales[r * a.scale_groups + g] * slot_sum(values, meta, a.x, c0 / 2, 2 * ((c1 + 3) / 4));
    }
    y[r] = sum;
  }
}

}  // namespace lowbit::sparse24_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using sparse24_detail::Args;
using sparse24_detail::slot_sum;
using sparse24_detail::value_at;

#if HWY_TARGET != HWY_SCALAR

// N slots of one row starting at slot s, as f32.
template <class D>
HWY_INLINE hn::Vec<D> LoadValues(D d, const float* v, size_t s) {
  return hn::LoadU(d, v + s);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadValues(D d, const hwy::float16_t* v, size_t s) {
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, v + s));
}
template <class D>
HWY_INLINE hn::Vec<D> LoadValues(D d, const hwy::bfloat16_t* v, size_t s) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint16_t, D> du16;
  const auto bits = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(v) + s));
  return hn::BitCast(d, hn::ShiftLeft<16>(bits));
}
template <class D>
HWY_INLINE hn::Vec<D> LoadValues(D d, const int8_t* v, size_t s) {
  const hn::RebindToSigned<D> di;
  const hn::Rebind<int8_t, D> d8;
  return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, v + s)));
}

// Lane k of the result is x[4·(k/2) + position_k] of the 2N-value window lo:hi, `idx` holding
// 4·(k/2) + position_k. AVX-512 has the two-table permute as one instruction (indices 0..2N-1).
// Elsewhere lanes k < N/2 only ever read lo and the others only hi, so both tables are looked up
// with idx mod N (the caller's `base` is already reduced) and the halves joined.
template <class D>
HWY_INLINE hn::Vec<D> Gather2(D d, hn::Vec<D> lo, hn::Vec<D> hi, hn::Vec<hn::RebindToSigned<D>> idx) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  if constexpr (hn::MaxLanes(D()) == 16) return hn::Vec<D>{_mm512_permutex2var_ps(lo.raw, idx.raw, hi.raw)};
#endif
  const auto i = hn::IndicesFromVec(d, idx);
  return hn::ConcatUpperLower(d, hn::TableLookupLanes(hi, i), hn::TableLookupLanes(lo, i));
}

// Whether Gather2 takes indices 0..2N-1 (else mod N).
template <class D>
constexpr bool TwoTableIndices() {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  return hn::MaxLanes(D()) == 16;
#else
  return false;
#endif
}

// The per-lane constants of a step: shift 2k to bring slot k's position to bit 0, and the
// group offset 4·(k/2) of lane k in the x window (mod N unless the permute takes 2N indices).
template <class D>
struct StepConstants {
  hn::Vec<hn::RebindToUnsigned<D>> shift;
  hn::Vec<hn::RebindToSigned<D>> base, three;
  explicit StepConstants(D d) {
    const hn::RebindToSigned<D> di;
    const hn::RebindToUnsigned<D> du;
    const size_t n = hn::Lanes(d);
    const auto k = hn::Iota(di, 0);
    shift = hn::BitCast(du, hn::Add(k, k));
    auto group = hn::ShiftLeft<2>(hn::ShiftRight<1>(k));
    if (!TwoTableIndices<D>()) group = hn::And(group, hn::Set(di, static_cast<int32_t>(n - 1)));
    base = group;
    three = hn::Set(di, 3);
  }
};

// Products of N slots from slot s (even) of one row with the x window starting at column 2s, added
// to acc. kAligned: s is a multiple of 4, so the slots' 2N metadata bits start on a byte and are
// broadcast straight from memory (always for float values and int8 groups of a multiple of 8
// columns); otherwise they start mid-byte and are shifted into place first.
template <bool kAligned, class D, class V>
HWY_INLINE hn::Vec<D> StepProducts(D d, const StepConstants<D>& k, const V* values, const uint8_t* meta, size_t s,
                                   hn::Vec<D> xlo, hn::Vec<D> xhi, hn::Vec<D> acc) {
  const hn::RebindToSigned<D> di;
  const hn::RebindToUnsigned<D> du;
  uint32_t bits;
  if constexpr (kAligned) {
    std::memcpy(&bits, meta + s / 4, sizeof(bits));  // the array's padding covers the last row
  } else {
    bits = static_cast<uint32_t>(sparse24_detail::meta_bits(meta, 2 * s));
  }
  const auto word = hn::Set(du, bits);
  // (word >> 2k) & 3 | 4·(k/2): the bit fields are disjoint, so Or (one ternary-logic op on AVX-512).
  const auto pos = hn::And(hn::BitCast(di, word >> k.shift), k.three);
  const auto xg = Gather2(d, xlo, xhi, hn::Or(pos, k.base));
  return hn::MulAdd(LoadValues(d, values, s), xg, acc);
}

// Slots [s, limit) of a group for kRows rows in vector steps (two accumulators, then one more
// step if it fits); returns where the steps stopped. x is read in windows of 2N columns from 2s.
// With `ahead` (values and metadata of the next block of rows: kRows · slots / kRows · meta_bytes
// further on) each step also prefetches what the next block will read at the same place: a row's
// values span only a page or two, so the hardware prefetcher would restart on every block (measured
// 727 → 659 µs for f16 4096 x 4096 on one thread; no effect on the result).
template <bool kAligned, size_t kRows, class D, class V>
HWY_INLINE size_t GroupSteps(D d, const StepConstants<D>& k, const float* x, const V* const* values,
                             const uint8_t* const* meta, size_t s, size_t limit, size_t ahead_values,
                             size_t ahead_meta, hn::Vec<D>* acc0, hn::Vec<D>* acc1) {
  const size_t n = hn::Lanes(d);
  for (; s + 2 * n <= limit; s += 2 * n) {
    const float* xs = x + 2 * s;
    const auto x0 = hn::LoadU(d, xs), x1 = hn::LoadU(d, xs + n);
    const auto x2 = hn::LoadU(d, xs + 2 * n), x3 = hn::LoadU(d, xs + 3 * n);
    for (size_t i = 0; i < kRows; ++i) {
      if (ahead_values != 0) {
        hwy::Prefetch(values[i] + ahead_values + s);
        if ((s & 63) < 2 * n) hwy::Prefetch(meta[i] + ahead_meta + s / 4);  // 64 slots = 16 bytes
      }
      acc0[i] = StepProducts<kAligned>(d, k, values[i], meta[i], s, x0, x1, acc0[i]);
      acc1[i] = StepProducts<kAligned>(d, k, values[i], meta[i], s + n, x2, x3, acc1[i]);
    }
  }
  if (s + n <= limit) {
    const auto x0 = hn::LoadU(d, x + 2 * s), x1 = hn::LoadU(d, x + 2 * s + n);
    for (size_t i = 0; i < kRows; ++i) acc0[i] = StepProducts<kAligned>(d, k, values[i], meta[i], s, x0, x1, acc0[i]);
    s += n;
  }
  return s;
}

// kRows rows side by side (row r0 + i → out[i]); each row computed exactly as it would be alone:
// per scale group (one for float values) two accumulators over two-vector steps, one more vector
// step if it fits, then the remaining slots one by one; int8 groups folded in with their scale.
// `prefetch`: rows r0 + kRows .. r0 + 2·kRows - 1 exist and come next.
template <size_t kRows, class V, class D>
HWY_INLINE void RowsDot(D d, const StepConstants<D>& k, const Args& a, size_t r0, bool prefetch, float* out) {
  constexpr bool kScaled = std::is_same_v<V, int8_t>;
  const V* values[kRows];
  const uint8_t* meta[kRows];
  hn::Vec<D> yv[kRows], acc0[kRows], acc1[kRows];
  float ys[kRows];
  for (size_t i = 0; i < kRows; ++i) {
    values[i] = reinterpret_cast<const V*>(a.values) + (r0 + i) * a.slots;
    meta[i] = a.meta + (r0 + i) * a.meta_bytes;
    yv[i] = hn::Zero(d);
    ys[i] = 0.0f;
  }
  for (size_t g = 0; g < a.scale_groups; ++g) {
    const size_t c0 = g * a.scale_group, c1 = std::min(a.cols, c0 + a.scale_group);
    // Slots of the group: [c0/2, 2·ceil(c1/4)); a vector step at s reads x[2s, 2s + 2N), so
    // steps run while that window ends by c1 (never past the row's x).
    const size_t end = 2 * ((c1 + 3) / 4), limit = c1 / 2;
    size_t s = c0 / 2;
    for (size_t i = 0; i < kRows; ++i) acc0[i] = acc1[i] = hn::Zero(d);
    const size_t ahead_values = prefetch ? kRows * a.slots : 0, ahead_meta = kRows * a.meta_bytes;
    s = s % 4 == 0 ? GroupSteps<true, kRows>(d, k, a.x, values, meta, s, limit, ahead_values, ahead_meta, acc0, acc1)
                   : GroupSteps<false, kRows>(d, k, a.x, values, meta, s, limit, ahead_values, ahead_meta, acc0, acc1);
    for (size_t i = 0; i < kRows; ++i) {
      const float tail = s < end ? slot_sum(values[i], meta[i], a.x, s, end) : 0.0f;
      const auto acc = hn::Add(acc0[i], acc1[i]);
      if constexpr (kScaled) {
        const float scale = a.scales[(r0 + i) * a.scale_groups + g];
        yv[i] = hn::MulAdd(hn::Set(d, scale), acc, yv[i]);
        if (s < end) ys[i] += scale * tail;  // (adding scale · 0 would change nothing)
      } else {
        yv[i] = acc;
        ys[i] = tail;
      }
    }
  }
  for (size_t i = 0; i < kRows; ++i) out[i] = hn::GetLane(hn::SumOfLanes(d, yv[i])) + ys[i];
}

template <class V>
void Rows(const Args& a, size_t row_begin, size_t row_end, float* y) {
  using D = hn::ScalableTag<float>;
  const D d;
  if constexpr (hn::MaxLanes(D()) < 4) {
    // Too narrow for a group pair per step: the reference loop.
    return sparse24_detail::rows_in_order<V>(a, row_begin, row_end, y);
  } else {
    const StepConstants<D> k(d);
    // Several rows per pass share each x window and keep more weight streams in flight; 4 where
    // there are 32 vector registers, 2 where there are 16.
    constexpr size_t kBlock = HWY_MAX_BYTES >= 64 ? 4 : 2;
    size_t r = row_begin;
    for (; r + kBlock <= row_end; r += kBlock) RowsDot<kBlock, V>(d, k, a, r, r + 2 * kBlock <= row_end, y + r);
    for (; r < row_end; ++r) RowsDot<1, V>(d, k, a, r, false, y + r);
  }
}

#else  // HWY_SCALAR

template <class V>
void Rows(const Args& a, size_t row_begin, size_t row_end, float* y) {
  sparse24_detail::rows_in_order<V>(a, row_begin, row_end, y);
}

#endif

void RowsF32(const Args& a, size_t b, size_t e, float* y) { Rows<float>(a, b, e, y); }
void RowsF16(const Args& a, size_t b, size_t e, float* y) { Rows<hwy::float16_t>(a, b, e, y); }
void RowsBF16(const Args& a, size_t b, size_t e, float* y) { Rows<hwy::bfloat16_t>(a, b, e, y); }
void RowsI8(const Args& a, size_t b, size_t e, float* y) { Rows<int8_t>(a, b, e, y); }

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {
HWY_EXPORT(RowsF32);
HWY_EXPORT(RowsF16);
HWY_EXPORT(RowsBF16);
HWY_EXPORT(RowsI8);

namespace {
constexpr const char* kWhere = "sparse 2:4";

std::string format_value(float v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", static_cast<double>(v));
  return text;
}

std::string group_columns(int64_t q, int64_t cols) {
  return "columns " + std::to_string(4 * q) + ".." + std::to_string(std::min(cols, 4 * q + 4) - 1);
}

// Packs rows one at a time: `nonzero(r, c)` says whether (r, c) is stored, `store(r, c, slot)`
// writes its value into the slot. Checks 2:4 and fills the metadata.
template <class Nonzero, class Store>
void pack_rows(int64_t rows, int64_t cols, size_t meta_bytes, uint8_t* meta, Nonzero nonzero, Store store) {
  const int64_t groups = (cols + 3) / 4;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row_meta = meta + static_cast<size_t>(r) * meta_bytes;
    for (int64_t q = 0; q < groups; ++q) {
      const int64_t c0 = 4 * q, c1 = std::min(cols, c0 + 4);
      int kept = 0;
      for (int64_t c = c0; c < c1; ++c) {
        if (!nonzero(r, c)) continue;
        if (kept == 2) {
          int count = 0;
          for (int64_t k = c0; k < c1; ++k) count += nonzero(r, k) ? 1 : 0;
          throw Error(kWhere, "row " + std::to_string(r) + ", " + group_columns(q, cols) + " hold " +
                                  std::to_string(count) + " nonzeros (at most 2 per group of 4)");
        }
        const size_t slot = static_cast<size_t>(2 * q + kept++);
        store(r, c, slot);
        row_meta[slot / 4] |= static_cast<uint8_t>((c - c0) << (2 * (slot % 4)));
      }
    }
  }
}

void check_shape(int64_t rows, int64_t cols) {
  const std::string shape = "shape [" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
  require(rows >= 0 && cols >= 0, kWhere, shape + " is negative");
  require(cols == 0 || rows <= (int64_t{1} << 40) / cols, kWhere, shape + " is too large");
}

sparse24_detail::Args make_args(const Sparse24Matrix& w, const float* x) {
  sparse24_detail::Args a;
  a.values = w.values();
  a.meta = w.metadata();
  a.slots = static_cast<size_t>(w.slots_per_row());
  a.meta_bytes = static_cast<size_t>(w.metadata_row_bytes());
  a.cols = static_cast<size_t>(w.cols());
  a.scale_group = a.cols;
  if (w.value_dtype() == DType::kI8) {
    a.scales = w.scales();
    a.scale_group = static_cast<size_t>(w.scale_group_size());
    a.scale_groups = static_cast<size_t>(w.scale_groups_per_row());
  }
  a.x = x;
  return a;
}

void check_range(const Sparse24Matrix& w, int64_t row_begin, int64_t row_end) {
  require(row_begin >= 0 && row_begin <= row_end && row_end <= w.rows(), kWhere,
          "rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ") outside a matrix of " +
              std::to_string(w.rows()) + " rows");
}
}  // namespace

Sparse24Matrix Sparse24Matrix::from_dense(const float* dense, int64_t rows, int64_t cols, DType value_dtype) {
  require(value_dtype == DType::kF32 || value_dtype == DType::kF16 || value_dtype == DType::kBF16, kWhere,
          "values must be F32, F16 or BF16, not " + std::string(dtype_name(value_dtype)));
  check_shape(rows, cols);
  require(dense != nullptr || rows * cols == 0, kWhere, "no matrix given");
  Sparse24Matrix m;
  m.rows_ = rows;
  m.cols_ = cols;
  m.dtype_ = value_dtype;
  const size_t size = dtype_size(value_dtype), slots = static_cast<size_t>(m.slots_per_row());
  m.values_.assign(static_cast<size_t>(rows) * slots * size, 0);
  m.meta_.assign(static_cast<size_t>(rows * m.metadata_row_bytes()) + 8, 0);
  const auto at = [&](int64_t r, int64_t c) { return dense[static_cast<size_t>(r * cols + c)]; };
  pack_rows(
      rows, cols, static_cast<size_t>(m.metadata_row_bytes()), m.meta_.data(),
      [&](int64_t r, int64_t c) { return at(r, c) != 0.0f; },
      [&](int64_t r, int64_t c, size_t slot) {
        const float v = at(r, c);
        const auto fail = [&](const std::string& what) {
          throw Error(kWhere, "row " + std::to_string(r) + ", column " + std::to_string(c) + ": value " +
                                  format_value(v) + " " + what);
        };
        if (!std::isfinite(v)) fail("is not finite");
        uint8_t* out = m.values_.data() + (static_cast<size_t>(r) * slots + slot) * size;
        if (value_dtype == DType::kF32) {
          std::memcpy(out, &v, sizeof(v));
          return;
        }
        const uint16_t bits = value_dtype == DType::kF16 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v);
        const float back = value_dtype == DType::kF16 ? f16_bits_to_f32(bits) : bf16_bits_to_f32(bits);
        if (back != v) fail("is not exactly representable in " + std::string(dtype_name(value_dtype)));
        std::memcpy(out, &bits, sizeof(bits));
      });
  return m;
}

Sparse24Matrix Sparse24Matrix::from_quantized(const QuantizedTensor& w) {
  const Format& f = w.scheme().element;
  require(f.kind() == Format::Kind::kInt && f.bits() == 8 && f.twos_complement() && f.fraction_bits() == 0, kWhere,
          "needs an 8-bit two's complement integer grid without fraction bits, not " + w.scheme().to_string());
  require(w.zero_points().empty() && w.g_idx().empty(), kWhere, "zero points and g_idx are not supported");
  require(w.groups_per_row() <= 1 || w.group_size() % 4 == 0, kWhere,
          "group size " + std::to_string(w.group_size()) +
              " is not a multiple of 4 (a group of 4 columns would straddle two scales)");
  const int64_t rows = w.rows(), cols = w.cols();
  check_shape(rows, cols);
  Sparse24Matrix m;
  m.rows_ = rows;
  m.cols_ = cols;
  m.dtype_ = DType::kI8;
  m.scale_group_ = w.groups_per_row() <= 1 ? cols : w.group_size();
  m.scale_groups_ = w.groups_per_row();
  const size_t slots = static_cast<size_t>(m.slots_per_row());
  m.values_.assign(static_cast<size_t>(rows) * slots, 0);
  m.meta_.assign(static_cast<size_t>(rows * m.metadata_row_bytes()) + 8, 0);
  m.scales_.assign(w.scales().begin(), w.scales().end());
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  int64_t current = -1;
  const auto code = [&](int64_t r, int64_t c) {
    if (r != current) {
      w.codes_of_row(r, codes);
      current = r;
    }
    return codes[static_cast<size_t>(c)];
  };
  pack_rows(
      rows, cols, static_cast<size_t>(m.metadata_row_bytes()), m.meta_.data(),
      [&](int64_t r, int64_t c) { return code(r, c) != 0; },
      [&](int64_t r, int64_t c, size_t slot) { m.values_[static_cast<size_t>(r) * slots + slot] = code(r, c); });
  return m;
}

uint64_t Sparse24Matrix::storage_bytes() const {
  const uint64_t r = static_cast<uint64_t>(rows_);
  return r * static_cast<uint64_t>(slots_per_row()) * dtype_size(dtype_) +
         r * static_cast<uint64_t>(metadata_row_bytes()) + scales_.size() * sizeof(float);
}

std::vector<float> Sparse24Matrix::to_dense() const {
  std::vector<float> dense(static_cast<size_t>(rows_ * cols_));
  to_dense_rows(0, rows_, dense.data());
  return dense;
}

void Sparse24Matrix::to_dense_rows(int64_t row_begin, int64_t row_end, float* out) const {
  require(0 <= row_begin && row_begin <= row_end && row_end <= rows_, kWhere,
          "rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ") outside 0.." + std::to_string(rows_));
  std::fill(out, out + (row_end - row_begin) * cols_, 0.0f);
  const size_t slots = static_cast<size_t>(slots_per_row()), meta_bytes = static_cast<size_t>(metadata_row_bytes());
  for (size_t r = static_cast<size_t>(row_begin); r < static_cast<size_t>(row_end); ++r) {
    const uint8_t* meta = meta_.data() + r * meta_bytes;
    const uint8_t* row = values_.data() + r * slots * dtype_size(dtype_);
    float* dense = out + (r - static_cast<size_t>(row_begin)) * static_cast<size_t>(cols_);
    for (size_t s = 0; s < slots; ++s) {
      const size_t c = sparse24_detail::slot_column(meta, s);
      float v;
      switch (dtype_) {
        case DType::kF16: v = sparse24_detail::value_at(reinterpret_cast<const hwy::float16_t*>(row), s); break;
        case DType::kBF16: v = sparse24_detail::value_at(reinterpret_cast<const hwy::bfloat16_t*>(row), s); break;
        case DType::kI8: v = sparse24_detail::value_at(reinterpret_cast<const int8_t*>(row), s); break;
        default: v = sparse24_detail::value_at(reinterpret_cast<const float*>(row), s); break;
      }
      if (v == 0.0f) continue;  // an empty slot (a stored value is never zero)
      if (dtype_ == DType::kI8)
        v *= scales_[r * static_cast<size_t>(scale_groups_) + c / static_cast<size_t>(scale_group_)];
      dense[c] = v;
    }
  }
}

void sparse24_gemv_rows(const Sparse24Matrix& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  check_range(w, row_begin, row_end);
  if (row_begin == row_end) return;
  if (w.cols() == 0) {
    std::fill(y + row_begin, y + row_end, 0.0f);
    return;
  }
  const sparse24_detail::Args a = make_args(w, x);
  const size_t b = static_cast<size_t>(row_begin), e = static_cast<size_t>(row_end);
  switch (w.value_dtype()) {
    case DType::kF32: return HWY_DYNAMIC_DISPATCH(RowsF32)(a, b, e, y);
    case DType::kF16: return HWY_DYNAMIC_DISPATCH(RowsF16)(a, b, e, y);
    case DType::kBF16: return HWY_DYNAMIC_DISPATCH(RowsBF16)(a, b, e, y);
    default: return HWY_DYNAMIC_DISPATCH(RowsI8)(a, b, e, y);
  }
}

void sparse24_gemv_rows_reference(const Sparse24Matrix& w, const float* x, int64_t row_begin, int64_t row_end,
                                  float* y) {
  check_range(w, row_begin, row_end);
  if (w.cols() == 0) {
    std::fill(y + row_begin, y + row_end, 0.0f);
    return;
  }
  const sparse24_detail::Args a = make_args(w, x);
  const size_t b = static_cast<size_t>(row_begin), e = static_cast<size_t>(row_end);
  switch (w.value_dtype()) {
    case DType::kF32: return sparse24_detail::rows_in_order<float>(a, b, e, y);
    case DType::kF16: return sparse24_detail::rows_in_order<hwy::float16_t>(a, b, e, y);
    case DType::kBF16: return sparse24_detail::rows_in_order<hwy::bfloat16_t>(a, b, e, y);
    default: return sparse24_detail::rows_in_order<int8_t>(a, b, e, y);
  }
}

}  // namespace lowbit
#endif
