// Tests for convert_model (include/lowbit/io/convert.h).
//
// What matters: `lowbit convert` is how llama2.c checkpoints become Hugging Face folders
// and how dtypes change, so (1) the converted stories260K must equal, bit for bit, the
// independent conversion in ../shared (tensors and config); (2) dtype conversion must be
// exactly lowbit's round-to-nearest-even of every value; (3) output is all-or-nothing: an
// existing folder is never touched without replace_existing, and a failed conversion
// leaves neither the output nor its hidden staging folder behind.
#include "lowbit/io/convert.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/io/hf_config.h"
#include "lowbit/io/model_files.h"
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


// Names in a folder, hidden ones included.
std::set<std::string> entries(const std::string& folder) {
  std::set<std::string> names;
  for (const auto& item : fs::directory_iterator(folder)) names.insert(item.path().filename().string());
  return names;
}

std::vector<uint16_t> bits16(const Tensor& tensor) {
  std::vector<uint16_t> out(static_cast<size_t>(tensor.numel()));
  if (!out.empty()) std::memcpy(out.data(), tensor.data(), out.size() * sizeof(uint16_t));
  return out;
}


std::string bin_path(const std::string& shared) { return shared + "/models/stories260K/llama2c/stories260K.bin"; }
std::string hf_path(const std::string& shared) { return shared + "/models/stories260K/hf"; }

// ---------------------------------------------------------------------------------
// llama2.c -> Hugging Face

TEST(Convert, Llama2cToHfMatchesSharedConversion) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string parent = testing::temp_dir();
  const std::string out = parent + "/stories-hf";
  const ConvertReport report = convert_model(open_model(bin_path(shared)), out, {});
  EXPECT_EQ(report.output, out);
  EXPECT_EQ(report.tensors, 47);
  EXPECT_EQ(report.parameters, 260'032);
  EXPECT_EQ(entries(parent), std::set<std::string>{"stories-hf"});  // no staging leftovers
  EXPECT_EQ(entries(out), (std::set<std::string>{"config.json", "model.safetensors", "tok512.bin"}));
  uint64_t total = 0;
  for (const auto& name : entries(out)) total += fs::file_size(out + "/" + name);
  EXPECT_EQ(report.bytes_written, total);

  const SafetensorsFile written = SafetensorsFile::open(out + "/model.safetensors");
  const SafetensorsFile reference = SafetensorsFile::open(hf_path(shared) + "/model.safetensors");
  const std::vector<std::string> written_names = written.names(), reference_names = reference.names();
  EXPECT_EQ(std::set<std::string>(written_names.begin(), written_names.end()),
            std::set<std::string>(reference_names.begin(), reference_names.end()));
  ASSERT_EQ(written_names.size(), 47u);
  for (const auto& name : reference.names()) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(written.tensor(name).bit_equal(reference.tensor(name)));
  }
  EXPECT_EQ(written.metadata().at("format"), "pt");

  expect_same_config(load_hf_config(out), load_hf_config(hf_path(shared)));
  EXPECT_EQ(read_all(out + "/tok512.bin"), read_all(shared + "/models/stories260K/llama2c/tok512.bin"));

  // The result opens as an HF model with its tokenizer.
  const ModelFiles reopened = open_model(out);
  EXPECT_EQ(reopened.format, ModelFormat::kHuggingFace);
  EXPECT_EQ(reopened.parameter_count(), 260'032);
  EXPECT_EQ(reopened.tokenizer, TokenizerKind::kLlama2c);
  EXPECT_EQ(reopened.tokenizer_vocab_size, 512);
}

