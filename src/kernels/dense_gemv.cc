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

template <class T>
void GemvRows(const T* weights, size_t in, const float* x, size_t row_begin, size_t row_end, float* y) {
  const hn::ScalableTag<float> df;
  const size_t lanes = hn::Lanes(df);
  for (size_t r = row_begin; r < row_end; ++r) {
    const T* w = weights + r * in;
    // Four independent accumulators hide the FMA latency.
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
    y[r] = sum;
  }
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
