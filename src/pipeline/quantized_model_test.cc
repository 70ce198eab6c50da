// lowbit quantized folders end to end: a random Qwen2-style model (GQA, attention biases, untied
// head, odd sizes) has five layers quantized with RTN in different schemes (symmetric int4 g32,
// asymmetric uint3 per row, int4 with g_idx, e2m1 with bf16 scales, asymmetric uint4 head), is
// written with write_quantized_model and reopened: every QuantizedTensor comes back bit-exactly, and
// against a dense model whose linears hold the dequantized weights the logits are equal bit for bit
// in prefill (and in decode when the layers are told to dequantize), and within f32 rounding in the
// default packed decode. Malformed folders give one-line errors naming the file and tensor; a failed
// write leaves nothing.
#include "lowbit/pipeline/quantized_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "lowbit/compress/quantized_linear.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/atomic_file.h"
#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/random.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/io/json_file.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/io/tokenizer.h"
#include "testing/random_model.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::contains;
using testing::error_from;

// The shared awkward test config (GQA, attention biases, untied head; intermediate 37, so uint3
// rows of 37 codes leave a pad bit) with plain RoPE.
LlamaConfig small_config() {
  LlamaConfig c = testing::awkward_config();
  c.rope_scaling.reset();
  c.rope_theta = LlamaConfig{}.rope_theta;
  return c;
}

// Random f32 weights for every tensor the config needs.
std::string write_random_model(const LlamaConfig& config) { return testing::write_random_model(config, DType::kF32, 3); }

struct LayerCase {
  std::string name;
  QuantScheme scheme;
  bool g_idx = false;
};

std::vector<LayerCase> layer_cases() {
  return {{"model.layers.0.self_attn.q_proj", QuantScheme::integer(4, 32, true)},  // its bias via `biases`
          {"model.layers.0.mlp.down_proj", QuantScheme::integer(3, 0, false)},
          {"model.layers.1.mlp.gate_proj", QuantScheme::integer(4, 32, true), true},
          {"model.layers.1.self_attn.v_proj", QuantScheme::with_format(Format::e2m1(), 16, DType::kBF16)},  // bias stays dense
          {"lm_head", QuantScheme::integer(4, 16, false)},
          {"model.layers.0.mlp.up_proj", *QuantScheme::preset("nvfp4")},         // ue4m3 scales x a tensor scale
          {"model.layers.1.self_attn.o_proj", *QuantScheme::preset("mxfp4")}};  // e8m0 scales
}

QuantizedModelContents quantize_some_layers(const ModelFiles& dense) {
  QuantizedModelContents contents;
  contents.config = *dense.config;
  contents.quantization_config = {{"method", "rtn"}, {"note", "kept as given"}};
  std::set<std::string> replaced;
  for (const auto& layer : layer_cases()) {
    const Tensor& w = *dense.find(layer.name + ".weight");
    RtnOptions options;
    options.scheme = layer.scheme;
    QuantizedTensor q = quantize_rtn(w.to_f32_vector(), w.dim(0), w.dim(1), options);
    if (layer.g_idx) {
      std::vector<int32_t> g_idx(static_cast<size_t>(q.cols()));
      for (size_t c = 0; c < g_idx.size(); ++c) g_idx[c] = static_cast<int32_t>((c * 7 + 1) % q.groups_per_row());
      q.set_g_idx(std::move(g_idx));
    }
    contents.quantized.emplace(layer.name, std::move(q));
    replaced.insert(layer.name + ".weight");
  }
  const std::string q_bias = "model.layers.0.self_attn.q_proj.bias";
  contents.biases["model.layers.0.self_attn.q_proj"] = dense.find(q_bias)->to_f32_vector();
  replaced.insert(q_bias);
  for (const auto& [name, tensor] : dense.tensors)
    if (!replaced.contains(name)) contents.dense.emplace_back(name, tensor);
  return contents;
}

// The same model with each quantized layer stored densely as its dequantized f32 matrix.
std::string write_dequantized_reference(const QuantizedModelContents& contents) {
  const std::string dir = testing::temp_dir() + "/reference";
  fs::create_directories(dir);
  NamedTensors tensors = contents.dense;
  for (const auto& [name, q] : contents.quantized) {
    const auto w = q.dequantize();
    tensors.emplace_back(name + ".weight", Tensor::copy_of(DType::kF32, {q.rows(), q.cols()}, w.data(), w.size() * 4));
  }
  for (const auto& [name, b] : contents.biases)
    tensors.emplace_back(name + ".bias", Tensor::copy_of(DType::kF32, {static_cast<int64_t>(b.size())}, b.data(), b.size() * 4));
  write_safetensors(dir + "/model.safetensors", tensors);
  write_file_atomically(dir + "/config.json", contents.config.to_json().dump());
  return dir;
}

class QuantizedModelFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dense_ = new ModelFiles(open_model(write_random_model(small_config())));
    contents_ = new QuantizedModelContents(quantize_some_layers(*dense_));
    dir_ = testing::temp_dir() + "/quantized";
    bytes_ = write_quantized_model(dir_, *dense_, *contents_, false);
  }
  static void TearDownTestSuite() {
    delete contents_;
    delete dense_;
  }
  // A copy of the written folder to spoil.
  static std::string copy_of_folder() {
    const std::string copy = testing::temp_dir() + "/spoiled";
    fs::copy(dir_, copy, fs::copy_options::recursive);
    return copy;
  }
  static void edit_tensors(const std::string& dir, const std::function<void(NamedTensors&)>& edit) {
    NamedTensors tensors;
    {
      const auto file = SafetensorsFile::open(dir + "/model.safetensors");
      for (const auto& name : file.names()) {
        const Tensor t = file.tensor(name);
        tensors.emplace_back(name, Tensor::copy_of(t.dtype(), t.shape(), t.data(), t.nbytes()));
      }
    }
    edit(tensors);
    write_safetensors(dir + "/model.safetensors", tensors);
  }
  static Tensor& tensor_named(NamedTensors& tensors, const std::string& name) {
    for (auto& [n, t] : tensors)
      if (n == name) return t;
    throw Error("test: no tensor " + name);
  }
  static void edit_config(const std::string& dir, const std::function<void(json&)>& edit) {
    json config = read_json_file(dir + "/config.json");
    edit(config);
    write_file_atomically(dir + "/config.json", config.dump(2));
  }

  static inline ModelFiles* dense_ = nullptr;
  static inline QuantizedModelContents* contents_ = nullptr;
  static inline std::string dir_;
  static inline uint64_t bytes_ = 0;
};

TEST_F(QuantizedModelFiles, FolderHoldsTheDocumentedLayout) {
  EXPECT_EQ(bytes_, fs::file_size(dir_ + "/model.safetensors") + fs::file_size(dir_ + "/config.json"));
  const json config = read_json_file(dir_ + "/config.json");
  const json& q = config["quantization_config"];
  EXPECT_EQ(q["quant_method"], "lowbit");
  EXPECT_EQ(q["format_version"], 1);
  EXPECT_EQ(q["method"], "rtn");  // producer keys are kept
  EXPECT_EQ(q["layers"].size(), 7u);
  EXPECT_EQ(q["layers"]["model.layers.0.mlp.down_proj"],
            json({{"format", "uint3"}, {"group_size", 0}, {"scale_dtype", "f16"}, {"in_features", 37}, {"out_features", 48}}));
  EXPECT_EQ(q["layers"]["model.layers.1.self_attn.v_proj"]["format"], "e2m1");
  EXPECT_EQ(q["layers"]["model.layers.1.self_attn.v_proj"]["scale_dtype"], "bf16");
  EXPECT_EQ(config["tie_word_embeddings"], false);

  const ModelFiles files = open_model(dir_);
  ASSERT_TRUE(files.quantized());
  EXPECT_EQ(files.quantized_layers.size(), 7u);
  auto expect_part = [&](const std::string& name, DType dtype, Shape shape) {
    const Tensor* t = files.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype(), dtype) << name;
    EXPECT_EQ(t->shape(), shape) << name;
  };
  expect_part("model.layers.0.self_attn.q_proj.qweight", DType::kU8, {48, 24});  // 48 int4 codes = 24 bytes
  expect_part("model.layers.0.self_attn.q_proj.scales", DType::kF16, {48, 2});
  expect_part("model.layers.0.self_attn.q_proj.bias", DType::kF32, {48});
  expect_part("model.layers.0.mlp.down_proj.qweight", DType::kU8, {48, 14});  // ceil(37 * 3 / 8)
  expect_part("model.layers.0.mlp.down_proj.scales", DType::kF16, {48, 1});
  expect_part("model.layers.0.mlp.down_proj.qzeros", DType::kU8, {48, 1});
  expect_part("model.layers.1.mlp.gate_proj.g_idx", DType::kI32, {48});
  expect_part("model.layers.1.self_attn.v_proj.scales", DType::kBF16, {16, 3});
  expect_part("lm_head.qzeros", DType::kU8, {53, 2});  // 3 groups x 4 bits
  EXPECT_EQ(q["layers"]["model.layers.0.mlp.up_proj"]["scale_dtype"], "ue4m3");
  expect_part("model.layers.0.mlp.up_proj.qweight", DType::kU8, {37, 24});  // 48 e2m1 codes
  expect_part("model.layers.0.mlp.up_proj.scales", DType::kF8E4M3, {37, 3});  // groups of 16
  expect_part("model.layers.0.mlp.up_proj.tensor_scale", DType::kF32, {1});
  EXPECT_EQ(q["layers"]["model.layers.1.self_attn.o_proj"]["scale_dtype"], "e8m0");
  expect_part("model.layers.1.self_attn.o_proj.scales", DType::kF8E8M0, {48, 2});  // 32 + a ragged 16
  EXPECT_EQ(files.find("model.layers.1.self_attn.o_proj.tensor_scale"), nullptr);
  for (const char* absent : {"lm_head.weight", "model.layers.0.self_attn.q_proj.weight",
                             "model.layers.0.self_attn.q_proj.qzeros", "model.layers.0.mlp.down_proj.g_idx"})
    EXPECT_EQ(files.find(absent), nullptr) << absent;
  // Logical parameters, not stored bytes.
  EXPECT_EQ(files.parameter_count(), dense_->parameter_count());
}

