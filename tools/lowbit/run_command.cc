// lowbit run --model M --prompt TEXT [-n N] [--temp T] [--top-p P] [--seed S] [--ignore-eos] [--json]
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/model/generate.h"
#include "lowbit/pipeline/quantized_model.h"

namespace lowbit::cli {

namespace {
struct RunOptions {
  std::string model, prompt;
  int64_t tokens = 64;
  float temperature = 0.0f, top_p = 1.0f;
  uint64_t seed = 0;
  bool ignore_eos = false, json = false;
};
}  // namespace

Runner add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  app.add_option("--model,-m", o->model, "model folder or file")->required();
  app.add_option("--prompt,-p", o->prompt, "prompt text (BOS is added when the tokenizer's convention adds it)");
  app.add_option("-n,--tokens", o->tokens, "tokens to generate (default 64)")->check(CLI::PositiveNumber);
  app.add_option("--temp", o->temperature, "sampling temperature; 0 = greedy argmax (default)")->check(CLI::Range(0.0, 100.0));
  app.add_option("--top-p", o->top_p, "nucleus sampling mass (default 1)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", o->seed, "sampling seed (default 0)");
  app.add_flag("--ignore-eos", o->ignore_eos, "never choose the end-of-text token (its logit is masked, as llama.cpp's --ignore-eos)");
  app.add_flag("--json", o->json, "print a JSON object (text, ids, timings) instead of streaming");
  app.footer("Example: lowbit run -m ../shared/models/stories260K/hf -p \"Once upon a time\" -n 60");
  return [o] {
    auto files = std::make_shared<ModelFiles>(open_model_to_run(o->model));
    const auto tokenizer = load_tokenizer(*files);
    const auto llama = load_llama_model(files);
    const LlamaModel& model = *llama;
    const auto prompt = tokenizer->encode(o->prompt, tokenizer->adds_bos());
    GenerationOptions options;
    options.max_new_tokens = o->tokens;
    options.sampling = {o->temperature, o->top_p, o->seed};
    options.stop_at_eos = !o->ignore_eos;
    int32_t previous = prompt.empty() ? -1 : prompt.back();
    std::string text;
    if (!o->json) {
      std::fputs(o->prompt.c_str(), stdout);
      std::fflush(stdout);
    }
    const auto result = generate(model, prompt, options, tokenizer->eos_id(), [&](int32_t token) {
      const std::string piece = tokenizer->decode_token(previous, token);
      previous = token;
      text += piece;
      if (!o->json) {
        std::fputs(piece.c_str(), stdout);
        std::fflush(stdout);
      }
    });
    const double decode_rate = result.decode_seconds > 0 ? result.tokens.size() / result.decode_seconds : 0;
    if (o->json) {
      std::cout << nlohmann::json{{"prompt", o->prompt},
                                  {"prompt_ids", prompt},
                                  {"text", text},
                                  {"ids", result.tokens},
                                  {"prefill_seconds", result.prefill_seconds},
                                  {"decode_tokens_per_second", decode_rate}}
                       .dump(2)
                << "\n";
    } else {
      std::printf("\n");
      std::fflush(stdout);  // the summary goes to stderr: keep it after the text when both share a terminal/pipe
      std::fprintf(stderr, "[%lld prompt tokens, %zu generated, %.1f tokens/s decode]\n",
                   (long long)result.prompt_tokens, result.tokens.size(), decode_rate);
    }
    return 0;
  };
}

}  // namespace lowbit::cli
