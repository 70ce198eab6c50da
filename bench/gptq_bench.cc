// GPTQ speed on LLM-sized layers, and Hessian accumulation against plain sgemm.
//
//   Gptq/<rows>/<cols>/<threads>: 4-bit symmetric, groups of 128, f16 scales, block 128, one layer
//   of rows x cols with a fixed SPD H (XᵀX of 2·cols correlated synthetic activations). Time is
//   wall clock for everything quantize_gptq does: preparing H (dead columns, damping, the double
//   Cholesky factor of H⁻¹; reported as factor_s) and the column sweep (sweep_s).
//   Target (issue 5): 4096 x 4096 under 3 s on 2 threads.
//
//   Hessian/<precision>/<threads>: H += XᵀX for a batch of 2048 x 4096 activations. Every
//   iteration also times the same product with plain sgemm (C = XᵀX, both triangles, row tiles of
//   C over the same threads) right before it. Both rates count the full product, 2·rows·cols²
//   flops, so of_sgemm > 1 is possible (syrk computes one triangle).
//
//   build/<dir>/gptq_bench                                  (all cases, a few minutes on 2 cores)
//   build/<dir>/gptq_bench --benchmark_filter='Gptq/4096/4096'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <utility>
#include <vector>

#include "lowbit/compress/gptq.h"
#include "lowbit/compress/statistics.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "lowbit/linalg/blas.h"

namespace {

using namespace lowbit;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// CPU seconds of the calling thread: with one thread all the work runs there, so this is what a
// quiet machine's wall clock would show even when other processes share the cores.
double thread_cpu() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Roughly normal values (sum of four uniforms), seeded.
std::vector<float> normal(size_t n, uint64_t seed, float scale) {
  std::vector<float> v(n);
  parallel_for(static_cast<int64_t>(n), int64_t{1} << 16, [&](int64_t begin, int64_t end) {
    const CounterRng rng(seed, 0);
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t k = static_cast<uint64_t>(i) * 4;
      v[static_cast<size_t>(i)] =
          (rng.uniform(k) + rng.uniform(k + 1) + rng.uniform(k + 2) + rng.uniform(k + 3) - 2.0f) * 1.7320508f * scale;
    }
  });
  return v;
}

// Activations with neighbouring channels correlated (ρ = 0.9) and every 17th channel 6x larger.
std::vector<float> activations(int64_t tokens, int64_t cols, uint64_t seed) {
  std::vector<float> x = normal(static_cast<size_t>(tokens * cols), seed, 1.0f);
  parallel_for(tokens, 64, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* row = x.data() + t * cols;
      for (int64_t j = 1; j < cols; ++j) row[j] = 0.9f * row[j - 1] + 0.43588989f * row[j];
      for (int64_t j = 3; j < cols; j += 17) row[j] *= 6.0f;
    }
  });
  return x;
}

const std::vector<double>& hessian(int64_t cols) {
  static std::map<int64_t, std::vector<double>> cache;
  auto& h = cache[cols];
  if (h.empty()) {
    const int64_t tokens = 2 * cols;
    const std::vector<float> x = activations(tokens, cols, 7);
    h.assign(static_cast<size_t>(cols * cols), 0.0);
    accumulate_hessian(h, x, tokens, cols);
  }
  return h;
}

const std::vector<float>& weights(int64_t rows, int64_t cols) {
  static std::map<std::pair<int64_t, int64_t>, std::vector<float>> cache;
  auto& w = cache[{rows, cols}];
  if (w.empty()) w = normal(static_cast<size_t>(rows * cols), 11, 0.02f);
  return w;
}

void Gptq(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const std::vector<double>& h = hessian(cols);
  const std::vector<float>& w = weights(rows, cols);
  GptqOptions options;
  options.scheme = QuantScheme::integer(4, 128, true);
  set_num_threads(threads);
  double factor = 0, sweep = 0, factor_cpu = 0, sweep_cpu = 0, loss = 0;
  for (auto _ : state) {
    const double t0 = now(), c0 = thread_cpu();
    const GptqHessian prepared(h, cols, options.percdamp, options.act_order);
    const double t1 = now(), c1 = thread_cpu();
    const GptqResult result = quantize_gptq(w, rows, cols, prepared, options);
    benchmark::DoNotOptimize(result.tensor.packed_codes().data());
    const double t2 = now(), c2 = thread_cpu();
    state.SetIterationTime(t2 - t0);
    factor += t1 - t0;
    sweep += t2 - t1;
    factor_cpu += c1 - c0;
    sweep_cpu += c2 - c1;
    loss = result.stats.loss;
  }
  set_num_threads(0);
  const double n = static_cast<double>(state.iterations());
  state.counters["factor_s"] = factor / n;
  state.counters["sweep_s"] = sweep / n;
  state.counters["total_s"] = (factor + sweep) / n;
  if (threads == 1) {
    state.counters["factor_cpu_s"] = factor_cpu / n;
    state.counters["sweep_cpu_s"] = sweep_cpu / n;
  }
  // The sweep's dominant work: the lazy trailing updates, rows · cols² flops.
  state.counters["sweep_GFLOPs"] = static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(cols) / (sweep / n) * 1e-9;
  state.counters["loss"] = loss;
}
BENCHMARK(Gptq)
    ->Args({4096, 4096, 1})
    ->Args({4096, 4096, 2})
    ->Args({11008, 4096, 1})
    ->Args({11008, 4096, 2})
    ->ArgNames({"rows", "cols", "threads"})
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kSecond);

// C = XᵀX with plain sgemm, row tiles of C spread over the threads (the baseline).
void plain_sgemm(const std::vector<float>& x, int64_t rows, int64_t cols, std::vector<float>& c) {
  constexpr int64_t kTile = 256;
  parallel_for((cols + kTile - 1) / kTile, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i0 = t * kTile, m = std::min(cols, i0 + kTile) - i0;
      gemm_f32(true, false, m, cols, rows, 1.0f, x.data() + i0, cols, x.data(), cols, 0.0f, c.data() + i0 * cols, cols);
    }
  });
}

void Hessian(benchmark::State& state) {
  const int64_t rows = 2048, cols = 4096;
  const auto precision = state.range(0) == 0 ? GramPrecision::kFloatChunks : GramPrecision::kDouble;
  const int threads = static_cast<int>(state.range(1));
  static const std::vector<float> x = activations(rows, cols, 3);
  std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
  std::vector<float> c(static_cast<size_t>(cols * cols), 0.0f);
  set_num_threads(threads);
  double seconds = 0, sgemm_seconds = 0;
  for (auto _ : state) {
    const double t0 = now();
    plain_sgemm(x, rows, cols, c);
    const double t1 = now();
    accumulate_hessian(h, x, rows, cols, precision);
    const double t2 = now();
    state.SetIterationTime(t2 - t1);
    sgemm_seconds += t1 - t0;
    seconds += t2 - t1;
  }
  set_num_threads(0);
  const double flops = 2.0 * rows * static_cast<double>(cols) * cols * static_cast<double>(state.iterations());
  state.counters["GFLOPs"] = flops / seconds * 1e-9;
  state.counters["sgemm_GFLOPs"] = flops / sgemm_seconds * 1e-9;
  state.counters["of_sgemm"] = sgemm_seconds / seconds;
}
BENCHMARK(Hessian)
    ->Args({0, 1})
    ->Args({0, 2})
    ->Args({1, 1})
    ->Args({1, 2})
    ->ArgNames({"double", "threads"})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
