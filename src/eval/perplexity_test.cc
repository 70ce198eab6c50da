// Perplexity/KLD protocols (window arithmetic, llama.cpp's BOS rule, standard error) and
// the CLI around them, on the real stories260K model.
#include "lowbit/eval/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/io/convert.h"
#include "lowbit/io/tokenizer.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

std::shared_ptr<LlamaModel> stories(const std::string& shared, const std::string& which = "hf") {
  auto files = std::make_shared<ModelFiles>(open_model(shared + "/models/stories260K/" + which));
  return std::make_shared<LlamaModel>(files);
}

std::vector<int32_t> stories_tokens(const std::string& shared, size_t count) {
  const auto files = open_model(shared + "/models/stories260K/hf");
  const auto tokenizer = load_tokenizer(files);
  std::ifstream in(shared + "/data/tinystories/tinystories_val.txt", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto ids = tokenizer->encode(text.substr(0, 40000), true);
  ids.resize(count);
  return ids;
}

TEST(Perplexity, WindowsAndScoredCountsFollowTheStatedProtocol) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto model = stories(shared);
  const auto tokens = stories_tokens(shared, 3 * 128 + 50);  // 3 full windows of 128, a partial one dropped
  PerplexityOptions options;
  options.context = 128;
  options.method = PerplexityMethod::kFull;
  const auto full = evaluate_perplexity(*model, tokens, options);
  EXPECT_EQ(full.windows, 3);
  EXPECT_EQ(full.tokens_scored, 3 * 127);
  options.method = PerplexityMethod::kLlamaCpp;
  options.bos_id = 1;
  const auto half = evaluate_perplexity(*model, tokens, options);
  EXPECT_EQ(half.windows, 3);
  EXPECT_EQ(half.tokens_scored, 3 * 63);
  EXPECT_NE(half.method.find("second half"), std::string::npos);
  options.max_windows = 2;
  EXPECT_EQ(evaluate_perplexity(*model, tokens, options).tokens_scored, 2 * 63);
  // The full method's first window equals scoring those ids as one sequence.
  const auto first = evaluate_sequence(*model, std::span<const int32_t>(tokens.data(), 128));
  options.max_windows = 1;
  options.method = PerplexityMethod::kFull;
  EXPECT_DOUBLE_EQ(evaluate_perplexity(*model, tokens, options).mean_nll, first.mean_nll);
  EXPECT_NEAR(full.perplexity, std::exp(full.mean_nll), 1e-9 * full.perplexity);
  EXPECT_GT(full.perplexity_stderr, 0);
  EXPECT_LT(full.perplexity_stderr, full.perplexity);
}

TEST(Perplexity, RefusesImpossibleWindows) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto model = stories(shared);
  const auto tokens = stories_tokens(shared, 100);
  PerplexityOptions options;
  options.context = 128;  // longer than the text
  EXPECT_THROW(evaluate_perplexity(*model, tokens, options), Error);
  options.context = 1024;  // longer than the model's 512 positions
  EXPECT_THROW(evaluate_perplexity(*model, stories_tokens(shared, 2048), options), Error);
}

TEST(Kld, ZeroAgainstItselfAndSmallButPositiveForBf16) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto base = stories(shared);
  const auto tokens = stories_tokens(shared, 256);
  PerplexityOptions options;
  options.context = 128;
  const auto same = evaluate_kld(*base, *stories(shared, "llama2c/stories260K.bin"), tokens, options);
  EXPECT_LT(same.mean_kld, 1e-9);
  EXPECT_DOUBLE_EQ(same.top1_agreement, 1.0);

  const std::string out = testing::temp_dir() + "/bf16";
  ConvertOptions convert;
  convert.dtype = DType::kBF16;
  convert_model(open_model(shared + "/models/stories260K/hf"), out, convert);
  const auto bf16 = std::make_shared<LlamaModel>(std::make_shared<ModelFiles>(open_model(out)));
  const auto r = evaluate_kld(*base, *bf16, tokens, options);
  EXPECT_GT(r.mean_kld, 0);
  EXPECT_LT(r.mean_kld, 1e-3);
  EXPECT_GT(r.top1_agreement, 0.9);
  EXPECT_EQ(r.tokens_scored, 2 * 63);
  EXPECT_NEAR(r.base.perplexity, evaluate_perplexity(*base, tokens, options).perplexity, 1e-9);
}

TEST(EvalCli, IdsFileGivesReferenceNllAsJson) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto ids = stories_tokens(shared, 512);
  const std::string path = testing::temp_dir() + "/ids.txt";
  {
    std::ofstream out(path);
    for (int32_t id : ids) out << id << ' ';
  }
  const auto r = testing::run_cli("eval ppl --json -m '" + shared + "/models/stories260K/llama2c/stories260K.bin' --ids '" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokens_scored"], 511);
  EXPECT_NEAR(j["mean_nll"].get<double>(), 1.3112137, 1e-4);
}

TEST(EvalCli, BadInputIsOneLineAndExitCode2) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string model = "'" + shared + "/models/stories260K/hf'";
  const std::string dir = testing::temp_dir();
  { std::ofstream(dir + "/latin1.txt", std::ios::binary) << "caf\xE9 au lait"; }
  { std::ofstream(dir + "/ids.txt") << "1 2 x 4"; }
  std::string long_prompt;
  for (int i = 0; i < 400; ++i) long_prompt += "Once upon a time ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"eval ppl -m " + model + " -f '" + dir + "/latin1.txt'", "UTF-8"},
      {"eval ppl -m " + model + " --ids '" + dir + "/ids.txt'", "ids.txt"},
      {"eval ppl -m " + model + " -f '" + shared + "/data/tinystories/tinystories_val.txt' --method sliding", "--method"},
      {"eval ppl -m " + model + " -f '" + shared + "/data/tinystories/tinystories_val.txt' --ctx 4096", "--ctx"},
      {"eval ppl -m " + model, "exactly one of"},
      {"run -m " + model + " -p '" + long_prompt + "'", "longer than the model's context"},
      {"run -m '" + dir + "/no-tokenizer' -p hi", "no tokenizer found"},
  };
  convert_model(open_model(shared + "/models/stories260K/hf"), dir + "/no-tokenizer", {});
  std::filesystem::remove(dir + "/no-tokenizer/tok512.bin");
  for (const auto& [args, phrase] : cases) {
    const auto r = testing::run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(phrase), std::string::npos) << args << "\n" << r.err;
  }
}

TEST(RunCli, GreedyJsonFromBos) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto r = testing::run_cli("run --json -n 12 -m '" + shared + "/models/stories260K/hf' -p ''");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"].size(), 12u);
  EXPECT_EQ(j["text"], "Once upon a time, there was a little girl");  // the reference text's first 12 tokens
  EXPECT_EQ(j["prompt_ids"], nlohmann::json::array({1}));
}

TEST(RunCli, ThreadsOptionAfterTheSubcommandAndSameTextForAnyCount) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string args = " -n 20 --temp 0.8 --seed 5 -m '" + shared + "/models/stories260K/hf' -p 'Once'";
  const auto one = testing::run_cli("run --json --threads 1" + args);
  const auto two = testing::run_cli("--threads 2 run --json" + args);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(nlohmann::json::parse(one.out)["ids"], nlohmann::json::parse(two.out)["ids"]);
}

}  // namespace
}  // namespace lowbit
