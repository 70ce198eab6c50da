// Output files that either appear complete or not at all.
//
// Data is written to a temporary file in the destination's folder (same filesystem,
// so rename(2) is atomic), flushed, fsync'd and renamed over the destination by
// commit(). If the writer is destroyed without commit() (an exception while
// writing) the temporary file is removed. SIGINT/SIGTERM also remove every pending
// temporary file before the process dies (install_interrupt_cleanup), so Ctrl-C
// never leaves partial output behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string destination);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);
  void write_zeros(size_t size);
  uint64_t bytes_written() const { return written_; }
  // fsync + rename onto the destination. Throws Error on failure (and removes the temp).
  void commit();

  const std::string& destination() const { return destination_; }
  const std::string& temporary_path() const { return temporary_; }

 private:
  void abandon() noexcept;
  std::string destination_;
  std::string temporary_;
  int fd_ = -1;
  int registry_slot_ = -1;
  uint64_t written_ = 0;
};

// A folder that appears complete or not at all: files are written (each with an
// AtomicFileWriter) into a hidden staging folder beside the destination, which
// commit() renames onto the destination. Until then the staging folder and every
// file registered with it are removed on destruction or on SIGINT/SIGTERM.
class AtomicDirectory {
 public:
  explicit AtomicDirectory(std::string destination);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  // Path of `name` inside the staging folder; the file is removed if the folder is abandoned.
  std::string file(const std::string& name);
  // Renames the staging folder onto the destination. An existing destination is
  // replaced only when `replace_existing` (otherwise Error), and only if it is a folder.
  void commit(bool replace_existing);
  const std::string& staging_path() const { return staging_; }

 private:
  void abandon() noexcept;
  std::string destination_;
  std::string staging_;
  std::vector<std::string> files_;
  std::vector<int> slots_;
  bool committed_ = false;
};

// Writes `text` atomically to `path`.
void write_file_atomically(const std::string& path, const std::string& text);

// Installs SIGINT/SIGTERM handlers that unlink all pending temporary files, then
// re-raise the signal with its default action. Idempotent.
void install_interrupt_cleanup();

}  // namespace lowbit
