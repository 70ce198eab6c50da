#include "lowbit/compress/quantized_tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/numerics/packing.h"

namespace lowbit {

namespace {

constexpr const char* kWhere = "quantized tensor";

// Whether a group's scale (as held: the stored value times the tensor scale) is what `dtype` stores.
// FP8 scales are unsigned here (UE4M3, E8M0), as NVFP4 and MX store them.
bool representable(float value, DType dtype, float tensor_scale = 1.0f) {
  switch (dtype) {
    case DType::kF32: return true;
    case DType::kF16: return f16_bits_to_f32(f32_to_f16_bits(value)) == value;
    case DType::kBF16: return bf16_bits_to_f32(f32_to_bf16_bits(value)) == value;
    case DType::kF8E4M3: {
      const float stored = value / tensor_scale;  // exact: the tensor scale is a power of two
      static const Format ue4m3 = Format::ue4m3();
      return stored >= 0 && ue4m3.decode(ue4m3.encode(stored)) == stored;
    }
    case DType::kF8E8M0: {
      static const Format ue8m0 = Format::ue8m0();
      return value > 0 && ue8m0.decode(ue8m0.encode(value)) == value;
    }
    default: return false;
  }
}

// A power of two whose multiples of every UE4M3 value are exact normal f32 numbers (2^-9 · S ≥ 2^-126
// and 448 · S finite): what QuantizedTensor accepts as an NVFP4 tensor scale.
bool usable_tensor_scale(float s) {
  int exponent = 0;
  const float mantissa = std::frexp(s, &exponent);
  return std::isfinite(s) && mantissa == 0.5f && exponent - 1 >= -117 && exponent - 1 <= 118;
}

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

QuantScheme QuantScheme::integer(int bits, int64_t group_size, bool symmetric, DType scale_dtype) {
  require(bits >= 1 && bits <= 8, "quantization scheme", "bits must be 1..8, found " + std::to_string(bits));
  require(!symmetric || bits >= 2, "quantization scheme",
          "symmetric integer grids need at least 2 bits (±(2^(b-1)-1)); use asymmetric 1-bit or Format::binary()");
  QuantScheme s;
  s.element = symmetric ? Format::int_symmetric(bits) : Format::uint(bits);
  s.group_size = group_size;
  s.scale_dtype = scale_dtype;
  return s;
}

QuantScheme QuantScheme::with_format(Format element, int64_t group_size, DType scale_dtype) {
  QuantScheme s;
  s.element = std::move(element);
  s.group_size = group_size;
  s.scale_dtype = scale_dtype;
  return s;
}

std::optional<QuantScheme> QuantScheme::preset(std::string_view name) {
  // OCP MX v1.0 (32 elements per E8M0 scale) and NVIDIA's NVFP4 (16 per UE4M3 scale, f32 tensor scale).
  if (name == "mxfp4") return with_format(Format::e2m1(), 32, DType::kF8E8M0);
  if (name == "mxfp8") return with_format(Format::e4m3(), 32, DType::kF8E8M0);
  if (name == "nvfp4") return with_format(Format::e2m1(), 16, DType::kF8E4M3);
  return std::nullopt;
}

namespace {
int bits_for(int64_t values) {  // bits of the smallest field holding `values` distinct integers
  int bits = 0;
  while ((int64_t{1} << bits) < values) ++bits;
  return bits;
}
}  // namespace

int QuantScheme::SuperBlock::scale_bits() const { return bits_for(int64_t{scale_hi} - scale_lo + 1); }
int QuantScheme::SuperBlock::min_bits() const { return min_hi > 0 ? bits_for(int64_t{min_hi} + 1) : 0; }

bool QuantScheme::asymmetric() const {
  return element.kind() == Format::Kind::kInt && !element.twos_complement() && !float_min;
}

BlockFormat QuantScheme::block_format() const {
  BlockFormat f;
  f.element = element;
  switch (scale_dtype) {
    case DType::kBF16: f.scale = Format::bf16().with_overflow(Overflow::kSaturate); break;
    case DType::kF32: f.scale = Format::fp32().with_overflow(Overflow::kSaturate); break;
    case DType::kF8E4M3: f.scale = Format::ue4m3().with_overflow(Overflow::kSaturate); break;
    case DType::kF8E8M0: f.scale = Format::ue8m0(); break;
    default: f.scale = Format::fp16().with_overflow(Overflow::kSaturate); break;
  }
  f.granularity = group_size > 0 ? Granularity::groups(group_size) : Granularity::per_row();
  f.rule = ScaleRule::kAbsmax;
  // A power-of-two scale rounded to nearest would clip a group's largest weight by up to 1.5x;
  // rounding up never clips (the MSE clip search still tries the smaller powers), as dynamic fixed point does.
  f.scale_rounding = scale_dtype == DType::kF8E8M0 ? Rounding::kTowardPositive : Rounding::kNearestEven;
  f.tensor_scale = has_tensor_scale();
  return f;
}

float QuantScheme::tensor_scale_for(std::span<const float> weights) const {
  if (!has_tensor_scale() || unit_tensor_scale) return 1.0f;
  float amax = 0;
  for (float w : weights) amax = std::max(amax, std::fabs(w));
  // The smallest power of two S with amax / S <= 448 · element max (NVFP4's S = amax / (448 · 6),
  // rounded up to a power of two so that block scale × S is exact), within what
  // usable_tensor_scale accepts.
  const double target = static_cast<double>(amax) / (448.0 * element.max_value());
  if (!(target > 0)) return 1.0f;  // an all-zero tensor
  // target = m · 2^exponent with m in [0.5, 1): the smallest power of two >= target is 2^exponent, or
  // 2^(exponent − 1) when m is exactly 0.5.
  int exponent = 0;
  if (std::frexp(target, &exponent) == 0.5) --exponent;
  return std::ldexp(1.0f, std::clamp(exponent, -117, 118));
}

void QuantScheme::validate(int64_t cols) const {
  const std::string where = "quantization scheme " + to_string();
  require(element.bits() >= 1 && element.bits() <= 8, where,
          "bits per code must be 1..8, found " + std::to_string(element.bits()) + " (" + element.to_string() + ")");
  require(group_size >= 0, where, "group size must be >= 0 (0 = per row), found " + str(group_size));
  require(group_size <= cols, where,
          "group size " + str(group_size) + " is larger than a row of " + str(cols) + " columns");
  require(scale_dtype == DType::kF16 || scale_dtype == DType::kBF16 || scale_dtype == DType::kF32 || eight_bit_scales(), where,
          "scale dtype must be F16, BF16, F32, F8_E4M3 (with a tensor scale) or F8_E8M0, found " +
              std::string(dtype_name(scale_dtype)));
  require(!unit_tensor_scale || has_tensor_scale(), where, "a unit tensor scale needs F8_E4M3 scales");
  require(!eight_bit_scales() || (!signed_scales && !float_min && !asymmetric()), where,
          "8-bit float scales (NVFP4's UE4M3, MX's E8M0) are unsigned and stand alone: no signed scales, zero points "
          "or minimums");
  require(element.max_value() > 0, where, "the grid " + element.to_string() + " has no positive value");
  require(!(signed_scales && asymmetric()), where, "signed scales need a grid without zero points");
  const bool unsigned_int = element.kind() == Format::Kind::kInt && !element.twos_complement();
  if (float_min) {
    require(unsigned_int && element.zero_point() == 0 && element.fraction_bits() == 0 && !signed_scales, where,
            "a float minimum needs a plain uintB grid without signed scales, found " + element.to_string());
  } else if (asymmetric()) {
    require(element.zero_point() == 0 && element.fraction_bits() == 0, where,
            "asymmetric grids are plain uintB (zero points are chosen per group), found " + element.to_string());
  } else {
    require(element.lowest_value() < 0, where,
            "the grid " + element.to_string() + " has no negative values (unsigned grids other than uintB cannot hold weights)");
  }
  if (super_block.size != 0) {
    const SuperBlock& b = super_block;
    require(group_size > 0 && b.size > 0 && b.size % group_size == 0, where,
            "super-blocks of " + str(b.size) + " columns need groups that divide them");
    require(cols % b.size == 0, where, "rows of " + str(cols) + " columns are not whole super-blocks of " + str(b.size));
    require(scale_dtype == DType::kF32, where, "two-level scales are held as f32 values (d x integer is exact there)");
    require(b.scale_lo <= 0 && b.scale_hi > 0 && b.scale_hi <= 255 && b.scale_lo >= -256, where,
            "the scale integers must span 0 .. at most 8 bits, found " + str(b.scale_lo) + " .. " + str(b.scale_hi));
    require(!asymmetric(), where, "two-level scales need a symmetric grid or float minimums, not zero points");
    require(float_min == (b.min_hi > 0) && b.min_hi <= 255, where,
            "float minimums need an integer range for dmin (and only they do), found 0 .. " + str(b.min_hi));
    require(signed_scales == (b.scale_lo < 0), where, "signed scales need negative scale integers (and only they do)");
  }
}

std::string QuantScheme::to_string() const {
  std::string text = element.to_string();
  text += group_size > 0 ? " g" + std::to_string(group_size) : std::string(" per-row");
  text += " (" + std::string(dtype_name(scale_dtype)) + " scales";
  if (has_tensor_scale()) text += unit_tensor_scale ? ", tensor scale 1" : " x f32 tensor scale";
  if (asymmetric()) text += ", zero points";
  if (float_min) text += ", minimums";
  if (signed_scales) text += ", signed";
  if (super_block.size != 0) {
    text += "; per " + str(super_block.size) + ": f16 d x " + str(super_block.scale_lo) + ".." + str(super_block.scale_hi);
    if (float_min) text += ", f16 dmin x 0.." + str(super_block.min_hi);
  }
  return text + ")";
}

QuantizedTensor::QuantizedTensor(int64_t rows, int64_t cols, QuantScheme scheme) : scheme_(std::move(scheme)) {
  require(rows >= 0 && cols >= 0, kWhere, "negative shape [" + str(rows) + ", " + str(cols) + "]");
  scheme_.validate(cols);
  rows_ = rows;
  cols_ = cols;
  group_ = scheme_.group_size > 0 ? scheme_.group_size : std::max<int64_t>(cols, 1);
  groups_ = (cols + group_ - 1) / group_;
  row_bytes_ = static_cast<int64_t>(packed_bytes(static_cast<size_t>(cols), bits()));
  codes_.assign(static_cast<size_t>(rows * row_bytes_), 0);
  scales_.assign(static_cast<size_t>(rows * groups_), 0.0f);
  if (scheme_.asymmetric()) zeros_.assign(static_cast<size_t>(rows * groups_), 0);
  if (scheme_.float_min) mins_.assign(static_cast<size_t>(rows * groups_), 0.0f);
  levels_.resize(static_cast<size_t>(scheme_.element.code_count()));
  for (uint32_t code = 0; code < levels_.size(); ++code) levels_[code] = scheme_.element.decode(code);
}

QuantizedTensor QuantizedTensor::from_parts(int64_t rows, int64_t cols, QuantScheme scheme,
                                            std::vector<uint8_t> packed_codes, std::vector<float> scales,
                                            std::vector<uint8_t> zero_points, std::vector<int32_t> g_idx,
                                            std::vector<float> mins, float tensor_scale) {
  QuantizedTensor t(rows, cols, std::move(scheme));
  t.set_tensor_scale(tensor_scale);
  require(packed_codes.size() == t.codes_.size(), kWhere,
          "packed codes have " + str(static_cast<int64_t>(packed_codes.size())) + " bytes, expected " + str(rows) +
              " rows x " + str(t.row_bytes_) + " = " + str(static_cast<int64_t>(t.codes_.size())));
  require(scales.size() == t.scales_.size(), kWhere,
          "scales have " + str(static_cast<int64_t>(scales.size())) + " values, expected " + str(rows) + " x " +
              str(t.groups_));
  const size_t expected_zeros = t.scheme_.asymmetric() ? t.scales_.size() : 0;
  require(zero_points.size() == expected_zeros, kWhere,
          "zero points have " + str(static_cast<int64_t>(zero_points.size())) + " values, expected " +
              str(static_cast<int64_t>(expected_zeros)) + (expected_zeros ? "" : " (symmetric grid)"));
  for (size_t i = 0; i < scales.size(); ++i) {
    require(std::isfinite(scales[i]) && representable(scales[i], t.scheme_.scale_dtype), kWhere,
            "scale " + str(static_cast<int64_t>(i)) + " (" + std::to_string(scales[i]) + ") is not a finite " +
                std::string(dtype_name(t.scheme_.scale_dtype)) + " value" +
                (t.scheme_.eight_bit_scales() ? " (unsigned)" : ""));
    scales[i] *= t.tensor_scale_;  // held as stored × S: exact (S is a power of two, the product normal)
  }
  require(mins.size() == t.mins_.size(), kWhere,
          "minimums have " + str(static_cast<int64_t>(mins.size())) + " values, expected " + str(static_cast<int64_t>(t.mins_.size())));
  for (size_t i = 0; i < mins.size(); ++i)
    require(std::isfinite(mins[i]) && representable(mins[i], t.scheme_.scale_dtype), kWhere,
            "minimum " + str(static_cast<int64_t>(i)) + " (" + std::to_string(mins[i]) + ") is not a finite " +
                std::string(dtype_name(t.scheme_.scale_dtype)) + " value");
  const uint32_t limit = static_cast<uint32_t>(t.scheme_.element.code_count());
  for (size_t i = 0; i < zero_points.size(); ++i)
    require(zero_points[i] < limit, kWhere,
            "zero point " + str(static_cast<int64_t>(i)) + " is " + std::to_string(zero_points[i]) + ", >= 2^" +
                std::to_string(t.bits()));
  // Unpacking checks the pad bits; every code fits by construction; codes that decode to NaN
  // (lookup codes past the last level, NaN patterns) are not weights.
  std::vector<uint8_t> row_codes(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    try {
      unpack_bits(std::span<const uint8_t>(packed_codes).subspan(static_cast<size_t>(r * t.row_bytes_),
                                                                  static_cast<size_t>(t.row_bytes_)),
                  t.bits(), row_codes);
    } catch (const Error& e) {
      throw e.with_context(std::string(kWhere) + ": codes of row " + str(r));
    }
    for (int64_t c = 0; c < cols; ++c)
      require(!std::isnan(t.levels_[row_codes[static_cast<size_t>(c)]]), kWhere,
              "code " + std::to_string(row_codes[static_cast<size_t>(c)]) + " at [" + str(r) + ", " + str(c) +
                  "] is not a value of " + t.scheme_.element.to_string());
  }
  t.codes_ = std::move(packed_codes);
  t.scales_ = std::move(scales);
  t.zeros_ = std::move(zero_points);
  t.mins_ = std::move(mins);
  t.set_g_idx(std::move(g_idx));
  return t;
}

void QuantizedTensor::check_row(int64_t row) const {
  require(row >= 0 && row < rows_, kWhere, "row " + str(row) + " outside [0, " + str(rows_) + ")");
}

std::span<const uint8_t> QuantizedTensor::packed_row(int64_t row) const {
  check_row(row);
  return std::span<const uint8_t>(codes_).subspan(static_cast<size_t>(row * row_bytes_), static_cast<size_t>(row_bytes_));
}

void QuantizedTensor::set_tensor_scale(float tensor_scale) {
  if (!scheme_.has_tensor_scale()) {
    require(tensor_scale == 1.0f, kWhere,
            "only F8_E4M3 scales take a tensor scale (" + scheme_.to_string() + "), found " + std::to_string(tensor_scale));
    return;
  }
  require(usable_tensor_scale(tensor_scale), kWhere,
          "the tensor scale must be a power of two in 2^-117 .. 2^118 (so that scale x tensor scale is exact), found " +
              std::to_string(tensor_scale));
  bool unset = true;
  for (float s : scales_) unset = unset && s == 0.0f;
  require(unset, kWhere, "the tensor scale is set before any row");
  tensor_scale_ = tensor_scale;
}

Tensor QuantizedTensor::scales_tensor() const {
  Tensor t = Tensor::zeros(scheme_.scale_dtype, {rows_, groups_});
  void* data = t.mutable_data();
  if (scheme_.eight_bit_scales()) {
    const Format format = scheme_.scale_dtype == DType::kF8E4M3 ? Format::ue4m3() : Format::ue8m0();
    auto* bytes = static_cast<uint8_t*>(data);
    // Exact: every held scale is a stored value times S (the constructor's zeros, never set, write as
    // UE4M3 0 or E8M0's smallest power 2^-127 — rows that are set replace them).
    for (size_t i = 0; i < scales_.size(); ++i) bytes[i] = static_cast<uint8_t>(format.encode(scales_[i] / tensor_scale_));
  } else if (scheme_.scale_dtype == DType::kF32) {
    if (!scales_.empty()) std::memcpy(data, scales_.data(), scales_.size() * sizeof(float));
  } else {
    auto* bits = static_cast<uint16_t*>(data);
    for (size_t i = 0; i < scales_.size(); ++i)
      bits[i] = scheme_.scale_dtype == DType::kF16 ? f32_to_f16_bits(scales_[i]) : f32_to_bf16_bits(scales_[i]);
  }
  return t;
}

std::vector<uint8_t> QuantizedTensor::packed_zero_points() const {
  if (zeros_.empty()) return {};
  const size_t per_row = packed_bytes(static_cast<size_t>(groups_), bits());
  std::vector<uint8_t> out(static_cast<size_t>(rows_) * per_row);
  for (int64_t r = 0; r < rows_; ++r)
    pack_bits(std::span<const uint8_t>(zeros_).subspan(static_cast<size_t>(r * groups_), static_cast<size_t>(groups_)),
              bits(), std::span<uint8_t>(out).subspan(static_cast<size_t>(r) * per_row, per_row));
  return out;
}

void QuantizedTensor::codes_of_row(int64_t row, std::span<uint8_t> out) const {
  require(out.size() == static_cast<size_t>(cols_), kWhere,
          "row buffer has " + str(static_cast<int64_t>(out.size())) + " entries for " + str(cols_) + " columns");
  unpack_bits(packed_row(row), bits(), out);
}

std::vector<uint8_t> QuantizedTensor::codes() const {
  std::vector<uint8_t> out(static_cast<size_t>(rows_ * cols_));
  parallel_for(rows_, 64, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      codes_of_row(r, std::span<uint8_t>(out).subspan(static_cast<size_t>(r * cols_), static_cast<size_t>(cols_)));
  });
  return out;
}

void QuantizedTensor::set_row(int64_t row, std::span<const uint8_t> codes, std::span<const float> scales,
                              std::span<const uint8_t> zero_points, std::span<const float> mins) {
  check_row(row);
  // Every check tests before it builds its message: set_row runs for every row of every tensor that
  // is quantized or loaded, and formatting a float per group cost more than the rest of a GGUF load.
  const auto fail = [&](const std::string& problem) { throw Error(std::string(kWhere) + " row " + str(row), problem); };
  if (codes.size() != static_cast<size_t>(cols_))
    fail("expected " + str(cols_) + " codes, found " + str(static_cast<int64_t>(codes.size())));
  if (scales.size() != static_cast<size_t>(groups_))
    fail("expected " + str(groups_) + " scales, found " + str(static_cast<int64_t>(scales.size())));
  const size_t expected_zeros = zeros_.empty() ? 0 : static_cast<size_t>(groups_);
  if (zero_points.size() != expected_zeros)
    fail("expected " + str(static_cast<int64_t>(expected_zeros)) + " zero points, found " +
         str(static_cast<int64_t>(zero_points.size())));
  if (mins.size() != (mins_.empty() ? 0 : static_cast<size_t>(groups_)))
    fail("expected " + str(mins_.empty() ? 0 : groups_) + " minimums, found " + str(static_cast<int64_t>(mins.size())));
  for (size_t g = 0; g < mins.size(); ++g)
    if (!(std::isfinite(mins[g]) && representable(mins[g], scheme_.scale_dtype)))
      fail("minimum " + std::to_string(mins[g]) + " of group " + str(static_cast<int64_t>(g)) + " is not a finite " +
           std::string(dtype_name(scheme_.scale_dtype)) + " value");
  const uint32_t limit = static_cast<uint32_t>(scheme_.element.code_count());
  for (size_t g = 0; g < scales.size(); ++g) {
    if (!(std::isfinite(scales[g]) && representable(scales[g], scheme_.scale_dtype, tensor_scale_)))
      fail("scale " + std::to_string(scales[g]) + " of group " + str(static_cast<int64_t>(g)) + " is not a finite " +
           std::string(dtype_name(scheme_.scale_dtype)) + " value");
    if (!zero_points.empty() && zero_points[g] >= limit)
      fail("zero point " + std::to_string(zero_points[g]) + " >= 2^" + std::to_string(bits()));
  }
  // pack_bits refuses codes >= 2^bits, naming the first.
  pack_bits(codes, bits(),
            std::span<uint8_t>(codes_).subspan(static_cast<size_t>(row * row_bytes_), static_cast<size_t>(row_bytes_)));
  std::copy(scales.begin(), scales.end(), scales_.begin() + row * groups_);
  if (!zero_points.empty()) std::copy(zero_points.begin(), zero_points.end(), zeros_.begin() + row * groups_);
  if (!mins.empty()) std::copy(mins.begin(), mins.end(), mins_.begin() + row * groups_);
}

void QuantizedTensor::set_g_idx(std::vector<int32_t> g_idx) {
  if (!g_idx.empty()) {
    require(g_idx.size() == static_cast<size_t>(cols_), kWhere,
            "g_idx has " + str(static_cast<int64_t>(g_idx.size())) + " entries for " + str(cols_) + " columns");
    for (size_t c = 0; c < g_idx.size(); ++c)
      require(g_idx[c] >= 0 && g_idx[c] < groups_, kWhere,
              "g_idx[" + str(static_cast<int64_t>(c)) + "] = " + std::to_string(g_idx[c]) + " outside [0, " +
                  str(groups_) + ")");
  }
  g_idx_ = std::move(g_idx);
}

void QuantizedTensor::dequantize_row(int64_t row, std::span<float> out) const {
  check_row(row);
  require(out.size() == static_cast<size_t>(cols_), kWhere,
          "row buffer has " + str(static_cast<int64_t>(out.size())) + " entries for " + str(cols_) + " columns");
  thread_local std::vector<uint8_t> codes;
  codes.resize(static_cast<size_t>(cols_));
  unpack_bits(packed_row(row), bits(), codes);
  const float* scales = scales_.data() + row * groups_;
  const uint8_t* zeros = zeros_.empty() ? nullptr : zeros_.data() + row * groups_;
  if (!mins_.empty()) {  // code · scale + min, in f32 (two roundings, as ggml's Q4_1/Q5_1 decode)
    const float* mins = mins_.data() + row * groups_;
    for (int64_t g = 0; g < groups_; ++g) {
      const int64_t c0 = g * group_, c1 = std::min(cols_, c0 + group_);
      const float s = scales[g], m = mins[g];
      for (int64_t c = c0; c < c1; ++c) out[static_cast<size_t>(c)] = static_cast<float>(codes[static_cast<size_t>(c)]) * s + m;
    }
    return;
  }
  if (!g_idx_.empty()) {
    for (int64_t c = 0; c < cols_; ++c) {
      const int64_t g = g_idx_[static_cast<size_t>(c)];
      const uint8_t code = codes[static_cast<size_t>(c)];
      out[static_cast<size_t>(c)] = zeros ? static_cast<float>(static_cast<int>(code) - zeros[g]) * scales[g]
                                          : levels_[code] * scales[g];
    }
    return;
  }
  for (int64_t g = 0; g < groups_; ++g) {
    const int64_t c0 = g * group_, c1 = std::min(cols_, c0 + group_);
    const float s = scales[g];
    if (zeros) {
      const int z = zeros[g];
      for (int64_t c = c0; c < c1; ++c)
        out[static_cast<size_t>(c)] = static_cast<float>(static_cast<int>(codes[static_cast<size_t>(c)]) - z) * s;
    } else {
      for (int64_t c = c0; c < c1; ++c) out[static_cast<size_t>(c)] = levels_[codes[static_cast<size_t>(c)]] * s;
    }
  }
}

void QuantizedTensor::dequantize(std::span<float> out) const {
  require(out.size() == static_cast<size_t>(rows_ * cols_), kWhere,
          "output has " + str(static_cast<int64_t>(out.size())) + " values for [" + str(rows_) + ", " + str(cols_) + "]");
  parallel_for(rows_, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      dequantize_row(r, out.subspan(static_cast<size_t>(r * cols_), static_cast<size_t>(cols_)));
  });
}

