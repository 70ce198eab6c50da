#include "lowbit/io/llama2c.h"

#include <cstring>

#include "lowbit/core/error.h"
#include "lowbit/core/mapped_file.h"

namespace lowbit {

namespace {

constexpr uint64_t kHeaderBytes = 7 * sizeof(int32_t);

int32_t read_i32(const std::byte* p) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<uint32_t>(p[i]);
  return static_cast<int32_t>(value);
}

Llama2cHeader parse_header(const MappedFile& file) {
  if (file.size() < kHeaderBytes)
    throw Error(file.path(), "truncated: " + std::to_string(file.size()) + " bytes, a llama2.c header is 28");
  Llama2cHeader h;
  const std::byte* p = file.data();
  h.dim = read_i32(p);
  h.hidden_dim = read_i32(p + 4);
  h.n_layers = read_i32(p + 8);
  h.n_heads = read_i32(p + 12);
  h.n_kv_heads = read_i32(p + 16);
  h.vocab_size = read_i32(p + 20);
  h.seq_len = read_i32(p + 24);
  h.shared_classifier = h.vocab_size > 0;
  if (h.vocab_size == INT32_MIN) throw Error(file.path(), "vocab_size out of range");
  h.vocab_size = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  return h;
}

// Float count of the arrays after the header; 0 when the sizes are not plausible.
// Computed in 128 bits: the header is untrusted and int32 products overflow 64 bits.
uint64_t expected_floats(const Llama2cHeader& h) {
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 || h.n_kv_heads <= 0 ||
      h.vocab_size <= 0 || h.seq_len <= 0 || h.dim % h.n_heads != 0)
    return 0;
  using u128 = unsigned __int128;
  const u128 dim = h.dim, hidden = h.hidden_dim, layers = h.n_layers, vocab = h.vocab_size;
  const u128 head = dim / h.n_heads, kv = head * h.n_kv_heads, seq = h.seq_len;
  u128 n = vocab * dim;                                   // token_embedding
  n += layers * (2 * dim + dim * dim * 2 + kv * dim * 2); // rms_att, rms_ffn, wq, wo, wk, wv
  n += layers * hidden * dim * 3;                         // w1, w2, w3
  n += dim + seq * head;                                  // rms_final, freq_cis real+imag
  if (!h.shared_classifier) n += vocab * dim;
  return n > (u128{1} << 60) ? 0 : static_cast<uint64_t>(n);
}

}  // namespace

std::vector<float> permute_rope_rows_to_hf(const float* rows, int64_t heads, int64_t head_dim, int64_t cols) {
  std::vector<float> out(static_cast<size_t>(heads * head_dim * cols));
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t p = 0; p < 2; ++p) {
        const float* source = rows + (h * head_dim + 2 * i + p) * cols;
        float* target = out.data() + (h * head_dim + p * half + i) * cols;
        std::memcpy(target, source, static_cast<size_t>(cols) * sizeof(float));
      }
  return out;
}

bool looks_like_llama2c(const std::string& path) {
  try {
    const auto file = MappedFile::open(path);
    const Llama2cHeader h = parse_header(*file);
    const uint64_t floats = expected_floats(h);
    return floats != 0 && file->size() == kHeaderBytes + floats * sizeof(float);
  } catch (const Error&) {
    return false;
  }
}

