#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels/dense_gemv.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/kernels/dense_gemv.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Loads Lanes(df) weights starting at `w + i` as f32.
template <class D>
HWY_INLINE hn::Vec<D> LoadWidened(D df, const float* w, size_t i) {
  return hn::LoadU(df, w + i);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadWidened(D df, const hwy::bfloat16_t* w, size_t i) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint16_t, D> du16;
  const auto bits = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(w) + i));
  return hn::BitCast(df, hn::ShiftLeft<16>(bits));
}
template <class D>
HWY_INLINE hn::Vec<D> LoadWidened(D df, const hwy::float16_t* w, size_t i) {
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, w + i));
}

inline float scalar_weight(const float* w, size_t i) { return w[i]; }
inline float scalar_weight(const hwy::bfloat16_t* w, size_t i) {
  return bf16_bits_to_f32(reinterpret_cast<const uint16_t*>(w)[i]);
}
inline float scalar_weight(const hwy::float16_t* w, size_t i) {
  return f16_bits_to_f32(reinterpret_cast<const uint16_t*>(w)[i]);
}

// One row: four accumulators hide the FMA latency.
template <class T>
HWY_INLINE float DotRow(const T* w, size_t in, const float* x) {
  const hn::ScalableTag<float> df;
  const size_t lanes = hn::Lanes(df);
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  size_t i = 0;
  for (; i + 4 * lanes <= in; i += 4 * lanes) {
    a0 = hn::MulAdd(LoadWidened(df, w, i), hn::LoadU(df, x + i), a0);
    a1 = hn::MulAdd(LoadWidened(df, w, i + lanes), hn::LoadU(df, x + i + lanes), a1);
    a2 = hn::MulAdd(LoadWidened(df, w, i + 2 * lanes), hn::LoadU(df, x + i + 2 * lanes), a2);
    a3 = hn::MulAdd(LoadWidened(df, w, i + 3 * lanes), hn::LoadU(df, x + i + 3 * lanes), a3);
  }
  for (; i + lanes <= in; i += lanes) a0 = hn::MulAdd(LoadWidened(df, w, i), hn::LoadU(df, x + i), a0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < in; ++i) sum += scalar_weight(w, i) * x[i];
  return sum;
}

