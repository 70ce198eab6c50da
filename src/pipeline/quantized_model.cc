#include "lowbit/pipeline/quantized_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "lowbit/compress/ggml_blocks.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/compress/sparse_linear.h"
#include "lowbit/core/atomic_file.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
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

std::span<const uint8_t> bytes_of(const Tensor& tensor) {
  return {static_cast<const uint8_t*>(tensor.data()), tensor.nbytes()};
}

// Scales (finite) and unpacked zero points (asymmetric grids) of a quantized layer.
void read_scales_and_zeros(const ModelFiles& files, const std::string& name, const QuantizedLayerSpec& spec,
                           std::vector<float>& scales, std::vector<uint8_t>& zeros) {
  const int64_t rows = spec.out_features, groups = spec.groups();
  const std::string scales_name = name + kScalesSuffix;
  scales = part(files, scales_name).to_f32_vector();
  // Every finite value of the scale dtype is representable in it; only Inf/NaN can be wrong here.
  for (size_t i = 0; i < scales.size(); ++i)
    if (!std::isfinite(scales[i]))
      throw Error("tensor '" + scales_name + "'", "scale [" + std::to_string(i / static_cast<size_t>(groups)) + ", " +
                                                      std::to_string(i % static_cast<size_t>(groups)) + "] is " +
                                                      std::to_string(scales[i]));

  zeros.clear();
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
}

QuantizedTensor read_layer(const ModelFiles& files, const std::string& name, const QuantizedLayerSpec& spec) {
  const int64_t rows = spec.out_features, cols = spec.in_features;
  const auto code_bytes = bytes_of(part(files, name + kQweightSuffix));
  std::vector<uint8_t> codes(code_bytes.begin(), code_bytes.end());
  std::vector<float> scales;
  std::vector<uint8_t> zeros;
  read_scales_and_zeros(files, name, spec, scales, zeros);
  std::vector<int32_t> g_idx;
  if (const Tensor* stored = files.find(name + kGidxSuffix)) {
    const auto values = stored->values<int32_t>();
    g_idx.assign(values.begin(), values.end());
  }
  float tensor_scale = 1.0f;
  if (spec.scale_dtype == DType::kF8E4M3) tensor_scale = part(files, name + kTensorScaleSuffix).to_f32_vector().at(0);
  return QuantizedTensor::from_parts(rows, cols, QuantScheme::with_format(spec.format, spec.group_size, spec.scale_dtype),
                                     std::move(codes), std::move(scales), std::move(zeros), std::move(g_idx), {},
                                     tensor_scale);
}

SparseTensor read_sparse_layer(const ModelFiles& files, const std::string& name, const QuantizedLayerSpec& spec) {
  const auto index = bytes_of(part(files, name + (spec.sparse->bitmap() ? kSparseBitmapSuffix : kSparseIndexSuffix)));
  if (!spec.quantized) return SparseTensor::from_stored(spec, index, bytes_of(part(files, name + kValuesSuffix)));
  std::vector<float> scales;
  std::vector<uint8_t> zeros;
  read_scales_and_zeros(files, name, spec, scales, zeros);
  return SparseTensor::from_stored(spec, index, bytes_of(part(files, name + kQweightSuffix)), std::move(scales),
                                   std::move(zeros));
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
    if (tensor.scheme().has_tensor_scale()) {
      const float tensor_scale = tensor.tensor_scale();
      tensors.emplace_back(name + kTensorScaleSuffix, Tensor::copy_of(DType::kF32, {1}, &tensor_scale, sizeof(float)));
    }
    if (tensor.scheme().asymmetric()) {
      const auto zeros = tensor.packed_zero_points();
      tensors.emplace_back(name + kQzerosSuffix, Tensor::copy_of(DType::kU8, {tensor.rows(), spec.zero_row_bytes()},
                                                                  zeros.data(), zeros.size()));
    }
    if (!tensor.g_idx().empty())
      tensors.emplace_back(name + kGidxSuffix, Tensor::copy_of(DType::kI32, {tensor.cols()}, tensor.g_idx().data(),
                                                                tensor.g_idx().size_bytes()));
  }
  for (const auto& [name, tensor] : contents.sparse) {
    const QuantizedLayerSpec spec = tensor.spec();
    const std::vector<uint8_t> index = tensor.stored_index(), values = tensor.stored_values();
    const int64_t index_row = tensor.rows() ? static_cast<int64_t>(index.size()) / tensor.rows() : 0;
    tensors.emplace_back(name + (spec.sparse->bitmap() ? kSparseBitmapSuffix : kSparseIndexSuffix),
                         Tensor::copy_of(DType::kU8, {tensor.rows(), index_row}, index.data(), index.size()));
    const DType value_dtype = tensor.quantized() ? DType::kU8 : tensor.value_dtype();
    const int64_t count = static_cast<int64_t>(values.size() / dtype_size(value_dtype));
    const Shape value_shape = spec.sparse->bitmap() ? Shape{count} : Shape{tensor.rows(), tensor.rows() ? count / tensor.rows() : 0};
    tensors.emplace_back(name + (tensor.quantized() ? kQweightSuffix : kValuesSuffix),
                         Tensor::copy_of(value_dtype, value_shape, values.data(), values.size()));
    if (tensor.quantized()) {
      const QuantizedTensor& q = tensor.quantized_tensor();
      tensors.emplace_back(name + kScalesSuffix, q.scales_tensor());
      if (q.scheme().asymmetric()) {
        const auto zeros = q.packed_zero_points();
        tensors.emplace_back(name + kQzerosSuffix, Tensor::copy_of(DType::kU8, {q.rows(), spec.zero_row_bytes()},
                                                                    zeros.data(), zeros.size()));
      }
    }
  }
  for (const auto& [name, bias] : contents.biases) {
    int64_t rows = -1;
    if (const auto layer = contents.quantized.find(name); layer != contents.quantized.end()) rows = layer->second.rows();
    if (const auto layer = contents.sparse.find(name); layer != contents.sparse.end()) rows = layer->second.rows();
    if (rows < 0)
      throw Error(where, "bias for '" + name + "', which is not a quantized or sparse layer (dense biases go with the dense tensors)");
    if (static_cast<int64_t>(bias.size()) != rows)
      throw Error(where, "bias of '" + name + "' has " + std::to_string(bias.size()) + " values for " +
                             std::to_string(rows) + " outputs");
    tensors.emplace_back(name + ".bias", Tensor::copy_of(DType::kF32, {rows}, bias.data(), bias.size() * sizeof(float)));
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
    if (spec.sparse) continue;
    try {
      layers.emplace(name, std::make_shared<const QuantizedTensor>(read_layer(files, name, spec)));
    } catch (const Error& e) {
      throw e.with_context(files.path + ": quantized layer '" + name + "'");
    }
  }
  return layers;
}

