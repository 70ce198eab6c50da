#include "lowbit/compress/sparsity.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "compress/mask_select.h"
#include "lowbit/core/error.h"

namespace lowbit {

namespace {

constexpr const char* kWhere = "sparsity";
constexpr int kMaxM = 64;

std::string str(int64_t v) { return std::to_string(v); }

void check_sizes(size_t size, int64_t rows, int64_t cols, const char* what) {
  require(rows >= 0 && cols >= 0, kWhere, "negative size " + str(rows) + "x" + str(cols));
  require(size == static_cast<size_t>(rows) * static_cast<size_t>(cols), kWhere,
          std::string(what) + " has " + std::to_string(size) + " values, expected " + str(rows) + "x" + str(cols));
}

}  // namespace

namespace compress_detail {

void keep_largest(const float* scores, int64_t count, int64_t prune, uint8_t* mask, std::vector<int64_t>& order) {
  std::fill(mask, mask + count, uint8_t{1});
  if (prune <= 0) return;
  order.resize(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), int64_t{0});
  auto less = [&](int64_t a, int64_t b) { return scores[a] < scores[b] || (scores[a] == scores[b] && a < b); };
  if (prune < count) std::nth_element(order.begin(), order.begin() + (prune - 1), order.end(), less);
  for (int64_t k = 0; k < std::min(prune, count); ++k) mask[order[static_cast<size_t>(k)]] = 0;
}

}  // namespace compress_detail

using compress_detail::keep_largest;

SparsityPattern SparsityPattern::unstructured(double ratio) {
  SparsityPattern p;
  p.ratio = ratio;
  p.validate();
  return p;
}

SparsityPattern SparsityPattern::n_of_m(int n, int m) {
  SparsityPattern p;
  p.n = n;
  p.m = m;
  p.validate();
  return p;
}

SparsityPattern SparsityPattern::parse(std::string_view text) {
  const std::string where = "sparsity '" + std::string(text) + "'";
  auto parse_int = [&](std::string_view part) {
    int v = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    require(ec == std::errc() && end == part.data() + part.size() && !part.empty(), where,
            "expected N:M with integers (e.g. 2:4) or a ratio (e.g. 50% or 0.5)");
    return v;
  };
  if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
    try {
      return n_of_m(parse_int(text.substr(0, colon)), parse_int(text.substr(colon + 1)));
    } catch (const Error& e) {
      std::string message = e.what();
      if (message.starts_with(where)) throw;
      if (message.starts_with("sparsity: ")) message = message.substr(10);
      throw Error(where, message);
    }
  }
  const bool percent = !text.empty() && text.back() == '%';
  const std::string number(percent ? text.substr(0, text.size() - 1) : text);
  char* end = nullptr;
  const double value = number.empty() ? NAN : std::strtod(number.c_str(), &end);
  require(std::isfinite(value) && end == number.c_str() + number.size(), where,
          "expected N:M with integers (e.g. 2:4) or a ratio (e.g. 50% or 0.5)");
  try {
    return unstructured(percent ? value / 100.0 : value);
  } catch (const Error& e) {
    const std::string message = e.what();
    throw Error(where, message.starts_with("sparsity: ") ? message.substr(10) : message);
  }
}

void SparsityPattern::validate() const {
  if (nm()) {
    require(n >= 1 && n < m && m <= kMaxM, kWhere,
            "N:M needs 1 <= N < M <= " + std::to_string(kMaxM) + ", found " + std::to_string(n) + ":" + std::to_string(m));
    require(ratio == 0, kWhere, "a pattern is either N:M or a ratio, not both");
  } else {
    require(m == 0 && n == 0, kWhere, "N:M needs M > 0, found " + std::to_string(n) + ":" + std::to_string(m));
    require(std::isfinite(ratio) && ratio >= 0 && ratio <= 0.99, kWhere,
            "the pruned fraction must be in [0, 0.99] (0%..99%), found " + std::to_string(ratio));
  }
}

std::string SparsityPattern::to_string() const {
  if (nm()) return std::to_string(n) + ":" + std::to_string(m);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", ratio * 100);
  std::string s = buffer;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s + "%";
}

int64_t SparsityPattern::pruned_before(int64_t c) const { return std::llround(ratio * static_cast<double>(c)); }

int64_t SparsityPattern::kept_in_group(int64_t size) const { return std::min<int64_t>(n, size); }

double SparsityPattern::pruned_fraction(int64_t rows, int64_t cols) const {
  if (rows <= 0 || cols <= 0) return 0;
  if (!nm()) return static_cast<double>(pruned_before(cols)) / static_cast<double>(cols);
  int64_t kept = (cols / m) * n + kept_in_group(cols % m);
  return 1.0 - static_cast<double>(kept) / static_cast<double>(cols);
}

