// Writing a model as a Hugging Face folder: config.json + model.safetensors (+ the
// tokenizer file copied alongside). Used by `lowbit convert` for llama2.c -> HF and
// for dtype conversion of safetensors models.
#pragma once

#include <optional>
#include <string>

#include "lowbit/core/atomic_file.h"
#include "lowbit/io/model_files.h"

namespace lowbit {

struct ConvertOptions {
  std::optional<DType> dtype;     // convert every float tensor (and torch_dtype) to this
  bool replace_existing = false;  // replace an existing output folder/file
};

struct ConvertReport {
  std::string output;
  int64_t tensors = 0;
  int64_t parameters = 0;
  uint64_t bytes_written = 0;
};

// Writes `model` to `output`: a folder (HF layout), or, for a model without config and an
// output ending in .safetensors, a single file. Atomic: nothing appears on failure.
ConvertReport convert_model(const ModelFiles& model, const std::string& output, const ConvertOptions& options);

// Writes `source`'s tokenizer into a folder being staged: its tokenizer file copied under the same
// name, or — for a GGUF, whose tokenizer lives in metadata — a Hugging Face tokenizer.json.
// Nothing when the source has no tokenizer. Shared by every writer of model folders.
void write_tokenizer_files(const ModelFiles& source, AtomicDirectory& folder);

}  // namespace lowbit
