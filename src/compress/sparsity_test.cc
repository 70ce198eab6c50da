// Pruning patterns and masks (sparsity.h) and SparseGPT (sparsegpt.h): exact counts per row and
// per N:M group, the keep-the-largest property, SparseGPT at 0% against GPTQ and the identity,
// reconstruction error ordering on correlated inputs, joint pruning + quantization, fixed masks,
// and thread-count determinism.
#include "lowbit/compress/sparsity.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "compress/compress_test_util.h"
#include "lowbit/compress/gptq.h"
#include "lowbit/compress/sparsegpt.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;

TEST(SparsityPattern, ParsesPrintsAndRefuses) {
  EXPECT_EQ(SparsityPattern::parse("2:4").to_string(), "2:4");
  EXPECT_EQ(SparsityPattern::parse("4:8").n, 4);
  EXPECT_EQ(SparsityPattern::parse("50%").ratio, 0.5);
  EXPECT_EQ(SparsityPattern::parse("0.25").to_string(), "25%");
  EXPECT_EQ(SparsityPattern::parse("37.5%").to_string(), "37.5%");
  EXPECT_TRUE(SparsityPattern::parse("0%").none());
  EXPECT_TRUE(contains(error_from([] { SparsityPattern::parse("4:2"); }), "sparsity '4:2'"));
  EXPECT_TRUE(contains(error_from([] { SparsityPattern::parse("4:2"); }), "1 <= N < M"));
  EXPECT_TRUE(contains(error_from([] { SparsityPattern::parse("100%"); }), "[0, 0.99]"));
  EXPECT_TRUE(contains(error_from([] { SparsityPattern::parse("half"); }), "expected N:M"));
  EXPECT_TRUE(contains(error_from([] { SparsityPattern::parse("2:x"); }), "expected N:M"));
  EXPECT_TRUE(contains(error_from([] { SparsityPattern::parse("-0.1"); }), "[0, 0.99]"));
  EXPECT_DOUBLE_EQ(SparsityPattern::parse("2:4").pruned_fraction(3, 10), 0.4);  // groups 4,4,2 keep 2,2,2
}

// Every row prunes exactly round(ratio · cols), every N:M group keeps exactly min(n, width), and
// within a row (group) every kept |w| is >= every pruned |w|.
void expect_mask_shape(const std::vector<float>& w, const std::vector<uint8_t>& mask, int64_t rows, int64_t cols,
                       const SparsityPattern& p) {
  ASSERT_EQ(mask.size(), w.size());
  const int64_t span = p.nm() ? p.m : cols;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c0 = 0; c0 < cols; c0 += span) {
      const int64_t width = std::min(span, cols - c0);
      int64_t kept = 0;
      float min_kept = INFINITY, max_pruned = 0;
      for (int64_t c = c0; c < c0 + width; ++c) {
        const float a = std::fabs(w[r * cols + c]);
        if (mask[r * cols + c]) ++kept, min_kept = std::min(min_kept, a);
        else max_pruned = std::max(max_pruned, a);
      }
      const int64_t expected = p.nm() ? std::min<int64_t>(p.n, width) : cols - p.pruned_before(cols);
      ASSERT_EQ(kept, expected) << "row " << r << " columns from " << c0;
      EXPECT_GE(min_kept, max_pruned) << "row " << r << " columns from " << c0;
    }
}

TEST(Masks, MagnitudeHasTheExactPatternAndKeepsTheLargest) {
  const int64_t rows = 7, cols = 45;  // 45: ragged last group for 2:4 (1 column) and 4:8 (5 columns)
  const auto w = testing::normal_values(rows * cols, 11);
  for (const char* text : {"2:4", "4:8", "1:3", "50%", "30%", "90%"}) {
    SCOPED_TRACE(text);
    const auto p = SparsityPattern::parse(text);
    const auto mask = magnitude_mask(w, rows, cols, p);
    expect_mask_shape(w, mask, rows, cols, p);
    check_mask(mask, rows, cols, p, MaskScope::kRow, "test");
  }
  // 2:4 of 45 columns: 11 full groups keep 22, the last (1 column) keeps it.
  EXPECT_NEAR(mask_sparsity(magnitude_mask(w, rows, cols, SparsityPattern::parse("2:4"))), 22.0 / 45, 1e-12);
}

TEST(Masks, LayerScopeRanksTheWholeMatrix) {
  const int64_t rows = 5, cols = 16;
  std::vector<float> w(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) w[i] = static_cast<float>(i) * (i % 2 ? -1.0f : 1.0f);  // |w| = i
  const auto mask = magnitude_mask(w, rows, cols, SparsityPattern::unstructured(0.5), MaskScope::kLayer);
  for (int64_t i = 0; i < rows * cols; ++i) EXPECT_EQ(mask[i], i >= 40 ? 1 : 0) << i;
  check_mask(mask, rows, cols, SparsityPattern::unstructured(0.5), MaskScope::kLayer, "test");
  EXPECT_TRUE(contains(error_from([&] { check_mask(mask, rows, cols, SparsityPattern::unstructured(0.5), MaskScope::kRow, "m"); }),
                       "m: row 0 prunes 16 weights, 50% of a row is 8"));
}

