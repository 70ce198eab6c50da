#include "lowbit/io/convert.h"

#include <filesystem>

#include "lowbit/core/atomic_file.h"
#include "lowbit/core/error.h"
#include "lowbit/core/mapped_file.h"
#include "lowbit/io/tokenizer_export.h"

namespace lowbit {

namespace fs = std::filesystem;

namespace {

NamedTensors converted_tensors(const ModelFiles& model, const ConvertOptions& options) {
  NamedTensors out;
  out.reserve(model.tensors.size());
  for (const auto& [name, tensor] : model.tensors) {
    if (options.dtype && is_floating(tensor.dtype()) && tensor.dtype() != *options.dtype) {
      try {
        out.emplace_back(name, tensor.to(*options.dtype));
      } catch (const Error& e) {
        throw e.with_context("tensor '" + name + "'");
      }
    } else {
      out.emplace_back(name, tensor);
    }
  }
  return out;
}

std::map<std::string, std::string> output_metadata(const ModelFiles& model) {
  std::map<std::string, std::string> metadata = model.metadata;
  metadata["format"] = "pt";  // what transformers expects in safetensors metadata
  return metadata;
}

void copy_file_atomically(const std::string& from, const std::string& to) {
  const auto source = MappedFile::open(from);
  AtomicFileWriter writer(to);
  if (source->size()) writer.write(source->data(), source->size());
  writer.commit();
}

}  // namespace

void write_tokenizer_files(const ModelFiles& source, AtomicDirectory& folder) {
  if (source.tokenizer == TokenizerKind::kGguf && source.gguf) {
    // The tokenizer lives in the GGUF's metadata: write it as a Hugging Face tokenizer.json.
    write_file_atomically(folder.file("tokenizer.json"), tokenizer_json_from_gguf(*source.gguf));
  } else if (!source.tokenizer_path.empty()) {
    const std::string name = fs::path(source.tokenizer_path).filename().string();
    copy_file_atomically(source.tokenizer_path, folder.file(name));
  }
}

ConvertReport convert_model(const ModelFiles& model, const std::string& output, const ConvertOptions& options) {
  if (options.dtype && !(*options.dtype == DType::kF32 || *options.dtype == DType::kF16 || *options.dtype == DType::kBF16))
    throw Error(output, "target dtype must be F32, F16 or BF16, not " + std::string(dtype_name(*options.dtype)));
  // config.to_json() would drop quantization_config and the parts would then be unreadable.
  if (model.quantized())
    throw Error(model.path, "is a lowbit quantized model; convert reads dense models (convert the dense source)");
  const NamedTensors tensors = converted_tensors(model, options);
  ConvertReport report;
  report.output = output;
  report.tensors = static_cast<int64_t>(tensors.size());
  report.parameters = model.parameter_count();

  if (!model.config) {
    if (!output.ends_with(".safetensors"))
      throw Error(output, "a model without config.json converts to a .safetensors file; name the output *.safetensors");
    if (fs::exists(output) && !options.replace_existing) throw Error(output, "already exists (pass --force to replace it)");
    write_safetensors(output, tensors, output_metadata(model));
    report.bytes_written = fs::file_size(output);
    return report;
  }

  LlamaConfig config = *model.config;
  if (options.dtype) config.torch_dtype = *options.dtype;
  AtomicDirectory folder(output);
  write_safetensors(folder.file("model.safetensors"), tensors, output_metadata(model));
  write_file_atomically(folder.file("config.json"), config.to_json().dump(2) + "\n");
  write_tokenizer_files(model, folder);
  for (const auto& entry : fs::directory_iterator(folder.staging_path())) report.bytes_written += entry.file_size();
  folder.commit(options.replace_existing);
  return report;
}

}  // namespace lowbit
