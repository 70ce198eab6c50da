#include "lowbit/pipeline/quantized_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "lowbit/compress/quantized_linear.h"
#include "lowbit/core/atomic_file.h"
#include "lowbit/core/error.h"
#include "lowbit/io/convert.h"
#include "lowbit/io/quantized_layout.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/numerics/packing.h"

namespace lowbit {

namespace fs = std::filesystem;

namespace {

const Tensor& part(const ModelFiles& files, const std::string& name) {
  const Tensor* tensor = files.find(name);
  // open_model checked the parts; a ModelFiles assembled by hand may still lack one.
  if (!tensor) throw Error("missing tensor '" + name + "'");
  return *tensor;
}

QuantizedTensor read_layer(const ModelFiles& files, const std::string& name, const QuantizedLayerSpec& spec) {
  const int64_t rows = spec.out_features, cols = spec.in_features, groups = spec.groups();
  const Tensor& qweight = part(files, name + kQweightSuffix);
  const auto* code_bytes = static_cast<const uint8_t*>(qweight.data());
  std::vector<uint8_t> codes(code_bytes, code_bytes + qweight.nbytes());

  const std::string scales_name = name + kScalesSuffix;
  std::vector<float> scales = part(files, scales_name).to_f32_vector();
  // Every finite value of the scale dtype is representable in it; only Inf/NaN can be wrong here.
  for (size_t i = 0; i < scales.size(); ++i)
    if (!std::isfinite(scales[i]))
      throw Error("tensor '" + scales_name + "'", "scale [" + std::to_string(i / static_cast<size_t>(groups)) + ", " +
                                                      std::to_string(i % static_cast<size_t>(groups)) + "] is " +
                                                      std::to_string(scales[i]));

  std::vector<uint8_t> zeros;
  if (spec.asymmetric()) {
    const std::string zeros_name = name + kQzerosSuffix;
    const Tensor& qzeros = part(files, zeros_name);
    const auto packed = std::span(static_cast<const uint8_t*>(qzeros.data()), qzeros.nbytes());
    const size_t per_row = static_cast<size_t>(spec.zero_row_bytes());
    zeros.resize(static_cast<size_t>(rows * groups));
    for (int64_t r = 0; r < rows; ++r) {
      try {
        unpack_bits(packed.subspan(static_cast<size_t>(r) * per_row, per_row), spec.bits(),
                    std::span(zeros).subspan(static_cast<size_t>(r * groups), static_cast<size_t>(groups)));
      } catch (const Error& e) {
        throw e.with_context("tensor '" + zeros_name + "' row " + std::to_string(r));
      }
    }
  }

  std::vector<int32_t> g_idx;
  if (const Tensor* stored = files.find(name + kGidxSuffix)) {
    const auto values = stored->values<int32_t>();
    g_idx.assign(values.begin(), values.end());
  }
  return QuantizedTensor::from_parts(rows, cols, QuantScheme::with_format(spec.format, spec.group_size, spec.scale_dtype),
                                     std::move(codes), std::move(scales), std::move(zeros), std::move(g_idx));
}

QuantizedLayerSpec spec_of(const QuantizedTensor& tensor) {
  QuantizedLayerSpec spec;
  spec.format = tensor.scheme().element;
  spec.group_size = tensor.scheme().group_size;
  spec.scale_dtype = tensor.scheme().scale_dtype;
  spec.in_features = tensor.cols();
  spec.out_features = tensor.rows();
  return spec;
}

// The tensors of a quantized folder: the dense ones as given, each quantized layer as its parts.
NamedTensors folder_tensors(const QuantizedModelContents& contents, const std::string& where) {
  NamedTensors tensors = contents.dense;
  for (const auto& [name, tensor] : contents.quantized) {
    const QuantizedLayerSpec spec = spec_of(tensor);
    const auto codes = tensor.packed_codes();
    tensors.emplace_back(name + kQweightSuffix,
                         Tensor::copy_of(DType::kU8, {tensor.rows(), tensor.row_bytes()}, codes.data(), codes.size()));
    tensors.emplace_back(name + kScalesSuffix, tensor.scales_tensor());
    if (tensor.scheme().asymmetric()) {
      const auto zeros = tensor.packed_zero_points();
      tensors.emplace_back(name + kQzerosSuffix, Tensor::copy_of(DType::kU8, {tensor.rows(), spec.zero_row_bytes()},
                                                                  zeros.data(), zeros.size()));
    }
    if (!tensor.g_idx().empty())
      tensors.emplace_back(name + kGidxSuffix, Tensor::copy_of(DType::kI32, {tensor.cols()}, tensor.g_idx().data(),
                                                                tensor.g_idx().size_bytes()));
  }
  for (const auto& [name, bias] : contents.biases) {
    const auto layer = contents.quantized.find(name);
    if (layer == contents.quantized.end())
      throw Error(where, "bias for '" + name + "', which is not a quantized layer (dense biases go with the dense tensors)");
    if (static_cast<int64_t>(bias.size()) != layer->second.rows())
      throw Error(where, "bias of '" + name + "' has " + std::to_string(bias.size()) + " values for " +
                             std::to_string(layer->second.rows()) + " outputs");
    tensors.emplace_back(name + ".bias", Tensor::copy_of(DType::kF32, {layer->second.rows()}, bias.data(),
                                                         bias.size() * sizeof(float)));
  }
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors)
    if (!seen.insert(name).second) throw Error(where, "tensor '" + name + "' given twice");
  return tensors;
}

}  // namespace