TEST_F(QuantizedModelFiles, EveryQuantizedTensorRoundTripsBitExactly) {
  const auto layers = read_quantized_layers(open_model(dir_));
  ASSERT_EQ(layers.size(), contents_->quantized.size());
  for (const auto& [name, original] : contents_->quantized) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(layers.contains(name));
    const QuantizedTensor& read = *layers.at(name);
    EXPECT_EQ(read.scheme().to_string(), original.scheme().to_string());
    EXPECT_EQ(read.rows(), original.rows());
    EXPECT_EQ(read.cols(), original.cols());
    EXPECT_TRUE(std::ranges::equal(read.packed_codes(), original.packed_codes()));
    ASSERT_EQ(read.scales().size(), original.scales().size());
    EXPECT_EQ(std::memcmp(read.scales().data(), original.scales().data(), read.scales().size_bytes()), 0);
    EXPECT_TRUE(std::ranges::equal(read.zero_points(), original.zero_points()));
    EXPECT_TRUE(std::ranges::equal(read.g_idx(), original.g_idx()));
    EXPECT_EQ(read.storage_bytes(), original.storage_bytes());
  }
  EXPECT_FALSE(layers.at("model.layers.1.mlp.gate_proj")->g_idx().empty());
  EXPECT_FALSE(layers.at("lm_head")->zero_points().empty());
}

// load_llama_model, except that every quantized layer dequantizes for one token too
// (packed_decode = false): the path that equals the dequantized dense model bit for bit.
std::shared_ptr<LlamaModel> load_with_dequantized_decode(const std::string& dir) {
  const auto files = std::make_shared<ModelFiles>(open_model(dir));
  const auto layers = read_quantized_layers(*files);
  const ModelFiles& stored = *files;
  return std::make_shared<LlamaModel>(files, [&](const std::string& name) -> std::unique_ptr<LinearLayer> {
    const auto layer = layers.find(name);
    if (layer == layers.end()) return nullptr;
    std::vector<float> bias;
    if (const Tensor* b = stored.find(name + ".bias")) bias = b->to_f32_vector();
    return std::make_unique<QuantizedLinear>(layer->second, std::move(bias), /*packed_decode=*/false);
  });
}

