#include "testing/shared_data.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lowbit::testing {

namespace fs = std::filesystem;

std::optional<std::string> shared_dir() {
  if (const char* env = std::getenv("LOWBIT_SHARED"); env && *env) {
    if (fs::is_directory(env)) return std::string(env);
    return std::nullopt;
  }
  const fs::path candidate = fs::path(LOWBIT_SOURCE_DIR) / ".." / "shared";
  if (fs::is_directory(candidate)) return fs::weakly_canonical(candidate).string();
  return std::nullopt;
}

namespace {
struct TempRoot {
  std::string path;
  TempRoot() {
    std::string pattern = (fs::temp_directory_path() / "lowbit-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) std::abort();
    path = pattern;
  }
  ~TempRoot() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};
}  // namespace

std::string temp_dir() {
  static TempRoot root;
  static int counter = 0;
  const fs::path dir = fs::path(root.path) / std::to_string(counter++);
  fs::create_directories(dir);
  return dir.string();
}

std::string cli_path() { return LOWBIT_CLI_PATH; }

CommandResult run_cli(const std::string& args) {
  const std::string dir = temp_dir();
  const std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  const std::string command = "'" + cli_path() + "' " + args + " >'" + out_path + "' 2>'" + err_path + "' </dev/null";
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

}  // namespace lowbit::testing
