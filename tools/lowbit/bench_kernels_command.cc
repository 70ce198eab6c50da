// lowbit bench kernels [--shapes 4096x4096,11008x4096] [--tokens N] [--quick] [--reps N] [--json]
// One-token (decode) GEMV of every weight format lowbit runs, on one matrix shape at a time, on 1
// thread and on the configured thread count, next to the streaming-read bandwidth measured in the
// same run: the kernels' roofline table in one command (bench/*_bench.cc hold the detailed sweeps).
//
// Each kernel is called the way the engine calls it: rows split into fixed 64-row tiles over
// parallel_for (as DenseLinear / QuantizedLinear / Sparse24Linear), the packed kernel's x prepared
// once per call (its cost counted, as in QuantizedLinear::forward). Time = median of --reps calls
// after a few warm-up calls, the caches flushed of the weights before each (--warm keeps them). Weights come from one random f32 matrix: dense copies in f32/f16/bf16,
// RTN-quantized copies for the packed formats (with f32 and with int8 activations), and a 2:4-pruned copy for the sparse kernel; a
// kernel's weights exist only while it is measured (11008 x 4096 f32 alone is 180 MB).
// --tokens N > 1 measures prefill instead: each format as the engine's linear layer forward over N
// tokens (DenseLinear: sgemm; QuantizedLinear: dequantized 64-row tiles into sgemm with f32
// activations, the int8 GEMM of kernels/int8_gemm.h with int8 activations); no 2:4 rows.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <unistd.h>

#include "commands.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/error.h"
#include "lowbit/core/half.h"
#include "lowbit/core/memory_bandwidth.h"
#include "lowbit/core/parallel.h"
#include "lowbit/core/random.h"
#include "lowbit/core/tensor.h"
#include "lowbit/io/quantized_layout.h"
#include "lowbit/kernels/dense_gemv.h"
#include "lowbit/kernels/int8_gemv.h"
#include "lowbit/kernels/packed_gemv.h"
#include "lowbit/kernels/sparse24_gemv.h"
#include "lowbit/model/linear.h"

namespace lowbit::cli {

namespace {

// Output rows per work item, as the engine's linear layers (fixed, never from the thread count).
constexpr int64_t kRowTile = 64;
constexpr int kWarmup = 3;

struct KernelsOptions {
  std::string shapes = "4096x4096,11008x4096";
  bool quick = false, json = false, warm = false;
  int repetitions = 25;
  int64_t tokens = 1;
};

struct Shape {
  int64_t rows = 0, cols = 0;
};

// "ROWSxCOLS[,ROWSxCOLS...]"; cols a multiple of 128, so every group is full and bits/weight are
// the format's own (a row's 3-bit zero points may still end in a padding byte: bits/weight counts
// what is stored).
std::vector<Shape> parse_shapes(const std::string& text) {
  std::vector<Shape> shapes;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    Shape s;
    size_t x = item.find('x'), used_rows = 0, used_cols = 0;
    try {
      if (x != std::string::npos) {
        s.rows = std::stoll(item.substr(0, x), &used_rows);
        s.cols = std::stoll(item.substr(x + 1), &used_cols);
      }
    } catch (const std::exception&) {
      x = std::string::npos;
    }
    if (x == std::string::npos || used_rows != x || used_cols != item.size() - x - 1 || s.rows < 1 || s.cols < 1)
      throw Error("--shapes", "expected ROWSxCOLS[,ROWSxCOLS...] with positive sizes, found \"" + item + "\"");
    if (s.cols % 128 != 0)
      throw Error("--shapes", "columns must be a multiple of 128 (the group size), found " + item);
    if (s.rows > (int64_t{1} << 20) || s.cols > (int64_t{1} << 20))
      throw Error("--shapes", "at most 1048576 rows and columns, found " + item);
    shapes.push_back(s);
    begin = end + 1;
  }
  return shapes;
}

// One kernel made ready to run on one matrix: `rows(begin, end)` computes y[begin, end) from x.
struct Kernel {
  std::string kernel, format;
  double weight_bytes = 0;  // what one call reads of the stored weights
  std::function<void(const float* x, int64_t begin, int64_t end, float* y)> rows;
  std::function<void(const float* x)> prepare;  // once per call before the tiles (may be empty)
  // Several tokens (--tokens > 1): the engine's linear layer over the whole call instead of `rows`.
  std::function<void(const float* x, int64_t tokens, float* y)> forward;
};

// Reads a buffer of twice the last-level cache (at least 64 MiB) so that the next call's weights come
// from memory, as a model's layers do in decode: a 4096 x 4096 4-bit matrix (9 MB) otherwise stays in a
// 32 MB L3 between calls and reports cache bandwidth, not the memory roofline the kernels are judged by.
void evict_caches() {
  static std::vector<uint64_t> buffer = [] {
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    const size_t bytes = std::max<size_t>(size_t{64} << 20, l3 > 0 ? 2 * static_cast<size_t>(l3) : 0);
    std::vector<uint64_t> b(bytes / sizeof(uint64_t));
    for (size_t i = 0; i < b.size(); ++i) b[i] = i;
    return b;
  }();
  const int64_t chunk = 1 << 17;  // 1 MiB per work item
  const int64_t chunks = static_cast<int64_t>(buffer.size()) / chunk;
  std::vector<uint64_t> sums(static_cast<size_t>(chunks));
  parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      uint64_t sum = 0;
      for (int64_t i = c * chunk; i < (c + 1) * chunk; i += 8) sum += buffer[static_cast<size_t>(i)];  // a line each
      sums[static_cast<size_t>(c)] = sum;
    }
  });
  volatile uint64_t sink = 0;
  for (uint64_t v : sums) sink = sink + v;
}

