// AWQ: the scale search's α = 0 is RTN exactly, every reported error is the true output error of
// the folded-and-quantized weights (checked against statistics' double computation and plain
// loops), the chosen α is the argmin, AWQ beats RTN on inputs with outlier channels, folding keeps
// the fp model, the clipping search scores what it claims and never makes things worse, results do
// not depend on threads, and bad inputs are refused naming the argument.
#include "lowbit/compress/awq.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "compress/compress_test_util.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/compress/statistics.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;
using testing::normal_values;
using testing::plain_gram;

size_t sz(int64_t v) { return static_cast<size_t>(v); }

// Calibration inputs X = Z·M [tokens x cols]: Z normal, M = I + a dense random mixing (so channels
// are correlated and H is far from diagonal), then a few outlier channels (every 16th, from 3)
// multiplied by `outlier` — the activation pattern AWQ is built for.
std::vector<float> mixed_activations(int64_t tokens, int64_t cols, uint64_t seed, float outlier = 12.0f) {
  const std::vector<float> z = normal_values(sz(tokens * cols), seed);
  std::vector<float> mix = normal_values(sz(cols * cols), seed, 0.5f / std::sqrt(static_cast<float>(cols)), 1);
  for (int64_t j = 0; j < cols; ++j) mix[sz(j * cols + j)] += 1.0f;
  std::vector<float> x(z.size(), 0.0f);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < cols; ++i) {
      const float zi = z[sz(t * cols + i)];
      for (int64_t j = 0; j < cols; ++j) x[sz(t * cols + j)] += zi * mix[sz(i * cols + j)];
    }
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 3; j < cols; j += 16) x[sz(t * cols + j)] *= outlier;
  return x;
}

struct Calibration {
  int64_t tokens, cols;
  std::vector<float> x;
  std::vector<double> h;
  std::vector<float> mean_abs;
};

Calibration calibrate(int64_t tokens, int64_t cols, uint64_t seed, float outlier = 12.0f) {
  Calibration c{tokens, cols, mixed_activations(tokens, cols, seed, outlier), {}, {}};
  c.h.assign(sz(cols * cols), 0.0);
  accumulate_hessian(c.h, c.x, tokens, cols, GramPrecision::kDouble);
  ChannelStatistics stats(cols);
  stats.add(c.x, tokens);
  c.mean_abs = stats.mean_abs();
  return c;
}

std::vector<float> rtn_dequantized(const std::vector<float>& w, int64_t rows, int64_t cols, const QuantScheme& scheme) {
  RtnOptions options;
  options.scheme = scheme;
  return quantize_rtn(w, rows, cols, options).dequantize();
}

// Ŵ = Q(W·diag(s))·diag(1/s) built from the public pieces: scale_columns, quantize_rtn, a division.
std::vector<float> awq_dequantized(std::vector<float> w, int64_t rows, int64_t cols, const std::vector<float>& s,
                                   const QuantScheme& scheme) {
  scale_columns(w, rows, cols, s);
  std::vector<float> q = rtn_dequantized(w, rows, cols, scheme);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) q[sz(r * cols + j)] /= s[sz(j)];
  return q;
}

// Σ over rows and groups of δ_gᵀ H_gg δ_g, in double, written plainly.
double block_error(const std::vector<float>& w, const std::vector<float>& w_hat, int64_t rows, int64_t cols,
                   int64_t group, const std::vector<double>& h) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c0 = 0; c0 < cols; c0 += group) {
      const int64_t c1 = std::min(cols, c0 + group);
      for (int64_t i = c0; i < c1; ++i)
        for (int64_t j = c0; j < c1; ++j)
          total += (static_cast<double>(w[sz(r * cols + i)]) - w_hat[sz(r * cols + i)]) * h[sz(i * cols + j)] *
                   (static_cast<double>(w[sz(r * cols + j)]) - w_hat[sz(r * cols + j)]);
    }
  return total;
}

void expect_relative(double actual, double expected, double tolerance) {
  EXPECT_NEAR(actual, expected, tolerance * std::fabs(expected)) << "relative tolerance " << tolerance;
}

// A q/k/v-like group: three matrices of different heights reading one input.
struct Group {
  std::vector<std::vector<float>> weights;
  std::vector<int64_t> rows;
  std::vector<AwqLinear> linears() const {
    std::vector<AwqLinear> out;
    for (size_t i = 0; i < weights.size(); ++i) out.push_back({weights[i], rows[i]});
    return out;
  }
};

