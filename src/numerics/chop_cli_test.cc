// `lowbit formats` and `lowbit chop` end to end: the built CLI against the library, and bad
// input turning into one line on stderr with exit code 2.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lowbit/io/safetensors.h"
#include "lowbit/numerics/block_format.h"
#include "lowbit/numerics/quantize.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::CommandResult;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// run_cli with `input` on stdin.
CommandResult run_with_input(const std::string& args, const std::string& input) {
  const std::string dir = testing::temp_dir();
  {
    std::ofstream(dir + "/stdin", std::ios::binary) << input;
  }
  const std::string command = "'" + testing::cli_path() + "' " + args + " <'" + dir + "/stdin' >'" + dir +
                              "/stdout' 2>'" + dir + "/stderr'";
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = slurp(dir + "/stdout");
  result.err = slurp(dir + "/stderr");
  return result;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void expect_one_line_error(const CommandResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 2) << what << ": " << r.err;
  EXPECT_TRUE(r.out.empty()) << what << ": " << r.out;
  ASSERT_FALSE(r.err.empty()) << what;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << what << ": " << r.err;
}

TEST(FormatsCommand, ListsPresetsWithTheirRanges) {
  const auto r = testing::run_cli("formats");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool e4m3 = false, e5m2 = false, mxfp4 = false;
  for (const auto& line : lines(r.out)) {
    if (line.rfind("e4m3 ", 0) == 0) {
      e4m3 = true;
      EXPECT_NE(line.find(" 448 "), std::string::npos) << line;
      EXPECT_NE(line.find("0.001953125"), std::string::npos) << line;
    }
    if (line.rfind("e5m2 ", 0) == 0) {
      e5m2 = true;
      EXPECT_NE(line.find("57344"), std::string::npos) << line;
      EXPECT_NE(line.find("yes  yes"), std::string::npos) << line;
    }
    mxfp4 |= line.rfind("mxfp4 ", 0) == 0;
  }
  EXPECT_TRUE(e4m3 && e5m2 && mxfp4) << r.out;
  const auto json = testing::run_cli("formats --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto parsed = nlohmann::json::parse(json.out);
  bool found = false;
  for (const auto& f : parsed["formats"])
    if (f["name"] == "e2m3") {
      found = true;
      EXPECT_EQ(f["max"], 7.5);
      EXPECT_EQ(f["min_subnormal"], 0.125);
      EXPECT_EQ(f["inf"], false);
    }
  EXPECT_TRUE(found);
}

TEST(FormatsCommand, TableListsEveryCode) {
  const auto r = testing::run_cli("formats table e4m3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 257u);  // heading + 256 codes
  EXPECT_EQ(out[1], "0x00  00000000  0");
  EXPECT_EQ(out[2], "0x01  00000001  0.001953125");
  EXPECT_EQ(out[1 + 0x7E], "0x7e  01111110  448");
  EXPECT_EQ(out[1 + 0x7F], "0x7f  01111111  nan");
  EXPECT_EQ(out[1 + 0x80], "0x80  10000000  -0");
  EXPECT_EQ(out[1 + 0xFE], "0xfe  11111110  -448");
  const auto int4 = lines(testing::run_cli("formats table int4").out);
  ASSERT_EQ(int4.size(), 18u);  // heading, 16 codes, legend for the unused -8
  EXPECT_EQ(int4[9], "0x08  1000  -8  *");
  const auto json = testing::run_cli("formats table mxfp4 --json");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed["codes"].size(), 16u);
  EXPECT_EQ(parsed["codes"][7]["value"], 6.0);
  EXPECT_EQ(parsed["format"], "e2m1");
}

TEST(FormatsCommand, BadTablesExitWithOneLine) {
  expect_one_line_error(testing::run_cli("formats table fp16"), "16-bit table");
  expect_one_line_error(testing::run_cli("formats table e9m9"), "unknown format");
  expect_one_line_error(testing::run_cli("formats table"), "missing format");
}

TEST(ChopCommand, RoundsNumbersFromStdin) {
  const auto r = run_with_input("chop --format e4m3", "0.1\n3.14159\n1000\n-0.001\n\n  464 \nnan\n-inf\n-0\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0.1015625\n3.25\n448\n-0.001953125\n448\nnan\n-448\n-0\n");
  const auto up = run_with_input("chop --format int4 --rounding up", "2.1\n-2.9\n100\n");
  EXPECT_EQ(up.out, "3\n-2\n7\n");
  const auto ieee = run_with_input("chop --format e5m2", "61440\n1e9\n");
  EXPECT_EQ(ieee.out, "inf\ninf\n");
  const auto sat = run_with_input("chop --format e5m2 --overflow saturate", "61440\n");
  EXPECT_EQ(sat.out, "57344\n");
}

TEST(ChopCommand, StochasticRoundingIsReproducible) {
  std::string input;
  for (int i = 0; i < 200; ++i) input += "1.0625\n";
  const auto a = run_with_input("chop --format e2m1 --rounding stochastic --seed 5", input);
  const auto b = run_with_input("chop --format e2m1 --rounding stochastic --seed 5", input);
  const auto c = run_with_input("chop --format e2m1 --rounding stochastic --seed 6", input);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  int ups = 0;
  for (const auto& line : lines(a.out)) {
    EXPECT_TRUE(line == "1" || line == "1.5") << line;
    ups += line == "1.5";
  }
  EXPECT_GT(ups, 5);  // P(up) = 1/8
  EXPECT_LT(ups, 60);
}

TEST(ChopCommand, BlockFormatsFromStdin) {
  // The MXFP4 hand-worked block of block_format_test.cc, padded to 32 by the 1-D view's ragged group.
  const auto r = run_with_input("chop --format mxfp4", "7\n3.7\n-2.5\n0.1\n0.3\n0.75\n5\n-0.2\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "6\n4\n-2\n0\n0.5\n1\n4\n-0\n");
  // NVFP4 spelled out from its parts gives the same numbers as the preset.
  std::string input;
  for (int i = 0; i < 40; ++i) input += std::to_string(std::sin(i * 0.7) * (i + 1)) + "\n";
  const auto preset = run_with_input("chop --format nvfp4", input);
  const auto parts = run_with_input("chop --format e2m1 --block 16 --scale-format ue4m3 --tensor-scale", input);
  ASSERT_EQ(preset.exit_code, 0) << preset.err;
  EXPECT_EQ(preset.out, parts.out);
  const auto mse = run_with_input("chop --format int4 --block 8 --scale-search mse", input);
  EXPECT_EQ(mse.exit_code, 0) << mse.err;
  EXPECT_EQ(lines(mse.out).size(), 40u);
}

TEST(ChopCommand, SafetensorsInAndOutWithCodes) {
  const std::string dir = testing::temp_dir();
  std::vector<float> w(4 * 40);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(std::cos(i * 0.31) * (1 + i % 7));
  write_safetensors(dir + "/in.safetensors",
                    {{"w", Tensor::copy_of(DType::kF32, {4, 40}, w.data(), w.size() * sizeof(float))},
                     {"b", Tensor::zeros(DType::kF32, {3})}});
  const auto r = testing::run_cli("chop --format nvfp4 --in '" + dir + "/in.safetensors' --tensor w --out '" + dir +
                                  "/out.safetensors' --codes");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto out = SafetensorsFile::open(dir + "/out.safetensors");
  const auto q = quantize_blocks(w, {4, 40}, BlockFormat::nvfp4());
  const auto want = q.dequantize();
  const auto got = out.tensor("w").values<float>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
  const auto codes = out.tensor("w.codes");
  EXPECT_EQ(codes.dtype(), DType::kU8);
  for (size_t i = 0; i < q.codes.size(); ++i) EXPECT_EQ(codes.values<uint8_t>()[i], q.codes[i]) << i;
  EXPECT_EQ(out.tensor("w.scales").shape(), (Shape{4, 3}));
  EXPECT_EQ(out.metadata().at("lowbit.format"), "nvfp4");
  // bf16 output of an element format.
  const auto bf = testing::run_cli("chop --format e2m1 --in '" + dir + "/in.safetensors' --tensor w --out '" + dir +
                                   "/bf.safetensors' --out-dtype bf16");
  ASSERT_EQ(bf.exit_code, 0) << bf.err;
  EXPECT_EQ(SafetensorsFile::open(dir + "/bf.safetensors").tensor("w").dtype(), DType::kBF16);
}

TEST(ChopCommand, BadInputExitsWithOneLine) {
  expect_one_line_error(run_with_input("chop --format e9m9", "1\n"), "unknown format");
  expect_one_line_error(run_with_input("chop --format e4m3 --rounding sideways", "1\n"), "unknown rounding");
  expect_one_line_error(run_with_input("chop --format e4m3", "1\nabc\n"), "not a number");
  expect_one_line_error(run_with_input("chop --format e4m3", "1 2\n"), "two numbers");
  expect_one_line_error(run_with_input("chop --format e4m3", "1e40\n"), "out of range");
  expect_one_line_error(run_with_input("chop --format e4m3 --block 4 --tile 4", "1\n"), "block and tile");
  expect_one_line_error(run_with_input("chop --format e4m3 --scale-search mse", "1\n"), "scale without block");
  expect_one_line_error(run_with_input("chop --format mxfp4 --scale-format fp16 --scale-rule mx", "1\n"), "mx rule");
  expect_one_line_error(run_with_input("chop --format e2m1 --overflow inf", "1\n"), "no specials");
  expect_one_line_error(run_with_input("chop --format e4m3 --in /nonexistent.safetensors --out /tmp/x", ""),
                        "missing file");
  expect_one_line_error(run_with_input("chop --format e4m3 --in /nonexistent.safetensors", ""), "no --out");
  expect_one_line_error(run_with_input("chop", "1\n"), "no format");
}

}  // namespace
}  // namespace lowbit
