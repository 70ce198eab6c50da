// Vectorized f16/bf16 <-> f32 conversion with Highway's runtime dispatch.
//
// f16 uses Highway's PromoteTo/DemoteTo only where the hardware converts (F16C, on the
// AVX2 and AVX-512 targets): Highway 1.0's emulation for the other targets (SSSE3, SSE4,
// EMU128, SCALAR) truncates instead of rounding to nearest-even and turns Inf/NaN into
// finite numbers (f32 Inf -> f16 32768, f16 Inf -> f32 65536). Those targets use the
// integer-lane versions below, which follow the scalar functions bit for bit. bf16
// narrowing is written with integer lanes on every target for the same reason (the
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

// Hardware f16 conversion (F16C: vcvtph2ps / vcvtps2ph with round-to-nearest-even).
#undef LOWBIT_NATIVE_F16
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
#define LOWBIT_NATIVE_F16 1
#else
#define LOWBIT_NATIVE_F16 0
#endif

void F16ToF32(const uint16_t* in, float* out, size_t count) {
  const hn::ScalableTag<float> df;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
#if LOWBIT_NATIVE_F16
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const auto* in_h = reinterpret_cast<const hwy::float16_t*>(in);
  for (; i + lanes <= count; i += lanes) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, in_h + i)), df, out + i);
#else
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint16_t, decltype(du)> du16;
  const auto zero = hn::Zero(du);
  const auto exponent_mask = hn::Set(du, 0x7C00u);
  auto* out_u = reinterpret_cast<uint32_t*>(out);
  for (; i + lanes <= count; i += lanes) {
    const auto h = hn::PromoteTo(du, hn::LoadU(du16, in + i));
    const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
    const auto exponent = hn::And(h, exponent_mask);
    const auto mantissa = hn::And(h, hn::Set(du, 0x3FFu));
    // Normal: move exponent and mantissa into place and rebias 15 -> 127.
    const auto normal = hn::Add(hn::ShiftLeft<13>(hn::And(h, hn::Set(du, 0x7FFFu))), hn::Set(du, 0x38000000u));
    // Subnormal or zero: mantissa * 2^-24, exact in f32.
    const auto subnormal = hn::BitCast(du, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, mantissa)), hn::Set(df, 0x1p-24f)));
    // Inf stays Inf; NaN keeps its payload and becomes quiet.
    const auto quiet = hn::IfThenZeroElse(hn::Eq(mantissa, zero), hn::Set(du, 0x00400000u));
    const auto special = hn::Or(hn::Or(hn::Set(du, 0x7F800000u), quiet), hn::ShiftLeft<13>(mantissa));
    const auto magnitude =
        hn::IfThenElse(hn::Eq(exponent, zero), subnormal, hn::IfThenElse(hn::Eq(exponent, exponent_mask), special, normal));
    hn::StoreU(hn::Or(magnitude, sign), du, out_u + i);
  }
#endif
  for (; i < count; ++i) out[i] = f16_bits_to_f32(in[i]);
}

void F32ToF16(const float* in, uint16_t* out, size_t count) {
  const hn::ScalableTag<float> df;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
#if LOWBIT_NATIVE_F16
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  auto* out_h = reinterpret_cast<hwy::float16_t*>(out);
  for (; i + lanes <= count; i += lanes) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, in + i)), dh, out_h + i);
#else
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint16_t, decltype(du)> du16;
  const auto one = hn::Set(du, 1u);
  for (; i + lanes <= count; i += lanes) {
    const auto bits = hn::BitCast(du, hn::LoadU(df, in + i));
    const auto sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000u));
    const auto magnitude = hn::And(bits, hn::Set(du, 0x7FFFFFFFu));
    // Normal: rebias 127 -> 15 and drop 13 mantissa bits, nearest-even (as the scalar code).
    const auto rebased = hn::Sub(magnitude, hn::Set(du, 0x38000000u));
    const auto normal =
        hn::ShiftRight<13>(hn::Add(rebased, hn::Add(hn::Set(du, 0xFFFu), hn::And(hn::ShiftRight<13>(rebased), one))));
    // Below 2^-14: adding 0.5f leaves units of 2^-24 in the low mantissa bits, rounded to
    // nearest-even by the FPU (ties, and the carry into the smallest normal, included).
    const auto subnormal =
        hn::Sub(hn::BitCast(du, hn::Add(hn::BitCast(df, magnitude), hn::Set(df, 0.5f))), hn::Set(du, 0x3F000000u));
    const auto nan = hn::Or(hn::Set(du, 0x7E00u), hn::And(hn::ShiftRight<13>(magnitude), hn::Set(du, 0x3FFu)));
    auto result = hn::IfThenElse(hn::Lt(magnitude, hn::Set(du, 0x38800000u)), subnormal, normal);
    result = hn::IfThenElse(hn::Gt(magnitude, hn::Set(du, 0x477FEFFFu)), hn::Set(du, 0x7C00u), result);  // >= 65520
    result = hn::IfThenElse(hn::Gt(magnitude, hn::Set(du, 0x7F800000u)), nan, result);
    hn::StoreU(hn::TruncateTo(du16, hn::Or(result, sign)), du16, out + i);
  }
#endif
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
