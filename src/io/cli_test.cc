// Tests of the `lowbit` command line (tools/lowbit), run as a separate process.
//
// (This file lives in src/io/ because CMake globs tools/lowbit/*.cc into the CLI binary
// and only src/<module>/*_test.cc into the test binary.)
//
// What matters: the CLI is the product's face, so (1) `inspect` and `convert` report the
// real model's numbers in both text and JSON; (2) every bad input, whatever layer finds
// it, ends as exit code 2 with exactly one line on stderr that says where the problem is
// (DESIGN.md, "Errors") and nothing on stdout.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "lowbit/io/safetensors.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::error_from;
using testing::expect_same_config;
using testing::read_all;
using testing::write_raw;

namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_cli;

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}




// Exit 2, nothing on stdout, exactly one line on stderr starting "lowbit: " and containing
// every fragment.
void expect_usage_error(const testing::CommandResult& result, const std::vector<std::string>& fragments) {
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_FALSE(result.err.empty() || result.err.back() != '\n') << result.err;
  EXPECT_EQ(result.err.rfind("lowbit: ", 0), 0u) << result.err;
  EXPECT_TRUE(result.out.empty()) << result.out;
  for (const auto& fragment : fragments) EXPECT_TRUE(contains(result.err, fragment)) << result.err << "lacks: " << fragment;
}

std::string hf(const std::string& shared) { return shared + "/models/stories260K/hf"; }
std::string bin(const std::string& shared) { return shared + "/models/stories260K/llama2c/stories260K.bin"; }

// ---------------------------------------------------------------------------------
// inspect

TEST(Cli, InspectHfFolder) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto result = run_cli("inspect " + quote(hf(shared)));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.err.empty()) << result.err;
  EXPECT_TRUE(contains(result.out, "parameters:   260,032\n")) << result.out;
  EXPECT_TRUE(contains(result.out, "tensors:      47\n")) << result.out;
  EXPECT_TRUE(contains(result.out, "format:       huggingface (1 weight file, 1,045,112 bytes)\n")) << result.out;
  EXPECT_TRUE(contains(result.out,
                       "architecture: llama, 5 layers, hidden 64, intermediate 172, heads 8 (kv 4, head_dim 8)\n"))
      << result.out;
  EXPECT_TRUE(contains(result.out, "tokenizer:    llama2c (tok512.bin, 512 tokens)\n")) << result.out;
  // The tensor table, one row per tensor.
  EXPECT_TRUE(contains(result.out, "model.layers.4.mlp.down_proj.weight")) << result.out;
  EXPECT_TRUE(contains(result.out, "[512, 64]")) << result.out;

  const auto brief = run_cli("inspect --no-tensors " + quote(hf(shared)));
  ASSERT_EQ(brief.exit_code, 0) << brief.err;
  EXPECT_TRUE(contains(brief.out, "parameters:   260,032\n")) << brief.out;
  EXPECT_FALSE(contains(brief.out, "model.layers.4.mlp.down_proj.weight")) << brief.out;
}

TEST(Cli, InspectJson) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto result = run_cli("inspect --json " + quote(hf(shared)));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.err.empty()) << result.err;
  const json j = json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << result.out;
  EXPECT_EQ(j["parameters"], 260032);
  ASSERT_TRUE(j["tensors"].is_array());
  EXPECT_EQ(j["tensors"].size(), 47u);
  EXPECT_EQ(j["format"], "huggingface");
  EXPECT_EQ(j["file_size"], 1045112);
  EXPECT_EQ(j["config"]["hidden_size"], 64);
  EXPECT_EQ(j["config"]["num_key_value_heads"], 4);
  EXPECT_EQ(j["tokenizer"]["kind"], "llama2c");
  EXPECT_EQ(j["tokenizer"]["vocab_size"], 512);
  int64_t sum = 0;
  for (const auto& tensor : j["tensors"]) {
    EXPECT_EQ(tensor["dtype"], "F32");
    int64_t numel = 1;
    for (const auto& d : tensor["shape"]) numel *= d.get<int64_t>();
    EXPECT_EQ(tensor["bytes"], numel * 4);
    sum += numel;
  }
  EXPECT_EQ(sum, 260032);
}

TEST(Cli, InspectLlama2c) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto result = run_cli("inspect " + quote(bin(shared)));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(contains(result.out, "parameters:   260,032\n")) << result.out;
  EXPECT_TRUE(contains(result.out, "format:       llama2c (1 weight file, 1,056,540 bytes)\n")) << result.out;
  EXPECT_TRUE(contains(result.out, "tensors:      47\n")) << result.out;
  const auto folder = run_cli("inspect --json " + quote(shared + "/models/stories260K/llama2c"));
  ASSERT_EQ(folder.exit_code, 0) << folder.err;
  const json j = json::parse(folder.out);
  EXPECT_EQ(j["parameters"], 260032);
  EXPECT_EQ(j["format"], "llama2c");
}

// ---------------------------------------------------------------------------------
// convert