TEST_F(QuantizedModelFiles, LogitsMatchTheDequantizedDenseModel) {
  const auto model = load_llama_model(std::make_shared<ModelFiles>(open_model(dir_)));
  const auto dequantized_decode = load_with_dequantized_decode(dir_);
  const LlamaModel reference(std::make_shared<ModelFiles>(open_model(write_dequantized_reference(*contents_))));
  for (const auto& layer : layer_cases()) {
    SCOPED_TRACE(layer.name);
    const auto* q = dynamic_cast<const QuantizedLinear*>(&model->linear(layer.name));
    ASSERT_NE(q, nullptr);
    // Packed decode by default for the integer grids and 4-bit floats without g_idx (q_proj, down_proj,
    // v_proj's e2m1, lm_head): all but gate_proj.
    const bool packable = layer.scheme.element.kind() == Format::Kind::kInt || layer.scheme.element == Format::e2m1();
    EXPECT_EQ(q->packed_decode(), packable && !layer.g_idx);
    EXPECT_FALSE(dynamic_cast<const QuantizedLinear&>(dequantized_decode->linear(layer.name)).packed_decode());
  }
  EXPECT_EQ(dynamic_cast<const QuantizedLinear*>(&model->linear("model.layers.0.self_attn.k_proj")), nullptr);
  EXPECT_EQ(dynamic_cast<const QuantizedLinear&>(model->linear("model.layers.0.self_attn.q_proj")).bias(),
            contents_->biases.at("model.layers.0.self_attn.q_proj"));
  EXPECT_EQ(dynamic_cast<const QuantizedLinear&>(model->linear("model.layers.1.self_attn.v_proj")).bias().size(), 16u);

  const std::vector<int32_t> tokens = {3, 17, 52, 0, 9, 9, 41, 23, 5};
  const size_t vocab = 53, prefill = 5;
  auto logits_of = [&](const LlamaModel& m) {
    // Prefill of 5 (sgemm path), then one token at a time (GEMV path).
    KvCache cache(m.config(), 16);
    std::vector<float> out(prefill * vocab);
    m.forward(std::span<const int32_t>(tokens.data(), prefill), cache, out.data(), true);
    std::vector<float> step(vocab);
    for (size_t t = prefill; t < tokens.size(); ++t) {
      m.forward(std::span<const int32_t>(&tokens[t], 1), cache, step.data(), false);
      out.insert(out.end(), step.begin(), step.end());
    }
    return out;
  };
  const auto packed = logits_of(*model), dequantized = logits_of(*dequantized_decode), dense = logits_of(reference);
  ASSERT_EQ(packed.size(), dense.size());
  ASSERT_EQ(dequantized.size(), dense.size());
  // Dequantized tiles + the same sgemm/GEMV as DenseLinear: bit for bit, prefill and decode.
  EXPECT_EQ(std::memcmp(dequantized.data(), dense.data(), dense.size() * sizeof(float)), 0);
  // Prefill never takes the packed kernel: bit for bit as well.
  EXPECT_EQ(std::memcmp(packed.data(), dense.data(), prefill * vocab * sizeof(float)), 0);
  // Decode through the packed kernel differs only by f32 rounding: each packed layer is within a few
  // ulps of Σ|W||x| of its dequantized product (packed_gemv_test), and two blocks of norms, attention
  // and MLP amplify that by a small factor. 1e-5 of the step's largest |logit| leaves that margin
  // (measured: ~4e-7) and is far below what quantization itself changes (~0.15 of it; checked below).
  const LlamaModel original(std::make_shared<ModelFiles>(*dense_));
  const auto unquantized = logits_of(original);
  for (size_t t = prefill; t < tokens.size(); ++t) {
    SCOPED_TRACE("decode step at token " + std::to_string(t));
    const size_t base = t * vocab;  // one row of logits per token
    float largest = 0, packed_error = 0, quantization_change = 0;
    for (size_t v = 0; v < vocab; ++v) {
      largest = std::max(largest, std::fabs(dense[base + v]));
      packed_error = std::max(packed_error, std::fabs(packed[base + v] - dense[base + v]));
      quantization_change = std::max(quantization_change, std::fabs(unquantized[base + v] - dense[base + v]));
    }
    EXPECT_LE(packed_error, 1e-5f * largest);
    EXPECT_GT(quantization_change, 100 * 1e-5f * largest);
  }
  // The packed kernel really ran: its rounding differs from the dequantized GEMV somewhere.
  EXPECT_NE(std::memcmp(packed.data() + prefill * vocab, dense.data() + prefill * vocab,
                        (dense.size() - prefill * vocab) * sizeof(float)),
            0);
  // The quantized model is not the original: the comparisons above are not vacuous.
  EXPECT_NE(unquantized, packed);
}

TEST_F(QuantizedModelFiles, DenseModelsLoadAsBefore) {
  const auto model = load_llama_model(std::make_shared<ModelFiles>(*dense_));
  for (const auto& name : model->linear_names())
    EXPECT_NE(dynamic_cast<const DenseLinear*>(&model->linear(name)), nullptr) << name;
  EXPECT_TRUE(read_quantized_layers(*dense_).empty());
}

