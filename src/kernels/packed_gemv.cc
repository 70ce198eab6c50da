#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/packed_gemv.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/kernels/dense_gemv.h"
#include "lowbit/kernels/packed_gemv.h"
#include "lowbit/numerics/packing.h"

// Parts shared by every target (this file is compiled once per Highway target).
#ifndef LOWBIT_PACKED_GEMV_SHARED
#define LOWBIT_PACKED_GEMV_SHARED
namespace lowbit::packed_detail {

// What one call needs, resolved from the QuantizedTensor once.
struct Args {
  const uint8_t* codes = nullptr;  // rows x row_bytes
  size_t row_bytes = 0, cols = 0, group = 1, groups = 0;
  int bits = 0;
  bool is_signed = false;          // two's complement codes (symmetric grid)
  const float* scales = nullptr;   // rows x groups
  const uint8_t* zeros = nullptr;  // rows x groups, null for symmetric grids
  const float* xsum = nullptr;     // groups: Σ x over each group (asymmetric only)
  float factor = 1.0f;             // 2^-fraction_bits of the symmetric grid
  const float* levels = nullptr;   // table grids (NF4, IQ4_NL, e2m1: 16; FP8 e4m3: 256): the value each code stands for
  const float* x = nullptr;
  const float* xp = nullptr;       // x permuted for `xp_lanes`-wide 2-/4-bit steps, or null
  size_t xp_lanes = 0;
};

// How far ahead of the codes being read a row's kernel prefetches (bytes).
constexpr size_t kRowPrefetchBytes = 4096;

// 2-, 4- and 8-bit codes whose groups start on a byte boundary are read in place; other layouts
// are unpacked to one byte per code a row at a time.
inline bool direct_layout(const Args& a) {
  const bool aligned = a.groups <= 1 || (a.group * static_cast<size_t>(a.bits)) % 8 == 0;
  return aligned && (a.bits == 8 || a.bits == 4 || a.bits == 2);
}

// x in the order the 2-/4-bit steps of `lanes`-wide vectors read it: within each whole step of
// a group (per·lanes columns from the group's start, per = codes per byte), code j of byte i ↔
// column c + i·per + j goes to out[c + j·lanes + i]; columns outside whole steps stay in place.
// Only which x meets which code is rearranged: every product lands in the same lane as it would
// with an interleaved load of x.
inline void permute_x(const Args& a, size_t lanes, float* out) {
  const size_t per = static_cast<size_t>(8 / a.bits), step = per * lanes;
  std::copy(a.x, a.x + a.cols, out);
  for (size_t g = 0; g < a.groups; ++g) {
    const size_t c1 = std::min(a.cols, (g + 1) * a.group);
    for (size_t c = g * a.group; c + step <= c1; c += step)
      for (size_t i = 0; i < lanes; ++i)
        for (size_t j = 0; j < per; ++j) out[c + j * lanes + i] = a.x[c + i * per + j];
  }
}

// The integer a code stands for: itself (unsigned grid) or its `bits`-bit two's complement value.
inline int32_t value_of(uint32_t code, int bits, bool is_signed) {
  if (!is_signed) return static_cast<int32_t>(code);
  const int32_t m = 1 << (bits - 1);
  return (static_cast<int32_t>(code) ^ m) - m;
}

}  // namespace lowbit::packed_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using packed_detail::Args;
using packed_detail::value_of;

