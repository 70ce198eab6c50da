// Throughput of the bulk f16/bf16 <-> f32 conversions against memcpy of the same
// source bytes in the same binary (the memory-bandwidth roofline).
//
// Every case reads a 64 MiB source buffer; bytes_per_second counts bytes read plus
// bytes written, so memcpy moves 128 MiB per iteration and a narrowing conversion
// 96 MiB, and the GB/s columns compare directly. Buffers are far larger than the
// caches, so these are the streaming numbers that loading a checkpoint sees. Rates use
// wall-clock time (UseRealTime), which is what a memory-bound caller waits for.
//
//   build/<dir>/half_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "lowbit/core/half.h"
#include "lowbit/core/random.h"

namespace {

constexpr size_t kSourceBytes = size_t{64} << 20;

// Weight-like values: roughly normal, scale 0.02, plus a few large ones.
std::vector<float> make_floats(size_t count) {
  const lowbit::CounterRng rng(1, 0);
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) {
    const lowbit::PhiloxCounter words = rng.block(i);
    float sum = -1.5f;
    for (int k = 0; k < 3; ++k) sum += static_cast<float>(words[k] >> 8) * 0x1p-24f;
    out[i] = (i % 4096 == 0) ? sum * 100.0f : sum * 0.04f;
  }
  return out;
}

void BM_Memcpy(benchmark::State& state) {
  std::vector<char> in(kSourceBytes, 1), out(kSourceBytes, 0);
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), in.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(kSourceBytes));
}

template <void (*Convert)(const float*, uint16_t*, size_t)>
void BM_Narrow(benchmark::State& state) {
  const std::vector<float> in = make_floats(kSourceBytes / sizeof(float));
  std::vector<uint16_t> out(in.size(), 0);
  for (auto _ : state) {
    Convert(in.data(), out.data(), in.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(in.size() * (sizeof(float) + sizeof(uint16_t))));
}

template <void (*Narrow)(const float*, uint16_t*, size_t), void (*Widen)(const uint16_t*, float*, size_t)>
void BM_Widen(benchmark::State& state) {
  const std::vector<float> values = make_floats(kSourceBytes / sizeof(uint16_t));
  std::vector<uint16_t> in(values.size());
  Narrow(values.data(), in.data(), values.size());
  std::vector<float> out(in.size(), 0.0f);
  for (auto _ : state) {
    Widen(in.data(), out.data(), in.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(in.size() * (sizeof(float) + sizeof(uint16_t))));
}

BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.2);
BENCHMARK(BM_Narrow<lowbit::convert_f32_to_f16>)->Name("BM_F32ToF16")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.2);
BENCHMARK(BM_Narrow<lowbit::convert_f32_to_bf16>)->Name("BM_F32ToBF16")->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.2);
BENCHMARK(BM_Widen<lowbit::convert_f32_to_f16, lowbit::convert_f16_to_f32>)
    ->Name("BM_F16ToF32")
    ->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MinTime(0.2);
BENCHMARK(BM_Widen<lowbit::convert_f32_to_bf16, lowbit::convert_bf16_to_f32>)
    ->Name("BM_BF16ToF32")
    ->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MinTime(0.2);

}  // namespace

BENCHMARK_MAIN();