TEST_F(QuantizedModelFiles, MissingOrMisshapenPartsNameTheTensor) {
  const std::string missing = copy_of_folder();
  edit_tensors(missing, [](NamedTensors& tensors) {
    std::erase_if(tensors, [](const auto& entry) { return entry.first == "lm_head.qweight"; });
  });
  std::string message = error_from([&] { open_model(missing); });
  EXPECT_EQ(message, missing + ": missing tensor 'lm_head.qweight' of quantized layer 'lm_head' (listed in quantization_config)");

  const std::string misshapen = copy_of_folder();
  edit_tensors(misshapen, [](NamedTensors& tensors) {
    tensor_named(tensors, "model.layers.0.mlp.down_proj.qweight") = Tensor::zeros(DType::kU8, {48, 15});
  });
  message = error_from([&] { open_model(misshapen); });
  EXPECT_EQ(message, misshapen + ": tensor 'model.layers.0.mlp.down_proj.qweight' has shape [48, 15], "
                                 "the quantization_config implies [48, 14]");

  const std::string wrong_dtype = copy_of_folder();
  edit_tensors(wrong_dtype, [](NamedTensors& tensors) {
    Tensor& scales = tensor_named(tensors, "model.layers.0.self_attn.q_proj.scales");
    scales = scales.to(DType::kF32);
  });
  message = error_from([&] { open_model(wrong_dtype); });
  EXPECT_TRUE(contains(message, "tensor 'model.layers.0.self_attn.q_proj.scales' has dtype F32, the quantization_config implies F16"))
      << message;

  const std::string unlisted = copy_of_folder();
  edit_config(unlisted, [](json& config) { config["quantization_config"]["layers"].erase("model.layers.1.mlp.gate_proj"); });
  message = error_from([&] { open_model(unlisted); });
  EXPECT_TRUE(contains(message, unlisted + ": unexpected tensor 'model.layers.1.mlp.gate_proj."));
  EXPECT_TRUE(contains(message, "a quantized part of 'model.layers.1.mlp.gate_proj', which quantization_config does not list"))
      << message;

  const std::string wrong_shape = copy_of_folder();
  edit_config(wrong_shape, [](json& config) { config["quantization_config"]["layers"]["lm_head"]["in_features"] = 47; });
  message = error_from([&] { open_model(wrong_shape); });
  EXPECT_EQ(message, wrong_shape + ": quantization_config.layers['lm_head'] records [out_features, in_features] = "
                                   "[53, 47], the config implies [53, 48]");

  const std::string not_linear = copy_of_folder();
  edit_config(not_linear, [](json& config) {
    config["quantization_config"]["layers"]["model.norm"] = config["quantization_config"]["layers"]["lm_head"];
  });
  message = error_from([&] { open_model(not_linear); });
  EXPECT_EQ(message, not_linear + ": quantization_config lists 'model.norm', which is not a linear layer of this qwen2 model");
}

TEST_F(QuantizedModelFiles, BadConfigIsOneLineNamingConfigJson) {
  const std::string gptq = copy_of_folder();
  edit_config(gptq, [](json& config) { config["quantization_config"]["quant_method"] = "gptq"; });
  std::string message = error_from([&] { open_model(gptq); });
  EXPECT_EQ(message, gptq + "/config.json: quantization_config.quant_method 'gptq' is not supported (lowbit reads 'lowbit')");

  const std::string format = copy_of_folder();
  edit_config(format, [](json& config) { config["quantization_config"]["layers"]["lm_head"]["format"] = "int99x"; });
  message = error_from([&] { open_model(format); });
  EXPECT_TRUE(contains(message, format + "/config.json: quantization_config.layers['lm_head']: \"format\": ")) << message;
  EXPECT_TRUE(contains(message, "int99x")) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);

  const std::string version = copy_of_folder();
  edit_config(version, [](json& config) { config["quantization_config"]["format_version"] = 2; });
  message = error_from([&] { open_model(version); });
  EXPECT_EQ(message, version + "/config.json: quantization_config: format_version 2 is not supported (this lowbit reads 1)");

  const std::string scale = copy_of_folder();
  edit_config(scale, [](json& config) { config["quantization_config"]["layers"]["lm_head"]["scale_dtype"] = "f8"; });
  message = error_from([&] { open_model(scale); });
  EXPECT_EQ(message, scale + "/config.json: quantization_config.layers['lm_head']: \"scale_dtype\" must be f16, bf16, f32, ue4m3 or e8m0, found \"f8\"");

  const std::string group = copy_of_folder();
  edit_config(group, [](json& config) { config["quantization_config"]["layers"]["lm_head"]["group_size"] = 49; });
  message = error_from([&] { open_model(group); });
  EXPECT_EQ(message, group + "/config.json: quantization_config.layers['lm_head']: \"group_size\" must be 0 (per row) .. "
                             "in_features 48, found 49");

  const std::string tied = copy_of_folder();
  edit_config(tied, [](json& config) { config["tie_word_embeddings"] = true; });
  message = error_from([&] { open_model(tied); });
  EXPECT_TRUE(contains(message, tied + ": quantization_config lists 'lm_head', but config.json has tie_word_embeddings true"))
      << message;
}