// One row. `row` holds the codes packed at kBits (2, 4 or 8) bits per code, `row_bytes` long;
// `xp` is x as the 2-/4-bit steps read it (permuted per step, see RowsSigned), x itself for 8;
// codes are `value_bits`-bit values (= kBits, except for a row unpacked to bytes first).
// Groups must start on a byte boundary (checked by the caller). The same operations, in the same
// order, as RowsDot<1> below, in one loop per group: measured faster for one row at a time
// (uint4 g128 11008 x 4096, one thread: 3.1 ms against 6.3 ms through segments).
template <int kBits, bool kSigned, class D>
HWY_INLINE float RowDot(D d, const Args& a, const float* xp, const uint8_t* row, size_t row_bytes, int value_bits,
                        const float* scales, const uint8_t* zeros) {
  const hn::Rebind<uint8_t, D> d8;
  const hn::RebindToSigned<D> di;
  const size_t lanes = hn::Lanes(d);
  const auto mask = hn::Set(di, (1 << kBits) - 1);
  const auto sign = hn::Set(di, 1 << (value_bits - 1));
  const float* x = a.x;
  // Two's complement b-bit → int32: (v ^ 2^(b-1)) − 2^(b-1).
  const auto to_float = [&](hn::Vec<hn::RebindToSigned<D>> v) {
    if constexpr (kSigned) v = hn::Sub(hn::Xor(v, sign), sign);
    return hn::ConvertTo(d, v);
  };
  auto yv = hn::Zero(d);
  float ys = 0.0f;
  for (size_t g = 0; g < a.groups; ++g) {
    const size_t c0 = g * a.group, c1 = std::min(a.cols, c0 + a.group);
    // Ask for the row's bytes well ahead (into the next rows at its end): without it the kernel
    // waited on DRAM once the weights were not cache-resident (synthetic 1B, uint4 g128, 2 threads:
    // 5.9 GB/s of weights, 10.9 tok/s; with it 13.3 GB/s, 24.8 tok/s). Prefetching past the buffer
    // cannot fault.
    hwy::Prefetch(row + c0 * kBits / 8 + packed_detail::kRowPrefetchBytes);
    auto acc0 = hn::Zero(d), acc1 = hn::Zero(d), acc2 = hn::Zero(d), acc3 = hn::Zero(d);
    size_t c = c0;
    // 8 and 4 bits: steps of four vectors first (four independent FMA chains), then of two.
    if constexpr (kBits == 8) {
      for (; c + 4 * lanes <= c1; c += 4 * lanes) {
        const auto v0 = hn::PromoteTo(di, hn::LoadU(d8, row + c));
        const auto v1 = hn::PromoteTo(di, hn::LoadU(d8, row + c + lanes));
        const auto v2 = hn::PromoteTo(di, hn::LoadU(d8, row + c + 2 * lanes));
        const auto v3 = hn::PromoteTo(di, hn::LoadU(d8, row + c + 3 * lanes));
        acc0 = hn::MulAdd(to_float(v0), hn::LoadU(d, x + c), acc0);
        acc1 = hn::MulAdd(to_float(v1), hn::LoadU(d, x + c + lanes), acc1);
        acc2 = hn::MulAdd(to_float(v2), hn::LoadU(d, x + c + 2 * lanes), acc2);
        acc3 = hn::MulAdd(to_float(v3), hn::LoadU(d, x + c + 3 * lanes), acc3);
      }
      for (; c + 2 * lanes <= c1; c += 2 * lanes) {
        const auto v0 = hn::PromoteTo(di, hn::LoadU(d8, row + c));
        const auto v1 = hn::PromoteTo(di, hn::LoadU(d8, row + c + lanes));
        acc0 = hn::MulAdd(to_float(v0), hn::LoadU(d, x + c), acc0);
        acc1 = hn::MulAdd(to_float(v1), hn::LoadU(d, x + c + lanes), acc1);
      }
    } else if constexpr (kBits == 4) {
      // `lanes` bytes = 2·lanes codes: low nibbles are the even columns, high nibbles the odd;
      // xp holds each step's x already split that way (evens, then odds).
      for (; c + 4 * lanes <= c1; c += 4 * lanes) {
        const auto b0 = hn::PromoteTo(di, hn::LoadU(d8, row + c / 2));
        const auto b1 = hn::PromoteTo(di, hn::LoadU(d8, row + c / 2 + lanes));
        acc0 = hn::MulAdd(to_float(hn::And(b0, mask)), hn::LoadU(d, xp + c), acc0);
        acc1 = hn::MulAdd(to_float(hn::ShiftRight<4>(b0)), hn::LoadU(d, xp + c + lanes), acc1);
        acc2 = hn::MulAdd(to_float(hn::And(b1, mask)), hn::LoadU(d, xp + c + 2 * lanes), acc2);
        acc3 = hn::MulAdd(to_float(hn::ShiftRight<4>(b1)), hn::LoadU(d, xp + c + 3 * lanes), acc3);
      }
      for (; c + 2 * lanes <= c1; c += 2 * lanes) {
        const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, row + c / 2));
        acc0 = hn::MulAdd(to_float(hn::And(bytes, mask)), hn::LoadU(d, xp + c), acc0);
        acc1 = hn::MulAdd(to_float(hn::ShiftRight<4>(bytes)), hn::LoadU(d, xp + c + lanes), acc1);
      }
    } else {
      static_assert(kBits == 2, "2, 4 or 8 bits");
      for (; c + 4 * lanes <= c1; c += 4 * lanes) {
        const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, row + c / 4));
        acc0 = hn::MulAdd(to_float(hn::And(bytes, mask)), hn::LoadU(d, xp + c), acc0);
        acc1 = hn::MulAdd(to_float(hn::And(hn::ShiftRight<2>(bytes), mask)), hn::LoadU(d, xp + c + lanes), acc1);
        acc2 = hn::MulAdd(to_float(hn::And(hn::ShiftRight<4>(bytes), mask)), hn::LoadU(d, xp + c + 2 * lanes), acc2);
        acc3 = hn::MulAdd(to_float(hn::ShiftRight<6>(bytes)), hn::LoadU(d, xp + c + 3 * lanes), acc3);
      }
    }
    float tail = 0.0f;
    for (; c < c1; ++c)
      tail += static_cast<float>(value_of(packed_code_at(row, row_bytes, c, kBits), value_bits, kSigned)) * x[c];
    const float s = scales[g] * a.factor;
    yv = hn::MulAdd(hn::Set(d, s), hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3)), yv);
    if (zeros != nullptr) tail -= static_cast<float>(zeros[g]) * a.xsum[g];
    ys += s * tail;
  }
  return hn::GetLane(hn::SumOfLanes(d, yv)) + ys;
}

