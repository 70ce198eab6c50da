// Decode GEMV (one token) straight from the packed QuantizedTensor layout, against DenseLinear's
// bf16 and f32 GEMV on the same matrix and the machine's streaming-read bandwidth, all in one run.
//
//   Packed/<rows>/<cols>/<scheme>/<threads>   QuantizedLinear(packed_decode)::forward(x, 1 token):
//       the packed kernel over fixed 64-row tiles. scheme 0 = uint4 g128 (f16 scales, zero points),
//       1 = int8 per-row (symmetric, f16 scales). Random codes (speed does not depend on them).
//   Dense/<rows>/<cols>/<dtype>/<threads>     DenseLinear::forward, one token, over the
//       dequantized uint4 matrix stored as 0 = f32, 1 = bf16.
//   StreamRead/<threads>                      measure_read_bandwidth (core/memory_bandwidth.h):
//       the roofline, 512 MiB, best of 3 passes.
//   Prefill/<rows>/<cols>/<tokens>/<activations>/<threads>   the packed uint4 g128 layer's forward over
//       32 or 512 tokens with activations 0 = f32 (64-row tiles dequantized into sgemm) or 1 = int8
//       (the int8 GEMM, kernels/int8_gemm.h); counter GFLOPs = 2·rows·cols·tokens per second.
//
// Counters: weight_GBps = LinearLayer::weight_bytes() (= storage_bytes() for the packed layer:
// codes + scales + zero points) per second of wall clock; bits_per_weight; of_stream = weight_GBps
// as a fraction of the streaming-read rate measured in this run at the same thread count.
// Matrices are far larger than the caches, so every case streams its weights from memory.
//
//   build/<dir>/packed_gemv_bench
//   build/<dir>/packed_gemv_bench --benchmark_filter='/4096/4096/'
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/compress/quantized_linear.h"
#include "lowbit/core/half.h"
#include "lowbit/core/memory_bandwidth.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "lowbit/model/linear.h"

namespace {

using namespace lowbit;

QuantScheme scheme_of(int64_t id) {
  return id == 0 ? QuantScheme::integer(4, 128, false) : QuantScheme::integer(8, 0, true);
}

std::shared_ptr<const QuantizedTensor> random_tensor(int64_t rows, int64_t cols, const QuantScheme& scheme) {
  auto t = std::make_shared<QuantizedTensor>(rows, cols, scheme);
  const uint32_t codes_count = 1u << scheme.bits();
  parallel_for(rows, 16, [&](int64_t begin, int64_t end) {
    const CounterRng rng(7, static_cast<uint64_t>(scheme.bits()));
    std::vector<uint8_t> codes(static_cast<size_t>(cols)), zeros;
    std::vector<float> scales(static_cast<size_t>(t->groups_per_row()));
    for (int64_t r = begin; r < end; ++r) {
      uint64_t k = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols + 2 * t->groups_per_row());
      for (auto& c : codes) c = static_cast<uint8_t>(rng.bits(k++) % codes_count);
      for (auto& s : scales) s = f16_bits_to_f32(f32_to_f16_bits(0.001f + 0.002f * rng.uniform(k++)));
      zeros.clear();
      if (scheme.asymmetric())
        for (size_t g = 0; g < scales.size(); ++g) zeros.push_back(static_cast<uint8_t>(rng.bits(k++) % codes_count));
      t->set_row(r, codes, scales, zeros);
    }
  });
  return t;
}

