#include "lowbit/core/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "lowbit/core/error.h"
#include "testing/shared_data.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

std::set<std::string> entries(const std::string& folder) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) names.insert(entry.path().filename().string());
  return names;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_plain(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(AtomicFileTest, CommitCreatesTheFileAndLeavesNoTemporary) {
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/out.bin";
  {
    AtomicFileWriter writer(path);
    EXPECT_EQ(writer.destination(), path);
    // The temporary lives beside the destination (same filesystem, so rename is atomic).
    EXPECT_EQ(fs::path(writer.temporary_path()).parent_path(), fs::path(dir));
    EXPECT_TRUE(fs::exists(writer.temporary_path()));
    EXPECT_FALSE(fs::exists(path)) << "nothing appears at the destination before commit";
    writer.write("hello ", 6);
    writer.write_zeros(100);
    writer.write("world", 5);
    EXPECT_EQ(writer.bytes_written(), 111u);
    writer.commit();
    EXPECT_FALSE(fs::exists(writer.temporary_path()));
  }
  EXPECT_EQ(entries(dir), (std::set<std::string>{"out.bin"}));
  EXPECT_EQ(slurp(path), "hello " + std::string(100, '\0') + "world");
}

TEST(AtomicFileTest, CommittedFileGetsUsualPermissions) {
  const std::string path = testing::temp_dir() + "/perm";
  write_file_atomically(path, "x");
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0666 & ~mask);
}

TEST(AtomicFileTest, DestroyingWithoutCommitLeavesNothing) {
  const std::string dir = testing::temp_dir();
  {
    AtomicFileWriter writer(dir + "/never.bin");
    writer.write("partial", 7);
  }
  EXPECT_TRUE(entries(dir).empty());
  // Also when an exception unwinds through the writer.
  try {
    AtomicFileWriter writer(dir + "/thrown.bin");
    writer.write("partial", 7);
    throw Error("simulated failure while writing");
  } catch (const Error&) {
  }
  EXPECT_TRUE(entries(dir).empty());
}

TEST(AtomicFileTest, ExistingDestinationIsReplacedOnlyOnCommit) {
  const std::string dir = testing::temp_dir();
  const std::string path = dir + "/model.safetensors";
  write_plain(path, "old contents");
  {
    AtomicFileWriter writer(path);
    writer.write("new", 3);
  }  // abandoned
  EXPECT_EQ(slurp(path), "old contents");
  EXPECT_EQ(entries(dir), (std::set<std::string>{"model.safetensors"}));
  {
    AtomicFileWriter writer(path);
    writer.write("new", 3);
    EXPECT_EQ(slurp(path), "old contents") << "the old file stays intact until commit";
    writer.commit();
  }
  EXPECT_EQ(slurp(path), "new");
  EXPECT_EQ(entries(dir), (std::set<std::string>{"model.safetensors"}));
}

TEST(AtomicFileTest, WriteFileAtomically) {
  const std::string dir = testing::temp_dir();
  write_file_atomically(dir + "/a.json", "{\"x\": 1}\n");
  EXPECT_EQ(slurp(dir + "/a.json"), "{\"x\": 1}\n");
  write_file_atomically(dir + "/empty", "");
  EXPECT_TRUE(fs::exists(dir + "/empty"));
  EXPECT_EQ(fs::file_size(dir + "/empty"), 0u);
  EXPECT_EQ(entries(dir), (std::set<std::string>{"a.json", "empty"}));
}

TEST(AtomicFileTest, MissingFolderThrowsErrorNamingThePath) {
  const std::string path = testing::temp_dir() + "/no/such/folder/out.bin";
  try {
    AtomicFileWriter writer(path);
    FAIL() << "expected lowbit::Error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  }
  EXPECT_THROW(write_file_atomically(path, "x"), Error);
}

TEST(AtomicFileTest, MisuseAfterCommitThrows) {
  const std::string dir = testing::temp_dir();
  AtomicFileWriter writer(dir + "/once");
  writer.write("a", 1);
  writer.commit();
  EXPECT_THROW(writer.write("b", 1), Error);
  EXPECT_THROW(writer.commit(), Error);
  EXPECT_EQ(slurp(dir + "/once"), "a");
}

TEST(AtomicFileTest, FailedRenameRemovesTheTemporary) {
  const std::string dir = testing::temp_dir();
  const std::string blocker = dir + "/is_a_directory";
  fs::create_directory(blocker);
  fs::create_directory(blocker + "/child");  // non-empty: rename(file, dir) must fail
  {
    AtomicFileWriter writer(blocker);
    writer.write("x", 1);
    try {
      writer.commit();
      ADD_FAILURE() << "commit onto a directory should fail";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(blocker), std::string::npos) << error.what();
    }
  }
  EXPECT_EQ(entries(dir), (std::set<std::string>{"is_a_directory"}));
}