// Columns [c, e) of one group of one row, into the row's four accumulators. `row` holds codes
// packed at kBits (2, 4 or 8) bits, `row_bytes` long, with `value_bits`-bit values (= kBits,
// except for a row unpacked to one byte per code first); `xp` is x as the 2-/4-bit steps read it
// (permuted per step, see RowsSigned), x itself for 8 bits. Steps of four vectors (four FMA
// chains) run to e; only in a group's last segment (e = group end) do steps of two vectors and
// then single columns (into `tail`) finish it. Callers cut groups into segments that are whole
// multiples of the four-vector step, so the operations a row goes through depend only on its
// shape — never on the segment size or on which rows are computed alongside.
template <int kBits, bool kSigned, class D>
HWY_INLINE void Segment(D d, const float* x, const float* xp, const uint8_t* row, size_t row_bytes, int value_bits,
                        size_t c, size_t e, bool last, hn::Vec<D>& acc0, hn::Vec<D>& acc1, hn::Vec<D>& acc2,
                        hn::Vec<D>& acc3, float& tail) {
  const hn::Rebind<uint8_t, D> d8;
  const hn::RebindToSigned<D> di;
  const size_t lanes = hn::Lanes(d);
  const auto mask = hn::Set(di, (1 << kBits) - 1);
  const auto sign = hn::Set(di, 1 << (value_bits - 1));
  // Two's complement b-bit → int32: (v ^ 2^(b-1)) − 2^(b-1).
  const auto to_float = [&](hn::Vec<hn::RebindToSigned<D>> v) {
    if constexpr (kSigned) v = hn::Sub(hn::Xor(v, sign), sign);
    return hn::ConvertTo(d, v);
  };
  if constexpr (kBits == 8) {
    for (; c + 4 * lanes <= e; c += 4 * lanes) {
      const auto v0 = hn::PromoteTo(di, hn::LoadU(d8, row + c));
      const auto v1 = hn::PromoteTo(di, hn::LoadU(d8, row + c + lanes));
      const auto v2 = hn::PromoteTo(di, hn::LoadU(d8, row + c + 2 * lanes));
      const auto v3 = hn::PromoteTo(di, hn::LoadU(d8, row + c + 3 * lanes));
      acc0 = hn::MulAdd(to_float(v0), hn::LoadU(d, x + c), acc0);
      acc1 = hn::MulAdd(to_float(v1), hn::LoadU(d, x + c + lanes), acc1);
      acc2 = hn::MulAdd(to_float(v2), hn::LoadU(d, x + c + 2 * lanes), acc2);
      acc3 = hn::MulAdd(to_float(v3), hn::LoadU(d, x + c + 3 * lanes), acc3);
    }
    if (!last) return;
    for (; c + 2 * lanes <= e; c += 2 * lanes) {
      const auto v0 = hn::PromoteTo(di, hn::LoadU(d8, row + c));
      const auto v1 = hn::PromoteTo(di, hn::LoadU(d8, row + c + lanes));
      acc0 = hn::MulAdd(to_float(v0), hn::LoadU(d, x + c), acc0);
      acc1 = hn::MulAdd(to_float(v1), hn::LoadU(d, x + c + lanes), acc1);
    }
  } else if constexpr (kBits == 4) {
    // `lanes` bytes = 2·lanes codes: low nibbles are the even columns, high nibbles the odd;
    // xp holds each two-vector step's x already split that way (evens, then odds).
    for (; c + 4 * lanes <= e; c += 4 * lanes) {
      const auto b0 = hn::PromoteTo(di, hn::LoadU(d8, row + c / 2));
      const auto b1 = hn::PromoteTo(di, hn::LoadU(d8, row + c / 2 + lanes));
      acc0 = hn::MulAdd(to_float(hn::And(b0, mask)), hn::LoadU(d, xp + c), acc0);
      acc1 = hn::MulAdd(to_float(hn::ShiftRight<4>(b0)), hn::LoadU(d, xp + c + lanes), acc1);
      acc2 = hn::MulAdd(to_float(hn::And(b1, mask)), hn::LoadU(d, xp + c + 2 * lanes), acc2);
      acc3 = hn::MulAdd(to_float(hn::ShiftRight<4>(b1)), hn::LoadU(d, xp + c + 3 * lanes), acc3);
    }
    if (!last) return;
    for (; c + 2 * lanes <= e; c += 2 * lanes) {
      const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, row + c / 2));
      acc0 = hn::MulAdd(to_float(hn::And(bytes, mask)), hn::LoadU(d, xp + c), acc0);
      acc1 = hn::MulAdd(to_float(hn::ShiftRight<4>(bytes)), hn::LoadU(d, xp + c + lanes), acc1);
    }
  } else {
    static_assert(kBits == 2, "2, 4 or 8 bits");
    for (; c + 4 * lanes <= e; c += 4 * lanes) {
      const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, row + c / 4));
      acc0 = hn::MulAdd(to_float(hn::And(bytes, mask)), hn::LoadU(d, xp + c), acc0);
      acc1 = hn::MulAdd(to_float(hn::And(hn::ShiftRight<2>(bytes), mask)), hn::LoadU(d, xp + c + lanes), acc1);
      acc2 = hn::MulAdd(to_float(hn::And(hn::ShiftRight<4>(bytes), mask)), hn::LoadU(d, xp + c + 2 * lanes), acc2);
      acc3 = hn::MulAdd(to_float(hn::ShiftRight<6>(bytes)), hn::LoadU(d, xp + c + 3 * lanes), acc3);
    }
    if (!last) return;
  }
  for (; c < e; ++c)
    tail += static_cast<float>(value_of(packed_code_at(row, row_bytes, c, kBits), value_bits, kSigned)) * x[c];
}

// Columns per segment: a multiple of every four-vector step (at most 64 columns), small enough
// that the rows of a block advance together through memory (kRows streams in flight).


constexpr size_t kSegment = 256;

