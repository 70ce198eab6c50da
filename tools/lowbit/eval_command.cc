// lowbit eval ppl --model M (--text FILE | --ids FILE) [--ctx N] [--method llamacpp|full] [--chunks K] [--json]
// lowbit eval kld --base M0 --model M1 --text FILE [--ctx N] [--method ...] [--chunks K] [--json]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/core/mapped_file.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/io/tokenizer.h"
#include "lowbit/pipeline/quantized_model.h"

namespace lowbit::cli {

namespace {

struct EvalOptions {
  std::string model, base, text, ids, method = "llamacpp";
  int64_t context = 512, chunks = 0;
  bool json = false;
};

std::vector<int32_t> read_ids(const std::string& path) {
  std::istringstream in(read_text_file(path));
  std::vector<int32_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || value < 0 || value > INT32_MAX)
      throw Error(path, "expected whitespace-separated token ids, found \"" + word + "\"");
    ids.push_back(static_cast<int32_t>(value));
  }
  if (ids.size() < 2) throw Error(path, "need at least 2 token ids");
  return ids;
}

PerplexityMethod parse_method(const std::string& name) {
  if (name == "full") return PerplexityMethod::kFull;
  if (name == "llamacpp") return PerplexityMethod::kLlamaCpp;
  throw Error("--method", "expected llamacpp or full, found \"" + name + "\"");
}

// "window 3/40, 1234 tokens/s, ETA 12s" on a terminal; nothing when stderr is piped.
std::function<void(int64_t, int64_t)> progress_printer(int64_t context) {
  if (!::isatty(STDERR_FILENO)) return {};
  const auto start = std::chrono::steady_clock::now();
  return [start, context](int64_t done, int64_t total) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = elapsed > 0 ? done * context / elapsed : 0;
    const double eta = done > 0 ? elapsed * (total - done) / done : 0;
    std::fprintf(stderr, "\rwindow %lld/%lld, %.0f tokens/s, ETA %.0fs   ", (long long)done, (long long)total, rate, eta);
    if (done == total) std::fprintf(stderr, "\n");
  };
}

nlohmann::json to_json(const PerplexityResult& r) {
  return {{"method", r.method},          {"context", r.context},
          {"windows", r.windows},        {"tokens_scored", r.tokens_scored},
          {"mean_nll", r.mean_nll},      {"perplexity", r.perplexity},
          {"perplexity_stderr", r.perplexity_stderr}, {"seconds", r.seconds},
          {"tokens_per_second", r.tokens_per_second}};
}

std::shared_ptr<LlamaModel> load(const std::string& path, std::unique_ptr<Tokenizer>* tokenizer) {
  auto files = std::make_shared<ModelFiles>(open_model_to_run(path));
  if (tokenizer) *tokenizer = load_tokenizer(*files);
  return load_llama_model(files);
}

void add_shared_options(CLI::App& app, EvalOptions& o) {
  app.add_option("--ctx", o.context, "window length in tokens (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--method", o.method, "llamacpp (score 2nd half of each window, llama-perplexity's protocol; default) or full (score every token, the GPTQ/AWQ protocol)");
  app.add_option("--chunks", o.chunks, "evaluate at most K windows (default: all)")->check(CLI::NonNegativeNumber);
  app.add_flag("--json", o.json, "print one JSON object");
}

}  // namespace