TEST_F(QuantizedModelFiles, BadValuesAreRefusedOnLoadNamingLayerAndTensor) {
  // Code pad bits: 37 uint3 codes use 111 of 112 bits; the last bit of each row must be 0.
  const std::string pad = copy_of_folder();
  edit_tensors(pad, [](NamedTensors& tensors) {
    tensor_named(tensors, "model.layers.0.mlp.down_proj.qweight").mutable_values<uint8_t>()[13] |= 0x80;
  });
  auto files = std::make_shared<ModelFiles>(open_model(pad));  // shapes are right: open succeeds
  std::string message = error_from([&] { load_llama_model(files); });
  EXPECT_TRUE(contains(message, pad + ": quantized layer 'model.layers.0.mlp.down_proj': quantized tensor: codes of row 0"))
      << message;
  EXPECT_TRUE(contains(message, "pad")) << message;

  // Zero-point pad bits: 3 uint4 zero points use 12 of 16 bits.
  const std::string zero_pad = copy_of_folder();
  edit_tensors(zero_pad, [](NamedTensors& tensors) {
    tensor_named(tensors, "lm_head.qzeros").mutable_values<uint8_t>()[2 * 5 + 1] |= 0x40;
  });
  message = error_from([&] { read_quantized_layers(open_model(zero_pad)); });
  EXPECT_TRUE(contains(message, zero_pad + ": quantized layer 'lm_head': tensor 'lm_head.qzeros' row 5")) << message;

  // A scale that is no finite f16 value (+Inf).
  const std::string inf = copy_of_folder();
  edit_tensors(inf, [](NamedTensors& tensors) {
    Tensor& scales = tensor_named(tensors, "model.layers.0.self_attn.q_proj.scales");
    const uint16_t inf_bits = 0x7C00;
    std::memcpy(static_cast<std::byte*>(scales.mutable_data()) + 3 * sizeof(uint16_t), &inf_bits, sizeof(inf_bits));
  });
  message = error_from([&] { read_quantized_layers(open_model(inf)); });
  EXPECT_EQ(message, inf + ": quantized layer 'model.layers.0.self_attn.q_proj': tensor "
                           "'model.layers.0.self_attn.q_proj.scales': scale [1, 1] is inf");

  // A UE4M3 scale with its sign bit set (NVFP4 scales are unsigned), and a tensor scale that is not
  // a power of two (lowbit's NVFP4 keeps scale x tensor scale exact).
  const std::string negative = copy_of_folder();
  edit_tensors(negative, [](NamedTensors& tensors) {
    static_cast<uint8_t*>(tensor_named(tensors, "model.layers.0.mlp.up_proj.scales").mutable_data())[4] |= 0x80;
  });
  message = error_from([&] { read_quantized_layers(open_model(negative)); });
  EXPECT_TRUE(contains(message, negative + ": quantized layer 'model.layers.0.mlp.up_proj': quantized tensor: scale 4 (")) << message;
  EXPECT_TRUE(contains(message, "is not a finite F8_E4M3 value (unsigned)")) << message;
  const std::string odd_tensor_scale = copy_of_folder();
  edit_tensors(odd_tensor_scale, [](NamedTensors& tensors) {
    tensor_named(tensors, "model.layers.0.mlp.up_proj.tensor_scale").mutable_values<float>()[0] = 3.0f;
  });
  message = error_from([&] { read_quantized_layers(open_model(odd_tensor_scale)); });
  EXPECT_EQ(message, odd_tensor_scale + ": quantized layer 'model.layers.0.mlp.up_proj': quantized tensor: the tensor scale "
                                        "must be a power of two in 2^-117 .. 2^118 (so that scale x tensor scale is exact), "
                                        "found 3.000000");
  // E8M0's NaN code.
  const std::string nan = copy_of_folder();
  edit_tensors(nan, [](NamedTensors& tensors) {
    static_cast<uint8_t*>(tensor_named(tensors, "model.layers.1.self_attn.o_proj.scales").mutable_data())[3] = 0xFF;
  });
  message = error_from([&] { read_quantized_layers(open_model(nan)); });
  EXPECT_EQ(message, nan + ": quantized layer 'model.layers.1.self_attn.o_proj': tensor "
                           "'model.layers.1.self_attn.o_proj.scales': scale [1, 1] is nan");

  // g_idx naming a group that does not exist (48 columns in groups of 32: groups 0 and 1).
  const std::string g_idx = copy_of_folder();
  edit_tensors(g_idx, [](NamedTensors& tensors) {
    tensor_named(tensors, "model.layers.1.mlp.gate_proj.g_idx").mutable_values<int32_t>()[7] = 2;
  });
  message = error_from([&] { read_quantized_layers(open_model(g_idx)); });
  EXPECT_TRUE(contains(message, g_idx + ": quantized layer 'model.layers.1.mlp.gate_proj': quantized tensor: g_idx[7] = 2"))
      << message;
}