Group make_group(std::vector<int64_t> rows, int64_t cols, uint64_t seed) {
  Group g;
  g.rows = rows;
  for (size_t i = 0; i < rows.size(); ++i) g.weights.push_back(normal_values(sz(rows[i] * cols), seed, 0.02f, 10 + i));
  return g;
}

TEST(AwqScales, AlphaZeroIsRtnAndEveryErrorIsTheFoldedOutputError) {
  const int64_t cols = 96;
  const Calibration cal = calibrate(256, cols, 1);
  const Group group = make_group({80, 24, 24}, cols, 2);
  for (const QuantScheme& scheme : {QuantScheme::integer(4, 32, true), QuantScheme::integer(3, 0, false),
                                    QuantScheme::integer(4, 40, true, DType::kBF16)}) {
    SCOPED_TRACE(scheme.to_string());
    AwqScaleOptions options;
    options.grid = 5;
    const AwqScaleResult result = awq_search_scales(group.linears(), cols, cal.h, cal.mean_abs, scheme, options);
    ASSERT_EQ(result.errors.size(), 5u);
    double rtn = 0, chosen = 0;
    for (size_t i = 0; i < group.weights.size(); ++i) {
      const std::vector<float>& w = group.weights[i];
      rtn += hessian_weighted_error(w, rtn_dequantized(w, group.rows[i], cols, scheme), group.rows[i], cols, cal.h);
      chosen += hessian_weighted_error(w, awq_dequantized(w, group.rows[i], cols, result.scales, scheme), group.rows[i],
                                       cols, cal.h);
    }
    expect_relative(result.errors[0], rtn, 1e-5);
    expect_relative(result.error, chosen, 1e-5);
  }
}

TEST(AwqScales, AlphaZeroScalesAreOneAndTheChoiceIsTheArgmin) {
  const int64_t cols = 64;
  const Calibration cal = calibrate(200, cols, 3);
  const Group group = make_group({48}, cols, 4);
  const QuantScheme scheme = QuantScheme::integer(3, 32, true);
  AwqScaleOptions one;
  one.grid = 1;
  const AwqScaleResult rtn = awq_search_scales(group.linears(), cols, cal.h, cal.mean_abs, scheme, one);
  EXPECT_EQ(rtn.alpha, 0.0);
  EXPECT_EQ(rtn.scales, std::vector<float>(sz(cols), 1.0f));

  const AwqScaleResult result = awq_search_scales(group.linears(), cols, cal.h, cal.mean_abs, scheme);
  ASSERT_EQ(result.errors.size(), 20u);
  EXPECT_EQ(result.errors[0], rtn.error);
  const auto best = std::min_element(result.errors.begin(), result.errors.end());  // first minimum: smallest α
  EXPECT_EQ(result.error, *best);
  EXPECT_EQ(result.alpha, static_cast<double>(best - result.errors.begin()) / 20.0);
  for (double e : result.errors) EXPECT_LE(result.error, e);
  // s = max(mean|x|^α, 1e-4) / sqrt(max · min), computed here independently.
  std::vector<double> s(sz(cols));
  for (int64_t j = 0; j < cols; ++j)
    s[sz(j)] = std::max(std::pow(static_cast<double>(cal.mean_abs[sz(j)]), result.alpha), 1e-4);
  const double norm = std::sqrt(*std::max_element(s.begin(), s.end()) * *std::min_element(s.begin(), s.end()));
  for (int64_t j = 0; j < cols; ++j) EXPECT_FLOAT_EQ(result.scales[sz(j)], static_cast<float>(s[sz(j)] / norm));
}

TEST(AwqScales, BeatsRtnWhenInputsHaveOutlierChannels) {
  const int64_t cols = 128, tokens = 384;
  const Calibration cal = calibrate(tokens, cols, 5);
  const Group group = make_group({96, 32, 32}, cols, 6);
  for (const QuantScheme& scheme :
       {QuantScheme::integer(3, 32, true), QuantScheme::integer(4, 32, true), QuantScheme::integer(4, 32, false)}) {
    SCOPED_TRACE(scheme.to_string());
    const AwqScaleResult result = awq_search_scales(group.linears(), cols, cal.h, cal.mean_abs, scheme);
    EXPECT_GT(result.alpha, 0.0);
    EXPECT_LT(result.error, 0.9 * result.errors[0]);
    // The same on the real outputs ‖X(W − Ŵ)ᵀ‖², computed from X by plain loops for one matrix.
    const std::vector<float>& w = group.weights[0];
    const double rtn = testing::output_error(cal.x, tokens, w, rtn_dequantized(w, 96, cols, scheme), 96, cols);
    const double awq =
        testing::output_error(cal.x, tokens, w, awq_dequantized(w, 96, cols, result.scales, scheme), 96, cols);
    EXPECT_LT(awq, rtn);
  }
}

