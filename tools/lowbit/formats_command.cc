// lowbit formats [--json]                 every preset: bits, range, Inf/NaN, layout
// lowbit formats table FORMAT [--json]    every code of a <= 8-bit format and its value
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/numerics/block_format.h"
#include "lowbit/numerics/format.h"

namespace lowbit::cli {

namespace {

struct FormatsOptions {
  bool json = false;
  std::string table_format;
  bool table_json = false;
};

std::string number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[40];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

nlohmann::json json_number(double value) {
  if (std::isfinite(value)) return value;
  return number(value);  // JSON has no NaN/Inf: spell them
}

// The smallest subnormal, or nothing when the format has no subnormals.
std::optional<double> min_subnormal(const Format& f) {
  if (f.kind() == Format::Kind::kFloat && f.subnormals() == Subnormals::kGradual) return f.min_positive();
  return std::nullopt;
}

std::string kind_name(Format::Kind kind) {
  switch (kind) {
    case Format::Kind::kFloat: return "float";
    case Format::Kind::kInt: return "int";
    case Format::Kind::kLookup: return "lookup";
  }
  return "?";
}

int list_formats(bool json) {
  const auto formats = preset_formats();
  const auto blocks = BlockFormat::presets();
  if (json) {
    nlohmann::json out;
    out["formats"] = nlohmann::json::array();
    for (const Format& f : formats) {
      const auto sub = min_subnormal(f);
      out["formats"].push_back({{"name", f.to_string()},
                                {"kind", kind_name(f.kind())},
                                {"bits", f.bits()},
                                {"max", json_number(f.max_value())},
                                {"lowest", json_number(f.lowest_value())},
                                {"min_normal", json_number(f.min_normal())},
                                {"min_subnormal", sub ? nlohmann::json(*sub) : nlohmann::json(nullptr)},
                                {"inf", f.has_inf()},
                                {"nan", f.has_nan()},
                                {"saturates", f.saturates()},
                                {"layout", f.describe()}});
    }
    out["block_formats"] = nlohmann::json::array();
    for (const BlockFormat& b : blocks)
      out["block_formats"].push_back({{"name", b.to_string()},
                                      {"element", b.element.to_string()},
                                      {"scale", b.scale.to_string()},
                                      {"blocks", b.granularity.to_string()},
                                      {"scale_rule", b.rule == ScaleRule::kMx ? "mx" : "absmax"},
                                      {"tensor_scale", b.tensor_scale},
                                      {"bits_per_element", b.bits_per_element()}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-13s %4s %14s %14s %14s %4s %4s  %s\n", "format", "bits", "max", "min normal", "min subnormal", "Inf",
              "NaN", "layout");
  for (const Format& f : formats) {
    const auto sub = min_subnormal(f);
    std::printf("%-13s %4d %14s %14s %14s %4s %4s  %s\n", f.to_string().c_str(), f.bits(),
                number(f.max_value()).c_str(), number(f.min_normal()).c_str(), sub ? number(*sub).c_str() : "-",
                f.has_inf() ? "yes" : "no", f.has_nan() ? "yes" : "no", f.describe().c_str());
  }
  std::printf("\n%-13s %-12s %-8s %-16s %-6s %s\n", "block format", "element", "scale", "blocks", "rule", "bits/element");
  for (const BlockFormat& b : blocks)
    std::printf("%-13s %-12s %-8s %-16s %-6s %.4g%s\n", b.to_string().c_str(), b.element.to_string().c_str(),
                b.scale.to_string().c_str(), b.granularity.to_string().c_str(), b.rule == ScaleRule::kMx ? "mx" : "absmax",
                b.bits_per_element(), b.tensor_scale ? " (+ fp32 tensor scale)" : "");
  std::printf(
      "\nAny eXmY[:bias=N][:ieee|fn|finite][:flush|nozero][:sat|nosat], intB[:full][:frac=F], uintB[:zero=Z],\n"
      "logB[:sqrt2] and codebook:v0,v1,... are accepted too; `lowbit formats table FORMAT` lists its codes.\n");
  return 0;
}

int print_table(const std::string& name, bool json) {
  Format f = Format::e2m1();
  std::string heading;
  if (auto block = BlockFormat::parse_preset(name)) {
    f = block->element;
    heading = block->to_string() + ": elements " + f.to_string() + ", scale " + block->scale.to_string() + ", " +
              block->granularity.to_string();
  } else {
    f = Format::parse(name);
    heading = f.to_string();
  }
  if (f.bits() > 8)
    throw Error("formats table", f.to_string() + " has " + std::to_string(f.bits()) +
                                     "-bit codes; tables are printed for formats of at most 8 bits");
  if (json) {
    nlohmann::json out{{"format", f.to_string()}, {"bits", f.bits()}, {"layout", f.describe()}};
    out["codes"] = nlohmann::json::array();
    for (uint32_t code = 0; code < f.code_count(); ++code) {
      const float value = f.decode(code);
      out["codes"].push_back({{"code", code},
                              {"value", std::isnan(value) ? nlohmann::json("nan") : json_number(value)},
                              {"canonical", f.is_canonical(code)}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%s: %s\n", heading.c_str(), f.describe().c_str());
  bool any_unused = false;
  for (uint32_t code = 0; code < f.code_count(); ++code) {
    const float value = f.decode(code);
    std::string bits;
    for (int b = f.bits() - 1; b >= 0; --b) bits += ((code >> b) & 1) ? '1' : '0';
    const bool canonical = f.is_canonical(code);
    any_unused |= !canonical && !std::isnan(value);
    std::string text = std::isnan(value) ? "nan" : number(value);
    if (value == 0 && std::signbit(value)) text = "-0";
    std::printf("0x%02x  %s  %s%s\n", code, bits.c_str(), text.c_str(), !canonical && !std::isnan(value) ? "  *" : "");
  }
  if (any_unused) std::printf("* decodes, but rounding never produces this code\n");
  return 0;
}

}  // namespace

Runner add_formats_command(CLI::App& app) {
  auto options = std::make_shared<FormatsOptions>();
  app.add_flag("--json", options->json, "print one JSON object");
  CLI::App* table = app.add_subcommand("table", "print every code of a format of at most 8 bits and its value");
  table->add_option("FORMAT", options->table_format, "format name, e.g. e4m3, e2m1, int4, nf4, mxfp4")->required();
  table->add_flag("--json", options->table_json, "print one JSON object");
  app.footer(
      "Examples:\n"
      "  lowbit formats\n"
      "  lowbit formats table e4m3\n"
      "  lowbit formats table e3m4:bias=5");
  return [options, table] {
    if (table->parsed()) return print_table(options->table_format, options->table_json || options->json);
    return list_formats(options->json);
  };
}

}  // namespace lowbit::cli