TEST_F(QuantizedModelFiles, WriterRefusesExistingOutputAndLeavesNothingOnFailure) {
  std::string message = error_from([&] { write_quantized_model(dir_, *dense_, *contents_, false); });
  EXPECT_EQ(message, dir_ + ": already exists (pass --force to replace it)");
  const std::string replaced = testing::temp_dir() + "/replaced";
  fs::create_directories(replaced);
  EXPECT_GT(write_quantized_model(replaced, *dense_, *contents_, true), 0u);
  EXPECT_TRUE(fs::exists(replaced + "/config.json"));

  // A model the reader would refuse (the final norm is missing) is never renamed into place.
  const std::string parent = testing::temp_dir();
  QuantizedModelContents broken = *contents_;
  std::erase_if(broken.dense, [](const auto& entry) { return entry.first == "model.norm.weight"; });
  message = error_from([&] { write_quantized_model(parent + "/out", *dense_, broken, false); });
  EXPECT_TRUE(contains(message, parent + "/out: the folder written does not open: ")) << message;
  EXPECT_TRUE(contains(message, "missing tensor 'model.norm.weight'")) << message;
  EXPECT_TRUE(fs::is_empty(parent));  // neither the output nor its staging folder

  QuantizedModelContents bad_bias = *contents_;
  bad_bias.biases["model.layers.0.self_attn.q_proj"].pop_back();
  message = error_from([&] { write_quantized_model(parent + "/out", *dense_, bad_bias, false); });
  EXPECT_EQ(message, parent + "/out: bias of 'model.layers.0.self_attn.q_proj' has 47 values for 48 outputs");
  QuantizedModelContents twice = *contents_;
  twice.dense.emplace_back("lm_head.qweight", Tensor::zeros(DType::kU8, {53, 24}));
  message = error_from([&] { write_quantized_model(parent + "/out", *dense_, twice, false); });
  EXPECT_EQ(message, parent + "/out: tensor 'lm_head.qweight' given twice");
  EXPECT_TRUE(fs::is_empty(parent));
}

TEST_F(QuantizedModelFiles, QuantizedHeadUntiesATiedConfig) {
  // A tied model stores no lm_head.weight; quantizing the head gives it its own parts.
  QuantizedModelContents tied = *contents_;
  tied.config.tie_word_embeddings = true;
  const std::string out = testing::temp_dir() + "/untied";
  write_quantized_model(out, *dense_, tied, false);
  const auto files = std::make_shared<ModelFiles>(open_model(out));
  EXPECT_FALSE(files->config->tie_word_embeddings);
  EXPECT_NE(dynamic_cast<const QuantizedLinear*>(&load_llama_model(files)->linear("lm_head")), nullptr);
}

TEST_F(QuantizedModelFiles, InspectReportsSchemesAndTrueBitsPerWeight) {
  const auto text = testing::run_cli("inspect '" + dir_ + "'");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "compressed:   7 layers")) << text.out;
  // lm_head: uint4 g16 on 48 columns = 24 code bytes + 3 f16 scales + 2 zero-point bytes per row:
  // 8 * 32 / 48 = 5.3333 bits per weight.
  EXPECT_TRUE(contains(text.out, "uint4 g16 (F16 scales, zero points)")) << text.out;
  EXPECT_TRUE(contains(text.out, "[53, 48]")) << text.out;
  EXPECT_TRUE(contains(text.out, "5.3333")) << text.out;
  EXPECT_TRUE(contains(text.out, "int4 g32 (F16 scales) g_idx")) << text.out;

  const auto result = testing::run_cli("inspect --json '" + dir_ + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json j = json::parse(result.out);
  const json& q = j["quantization"];
  EXPECT_EQ(j["parameters"], dense_->parameter_count());
  EXPECT_EQ(q["quantized_layers"], 7);
  EXPECT_EQ(q["config"]["quant_method"], "lowbit");
  uint64_t storage = 0, weights = 0;
  for (const json& layer : q["layers"]) {
    const QuantizedTensor& original = contents_->quantized.at(layer["name"].get<std::string>());
    EXPECT_EQ(layer["scheme"], original.scheme().to_string());
    EXPECT_EQ(layer["bits_per_weight"].get<double>(), original.bits_per_weight());
    storage += static_cast<uint64_t>(original.storage_bytes());
    weights += static_cast<uint64_t>(original.rows() * original.cols());
  }
  EXPECT_EQ(q["quantized_bits_per_weight"].get<double>(), 8.0 * storage / weights);
  // Whole model: every other tensor is f32 (32 bits per parameter).
  const uint64_t parameters = static_cast<uint64_t>(dense_->parameter_count());
  EXPECT_DOUBLE_EQ(q["model_bits_per_weight"].get<double>(), (8.0 * storage + 32.0 * (parameters - weights)) / parameters);
}

