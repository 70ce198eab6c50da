// Tests for llama2.c checkpoints and tokenizer.bin (include/lowbit/io/llama2c.h).
//
// What matters: a llama2.c .bin has no names and no shapes, only seven header integers
// and a run of floats, so (1) every array must be cut at exactly the right offset and
// handed out under the right Hugging Face name, with q/k rows permuted into rotate_half
// order; the real stories260K.bin must give tensors bit-identical to the independently
// converted hf/model.safetensors; (2) the sign of vocab_size selects the classifier layout;
// (3) a header that does not match the file size exactly, or whose sizes are implausible
// or overflow, is an Error naming the file, before any float is read.
#include "lowbit/io/llama2c.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
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

// ---------------------------------------------------------------------------------
// Helpers



std::string le32(int32_t value) {
  const auto bits = static_cast<uint32_t>(value);
  std::string bytes(4, '\0');
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((bits >> (8 * i)) & 0xff);
  return bytes;
}

std::string f32_bytes(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return le32(static_cast<int32_t>(bits));
}

struct Dims {
  int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
  bool shared = true;
};

// The tiny model of the brief: dim 8, hidden 12, 2 layers, 2 heads (head_dim 4), 1 kv head,
// vocab 10, seq 4, separate classifier.
constexpr Dims kTiny{8, 12, 2, 2, 1, 10, 4, false};

// Floats after the header, from the layout in llama2c.h (written out independently here).
int64_t float_count(const Dims& d) {
  const int64_t head = d.dim / d.heads, kv = head * d.kv_heads;
  int64_t n = int64_t{d.vocab} * d.dim;
  n += int64_t{d.layers} * (d.dim + d.dim * d.dim + 2 * kv * d.dim + d.dim * d.dim + d.dim + 3 * int64_t{d.hidden} * d.dim);
  n += d.dim + int64_t{d.seq} * head;
  if (!d.shared) n += int64_t{d.vocab} * d.dim;
  return n;
}

std::string header_bytes(const Dims& d) {
  return le32(d.dim) + le32(d.hidden) + le32(d.layers) + le32(d.heads) + le32(d.kv_heads) +
         le32(d.shared ? d.vocab : -d.vocab) + le32(d.seq);
}

// Distinct, exactly representable values: float i is (i + 1) / 8.
std::vector<float> distinct_floats(int64_t count) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[static_cast<size_t>(i)] = static_cast<float>(i + 1) * 0.125f;
  return values;
}

std::string checkpoint_bytes(const Dims& d, const std::vector<float>& floats) {
  std::string bytes = header_bytes(d);
  for (float f : floats) bytes += f32_bytes(f);
  return bytes;
}

std::string write_checkpoint(const Dims& d, const std::string& name = "model.bin") {
  const std::string path = testing::temp_dir() + "/" + name;
  write_raw(path, checkpoint_bytes(d, distinct_floats(float_count(d))));
  return path;
}

std::vector<float> floats_of(const Tensor& tensor) {
  const auto values = tensor.values<float>();
  return {values.begin(), values.end()};
}

std::vector<float> slice(const std::vector<float>& all, int64_t begin, int64_t count) {
  return {all.begin() + begin, all.begin() + begin + count};
}

const Tensor& tensor_named(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  throw std::runtime_error("no tensor " + name);
}

// Expects load_llama2c(path) to throw an Error "<path>: ..." containing `fragment`, and (unless
// the header is self-consistent) the format sniffer to reject the file too.
void expect_load_error(const std::string& path, const std::string& fragment, bool sniffer_rejects = true) {
  try {
    load_llama2c(path);
    ADD_FAILURE() << "loaded " << path;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message << "\nlacks: " << fragment;
  }
  if (sniffer_rejects) {
    EXPECT_FALSE(looks_like_llama2c(path));
  }
}

// ---------------------------------------------------------------------------------
// RoPE row permutation