TEST(Masks, WandaWeighsByInputNorms) {
  const int64_t rows = 3, cols = 8;
  const auto w = testing::normal_values(rows * cols, 5);
  const auto p = SparsityPattern::parse("2:4");
  // Equal norms: Wanda is magnitude.
  EXPECT_EQ(wanda_mask(w, rows, cols, p, std::vector<float>(cols, 2.0f)), magnitude_mask(w, rows, cols, p));
  // A silent input (norm 0) is pruned first; a loud one kept.
  std::vector<float> norms(cols, 1.0f);
  norms[1] = 0.0f;
  norms[2] = 1e6f;
  const auto mask = wanda_mask(w, rows, cols, p, norms);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(mask[r * cols + 1], 0);
    EXPECT_EQ(mask[r * cols + 2], 1);
  }
  const std::vector<double> h = {4, 0, 0, 9};
  EXPECT_EQ(input_norms_from_hessian(h, 2), (std::vector<float>{2, 3}));
  EXPECT_TRUE(contains(error_from([&] { wanda_mask(w, rows, cols, p, std::vector<float>(3, 1.0f)); }), "one input norm per column"));
}

TEST(Masks, CheckNamesTheBrokenGroup) {
  std::vector<uint8_t> mask(2 * 8, 1);
  EXPECT_TRUE(contains(error_from([&] { check_mask(mask, 2, 8, SparsityPattern::parse("2:4"), MaskScope::kRow, "layer x"); }),
                       "layer x: row 0, columns 0..3 keep 4 weights, the 2:4 pattern allows 2"));
  EXPECT_TRUE(contains(error_from([&] { magnitude_mask(std::vector<float>(5), 2, 3, SparsityPattern::parse("2:4")); }),
                       "expected 2x3"));
}

struct Problem {
  int64_t rows, cols, tokens;
  std::vector<float> w, x;
  std::vector<double> h;
};

Problem correlated_problem(int64_t rows, int64_t cols, uint64_t seed) {
  Problem p{rows, cols, 4 * cols, {}, {}, {}};
  p.w = testing::normal_values(rows * cols, seed, 0.1f);
  p.x = testing::correlated_activations(p.tokens, cols, seed + 1);
  p.h = testing::plain_gram(p.x, p.tokens, cols);
  return p;
}

TEST(SparseGpt, AtZeroSparsityItIsGptqOrTheIdentity) {
  const Problem p = correlated_problem(40, 96, 3);
  GptqOptions gptq;
  gptq.scheme = QuantScheme::integer(4, 32, false);
  const GptqHessian h(p.h, p.cols, gptq.percdamp, false);
  const GptqResult reference = quantize_gptq(p.w, p.rows, p.cols, h, gptq);
  SparseGptOptions options;
  options.pattern = SparsityPattern::unstructured(0);
  options.quantize = true;
  options.gptq = gptq;
  const SparseGptResult joint = sparsegpt(p.w, p.rows, p.cols, h, options);
  ASSERT_TRUE(joint.tensor.has_value());
  EXPECT_TRUE(std::ranges::equal(joint.tensor->packed_codes(), reference.tensor.packed_codes()));
  EXPECT_TRUE(std::ranges::equal(joint.tensor->scales(), reference.tensor.scales()));
  EXPECT_TRUE(std::ranges::equal(joint.tensor->zero_points(), reference.tensor.zero_points()));
  EXPECT_EQ(joint.stats.loss, reference.stats.loss);
  EXPECT_EQ(joint.weight, reference.tensor.dequantize());

  options.quantize = false;
  const SparseGptResult identity = sparsegpt(p.w, p.rows, p.cols, h, options);
  EXPECT_EQ(identity.weight, p.w);
  EXPECT_EQ(identity.stats.loss, 0.0);
  EXPECT_EQ(mask_sparsity(identity.mask), 0.0);
}

double error_of(const Problem& p, const std::vector<float>& w_hat) {
  return testing::output_error(p.x, p.tokens, p.w, w_hat, p.rows, p.cols);
}

