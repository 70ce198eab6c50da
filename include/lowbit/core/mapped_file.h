// A read-only memory mapping of a whole file. Tensors borrowed from model files point
// into it and hold a shared_ptr to it, so it is unmapped only when the last view dies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace lowbit {

class MappedFile {
 public:
  // Throws Error("<path>: <strerror>") when the file cannot be opened or mapped,
  // or when `path` is a directory.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  const std::byte* data() const { return data_; }
  std::span<const std::byte> bytes() const { return {data_, static_cast<size_t>(size_)}; }

 private:
  MappedFile() = default;
  std::string path_;
  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace lowbit