// kRows rows side by side (rows[k], scales[k], zeros[k] → out[k]); groups must start on a byte
// boundary (checked by the caller). Each row is computed exactly as it would be alone.
template <size_t kRows, int kBits, bool kSigned, class D>
HWY_INLINE void RowsDot(D d, const Args& a, const float* xp, const uint8_t* const* rows, size_t row_bytes,
                        int value_bits, const float* const* scales, const uint8_t* const* zeros, float* out) {
  hn::Vec<D> yv[kRows], acc[kRows][4];
  float ys[kRows], tail[kRows];
  for (size_t k = 0; k < kRows; ++k) {
    yv[k] = hn::Zero(d);
    ys[k] = 0.0f;
  }
  for (size_t g = 0; g < a.groups; ++g) {
    const size_t c0 = g * a.group, c1 = std::min(a.cols, c0 + a.group);
    for (size_t k = 0; k < kRows; ++k) {
      for (auto& v : acc[k]) v = hn::Zero(d);
      tail[k] = 0.0f;
      hwy::Prefetch(rows[k] + c0 * kBits / 8 + packed_detail::kRowPrefetchBytes);  // as RowDot
    }
    for (size_t c = c0; c < c1; c += kSegment) {
      const size_t e = std::min(c1, c + kSegment);
      for (size_t k = 0; k < kRows; ++k)
        Segment<kBits, kSigned>(d, a.x, xp, rows[k], row_bytes, value_bits, c, e, e == c1, acc[k][0], acc[k][1],
                                acc[k][2], acc[k][3], tail[k]);
    }
    for (size_t k = 0; k < kRows; ++k) {
      const float s = scales[k][g] * a.factor;
      yv[k] = hn::MulAdd(hn::Set(d, s), hn::Add(hn::Add(acc[k][0], acc[k][1]), hn::Add(acc[k][2], acc[k][3])), yv[k]);
      if (zeros[k] != nullptr) tail[k] -= static_cast<float>(zeros[k][g]) * a.xsum[g];
      ys[k] += s * tail[k];
    }
  }
  for (size_t k = 0; k < kRows; ++k) out[k] = hn::GetLane(hn::SumOfLanes(d, yv[k])) + ys[k];
}

// Direct layouts: blocks of kBlock rows, then one at a time.
template <int kBits, bool kSigned, class D>
void DirectRows(D d, const Args& a, const float* xp, size_t row_begin, size_t row_end, float* y) {
  // 8 bits: 4 rows (16 accumulators + 4 sums fit 32 vector registers; 2 rows where there are 16)
  // keep more weight streams in flight — measured 7.1 → 4.2 ms for 11008 x 4096 on one thread.
  // 2/4 bits: one row; blocks measured slower there (more work per byte, register pressure).
  constexpr size_t kBlock = kBits != 8 ? 1 : HWY_MAX_BYTES >= 64 ? 4 : 2;
  const uint8_t* rows[kBlock];
  const float* scales[kBlock];
  const uint8_t* zeros[kBlock];
  const auto point = [&](size_t k, size_t r) {
    rows[k] = a.codes + r * a.row_bytes;
    scales[k] = a.scales + r * a.groups;
    zeros[k] = a.zeros ? a.zeros + r * a.groups : nullptr;
  };
  size_t r = row_begin;
  if constexpr (kBlock == 1) {
    for (; r < row_end; ++r) {
      point(0, r);
      y[r] = RowDot<kBits, kSigned>(d, a, xp, rows[0], a.row_bytes, kBits, scales[0], zeros[0]);
    }
    return;
  }
  for (; r + kBlock <= row_end; r += kBlock) {
    for (size_t k = 0; k < kBlock; ++k) point(k, r + k);
    RowsDot<kBlock, kBits, kSigned>(d, a, xp, rows, a.row_bytes, kBits, scales, zeros, y + r);
  }
  for (; r < row_end; ++r) {
    point(0, r);
    RowsDot<1, kBits, kSigned>(d, a, xp, rows, a.row_bytes, kBits, scales, zeros, y + r);
  }
}

// 3-, 5-, 6- and 7-bit codes, read in place. Sixteen codes are exactly 2·bits bytes (≤ 14), so a
// step loads 16 bytes, copies them into every 128-bit block, and gives each 32-bit lane the two bytes
// holding its code (TableLookupBytesOr0: the byte index pattern repeats every 16 codes), shifted right
// by the code's bit offset and masked. Lanes < 16 (AVX2, SSE4) take the step in 16/lanes chunks, each
// with its own index and shift pattern. Per group: acc = Σ value·x over whole steps, the ragged rest
// scalar, then y += s·(acc − z·Σx) as RowDot. Groups must be whole steps (a multiple of 16, or one
// group per row); the caller checks.
inline bool odd_direct_layout(const Args& a) {
  const bool odd = a.bits == 3 || a.bits == 5 || a.bits == 6 || a.bits == 7;
  return odd && (a.groups <= 1 || a.group % 16 == 0);
}

