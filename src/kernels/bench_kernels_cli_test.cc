// `lowbit bench kernels` (tools/lowbit/bench_kernels_command.cc), run as a separate process on its
// --quick shapes: one run per (shape, thread count) with every kernel in order, exact bits per
// weight (the stored layout, overheads included), positive times, and the derived columns
// consistent with the time and the bytes. Bad shapes are one-line errors with exit code 2.
// (Here because only src/<module>/*_test.cc reach the test binary.)
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testing/shared_data.h"

namespace lowbit {
namespace {

using nlohmann::json;
using testing::contains;
using testing::run_cli;

struct Expected {
  std::string kernel, format;
  double bits_per_weight;
  double tensor_bits = 0;  // stored once per matrix (NVFP4's f32 tensor scale)
};

// For 1024 columns: groups of 128 are 8 per row, so every zero-point row is whole bytes.
std::vector<Expected> expected_kernels() {
  const double cols = 1024;
  return {{"dense", "f32", 32},
          {"dense", "f16", 16},
          {"dense", "bf16", 16},
          {"packed", "int8 per-row", 8 + 16 / cols},         // + one f16 scale per row
          {"packed", "uint4 g128", 4 + 16.0 / 128 + 4.0 / 128},  // + f16 scale and 4-bit zero point per group
          {"packed", "int4 g128", 4 + 16.0 / 128},             // symmetric: no zero point
          {"packed", "uint3 g128", 3 + 16.0 / 128 + 3.0 / 128},
          {"packed", "uint2 g128", 2 + 16.0 / 128 + 2.0 / 128},
          {"packed", "e4m3 g32", 8 + 16.0 / 32},  // + f16 scale per 32
          {"packed", "e2m1 g32 e8m0", 4 + 8.0 / 32},                  // MXFP4: an E8M0 byte per 32
          {"packed", "e2m1 g16 ue4m3", 4 + 8.0 / 16, 32},  // NVFP4: a UE4M3 byte per 16, an f32 S per matrix
          // int8 activations (int8_gemv.h) on the same layouts, and on Q4_0's shape.
          {"int8-act", "int8 per-row", 8 + 16 / cols},
          {"int8-act", "uint4 g128", 4 + 16.0 / 128 + 4.0 / 128},
          {"int8-act", "int4 g128", 4 + 16.0 / 128},
          {"int8-act", "uint3 g128", 3 + 16.0 / 128 + 3.0 / 128},
          {"int8-act", "uint2 g128", 2 + 16.0 / 128 + 2.0 / 128},
          {"int8-act", "int4 g32", 4 + 16.0 / 32},
          {"int8-act", "e2m1 g32 e8m0", 4 + 8.0 / 32},
          {"int8-act", "e2m1 g16 ue4m3", 4 + 8.0 / 16, 32},
          // 2:4: two value slots and 4 bits of positions per 4 columns (+ an f32 scale per row for int8).
          {"sparse24", "f16 2:4", (2 * 16 + 4) / 4.0},
          {"sparse24", "int8 per-row 2:4", (2 * 8 + 4) / 4.0 + 32 / cols}};
}

TEST(BenchKernelsCli, QuickJsonHasEveryKernelWithExactBitsAndPositiveTimes) {
  const auto result = run_cli("--threads 2 bench kernels --quick --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json out = json::parse(result.out);
  EXPECT_EQ(out["repetitions"], 5);
  EXPECT_EQ(out["row_tile"], 64);
  const auto expected = expected_kernels();
  const std::vector<std::vector<int>> runs = {{256, 1024, 1}, {256, 1024, 2}, {320, 1024, 1}, {320, 1024, 2}};
  ASSERT_EQ(out["runs"].size(), runs.size()) << out.dump();
  for (size_t r = 0; r < runs.size(); ++r) {
    const json& run = out["runs"][r];
    SCOPED_TRACE(run["rows"].dump() + "x" + run["cols"].dump() + ", threads " + run["threads"].dump());
    EXPECT_EQ(run["rows"], runs[r][0]);
    EXPECT_EQ(run["cols"], runs[r][1]);
    EXPECT_EQ(run["threads"], runs[r][2]);
    const double stream = run["stream_read_gbs"], weights = double(run["rows"]) * double(run["cols"]);
    EXPECT_GT(stream, 0);
    ASSERT_EQ(run["kernels"].size(), expected.size());
    const double f32_us = run["kernels"][0]["microseconds"], bf16_us = run["kernels"][2]["microseconds"];
    for (size_t k = 0; k < expected.size(); ++k) {
      const json& row = run["kernels"][k];
      SCOPED_TRACE(row.dump());
      EXPECT_EQ(row["kernel"], expected[k].kernel);
      EXPECT_EQ(row["format"], expected[k].format);
      const double bits = expected[k].bits_per_weight + expected[k].tensor_bits / weights;
      EXPECT_DOUBLE_EQ(row["bits_per_weight"].get<double>(), bits);
      EXPECT_DOUBLE_EQ(row["weight_bytes"].get<double>(), bits * weights / 8);
      const double us = row["microseconds"];
      EXPECT_GT(us, 0);
      // GB/s = bytes / µs · 1e-3, GFLOP/s = 2 · rows · cols / µs · 1e-3 (to rounding).
      const double gbs = row["weight_gbs"], gflops = row["gflops"], of_stream = row["fraction_of_stream"];
      EXPECT_NEAR(gbs, row["weight_bytes"].get<double>() / us * 1e-3, 1e-9 * (1 + gbs));
      EXPECT_NEAR(gflops, 2 * weights / us * 1e-3, 1e-9 * (1 + gflops));
      EXPECT_NEAR(of_stream, gbs / stream, 1e-9 * (1 + of_stream));
      EXPECT_DOUBLE_EQ(row["speedup_vs_f32"].get<double>(), f32_us / us);
      EXPECT_DOUBLE_EQ(row["speedup_vs_bf16"].get<double>(), bf16_us / us);
    }
    EXPECT_EQ(run["kernels"][0]["speedup_vs_f32"], 1.0);
    EXPECT_EQ(run["kernels"][2]["speedup_vs_bf16"], 1.0);
  }
}

TEST(BenchKernelsCli, TextTableAndBadShapes) {
  const auto text = run_cli("--threads 1 bench kernels --quick --shapes 64x128 --reps 2");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  // One section (1 thread only), a header and one line per kernel.
  EXPECT_TRUE(contains(text.out, "64 x 128, 1 token, 1 thread, stream read ")) << text.out;
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 2 + static_cast<long>(expected_kernels().size()))
      << text.out;
  for (const auto& k : expected_kernels()) EXPECT_TRUE(contains(text.out, k.format)) << k.format;

  for (const std::string shapes : {"64x100", "64", "0x128", "64x128,", "ax128"}) {
    const auto bad = run_cli("bench kernels --quick --shapes '" + shapes + "'");
    EXPECT_EQ(bad.exit_code, 2) << shapes;
    EXPECT_TRUE(bad.out.empty()) << bad.out;
    EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
    EXPECT_TRUE(contains(bad.err, "lowbit: --shapes: ")) << bad.err;
  }
  const auto with_model = run_cli("bench --synthetic tiny kernels --quick");
  EXPECT_EQ(with_model.exit_code, 2);
  EXPECT_TRUE(contains(with_model.err, "bench kernels: measures random matrices")) << with_model.err;
}

// --tokens N: prefill through the engine's layers. No f16 and no 2:4 rows; GFLOP/s count every
// token; int8-act rows carry their speedup over the same format with f32 activations (null for
// int4 g32, which has no f32-activation row), and the text table says how many tokens.
TEST(BenchKernelsCli, TokensMeasurePrefillAgainstTheF32ActivationPath) {
  const auto result = run_cli("--threads 1 bench kernels --quick --shapes 64x256 --tokens 8 --reps 2 --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json out = json::parse(result.out);
  ASSERT_EQ(out["runs"].size(), 1u);
  const json& run = out["runs"][0];
  EXPECT_EQ(run["tokens"], 8);
  std::vector<std::string> formats;
  for (const json& row : run["kernels"]) {
    SCOPED_TRACE(row.dump());
    formats.push_back(row["kernel"].get<std::string>() + " " + row["format"].get<std::string>());
    const double us = row["microseconds"];
    EXPECT_NEAR(row["gflops"].get<double>(), 2.0 * 64 * 256 * 8 / us * 1e-3, 1e-9 * row["gflops"].get<double>());
    if (row["kernel"] != "int8-act" || row["format"] == "int4 g32") {
      EXPECT_TRUE(row["speedup_vs_f32_activations"].is_null());
      continue;
    }
    const auto packed = std::find_if(run["kernels"].begin(), run["kernels"].end(), [&](const json& p) {
      return p["kernel"] == "packed" && p["format"] == row["format"];
    });
    ASSERT_NE(packed, run["kernels"].end());
    EXPECT_DOUBLE_EQ(row["speedup_vs_f32_activations"].get<double>(), (*packed)["microseconds"].get<double>() / us);
  }
  const std::vector<std::string> want = {"dense f32",           "dense bf16",         "packed int8 per-row",
                                         "packed uint4 g128",   "packed int4 g128",   "packed uint3 g128",
                                         "packed uint2 g128",   "packed e4m3 g32",    "packed e2m1 g32 e8m0",
                                         "packed e2m1 g16 ue4m3", "int8-act int8 per-row", "int8-act uint4 g128",
                                         "int8-act int4 g128",  "int8-act uint3 g128", "int8-act uint2 g128",
                                         "int8-act int4 g32",   "int8-act e2m1 g32 e8m0", "int8-act e2m1 g16 ue4m3"};
  EXPECT_EQ(formats, want);
  const auto text = run_cli("--threads 1 bench kernels --quick --shapes 64x256 --tokens 8 --reps 2");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "64 x 256, 8 tokens, 1 thread, ")) << text.out;
  EXPECT_TRUE(contains(text.out, "vs f32 act")) << text.out;
  const auto bad = run_cli("bench kernels --quick --tokens 0");
  EXPECT_EQ(bad.exit_code, 2);
}

// --kv-cache f16 halves the cache (bench reports it); other element types are refused with exit 2.
TEST(BenchCli, KvCacheOptionSetsTheCacheElementType) {
  const auto f32 = run_cli("bench --synthetic tiny --prompt-tokens 8 --gen-tokens 4 --json");
  const auto f16 = run_cli("--kv-cache f16 bench --synthetic tiny --prompt-tokens 8 --gen-tokens 4 --json");
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  ASSERT_EQ(f16.exit_code, 0) << f16.err;
  const auto a = nlohmann::json::parse(f32.out), b = nlohmann::json::parse(f16.out);
  EXPECT_EQ(a["kv_cache"], "F32");
  EXPECT_EQ(b["kv_cache"], "F16");
  EXPECT_GT(a["kv_cache_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(2 * b["kv_cache_bytes"].get<int64_t>(), a["kv_cache_bytes"].get<int64_t>());
  const auto bad = run_cli("--kv-cache bf16 bench --synthetic tiny");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "--kv-cache")) << bad.err;
}

// bench --bits: the model's linears RTN-quantized in memory, so the whole-model decode runs on the
// packed kernels and reads about bits/16 of the bf16 bytes per token.
TEST(BenchCli, BitsQuantizesTheLinearsInMemory) {
  const auto bf16 = run_cli("bench --synthetic tiny --prompt-tokens 8 --gen-tokens 4 --json");
  const auto packed = run_cli("bench --synthetic tiny --bits 4 --group 32 --prompt-tokens 8 --gen-tokens 4 --json");
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  ASSERT_EQ(packed.exit_code, 0) << packed.err;
  const auto a = nlohmann::json::parse(bf16.out), b = nlohmann::json::parse(packed.out);
  EXPECT_TRUE(a["rtn_quantized"].is_null());
  EXPECT_EQ(b["rtn_quantized"], "uint4 g32 (F16 scales, zero points)");
  EXPECT_LT(b["weight_bytes_per_token"].get<double>(), a["weight_bytes_per_token"].get<double>());
  EXPECT_EQ(b["activations"], "f32");
  EXPECT_EQ(b["int8_decode_linears"], 0);
  // --activations int8: every linear of the uint4 g32 model (tiny: 2 blocks x 7 and the head) decodes
  // through the int8 kernel.
  const auto int8 = run_cli("--activations int8 bench --synthetic tiny --bits 4 --group 32 --prompt-tokens 8 --gen-tokens 4 --json");
  ASSERT_EQ(int8.exit_code, 0) << int8.err;
  const auto c = nlohmann::json::parse(int8.out);
  EXPECT_EQ(c["activations"], "int8");
  EXPECT_FALSE(c["int8_kernel"].is_null());
  EXPECT_EQ(c["linears"], 15);
  EXPECT_EQ(c["int8_decode_linears"], 15);
  const auto bad = run_cli("bench --synthetic tiny --bits 4 --group 128 --gen-tokens 2");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "lowbit: --bits: layer 'model.layers.0.self_attn.q_proj': ")) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
}

