// lowbit — compress neural networks and run them. Exit codes: 0 success, 2 bad input or
// usage (one line on stderr naming the file/field and what was expected), 1 internal error.
#include <cstdio>
#include <exception>
#include <map>

#include "commands.h"
#include "lowbit/compress/quantized_linear.h"
#include "lowbit/core/atomic_file.h"
#include "lowbit/core/error.h"
#include "lowbit/core/parallel.h"
#include "lowbit/model/llama.h"

int main(int argc, char** argv) {
  using namespace lowbit;
  install_interrupt_cleanup();

  CLI::App app{
      "lowbit: quantize, sparsify and run Llama-family models.\n"
      "MODEL may be a Hugging Face folder (config.json + safetensors), a .safetensors file or a llama2.c .bin;\n"
      "the format is detected. Errors print one line and exit with code 2.",
      "lowbit"};
  app.require_subcommand(1);
  app.fallthrough();  // `lowbit run --threads 2 ...` works as well as `lowbit --threads 2 run ...`
  cli::GlobalOptions global;
  app.add_option("--threads", global.threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  std::string activations = "f32";
  app.add_option("--activations", activations,
                 "how one token's activations meet 4-/8-bit integer weights: f32 (default: within f32 rounding of\n"
                 "the dequantized model) or int8 (rounded per 32 columns, integer dot products as ggml does: SmolLM2\n"
                 "decodes 1.5x faster; other layouts and prefill stay f32)")
      ->check(CLI::IsMember({"f32", "int8"}));
  std::string kv_cache = "f32";
  app.add_option("--kv-cache", kv_cache,
                 "element type of the attention's key/value cache: f32 (default: exactly the values the layers\n"
                 "computed) or f16 (half the bytes a long-context decode step reads, as llama.cpp's default;\n"
                 "keys and values rounded to f16 once, when written)")
      ->check(CLI::IsMember({"f32", "f16"}));
  app.set_version_flag("--version", "lowbit 0.1.0");

  std::map<CLI::App*, cli::Runner> runners;
  auto add = [&](const std::string& name, cli::Runner (*adder)(CLI::App&), const std::string& description) {
    CLI::App* sub = app.add_subcommand(name, description);
    runners[sub] = adder(*sub);
  };
  add("inspect", cli::add_inspect_command, "show a model's architecture, tensors and size");
  add("convert", cli::add_convert_command, "convert llama2.c -> Hugging Face layout, or change float dtype");
  add("formats", cli::add_formats_command, "list number formats, or print every code of one");
  add("chop", cli::add_chop_command, "round numbers into a number format (fake quantization)");
  add("run", cli::add_run_command, "generate text from a prompt (greedy or sampled)");
  add("bench", cli::add_bench_command, "prefill/decode speed against the memory-bandwidth roofline");
  add("eval", cli::add_eval_command, "perplexity (eval ppl) and KL divergence against a base model (eval kld)");
  add("quantize", cli::add_quantize_command, "compress a model's weights (rtn, gptq, awq, awq+gptq) into a model folder");
  add("sparsify", cli::add_sparsify_command,
      "prune a model's weights (magnitude, wanda, sparsegpt; unstructured or N:M), optionally quantizing too");
  add("tokenize", cli::add_tokenize_command, "print the token ids of a text as the model's tokenizer gives them");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "lowbit: %s (see lowbit --help)\n", e.what());
    return 2;
  }

  set_num_threads(global.threads);
  set_activation_precision(activations == "int8" ? ActivationPrecision::kInt8 : ActivationPrecision::kF32);
  set_kv_cache_dtype(kv_cache == "f16" ? DType::kF16 : DType::kF32);
  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "lowbit: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lowbit: out of memory\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit: internal error: %s\n", e.what());
    return 1;
  }
}