TEST(Llama2c, PermuteRopeRowsHandExample) {
  // 2 heads of head_dim 4, one column: row r holds r.
  const std::vector<float> rows = {0, 1, 2, 3, 4, 5, 6, 7};
  const auto permuted = permute_rope_rows_to_hf(rows.data(), 2, 4, 1);
  EXPECT_EQ(permuted, (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
}

TEST(Llama2c, PermuteRopeRowsMovesWholeRows) {
  // 1 head of head_dim 6, 3 columns: element (r, c) = 10 r + c. New row p*3 + i = old row 2i + p.
  std::vector<float> rows;
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 3; ++c) rows.push_back(static_cast<float>(10 * r + c));
  const auto permuted = permute_rope_rows_to_hf(rows.data(), 1, 6, 3);
  const int order[] = {0, 2, 4, 1, 3, 5};
  std::vector<float> expected;
  for (int r : order)
    for (int c = 0; c < 3; ++c) expected.push_back(static_cast<float>(10 * r + c));
  EXPECT_EQ(permuted, expected);
}

// ---------------------------------------------------------------------------------
// The real stories260K.bin

TEST(Llama2c, RealStories260KHeaderAndConfig) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string path = shared + "/models/stories260K/llama2c/stories260K.bin";
  EXPECT_TRUE(looks_like_llama2c(path));
  const Llama2cCheckpoint checkpoint = load_llama2c(path);
  const Llama2cHeader& h = checkpoint.header;
  EXPECT_EQ(h.dim, 64);
  EXPECT_EQ(h.hidden_dim, 172);
  EXPECT_EQ(h.n_layers, 5);
  EXPECT_EQ(h.n_heads, 8);
  EXPECT_EQ(h.n_kv_heads, 4);
  EXPECT_EQ(h.vocab_size, 512);
  EXPECT_EQ(h.seq_len, 512);
  EXPECT_TRUE(h.shared_classifier);
  EXPECT_EQ(checkpoint.file_size, 1'056'540u);  // 28 + 4 * 264,128

  // The config matches the one shipped with the HF conversion, field for field.
  const LlamaConfig& c = checkpoint.config;
  const LlamaConfig hf = load_hf_config(shared + "/models/stories260K/hf/config.json");
  EXPECT_EQ(c.model_type, hf.model_type);
  EXPECT_EQ(c.hidden_size, hf.hidden_size);
  EXPECT_EQ(c.intermediate_size, hf.intermediate_size);
  EXPECT_EQ(c.num_hidden_layers, hf.num_hidden_layers);
  EXPECT_EQ(c.num_attention_heads, hf.num_attention_heads);
  EXPECT_EQ(c.num_key_value_heads, hf.num_key_value_heads);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.head_dim, hf.head_dim);
  EXPECT_EQ(c.vocab_size, hf.vocab_size);
  EXPECT_EQ(c.max_position_embeddings, hf.max_position_embeddings);
  EXPECT_EQ(c.rms_norm_eps, hf.rms_norm_eps);
  EXPECT_EQ(c.rope_theta, hf.rope_theta);
  EXPECT_EQ(c.tie_word_embeddings, hf.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, hf.bos_token_id);
  EXPECT_EQ(c.eos_token_ids, hf.eos_token_ids);
  EXPECT_EQ(c.torch_dtype, DType::kF32);
  EXPECT_EQ(c.parameter_count(), 260'032);

  EXPECT_EQ(checkpoint.tensors.size(), 47u);
  int64_t parameters = 0;
  for (const auto& [name, tensor] : checkpoint.tensors) parameters += tensor.numel();
  EXPECT_EQ(parameters, 260'032);  // the 264,128 floats less the 512 x 8 RoPE tables
}

TEST(Llama2c, RealStories260KTensorsBitIdenticalToHfConversion) {
  LOWBIT_REQUIRE_SHARED(shared);
  const Llama2cCheckpoint checkpoint = load_llama2c(shared + "/models/stories260K/llama2c/stories260K.bin");
  const SafetensorsFile hf = SafetensorsFile::open(shared + "/models/stories260K/hf/model.safetensors");
  ASSERT_EQ(hf.names().size(), 47u);
  std::set<std::string> seen;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(seen.insert(name).second) << "duplicate";
    ASSERT_TRUE(hf.contains(name));
    const Tensor reference = hf.tensor(name);
    EXPECT_EQ(tensor.dtype(), DType::kF32);
    EXPECT_EQ(tensor.shape(), reference.shape());
    EXPECT_TRUE(tensor.bit_equal(reference));
    // q/k are permuted copies; everything else is a zero-copy view of the mapping.
    const bool permuted = name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos;
    EXPECT_EQ(tensor.owns_storage(), permuted);
  }
  EXPECT_EQ(seen.size(), 47u);
  // The permutation actually matters for this model: unpermuted wq differs from HF's q_proj.
  const std::string raw = read_all(shared + "/models/stories260K/llama2c/stories260K.bin");
  const size_t wq_offset = 28 + 4 * (512 * 64 + 5 * 64);
  const Tensor q0 = hf.tensor("model.layers.0.self_attn.q_proj.weight");
  EXPECT_NE(std::memcmp(raw.data() + wq_offset, q0.data(), q0.nbytes()), 0);
  // ... and permuting the raw rows by hand gives HF's bytes.
  std::vector<float> wq(64 * 64);
  std::memcpy(wq.data(), raw.data() + wq_offset, wq.size() * sizeof(float));
  const auto permuted = permute_rope_rows_to_hf(wq.data(), 8, 8, 64);
  EXPECT_EQ(std::memcmp(permuted.data(), q0.data(), q0.nbytes()), 0);
}