// bench --compare-rounds: the same weights unquantized and quantized, decoded in alternating rounds;
// each round's speedup is its two rates' ratio and the median is the middle one.
TEST(BenchCli, CompareRoundsTimesTheUnquantizedModelInTheSameRun) {
  const auto run = run_cli("bench --synthetic tiny --bits 4 --group 32 --prompt-tokens 4 --gen-tokens 3 --compare-rounds 3 --json");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto j = nlohmann::json::parse(run.out)["decode_comparison"];
  EXPECT_EQ(j["baseline_weights"], "BF16");
  ASSERT_EQ(j["rounds"].size(), 3u);
  std::vector<double> speedups;
  for (const auto& r : j["rounds"]) {
    const double a = r["baseline_tokens_per_second"], b = r["quantized_tokens_per_second"];
    EXPECT_GT(a, 0);
    EXPECT_GT(b, 0);
    EXPECT_DOUBLE_EQ(r["speedup"].get<double>(), b / a);
    speedups.push_back(b / a);
  }
  std::sort(speedups.begin(), speedups.end());
  EXPECT_DOUBLE_EQ(j["median_speedup"].get<double>(), speedups[1]);
  const auto text = run_cli("bench --synthetic tiny --bits 4 --group 32 --prompt-tokens 4 --gen-tokens 3 --compare-rounds 2");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "compare:    2 rounds of 3 decode tokens, BF16 weights then quantized")) << text.out;
  EXPECT_TRUE(nlohmann::json::parse(run_cli("bench --synthetic tiny --bits 4 --group 32 --prompt-tokens 4 --gen-tokens 2 --json").out)
                  ["decode_comparison"].is_null());
  const auto bad = run_cli("bench --synthetic tiny --compare-rounds 2");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "lowbit: --compare-rounds: needs --bits: it times the quantized model against the same weights unquantized\n");
}

}  // namespace
}  // namespace lowbit