// Median microseconds of `repetitions` calls (after warm-up) at the current thread count; unless
// `warm`, the caches are flushed of the weights before each timed call.
double time_call(const Kernel& k, const Shape& s, const std::vector<float>& x, std::vector<float>& y,
                 int repetitions, bool warm) {
  const int64_t tiles = (s.rows + kRowTile - 1) / kRowTile;
  const int64_t tokens = static_cast<int64_t>(x.size()) / s.cols;
  const auto call = [&] {
    if (k.forward) return k.forward(x.data(), tokens, y.data());
    if (k.prepare) k.prepare(x.data());
    parallel_for(tiles, 1, [&](int64_t begin, int64_t end) {
      k.rows(x.data(), begin * kRowTile, std::min(s.rows, end * kRowTile), y.data());
    });
  };
  for (int i = 0; i < kWarmup; ++i) call();
  std::vector<double> times;
  for (int i = 0; i < repetitions; ++i) {
    if (!warm) evict_caches();
    const auto start = std::chrono::steady_clock::now();
    call();
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + static_cast<ptrdiff_t>(times.size() / 2), times.end());
  return times[times.size() / 2];
}

// Values ~ uniform(-0.05, 0.05): the scale of trained weights; speed does not depend on them.
std::vector<float> random_matrix(const Shape& s) {
  std::vector<float> w(static_cast<size_t>(s.rows * s.cols));
  const CounterRng rng(11, 0);
  parallel_for(s.rows, 256, [&](int64_t begin, int64_t end) {
    for (size_t i = static_cast<size_t>(begin * s.cols); i < static_cast<size_t>(end * s.cols); ++i)
      w[i] = 0.1f * rng.uniform(i) - 0.05f;
  });
  return w;
}