std::map<std::string, std::shared_ptr<const SparseTensor>> read_sparse_layers(const ModelFiles& files) {
  std::map<std::string, std::shared_ptr<const SparseTensor>> layers;
  for (const auto& [name, spec] : files.quantized_layers) {
    if (!spec.sparse) continue;
    try {
      layers.emplace(name, std::make_shared<const SparseTensor>(read_sparse_layer(files, name, spec)));
    } catch (const Error& e) {
      throw e.with_context(files.path + ": sparse layer '" + name + "'");
    }
  }
  return layers;
}

ModelFiles open_model_to_run(const std::string& path) {
  OpenOptions options;
  for (GgmlType type : ggml_scheme_types()) options.gguf_block_types.insert(type);
  return open_model(path, options);
}

std::map<std::string, std::shared_ptr<const QuantizedTensor>> read_gguf_block_layers(const ModelFiles& files) {
  std::vector<std::pair<std::string, const GgufBlockTensor*>> blocks;
  for (const auto& [name, block] : files.gguf_blocks) blocks.emplace_back(name, &block);
  std::vector<std::shared_ptr<const QuantizedTensor>> tensors(blocks.size());
  std::vector<std::string> errors(blocks.size());
  // Independent per tensor: parallel, and the same tensors whatever the thread count.
  parallel_for(static_cast<int64_t>(blocks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const auto& [name, block] = blocks[static_cast<size_t>(k)];
      try {
        tensors[static_cast<size_t>(k)] = std::make_shared<const QuantizedTensor>(
            unpack_ggml_blocks(block->bytes, block->shape[0], block->shape[1], block->type));
      } catch (const Error& e) {
        errors[static_cast<size_t>(k)] = files.path + ": tensor '" + name + "': " + e.what();
      }
    }
  });
  for (const std::string& error : errors)
    if (!error.empty()) throw Error(error);
  std::map<std::string, std::shared_ptr<const QuantizedTensor>> layers;
  for (size_t k = 0; k < blocks.size(); ++k) {
    const std::string& name = blocks[k].first;
    layers.emplace(name.substr(0, name.size() - std::string_view(".weight").size()), std::move(tensors[k]));
  }
  return layers;
}

std::shared_ptr<LlamaModel> load_llama_model(std::shared_ptr<const ModelFiles> files) {
  const auto layers = read_quantized_layers(*files);
  const auto sparse = read_sparse_layers(*files);
  const auto blocks = read_gguf_block_layers(*files);
  const ModelFiles& model_files = *files;
  const LlamaModel::LinearFactory factory = [&](const std::string& name) -> std::unique_ptr<LinearLayer> {
    std::vector<float> bias;
    if (const Tensor* stored = model_files.find(name + ".bias")) bias = stored->to_f32_vector();
    if (const auto layer = layers.find(name); layer != layers.end())
      return std::make_unique<QuantizedLinear>(layer->second, std::move(bias));
    if (const auto layer = blocks.find(name); layer != blocks.end())
      return std::make_unique<QuantizedLinear>(layer->second, std::move(bias));
    if (const auto layer = sparse.find(name); layer != sparse.end()) return make_sparse_linear(layer->second, std::move(bias));
    return nullptr;
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
  if (contents.quantized.contains("lm_head") || contents.sparse.contains("lm_head")) config.tie_word_embeddings = false;
  nlohmann::json quantization = contents.quantization_config;
  quantization["quant_method"] = kLowbitQuantMethod;
  quantization["format_version"] = kLowbitQuantFormatVersion;
  quantization["layers"] = nlohmann::json::object();
  for (const auto& [name, tensor] : contents.quantized) {
    if (tensor.scheme().float_min)
      throw Error(output_dir, "layer '" + name + "' has a float minimum per group (ggml's Q4_1/Q5_1 grids), which lowbit "
                              "folders do not store; write it as GGUF (--format gguf:q4_1)");
    quantization["layers"][name] = quantized_layer_json(spec_of(tensor));
  }
  for (const auto& [name, tensor] : contents.sparse) {
    if (contents.quantized.contains(name)) throw Error(output_dir, "layer '" + name + "' given both quantized and sparse");
    quantization["layers"][name] = quantized_layer_json(tensor.spec());
  }
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