Llama2cCheckpoint load_llama2c(const std::string& path) {
  const auto file = MappedFile::open(path);
  Llama2cCheckpoint result;
  Llama2cHeader& h = result.header;
  h = parse_header(*file);
  const uint64_t floats = expected_floats(h);
  if (floats == 0)
    throw Error(path, "implausible llama2.c header (dim " + std::to_string(h.dim) + ", hidden " + std::to_string(h.hidden_dim) +
                          ", layers " + std::to_string(h.n_layers) + ", heads " + std::to_string(h.n_heads) + "/" +
                          std::to_string(h.n_kv_heads) + ", vocab " + std::to_string(h.vocab_size) + ", seq " +
                          std::to_string(h.seq_len) + ")");
  const uint64_t expected_size = kHeaderBytes + floats * sizeof(float);
  if (file->size() != expected_size)
    throw Error(path, "size " + std::to_string(file->size()) + " bytes, but the header implies " + std::to_string(expected_size) +
                          (h.shared_classifier ? " (shared classifier)" : " (separate classifier)"));

  LlamaConfig& c = result.config;
  c.model_type = "llama";
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.vocab_size = h.vocab_size;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5;  // llama2.c's run.c hard-codes these two
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = h.shared_classifier;
  c.bos_token_id = 1;  // SentencePiece-style ids used by llama2.c's tokenizer
  c.eos_token_ids = {2};
  c.torch_dtype = DType::kF32;
  c.validate(path);

  // Walk the arrays in file order. Tensors are f32 views into the mapping (the data
  // starts at byte 28, so float alignment holds) except q/k, which are permuted copies.
  const float* cursor = reinterpret_cast<const float*>(file->data() + kHeaderBytes);
  const int64_t dim = h.dim, hidden = h.hidden_dim, layers = h.n_layers, head = c.head_dim, kv = c.kv_dim();
  auto take = [&](int64_t count) {
    const float* start = cursor;
    cursor += count;
    return start;
  };
  auto view = [&](const float* data, Shape shape) { return Tensor::borrowed(DType::kF32, std::move(shape), data, file); };
  auto layer_name = [](int64_t layer, const char* suffix) {
    return "model.layers." + std::to_string(layer) + "." + suffix;
  };

  NamedTensors embed_and_layers;
  const float* embedding = take(static_cast<int64_t>(h.vocab_size) * dim);
  const float* rms_att = take(layers * dim);
  const float* wq = take(layers * dim * dim);
  const float* wk = take(layers * kv * dim);
  const float* wv = take(layers * kv * dim);
  const float* wo = take(layers * dim * dim);
  const float* rms_ffn = take(layers * dim);
  const float* w1 = take(layers * hidden * dim);
  const float* w2 = take(layers * dim * hidden);
  const float* w3 = take(layers * hidden * dim);
  const float* rms_final = take(dim);
  take(static_cast<int64_t>(h.seq_len) * head);  // freq_cis_real and _imag: RoPE tables, recomputed by the engine
  const float* classifier = h.shared_classifier ? nullptr : take(static_cast<int64_t>(h.vocab_size) * dim);

  NamedTensors& t = result.tensors;
  t.emplace_back("model.embed_tokens.weight", view(embedding, {h.vocab_size, dim}));
  for (int64_t l = 0; l < layers; ++l) {
    const auto q = permute_rope_rows_to_hf(wq + l * dim * dim, h.n_heads, head, dim);
    const auto k = permute_rope_rows_to_hf(wk + l * kv * dim, h.n_kv_heads, head, dim);
    t.emplace_back(layer_name(l, "input_layernorm.weight"), view(rms_att + l * dim, {dim}));
    t.emplace_back(layer_name(l, "self_attn.q_proj.weight"),
                   Tensor::copy_of(DType::kF32, {dim, dim}, q.data(), q.size() * sizeof(float)));
    t.emplace_back(layer_name(l, "self_attn.k_proj.weight"),
                   Tensor::copy_of(DType::kF32, {kv, dim}, k.data(), k.size() * sizeof(float)));
    t.emplace_back(layer_name(l, "self_attn.v_proj.weight"), view(wv + l * kv * dim, {kv, dim}));
    t.emplace_back(layer_name(l, "self_attn.o_proj.weight"), view(wo + l * dim * dim, {dim, dim}));
    t.emplace_back(layer_name(l, "post_attention_layernorm.weight"), view(rms_ffn + l * dim, {dim}));
    t.emplace_back(layer_name(l, "mlp.gate_proj.weight"), view(w1 + l * hidden * dim, {hidden, dim}));
    t.emplace_back(layer_name(l, "mlp.down_proj.weight"), view(w2 + l * dim * hidden, {dim, hidden}));
    t.emplace_back(layer_name(l, "mlp.up_proj.weight"), view(w3 + l * hidden * dim, {hidden, dim}));
  }
  t.emplace_back("model.norm.weight", view(rms_final, {dim}));
  if (classifier) t.emplace_back("lm_head.weight", view(classifier, {h.vocab_size, dim}));
  result.file_size = file->size();
  return result;
}

Llama2cVocabulary load_llama2c_tokenizer(const std::string& path, int64_t vocab_size) {
  const auto file = MappedFile::open(path);
  const std::byte* p = file->data();
  const uint64_t size = file->size();
  uint64_t offset = 0;
  auto need = [&](uint64_t bytes, const std::string& what) {
    if (size - offset < bytes)
      throw Error(path, "truncated at byte " + std::to_string(offset) + " while reading " + what);
  };
  Llama2cVocabulary vocabulary;
  need(4, "max_token_length");
  vocabulary.max_token_length = read_i32(p);
  offset = 4;
  if (vocabulary.max_token_length <= 0 || vocabulary.max_token_length > (1 << 16))
    throw Error(path, "max_token_length " + std::to_string(vocabulary.max_token_length) + " outside 1..65536");
  if (vocab_size <= 0 || static_cast<uint64_t>(vocab_size) > size / 8)
    throw Error(path, "cannot hold " + std::to_string(vocab_size) + " tokens in " + std::to_string(size) + " bytes");
  vocabulary.pieces.reserve(static_cast<size_t>(vocab_size));
  vocabulary.scores.reserve(static_cast<size_t>(vocab_size));
  for (int64_t i = 0; i < vocab_size; ++i) {
    const std::string entry = "token " + std::to_string(i);
    need(8, entry);
    float score;
    std::memcpy(&score, p + offset, sizeof score);
    const int32_t length = read_i32(p + offset + 4);
    offset += 8;
    if (length < 0 || length > vocabulary.max_token_length)
      throw Error(path, entry + ": length " + std::to_string(length) + " outside 0.." +
                            std::to_string(vocabulary.max_token_length));
    need(static_cast<uint64_t>(length), entry);
    vocabulary.pieces.emplace_back(reinterpret_cast<const char*>(p + offset), static_cast<size_t>(length));
    vocabulary.scores.push_back(score);
    offset += static_cast<uint64_t>(length);
  }
  if (offset != size)
    throw Error(path, std::to_string(size - offset) + " unexpected bytes after " + std::to_string(vocab_size) + " tokens");
  return vocabulary;
}

}  // namespace lowbit