// One layer at a time stays alive (11008 x 4096 f32 is 180 MB): benchmark functions are called
// several times while the iteration count is chosen, so the last one built is kept.
const LinearLayer& layer(const std::string& key, int64_t rows, int64_t cols, int64_t kind, bool packed) {
  static std::string cached_key;
  static std::unique_ptr<LinearLayer> cached;
  if (key == cached_key) return *cached;
  cached.reset();
  if (packed) {
    cached = std::make_unique<QuantizedLinear>(random_tensor(rows, cols, scheme_of(kind)), std::vector<float>{},
                                                /*packed_decode=*/true);
  } else {
    const auto w = random_tensor(rows, cols, scheme_of(0))->dequantize();
    if (kind == 0) {
      cached = std::make_unique<DenseLinear>(
          Tensor::copy_of(DType::kF32, {rows, cols}, w.data(), w.size() * sizeof(float)));
    } else {
      std::vector<uint16_t> bf16(w.size());
      convert_f32_to_bf16(w.data(), bf16.data(), w.size());
      cached = std::make_unique<DenseLinear>(
          Tensor::copy_of(DType::kBF16, {rows, cols}, bf16.data(), bf16.size() * sizeof(uint16_t)));
    }
  }
  cached_key = key;
  return *cached;
}

// Streaming-read bytes/s per thread count, measured once per run.
double stream_rate(int threads) {
  static std::map<int, double> rates;
  auto it = rates.find(threads);
  if (it == rates.end()) {
    set_num_threads(threads);
    it = rates.emplace(threads, measure_read_bandwidth()).first;
  }
  return it->second;
}

void run_gemv(benchmark::State& state, bool packed) {
  const int64_t rows = state.range(0), cols = state.range(1), kind = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const double stream = stream_rate(threads);
  set_num_threads(threads);
  const std::string key = std::string(packed ? "p" : "d") + std::to_string(rows) + "x" + std::to_string(cols) + "/" +
                          std::to_string(kind);
  const LinearLayer& l = layer(key, rows, cols, kind, packed);
  std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows));
  const CounterRng rng(3, 0);
  for (size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(i) * 2 - 1;
  for (auto _ : state) {
    l.forward(x.data(), 1, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double bytes = static_cast<double>(l.weight_bytes());
  state.counters["weight_GBps"] =
      benchmark::Counter(bytes * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["bits_per_weight"] = 8.0 * bytes / static_cast<double>(rows * cols);
  state.counters["stream_GBps"] = stream * 1e-9;
  // Filled in as a rate too (bytes per second / stream rate): of_stream = fraction of the roofline.
  state.counters["of_stream"] =
      benchmark::Counter(bytes / stream * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  set_num_threads(0);
}

void BM_Packed(benchmark::State& state) { run_gemv(state, true); }
void BM_Dense(benchmark::State& state) { run_gemv(state, false); }

void BM_Prefill(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), tokens = state.range(2);
  const bool int8 = state.range(3) == 1;
  set_num_threads(static_cast<int>(state.range(4)));
  set_activation_precision(int8 ? ActivationPrecision::kInt8 : ActivationPrecision::kF32);
  const LinearLayer& l = layer("p" + std::to_string(rows) + "x" + std::to_string(cols) + "/0", rows, cols, 0, true);
  std::vector<float> x(static_cast<size_t>(tokens * cols)), y(static_cast<size_t>(tokens * rows));
  const CounterRng rng(3, 0);
  for (size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(i) * 2 - 1;
  for (auto _ : state) {
    l.forward(x.data(), tokens, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPs"] = benchmark::Counter(2e-9 * static_cast<double>(rows * cols * tokens) *
                                                    static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  set_activation_precision(ActivationPrecision::kF32);
  set_num_threads(0);
}

void BM_StreamRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  double rate = 0;
  for (auto _ : state) rate = stream_rate(threads);
  state.counters["stream_GBps"] = rate * 1e-9;
}

void shapes(benchmark::internal::Benchmark* b) {
  for (const int64_t rows : {4096, 11008})
    for (const int64_t kind : {0, 1})
      for (const int64_t threads : {1, 2}) b->Args({rows, 4096, kind, threads});
}

BENCHMARK(BM_StreamRead)->Name("StreamRead")->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Packed)->Name("Packed")->Apply(shapes)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(0.3);
BENCHMARK(BM_Dense)->Name("Dense")->Apply(shapes)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(0.3);
BENCHMARK(BM_Prefill)
    ->Name("Prefill")
    ->ArgsProduct({{4096, 11008}, {4096}, {32, 512}, {0, 1}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);

}  // namespace

BENCHMARK_MAIN();
