// Locating ../shared (real models and data) from tests. Tests that need it call
// LOWBIT_REQUIRE_SHARED(path) which skips with a one-line reason when absent.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>

#include "lowbit/io/hf_config.h"

namespace lowbit::testing {

// $LOWBIT_SHARED, else <source dir>/../shared; nullopt when neither exists.
std::optional<std::string> shared_dir();
// A fresh empty temporary directory, removed at process exit.
std::string temp_dir();
// Path of the built `lowbit` CLI.
std::string cli_path();
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs `lowbit <args>` (args already shell-quoted as needed).
CommandResult run_cli(const std::string& args);

// Whole file as bytes ("" when unreadable).
std::string read_all(const std::string& path);
// Writes `bytes` to `path`, replacing it; a failed write is a test failure.
void write_raw(const std::string& path, const std::string& bytes);
bool contains(const std::string& text, const std::string& part);
// Runs `action`, which must throw lowbit::Error; returns its message. Any other outcome
// (no throw, another exception type) is a test failure.
std::string error_from(const std::function<void()>& action);
// Field-by-field equality, so a failure names the field.
void expect_same_config(const LlamaConfig& a, const LlamaConfig& b);

}  // namespace lowbit::testing

#define LOWBIT_REQUIRE_SHARED(var)                                                          \
  auto var##_opt = ::lowbit::testing::shared_dir();                                         \
  if (!var##_opt) GTEST_SKIP() << "shared/ not found (set LOWBIT_SHARED or place ../shared)"; \
  const std::string var = *var##_opt

// Tests that run the real 135M model for many tokens take minutes in the Debug+ASan build;
// they run in the Release suite, and the sanitizer run covers the same code on stories260K.
#if defined(__SANITIZE_ADDRESS__)
#define LOWBIT_SKIP_HEAVY_UNDER_SANITIZERS() GTEST_SKIP() << "real-model run skipped under ASan (covered by the Release suite)"
#else
#define LOWBIT_SKIP_HEAVY_UNDER_SANITIZERS() (void)0
#endif
