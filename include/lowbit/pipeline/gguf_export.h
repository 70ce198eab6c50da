// Writing a quantize_model result as a GGUF file that llama.cpp loads unchanged
// (`lowbit quantize … --format gguf:TYPE`).
//
// Every quantized layer is packed into the ggml block type of its scheme (compress/ggml_blocks.h:
// Q8_0, Q5_0, Q4_0, IQ4_NL), bit for bit: llama.cpp decodes exactly the values lowbit quantized
// and evaluated. Layers kept in f32/f16/bf16 are written in that dtype, norms in F32. The token
// embedding — which SmolLM2-like models also use as the output head (tied) — is quantized from the
// source's values by lowbit's RTN (MSE clipping search) on `embedding_type`'s grid; llama.cpp's own
// choice for a tied head whose rows are not whole 256-blocks is Q8_0, the default here.
#pragma once

#include <string>

#include "lowbit/io/gguf_model.h"
#include "lowbit/pipeline/quantized_model.h"

namespace lowbit {

struct GgufExportOptions {
  GgmlType embedding_type = GgmlType::kQ8_0;  // F32, F16, BF16 or a type with a scheme (ggml_blocks.h)
  int file_type = -1;                         // general.file_type (llama_ftype); -1: derived
  bool replace_existing = false;
};

// llama.cpp's llama_ftype number for a file "mostly" of `type` (Q4_0 → 2, IQ4_NL → 25, ...); -1 if none.
int llama_file_type(GgmlType type);

// Throws Error naming `path` for layers no GGUF type holds (a scheme without a ggml type, sparse
// layers, act-order g_idx) before anything is written. Atomic.
GgufWriteReport write_quantized_gguf(const std::string& path, const ModelFiles& source,
                                     const QuantizedModelContents& contents, const GgufExportOptions& options);

}  // namespace lowbit
