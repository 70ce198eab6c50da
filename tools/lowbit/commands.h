// The `lowbit` command line: one small file per subcommand. Each registers its
// options on the CLI11 app and runs through the library; no logic lives here that
// the library lacks.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace lowbit::cli {

// Options every subcommand shares.
struct GlobalOptions {
  int threads = 0;  // 0: all cores
};

using Runner = std::function<int()>;

// Each returns the function that runs the subcommand once parsing succeeded.
Runner add_inspect_command(CLI::App& app);
Runner add_convert_command(CLI::App& app);
Runner add_formats_command(CLI::App& app);
Runner add_chop_command(CLI::App& app);
Runner add_run_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
// `bench kernels` (registered by add_bench_command on its own subcommand).
Runner add_bench_kernels_command(CLI::App& kernels);
Runner add_tokenize_command(CLI::App& app);
Runner add_quantize_command(CLI::App& app);
Runner add_sparsify_command(CLI::App& app);

// "1,234,567"
std::string with_thousands(long long value);

// The whole file as bytes (Error naming the path when it cannot be read).
std::string read_text_file(const std::string& path);

}  // namespace lowbit::cli
