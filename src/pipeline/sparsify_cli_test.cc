// `lowbit sparsify` (and `lowbit quantize --nm/--sparsity`) end to end on the real stories260K
// model: the pattern in every block linear, compressed storage read back exactly, quality ordering
// SparseGPT <= Wanda <= magnitude, joint 2:4 + 4-bit, inspect's report, and refusals (one line,
// exit 2, no output folder).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "lowbit/compress/sparsity.h"
#include "lowbit/io/model_files.h"
#include "lowbit/pipeline/quantized_model.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

using testing::contains;
using testing::run_cli;

double perplexity(const std::string& model, const std::string& text) {
  const auto r = run_cli("eval ppl --json -m " + model + " -f " + text + " --ctx 256 --chunks 6");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? nlohmann::json::parse(r.out)["perplexity"].get<double>() : 0.0;
}

TEST(SparsifyCli, MethodsKeepThePatternAndOrderAsExpected) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string dir = testing::temp_dir(), stories = shared + "/data/tinystories/tinystories_val.txt";
  const std::string base = "sparsify -m " + shared + "/models/stories260K/hf --calib " + stories + " --nsamples 16 --seqlen 128";
  std::map<std::string, double> ppl;
  for (const char* method : {"magnitude", "wanda", "sparsegpt"}) {
    SCOPED_TRACE(method);
    const std::string out = dir + "/" + method;
    const auto r = run_cli(base + " --method " + method + " --nm 2:4 -o " + out + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto report = nlohmann::json::parse(r.out);
    EXPECT_EQ(report["layers"][1]["plan"], std::string("2:4 ") + method + ", f16");
    EXPECT_DOUBLE_EQ(report["layers"][1]["sparsity"].get<double>(), 0.5);
    // 2:4 with f16 values: 2 values x 16 bits + 2 positions x 2 bits per 4 weights = 9 bits.
    EXPECT_DOUBLE_EQ(report["layers"][1]["bits_per_weight"].get<double>(), 9.0);
    EXPECT_TRUE(contains(r.err, "block 5/5"));

    const ModelFiles files = open_model(out);
    const auto layers = read_sparse_layers(files);
    ASSERT_EQ(layers.size(), 35u);  // every block linear; the head stays tied, the embeddings dense
    for (const auto& [name, layer] : layers) {
      SCOPED_TRACE(name);
      check_mask(layer->mask(), layer->rows(), layer->cols(), SparsityPattern::parse("2:4"), MaskScope::kRow, name);
      const std::vector<float> w = layer->dense();
      for (size_t i = 0; i < w.size(); ++i)
        if (!layer->mask()[i]) {
          ASSERT_EQ(w[i], 0.0f);
        }
    }
    ppl[method] = perplexity(out, stories);
  }
  const double dense = perplexity(shared + "/models/stories260K/hf", stories);
  EXPECT_LT(dense, ppl["sparsegpt"]);
  EXPECT_LT(ppl["sparsegpt"], ppl["wanda"]);
  EXPECT_LT(ppl["wanda"], ppl["magnitude"]);

  const auto inspect = run_cli("inspect " + dir + "/sparsegpt --no-tensors");
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_TRUE(contains(inspect.out, "2:4 sparse, F16")) << inspect.out;
  EXPECT_TRUE(contains(inspect.out, "50.00%")) << inspect.out;
  const auto run = run_cli("run -m " + dir + "/sparsegpt -p 'Once upon a time' -n 8");
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST(SparsifyCli, JointSparsityAndQuantizationAndUnstructuredBitmap) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string dir = testing::temp_dir(), stories = shared + "/data/tinystories/tinystories_val.txt";
  const std::string model = " -m " + shared + "/models/stories260K/hf --calib " + stories + " --nsamples 16 --seqlen 128";
  const auto joint = run_cli("sparsify" + model + " --method sparsegpt --nm 2:4 --bits 4 --group 32 -o " + dir + "/joint --json");
  ASSERT_EQ(joint.exit_code, 0) << joint.err;
  const auto report = nlohmann::json::parse(joint.out);
  EXPECT_EQ(report["layers"][1]["plan"], "2:4 sparsegpt, uint4 g32 (F16 scales, zero points)");
  // Per 32 weights: 16 codes x 4 bits + 16 positions x 2 bits + one f16 scale + one 4-bit zero = 116 bits.
  EXPECT_DOUBLE_EQ(report["layers"][1]["bits_per_weight"].get<double>(), 116.0 / 32);
  // The same through quantize --nm (prune with sparsegpt by default): identical bytes.
  const auto via_quantize = run_cli("quantize" + model + " --bits 4 --group 32 --nm 2:4 -o " + dir + "/joint2");
  ASSERT_EQ(via_quantize.exit_code, 0) << via_quantize.err;
  EXPECT_EQ(testing::read_all(dir + "/joint/model.safetensors"), testing::read_all(dir + "/joint2/model.safetensors"));

  const auto bitmap = run_cli("sparsify" + model + " --method wanda --sparsity 50% --bits 4 --group 32 -o " + dir + "/wanda50 --json");
  ASSERT_EQ(bitmap.exit_code, 0) << bitmap.err;
  // 16 kept codes x 4 bits + 32 bitmap bits + scale + zero per 32 weights = 116 bits (rows pack to whole bytes).
  EXPECT_NEAR(nlohmann::json::parse(bitmap.out)["layers"][1]["bits_per_weight"].get<double>(), 116.0 / 32, 0.01);
  const double joint_ppl = perplexity(dir + "/joint", stories), wanda_ppl = perplexity(dir + "/wanda50", stories);
  EXPECT_GT(joint_ppl, 1.0);
  EXPECT_GT(wanda_ppl, 1.0);
  const auto inspect = run_cli("inspect " + dir + "/wanda50 --no-tensors --json");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  const auto layers = nlohmann::json::parse(inspect.out)["quantization"]["layers"];
  EXPECT_EQ(layers[0]["sparse_layout"], "bitmap");
  EXPECT_DOUBLE_EQ(layers[0]["sparsity"].get<double>(), 0.5);
}

TEST(SparsifyCli, RefusalsAreOneLineWithExitTwoAndNoOutput) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string dir = testing::temp_dir();
  const std::string model = " -m " + shared + "/models/stories260K/hf";
  const std::string calib = " --calib " + shared + "/data/tinystories/tinystories_val.txt --nsamples 2 --seqlen 32";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"sparsify" + model + " --method magnitude", "--sparsity: sparsify needs --sparsity R"},
      {"sparsify" + model + " --method wanda --nm 2:4", "--calib: pruning method wanda needs a calibration text"},
      {"sparsify" + model + " --method sparsegpt --nm 4:2" + calib, "--nm: sparsity '4:2'"},
      {"sparsify" + model + " --method magnitude --sparsity 120%", "[0, 0.99]"},
      {"sparsify" + model + " --method magnitude --sparsity 50% --nm 2:4", "not both"},
      {"sparsify" + model + " --method best --nm 2:4", "pruning method 'best'"},
      {"sparsify" + model + " --method magnitude --nm 2:4 --dtype f8", "--dtype"},
      {"sparsify" + model + " --method magnitude --sparsity 50% --scope all", "--scope"},
      {"quantize" + model + " --nm 2:4 --act-order" + calib, "act-order"},
      {"quantize" + model + " --prune wanda" + calib, "--prune: needs --sparsity"},
  };
  for (const auto& [args, expected] : cases) {
    SCOPED_TRACE(args);
    const std::string out = dir + "/out";
    const auto r = run_cli(args + " -o " + out);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(contains(r.err, expected)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

}  // namespace
}  // namespace lowbit