// ---------------------------------------------------------------------------------
// A synthetic checkpoint with a separate classifier

TEST(Llama2c, NegativeVocabMeansSeparateClassifier) {
  const std::string path = write_checkpoint(kTiny);
  const int64_t n = float_count(kTiny);
  ASSERT_EQ(n, 1176);
  const std::vector<float> all = distinct_floats(n);
  EXPECT_TRUE(looks_like_llama2c(path));

  const Llama2cCheckpoint checkpoint = load_llama2c(path);
  EXPECT_EQ(checkpoint.header.vocab_size, 10);  // the magnitude; the sign was the flag
  EXPECT_FALSE(checkpoint.header.shared_classifier);
  EXPECT_EQ(checkpoint.file_size, 28u + 4u * 1176u);
  const LlamaConfig& c = checkpoint.config;
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.hidden_size, 8);
  EXPECT_EQ(c.intermediate_size, 12);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 2);
  EXPECT_EQ(c.num_key_value_heads, 1);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.vocab_size, 10);
  EXPECT_EQ(c.max_position_embeddings, 4);

  const NamedTensors& t = checkpoint.tensors;
  ASSERT_EQ(t.size(), 21u);  // embedding + 2 x 9 + norm + lm_head
  int64_t parameters = 0;
  for (const auto& [name, tensor] : t) parameters += tensor.numel();
  EXPECT_EQ(parameters, 1176 - 4 * 4);  // all floats less the RoPE tables
  EXPECT_EQ(parameters, c.parameter_count());

  // Names and shapes are exactly what the config implies.
  std::map<std::string, Shape> loaded, expected;
  for (const auto& [name, tensor] : t) loaded[name] = tensor.shape();
  for (const auto& [name, shape] : expected_llama_tensors(c)) expected[name] = shape;
  EXPECT_EQ(loaded, expected);

  // Offsets of each array (floats): emb 0 (80), rms_att 80 (16), wq 96 (128), wk 224 (64),
  // wv 288 (64), wo 352 (128), rms_ffn 480 (16), w1 496 (192), w2 688 (192), w3 880 (192),
  // rms_final 1072 (8), freq_cis 1080 (16), wcls 1096 (80).
  const Tensor& lm_head = tensor_named(t, "lm_head.weight");
  EXPECT_EQ(lm_head.shape(), (Shape{10, 8}));
  EXPECT_EQ(floats_of(lm_head), slice(all, 1096, 80));
  EXPECT_EQ(floats_of(tensor_named(t, "model.embed_tokens.weight")), slice(all, 0, 80));
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.1.input_layernorm.weight")), slice(all, 88, 8));
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.1.self_attn.v_proj.weight")), slice(all, 288 + 32, 32));
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.0.self_attn.o_proj.weight")), slice(all, 352, 64));
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.1.post_attention_layernorm.weight")), slice(all, 488, 8));
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.1.mlp.gate_proj.weight")), slice(all, 496 + 96, 96));
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.0.mlp.down_proj.weight")), slice(all, 688, 96));
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.1.mlp.up_proj.weight")), slice(all, 880 + 96, 96));
  EXPECT_EQ(floats_of(tensor_named(t, "model.norm.weight")), slice(all, 1072, 8));

  // q of layer 1: rows of wq[1] in the order [0,2,1,3, 4,6,5,7] (2 heads of 4).
  std::vector<float> q1;
  for (int row : {0, 2, 1, 3, 4, 6, 5, 7}) {
    const auto r = slice(all, 96 + 64 + row * 8, 8);
    q1.insert(q1.end(), r.begin(), r.end());
  }
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.1.self_attn.q_proj.weight")), q1);
  // k of layer 0: one kv head of 4 rows -> [0,2,1,3].
  std::vector<float> k0;
  for (int row : {0, 2, 1, 3}) {
    const auto r = slice(all, 224 + row * 8, 8);
    k0.insert(k0.end(), r.begin(), r.end());
  }
  EXPECT_EQ(tensor_named(t, "model.layers.0.self_attn.k_proj.weight").shape(), (Shape{4, 8}));
  EXPECT_EQ(floats_of(tensor_named(t, "model.layers.0.self_attn.k_proj.weight")), k0);
}