TEST(Convert, ExistingOutputNeedsReplaceExisting) {
  LOWBIT_REQUIRE_SHARED(shared);
  const ModelFiles model = open_model(bin_path(shared));
  const std::string parent = testing::temp_dir();
  const std::string out = parent + "/out";
  convert_model(model, out, {});
  {
    std::ofstream marker(out + "/marker.txt");
    marker << "mine";
  }
  const std::string before = read_all(out + "/model.safetensors");

  try {
    convert_model(model, out, {});
    ADD_FAILURE() << "replaced an existing folder without replace_existing";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), out + ": already exists (pass --force to replace it)");
  }
  // Untouched, and no staging folder left beside it.
  EXPECT_EQ(entries(out), (std::set<std::string>{"config.json", "marker.txt", "model.safetensors", "tok512.bin"}));
  EXPECT_EQ(read_all(out + "/marker.txt"), "mine");
  EXPECT_EQ(read_all(out + "/model.safetensors"), before);
  EXPECT_EQ(entries(parent), std::set<std::string>{"out"});

  ConvertOptions replace;
  replace.replace_existing = true;
  replace.dtype = DType::kBF16;
  const ConvertReport report = convert_model(model, out, replace);
  EXPECT_EQ(report.tensors, 47);
  EXPECT_EQ(entries(out), (std::set<std::string>{"config.json", "model.safetensors", "tok512.bin"}));  // replaced whole
  EXPECT_EQ(entries(parent), std::set<std::string>{"out"});
  EXPECT_EQ(load_hf_config(out).torch_dtype, DType::kBF16);
  EXPECT_EQ(open_model(out).find("model.norm.weight")->dtype(), DType::kBF16);

  // replace_existing never replaces a file with a folder.
  const std::string file = parent + "/plain-file";
  { std::ofstream(file) << "x"; }
  try {
    convert_model(model, file, replace);
    ADD_FAILURE() << "replaced a file";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), file + ": exists and is not a folder");
  }
  EXPECT_EQ(read_all(file), "x");
  EXPECT_EQ(entries(parent), (std::set<std::string>{"out", "plain-file"}));
}

// ---------------------------------------------------------------------------------
// dtype conversion

void check_dtype_conversion(const std::string& shared, DType dtype, uint16_t (*narrow)(float), const char* torch_name) {
  const ModelFiles source = open_model(bin_path(shared));
  const std::string out = testing::temp_dir() + "/converted";
  ConvertOptions options;
  options.dtype = dtype;
  const ConvertReport report = convert_model(source, out, options);
  EXPECT_EQ(report.tensors, 47);
  EXPECT_EQ(report.parameters, 260'032);

  const SafetensorsFile written = SafetensorsFile::open(out + "/model.safetensors");
  ASSERT_EQ(written.names().size(), 47u);
  size_t changed = 0;
  for (const auto& [name, tensor] : source.tensors) {
    SCOPED_TRACE(name);
    const Tensor converted = written.tensor(name);
    ASSERT_EQ(converted.dtype(), dtype);
    ASSERT_EQ(converted.shape(), tensor.shape());
    const auto values = tensor.values<float>();
    const auto bits = bits16(converted);
    for (size_t i = 0; i < values.size(); ++i) {
      ASSERT_EQ(bits[i], narrow(values[i])) << "element " << i << " = " << values[i];
    }
    changed += values.size();
  }
  EXPECT_EQ(changed, 260'032u);
  // 2 bytes per parameter plus the header.
  EXPECT_LT(fs::file_size(out + "/model.safetensors"), 2u * 260'032u + 16'384u);
  EXPECT_GT(fs::file_size(out + "/model.safetensors"), 2u * 260'032u);

  const LlamaConfig config = load_hf_config(out);
  EXPECT_EQ(config.torch_dtype, dtype);
  EXPECT_NE(read_all(out + "/config.json").find(std::string("\"torch_dtype\": \"") + torch_name + "\""), std::string::npos);
  // Everything else in the config is unchanged.
  LlamaConfig expected = *source.config;
  expected.torch_dtype = dtype;
  expect_same_config(config, expected);
}

TEST(Convert, ToBf16RoundsEachValueToNearestEven) {
  LOWBIT_REQUIRE_SHARED(shared);
  check_dtype_conversion(shared, DType::kBF16, f32_to_bf16_bits, "bfloat16");
}

TEST(Convert, ToF16RoundsEachValueToNearestEven) {
  LOWBIT_REQUIRE_SHARED(shared);
  check_dtype_conversion(shared, DType::kF16, f32_to_f16_bits, "float16");
}

TEST(Convert, Bf16BackToF32IsExact) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string parent = testing::temp_dir();
  ConvertOptions to_bf16;
  to_bf16.dtype = DType::kBF16;
  convert_model(open_model(hf_path(shared)), parent + "/bf16", to_bf16);
  ConvertOptions to_f32;
  to_f32.dtype = DType::kF32;
  const ModelFiles bf16 = open_model(parent + "/bf16");
  convert_model(bf16, parent + "/f32", to_f32);
  const ModelFiles f32 = open_model(parent + "/f32");
  EXPECT_EQ(f32.config->torch_dtype, DType::kF32);
  ASSERT_EQ(f32.tensors.size(), 47u);
  for (const auto& [name, tensor] : bf16.tensors) {
    SCOPED_TRACE(name);
    const Tensor* wide = f32.find(name);
    ASSERT_NE(wide, nullptr);
    ASSERT_EQ(wide->dtype(), DType::kF32);
    const auto bits = bits16(tensor);
    const auto values = wide->values<float>();
    for (size_t i = 0; i < values.size(); ++i) {
      const float expected = bf16_bits_to_f32(bits[i]);
      ASSERT_EQ(std::memcmp(&values[i], &expected, 4), 0) << "element " << i;
    }
  }
  EXPECT_EQ(entries(parent), (std::set<std::string>{"bf16", "f32"}));
}

// ---------------------------------------------------------------------------------
// Failures leave nothing behind

TEST(Convert, FailedConversionLeavesNothing) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string parent = testing::temp_dir();
  ModelFiles model = open_model(bin_path(shared));

  // Fails after model.safetensors and config.json are written: the tokenizer is gone.
  model.tokenizer_path = parent + "/vanished-tok512.bin";
  EXPECT_THROW(convert_model(model, parent + "/out", {}), Error);
  EXPECT_TRUE(entries(parent).empty()) << *entries(parent).begin();

  // Refused before anything is written: not a float dtype lowbit writes.
  model.tokenizer_path.clear();
  for (DType dtype : {DType::kF8E4M3, DType::kI8, DType::kF64}) {
    ConvertOptions options;
    options.dtype = dtype;
    try {
      convert_model(model, parent + "/out", options);
      ADD_FAILURE() << "converted to " << dtype_name(dtype);
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()),
                parent + "/out: target dtype must be F32, F16 or BF16, not " + std::string(dtype_name(dtype)));
    }
    EXPECT_TRUE(entries(parent).empty());
  }

  // An output whose parent folder does not exist.
  try {
    convert_model(model, parent + "/missing/out", {});
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(parent + "/missing/out: cannot create a staging folder", 0), 0u) << e.what();
  }
  EXPECT_TRUE(entries(parent).empty());

  // And a good conversion afterwards still works, into a path given with a trailing slash.
  convert_model(model, parent + "/out/", {});
  EXPECT_EQ(entries(parent), std::set<std::string>{"out"});
  EXPECT_EQ(entries(parent + "/out"), (std::set<std::string>{"config.json", "model.safetensors"}));
}