// Four rows at a time: each x vector is loaded once for four weight streams, and four
// independent streams keep more cache-line fetches in flight (decode is bandwidth-bound).
// Each row's sum is formed exactly as DotRow forms it, so results do not depend on how
// rows are grouped.
template <class T>
void GemvRows(const T* weights, size_t in, const float* x, size_t row_begin, size_t row_end, float* y) {
  const hn::ScalableTag<float> df;
  const size_t lanes = hn::Lanes(df);
  size_t r = row_begin;
  for (; r + 4 <= row_end; r += 4) {
    const T* w0 = weights + r * in;
    const T* w1 = w0 + in;
    const T* w2 = w1 + in;
    const T* w3 = w2 + in;
    // Per row the same four-accumulator split as DotRow (a, b, c, d = chunks 0..3 of 4·lanes).
    auto r0a = hn::Zero(df), r0b = hn::Zero(df), r0c = hn::Zero(df), r0d = hn::Zero(df);
    auto r1a = hn::Zero(df), r1b = hn::Zero(df), r1c = hn::Zero(df), r1d = hn::Zero(df);
    auto r2a = hn::Zero(df), r2b = hn::Zero(df), r2c = hn::Zero(df), r2d = hn::Zero(df);
    auto r3a = hn::Zero(df), r3b = hn::Zero(df), r3c = hn::Zero(df), r3d = hn::Zero(df);
    size_t i = 0;
    for (; i + 4 * lanes <= in; i += 4 * lanes) {
      const auto xa = hn::LoadU(df, x + i), xb = hn::LoadU(df, x + i + lanes);
      const auto xc = hn::LoadU(df, x + i + 2 * lanes), xd = hn::LoadU(df, x + i + 3 * lanes);
      r0a = hn::MulAdd(LoadWidened(df, w0, i), xa, r0a);
      r1a = hn::MulAdd(LoadWidened(df, w1, i), xa, r1a);
      r2a = hn::MulAdd(LoadWidened(df, w2, i), xa, r2a);
      r3a = hn::MulAdd(LoadWidened(df, w3, i), xa, r3a);
      r0b = hn::MulAdd(LoadWidened(df, w0, i + lanes), xb, r0b);
      r1b = hn::MulAdd(LoadWidened(df, w1, i + lanes), xb, r1b);
      r2b = hn::MulAdd(LoadWidened(df, w2, i + lanes), xb, r2b);
      r3b = hn::MulAdd(LoadWidened(df, w3, i + lanes), xb, r3b);
      r0c = hn::MulAdd(LoadWidened(df, w0, i + 2 * lanes), xc, r0c);
      r1c = hn::MulAdd(LoadWidened(df, w1, i + 2 * lanes), xc, r1c);
      r2c = hn::MulAdd(LoadWidened(df, w2, i + 2 * lanes), xc, r2c);
      r3c = hn::MulAdd(LoadWidened(df, w3, i + 2 * lanes), xc, r3c);
      r0d = hn::MulAdd(LoadWidened(df, w0, i + 3 * lanes), xd, r0d);
      r1d = hn::MulAdd(LoadWidened(df, w1, i + 3 * lanes), xd, r1d);
      r2d = hn::MulAdd(LoadWidened(df, w2, i + 3 * lanes), xd, r2d);
      r3d = hn::MulAdd(LoadWidened(df, w3, i + 3 * lanes), xd, r3d);
    }
    const size_t body = i;
    auto finish = [&](const T* w, decltype(r0a) a, decltype(r0a) b, decltype(r0a) c, decltype(r0a) d) {
      size_t k = body;
      for (; k + lanes <= in; k += lanes) a = hn::MulAdd(LoadWidened(df, w, k), hn::LoadU(df, x + k), a);
      float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a, b), hn::Add(c, d))));
      for (; k < in; ++k) sum += scalar_weight(w, k) * x[k];
      return sum;
    };
    y[r] = finish(w0, r0a, r0b, r0c, r0d);
    y[r + 1] = finish(w1, r1a, r1b, r1c, r1d);
    y[r + 2] = finish(w2, r2a, r2b, r2c, r2d);
    y[r + 3] = finish(w3, r3a, r3b, r3c, r3d);
  }
  for (; r < row_end; ++r) y[r] = DotRow(weights + r * in, in, x);
}

void GemvF32(const void* w, size_t in, const float* x, size_t b, size_t e, float* y) {
  GemvRows(static_cast<const float*>(w), in, x, b, e, y);
}
void GemvBF16(const void* w, size_t in, const float* x, size_t b, size_t e, float* y) {
  GemvRows(static_cast<const hwy::bfloat16_t*>(w), in, x, b, e, y);
}
void GemvF16(const void* w, size_t in, const float* x, size_t b, size_t e, float* y) {
  GemvRows(static_cast<const hwy::float16_t*>(w), in, x, b, e, y);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {
HWY_EXPORT(GemvF32);
HWY_EXPORT(GemvBF16);
HWY_EXPORT(GemvF16);

void dense_gemv_rows(DType dtype, const void* weights, int64_t in, const float* x, int64_t row_begin, int64_t row_end,
                     float* y) {
  const size_t n = static_cast<size_t>(in), b = static_cast<size_t>(row_begin), e = static_cast<size_t>(row_end);
  switch (dtype) {
    case DType::kF32: return HWY_DYNAMIC_DISPATCH(GemvF32)(weights, n, x, b, e, y);
    case DType::kBF16: return HWY_DYNAMIC_DISPATCH(GemvBF16)(weights, n, x, b, e, y);
    case DType::kF16: return HWY_DYNAMIC_DISPATCH(GemvF16)(weights, n, x, b, e, y);
    default: throw Error("dense GEMV needs F32, F16 or BF16 weights, not " + std::string(dtype_name(dtype)));
  }
}
}  // namespace lowbit
#endif