TEST(Llama2c, PositiveVocabMeansSharedClassifier) {
  Dims shared = kTiny;
  shared.shared = true;
  const std::string path = write_checkpoint(shared);
  const Llama2cCheckpoint checkpoint = load_llama2c(path);
  EXPECT_TRUE(checkpoint.header.shared_classifier);
  EXPECT_TRUE(checkpoint.config.tie_word_embeddings);
  EXPECT_EQ(checkpoint.tensors.size(), 20u);
  for (const auto& [name, tensor] : checkpoint.tensors) EXPECT_NE(name, "lm_head.weight");
  // The same bytes read as "separate classifier" would need 80 more floats: refused.
  const std::string as_separate = testing::temp_dir() + "/flag-flipped.bin";
  std::string bytes = read_all(path);
  std::memcpy(bytes.data() + 20, le32(-10).data(), 4);
  write_raw(as_separate, bytes);
  expect_load_error(as_separate, "(separate classifier)");
}

// ---------------------------------------------------------------------------------
// Malformed checkpoints

TEST(Llama2c, RefusesTruncatedHeader) {
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/short.bin";
  write_raw(path, header_bytes(kTiny).substr(0, 20));
  expect_load_error(path, "truncated: 20 bytes, a llama2.c header is 28");
  const std::string empty = dir + "/empty.bin";
  write_raw(empty, "");
  expect_load_error(empty, "truncated: 0 bytes");
}

TEST(Llama2c, RefusesSizeMismatch) {
  const std::string dir = testing::temp_dir();
  const std::string bytes = checkpoint_bytes(kTiny, distinct_floats(float_count(kTiny)));
  ASSERT_EQ(bytes.size(), 4732u);
  const std::string shorter = dir + "/short.bin";
  write_raw(shorter, bytes.substr(0, bytes.size() - 4));
  expect_load_error(shorter, "size 4728 bytes, but the header implies 4732");
  const std::string longer = dir + "/long.bin";
  write_raw(longer, bytes + std::string(4, '\0'));
  expect_load_error(longer, "size 4736 bytes, but the header implies 4732");
  const std::string header_only = dir + "/header-only.bin";
  write_raw(header_only, header_bytes(kTiny));
  expect_load_error(header_only, "size 28 bytes, but the header implies 4732");
}

TEST(Llama2c, RefusesImplausibleDims) {
  const std::string dir = testing::temp_dir();
  auto check = [&](Dims d, const std::string& name) {
    SCOPED_TRACE(name);
    const std::string path = dir + "/" + name + ".bin";
    // Header plus some floats: the size cannot be what decides.
    write_raw(path, header_bytes(d) + std::string(4 * 64, '\0'));
    expect_load_error(path, "implausible llama2.c header");
  };
  Dims d = kTiny;
  d.dim = 0;
  check(d, "dim-zero");
  d = kTiny;
  d.heads = 3;  // 8 is not a multiple of 3
  check(d, "dim-not-divisible-by-heads");
  d = kTiny;
  d.hidden = -12;
  check(d, "negative-hidden");
  d = kTiny;
  d.layers = 0;
  check(d, "zero-layers");
  d = kTiny;
  d.kv_heads = 0;
  check(d, "zero-kv-heads");
  d = kTiny;
  d.seq = -4;
  check(d, "negative-seq");
  d = kTiny;
  d.vocab = 0;
  check(d, "zero-vocab");
  // Sizes whose float count overflows 64 bits.
  check(Dims{INT32_MAX, INT32_MAX, INT32_MAX, 1, 1, INT32_MAX, INT32_MAX, false}, "overflow");
  check(Dims{1 << 30, 1 << 30, 1 << 30, 1 << 10, 1 << 10, 1 << 30, 1 << 30, true}, "overflow-2");
}

