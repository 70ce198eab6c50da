// libFuzzer target for the safetensors header parser.
//
// The input is a whole safetensors file. parse_safetensors_header must either return a
// header whose every promise holds, or throw lowbit::Error; any other exception (e.g.
// a nlohmann::json::type_error escaping), a crash, or a sanitizer report is a bug.
// When parsing succeeds we check the promises the readers rely on to make zero-copy
// views (offsets inside the data section, sizes matching shapes, no overlaps) and read
// every declared byte, so ASan catches any range the checks let through.
//
// Build and run (see scripts/test):
//   CC=clang CXX=clang++ cmake -S . -B build/fuzz -DLOWBIT_BUILD_FUZZ=ON \
//       -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_BENCH=OFF
//   make -C build/fuzz -j2 safetensors_header_fuzz
//   build/fuzz/safetensors_header_fuzz -max_total_time=60 fuzz/corpus/safetensors_header
// (seeds come from fuzz/make_safetensors_corpus.py; pass a scratch folder first to keep
// new inputs out of the committed corpus.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "lowbit/core/error.h"
#include "lowbit/io/safetensors.h"

namespace {

// A broken promise is a bug in the parser: die loudly so libFuzzer saves the input.
void check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  lowbit::SafetensorsHeader header;
  try {
    header = lowbit::parse_safetensors_header(file, "fuzz");
  } catch (const lowbit::Error&) {
    return 0;  // rejecting bad input with our error type is the expected outcome
  }

  check(header.data_start == 8 + header.header_size);
  check(header.data_start <= size);
  const uint64_t data_size = size - header.data_start;
  uint64_t previous_end = 0;
  unsigned checksum = 0;
  for (const lowbit::SafetensorsEntry& entry : header.entries) {
    check(!entry.name.empty() && entry.name != "__metadata__");
    check(entry.begin <= entry.end && entry.end <= data_size);
    check(entry.begin >= previous_end);  // sorted and non-overlapping
    previous_end = entry.end;
    const int64_t numel = lowbit::shape_numel(entry.shape);  // must not throw after validation
    check(static_cast<uint64_t>(numel) * lowbit::dtype_size(entry.dtype) == entry.end - entry.begin);
    for (uint64_t i = entry.begin; i < entry.end; ++i) checksum += data[header.data_start + i];
  }
  volatile unsigned sink = checksum;  // keeps the reads from being optimised away
  (void)sink;
  return 0;
}
