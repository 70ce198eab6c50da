// lowbit bench (--model M | --synthetic tiny|135m|1b [--dtype bf16]) [--prompt-tokens 512] [--gen-tokens 128]
//              [--bits B [--group G] [--compare-rounds N]] [--json]
// Prefill and decode speed next to the streaming-read bandwidth measured in the same run.
// lowbit bench kernels [...]: the decode GEMV of every weight format (bench_kernels_command.cc).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/compress/rtn.h"
#include "lowbit/core/error.h"
#include "lowbit/core/memory_bandwidth.h"
#include "lowbit/core/parallel.h"
#include "lowbit/kernels/int8_gemv.h"
#include "lowbit/model/llama.h"
#include "lowbit/model/synthetic.h"
#include "lowbit/pipeline/quantized_model.h"

namespace lowbit::cli {

namespace {
struct BenchOptions {
  std::string model, synthetic, dtype = "bf16";
  int64_t prompt_tokens = 512, gen_tokens = 128;
  int bits = 0;  // 0: run the weights as they are; else RTN-quantize the dense linears first
  int64_t group = 128;
  int compare_rounds = 0;  // with --bits: rounds of baseline-then-quantized decode
  bool json = false;
};
double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

Runner add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* model = app.add_option("--model,-m", o->model, "model folder or file");
  app.add_option("--synthetic", o->synthetic, "random-weight model of a named shape: tiny, 135m, 1b")->excludes(model);
  app.add_option("--dtype", o->dtype, "weight dtype of a synthetic model: f32, f16, bf16 (default bf16)");
  app.add_option("--prompt-tokens", o->prompt_tokens, "prefill length (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--gen-tokens", o->gen_tokens, "decode steps (default 128)")->check(CLI::PositiveNumber);
  app.add_option("--bits", o->bits,
                 "RTN-quantize the model's dense linear layers (not the embedding table) in memory to uintB with a zero "
                 "point per group before timing, to measure the packed kernels on a whole model, e.g. --synthetic 1b "
                 "--bits 4 against --synthetic 1b --dtype bf16 (1..8)")
      ->check(CLI::Range(1, 8));
  app.add_option("--group", o->group, "with --bits: inputs per scale (default 128; 0 = one per row)")->check(CLI::NonNegativeNumber);
  app.add_option("--compare-rounds", o->compare_rounds,
                 "with --bits: also decode with the unquantized weights (the synthetic's --dtype, or the model's "
                 "own) in N alternating rounds, baseline then quantized, --gen-tokens each, and report each round's "
                 "speedup and their median: on a machine whose memory bandwidth drifts, a ratio of neighbouring "
                 "rounds is steadier than one of two separate runs")
      ->check(CLI::Range(1, 100));
  app.add_flag("--json", o->json, "print one JSON object");
  CLI::App* kernels = app.add_subcommand(
      "kernels", "one-token GEMV of every weight format (dense, packed low-bit, 2:4 sparse) against the read roofline");
  const Runner run_kernels = add_bench_kernels_command(*kernels);
  app.footer(
      "Examples:\n"
      "  lowbit --threads 2 bench --synthetic 1b --dtype bf16\n"
      "  lowbit --threads 2 bench --synthetic 1b --bits 4 --group 128\n"
      "  lowbit --threads 2 --activations int8 bench --synthetic 1b --bits 4 --compare-rounds 5 --gen-tokens 64\n"
      "  lowbit --threads 2 bench kernels");
  return [o, kernels, run_kernels] {
    if (kernels->parsed()) {
      if (!o->model.empty() || !o->synthetic.empty())
        throw Error("bench kernels", "measures random matrices; it takes no --model or --synthetic");
      return run_kernels();
    }
    std::shared_ptr<ModelFiles> files;
    if (!o->synthetic.empty()) {
      const auto dtype = parse_dtype_lenient(o->dtype);
      if (!dtype) throw Error("--dtype", "expected f32, f16 or bf16, found \"" + o->dtype + "\"");
      files = std::make_shared<ModelFiles>(make_synthetic_model(synthetic_config(o->synthetic), *dtype, 1));
    } else if (!o->model.empty()) {
      // --bits requantizes the weights as numbers: a GGUF's blocks are dequantized first.
      files = std::make_shared<ModelFiles>(o->bits > 0 ? open_model(o->model) : open_model_to_run(o->model));
      if (o->bits > 0 && files->quantized())
        throw Error("--bits", o->model + " is already a quantized lowbit model; give a dense model (or drop --bits)");
    } else {
      throw Error("bench", "give --model PATH or --synthetic tiny|135m|1b");
    }
    if (o->compare_rounds > 0 && o->bits == 0)
      throw Error("--compare-rounds", "needs --bits: it times the quantized model against the same weights unquantized");
    std::shared_ptr<LlamaModel> loaded;
    if (o->bits > 0) {
      // RTN (absmax, f16 scales) per dense linear as the model is built: each layer is quantized from
      // the file's weights and only its packed form is kept.
      RtnOptions rtn;
      rtn.scheme = QuantScheme::integer(o->bits, o->group, false);
      loaded = std::make_shared<LlamaModel>(files, [&](const std::string& name) -> std::unique_ptr<LinearLayer> {
        const Tensor* weight = files->find(name + ".weight");
        if (name == "model.embed_tokens" || !weight || weight->rank() != 2) return nullptr;
        std::shared_ptr<const QuantizedTensor> q;
        try {
          q = std::make_shared<const QuantizedTensor>(quantize_rtn(weight->to_f32_vector(), weight->dim(0), weight->dim(1), rtn));
        } catch (const Error& e) {
          throw Error("--bits", "layer '" + name + "': " + e.what());
        }
        std::vector<float> bias;
        if (const Tensor* b = files->find(name + ".bias")) bias = b->to_f32_vector();
        return std::make_unique<QuantizedLinear>(std::move(q), std::move(bias));
      });
    } else {
      loaded = load_llama_model(files);
    }
    const LlamaModel& llama = *loaded;
    const LlamaConfig& c = llama.config();
    if (o->prompt_tokens + o->gen_tokens > c.max_position_embeddings)
      throw Error("bench", "prompt + generated tokens (" + std::to_string(o->prompt_tokens + o->gen_tokens) +
                               ") exceed the model's context of " + std::to_string(c.max_position_embeddings));
    const double bandwidth = measure_read_bandwidth();
    // The machine's sgemm rate through the same tiled path prefill uses (f32 2048x2048 weights, 512 tokens).
    double sgemm_flops = 0;
    {
      const int64_t n = 2048, t = 512;
      Tensor weight = Tensor::zeros(DType::kF32, {n, n});
      for (auto& value : weight.mutable_values<float>()) value = 0.001f;
      const DenseLinear reference(weight);
      std::vector<float> x(static_cast<size_t>(t * n), 0.5f), y(static_cast<size_t>(t * n));
      reference.forward(x.data(), t, y.data());  // warm-up
      const auto start = std::chrono::steady_clock::now();
      reference.forward(x.data(), t, y.data());
      sgemm_flops = 2.0 * n * n * t / since(start);
    }
    std::vector<int32_t> prompt(static_cast<size_t>(o->prompt_tokens));
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 13) % c.vocab_size);
    KvCache cache(c, o->prompt_tokens + o->gen_tokens);
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    auto start = std::chrono::steady_clock::now();
    llama.forward(prompt, cache, logits.data(), false);
    const double prefill_seconds = since(start);
    // Seconds for --gen-tokens greedy decode steps of `m` from `token` on.
    const auto decode_seconds_of = [&](const LlamaModel& m, KvCache& kv, int32_t token) {
      const auto begin = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < o->gen_tokens; ++i) {
        m.forward(std::span<const int32_t>(&token, 1), kv, logits.data(), false);
        token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      return since(begin);
    };
    const double decode_seconds = decode_seconds_of(llama, cache, 1);
    // --compare-rounds: decode rates of the unquantized model (same files) and the quantized one, each
    // from a fresh cache after one untimed token, in alternating rounds.
    struct Round {
      double baseline = 0, quantized = 0;
    };
    std::vector<Round> rounds;
    std::string baseline_weights;
    if (o->compare_rounds > 0) {
      const auto baseline = load_llama_model(files);
      const Tensor* first = files->find(baseline->linear_names().front() + ".weight");
      baseline_weights = first ? std::string(dtype_name(first->dtype())) : "unquantized";
      const auto decode_rate_of = [&](const LlamaModel& m) {
        KvCache fresh(c, 1 + o->gen_tokens);
        const int32_t first_token = 1;
        m.forward(std::span<const int32_t>(&first_token, 1), fresh, logits.data(), false);
        const auto next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        return static_cast<double>(o->gen_tokens) / decode_seconds_of(m, fresh, next);
      };
      for (int r = 0; r < o->compare_rounds; ++r) {
        Round round;
        round.baseline = decode_rate_of(*baseline);
        round.quantized = decode_rate_of(llama);
        rounds.push_back(round);
      }
    }
    std::vector<double> speedups;
    for (const Round& r : rounds) speedups.push_back(r.quantized / r.baseline);
    std::sort(speedups.begin(), speedups.end());
    const double median_speedup =
        speedups.empty() ? 0
                         : speedups.size() % 2 ? speedups[speedups.size() / 2]
                                               : (speedups[speedups.size() / 2 - 1] + speedups[speedups.size() / 2]) / 2;
    const double prefill_rate = o->prompt_tokens / prefill_seconds, decode_rate = o->gen_tokens / decode_seconds;
    const double bytes_per_token = static_cast<double>(llama.weight_bytes_per_token());
    double linear_parameters = 0;
    int linears = 0, int8_linears = 0;  // how many decode through the int8 kernel under --activations int8
    for (const auto& name : llama.linear_names()) {
      const auto& layer = llama.linear(name);
      linear_parameters += static_cast<double>(layer.in_features()) * layer.out_features();
      const auto* quantized = dynamic_cast<const QuantizedLinear*>(&layer);
      ++linears;
      int8_linears += quantized != nullptr && quantized->int8_decode();
    }
    const bool int8 = activation_precision() == ActivationPrecision::kInt8;
    const std::string activations = int8 ? "int8 (" + int8_kernel_name(int8_kernel_best()) + ")" : "f32";
    const double prefill_flops = 2 * linear_parameters * prefill_rate;  // linear layers only
    const double decode_bandwidth = bytes_per_token * decode_rate;
    nlohmann::json comparison = nullptr;
    if (!rounds.empty()) {
      comparison = {{"baseline_weights", baseline_weights}, {"median_speedup", median_speedup}, {"rounds", nlohmann::json::array()}};
      for (const Round& r : rounds)
        comparison["rounds"].push_back({{"baseline_tokens_per_second", r.baseline},
                                        {"quantized_tokens_per_second", r.quantized},
                                        {"speedup", r.quantized / r.baseline}});
    }
    if (o->json) {
      std::cout << nlohmann::json{{"model", o->synthetic.empty() ? o->model : "synthetic " + o->synthetic},
                                  {"threads", num_threads()},
                                  {"activations", int8 ? "int8" : "f32"},
                                  {"kv_cache", dtype_name(cache.dtype())},
                                  {"kv_cache_bytes", cache.bytes()},
                                  {"int8_kernel", int8 ? nlohmann::json(int8_kernel_name(int8_kernel_best())) : nlohmann::json(nullptr)},
                                  {"int8_decode_linears", int8 ? int8_linears : 0},
                                  {"linears", linears},
                                  {"rtn_quantized", o->bits > 0 ? nlohmann::json(QuantScheme::integer(o->bits, o->group, false).to_string())
                                                                : nlohmann::json(nullptr)},
                                  {"parameters", files->parameter_count()},
                                  {"prefill_tokens", o->prompt_tokens},
                                  {"prefill_tokens_per_second", prefill_rate},
                                  {"decode_tokens", o->gen_tokens},
                                  {"decode_tokens_per_second", decode_rate},
                                  {"weight_bytes_per_token", bytes_per_token},
                                  {"decode_weight_bandwidth_gbs", decode_bandwidth / 1e9},
                                  {"stream_read_bandwidth_gbs", bandwidth / 1e9},
                                  {"prefill_linear_gflops", prefill_flops / 1e9},
                                  {"sgemm_gflops", sgemm_flops / 1e9},
                                  {"prefill_fraction_of_sgemm", prefill_flops / sgemm_flops},
                                  {"decode_fraction_of_roofline", decode_bandwidth / bandwidth},
                                  {"decode_comparison", comparison}}
                       .dump(2)
                << "\n";
    } else {
      std::printf("model:      %s (%s parameters), %d threads\n",
                  o->synthetic.empty() ? o->model.c_str() : ("synthetic " + o->synthetic).c_str(),
                  with_thousands(files->parameter_count()).c_str(), num_threads());
      if (o->bits > 0)
        std::printf("weights:    linear layers RTN-quantized in memory to %s\n",
                    QuantScheme::integer(o->bits, o->group, false).to_string().c_str());
      if (int8)
        std::printf("activations: %s on %d of %d linear layers (the rest f32)\n", activations.c_str(), int8_linears,
                    linears);
      std::printf("kv cache:   %s, %.1f MB for %lld positions\n", std::string(dtype_name(cache.dtype())).c_str(),
                  static_cast<double>(cache.bytes()) / 1e6, (long long)cache.capacity());
      std::printf("memory:     %.1f GB/s streaming read (measured now)\n", bandwidth / 1e9);
      std::printf("sgemm:      %.1f GFLOP/s (f32 2048x2048 x 512 tokens, measured now)\n", sgemm_flops / 1e9);
      std::printf("prefill:    %lld tokens, %.1f tokens/s; linear layers at %.1f GFLOP/s = %.0f%% of sgemm\n",
                  (long long)o->prompt_tokens, prefill_rate, prefill_flops / 1e9, 100 * prefill_flops / sgemm_flops);
      std::printf("decode:     %lld tokens, %.2f tokens/s; %.1f MB of weights per token = %.1f GB/s = %.0f%% of the read roofline\n",
                  (long long)o->gen_tokens, decode_rate, bytes_per_token / 1e6, decode_bandwidth / 1e9,
                  100 * decode_bandwidth / bandwidth);
      if (!rounds.empty()) {
        std::printf("compare:    %zu rounds of %lld decode tokens, %s weights then quantized (tokens/s, speedup):\n",
                    rounds.size(), (long long)o->gen_tokens, baseline_weights.c_str());
        for (size_t r = 0; r < rounds.size(); ++r)
          std::printf("            round %zu: %.2f vs %.2f = %.2fx\n", r + 1, rounds[r].baseline, rounds[r].quantized,
                      rounds[r].quantized / rounds[r].baseline);
        std::printf("            median speedup %.2fx\n", median_speedup);
      }
    }
    return 0;
  };
}

}  // namespace lowbit::cli