TEST(AwqScales, DeadChannelsGetTheClampedScale) {
  const int64_t cols = 32;
  Calibration cal = calibrate(64, cols, 7);
  cal.mean_abs[5] = 0.0f;  // a channel that never fires
  const Group group = make_group({16}, cols, 8);
  const AwqScaleResult result =
      awq_search_scales(group.linears(), cols, cal.h, cal.mean_abs, QuantScheme::integer(4, 0, true));
  for (float s : result.scales) EXPECT_TRUE(std::isfinite(s) && s > 0.0f);
}

TEST(AwqFold, ScaledWeightsWithDividedInputsKeepTheOutputs) {
  const int64_t cols = 48, rows = 20, tokens = 16, inner = 24;
  const Calibration cal = calibrate(tokens, cols, 9);
  const std::vector<float> w = normal_values(sz(rows * cols), 10, 0.02f);
  const AwqScaleResult result = awq_search_scales(std::vector<AwqLinear>{{w, rows}}, cols, cal.h, cal.mean_abs,
                                                  QuantScheme::integer(3, 16, true));
  const std::vector<float>& s = result.scales;
  ASSERT_GT(*std::max_element(s.begin(), s.end()) / *std::min_element(s.begin(), s.end()), 2.0f);
  std::vector<float> ws = w;
  scale_columns(ws, rows, cols, s);

  // Producer 1, an RMSNorm gain: x = n ⊙ g becomes n ⊙ (g/s) = x/s.
  std::vector<float> gain = normal_values(sz(cols), 11, 1.0f, 2), folded_gain = gain;
  divide_vector(folded_gain, s);
  // Producer 2, a previous linear P [cols x inner]: x = P z becomes (P/s) z.
  const std::vector<float> p = normal_values(sz(cols * inner), 12, 0.2f);
  std::vector<float> folded_p = p;
  divide_rows(folded_p, cols, inner, s);
  const std::vector<float> z = normal_values(sz(tokens * inner), 13);

  double worst = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> x(sz(cols)), xs(sz(cols)), y(sz(cols)), ys(sz(cols));
    for (int64_t j = 0; j < cols; ++j) {
      x[sz(j)] = cal.x[sz(t * cols + j)] * gain[sz(j)];
      xs[sz(j)] = cal.x[sz(t * cols + j)] * folded_gain[sz(j)];
      for (int64_t k = 0; k < inner; ++k) {
        y[sz(j)] += static_cast<double>(p[sz(j * inner + k)]) * z[sz(t * inner + k)];
        ys[sz(j)] += static_cast<double>(folded_p[sz(j * inner + k)]) * z[sz(t * inner + k)];
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      double a = 0, b = 0, c = 0, d = 0, scale_a = 0, scale_c = 0;
      for (int64_t j = 0; j < cols; ++j) {
        a += w[sz(r * cols + j)] * x[sz(j)];
        b += ws[sz(r * cols + j)] * xs[sz(j)];
        c += w[sz(r * cols + j)] * y[sz(j)];
        d += ws[sz(r * cols + j)] * ys[sz(j)];
        scale_a += std::fabs(w[sz(r * cols + j)] * x[sz(j)]);
        scale_c += std::fabs(w[sz(r * cols + j)] * y[sz(j)]);
      }
      worst = std::max({worst, std::fabs(a - b) / scale_a, std::fabs(c - d) / scale_c});
    }
  }
  EXPECT_LT(worst, 1e-5);
}