// W with the 2 smallest-magnitude weights of every aligned group of 4 set to zero (2:4), the kept
// ones rounded to f16 so both sparse layouts can hold them exactly.
// (cols is a multiple of 128, so groups of 4 never straddle rows.)
std::vector<float> pruned_2_4(const Shape& s, const std::vector<float>& w) {
  std::vector<float> p(w.size());
  parallel_for(s.rows, 256, [&](int64_t begin, int64_t end) {
    for (size_t g = static_cast<size_t>(begin * s.cols); g < static_cast<size_t>(end * s.cols); g += 4) {
      size_t order[4] = {0, 1, 2, 3};
      std::sort(order, order + 4, [&](size_t a, size_t b) { return std::fabs(w[g + a]) > std::fabs(w[g + b]); });
      for (size_t j = 0; j < 2; ++j) p[g + order[j]] = f16_bits_to_f32(f32_to_f16_bits(w[g + order[j]]));
    }
  });
  return p;
}

// W RTN-quantized on `scheme` (the packed kernels' weights).
std::shared_ptr<const QuantizedTensor> rtn_copy(const Shape& s, const std::vector<float>& w, const QuantScheme& scheme) {
  RtnOptions options;
  options.scheme = scheme;
  return std::make_shared<const QuantizedTensor>(quantize_rtn(w, s.rows, s.cols, options));
}

// A table row for a kernel over `q`: its format as "uint4 g128" / "int8 per-row" and its stored bytes
// (the caller sets prepare and rows).
Kernel quantized_row(const std::string& kernel, const QuantizedTensor& q) {
  const QuantScheme& scheme = q.scheme();
  const std::string group = scheme.group_size > 0 ? " g" + std::to_string(scheme.group_size) : " per-row";
  // 8-bit scales name the block layout: "e2m1 g32 e8m0" is MXFP4, "e2m1 g16 ue4m3" NVFP4.
  const std::string scales = scheme.eight_bit_scales() ? " " + scale_dtype_name(scheme.scale_dtype) : "";
  return Kernel{kernel, scheme.element.to_string() + group + scales, static_cast<double>(q.storage_bytes()), {}, {}, {}};
}

// A QuantizedLinear over `q` run with `activations` for the call (restoring the process's setting).
std::function<void(const float*, int64_t, float*)> quantized_forward(std::shared_ptr<const QuantizedTensor> q,
                                                                     ActivationPrecision activations) {
  auto layer = std::make_shared<QuantizedLinear>(std::move(q));
  return [layer, activations](const float* x, int64_t tokens, float* y) {
    const ActivationPrecision before = activation_precision();
    set_activation_precision(activations);
    layer->forward(x, tokens, y);
    set_activation_precision(before);
  };
}