std::map<std::string, std::shared_ptr<const QuantizedTensor>> read_quantized_layers(const ModelFiles& files) {
  std::map<std::string, std::shared_ptr<const QuantizedTensor>> layers;
  for (const auto& [name, spec] : files.quantized_layers) {
    try {
      layers.emplace(name, std::make_shared<const QuantizedTensor>(read_layer(files, name, spec)));
    } catch (const Error& e) {
      throw e.with_context(files.path + ": quantized layer '" + name + "'");
    }
  }
  return layers;
}

std::shared_ptr<LlamaModel> load_llama_model(std::shared_ptr<const ModelFiles> files) {
  const auto layers = read_quantized_layers(*files);
  const ModelFiles& model_files = *files;
  const LlamaModel::LinearFactory factory = [&](const std::string& name) -> std::unique_ptr<LinearLayer> {
    const auto layer = layers.find(name);
    if (layer == layers.end()) return nullptr;
    std::vector<float> bias;
    if (const Tensor* stored = model_files.find(name + ".bias")) bias = stored->to_f32_vector();
    return std::make_unique<QuantizedLinear>(layer->second, std::move(bias));
  };
  return std::make_shared<LlamaModel>(std::move(files), factory);
}

uint64_t write_quantized_model(const std::string& output_dir, const ModelFiles& source,
                               const QuantizedModelContents& contents, bool replace_existing) {
  std::error_code ignored;
  if (fs::exists(output_dir, ignored) && !replace_existing)
    throw Error(output_dir, "already exists (pass --force to replace it)");
  if (!contents.quantization_config.is_object())
    throw Error(output_dir, "quantization_config must be a JSON object, found " + contents.quantization_config.dump());

  LlamaConfig config = contents.config;
  // A quantized head is stored as its own parts; tied, the reader would take the embedding instead.
  if (contents.quantized.contains("lm_head")) config.tie_word_embeddings = false;
  nlohmann::json quantization = contents.quantization_config;
  quantization["quant_method"] = kLowbitQuantMethod;
  quantization["format_version"] = kLowbitQuantFormatVersion;
  quantization["layers"] = nlohmann::json::object();
  for (const auto& [name, tensor] : contents.quantized) quantization["layers"][name] = quantized_layer_json(spec_of(tensor));
  nlohmann::json config_json = config.to_json();
  config_json["quantization_config"] = quantization;

  const NamedTensors tensors = folder_tensors(contents, output_dir);
  AtomicDirectory folder(output_dir);
  write_safetensors(folder.file("model.safetensors"), tensors, {{"format", "pt"}});
  write_file_atomically(folder.file("config.json"), config_json.dump(2) + "\n");
  write_tokenizer_files(source, folder);
  // The writer refuses what its reader would: open the staged folder as a user will.
  try {
    (void)open_model(folder.staging_path());
  } catch (const Error& e) {
    throw e.with_context(output_dir + ": the folder written does not open");
  }
  uint64_t bytes = 0;
  for (const auto& entry : fs::directory_iterator(folder.staging_path())) bytes += entry.file_size();
  folder.commit(replace_existing);
  return bytes;
}

}  // namespace lowbit