std::vector<float> QuantizedTensor::dequantize() const {
  std::vector<float> out(static_cast<size_t>(rows_ * cols_));
  dequantize(out);
  return out;
}

int64_t QuantizedTensor::storage_bytes() const {
  int64_t bytes = rows_ * row_bytes_;
  if (const auto& b = scheme_.super_block; b.size != 0) {
    // As the k-quants store it: per super-block an f16 d (and dmin), per group its integers.
    const int64_t supers = cols_ / b.size, per_super = b.size / group_;
    const int64_t integer_bits = per_super * (b.scale_bits() + b.min_bits());
    return bytes + rows_ * supers * ((scheme_.float_min ? 4 : 2) + (integer_bits + 7) / 8) +
           static_cast<int64_t>(g_idx_.size()) * 4;
  }
  bytes += rows_ * groups_ * static_cast<int64_t>(dtype_size(scheme_.scale_dtype));
  if (!zeros_.empty()) bytes += rows_ * static_cast<int64_t>(packed_bytes(static_cast<size_t>(groups_), bits()));
  bytes += static_cast<int64_t>(g_idx_.size()) * 4;
  bytes += static_cast<int64_t>(mins_.size() * dtype_size(scheme_.scale_dtype));
  if (scheme_.has_tensor_scale()) bytes += 4;  // NVFP4's f32 second level
  return bytes;
}

double QuantizedTensor::bits_per_weight() const {
  const int64_t n = rows_ * cols_;
  return n == 0 ? 0.0 : 8.0 * static_cast<double>(storage_bytes()) / static_cast<double>(n);
}

}  // namespace lowbit
