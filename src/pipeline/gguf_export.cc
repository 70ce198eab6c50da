#include "lowbit/pipeline/gguf_export.h"

#include <algorithm>
#include <string>

#include "lowbit/compress/ggml_blocks.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/error.h"

namespace lowbit {

int llama_file_type(GgmlType type) {
  switch (type) {  // llama.h, enum llama_ftype
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ4_1: return 3;
    case GgmlType::kQ8_0: return 7;
    case GgmlType::kQ5_0: return 8;
    case GgmlType::kQ5_1: return 9;
    case GgmlType::kQ2_K: return 10;  // every tensor one k-quant: llama.cpp's _S mixes come closest
    case GgmlType::kQ3_K: return 11;
    case GgmlType::kQ4_K: return 14;
    case GgmlType::kQ5_K: return 16;
    case GgmlType::kQ6_K: return 18;
    case GgmlType::kIQ4_NL: return 25;
    case GgmlType::kBF16: return 32;
    case GgmlType::kMXFP4: return 38;  // LLAMA_FTYPE_MOSTLY_MXFP4_MOE: llama.cpp's only MXFP4 file type
    case GgmlType::kNVFP4: return 39;
    default: return -1;
  }
}

namespace {

// `values` (rows x cols) on `type`'s grid by RTN with the clipping search, packed.
std::vector<std::byte> rtn_encode(std::span<const float> values, int64_t rows, int64_t cols, GgmlType type) {
  RtnOptions rtn;
  rtn.scheme = ggml_quantizer_scheme(type);
  rtn.scale.search = ScaleSearch::kMse;
  return pack_ggml_blocks(quantize_rtn(values, rows, cols, rtn), type);
}

}  // namespace

GgufWriteReport write_quantized_gguf(const std::string& path, const ModelFiles& source,
                                     const QuantizedModelContents& contents, const GgufExportOptions& options) {
  const GgmlType embedding_type = options.embedding_type;
  const bool embedding_float = embedding_type == GgmlType::kF32 || embedding_type == GgmlType::kF16 ||
                               embedding_type == GgmlType::kBF16;
  require(embedding_float || is_ggml_scheme_type(embedding_type), path,
          "the embedding type must be f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0 or iq4_nl, not " +
              std::string(ggml_traits(embedding_type).name));
  if (!contents.sparse.empty())
    throw Error(path, "layer '" + contents.sparse.begin()->first + "' is pruned; GGUF has no sparse layout (write a lowbit folder)");
  if (!contents.biases.empty())
    throw Error(path, "layer '" + contents.biases.begin()->first + "' has a bias; GGUF export of quantized biases is not supported");

  ModelFiles model = source;  // config, tokenizer and the source GGUF's metadata
  model.config = contents.config;
  GgufWriteOptions write;
  write.replace_existing = options.replace_existing;
  write.file_type = options.file_type;
  for (auto& [name, tensor] : model.tensors) {
    const std::string linear = name.ends_with(".weight") ? name.substr(0, name.size() - 7) : name;
    if (const auto q = contents.quantized.find(linear); q != contents.quantized.end()) {
      const auto type = ggml_type_of_scheme(q->second.scheme());
      if (!type)
        throw Error(path, "layer '" + linear + "' is quantized as " + q->second.scheme().to_string() +
                              ", which no GGUF block type holds (q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl, mxfp4, nvfp4 and the k-quants' grids do)");
      try {
        write.encoded[name] = {*type, pack_ggml_blocks(q->second, *type)};
      } catch (const Error& e) {
        throw Error(path, "layer '" + linear + "': " + e.what());
      }
      continue;
    }
    if (name == "model.embed_tokens.weight") {
      // From the source's values (not the pipeline's f16 copy): one rounding, onto the target grid.
      if (embedding_float || tensor.dim(1) % 32 != 0) {  // rows not in whole blocks: f16, as llama.cpp falls back
        tensor = tensor.to(embedding_type == GgmlType::kF32 ? DType::kF32 : embedding_type == GgmlType::kBF16 ? DType::kBF16 : DType::kF16);
      } else {
        write.encoded[name] = {embedding_type, rtn_encode(tensor.to_f32_vector(), tensor.dim(0), tensor.dim(1), embedding_type)};
      }
      continue;
    }
    const std::string& wanted = name;  // (a structured binding cannot be captured before C++20's P1091 in clang)
    const auto dense = std::find_if(contents.dense.begin(), contents.dense.end(), [&](const auto& t) { return t.first == wanted; });
    require(dense != contents.dense.end(), path, "tensor '" + name + "' is missing from the quantized model");
    tensor = dense->second;
  }
  // Kept 2-D layers keep their dtype: the writer's `type` is only the fallback for the rest.
  write.type = GgmlType::kF16;
  for (auto& [name, tensor] : model.tensors)
    if (tensor.rank() == 2 && !write.encoded.contains(name) && tensor.dtype() != DType::kF16) {
      if (tensor.dtype() == DType::kF32 || tensor.dtype() == DType::kBF16)
        write.encoded[name] = {tensor.dtype() == DType::kF32 ? GgmlType::kF32 : GgmlType::kBF16,
                               std::vector<std::byte>(tensor.bytes().begin(), tensor.bytes().end())};
    }
  return write_model_gguf(model, path, write);
}

}  // namespace lowbit
