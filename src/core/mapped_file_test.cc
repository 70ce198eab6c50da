#include "lowbit/core/mapped_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/tensor.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

std::string write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::string error_message(const std::string& path) {
  try {
    MappedFile::open(path);
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(MappedFileTest, MapsTheBytesExactly) {
  // 5000 bytes: not a multiple of the page size, with zeros and every byte value.
  std::vector<char> bytes(5000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7919) % 256);
  const std::string path = write_bytes(testing::temp_dir() + "/data.bin", bytes);
  const auto file = MappedFile::open(path);
  EXPECT_EQ(file->path(), path);
  ASSERT_EQ(file->size(), bytes.size());
  ASSERT_NE(file->data(), nullptr);
  EXPECT_EQ(std::memcmp(file->data(), bytes.data(), bytes.size()), 0);
  EXPECT_EQ(file->bytes().size(), bytes.size());
  EXPECT_EQ(file->bytes().data(), file->data());
  EXPECT_EQ(static_cast<char>(file->bytes()[4999]), bytes[4999]);
}

TEST(MappedFileTest, EmptyFileHasSizeZero) {
  const std::string path = write_bytes(testing::temp_dir() + "/empty.bin", {});
  const auto file = MappedFile::open(path);
  EXPECT_EQ(file->size(), 0u);
  EXPECT_TRUE(file->bytes().empty());
}

TEST(MappedFileTest, MissingFileThrowsWithThePath) {
  const std::string path = testing::temp_dir() + "/does-not-exist.safetensors";
  EXPECT_THROW(MappedFile::open(path), Error);
  EXPECT_EQ(error_message(path), path + ": No such file or directory");
}

TEST(MappedFileTest, DirectoryThrowsWithThePath) {
  const std::string path = testing::temp_dir();
  const std::string message = error_message(path);
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  EXPECT_NE(message, "(no error)");
}

TEST(MappedFileTest, MappingOutlivesTheFileOnDisk) {
  const std::string path = write_bytes(testing::temp_dir() + "/gone.bin", {'a', 'b', 'c'});
  const auto file = MappedFile::open(path);
  std::filesystem::remove(path);
  ASSERT_EQ(file->size(), 3u);
  EXPECT_EQ(std::memcmp(file->data(), "abc", 3), 0);
}

TEST(MappedFileTest, BorrowedTensorKeepsTheMappingAlive) {
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f};
  std::vector<char> bytes(8 + sizeof(float) * values.size());
  std::memcpy(bytes.data() + 8, values.data(), sizeof(float) * values.size());  // after an 8-byte header
  auto file = MappedFile::open(write_bytes(testing::temp_dir() + "/tensor.bin", bytes));
  const std::weak_ptr<const MappedFile> watch = file;
  Tensor view = Tensor::borrowed(DType::kF32, {2, 2}, file->data() + 8, file);
  file.reset();
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(view.values<float>()[2], 3.25f);
  EXPECT_THROW(view.mutable_data(), Error);
  view = Tensor();
  EXPECT_TRUE(watch.expired()) << "the mapping goes when its last view does";
}

}  // namespace
}  // namespace lowbit