TEST(Llama2c, RefusesHugeDimsWithoutAllocating) {
  const std::string dir = testing::temp_dir();
  // Counts that fit 64 bits but describe petabytes: the size check refuses them.
  const std::string path = dir + "/huge.bin";
  write_raw(path, header_bytes(Dims{1 << 20, 1 << 20, 1000, 1 << 10, 1 << 10, 1 << 20, 1 << 20, true}) + std::string(64, '\0'));
  expect_load_error(path, "but the header implies");
  // vocab_size = INT32_MIN has no magnitude in int32.
  const std::string min_vocab = dir + "/int-min-vocab.bin";
  std::string bytes = header_bytes(kTiny);
  std::memcpy(bytes.data() + 20, le32(INT32_MIN).data(), 4);
  write_raw(min_vocab, bytes);
  expect_load_error(min_vocab, "vocab_size out of range");
}

TEST(Llama2c, RefusesExactSizeButInvalidConfig) {
  // The file size matches the header, but the architecture is impossible: the config check
  // still names the file.
  Dims d = kTiny;
  d.kv_heads = 3;  // 2 heads cannot share 3 kv heads
  // (The sniffer only checks sizes, so it accepts this file; loading is what refuses it.)
  expect_load_error(write_checkpoint(d, "kv3.bin"), "num_key_value_heads (3)", /*sniffer_rejects=*/false);
  d = Dims{6, 12, 2, 2, 2, 10, 4, true};  // head_dim 3: RoPE needs an even size
  const std::string odd = write_checkpoint(d, "odd-head.bin");
  try {
    load_llama2c(odd);
    ADD_FAILURE() << "loaded head_dim 3";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(odd + ": ", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("head_dim 3 must be even"), std::string::npos) << e.what();
  }
}

TEST(Llama2c, RefusesMissingFile) {
  const std::string path = testing::temp_dir() + "/absent.bin";
  EXPECT_THROW(load_llama2c(path), Error);
  EXPECT_FALSE(looks_like_llama2c(path));
  EXPECT_FALSE(looks_like_llama2c(testing::temp_dir()));  // a folder
}

// ---------------------------------------------------------------------------------
// tokenizer.bin

struct TokenEntry {
  float score;
  int32_t length;
  std::string bytes;
};

std::string tokenizer_bytes(int32_t max_length, const std::vector<TokenEntry>& entries) {
  std::string out = le32(max_length);
  for (const auto& e : entries) out += f32_bytes(e.score) + le32(e.length) + e.bytes;
  return out;
}

void expect_tokenizer_error(const std::string& path, int64_t vocab_size, const std::string& fragment) {
  try {
    load_llama2c_tokenizer(path, vocab_size);
    ADD_FAILURE() << "loaded " << path;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message << "\nlacks: " << fragment;
  }
}

TEST(Llama2c, RealTok512) {
  LOWBIT_REQUIRE_SHARED(shared);
  const auto vocabulary = load_llama2c_tokenizer(shared + "/models/stories260K/llama2c/tok512.bin", 512);
  EXPECT_EQ(vocabulary.max_token_length, 7);
  ASSERT_EQ(vocabulary.pieces.size(), 512u);
  ASSERT_EQ(vocabulary.scores.size(), 512u);
  EXPECT_EQ(vocabulary.pieces[0], "<unk>");
  EXPECT_EQ(vocabulary.pieces[1], "\n<s>\n");
  EXPECT_EQ(vocabulary.pieces[2], "\n</s>\n");
  EXPECT_EQ(vocabulary.pieces[3], "<0x00>");  // byte fallback: byte b is token b + 3
  EXPECT_EQ(vocabulary.pieces[3 + 0x41], "<0x41>");
  EXPECT_EQ(vocabulary.pieces[258], "<0xFF>");
  EXPECT_EQ(vocabulary.pieces[259], " t");  // the first merge
  EXPECT_EQ(vocabulary.pieces[260], "he");
  EXPECT_EQ(vocabulary.pieces[261], " a");
  EXPECT_EQ(vocabulary.pieces[300], " ha");
  EXPECT_EQ(vocabulary.pieces[301], " S");
  EXPECT_EQ(vocabulary.pieces[400], " do");
  EXPECT_EQ(vocabulary.pieces[511], "\xe2\x80\x8a");  // U+200A HAIR SPACE
  for (int i = 0; i <= 258; ++i) EXPECT_EQ(vocabulary.scores[i], 0.0f) << i;
  EXPECT_EQ(vocabulary.scores[259], 0.0f);
  EXPECT_TRUE(std::signbit(vocabulary.scores[259]));  // stored as -0.0
  EXPECT_FALSE(std::signbit(vocabulary.scores[258]));
  EXPECT_EQ(vocabulary.scores[260], -1.0f);
  EXPECT_EQ(vocabulary.scores[261], -2.0f);
  EXPECT_EQ(vocabulary.scores[300], -41.0f);
  EXPECT_EQ(vocabulary.scores[400], -141.0f);
  EXPECT_EQ(vocabulary.scores[511], -252.0f);
  size_t longest = 0;
  for (const auto& piece : vocabulary.pieces) longest = std::max(longest, piece.size());
  EXPECT_EQ(longest, 7u);  // == max_token_length
  EXPECT_EQ(vocabulary.pieces[3 + 0x0A], "<0x0A>");
  EXPECT_EQ(vocabulary.pieces[374], " friend");  // the two 7-byte pieces
  EXPECT_EQ(vocabulary.pieces[376], " little");
}

