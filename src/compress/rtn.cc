#include "lowbit/compress/rtn.h"

#include <cmath>
#include <string>
#include <vector>

#include "compress/group_quantizer.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"

namespace lowbit {

namespace compress_detail {

void check_weight(std::span<const float> weight, int64_t rows, int64_t cols, const char* where) {
  require(rows >= 0 && cols >= 0, where, "negative shape [" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
  require(weight.size() == static_cast<size_t>(rows) * static_cast<size_t>(cols), where,
          "weight has " + std::to_string(weight.size()) + " values for [" + std::to_string(rows) + ", " +
              std::to_string(cols) + "]");
  for (size_t i = 0; i < weight.size(); ++i)
    if (!std::isfinite(weight[i]))
      throw Error(where, "weight[" + std::to_string(i / static_cast<size_t>(cols)) + ", " +
                             std::to_string(i % static_cast<size_t>(cols)) + "] is not finite");
}

void check_importance(std::span<const float> importance, int64_t cols, const char* where) {
  if (importance.empty()) return;
  require(importance.size() == static_cast<size_t>(cols), where,
          "importance has " + std::to_string(importance.size()) + " weights for " + std::to_string(cols) + " columns");
  for (size_t j = 0; j < importance.size(); ++j)
    require(std::isfinite(importance[j]) && importance[j] >= 0, where,
            "importance[" + std::to_string(j) + "] = " + std::to_string(importance[j]) + " is not finite and >= 0");
}

}  // namespace compress_detail

QuantizedTensor quantize_rtn(std::span<const float> weight, int64_t rows, int64_t cols, const RtnOptions& options) {
  constexpr const char* kWhere = "rtn";
  QuantizedTensor out;
  try {
    out = QuantizedTensor(rows, cols, options.scheme);
  } catch (const Error& e) {
    throw e.with_context(kWhere);
  }
  compress_detail::check_weight(weight, rows, cols, kWhere);
  compress_detail::check_importance(options.importance, cols, kWhere);
  const float tensor_scale = options.scheme.tensor_scale_for(weight);
  out.set_tensor_scale(tensor_scale);
  const compress_detail::GroupQuantizer quantizer(options.scheme, options.scale, tensor_scale);
  const int64_t group = out.group_size(), groups = out.groups_per_row();
  // Parameters are chosen per unit: a group, or a super-block of groups (two-level scales).
  const int64_t unit = quantizer.unit(group);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(cols, 1));
  parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> codes(static_cast<size_t>(cols));
    std::vector<float> scales(static_cast<size_t>(groups));
    std::vector<uint8_t> zeros(quantizer.asymmetric() ? static_cast<size_t>(groups) : 0);
    std::vector<float> mins(quantizer.float_min() ? static_cast<size_t>(groups) : 0);
    std::vector<compress_detail::GroupParams> params(static_cast<size_t>(groups));
    for (int64_t r = begin; r < end; ++r) {
      const float* w = weight.data() + r * cols;
      for (int64_t u0 = 0; u0 < cols; u0 += unit) {
        const size_t n = static_cast<size_t>(std::min(cols, u0 + unit) - u0);
        const auto importance = options.importance.empty() ? std::span<const float>()
                                                           : options.importance.subspan(static_cast<size_t>(u0), n);
        const int64_t g0 = u0 / group, g1 = std::min(groups, (u0 + unit + group - 1) / group);
        quantizer.choose_groups({w + u0, n}, importance, group,
                                std::span(params).subspan(static_cast<size_t>(g0), static_cast<size_t>(g1 - g0)));
      }
      for (int64_t g = 0; g < groups; ++g) {
        const compress_detail::GroupParams& p = params[static_cast<size_t>(g)];
        scales[static_cast<size_t>(g)] = p.scale;
        if (!zeros.empty()) zeros[static_cast<size_t>(g)] = static_cast<uint8_t>(p.zero);
        if (!mins.empty()) mins[static_cast<size_t>(g)] = p.min;
        for (int64_t c = g * group; c < std::min(cols, (g + 1) * group); ++c)
          codes[static_cast<size_t>(c)] = quantizer.encode(w[c], p);
      }
      out.set_row(r, codes, scales, zeros, mins);
    }
  });
  return out;
}

}  // namespace lowbit