TEST(AwqFold, ScaleHessianIsTheGramOfTheScaledInputs) {
  const int64_t cols = 24, tokens = 40;
  const Calibration cal = calibrate(tokens, cols, 14);
  std::vector<float> s = normal_values(sz(cols), 15, 1.0f, 3);
  for (float& v : s) v = 0.25f + std::fabs(v);
  std::vector<float> xs = cal.x;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < cols; ++j) xs[sz(t * cols + j)] /= s[sz(j)];
  // Explicit (X/s)ᵀ(X/s) in double from the f32 quotients, against diag(1/s) H diag(1/s).
  std::vector<double> explicit_h(sz(cols * cols), 0.0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = 0; j < cols; ++j)
        explicit_h[sz(i * cols + j)] += static_cast<double>(cal.x[sz(t * cols + i)]) / s[sz(i)] *
                                        (static_cast<double>(cal.x[sz(t * cols + j)]) / s[sz(j)]);
  const std::vector<double> scaled = scale_hessian(cal.h, cols, s);
  const std::vector<double> from_f32 = plain_gram(xs, tokens, cols);
  for (size_t i = 0; i < scaled.size(); ++i) {
    EXPECT_NEAR(scaled[i], explicit_h[i], 1e-12 * (1 + std::fabs(explicit_h[i])));
    EXPECT_NEAR(scaled[i], from_f32[i], 1e-5 * (1 + std::fabs(from_f32[i])));
  }
}

TEST(AwqClip, ScoresExactlyTheClippedRtnAndNeverIncreasesTheError) {
  const int64_t cols = 100, rows = 70;  // g32 leaves a ragged last group of 4; 70 rows = two tiles
  const Calibration cal = calibrate(256, cols, 16);
  std::vector<float> w = normal_values(sz(rows * cols), 17, 0.02f);
  for (int64_t r = 0; r < rows; r += 3) w[sz(r * cols + (r * 7) % cols)] = 0.2f;  // weight outliers
  for (const QuantScheme& scheme :
       {QuantScheme::integer(3, 32, true), QuantScheme::integer(4, 32, false), QuantScheme::integer(4, 0, true)}) {
    SCOPED_TRACE(scheme.to_string());
    const int64_t group = scheme.group_size == 0 ? cols : scheme.group_size;
    const AwqClipResult result = awq_search_clip(w, rows, cols, cal.h, scheme);
    EXPECT_LE(result.error_after, result.error_before);
    EXPECT_LT(result.error_after, result.error_before);  // outliers: clipping helps somewhere
    expect_relative(result.error_before,
                    block_error(w, rtn_dequantized(w, rows, cols, scheme), rows, cols, group, cal.h), 1e-5);
    std::vector<float> clipped = w;
    apply_clip(clipped, rows, cols, scheme.group_size, result.max_abs);
    expect_relative(result.error_after,
                    block_error(w, rtn_dequantized(clipped, rows, cols, scheme), rows, cols, group, cal.h), 1e-5);
    // Every bound is c · (group max) for a candidate c ∈ {1, 0.95, ..., 0.55}.
    const int64_t groups = (cols + group - 1) / group;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        float m = 0;
        for (int64_t j = g * group; j < std::min(cols, (g + 1) * group); ++j)
          m = std::max(m, std::fabs(w[sz(r * cols + j)]));
        const float bound = result.max_abs[sz(r * groups + g)];
        bool found = false;
        for (int k = 0; k < 10; ++k) found = found || bound == static_cast<float>(m * (1.0 - k / 20.0));
        EXPECT_TRUE(found) << "row " << r << " group " << g << ": bound " << bound << ", max " << m;
      }
  }
}

TEST(AwqClip, EachGroupGetsItsBestCandidate) {
  // Brute force: for every candidate c, clip every group to c · max, quantize with RTN and score
  // each (row, group) in double; the search must report the sum of the per-group minima.
  const int64_t cols = 72, rows = 40, group = 24, groups = 3;
  const Calibration cal = calibrate(128, cols, 22);
  std::vector<float> w = normal_values(sz(rows * cols), 23, 0.02f);
  for (int64_t r = 0; r < rows; r += 2) w[sz(r * cols + (r * 5) % cols)] = -0.15f;
  const QuantScheme scheme = QuantScheme::integer(3, group, true);
  std::vector<double> best(sz(rows * groups), INFINITY);
  for (int k = 0; k < 10; ++k) {
    std::vector<float> bounds(sz(rows * groups)), clipped = w;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        float m = 0;
        for (int64_t j = g * group; j < (g + 1) * group; ++j) m = std::max(m, std::fabs(w[sz(r * cols + j)]));
        bounds[sz(r * groups + g)] = static_cast<float>(m * (1.0 - k / 20.0));
      }
    apply_clip(clipped, rows, cols, group, bounds);
    const std::vector<float> q = rtn_dequantized(clipped, rows, cols, scheme);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        const std::vector<float> wr(w.begin() + r * cols + g * group, w.begin() + r * cols + (g + 1) * group);
        const std::vector<float> qr(q.begin() + r * cols + g * group, q.begin() + r * cols + (g + 1) * group);
        std::vector<double> hg(sz(group * group));
        for (int64_t i = 0; i < group; ++i)
          for (int64_t j = 0; j < group; ++j) hg[sz(i * group + j)] = cal.h[sz((g * group + i) * cols + g * group + j)];
        double& b = best[sz(r * groups + g)];
        b = std::min(b, block_error(wr, qr, 1, group, group, hg));
      }
  }
  double total = 0;
  for (double b : best) total += b;
  expect_relative(awq_search_clip(w, rows, cols, cal.h, scheme).error_after, total, 1e-6);
}