Runner add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  app.require_subcommand(1);
  CLI::App* ppl = app.add_subcommand("ppl", "perplexity of a model on a text file (or on exact token ids)");
  ppl->add_option("--model,-m", o->model, "model folder or file")->required();
  auto* text = ppl->add_option("--text,-f", o->text, "UTF-8 text file, tokenized whole");
  ppl->add_option("--ids", o->ids, "file of whitespace-separated token ids, scored as ONE sequence from position 0")
      ->excludes(text);
  add_shared_options(*ppl, *o);
  ppl->footer("Example: lowbit eval ppl -m ../shared/models/stories260K/hf -f ../shared/data/tinystories/tinystories_val.txt");

  CLI::App* kld = app.add_subcommand("kld", "KL divergence of a model from a base model (same tokenizer)");
  kld->add_option("--base", o->base, "reference model (e.g. the unquantized original)")->required();
  kld->add_option("--model,-m", o->model, "model to compare")->required();
  kld->add_option("--text,-f", o->text, "UTF-8 text file")->required();
  add_shared_options(*kld, *o);

  return [o, ppl, kld] {
    std::unique_ptr<Tokenizer> tokenizer;
    PerplexityOptions options;
    options.context = o->context;
    options.method = parse_method(o->method);
    options.max_windows = o->chunks;
    options.progress = progress_printer(o->context);
    if (ppl->parsed()) {
      if (o->text.empty() == o->ids.empty()) throw Error("eval ppl", "give exactly one of --text FILE or --ids FILE");
      const auto model = load(o->model, o->ids.empty() ? &tokenizer : nullptr);
      PerplexityResult result;
      if (!o->ids.empty()) {
        result = evaluate_sequence(*model, read_ids(o->ids));
      } else {
        const auto tokens = tokenizer->encode(read_text_file(o->text), tokenizer->adds_bos());
        if (tokenizer->adds_bos()) options.bos_id = tokenizer->bos_id();
        result = evaluate_perplexity(*model, tokens, options);
      }
      if (o->json) {
        auto j = to_json(result);
        j["model"] = o->model;
        j["text"] = o->ids.empty() ? o->text : o->ids;
        std::cout << j.dump(2) << "\n";
      } else {
        std::printf("method:      %s\n", result.method.c_str());
        std::printf("scored:      %lld tokens in %lld window%s\n", (long long)result.tokens_scored, (long long)result.windows,
                    result.windows == 1 ? "" : "s");
        std::printf("mean NLL:    %.7f\n", result.mean_nll);
        std::printf("perplexity:  %.4f ± %.4f\n", result.perplexity, result.perplexity_stderr);
        std::printf("speed:       %.0f tokens/s (%.2f s)\n", result.tokens_per_second, result.seconds);
      }
      return 0;
    }
    (void)kld;
    const auto base = load(o->base, &tokenizer);
    std::unique_ptr<Tokenizer> model_tokenizer;
    const auto model = load(o->model, &model_tokenizer);
    if (model_tokenizer->vocab_size() != tokenizer->vocab_size())
      throw Error(o->model, "tokenizer has " + std::to_string(model_tokenizer->vocab_size()) + " tokens, the base's has " +
                                std::to_string(tokenizer->vocab_size()));
    const auto tokens = tokenizer->encode(read_text_file(o->text), tokenizer->adds_bos());
    if (tokenizer->adds_bos()) options.bos_id = tokenizer->bos_id();
    const KldResult r = evaluate_kld(*base, *model, tokens, options);
    if (o->json) {
      std::cout << nlohmann::json{{"base", o->base},
                                  {"model", o->model},
                                  {"text", o->text},
                                  {"tokens_scored", r.tokens_scored},
                                  {"mean_kld", r.mean_kld},
                                  {"kld_stderr", r.kld_stderr},
                                  {"max_kld", r.max_kld},
                                  {"top1_agreement", r.top1_agreement},
                                  {"base_ppl", to_json(r.base)},
                                  {"model_ppl", to_json(r.model)},
                                  {"delta_ppl", r.model.perplexity - r.base.perplexity}}
                       .dump(2)
                << "\n";
    } else {
      std::printf("method:          %s\n", r.base.method.c_str());
      std::printf("scored:          %lld tokens in %lld windows\n", (long long)r.tokens_scored, (long long)r.windows);
      std::printf("mean KLD:        %.6f ± %.6f (max %.4f)\n", r.mean_kld, r.kld_stderr, r.max_kld);
      std::printf("top-1 agreement: %.2f%%\n", 100 * r.top1_agreement);
      std::printf("PPL base:        %.4f ± %.4f\n", r.base.perplexity, r.base.perplexity_stderr);
      std::printf("PPL model:       %.4f ± %.4f (Δ %+.4f)\n", r.model.perplexity, r.model.perplexity_stderr,
                  r.model.perplexity - r.base.perplexity);
    }
    return 0;
  };
}

}  // namespace lowbit::cli