TEST(Cli, ConvertThenInspect) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string parent = testing::temp_dir();
  const std::string out = parent + "/stories-hf";
  const auto converted = run_cli("convert " + quote(bin(shared)) + " " + quote(out));
  ASSERT_EQ(converted.exit_code, 0) << converted.err;
  EXPECT_TRUE(converted.err.empty()) << converted.err;
  EXPECT_EQ(converted.out.rfind("wrote " + out + ": 47 tensors, 260,032 parameters, ", 0), 0u) << converted.out;

  const auto inspected = run_cli("inspect --json " + quote(out));
  ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
  const json j = json::parse(inspected.out);
  EXPECT_EQ(j["parameters"], 260032);
  EXPECT_EQ(j["format"], "huggingface");
  EXPECT_EQ(j["tensors"].size(), 47u);
  EXPECT_EQ(j["tokenizer"]["vocab_size"], 512);
  // Same bytes as the reference conversion.
  const SafetensorsFile written = SafetensorsFile::open(out + "/model.safetensors");
  const SafetensorsFile reference = SafetensorsFile::open(hf(shared) + "/model.safetensors");
  for (const auto& name : reference.names()) EXPECT_TRUE(written.tensor(name).bit_equal(reference.tensor(name))) << name;

  // Again without --force: refused, folder untouched.
  const std::string before = read_all(out + "/model.safetensors");
  expect_usage_error(run_cli("convert " + quote(bin(shared)) + " " + quote(out)), {out + ": already exists", "--force"});
  EXPECT_EQ(read_all(out + "/model.safetensors"), before);

  // --force --dtype bf16 --json replaces it.
  const auto forced = run_cli("convert --force --dtype bf16 --json " + quote(bin(shared)) + " " + quote(out));
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  const json report = json::parse(forced.out);
  EXPECT_EQ(report["output"], out);
  EXPECT_EQ(report["tensors"], 47);
  EXPECT_EQ(report["parameters"], 260032);
  EXPECT_EQ(report["bytes_written"].get<uint64_t>(), fs::file_size(out + "/model.safetensors") +
                                                           fs::file_size(out + "/config.json") +
                                                           fs::file_size(out + "/tok512.bin"));
  const json bf16 = json::parse(run_cli("inspect --json " + quote(out)).out);
  EXPECT_EQ(bf16["config"]["torch_dtype"], "bfloat16");
  for (const auto& tensor : bf16["tensors"]) EXPECT_EQ(tensor["dtype"], "BF16");

  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(parent)) names.push_back(item.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"stories-hf"});
}

// ---------------------------------------------------------------------------------
// Bad input: exit 2 and one line naming the problem

TEST(Cli, NonexistentPath) {
  const std::string path = testing::temp_dir() + "/nowhere";
  expect_usage_error(run_cli("inspect " + quote(path)), {path + ": no such file or folder"});
  expect_usage_error(run_cli("convert " + quote(path) + " " + quote(path + "-out")), {path + ": no such file or folder"});
  EXPECT_FALSE(fs::exists(path + "-out"));
}

TEST(Cli, TruncatedSafetensorsInModelFolder) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = testing::temp_dir();
  write_raw(folder + "/config.json", read_all(hf(shared) + "/config.json"));
  write_raw(folder + "/model.safetensors", read_all(hf(shared) + "/model.safetensors").substr(0, 4000));
  expect_usage_error(run_cli("inspect " + quote(folder)), {folder + "/model.safetensors: "});
  const std::string out = testing::temp_dir() + "/out";
  expect_usage_error(run_cli("convert " + quote(folder) + " " + quote(out)), {folder + "/model.safetensors: "});
  EXPECT_FALSE(fs::exists(out));
}

TEST(Cli, MalformedConfig) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string folder = testing::temp_dir();
  write_raw(folder + "/model.safetensors", read_all(hf(shared) + "/model.safetensors"));
  write_raw(folder + "/config.json", "{\"model_type\": \"llama\", \"hidden_size\": ");
  expect_usage_error(run_cli("inspect " + quote(folder)), {folder + "/config.json: not well-formed JSON"});
  write_raw(folder + "/config.json", "{\"model_type\": \"gpt2\"}");
  expect_usage_error(run_cli("inspect " + quote(folder)), {folder + "/config.json: unsupported architecture", "gpt2"});
}

TEST(Cli, UnknownDtype) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string out = testing::temp_dir() + "/out";
  for (const char* dtype : {"int4", "i8", "f8_e4m3"}) {
    SCOPED_TRACE(dtype);
    expect_usage_error(run_cli("convert --dtype " + std::string(dtype) + " " + quote(bin(shared)) + " " + quote(out)),
                       {"--dtype", std::string("\"") + dtype + "\""});
  }
  EXPECT_FALSE(fs::exists(out));
}

TEST(Cli, UsageErrors) {
  expect_usage_error(run_cli(""), {"subcommand"});
  expect_usage_error(run_cli("inspect"), {"MODEL"});
  expect_usage_error(run_cli("inspect --bogus /tmp"), {"--bogus"});
  expect_usage_error(run_cli("--bogus inspect /tmp"), {"--bogus"});
  // CLI11 takes an unknown word for a stray positional, so the message is about the subcommand.
  expect_usage_error(run_cli("frobnicate"), {"subcommand"});
  expect_usage_error(run_cli("convert only-one-path"), {"OUT"});
}

TEST(Cli, Help) {
  const auto help = run_cli("--help");
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_TRUE(contains(help.out, "inspect")) << help.out;
  EXPECT_TRUE(contains(help.out, "convert")) << help.out;
  const auto inspect_help = run_cli("inspect --help");
  EXPECT_EQ(inspect_help.exit_code, 0) << inspect_help.err;
  EXPECT_TRUE(contains(inspect_help.out, "--json")) << inspect_help.out;
  EXPECT_TRUE(contains(inspect_help.out, "--no-tensors")) << inspect_help.out;
  const auto convert_help = run_cli("convert --help");
  EXPECT_EQ(convert_help.exit_code, 0) << convert_help.err;
  EXPECT_TRUE(contains(convert_help.out, "--dtype")) << convert_help.out;
  EXPECT_TRUE(contains(convert_help.out, "--force")) << convert_help.out;
  const auto version = run_cli("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(contains(version.out, "lowbit 0.1.0")) << version.out;
}

}  // namespace
}  // namespace lowbit