TEST(AwqClip, NoShrinkReturnsTheGroupMaxima) {
  const int64_t cols = 40, rows = 6;
  const Calibration cal = calibrate(64, cols, 18);
  const std::vector<float> w = normal_values(sz(rows * cols), 19, 0.02f);
  AwqClipOptions options;
  options.max_shrink = 0.01;  // k < 0.2: c = 1 only
  const AwqClipResult result = awq_search_clip(w, rows, cols, cal.h, QuantScheme::integer(4, 16, true), options);
  ASSERT_EQ(result.max_abs.size(), sz(rows * 3));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < 3; ++g) {
      float m = 0;
      for (int64_t j = g * 16; j < std::min<int64_t>(cols, (g + 1) * 16); ++j)
        m = std::max(m, std::fabs(w[sz(r * cols + j)]));
      EXPECT_EQ(result.max_abs[sz(r * 3 + g)], m);
    }
  EXPECT_EQ(result.error_after, result.error_before);
}

TEST(AwqClip, ApplyClipClampsEachGroupExactly) {
  std::vector<float> w = {0.5f,  -0.9f, 0.1f,  2.0f, -3.0f,  // row 0: groups [0,2) [2,4) [4,5)
                          -0.2f, 0.3f,  -7.0f, 0.0f, 1.0f};
  apply_clip(w, 2, 5, 2, std::vector<float>{0.6f, 1.5f, 2.5f, 0.25f, 0.0f, 1.0f});
  EXPECT_EQ(w, (std::vector<float>{0.5f, -0.6f, 0.1f, 1.5f, -2.5f, -0.2f, 0.25f, 0.0f, 0.0f, 1.0f}));
  std::vector<float> row = {1.0f, -2.0f, 3.0f};
  apply_clip(row, 1, 3, 0, std::vector<float>{1.5f});
  EXPECT_EQ(row, (std::vector<float>{1.0f, -1.5f, 1.5f}));
}

TEST(Awq, ResultsDoNotDependOnThreads) {
  const int64_t cols = 96;
  const Calibration cal = calibrate(128, cols, 20);
  const Group group = make_group({150, 40}, cols, 21);
  const QuantScheme scheme = QuantScheme::integer(4, 32, true);
  set_num_threads(1);
  const AwqScaleResult s1 = awq_search_scales(group.linears(), cols, cal.h, cal.mean_abs, scheme);
  const AwqClipResult c1 = awq_search_clip(group.weights[0], 150, cols, cal.h, scheme);
  set_num_threads(2);
  const AwqScaleResult s2 = awq_search_scales(group.linears(), cols, cal.h, cal.mean_abs, scheme);
  const AwqClipResult c2 = awq_search_clip(group.weights[0], 150, cols, cal.h, scheme);
  set_num_threads(0);
  EXPECT_EQ(s1.errors, s2.errors);
  EXPECT_EQ(s1.scales, s2.scales);
  EXPECT_EQ(s1.alpha, s2.alpha);
  EXPECT_EQ(c1.max_abs, c2.max_abs);
  EXPECT_EQ(c1.error_before, c2.error_before);
  EXPECT_EQ(c1.error_after, c2.error_after);
}