#if HWY_TARGET != HWY_SCALAR  // byte shuffles and 16-level tables need 128-bit vectors
template <bool kSigned>
void OddRows(const Args& a, size_t row_begin, size_t row_end, float* y) {
  const hn::CappedTag<float, 16> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const hn::RebindToSigned<decltype(d)> di;
  const hn::Repartition<uint8_t, decltype(du)> d8;
  const size_t lanes = hn::Lanes(d), chunks = 16 / lanes;
  const int bits = a.bits;
  const size_t step_bytes = 2 * static_cast<size_t>(bits);
  // Per chunk: the byte-index pattern (lane j ← bytes k, k+1 of the 16 loaded) and the shifts.
  HWY_ALIGN uint8_t index[4][64];
  HWY_ALIGN uint32_t shift[4][16];
  const size_t block_lanes = std::min<size_t>(lanes, 4);  // 32-bit lanes per 128-bit block
  for (size_t q = 0; q < chunks; ++q)
    for (size_t j = 0; j < lanes; ++j) {
      const size_t code = q * lanes + j, bit = code * static_cast<size_t>(bits);
      const size_t at = (j % block_lanes) * 4 + (j / block_lanes) * 16;  // lane j's bytes in the vector
      index[q][at] = static_cast<uint8_t>(bit >> 3);
      index[q][at + 1] = static_cast<uint8_t>((bit >> 3) + 1);
      index[q][at + 2] = index[q][at + 3] = 0x80;  // zero
      shift[q][j] = static_cast<uint32_t>(bit & 7);
    }
  const auto mask = hn::Set(di, (1 << bits) - 1);
  const auto sign = hn::Set(di, 1 << (bits - 1));
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = a.codes + r * a.row_bytes;
    const float* scales = a.scales + r * a.groups;
    const uint8_t* zeros = a.zeros ? a.zeros + r * a.groups : nullptr;
    auto yv = hn::Zero(d);
    float ys = 0.0f;
    for (size_t g = 0; g < a.groups; ++g) {
      const size_t c0 = g * a.group, c1 = std::min(a.cols, c0 + a.group);
      hwy::Prefetch(row + c0 * static_cast<size_t>(bits) / 8 + packed_detail::kRowPrefetchBytes);  // as RowDot
      auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
      size_t c = c0;
      // Whole steps whose 16-byte load stays inside the row.
      for (; c + 16 <= c1 && (c / 16) * step_bytes + 16 <= a.row_bytes; c += 16) {
        const auto bytes = hn::LoadDup128(d8, row + (c / 16) * step_bytes);
        for (size_t q = 0; q < chunks; ++q) {
          const auto window = hn::BitCast(du, hn::TableLookupBytesOr0(bytes, hn::Load(d8, index[q])));
          auto v = hn::BitCast(di, hn::Shr(window, hn::Load(du, shift[q])));
          v = hn::And(v, mask);
          if constexpr (kSigned) v = hn::Sub(hn::Xor(v, sign), sign);
          const auto term = hn::ConvertTo(d, v);
          if (q % 2 == 0) acc0 = hn::MulAdd(term, hn::LoadU(d, a.x + c + q * lanes), acc0);
          else acc1 = hn::MulAdd(term, hn::LoadU(d, a.x + c + q * lanes), acc1);
        }
      }
      float tail = 0.0f;
      for (; c < c1; ++c)
        tail += static_cast<float>(value_of(packed_code_at(row, a.row_bytes, c, bits), bits, kSigned)) * a.x[c];
      const float sc = scales[g] * a.factor;
      yv = hn::MulAdd(hn::Set(d, sc), hn::Add(acc0, acc1), yv);
      if (zeros != nullptr) tail -= static_cast<float>(zeros[g]) * a.xsum[g];
      ys += sc * tail;
    }
    y[r] = hn::GetLane(hn::SumOfLanes(d, yv)) + ys;
  }
}

// The frame of the table kernels (LookupRows, Fp8Rows): y[r] = Σ_g s_g · dot_g, where
// group_dot(row, c0, c1, acc0, acc1) adds group g's vector steps into acc0/acc1 and returns the scalar
// rest; the codes are prefetched as RowDot does.
template <class D, class GroupDot>
void ScaledGroupRows(D d, const Args& a, int bits, size_t row_begin, size_t row_end, float* y, GroupDot&& group_dot) {
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = a.codes + r * a.row_bytes;
    const float* scales = a.scales + r * a.groups;
    auto yv = hn::Zero(d);
    float ys = 0.0f;
    for (size_t g = 0; g < a.groups; ++g) {
      const size_t c0 = g * a.group, c1 = std::min(a.cols, c0 + a.group);
      hwy::Prefetch(row + c0 * static_cast<size_t>(bits) / 8 + packed_detail::kRowPrefetchBytes);
      auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
      const float tail = group_dot(row, c0, c1, acc0, acc1);
      const float sc = scales[g];
      yv = hn::MulAdd(hn::Set(d, sc), hn::Add(acc0, acc1), yv);
      ys += sc * tail;
    }
    y[r] = hn::GetLane(hn::SumOfLanes(d, yv)) + ys;
  }
}

// 4-bit lookup grids (NF4, IQ4_NL): RowDot's 4-bit steps with each code's value taken from the 16
// levels in registers instead of converted — one TableLookupLanes where 16 floats fill a vector
// (AVX-512), else one per 16/lanes-level slice, merged by the code's slice. Groups must start on a
// byte boundary (even group sizes).
template <class D>
void LookupRows(D d, const Args& a, const float* xp, size_t row_begin, size_t row_end, float* y) {
  const hn::RebindToSigned<decltype(d)> di;
  const hn::Rebind<uint8_t, decltype(d)> d8;
  const size_t lanes = hn::Lanes(d), slices = 16 / lanes;
  using VF = hn::Vec<decltype(d)>;
  VF table[4];  // 16 levels in 16/lanes slices: at most 4 (128-bit vectors)
  for (size_t k = 0; k < slices; ++k) table[k] = hn::LoadU(d, a.levels + k * lanes);
  const auto low = hn::Set(di, static_cast<int32_t>(lanes - 1)), nibble = hn::Set(di, 15);
  const auto value = [&](hn::Vec<decltype(di)> code) {
    VF v = hn::TableLookupLanes(table[0], hn::IndicesFromVec(d, hn::And(code, low)));
    for (size_t k = 1; k < slices; ++k) {
      const auto in_slice = hn::RebindMask(d, hn::Gt(code, hn::Set(di, static_cast<int32_t>(k * lanes) - 1)));
      v = hn::IfThenElse(in_slice, hn::TableLookupLanes(table[k], hn::IndicesFromVec(d, hn::And(code, low))), v);
    }
    return v;
  };
  ScaledGroupRows(d, a, 4, row_begin, row_end, y, [&](const uint8_t* row, size_t c, size_t c1, auto& acc0, auto& acc1) {
    // `lanes` bytes = 2·lanes codes: low nibbles are the even columns, high nibbles the odd; xp
    // holds each step's x split that way (permute_x, as RowDot's 4-bit steps).
    for (; c + 2 * lanes <= c1; c += 2 * lanes) {
      const auto bytes = hn::PromoteTo(di, hn::LoadU(d8, row + c / 2));
      acc0 = hn::MulAdd(value(hn::And(bytes, nibble)), hn::LoadU(d, xp + c), acc0);
      acc1 = hn::MulAdd(value(hn::ShiftRight<4>(bytes)), hn::LoadU(d, xp + c + lanes), acc1);
    }
    float tail = 0.0f;
    for (; c < c1; ++c) tail += a.levels[packed_code_at(row, a.row_bytes, c, 4)] * a.x[c];
    return tail;
  });
}

