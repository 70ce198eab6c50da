// Block format presets, names and validation. Quantization itself is in block_quantize.cc and
// the choice of scales in scale.cc.
#include "lowbit/numerics/block_format.h"

#include <cmath>

#include "lowbit/core/error.h"

namespace lowbit {

Granularity Granularity::groups(int64_t size, int axis) {
  require(size >= 1, "granularity", "group size must be at least 1, found " + std::to_string(size));
  require(axis == 0 || axis == 1, "granularity", "axis must be 0 or 1 (of the [rows, cols] view), found " + std::to_string(axis));
  return axis == 1 ? Granularity{1, size} : Granularity{size, 1};
}

std::string Granularity::to_string() const {
  if (block_rows == 0 && block_cols == 0) return "tensor";
  if (block_rows == 1 && block_cols == 0) return "row";
  if (block_rows == 0 && block_cols == 1) return "column";
  if (block_rows == 1) return "group " + std::to_string(block_cols);
  if (block_cols == 1) return "group " + std::to_string(block_rows) + " along axis 0";
  auto side = [](int64_t n) { return n == 0 ? std::string("all") : std::to_string(n); };
  return "tile " + side(block_rows) + "x" + side(block_cols);
}

namespace {

BlockFormat mx(const char* name, Format element) {
  BlockFormat f;
  f.element = element.kind() == Format::Kind::kFloat && element.has_nan() ? element.with_overflow(Overflow::kSaturate)
                                                                            : element;
  f.scale = Format::ue8m0();
  f.granularity = Granularity::groups(32);
  f.rule = ScaleRule::kMx;
  f.name = name;
  return f;
}

std::optional<int64_t> parse_positive(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value > 0 ? std::optional<int64_t>(value) : std::nullopt;
}

}  // namespace

BlockFormat BlockFormat::mxfp8_e4m3() { return mx("mxfp8_e4m3", Format::e4m3()); }
BlockFormat BlockFormat::mxfp8_e5m2() { return mx("mxfp8_e5m2", Format::e5m2()); }
BlockFormat BlockFormat::mxfp6_e3m2() { return mx("mxfp6_e3m2", Format::e3m2()); }
BlockFormat BlockFormat::mxfp6_e2m3() { return mx("mxfp6_e2m3", Format::e2m3()); }
BlockFormat BlockFormat::mxfp4() { return mx("mxfp4", Format::e2m1()); }
BlockFormat BlockFormat::mxint8() { return mx("mxint8", Format::int_symmetric(8, 6)); }

BlockFormat BlockFormat::nvfp4() {
  BlockFormat f;
  f.element = Format::e2m1();
  f.scale = Format::ue4m3();
  f.granularity = Granularity::groups(16);
  f.rule = ScaleRule::kAbsmax;
  f.tensor_scale = true;
  f.name = "nvfp4";
  return f;
}

BlockFormat BlockFormat::nvfp4_2d() {
  BlockFormat f = nvfp4();
  f.granularity = Granularity::tiles(16, 16);
  f.name = "nvfp4_2d";
  return f;
}

BlockFormat BlockFormat::nf4() {
  BlockFormat f;
  f.element = Format::nf4();
  f.scale = Format::fp32();
  f.granularity = Granularity::groups(64);
  f.name = "nf4_b64";
  return f;
}

BlockFormat BlockFormat::nf3() {
  BlockFormat f = nf4();
  f.element = Format::nf3();
  f.name = "nf3_b64";
  return f;
}

BlockFormat BlockFormat::int_grouped(int bits, int64_t group, bool asymmetric) {
  BlockFormat f;
  f.element = asymmetric ? Format::uint(bits) : Format::int_symmetric(bits);
  f.scale = Format::fp16();
  f.granularity = group > 0 ? Granularity::groups(group) : Granularity::per_row();
  f.name = std::string(asymmetric ? "uint" : "int") + std::to_string(bits) +
           (group > 0 ? "_g" + std::to_string(group) : std::string("_row"));
  return f;
}

BlockFormat BlockFormat::dynamic_fixed_point(int bits, Granularity granularity) {
  BlockFormat f;
  f.element = Format::int_symmetric(bits);
  f.scale = Format::ue8m0();
  f.granularity = granularity;
  f.rule = ScaleRule::kAbsmax;
  f.scale_rounding = Rounding::kTowardPositive;
  f.name = "dfp" + std::to_string(bits);
  if (granularity.block_rows == 1 && granularity.block_cols > 0) f.name += "_g" + std::to_string(granularity.block_cols);
  else if (!(granularity == Granularity::per_tensor())) f.name.clear();
  return f;
}

std::optional<BlockFormat> BlockFormat::parse_preset(std::string_view name) {
  std::string text(name);
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (text == "mxfp8" || text == "mxfp8_e4m3") return mxfp8_e4m3();
  if (text == "mxfp8_e5m2") return mxfp8_e5m2();
  if (text == "mxfp6_e3m2") return mxfp6_e3m2();
  if (text == "mxfp6_e2m3") return mxfp6_e2m3();
  if (text == "mxfp4") return mxfp4();
  if (text == "mxint8") return mxint8();
  if (text == "nvfp4") return nvfp4();
  if (text == "nvfp4_2d") return nvfp4_2d();
  if (text == "nf4_b64" || text == "nf4_qlora") return nf4();
  if (text == "nf3_b64") return nf3();
  // intB_gN, uintB_gN, intB_row, dfpB, dfpB_gN
  const size_t underscore = text.find('_');
  const std::string head = text.substr(0, underscore);
  const std::string tail = underscore == std::string::npos ? "" : text.substr(underscore + 1);
  auto bits_after = [&](size_t prefix) { return parse_positive(std::string_view(head).substr(prefix)); };
  std::optional<int64_t> group;
  bool per_row = false;
  if (tail.size() > 1 && tail[0] == 'g') group = parse_positive(std::string_view(tail).substr(1));
  else if (tail == "row") per_row = true;
  else if (!tail.empty()) return std::nullopt;
  if (!tail.empty() && !group && !per_row) return std::nullopt;
  try {
    if (head.rfind("dfp", 0) == 0) {
      const auto bits = bits_after(3);
      if (!bits || per_row) return std::nullopt;
      return dynamic_fixed_point(static_cast<int>(*bits), group ? Granularity::groups(*group) : Granularity::per_tensor());
    }
    const bool is_unsigned = head.rfind("uint", 0) == 0;
    if ((is_unsigned || head.rfind("int", 0) == 0) && (group || per_row)) {
      const auto bits = bits_after(is_unsigned ? 4 : 3);
      if (!bits) return std::nullopt;
      return int_grouped(static_cast<int>(*bits), group.value_or(0), is_unsigned);
    }
  } catch (const Error& e) {
    throw e.with_context("block format \"" + std::string(name) + "\"");
  }
  return std::nullopt;
}

std::vector<BlockFormat> BlockFormat::presets() {
  return {mxfp8_e4m3(), mxfp8_e5m2(), mxfp6_e3m2(),  mxfp6_e2m3(), mxfp4(),
          mxint8(),     nvfp4(),      nvfp4_2d(),    nf4(),        nf3(),
          int_grouped(4, 128, false), int_grouped(4, 128, true), int_grouped(8, 0, false),
          dynamic_fixed_point(16), dynamic_fixed_point(8, Granularity::groups(32))};
}

std::string BlockFormat::to_string() const {
  if (!name.empty()) return name;
  std::string text = element.to_string() + " x " + scale.to_string() + " / " + granularity.to_string();
  text += rule == ScaleRule::kMx ? " / mx" : " / absmax";
  if (rule == ScaleRule::kAbsmax && scale_rounding != Rounding::kNearestEven)
    text += " (scale " + std::string(rounding_name(scale_rounding)) + ")";
  if (tensor_scale) text += " / tensor scale";
  return text;
}

double BlockFormat::bits_per_element() const {
  const int64_t rows = granularity.block_rows, cols = granularity.block_cols;
  if (rows == 0 || cols == 0) return element.bits();  // one scale per row/column/tensor: amortized away
  const bool asymmetric = element.kind() == Format::Kind::kInt && !element.twos_complement();
  const double per_block = 8.0 * ((scale.bits() + 7) / 8) + (asymmetric ? element.bits() : 0);
  return element.bits() + per_block / static_cast<double>(rows * cols);
}

void BlockFormat::validate() const {
  const std::string where = "block format " + to_string();
  require(element.bits() <= 16, where, "element formats of at most 16 bits, found " + std::to_string(element.bits()));
  require(element.max_value() > 0, where, "the element format needs positive values");
  require(granularity.block_rows >= 0 && granularity.block_cols >= 0, where, "block extents must be >= 0");
  require(!is_stochastic(scale_rounding), where, "scales round deterministically");
  require(scale.max_value() > 0 && scale.min_positive() > 0, where, "the scale format needs positive values");
  const bool asymmetric = element.kind() == Format::Kind::kInt && !element.twos_complement();
  if (rule == ScaleRule::kMx) {
    require(scale.kind() == Format::Kind::kFloat && scale.mantissa_bits() == 0, where,
            "the MX rule needs a power-of-two scale format such as ue8m0, found " + scale.to_string());
    require(!asymmetric, where, "the MX rule is for signed elements");
    require(!tensor_scale, where, "the MX rule has no tensor scale");
  }
  if (asymmetric) {
    require(!tensor_scale, where, "asymmetric elements take no tensor scale");
    require(element.zero_point() == 0, where, "zero points are chosen per block; give the element as uintB");
  }
}

}  // namespace lowbit