// The kernels in table order, each built from `w` only when called (one resident at a time). With
// several tokens each runs as the engine's linear layer (DenseLinear, QuantizedLinear), which is
// what prefill calls; the 2:4 kernels have no several-token path of their own and are left out.
std::vector<std::function<Kernel()>> kernel_makers(const Shape& s, const std::vector<float>& w, int64_t tokens) {
  std::vector<std::function<Kernel()>> makers;
  for (const DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    if (tokens > 1 && dtype == DType::kF16) continue;  // prefill widens f16 and bf16 alike
    makers.push_back([&s, &w, dtype, tokens] {
      // A Tensor, as DenseLinear holds its weights (64-byte aligned storage).
      auto stored = std::make_shared<Tensor>(Tensor::zeros(dtype, {s.rows, s.cols}));
      void* bytes = stored->mutable_data();
      if (dtype == DType::kF32) std::memcpy(bytes, w.data(), stored->nbytes());
      if (dtype == DType::kF16) convert_f32_to_f16(w.data(), static_cast<uint16_t*>(bytes), w.size());
      if (dtype == DType::kBF16) convert_f32_to_bf16(w.data(), static_cast<uint16_t*>(bytes), w.size());
      const char* name = dtype == DType::kF32 ? "f32" : dtype == DType::kF16 ? "f16" : "bf16";
      Kernel k{"dense", name, static_cast<double>(stored->nbytes()), {}, {}, {}};
      if (tokens > 1) {
        auto layer = std::make_shared<DenseLinear>(std::move(*stored));
        k.forward = [layer](const float* x, int64_t n, float* y) { layer->forward(x, n, y); };
        return k;
      }
      k.rows = [stored, dtype, cols = s.cols](const float* x, int64_t begin, int64_t end, float* y) {
        dense_gemv_rows(dtype, stored->data(), cols, x, begin, end, y);
      };
      return k;
    });
  }
  // FP8 e4m3 with a scale per 32 values (widened in registers), and the FP4 block layouts MXFP4 and
  // NVFP4 (e2m1 looked up, E8M0 / UE4M3 × tensor scales).
  const QuantScheme schemes[] = {QuantScheme::integer(8, 0, true), QuantScheme::integer(4, 128, false),
                                 QuantScheme::integer(4, 128, true), QuantScheme::integer(3, 128, false),
                                 QuantScheme::integer(2, 128, false), QuantScheme::with_format(Format::e4m3(), 32),
                                 *QuantScheme::preset("mxfp4"), *QuantScheme::preset("nvfp4")};
  for (const QuantScheme& scheme : schemes) {
    makers.push_back([&s, &w, scheme, tokens] {
      const auto q = rtn_copy(s, w, scheme);
      Kernel k = quantized_row("packed", *q);
      if (tokens > 1) {
        k.forward = quantized_forward(q, ActivationPrecision::kF32);
        return k;
      }
      auto input = std::make_shared<PackedGemvInput>();
      k.prepare = [q, input](const float* x) { packed_gemv_prepare(*q, x, *input); };
      k.rows = [q, input](const float*, int64_t begin, int64_t end, float* y) {
        packed_gemv_rows(*q, *input, begin, end, y);
      };
      return k;
    });
  }
  // The same layouts with x rounded to int8 per 32 columns and integer dot products (int8_gemv.h),
  // plus int4 g32, the shape of ggml's Q4_0, and MXFP4 and NVFP4 (e2m1 levels through a table; NVFP4's
  // groups of 16 as 16-column segments in the GEMM); x's rounding counted per call (once per token).
  const QuantScheme int8_schemes[] = {QuantScheme::integer(8, 0, true),   QuantScheme::integer(4, 128, false),
                                      QuantScheme::integer(4, 128, true), QuantScheme::integer(3, 128, false),
                                      QuantScheme::integer(2, 128, false), QuantScheme::integer(4, 32, true),
                                      *QuantScheme::preset("mxfp4"),      *QuantScheme::preset("nvfp4")};
  for (const QuantScheme& scheme : int8_schemes) {
    makers.push_back([&s, &w, scheme, tokens] {
      const auto q = rtn_copy(s, w, scheme);
      Kernel k = quantized_row("int8-act", *q);
      if (tokens > 1) {
        k.forward = quantized_forward(q, ActivationPrecision::kInt8);
        return k;
      }
      auto input = std::make_shared<Int8GemvInput>();
      k.prepare = [q, input](const float* x) { int8_gemv_prepare(*q, x, *input); };
      k.rows = [q, input](const float*, int64_t begin, int64_t end, float* y) {
        int8_gemv_rows(*q, *input, begin, end, y);
      };
      return k;
    });
  }
  for (const DType values : {DType::kF16, DType::kI8}) {
    if (tokens > 1) break;
    makers.push_back([&s, &w, values] {
      const std::vector<float> pruned = pruned_2_4(s, w);
      auto m = std::make_shared<Sparse24Matrix>();
      if (values == DType::kF16) {
        *m = Sparse24Matrix::from_dense(pruned.data(), s.rows, s.cols, DType::kF16);
      } else {
        RtnOptions options;
        options.scheme = QuantScheme::integer(8, 0, true);  // zeros stay code 0, so 2:4 holds
        *m = Sparse24Matrix::from_quantized(quantize_rtn(pruned, s.rows, s.cols, options));
      }
      Kernel k{"sparse24", std::string(values == DType::kF16 ? "f16" : "int8 per-row") + " 2:4",
               static_cast<double>(m->storage_bytes()), {}, {}, {}};
      k.rows = [m](const float* x, int64_t begin, int64_t end, float* y) { sparse24_gemv_rows(*m, x, begin, end, y); };
      return k;
    });
  }
  return makers;
}

