// libFuzzer target for the GGUF reader (include/lowbit/io/gguf.h).
//
// The input is a whole GGUF file. GgufFile::parse must either return a file whose every
// promise holds, or throw lowbit::Error; any other exception (std::bad_alloc from a count
// taken on trust, std::length_error, a std::bad_variant_access), a crash, or a sanitizer
// report is a bug. When parsing succeeds we check the promises the loaders rely on
// (version, alignment, data start, every tensor's bytes inside the file, no overlaps, sizes
// matching dims and type), read every byte of every tensor so ASan catches a range the
// checks let through, render every metadata value, and dequantize small tensors (any
// bytes are valid blocks, so that must not throw either).
//
// Build and run (see scripts/test):
//   CC=clang CXX=clang++ cmake -S . -B build/fuzz -DLOWBIT_BUILD_FUZZ=ON \
//       -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_BENCH=OFF
//   cmake --build build/fuzz -j2 --target gguf_fuzz
//   build/fuzz/gguf_fuzz -max_total_time=60 scratch/ fuzz/corpus/gguf
// (seeds come from fuzz/make_gguf_corpus.py; pass a scratch folder first to keep new
// inputs out of the committed corpus.)
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/io/gguf.h"

namespace {

// A broken promise is a bug in the reader: die loudly so libFuzzer saves the input.
void check(bool condition) {
  if (!condition) __builtin_trap();
}

// Dequantizing is linear in the size; keep each input fast.
constexpr uint64_t kMaxDequantizedElements = 1 << 16;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  lowbit::GgufFile file;
  try {
    file = lowbit::GgufFile::parse(bytes, "fuzz");
  } catch (const lowbit::Error&) {
    return 0;  // rejecting bad input with our error type is the expected outcome
  }

  check(file.version() >= 1 && file.version() <= 3);
  check(file.alignment() >= 1 && std::has_single_bit(file.alignment()));
  check(file.data_start() % file.alignment() == 0);
  check(file.file_size() == size);

  size_t rendered = 0;
  for (const auto& [key, value] : file.metadata()) {
    check(!key.empty());
    check(file.find(key) == &value);  // keys are unique
    rendered += value.to_display().size() + value.to_display(0).size();
  }

  std::vector<const lowbit::GgufTensorInfo*> by_offset;
  unsigned checksum = 0;
  for (const lowbit::GgufTensorInfo& info : file.tensors()) {
    check(!info.name.empty());
    check(file.find_tensor(info.name) == &info);  // names are unique
    check(!info.dims.empty() && info.dims.size() <= 4);
    const lowbit::GgmlTypeTraits& traits = lowbit::ggml_traits(info.type);
    check(traits.block_size >= 1 && info.dims[0] % traits.block_size == 0);
    unsigned __int128 elements = 1;
    for (uint64_t d : info.dims) {
      check(d >= 1);
      elements *= d;
    }
    check(elements == info.element_count());
    check(elements / traits.block_size * traits.type_size == info.size_bytes);
    check(info.offset % file.alignment() == 0);
    check(file.data_start() + info.offset + info.size_bytes <= size);  // no overflow: each term ≤ size
    const std::span<const std::byte> tensor = file.tensor_bytes(info);
    check(tensor.size() == info.size_bytes);
    check(tensor.data() == bytes.data() + file.data_start() + info.offset);
    for (std::byte b : tensor) checksum += static_cast<unsigned>(b);
    by_offset.push_back(&info);

    if (info.element_count() <= kMaxDequantizedElements && traits.can_dequantize) {
      // Any bytes are a valid block of a type lowbit can dequantize: nothing may throw.
      const lowbit::Tensor values = file.tensor_as_f32_or_view(info);
      check(static_cast<uint64_t>(values.numel()) == info.element_count());
      for (float x : values.to_f32_vector()) checksum += static_cast<unsigned>(x == x);
    }
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    check(by_offset[k - 1]->offset + by_offset[k - 1]->size_bytes <= by_offset[k]->offset);

  volatile size_t sink = checksum + rendered;  // keeps the reads from being optimised away
  (void)sink;
  return 0;
}