TEST(SparseGpt, ReconstructsBetterThanMagnitudeAndWanda) {
  const Problem p = correlated_problem(48, 128, 9);
  const GptqHessian h(p.h, p.cols, 0.01, false);
  for (const char* text : {"50%", "2:4", "4:8"}) {
    SCOPED_TRACE(text);
    const auto pattern = SparsityPattern::parse(text);
    SparseGptOptions options;
    options.pattern = pattern;
    const SparseGptResult sparse = sparsegpt(p.w, p.rows, p.cols, h, options);
    expect_mask_shape(p.w, magnitude_mask(p.w, p.rows, p.cols, pattern), p.rows, p.cols, pattern);
    check_mask(sparse.mask, p.rows, p.cols, pattern, MaskScope::kRow, "sparsegpt");
    for (size_t i = 0; i < sparse.weight.size(); ++i)
      if (!sparse.mask[i]) {
        ASSERT_EQ(sparse.weight[i], 0.0f) << i;
      }
    EXPECT_EQ(mask_sparsity(sparse.mask), pattern.pruned_fraction(p.rows, p.cols));

    std::vector<float> magnitude = p.w, wanda = p.w;
    apply_mask(magnitude, magnitude_mask(p.w, p.rows, p.cols, pattern));
    apply_mask(wanda, wanda_mask(p.w, p.rows, p.cols, pattern, input_norms_from_hessian(p.h, p.cols)));
    const double e_sparse = error_of(p, sparse.weight), e_wanda = error_of(p, wanda), e_magnitude = error_of(p, magnitude);
    EXPECT_LT(e_sparse, e_wanda);
    EXPECT_LT(e_wanda, e_magnitude);
    // The loss SparseGPT reports is its objective measured with the damped H: Σ_r δ_r(H + λI)δ_rᵀ.
    double delta2 = 0;
    for (size_t i = 0; i < p.w.size(); ++i) delta2 += std::pow(static_cast<double>(p.w[i]) - sparse.weight[i], 2);
    const double damped = e_sparse + h.damping() * delta2;
    EXPECT_NEAR(sparse.stats.loss, damped, 1e-3 * damped);
  }
}

TEST(SparseGpt, JointPruningAndQuantizationKeepsPrunedWeightsAtZero) {
  const Problem p = correlated_problem(33, 80, 21);  // 80 = 2.5 groups of 32: a ragged group
  for (bool symmetric : {true, false}) {
    SCOPED_TRACE(symmetric ? "int4" : "uint4");
    SparseGptOptions options;
    options.pattern = SparsityPattern::parse("2:4");
    options.quantize = true;
    options.gptq.scheme = QuantScheme::integer(4, 32, symmetric);
    const GptqHessian h(p.h, p.cols, options.gptq.percdamp, false);
    const SparseGptResult r = sparsegpt(p.w, p.rows, p.cols, h, options);
    ASSERT_TRUE(r.tensor.has_value());
    const std::vector<float> dequantized = r.tensor->dequantize();
    EXPECT_EQ(dequantized, r.weight);
    for (size_t i = 0; i < r.mask.size(); ++i)
      if (!r.mask[i]) {
        ASSERT_EQ(dequantized[i], 0.0f) << i;
      }
    check_mask(r.mask, p.rows, p.cols, options.pattern, MaskScope::kRow, "joint");
    // Joint 2:4 + 4-bit costs more than 2:4 alone but stays far below magnitude 2:4 alone.
    std::vector<float> magnitude = p.w;
    apply_mask(magnitude, magnitude_mask(p.w, p.rows, p.cols, options.pattern));
    EXPECT_LT(error_of(p, r.weight), error_of(p, magnitude));
  }
}

TEST(SparseGpt, FixedMaskIsKeptAndReconstructed) {
  const Problem p = correlated_problem(24, 64, 31);
  const auto pattern = SparsityPattern::unstructured(0.6);
  const auto mask = wanda_mask(p.w, p.rows, p.cols, pattern, input_norms_from_hessian(p.h, p.cols));
  SparseGptOptions options;
  options.pattern = pattern;
  const GptqHessian h(p.h, p.cols, 0.01, false);
  const SparseGptResult r = sparsegpt(p.w, p.rows, p.cols, h, options, mask);
  EXPECT_EQ(r.mask, mask);
  std::vector<float> plain = p.w;
  apply_mask(plain, mask);
  EXPECT_LT(error_of(p, r.weight), 0.9 * error_of(p, plain));  // the kept weights compensate
  for (size_t i = 0; i < mask.size(); ++i)
    if (!mask[i]) {
      ASSERT_EQ(r.weight[i], 0.0f);
    }
}

TEST(SparseGpt, SameResultForAnyThreadCountAndRefusals) {
  const Problem p = correlated_problem(300, 64, 41);  // more than one 256-row tile
  SparseGptOptions options;
  options.pattern = SparsityPattern::parse("50%");
  options.quantize = true;
  options.gptq.scheme = QuantScheme::integer(3, 16, true);
  const GptqHessian h(p.h, p.cols, 0.01, false);
  set_num_threads(1);
  const SparseGptResult one = sparsegpt(p.w, p.rows, p.cols, h, options);
  set_num_threads(2);
  const SparseGptResult two = sparsegpt(p.w, p.rows, p.cols, h, options);
  set_num_threads(0);
  EXPECT_EQ(one.weight, two.weight);
  EXPECT_EQ(one.mask, two.mask);

  const GptqHessian ordered(p.h, p.cols, 0.01, true);
  options.gptq.act_order = true;
  EXPECT_TRUE(contains(error_from([&] { sparsegpt(p.w, p.rows, p.cols, ordered, options); }), "sparsegpt: act-order"));
  options.gptq.act_order = false;
  EXPECT_TRUE(contains(error_from([&] { sparsegpt(p.w, p.rows, p.cols, h, options, std::vector<uint8_t>(3)); }),
                       "the fixed mask has 3 entries"));
}

}  // namespace
}  // namespace lowbit