// FP8 E4M3 (OCP, "FN": no Inf, NaN at S.1111.111) with one scale per group, each code widened in
// registers: its 7 exponent-and-mantissa bits placed at f32 bits 26..20 and that f32 multiplied by
// 2^(127-7) — exact for normals and subnormals alike, since an f32 subnormal times a power of two is
// — its sign moved to bit 31, and the NaN codes made NaN. Codes are bytes, so any group works.
void Fp8Rows(const Args& a, size_t row_begin, size_t row_end, float* y) {
  const hn::CappedTag<float, 16> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const hn::Rebind<uint8_t, decltype(d)> d8;
  const size_t lanes = hn::Lanes(d);
  const auto magnitude = hn::Set(du, 0x7Fu), sign = hn::Set(du, 0x80u);
  const auto rescale = hn::Set(d, 0x1p120f), nan = hn::Set(d, std::numeric_limits<float>::quiet_NaN());
  const auto value = [&](const uint8_t* codes) {
    const auto code = hn::PromoteTo(du, hn::LoadU(d8, codes));
    const auto m = hn::And(code, magnitude);
    const auto v = hn::Mul(hn::BitCast(d, hn::Or(hn::ShiftLeft<20>(m), hn::ShiftLeft<24>(hn::And(code, sign)))), rescale);
    return hn::IfThenElse(hn::RebindMask(d, hn::Eq(m, magnitude)), nan, v);
  };
  ScaledGroupRows(d, a, 8, row_begin, row_end, y, [&](const uint8_t* row, size_t c, size_t c1, auto& acc0, auto& acc1) {
    for (; c + 2 * lanes <= c1; c += 2 * lanes) {
      acc0 = hn::MulAdd(value(row + c), hn::LoadU(d, a.x + c), acc0);
      acc1 = hn::MulAdd(value(row + c + lanes), hn::LoadU(d, a.x + c + lanes), acc1);
    }
    for (; c + lanes <= c1; c += lanes) acc0 = hn::MulAdd(value(row + c), hn::LoadU(d, a.x + c), acc0);
    float tail = 0.0f;
    for (; c < c1; ++c) tail += a.levels[row[c]] * a.x[c];
    return tail;
  });
}
#endif

// Vector width of the 2-/4-bit steps on this target (the CappedTags of RowsSigned); 0 for 8 bits.
// Lanes of the 2-/4-bit steps (group: columns per scale, 0 for one per row). 4-bit lookup grids whose
// groups are not whole 16-lane steps of 32 columns but are of 16 (NVFP4) step 8 lanes at a time on
// AVX-512, so that their groups stay on the vector path (at 16 lanes every column was a scalar tail).
size_t StepLanes(int bits, size_t group, bool lookup) {
  if (bits == 4) {
    const size_t lanes = hn::Lanes(hn::CappedTag<float, 16>()), narrow = hn::Lanes(hn::CappedTag<float, 8>());
    if (lookup && group != 0 && group % (2 * lanes) != 0 && group % (2 * narrow) == 0) return narrow;
    return lanes;
  }
  if (bits == 2) return hn::Lanes(hn::CappedTag<float, 8>());
  return 0;
}

// x as the 2-/4-bit steps of `lanes`-wide vectors read it (packed_detail::permute_x): prepared once
// per token by the caller for this target's width, or here when it was prepared for another width.
const float* StepsX(const Args& a, size_t lanes) {
  if (a.xp != nullptr && a.xp_lanes == lanes) return a.xp;
  thread_local std::vector<float> permuted;
  permuted.resize(a.cols);
  packed_detail::permute_x(a, lanes, permuted.data());
  return permuted.data();
}

template <bool kSigned>
void RowsSigned(const Args& a, size_t row_begin, size_t row_end, float* y) {
  // Vector widths capped so that one step (2·lanes, 2·lanes, 4·lanes columns) is at most 32
  // columns: groups of 32 stay on the vector path on every target.
  const hn::ScalableTag<float> d8bit;
  const hn::CappedTag<float, 16> d4bit;
  const hn::CappedTag<float, 8> d2bit;
  const bool direct = packed_detail::direct_layout(a);
  thread_local std::vector<uint8_t> unpacked;
  if (!direct) unpacked.resize(a.cols);
  // 2- and 4-bit steps read x permuted.
  const float* xp = direct && a.bits < 8 ? StepsX(a, StepLanes(a.bits, 0, false)) : a.x;
  if (direct) {
    if (a.bits == 8) return DirectRows<8, kSigned>(d8bit, a, a.x, row_begin, row_end, y);
    if (a.bits == 4) return DirectRows<4, kSigned>(d4bit, a, xp, row_begin, row_end, y);
    return DirectRows<2, kSigned>(d2bit, a, xp, row_begin, row_end, y);
  }
#if HWY_TARGET != HWY_SCALAR
  if (odd_direct_layout(a)) return OddRows<kSigned>(a, row_begin, row_end, y);
#endif
  // Other widths and groupings (groups not starting on a byte, or not whole 16-code steps): one byte
  // per code, a row at a time.
  for (size_t r = row_begin; r < row_end; ++r) {
    unpack_bits(std::span<const uint8_t>(a.codes + r * a.row_bytes, a.row_bytes), a.bits,
                std::span<uint8_t>(unpacked));
    const uint8_t* row = unpacked.data();
    const float* scales = a.scales + r * a.groups;
    const uint8_t* zeros = a.zeros ? a.zeros + r * a.groups : nullptr;
    y[r] = RowDot<8, kSigned>(d8bit, a, a.x, row, a.cols, a.bits, scales, zeros);
  }
}