// Runs `body` in a forked child and returns its wait status.
template <class Body>
int in_child(Body body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST(AtomicFileTest, SigtermRemovesPendingTemporaries) {
  const std::string dir = testing::temp_dir();
  const int status = in_child([&] {
    install_interrupt_cleanup();
    AtomicFileWriter first(dir + "/first");
    AtomicFileWriter second(dir + "/second");
    first.write("a", 1);
    second.write("b", 1);
    std::raise(SIGTERM);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(entries(dir).empty());
}

TEST(AtomicFileTest, SigtermCleanupSurvivesAnEarlierFailedCommit) {
  // A writer whose commit failed must not release the interrupt-cleanup slot a second
  // time when destroyed: by then a newer writer may own that slot.
  const std::string dir = testing::temp_dir();
  const std::string blocker = dir + "/blocker";
  fs::create_directory(blocker);
  fs::create_directory(blocker + "/child");
  const int status = in_child([&] {
    install_interrupt_cleanup();
    auto failed = std::make_unique<AtomicFileWriter>(blocker);
    try {
      failed->commit();
    } catch (const Error&) {
    }
    AtomicFileWriter pending(dir + "/pending");
    pending.write("b", 1);
    failed.reset();
    std::raise(SIGTERM);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(entries(dir), (std::set<std::string>{"blocker"}));
}

// ---------------------------------------------------------------------------------------
// AtomicDirectory

TEST(AtomicFileTest, DirectoryCommitPublishesTheWholeFolder) {
  const std::string dir = testing::temp_dir();
  const std::string out = dir + "/model";
  {
    AtomicDirectory folder(out);
    EXPECT_EQ(fs::path(folder.staging_path()).parent_path(), fs::path(dir));
    write_file_atomically(folder.file("config.json"), "{}");
    AtomicFileWriter weights(folder.file("model.safetensors"));
    weights.write("abc", 3);
    weights.commit();
    EXPECT_FALSE(fs::exists(out)) << "nothing appears before commit";
    folder.commit(/*replace_existing=*/false);
  }
  EXPECT_EQ(entries(dir), (std::set<std::string>{"model"}));
  EXPECT_EQ(entries(out), (std::set<std::string>{"config.json", "model.safetensors"}));
  EXPECT_EQ(slurp(out + "/model.safetensors"), "abc");
}

TEST(AtomicFileTest, DirectoryAbandonedFolderLeavesNothing) {
  const std::string dir = testing::temp_dir();
  {
    AtomicDirectory folder(dir + "/model");
    write_file_atomically(folder.file("a"), "1");
    AtomicFileWriter pending(folder.file("b"));
    pending.write("2", 1);
  }
  EXPECT_TRUE(entries(dir).empty());
}

TEST(AtomicFileTest, DirectoryExistingDestinationIsKeptUnlessReplacing) {
  const std::string dir = testing::temp_dir();
  const std::string out = dir + "/model";
  fs::create_directory(out);
  write_plain(out + "/old.txt", "old");
  {
    AtomicDirectory folder(out);
    write_file_atomically(folder.file("new.txt"), "new");
    EXPECT_THROW(folder.commit(/*replace_existing=*/false), Error);
  }
  EXPECT_EQ(entries(dir), (std::set<std::string>{"model"}));
  EXPECT_EQ(entries(out), (std::set<std::string>{"old.txt"}));
  {
    AtomicDirectory folder(out);
    write_file_atomically(folder.file("new.txt"), "new");
    folder.commit(/*replace_existing=*/true);
  }
  EXPECT_EQ(entries(dir), (std::set<std::string>{"model"}));
  EXPECT_EQ(entries(out), (std::set<std::string>{"new.txt"}));
  // A file in the way is never replaced by a folder.
  write_plain(dir + "/plain", "x");
  {
    AtomicDirectory folder(dir + "/plain");
    EXPECT_THROW(folder.commit(/*replace_existing=*/true), Error);
  }
  EXPECT_EQ(slurp(dir + "/plain"), "x");
  EXPECT_EQ(entries(dir), (std::set<std::string>{"model", "plain"}));
}

TEST(AtomicFileTest, DirectoryMissingParentThrowsErrorNamingThePath) {
  const std::string path = testing::temp_dir() + "/no/such/model";
  try {
    AtomicDirectory folder(path);
    FAIL() << "expected lowbit::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
  }
}

TEST(AtomicFileTest, DirectorySigtermRemovesTheStagingFolder) {
  const std::string dir = testing::temp_dir();
  const int status = in_child([&] {
    install_interrupt_cleanup();
    AtomicDirectory folder(dir + "/model");
    write_file_atomically(folder.file("done"), "1");
    AtomicFileWriter pending(folder.file("pending"));
    pending.write("2", 1);
    std::raise(SIGTERM);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_TRUE(entries(dir).empty());
}

}  // namespace
}  // namespace lowbit
