// Vectorized f16/bf16 <-> f32 conversion with Highway's runtime dispatch.
//
// f16 uses Highway's PromoteTo/DemoteTo (F16C where the CPU has it). bf16 narrowing is
// written with integer lanes so that it rounds to nearest-even on every target (the
// bias trick of f32_to_bf16_bits), independent of how a target implements DemoteTo.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/core/half.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "lowbit/core/half.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void F16ToF32(const uint16_t* in, float* out, size_t count) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const size_t lanes = hn::Lanes(df);
  const auto* in_h = reinterpret_cast<const hwy::float16_t*>(in);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, in_h + i)), df, out + i);
  for (; i < count; ++i) out[i] = f16_bits_to_f32(in[i]);
}

void F32ToF16(const float* in, uint16_t* out, size_t count) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const size_t lanes = hn::Lanes(df);
  auto* out_h = reinterpret_cast<hwy::float16_t*>(out);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, in + i)), dh, out_h + i);
  for (; i < count; ++i) out[i] = f32_to_f16_bits(in[i]);
}

void BF16ToF32(const uint16_t* in, float* out, size_t count) {
  const hn::ScalableTag<uint32_t> du;
  const hn::Rebind<uint16_t, decltype(du)> du16;
  const size_t lanes = hn::Lanes(du);
  auto* out_u = reinterpret_cast<uint32_t*>(out);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes)
    hn::StoreU(hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, in + i))), du, out_u + i);
  for (; i < count; ++i) out[i] = bf16_bits_to_f32(in[i]);
}

void F32ToBF16(const float* in, uint16_t* out, size_t count) {
  const hn::ScalableTag<uint32_t> du;
  const hn::Rebind<uint16_t, decltype(du)> du16;
  const size_t lanes = hn::Lanes(du);
  const auto* in_u = reinterpret_cast<const uint32_t*>(in);
  const auto abs_mask = hn::Set(du, 0x7FFFFFFFu);
  const auto inf_bits = hn::Set(du, 0x7F800000u);
  const auto quiet_bit = hn::Set(du, 0x00400000u);
  const auto bias = hn::Set(du, 0x7FFFu);
  const auto one = hn::Set(du, 1u);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    const auto bits = hn::LoadU(du, in_u + i);
    const auto is_nan = hn::Gt(hn::And(bits, abs_mask), inf_bits);
    const auto rounded = hn::Add(bits, hn::Add(bias, hn::And(hn::ShiftRight<16>(bits), one)));
    const auto result = hn::IfThenElse(is_nan, hn::Or(bits, quiet_bit), rounded);
    hn::StoreU(hn::TruncateTo(du16, hn::ShiftRight<16>(result)), du16, out + i);
  }
  for (; i < count; ++i) out[i] = f32_to_bf16_bits(in[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {
HWY_EXPORT(F16ToF32);
HWY_EXPORT(F32ToF16);
HWY_EXPORT(BF16ToF32);
HWY_EXPORT(F32ToBF16);

void convert_f16_to_f32(const uint16_t* in, float* out, size_t count) {
  HWY_DYNAMIC_DISPATCH(F16ToF32)(in, out, count);
}
void convert_f32_to_f16(const float* in, uint16_t* out, size_t count) {
  HWY_DYNAMIC_DISPATCH(F32ToF16)(in, out, count);
}
void convert_bf16_to_f32(const uint16_t* in, float* out, size_t count) {
  HWY_DYNAMIC_DISPATCH(BF16ToF32)(in, out, count);
}
void convert_f32_to_bf16(const float* in, uint16_t* out, size_t count) {
  HWY_DYNAMIC_DISPATCH(F32ToBF16)(in, out, count);
}
}  // namespace lowbit
#endif
