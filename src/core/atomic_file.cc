#include "lowbit/core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "lowbit/core/error.h"

namespace lowbit {

namespace {
// Pending temporary paths, readable from a signal handler: fixed-size slots of
// fixed-size buffers, each published with an atomic flag (no allocation in the handler).
constexpr int kSlots = 64;
constexpr size_t kPathCapacity = 4096;
std::array<std::array<char, kPathCapacity>, kSlots> g_pending_paths;
std::array<std::atomic<bool>, kSlots> g_pending_used;
std::mutex g_registry_mutex;

int register_pending(const std::string& path) {
  if (path.size() + 1 > kPathCapacity) return -1;
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  for (int slot = 0; slot < kSlots; ++slot) {
    if (!g_pending_used[slot].load()) {
      std::memcpy(g_pending_paths[slot].data(), path.c_str(), path.size() + 1);
      g_pending_used[slot].store(true);
      return slot;
    }
  }
  return -1;
}

void unregister_pending(int slot) {
  if (slot >= 0) g_pending_used[slot].store(false);
}

extern "C" void remove_pending_and_reraise(int signal_number) {
  // Files first, then (now empty) staging folders; unlink and rmdir are async-signal-safe.
  for (int slot = 0; slot < kSlots; ++slot)
    if (g_pending_used[slot].load()) ::unlink(g_pending_paths[slot].data());
  for (int slot = 0; slot < kSlots; ++slot)
    if (g_pending_used[slot].load()) ::rmdir(g_pending_paths[slot].data());
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

std::string errno_text() { return std::strerror(errno); }

// mkstemp/mkdtemp create 0600/0700; results get the usual `mode & ~umask`. umask can only be
// read by setting it, so it is set and restored.
mode_t usual_permissions(mode_t mode) {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return mode & ~mask;
}
}  // namespace

void install_interrupt_cleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::signal(SIGINT, remove_pending_and_reraise);
    std::signal(SIGTERM, remove_pending_and_reraise);
  });
}

AtomicFileWriter::AtomicFileWriter(std::string destination) : destination_(std::move(destination)) {
  namespace fs = std::filesystem;
  const fs::path target(destination_);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string pattern = (folder / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  fd_ = ::mkstemp(pattern.data());
  if (fd_ < 0) throw Error(destination_, "cannot create a temporary file beside it: " + errno_text());
  temporary_ = pattern;
  registry_slot_ = register_pending(temporary_);
}

AtomicFileWriter::~AtomicFileWriter() { abandon(); }

void AtomicFileWriter::abandon() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(temporary_.c_str());
  }
  unregister_pending(registry_slot_);
  registry_slot_ = -1;
}

void AtomicFileWriter::write(const void* data, size_t size) {
  if (fd_ < 0) throw Error(destination_, "write after commit");
  const char* cursor = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, cursor, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string reason = errno_text();
      abandon();
      throw Error(destination_, "write failed: " + reason);
    }
    cursor += n;
    size -= static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
}

void AtomicFileWriter::write_zeros(size_t size) {
  static const char zeros[64] = {};
  while (size > 0) {
    const size_t chunk = size < sizeof(zeros) ? size : sizeof(zeros);
    write(zeros, chunk);
    size -= chunk;
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw Error(destination_, "commit after commit");
  ::fchmod(fd_, usual_permissions(0666));
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    const std::string reason = errno_text();
    fd_ = -1;
    ::unlink(temporary_.c_str());
    unregister_pending(registry_slot_);
    registry_slot_ = -1;
    throw Error(destination_, "flush failed: " + reason);
  }
  fd_ = -1;
  if (::rename(temporary_.c_str(), destination_.c_str()) != 0) {
    const std::string reason = errno_text();
    ::unlink(temporary_.c_str());
    unregister_pending(registry_slot_);
    registry_slot_ = -1;
    throw Error(destination_, "rename failed: " + reason);
  }
  unregister_pending(registry_slot_);
  registry_slot_ = -1;
}

AtomicDirectory::AtomicDirectory(std::string destination) : destination_(std::move(destination)) {
  namespace fs = std::filesystem;
  while (destination_.size() > 1 && destination_.back() == '/') destination_.pop_back();
  const fs::path target(destination_);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string pattern = (folder / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) throw Error(destination_, "cannot create a staging folder beside it: " + errno_text());
  staging_ = pattern;
  slots_.push_back(register_pending(staging_));
}

AtomicDirectory::~AtomicDirectory() { abandon(); }

std::string AtomicDirectory::file(const std::string& name) {
  const std::string path = staging_ + "/" + name;
  files_.push_back(path);
  slots_.push_back(register_pending(path));
  return path;
}

void AtomicDirectory::abandon() noexcept {
  if (!committed_) {
    for (const auto& path : files_) ::unlink(path.c_str());
    ::rmdir(staging_.c_str());
  }
  for (int slot : slots_) unregister_pending(slot);
  slots_.clear();
}

void AtomicDirectory::commit(bool replace_existing) {
  namespace fs = std::filesystem;
  std::error_code error;
  ::chmod(staging_.c_str(), usual_permissions(0777));
  if (fs::exists(destination_, error)) {
    if (!replace_existing) throw Error(destination_, "already exists (pass --force to replace it)");
    if (!fs::is_directory(destination_)) throw Error(destination_, "exists and is not a folder");
    const std::string old = staging_ + ".old";
    if (::rename(destination_.c_str(), old.c_str()) != 0) throw Error(destination_, "cannot move aside: " + errno_text());
    if (::rename(staging_.c_str(), destination_.c_str()) != 0) {
      const std::string reason = errno_text();
      ::rename(old.c_str(), destination_.c_str());
      throw Error(destination_, "rename failed: " + reason);
    }
    fs::remove_all(old, error);
  } else if (::rename(staging_.c_str(), destination_.c_str()) != 0) {
    throw Error(destination_, "rename failed: " + errno_text());
  }
  committed_ = true;
  for (int slot : slots_) unregister_pending(slot);
  slots_.clear();
}

void write_file_atomically(const std::string& path, const std::string& text) {
  AtomicFileWriter writer(path);
  writer.write(text.data(), text.size());
  writer.commit();
}

}  // namespace lowbit