struct Row {
  std::string kernel, format;
  double bits_per_weight = 0, weight_bytes = 0, microseconds = 0;
};

}  // namespace

Runner add_bench_kernels_command(CLI::App& kernels) {
  auto o = std::make_shared<KernelsOptions>();
  kernels.add_option("--shapes", o->shapes, "weight shapes ROWSxCOLS, comma-separated (default 4096x4096,11008x4096)");
  kernels.add_flag("--quick", o->quick, "small shapes (256x1024,320x1024), 5 repetitions, 64 MiB bandwidth buffer: a smoke test");
  kernels.add_option("--reps", o->repetitions, "timed calls per kernel, median reported (default 25)")
      ->check(CLI::Range(1, 100000));
  kernels.add_option("--tokens", o->tokens,
                     "tokens per call (default 1, decode); more runs each format as the engine's linear layer "
                     "does for prefill")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  kernels.add_flag("--warm", o->warm,
                   "keep the weights cached between calls (default: a buffer of twice the L3 is read before "
                   "each timed call, so weights come from memory as in a model's decode)");
  kernels.add_flag("--json", o->json, "print one JSON object");
  kernels.footer(
      "Measures each shape on 1 thread and on --threads: bits/weight as stored (scales, zero points and\n"
      "positions included), microseconds per call (median after warm-up), weight GB/s, GFLOP/s, the\n"
      "fraction of the streaming-read bandwidth measured in the same run, speedup against dense f32 and bf16;\n"
      "int8-act rows also against the same format with f32 activations (\"vs f32 act\").\n"
      "Examples: lowbit --threads 2 bench kernels --shapes 4096x4096\n"
      "          lowbit --threads 2 bench kernels --tokens 512   (prefill: int8 GEMM against dequantized sgemm)");
  return [o] {
    const int configured = num_threads();
    std::vector<int> thread_counts = {1};
    if (configured > 1) thread_counts.push_back(configured);
    const bool shapes_given = o->shapes != KernelsOptions{}.shapes;
    const std::vector<Shape> shapes = parse_shapes(o->quick && !shapes_given ? "256x1024,320x1024" : o->shapes);
    const int repetitions = o->quick && o->repetitions == KernelsOptions{}.repetitions ? 5 : o->repetitions;
    const bool warm = o->warm || o->quick;  // a smoke test need not stream 64 MiB per call

    // The roofline at each thread count, before the weights exist (a quick run uses a buffer that
    // may fit the caches: a smoke test, not a measurement).
    std::vector<double> stream;
    for (const int threads : thread_counts) {
      set_num_threads(threads);
      stream.push_back(o->quick ? measure_read_bandwidth(size_t{64} << 20, 1) : measure_read_bandwidth());
    }

    nlohmann::json runs = nlohmann::json::array();
    for (const Shape& s : shapes) {
      const std::vector<float> w = random_matrix(s);
      std::vector<float> x(static_cast<size_t>(s.cols * o->tokens)), y(static_cast<size_t>(s.rows * o->tokens));
      const CounterRng rng(3, 0);
      for (size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(i) * 2 - 1;
      // results[t][k]: kernel k at thread_counts[t]; both thread counts measured while k is resident.
      std::vector<std::vector<Row>> results(thread_counts.size());
      for (const auto& make : kernel_makers(s, w, o->tokens)) {
        set_num_threads(configured);
        const Kernel k = make();
        for (size_t t = 0; t < thread_counts.size(); ++t) {
          set_num_threads(thread_counts[t]);
          results[t].push_back({k.kernel, k.format, 8 * k.weight_bytes / static_cast<double>(s.rows * s.cols),
                                k.weight_bytes, time_call(k, s, x, y, repetitions, warm)});
        }
      }
      for (size_t t = 0; t < thread_counts.size(); ++t) {
        const auto& rows = results[t];
        const auto dense_us = [&](const std::string& format) {
          return std::find_if(rows.begin(), rows.end(), [&](const Row& r) {
                   return r.kernel == "dense" && r.format == format;
                 })->microseconds;
        };
        const double f32_us = dense_us("f32"), bf16_us = dense_us("bf16");
        // An int8-act row's format with f32 activations (the packed row), or 0 where none was measured.
        const auto f32_activations_us = [&](const Row& r) {
          if (r.kernel != "int8-act") return 0.0;
          const auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& p) {
            return p.kernel == "packed" && p.format == r.format;
          });
          return it == rows.end() ? 0.0 : it->microseconds;
        };
        nlohmann::json kernels_json = nlohmann::json::array();
        if (!o->json) {
          std::printf("%s%lld x %lld, %lld token%s, %d thread%s, stream read %.1f GB/s, median of %d calls, %s\n",
                      runs.empty() ? "" : "\n", (long long)s.rows, (long long)s.cols, (long long)o->tokens,
                      o->tokens == 1 ? "" : "s", thread_counts[t], thread_counts[t] == 1 ? "" : "s", stream[t] / 1e9,
                      repetitions, warm ? "weights cached (--warm)" : "weights from memory (caches flushed)");
          std::printf("%-9s %-16s %8s %10s %11s %8s %9s %7s %7s %10s\n", "kernel", "format", "bits/w", "us/call",
                      "weight GB/s", "GFLOP/s", "of stream", "vs f32", "vs bf16", "vs f32 act");
        }
        for (const Row& r : rows) {
          const double seconds = r.microseconds * 1e-6;
          const double gbs = r.weight_bytes / seconds / 1e9;
          const double gflops = 2.0 * s.rows * s.cols * o->tokens / seconds / 1e9;
          const double f32_act_us = f32_activations_us(r);
          const double of_stream = r.weight_bytes / seconds / stream[t];
          if (o->json) {
            kernels_json.push_back({{"kernel", r.kernel},
                                    {"format", r.format},
                                    {"bits_per_weight", r.bits_per_weight},
                                    {"weight_bytes", r.weight_bytes},
                                    {"microseconds", r.microseconds},
                                    {"weight_gbs", gbs},
                                    {"gflops", gflops},
                                    {"fraction_of_stream", of_stream},
                                    {"speedup_vs_f32", f32_us / r.microseconds},
                                    {"speedup_vs_bf16", bf16_us / r.microseconds},
                                    {"speedup_vs_f32_activations",
                                     f32_act_us > 0 ? nlohmann::json(f32_act_us / r.microseconds) : nlohmann::json(nullptr)}});
          } else {
            const std::string vs_act = f32_act_us > 0 ? std::to_string(f32_act_us / r.microseconds).substr(0, 4) + "x" : "-";
            std::printf("%-9s %-16s %8.4f %10.1f %11.1f %8.1f %9.2f %6.2fx %6.2fx %10s\n", r.kernel.c_str(),
                        r.format.c_str(), r.bits_per_weight, r.microseconds, gbs, gflops, of_stream,
                        f32_us / r.microseconds, bf16_us / r.microseconds, vs_act.c_str());
          }
        }
        runs.push_back({{"rows", s.rows},
                        {"cols", s.cols},
                        {"threads", thread_counts[t]},
                        {"tokens", o->tokens},
                        {"stream_read_gbs", stream[t] / 1e9},
                        {"kernels", kernels_json}});
      }
    }
    set_num_threads(configured);
    if (o->json)
      std::cout << nlohmann::json{{"repetitions", repetitions}, {"warmup", kWarmup}, {"row_tile", kRowTile}, {"cold_cache", !warm},
                                  {"runs", runs}}
                       .dump(2)
                << "\n";
    return 0;
  };
}

}  // namespace lowbit::cli
