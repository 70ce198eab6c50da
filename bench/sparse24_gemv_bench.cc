// 2:4 sparse decode GEMV (one token) against the dense kernel of the same value type on the same
// matrix, in the same run. 4096 x 4096, rows split over OpenMP in fixed 64-row tiles (as the
// model's linear layers do), 1 and 2 threads.
//
//   Sparse24/<kind>/<threads>   sparse24_gemv_rows over the Sparse24Matrix
//   Baseline/<kind>/<threads>   the dense kernel alone: kind 0 = dense_gemv_rows F16, 1 = BF16,
//                               2 = packed_gemv int8 per-row, 3 = packed_gemv int8 g128
//                               (int_symmetric(8), f16 scales; x prepared once per token)
// kind 0/1: a random 2:4 matrix (two nonzeros in most groups of 4) stored as f16 / bf16, and its
// dense form for the baseline. kind 2/3: an 8-bit QuantizedTensor with 2:4 codes; the sparse
// matrix is from_quantized of the same tensor.
//
// Each Sparse24 iteration also times one baseline pass right before its own pass, so `speedup`
// (baseline seconds / sparse seconds, summed over iterations) compares the two under the same
// machine conditions even when other processes come and go. Counters: GBps = bytes the kernel
// reads (storage_bytes(); dense: rows·cols·2) per second, bits_per_weight = 8·bytes/(rows·cols).
// The 2:4 target (issue 7) is speedup >= 1.5 for every kind.
//
//   build/<dir>/sparse24_gemv_bench
//   build/<dir>/sparse24_gemv_bench --benchmark_filter='Sparse24/0/'
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "lowbit/compress/quantized_tensor.h"
#include "lowbit/core/half.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "lowbit/kernels/dense_gemv.h"
#include "lowbit/kernels/packed_gemv.h"
#include "lowbit/kernels/sparse24_gemv.h"

namespace {

using namespace lowbit;

constexpr int64_t kRows = 4096, kCols = 4096, kTile = 64;

// Column places of the nonzeros of row r's group q: two (different) places in 7 of 8 groups, one in the rest.
int places(const CounterRng& rng, uint64_t k, int out[2]) {
  const uint32_t bits = rng.bits(k);
  out[0] = static_cast<int>(bits & 3);
  out[1] = (out[0] + 1 + static_cast<int>((bits >> 2) % 3)) & 3;
  return (bits >> 4) % 8 == 0 ? 1 : 2;
}

struct Layer {
  Sparse24Matrix sparse;
  DType dense_dtype = DType::kF16;
  std::vector<uint16_t> dense;              // kind 0/1
  std::unique_ptr<QuantizedTensor> packed;  // kind 2/3
  uint64_t sparse_bytes = 0, baseline_bytes = 0;
};

Layer build(int kind) {
  Layer l;
  const CounterRng rng(11, static_cast<uint64_t>(kind));
  if (kind <= 1) {
    l.dense_dtype = kind == 0 ? DType::kF16 : DType::kBF16;
    std::vector<float> w(static_cast<size_t>(kRows * kCols), 0.0f);
    parallel_for(kRows, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        for (int64_t q = 0; q < kCols / 4; ++q) {
          const uint64_t k = static_cast<uint64_t>(r * kCols + 4 * q);
          int p[2];
          const int count = places(rng, k, p);
          for (int j = 0; j < count; ++j) {
            const float v = (rng.uniform(k + 1 + j) * 2 - 1) * 0.05f + (j == 0 ? 0.06f : -0.06f);  // never 0
            const uint16_t h = kind == 0 ? f32_to_f16_bits(v) : f32_to_bf16_bits(v);
            w[static_cast<size_t>(r * kCols + 4 * q + p[j])] = kind == 0 ? f16_bits_to_f32(h) : bf16_bits_to_f32(h);
          }
        }
    });
    l.sparse = Sparse24Matrix::from_dense(w.data(), kRows, kCols, l.dense_dtype);
    l.dense.resize(w.size());
    if (kind == 0) {
      convert_f32_to_f16(w.data(), l.dense.data(), w.size());
    } else {
      convert_f32_to_bf16(w.data(), l.dense.data(), w.size());
    }
    l.baseline_bytes = static_cast<uint64_t>(kRows * kCols * 2);
  } else {
    l.packed = std::make_unique<QuantizedTensor>(kRows, kCols, QuantScheme::integer(8, kind == 2 ? 0 : 128, true));
    QuantizedTensor& t = *l.packed;
    parallel_for(kRows, 16, [&](int64_t begin, int64_t end) {
      std::vector<uint8_t> codes(static_cast<size_t>(kCols));
      std::vector<float> scales(static_cast<size_t>(t.groups_per_row()));
      for (int64_t r = begin; r < end; ++r) {
        std::fill(codes.begin(), codes.end(), 0);
        for (int64_t q = 0; q < kCols / 4; ++q) {
          const uint64_t k = static_cast<uint64_t>(r * kCols + 4 * q);
          int p[2];
          const int count = places(rng, k, p);
          for (int j = 0; j < count; ++j)
            codes[static_cast<size_t>(4 * q + p[j])] = static_cast<uint8_t>(1 + rng.bits(k + 1 + j) % 255);  // nonzero
        }
        for (size_t g = 0; g < scales.size(); ++g) {
          const float s = 0.001f + 0.002f * rng.uniform(static_cast<uint64_t>(r) * 64 + g);
          scales[g] = f16_bits_to_f32(f32_to_f16_bits(s));
        }
        t.set_row(r, codes, scales);
      }
    });
    l.sparse = Sparse24Matrix::from_quantized(t);
    l.baseline_bytes = static_cast<uint64_t>(t.storage_bytes());
  }
  l.sparse_bytes = l.sparse.storage_bytes();
  return l;
}