TEST(Llama2c, TokenizerVocabSizeMustMatchFile) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string path = shared + "/models/stories260K/llama2c/tok512.bin";
  expect_tokenizer_error(path, 513, "truncated at byte 6227 while reading token 512");
  expect_tokenizer_error(path, 511, "unexpected bytes after 511 tokens");
  expect_tokenizer_error(path, 0, "cannot hold 0 tokens");
  expect_tokenizer_error(path, -5, "cannot hold -5 tokens");
  expect_tokenizer_error(path, int64_t{1} << 40, "cannot hold");
}

TEST(Llama2c, RefusesTruncatedTokenizer) {
  LOWBIT_REQUIRE_SHARED(shared);
  const std::string real = read_all(shared + "/models/stories260K/llama2c/tok512.bin");
  ASSERT_EQ(real.size(), 6227u);
  const std::string dir = testing::temp_dir();
  const std::string cut = dir + "/cut.bin";
  write_raw(cut, real.substr(0, real.size() - 1));  // last piece one byte short
  expect_tokenizer_error(cut, 512, "while reading token 511");
  const std::string two = dir + "/two.bin";
  write_raw(two, real.substr(0, 2));
  expect_tokenizer_error(two, 512, "truncated at byte 0 while reading max_token_length");
}

TEST(Llama2c, RefusesBadTokenLengths) {
  const std::string dir = testing::temp_dir();
  const std::string negative = dir + "/negative.bin";
  write_raw(negative, tokenizer_bytes(4, {{0.0f, 1, "a"}, {-1.0f, -1, ""}, {-2.0f, 1, "c"}}));
  expect_tokenizer_error(negative, 3, "token 1: length -1 outside 0..4");
  const std::string too_long = dir + "/too-long.bin";
  write_raw(too_long, tokenizer_bytes(4, {{0.0f, 5, "abcde"}}));
  expect_tokenizer_error(too_long, 1, "token 0: length 5 outside 0..4");
  const std::string runs_past = dir + "/runs-past.bin";
  write_raw(runs_past, tokenizer_bytes(4, {{0.0f, 1, "a"}, {0.0f, 4, "ab"}}));
  expect_tokenizer_error(runs_past, 2, "truncated at byte 21 while reading token 1");
  const std::string bad_max = dir + "/bad-max.bin";
  write_raw(bad_max, tokenizer_bytes(-3, {{0.0f, 1, "a"}}));
  expect_tokenizer_error(bad_max, 1, "max_token_length -3");

  // A well-formed one loads exactly, empty pieces included.
  const std::string good = dir + "/good.bin";
  write_raw(good, tokenizer_bytes(3, {{0.5f, 3, "abc"}, {-1.25f, 0, ""}, {2.0f, 2, "\xc3\xa9"}}));
  const auto vocabulary = load_llama2c_tokenizer(good, 3);
  EXPECT_EQ(vocabulary.max_token_length, 3);
  EXPECT_EQ(vocabulary.pieces, (std::vector<std::string>{"abc", "", "\xc3\xa9"}));
  EXPECT_EQ(vocabulary.scores, (std::vector<float>{0.5f, -1.25f, 2.0f}));
}

}  // namespace
}  // namespace lowbit
