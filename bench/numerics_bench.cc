// Throughput of quantize/chop (lowbit::quantize_dequantize: f32 in, rounded f32 out) for every
// <= 8-bit preset and rounding mode, encoding to 8-bit codes, and the block formats, on a
// 256 MiB f32 tensor with 1 and 2 threads — next to memcpy of the same 256 MiB measured in the
// same run (the memory-bandwidth roofline; chop moves the same bytes as memcpy: 4 read + 4 written
// per element).
//
// GBps counts bytes read plus bytes written (wall clock). Every iteration also copies the same
// 256 MiB with memcpy on the same threads (memcpy_GBps); of_memcpy = GBps / memcpy_GBps.
//
//   build/<dir>/numerics_bench                          (every case, ~2 minutes on 2 cores)
//   build/<dir>/numerics_bench --benchmark_filter='Chop/(e4m3|e2m1)/nearest'
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "lowbit/numerics/block_format.h"
#include "lowbit/numerics/quantize.h"

namespace {

using namespace lowbit;

constexpr size_t kElements = (size_t{256} << 20) / sizeof(float);  // 256 MiB of f32

// Weight-like values (roughly normal, scale 0.02, with outliers), built once and shared.
const std::vector<float>& input() {
  static const std::vector<float> values = [] {
    std::vector<float> v(kElements);
    parallel_for(static_cast<int64_t>(kElements), int64_t{1} << 20, [&](int64_t begin, int64_t end) {
      const CounterRng rng(1, 0);
      for (int64_t i = begin; i < end; ++i) {
        const float sum = rng.uniform(3 * i) + rng.uniform(3 * i + 1) + rng.uniform(3 * i + 2) - 1.5f;
        v[i] = (i % 4096 == 0) ? sum * 0.5f : sum * 0.04f;
      }
    });
    return v;
  }();
  return values;
}

std::vector<float>& output() {
  static std::vector<float> out(kElements, 1.0f);  // touched: no page faults inside the timing
  return out;
}

void parallel_memcpy() {
  const float* in = input().data();
  float* out = output().data();
  parallel_for(static_cast<int64_t>(kElements), static_cast<int64_t>(kElements / 16), [&](int64_t begin, int64_t end) {
    std::memcpy(out + begin, in + begin, static_cast<size_t>(end - begin) * sizeof(float));
  });
}

double seconds_of(const auto& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  benchmark::ClobberMemory();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Times `body` per iteration with a wall clock (the work runs on OpenMP threads, so the main
// thread's CPU time would mislead). Each iteration also times one memcpy of the same 256 MiB
// with the same threads, right before the body, so "of_memcpy" compares the two under the same
// machine conditions even when other processes come and go.
void run_timed(benchmark::State& state, size_t bytes_per_element, const auto& body) {
  const int threads = static_cast<int>(state.range(0));
  set_num_threads(threads);
  double seconds = 0, memcpy_seconds = 0;
  for (auto _ : state) {
    memcpy_seconds += seconds_of(parallel_memcpy);
    const double elapsed = seconds_of(body);
    state.SetIterationTime(elapsed);
    seconds += elapsed;
  }
  set_num_threads(0);
  const double iterations = static_cast<double>(state.iterations());
  const double gbps = iterations * kElements * bytes_per_element / 1e9 / seconds;
  const double memcpy_gbps = iterations * kElements * 8 / 1e9 / memcpy_seconds;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kElements * bytes_per_element));
  state.counters["threads"] = threads;
  state.counters["GBps"] = gbps;
  state.counters["memcpy_GBps"] = memcpy_gbps;
  state.counters["of_memcpy"] = gbps / memcpy_gbps;
}

void BM_Memcpy(benchmark::State& state) { run_timed(state, 8, parallel_memcpy); }

void BM_Chop(benchmark::State& state, Format format, Rounding mode) {
  run_timed(state, 8, [&] { quantize_dequantize(input(), output(), format, mode, {7, 0, 0}); });
}

void BM_Encode(benchmark::State& state, Format format, Rounding mode) {
  static std::vector<uint8_t> codes(kElements, 1);
  run_timed(state, 5, [&] { encode(input(), std::span<uint8_t>(codes), format, mode, {7, 0, 0}); });
}

void BM_Block(benchmark::State& state, BlockFormat format, Rounding mode) {
  BlockQuantizeOptions options;
  options.rounding = mode;
  const Shape shape = {static_cast<int64_t>(kElements / 4096), 4096};
  run_timed(state, 8, [&] { quantize_dequantize_blocks(input(), output(), shape, format, options); });
}

void configure(benchmark::internal::Benchmark* b) {
  b->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(0.3);
}

int register_all() {
  configure(benchmark::RegisterBenchmark("Memcpy", BM_Memcpy));
  const std::vector<Format> formats = {Format::e4m3(), Format::e5m2(), Format::e3m2(), Format::e2m3(),
                                       Format::e2m1(), Format::int_symmetric(8), Format::int_symmetric(4),
                                       Format::uint(4), Format::nf4(), Format::ue8m0(), Format::bf16(), Format::fp16()};
  for (const Format& f : formats)
    for (Rounding mode : kAllRoundings)
      configure(benchmark::RegisterBenchmark(("Chop/" + f.to_string() + "/" + std::string(rounding_name(mode))).c_str(),
                                             BM_Chop, f, mode));
  for (const Format& f : {Format::e4m3(), Format::e2m1(), Format::int_symmetric(4), Format::nf4()})
    for (Rounding mode : {Rounding::kNearestEven, Rounding::kStochastic})
      configure(benchmark::RegisterBenchmark(
          ("EncodeU8/" + f.to_string() + "/" + std::string(rounding_name(mode))).c_str(), BM_Encode, f, mode));
  for (const BlockFormat& f : {BlockFormat::mxfp8_e4m3(), BlockFormat::mxfp4(), BlockFormat::nvfp4(),
                               BlockFormat::nf4(), BlockFormat::int_grouped(4, 128, false),
                               BlockFormat::int_grouped(4, 128, true)})
    for (Rounding mode : {Rounding::kNearestEven, Rounding::kStochastic})
      configure(benchmark::RegisterBenchmark(("Block/" + f.to_string() + "/" + std::string(rounding_name(mode))).c_str(),
                                             BM_Block, f, mode));
  return 0;
}

const int g_registered = register_all();

}  // namespace

BENCHMARK_MAIN();
