#include "lowbit/numerics/rounding.h"

#include <string>

#include "lowbit/core/error.h"

namespace lowbit {

namespace {
struct RoundingName {
  std::string_view name;
  Rounding mode;
};
// The first spelling of each mode is canonical.
constexpr RoundingName kRoundingNames[] = {
    {"nearest", Rounding::kNearestEven},        {"nearest-even", Rounding::kNearestEven},
    {"rne", Rounding::kNearestEven},            {"nearest-away", Rounding::kNearestAway},
    {"rna", Rounding::kNearestAway},            {"toward-zero", Rounding::kTowardZero},
    {"rtz", Rounding::kTowardZero},             {"truncate", Rounding::kTowardZero},
    {"up", Rounding::kTowardPositive},          {"toward-positive", Rounding::kTowardPositive},
    {"ceil", Rounding::kTowardPositive},        {"rup", Rounding::kTowardPositive},
    {"down", Rounding::kTowardNegative},        {"toward-negative", Rounding::kTowardNegative},
    {"floor", Rounding::kTowardNegative},       {"rdn", Rounding::kTowardNegative},
    {"stochastic", Rounding::kStochastic},      {"sr", Rounding::kStochastic},
    {"stochastic-equal", Rounding::kStochasticEqual}, {"sr-equal", Rounding::kStochasticEqual},
};
}  // namespace

std::string_view rounding_name(Rounding mode) {
  for (const auto& entry : kRoundingNames)
    if (entry.mode == mode) return entry.name;
  return "?";
}

std::optional<Rounding> parse_rounding(std::string_view name) {
  std::string lowered(name);
  for (char& c : lowered) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '_') c = '-';
  }
  for (const auto& entry : kRoundingNames)
    if (entry.name == lowered) return entry.mode;
  return std::nullopt;
}

Rounding parse_rounding_or_throw(std::string_view name) {
  if (auto mode = parse_rounding(name)) return *mode;
  std::string known;
  for (Rounding mode : kAllRoundings) known += (known.empty() ? "" : ", ") + std::string(rounding_name(mode));
  throw Error("rounding", "unknown mode \"" + std::string(name) + "\" (expected one of " + known + ")");
}

}  // namespace lowbit