// ---------------------------------------------------------------------------------
// A bare .safetensors file (no config) converts to a .safetensors file

TEST(Convert, BareSafetensorsToFile) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string parent = testing::temp_dir();
  const std::string input = parent + "/in.safetensors";
  fs::copy_file(hf_path(shared) + "/model.safetensors", input);
  const ModelFiles model = open_model(input);
  ASSERT_FALSE(model.config.has_value());

  try {
    convert_model(model, parent + "/out-folder", {});
    ADD_FAILURE() << "wrote a folder without a config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("name the output *.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries(parent), std::set<std::string>{"in.safetensors"});

  ConvertOptions options;
  options.dtype = DType::kBF16;
  const std::string output = parent + "/out.safetensors";
  const ConvertReport report = convert_model(model, output, options);
  EXPECT_EQ(report.tensors, 47);
  EXPECT_EQ(report.bytes_written, fs::file_size(output));
  const SafetensorsFile written = SafetensorsFile::open(output);
  for (const auto& [name, tensor] : model.tensors) {
    SCOPED_TRACE(name);
    const auto values = tensor.values<float>();
    const auto bits = bits16(written.tensor(name));
    for (size_t i = 0; i < values.size(); ++i) ASSERT_EQ(bits[i], f32_to_bf16_bits(values[i])) << i;
  }
  EXPECT_EQ(written.metadata().at("format"), "pt");

  const std::string before = read_all(output);
  try {
    convert_model(model, output, {});
    ADD_FAILURE() << "replaced without replace_existing";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), output + ": already exists (pass --force to replace it)");
  }
  EXPECT_EQ(read_all(output), before);
  ConvertOptions replace;
  replace.replace_existing = true;
  convert_model(model, output, replace);
  const SafetensorsFile replaced = SafetensorsFile::open(output);
  for (const auto& [name, tensor] : model.tensors) EXPECT_TRUE(replaced.tensor(name).bit_equal(tensor)) << name;
  EXPECT_EQ(entries(parent), (std::set<std::string>{"in.safetensors", "out.safetensors"}));
}

}  // namespace
}  // namespace lowbit