void PackedRows(const Args& a, size_t row_begin, size_t row_end, float* y) {
#if HWY_TARGET != HWY_SCALAR
  if (a.levels != nullptr && a.bits == 8) return Fp8Rows(a, row_begin, row_end, y);
  if (a.levels != nullptr) {
    const size_t lanes = StepLanes(4, a.groups > 1 ? a.group : 0, true);
    const hn::CappedTag<float, 16> d16;
    if (lanes == hn::Lanes(d16)) return LookupRows(d16, a, StepsX(a, lanes), row_begin, row_end, y);
    return LookupRows(hn::CappedTag<float, 8>(), a, StepsX(a, lanes), row_begin, row_end, y);
  }
#else
  if (a.levels != nullptr) {  // one lane: each code's value, a group at a time
    for (size_t r = row_begin; r < row_end; ++r) {
      const uint8_t* row = a.codes + r * a.row_bytes;
      float sum = 0.0f;
      for (size_t g = 0; g < a.groups; ++g) {
        const size_t c1 = std::min(a.cols, (g + 1) * a.group);
        float acc = 0.0f;
        for (size_t c = g * a.group; c < c1; ++c) acc += a.levels[packed_code_at(row, a.row_bytes, c, a.bits)] * a.x[c];
        sum += a.scales[r * a.groups + g] * acc;
      }
      y[r] = sum;
    }
    return;
  }
#endif
  if (a.is_signed) {
    RowsSigned<true>(a, row_begin, row_end, y);
  } else {
    RowsSigned<false>(a, row_begin, row_end, y);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {
HWY_EXPORT(PackedRows);
HWY_EXPORT(StepLanes);

namespace {
constexpr const char* kWhere = "packed GEMV";

void check_range(const QuantizedTensor& w, int64_t row_begin, int64_t row_end) {
  require(row_begin >= 0 && row_begin <= row_end && row_end <= w.rows(), kWhere,
          "rows [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ") outside a tensor of " +
              std::to_string(w.rows()) + " rows");
}

// Resolves the tensor and the prepared x into Args.
packed_detail::Args make_args(const QuantizedTensor& w, const PackedGemvInput& input) {
  packed_detail::Args a;
  a.codes = w.packed_codes().data();
  a.row_bytes = static_cast<size_t>(w.row_bytes());
  a.cols = static_cast<size_t>(w.cols());
  a.group = static_cast<size_t>(w.group_size());
  a.groups = static_cast<size_t>(w.groups_per_row());
  a.bits = w.bits();
  a.is_signed = w.scheme().element.twos_complement();
  a.scales = w.scales().data();
  a.x = input.x;
  if (a.is_signed) {
    a.factor = static_cast<float>(std::ldexp(1.0, -w.scheme().element.fraction_bits()));
  } else {
    a.zeros = w.zero_points().empty() ? nullptr : w.zero_points().data();  // none with a float minimum
    a.xsum = input.group_sums.data();
  }
  if (w.scheme().element.kind() == Format::Kind::kLookup) a.levels = w.scheme().element.levels().data();
  if (w.scheme().element.kind() == Format::Kind::kFloat && !input.code_values.empty()) a.levels = input.code_values.data();
  if (!input.permuted.empty()) {
    a.xp = input.permuted.data();
    a.xp_lanes = input.permuted_lanes;
  }
  return a;
}

void check_input(const QuantizedTensor& w, const PackedGemvInput& input) {
  // A float element's kernel reads the table prepared for that format (the fallback reads x only).
  const bool table_ok = w.scheme().element.kind() != Format::Kind::kFloat || input.code_format == w.scheme().element ||
                        !packed_gemv_supported(w);
  require(table_ok && input.x != nullptr &&
              input.cols == w.cols() && input.groups == w.groups_per_row() &&
              input.group_size == w.group_size() && input.bits == w.bits(),
          kWhere, "input was prepared for another tensor layout");
}

// A float minimum per group (ggml's Q4_1/Q5_1: value = code·scale + min) adds min·Σx over the group
// to the row's sum; the kernel itself runs the unsigned codes without zero points.
void add_group_minimums(const QuantizedTensor& w, const PackedGemvInput& input, int64_t row_begin, int64_t row_end,
                        float* y) {
  const size_t groups = static_cast<size_t>(w.groups_per_row());
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* mins = w.mins().data() + static_cast<size_t>(r) * groups;
    float sum = 0.0f;
    for (size_t g = 0; g < groups; ++g) sum += mins[g] * input.group_sums[g];
    y[r] += sum;
  }
}
}  // namespace

// 4-bit grids the lookup kernel runs by a 16-value table, without zero points, groups on bytes: lookup
// grids of 16 levels (NF4, IQ4_NL's codebook) and 4-bit floats (e2m1, the element of MXFP4 and NVFP4,
// here with one scale per group), whose table is each code's decoded value.
bool lookup_layout(const QuantizedTensor& w) {
  const Format& f = w.scheme().element;
  const bool table = (f.kind() == Format::Kind::kLookup && f.levels().size() == 16) ||
                     (f.kind() == Format::Kind::kFloat && !f.has_nan() && !f.has_inf());
  return table && w.bits() == 4 && w.g_idx().empty() && w.zero_points().empty() && !w.scheme().float_min &&
         (w.groups_per_row() <= 1 || w.group_size() % 2 == 0);
}

// FP8 E4M3 codes with one scale per group (Fp8Rows decodes exactly this format).
bool fp8_layout(const QuantizedTensor& w) {
  static const Format e4m3 = Format::e4m3();
  return w.scheme().element == e4m3 && w.g_idx().empty() && w.zero_points().empty() && !w.scheme().float_min;
}

bool packed_gemv_supported(const QuantizedTensor& w) {
  const Format& f = w.scheme().element;
  if (lookup_layout(w) || fp8_layout(w)) return true;
  if (!w.g_idx().empty() || f.kind() != Format::Kind::kInt || w.bits() < 1 || w.bits() > 8) return false;
  const size_t groups = static_cast<size_t>(w.rows() * w.groups_per_row());
  if (w.scheme().float_min) return !f.twos_complement() && w.zero_points().empty() && w.mins().size() == groups;
  // Symmetric grids decode through the two's complement value; unsigned ones carry zero points.
  return f.twos_complement() ? w.zero_points().empty() : w.zero_points().size() == groups;
}

void packed_gemv_prepare(const QuantizedTensor& w, const float* x, PackedGemvInput& input) {
  input.x = x;
  input.cols = w.cols();
  input.groups = w.groups_per_row();
  input.group_size = w.group_size();
  input.bits = w.bits();
  input.group_sums.clear();
  input.permuted.clear();
  input.permuted_lanes = 0;
  if (!packed_gemv_supported(w) || w.cols() == 0) return;
  // Float elements: each code's value, rebuilt only when the format changes. One input serves every
  // layer of a model, and e4m3's 256 decodes took 2 µs per call, most of a 576-wide layer's preparation.
  const Format& f = w.scheme().element;
  if (f.kind() == Format::Kind::kFloat && !(input.code_format == f && input.code_values.size() == f.code_count())) {
    input.code_values.clear();
    for (uint32_t code = 0; code < f.code_count(); ++code) input.code_values.push_back(f.decode(code));
    input.code_format = f;
  }
  const packed_detail::Args a = make_args(w, input);
  if (a.zeros != nullptr || !w.mins().empty()) {  // read only by zero points and float minimums
    // Σx per group, left to right: the same for every call with the same x.
    input.group_sums.assign(a.groups, 0.0f);
    for (size_t g = 0; g < a.groups; ++g) {
      const size_t c1 = std::min(a.cols, (g + 1) * a.group);
      float s = 0.0f;
      for (size_t c = g * a.group; c < c1; ++c) s += x[c];
      input.group_sums[g] = s;
    }
  }
  if (packed_detail::direct_layout(a) && a.bits < 8) {
    input.permuted_lanes = HWY_DYNAMIC_DISPATCH(StepLanes)(a.bits, a.groups > 1 ? a.group : 0, lookup_layout(w));
    input.permuted.resize(a.cols);
    packed_detail::permute_x(a, input.permuted_lanes, input.permuted.data());
  }
}

void packed_gemv_rows(const QuantizedTensor& w, const PackedGemvInput& input, int64_t row_begin, int64_t row_end,
                      float* y) {
  check_range(w, row_begin, row_end);
  check_input(w, input);
  if (row_begin == row_end) return;
  if (w.cols() == 0) {
    std::fill(y + row_begin, y + row_end, 0.0f);
    return;
  }
  if (!packed_gemv_supported(w)) {
    // Dequantize a row at a time and use the dense kernel (grouping-invariant, like this one).
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(w.cols()));
    for (int64_t r = row_begin; r < row_end; ++r) {
      w.dequantize_row(r, row);
      dense_gemv_rows(DType::kF32, row.data(), w.cols(), input.x, 0, 1, y + r);
    }
    return;
  }
  const packed_detail::Args a = make_args(w, input);
  HWY_DYNAMIC_DISPATCH(PackedRows)(a, static_cast<size_t>(row_begin), static_cast<size_t>(row_end), y);
  if (!w.mins().empty()) add_group_minimums(w, input, row_begin, row_end, y);
}