TEST(Awq, BadInputsAreRefusedNamingTheArgument) {
  const int64_t cols = 8;
  const std::vector<float> w(16, 0.5f), mean(8, 1.0f);
  const std::vector<double> h(64, 0.0);
  const QuantScheme scheme = QuantScheme::integer(4, 4, true);
  const std::vector<AwqLinear> group = {{w, 2}};
  const auto scales = [&](std::span<const AwqLinear> g, std::span<const double> hh, std::span<const float> m,
                          const QuantScheme& sc, int grid) {
    return error_from([&] { awq_search_scales(g, cols, hh, m, sc, AwqScaleOptions{grid}); });
  };
  EXPECT_TRUE(contains(scales({}, h, mean, scheme, 20), "group is empty"));
  EXPECT_TRUE(contains(scales(std::vector<AwqLinear>{{w, 2}, {w, 3}}, h, mean, scheme, 20), "group[1]: weight has 16"));
  EXPECT_TRUE(contains(scales(group, std::vector<double>(63), mean, scheme, 20), "hessian has 63"));
  std::vector<double> bad_h = h;
  bad_h[9] = NAN;
  EXPECT_TRUE(contains(scales(group, bad_h, mean, scheme, 20), "hessian[1, 1]"));
  EXPECT_TRUE(contains(scales(group, h, std::vector<float>(7, 1.0f), scheme, 20), "mean_abs has 7"));
  std::vector<float> bad_mean = mean;
  bad_mean[2] = -1.0f;
  EXPECT_TRUE(contains(scales(group, h, bad_mean, scheme, 20), "mean_abs[2]"));
  EXPECT_TRUE(contains(scales(group, h, mean, scheme, 0), "grid = 0"));
  EXPECT_TRUE(contains(scales(group, h, mean, QuantScheme::integer(4, 9, true), 20), "scheme"));
  std::vector<float> bad_w = w;
  bad_w[3] = INFINITY;
  EXPECT_TRUE(contains(scales(std::vector<AwqLinear>{{bad_w, 2}}, h, mean, scheme, 20), "weight[0, 3]"));

  EXPECT_TRUE(contains(error_from([&] {
                         awq_search_clip(w, 2, cols, h, scheme, AwqClipOptions{20, 0.0});
                       }),
                       "max_shrink"));
  EXPECT_TRUE(contains(error_from([&] {
                         awq_search_clip(w, 2, cols, h, scheme, AwqClipOptions{0, 0.5});
                       }),
                       "grid = 0"));
  EXPECT_TRUE(contains(error_from([&] { awq_search_clip(w, 3, cols, h, scheme); }), "weight has 16"));
  EXPECT_TRUE(
      contains(error_from([&] { awq_search_clip(w, 2, cols, std::vector<double>(4), scheme); }), "hessian has 4"));
  std::vector<float> wc = w;
  EXPECT_TRUE(contains(error_from([&] { apply_clip(wc, 2, cols, 4, std::vector<float>(3)); }), "max_abs has 3"));
  EXPECT_TRUE(contains(error_from([&] { apply_clip(wc, 2, cols, 4, std::vector<float>{1, 1, -1, 1}); }), "max_abs[2]"));
  EXPECT_TRUE(contains(error_from([&] { apply_clip(wc, 2, cols, 9, std::vector<float>(2)); }), "group_size = 9"));
  EXPECT_TRUE(contains(error_from([&] { scale_columns(wc, 2, cols, std::vector<float>(8, 0.0f)); }), "s[0]"));
  EXPECT_TRUE(contains(error_from([&] { divide_rows(wc, 2, cols, std::vector<float>(8, 1.0f)); }), "s has 8"));
  EXPECT_TRUE(contains(error_from([&] { scale_hessian(h, cols, std::vector<float>(3, 1.0f)); }), "s has 3"));
}

// Timing of the two searches at SmolLM2-135M shapes (hidden 576, q/k/v 576+192+192 rows,
// intermediate 1536). Run with --gtest_also_run_disabled_tests.
TEST(Awq, DISABLED_Timing) {
  const auto seconds = [](auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const QuantScheme scheme = QuantScheme::integer(4, 128, true);
  for (int64_t cols : {int64_t{576}, int64_t{1536}}) {
    const std::vector<float> x = normal_values(sz(512 * cols), 30);
    std::vector<double> h(sz(cols * cols), 0.0);
    accumulate_hessian(h, x, 512, cols);
    ChannelStatistics stats(cols);
    stats.add(x, 512);
    const std::vector<float> mean = stats.mean_abs();
    const Group group = cols == 576 ? make_group({576, 192, 192}, cols, 31) : make_group({576}, cols, 32);
    const double t_scale = seconds([&] { awq_search_scales(group.linears(), cols, h, mean, scheme); });
    const double t_clip = seconds([&] { awq_search_clip(group.weights[0], 576, cols, h, scheme); });
    std::printf("cols %lld: scale search %.3f s, clip search (576 rows) %.3f s, %d threads\n",
                static_cast<long long>(cols), t_scale, t_clip, num_threads());
  }
}

}  // namespace
}  // namespace lowbit