std::vector<uint8_t> mask_from_scores(std::span<const float> scores, int64_t rows, int64_t cols,
                                      const SparsityPattern& pattern, MaskScope scope) {
  check_sizes(scores.size(), rows, cols, "the score matrix");
  pattern.validate();
  for (size_t i = 0; i < scores.size(); ++i)
    require(std::isfinite(scores[i]), kWhere,
            "score at row " + str(static_cast<int64_t>(i) / std::max<int64_t>(cols, 1)) + ", column " +
                str(static_cast<int64_t>(i) % std::max<int64_t>(cols, 1)) + " is not finite");
  std::vector<uint8_t> mask(scores.size(), 1);
  std::vector<int64_t> order;
  if (pattern.nm()) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c0 = 0; c0 < cols; c0 += pattern.m) {
        const int64_t size = std::min<int64_t>(pattern.m, cols - c0);
        keep_largest(scores.data() + r * cols + c0, size, size - pattern.kept_in_group(size), mask.data() + r * cols + c0, order);
      }
  } else if (scope == MaskScope::kLayer) {
    keep_largest(scores.data(), rows * cols, std::llround(pattern.ratio * static_cast<double>(rows * cols)), mask.data(), order);
  } else {
    for (int64_t r = 0; r < rows; ++r)
      keep_largest(scores.data() + r * cols, cols, pattern.pruned_before(cols), mask.data() + r * cols, order);
  }
  return mask;
}

std::vector<uint8_t> magnitude_mask(std::span<const float> weight, int64_t rows, int64_t cols,
                                    const SparsityPattern& pattern, MaskScope scope) {
  check_sizes(weight.size(), rows, cols, "the weight");
  std::vector<float> scores(weight.size());
  for (size_t i = 0; i < weight.size(); ++i) scores[i] = std::fabs(weight[i]);
  return mask_from_scores(scores, rows, cols, pattern, scope);
}

std::vector<uint8_t> wanda_mask(std::span<const float> weight, int64_t rows, int64_t cols,
                                const SparsityPattern& pattern, std::span<const float> input_norms) {
  check_sizes(weight.size(), rows, cols, "the weight");
  require(input_norms.size() == static_cast<size_t>(cols), kWhere,
          "Wanda needs one input norm per column: " + std::to_string(input_norms.size()) + " for " + str(cols) + " columns");
  for (int64_t j = 0; j < cols; ++j)
    require(std::isfinite(input_norms[j]) && input_norms[j] >= 0, kWhere,
            "input norm of column " + str(j) + " must be finite and >= 0, found " + std::to_string(input_norms[j]));
  std::vector<float> scores(weight.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      scores[r * cols + j] = std::fabs(weight[r * cols + j]) * input_norms[j];
  return mask_from_scores(scores, rows, cols, pattern, MaskScope::kRow);
}

std::vector<float> input_norms_from_hessian(std::span<const double> hessian, int64_t cols) {
  require(hessian.size() == static_cast<size_t>(cols) * static_cast<size_t>(cols), kWhere,
          "H has " + std::to_string(hessian.size()) + " entries, expected " + str(cols) + "x" + str(cols));
  std::vector<float> norms(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) norms[j] = static_cast<float>(std::sqrt(std::max(0.0, hessian[j * cols + j])));
  return norms;
}

void apply_mask(std::span<float> weight, std::span<const uint8_t> mask) {
  require(weight.size() == mask.size(), kWhere,
          "mask has " + std::to_string(mask.size()) + " entries for " + std::to_string(weight.size()) + " weights");
  for (size_t i = 0; i < weight.size(); ++i)
    if (!mask[i]) weight[i] = 0.0f;
}

void check_mask(std::span<const uint8_t> mask, int64_t rows, int64_t cols, const SparsityPattern& pattern,
                MaskScope scope, const std::string& where) {
  require(mask.size() == static_cast<size_t>(rows) * static_cast<size_t>(cols), where,
          "mask has " + std::to_string(mask.size()) + " entries, expected " + str(rows) + "x" + str(cols));
  if (pattern.nm()) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c0 = 0; c0 < cols; c0 += pattern.m) {
        const int64_t size = std::min<int64_t>(pattern.m, cols - c0);
        int64_t kept = 0;
        for (int64_t c = c0; c < c0 + size; ++c) kept += mask[r * cols + c] != 0;
        require(kept <= pattern.kept_in_group(size), where,
                "row " + str(r) + ", columns " + str(c0) + ".." + str(c0 + size - 1) + " keep " + str(kept) +
                    " weights, the " + pattern.to_string() + " pattern allows " + str(pattern.kept_in_group(size)));
      }
    return;
  }
  if (scope == MaskScope::kLayer) {
    int64_t pruned = 0;
    for (uint8_t k : mask) pruned += k == 0;
    const int64_t expected = std::llround(pattern.ratio * static_cast<double>(rows * cols));
    require(pruned == expected, where,
            "prunes " + str(pruned) + " weights, " + pattern.to_string() + " of the layer is " + str(expected));
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    int64_t pruned = 0;
    for (int64_t c = 0; c < cols; ++c) pruned += mask[r * cols + c] == 0;
    require(pruned == pattern.pruned_before(cols), where,
            "row " + str(r) + " prunes " + str(pruned) + " weights, " + pattern.to_string() + " of a row is " +
                str(pattern.pruned_before(cols)));
  }
}

double mask_sparsity(std::span<const uint8_t> mask) {
  if (mask.empty()) return 0;
  size_t zeros = 0;
  for (uint8_t k : mask) zeros += k == 0;
  return static_cast<double>(zeros) / static_cast<double>(mask.size());
}

}  // namespace lowbit
