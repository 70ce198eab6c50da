// libFuzzer target for the sparse layer reader (SparseTensor::from_stored,
// include/lowbit/compress/sparse_tensor.h) — what a model folder's .sparse_index/.sparse_bitmap,
// .values/.qweight, .scales and .qzeros become on load.
//
// The first bytes choose a layer spec (shape, N:M or bitmap, float dtype or a quantized grid and
// group size); the rest are split into the index, the values and the scales/zero points. from_stored
// must either return a tensor whose promises hold, or throw lowbit::Error; anything else (another
// exception, a crash, a sanitizer report) is a bug. When it returns, the stored parts must
// round-trip: writing the tensor again gives back the same index and values bytes, and every pruned
// weight is exactly 0.
//
// Build and run: as the other targets (scripts/test; fuzz/safetensors_header_fuzz.cc's header).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "lowbit/compress/sparse_tensor.h"
#include "lowbit/core/error.h"

namespace {

void check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  if (size < 8) return 0;
  QuantizedLayerSpec spec;
  spec.out_features = 1 + data[0] % 9;
  spec.in_features = 1 + data[1] % 40;
  SparseLayoutSpec layout;
  if (data[2] % 3 != 0) {
    layout.m = 2 + data[2] % 9;
    layout.n = 1 + data[3] % (layout.m - 1);
  }
  spec.sparse = layout;
  spec.quantized = data[4] % 2 == 0;
  const DType dtypes[] = {DType::kF16, DType::kBF16, DType::kF32};
  spec.value_dtype = dtypes[data[5] % 3];
  spec.scale_dtype = dtypes[data[5] / 3 % 3];
  const int bits = 1 + data[6] % 8;
  spec.format = data[6] & 0x80 ? Format::uint(bits) : Format::int_symmetric(std::max(bits, 2));
  spec.group_size = data[7] % 2 ? 0 : 1 + data[7] % spec.in_features;
  std::span<const uint8_t> rest(data + 8, size - 8);
  // index | values | scales (f32 values) | zero points: split at fractions given by the data itself.
  const size_t a = rest.size() / 4, b = rest.size() / 2, c = 3 * rest.size() / 4;
  const auto index = rest.subspan(0, a), values = rest.subspan(a, b - a);
  std::vector<float> scales;
  for (size_t i = b; i + 2 <= c; i += 2) scales.push_back(static_cast<float>(rest[i]) / 16.0f);
  std::vector<uint8_t> zeros(rest.begin() + static_cast<std::ptrdiff_t>(c), rest.end());
  try {
    const SparseTensor t = SparseTensor::from_stored(spec, index, values, scales, zeros);
    const std::vector<uint8_t> again_index = t.stored_index(), again_values = t.stored_values();
    check(again_index.size() == index.size() && std::memcmp(again_index.data(), index.data(), index.size()) == 0);
    check(again_values.size() == values.size());
    const std::vector<float> dense = t.dense();
    for (size_t i = 0; i < dense.size(); ++i) check(t.mask()[i] || dense[i] == 0.0f);
  } catch (const Error&) {
  }
  return 0;
}
