// lowbit tokenize --model M (--text FILE | --prompt S) [--no-special] [--bos | --no-bos] [--json]
//
// Prints the token ids of a text as the model's own tokenizer gives them (whatever form
// the model arrives in: a tokenizer.json, tokenizer.model or tokenizer.bin beside it, or
// the tokenizer inside a GGUF), so tokenizers can be compared from the command line.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/core/error.h"
#include "lowbit/core/mapped_file.h"
#include "lowbit/io/model_files.h"
#include "lowbit/io/tokenizer.h"

namespace lowbit::cli {

namespace {
struct TokenizeOptions {
  std::string model, text_file, prompt;
  bool no_special = false, bos = false, no_bos = false, json = false;
};
}  // namespace

Runner add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  app.add_option("--model,-m", o->model, "model folder or file (its tokenizer is used)")->required();
  auto* text = app.add_option("--text", o->text_file, "file whose bytes are tokenized");
  auto* prompt = app.add_option("--prompt,-p", o->prompt, "text to tokenize");
  text->excludes(prompt);
  prompt->excludes(text);
  app.add_flag("--no-special", o->no_special,
               "tokenize special-token text (e.g. <|im_start|>) as plain text instead of as those tokens");
  auto* bos = app.add_flag("--bos", o->bos, "prepend the BOS token (default: the tokenizer's convention)");
  auto* no_bos = app.add_flag("--no-bos", o->no_bos, "do not prepend the BOS token");
  bos->excludes(no_bos);
  no_bos->excludes(bos);
  app.add_flag("--json", o->json, "print {\"ids\": [...], \"pieces\": [...]} (pieces: each token's decoded text)");
  app.footer("Example: lowbit tokenize -m ../shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf -p \"Hello world\"");
  return [o, text, prompt] {
    if (text->count() == 0 && prompt->count() == 0) throw Error("tokenize", "give the text with --text FILE or --prompt TEXT");
    std::string input;
    std::string where = "--prompt";
    if (text->count() > 0) {
      input = read_text_file(o->text_file);
      where = o->text_file;
    } else {
      input = o->prompt;
    }
    require_utf8(input, where);
    const ModelFiles files = open_model(o->model);
    const auto tokenizer = load_tokenizer(files);
    const bool add_bos = o->bos ? true : o->no_bos ? false : tokenizer->adds_bos();
    const std::vector<int32_t> ids = tokenizer->encode(input, add_bos, !o->no_special);
    if (o->json) {
      std::vector<std::string> pieces;
      pieces.reserve(ids.size());
      int32_t previous = -1;
      for (int32_t id : ids) {
        pieces.push_back(tokenizer->decode_token(previous, id));
        previous = id;
      }
      // A byte-fallback token may carry part of a UTF-8 character: such bytes become U+FFFD.
      const nlohmann::json out = {{"ids", ids}, {"pieces", pieces}};
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::string line;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i) line += ' ';
        line += std::to_string(ids[i]);
      }
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), stdout);
    }
    std::fflush(stdout);
    std::fprintf(stderr, "[%zu tokens, tokenizer %s%s%s]\n", ids.size(), std::string(tokenizer->kind()).c_str(),
                 add_bos ? ", BOS added" : "", o->no_special ? ", special tokens as text" : "");
    return 0;
  };
}

}  // namespace lowbit::cli