const std::vector<float>& input() {
  static const std::vector<float> x = [] {
    std::vector<float> v(static_cast<size_t>(kCols));
    const CounterRng rng(3, 0);
    for (size_t i = 0; i < v.size(); ++i) v[i] = rng.uniform(i) * 2 - 1;
    return v;
  }();
  return x;
}

void sparse_pass(const Layer& l, float* y) {
  const float* x = input().data();
  parallel_for(kRows, kTile, [&](int64_t begin, int64_t end) { sparse24_gemv_rows(l.sparse, x, begin, end, y); });
}

void baseline_pass(const Layer& l, float* y) {
  const float* x = input().data();
  if (l.packed) {
    static PackedGemvInput prepared;  // shared, read-only, by the tiles' threads
    packed_gemv_prepare(*l.packed, x, prepared);
    parallel_for(kRows, kTile,
                 [&](int64_t begin, int64_t end) { packed_gemv_rows(*l.packed, prepared, begin, end, y); });
  } else {
    parallel_for(kRows, kTile, [&](int64_t begin, int64_t end) {
      dense_gemv_rows(l.dense_dtype, l.dense.data(), kCols, x, begin, end, y);
    });
  }
}

// Built once each (about 200 MB in all), checked once: the two kernels agree on the product.
const Layer& layer(int kind) {
  static std::unique_ptr<Layer> layers[4];
  if (!layers[kind]) {
    layers[kind] = std::make_unique<Layer>(build(kind));
    std::vector<float> a(kRows), b(kRows);
    sparse_pass(*layers[kind], a.data());
    baseline_pass(*layers[kind], b.data());
    for (int64_t r = 0; r < kRows; ++r)
      if (!(std::abs(a[r] - b[r]) <= 1e-4f * (1.0f + std::abs(b[r])))) {
        std::fprintf(stderr, "sparse24_gemv_bench: kind %d row %lld: sparse %g, baseline %g\n", kind,
                     static_cast<long long>(r), a[r], b[r]);
        std::exit(1);
      }
  }
  return *layers[kind];
}

double seconds_of(const auto& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  benchmark::ClobberMemory();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void counters(benchmark::State& state, uint64_t bytes, double seconds) {
  state.counters["GBps"] = static_cast<double>(bytes) * static_cast<double>(state.iterations()) / seconds * 1e-9;
  state.counters["bits_per_weight"] = 8.0 * static_cast<double>(bytes) / static_cast<double>(kRows * kCols);
}

void BM_Sparse24(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0));
  const Layer& l = layer(kind);
  set_num_threads(static_cast<int>(state.range(1)));
  std::vector<float> y(kRows);
  double sparse = 0, baseline = 0;
  for (auto _ : state) {
    baseline += seconds_of([&] { baseline_pass(l, y.data()); });
    const double elapsed = seconds_of([&] { sparse_pass(l, y.data()); });
    state.SetIterationTime(elapsed);
    sparse += elapsed;
  }
  set_num_threads(0);
  counters(state, l.sparse_bytes, sparse);
  state.counters["baseline_us"] = baseline / static_cast<double>(state.iterations()) * 1e6;
  state.counters["speedup"] = baseline / sparse;
}

void BM_Baseline(benchmark::State& state) {
  const Layer& l = layer(static_cast<int>(state.range(0)));
  set_num_threads(static_cast<int>(state.range(1)));
  std::vector<float> y(kRows);
  double seconds = 0;
  for (auto _ : state) {
    const double elapsed = seconds_of([&] { baseline_pass(l, y.data()); });
    state.SetIterationTime(elapsed);
    seconds += elapsed;
  }
  set_num_threads(0);
  counters(state, l.baseline_bytes, seconds);
}

void cases(benchmark::internal::Benchmark* b) {
  for (const int64_t kind : {0, 1, 2, 3})
    for (const int64_t threads : {1, 2}) b->Args({kind, threads});
  b->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.5);
}

BENCHMARK(BM_Sparse24)->Name("Sparse24")->Apply(cases);
BENCHMARK(BM_Baseline)->Name("Baseline")->Apply(cases);

}  // namespace

BENCHMARK_MAIN();