TEST_F(QuantizedModelFiles, CliErrorsAreOneLineWithExitCode2) {
  const std::string gptq = copy_of_folder();
  edit_config(gptq, [](json& config) { config["quantization_config"]["quant_method"] = "gptq"; });
  const auto inspect = testing::run_cli("inspect '" + gptq + "'");
  EXPECT_EQ(inspect.exit_code, 2);
  EXPECT_TRUE(contains(inspect.err, gptq + "/config.json: quantization_config.quant_method 'gptq' is not supported"))
      << inspect.err;
  EXPECT_EQ(std::count(inspect.err.begin(), inspect.err.end(), '\n'), 1) << inspect.err;

  // Converting would drop quantization_config and leave unreadable parts: refused, nothing written.
  const std::string out = testing::temp_dir() + "/converted";
  const auto convert = testing::run_cli("convert '" + dir_ + "' '" + out + "'");
  EXPECT_EQ(convert.exit_code, 2);
  EXPECT_TRUE(contains(convert.err, dir_ + ": is a lowbit quantized model; convert reads dense models")) << convert.err;
  EXPECT_FALSE(fs::exists(out));
  const auto gguf = testing::run_cli("convert '" + dir_ + "' '" + out + ".gguf'");
  EXPECT_EQ(gguf.exit_code, 2);
  EXPECT_TRUE(contains(gguf.err, "writing it as GGUF is not supported")) << gguf.err;
  EXPECT_FALSE(fs::exists(out + ".gguf"));
}

// The real model through the CLI: every linear quantized to int8 per row, then run and evaluated.
TEST(QuantizedModelCli, Stories260KRunsAndEvaluates) {
  LOWBIT_REQUIRE_SHARED(shared);
  const ModelFiles source = open_model(shared + "/models/stories260K/hf");
  const LlamaModel dense(std::make_shared<ModelFiles>(source));
  QuantizedModelContents contents;
  contents.config = *source.config;
  std::set<std::string> quantized;
  for (const auto& name : dense.linear_names()) {
    if (name == "lm_head" && source.config->tie_word_embeddings) continue;
    const Tensor& w = *source.find(name + ".weight");
    RtnOptions options;
    options.scheme = QuantScheme::integer(8, 0, true);
    contents.quantized.emplace(name, quantize_rtn(w.to_f32_vector(), w.dim(0), w.dim(1), options));
    quantized.insert(name + ".weight");
  }
  for (const auto& [name, tensor] : source.tensors)
    if (!quantized.contains(name)) contents.dense.emplace_back(name, tensor);
  const std::string out = testing::temp_dir() + "/stories-int8";
  write_quantized_model(out, source, contents, false);
  EXPECT_TRUE(fs::exists(out + "/" + fs::path(source.tokenizer_path).filename().string()));

  const auto run = testing::run_cli("run -m '" + out + "' -p 'Once upon a time' -n 24");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(run.out.starts_with("Once upon a time")) << run.out;

  const auto files = std::make_shared<ModelFiles>(open_model(out));
  const auto tokenizer = load_tokenizer(*files);
  std::ifstream in(shared + "/data/tinystories/tinystories_val.txt", std::ios::binary);
  std::string text(4000, '\0');
  in.read(text.data(), 4000);
  auto ids = tokenizer->encode(text, true);
  ids.resize(256);
  const std::string ids_path = testing::temp_dir() + "/ids.txt";
  {
    std::ofstream ids_file(ids_path);
    for (int32_t id : ids) ids_file << id << ' ';
  }
  const auto eval = testing::run_cli("eval ppl --json -m '" + out + "' --ids '" + ids_path + "'");
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  const json j = json::parse(eval.out);
  // The CLI computes exactly what the library does on the loaded model (any thread count).
  const auto expected = evaluate_sequence(*load_llama_model(files), ids);
  EXPECT_EQ(j["mean_nll"].get<double>(), expected.mean_nll);
  // int8 per row is close to the f32 model.
  const double f32_nll = evaluate_sequence(dense, ids).mean_nll;
  EXPECT_NE(expected.mean_nll, f32_nll);
  EXPECT_NEAR(expected.mean_nll, f32_nll, 0.02);

  const auto bench = testing::run_cli("bench --json -m '" + out + "' --prompt-tokens 8 --gen-tokens 4");
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_EQ(json::parse(bench.out)["parameters"], source.parameter_count());
}

}  // namespace
}  // namespace lowbit