void packed_gemv_rows(const QuantizedTensor& w, const float* x, int64_t row_begin, int64_t row_end, float* y) {
  check_range(w, row_begin, row_end);
  thread_local PackedGemvInput input;
  packed_gemv_prepare(w, x, input);
  packed_gemv_rows(w, input, row_begin, row_end, y);
}

void packed_gemv_rows_reference(const QuantizedTensor& w, const float* x, int64_t row_begin, int64_t row_end,
                                float* y) {
  check_range(w, row_begin, row_end);
  if (!packed_gemv_supported(w)) throw Error(kWhere, "no packed kernel for " + w.scheme().to_string());
  PackedGemvInput input;
  packed_gemv_prepare(w, x, input);
  const packed_detail::Args a = make_args(w, input);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = a.codes + static_cast<size_t>(r) * a.row_bytes;
    float sum = 0.0f;
    for (size_t g = 0; g < a.groups; ++g) {
      const size_t c1 = std::min(a.cols, (g + 1) * a.group);
      float acc = 0.0f;
      for (size_t c = g * a.group; c < c1; ++c) {
        const uint32_t code = packed_code_at(row, a.row_bytes, c, a.bits);
        acc += (a.levels ? a.levels[code] : static_cast<float>(packed_detail::value_of(code, a.bits, a.is_signed))) * x[c];
      }
      const float s = w.scale(r, static_cast<int64_t>(g)) * a.factor;
      const float z = a.zeros ? static_cast<float>(w.zero_point(r, static_cast<int64_t>(g))) : 0.0f;
      sum += s * (acc - z * (a.zeros ? a.xsum[g] : 0.0f));
      if (!w.mins().empty()) sum += w.mins()[static_cast<size_t>(r) * a.groups + g] * a.xsum[g];
    }
    y[r] = sum;
  }
}

}  // namespace lowbit
#endif
