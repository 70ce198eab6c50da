#include "lowbit/core/parallel.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <limits>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

namespace lowbit {
namespace {

class ParallelTest : public ::testing::Test {
 protected:
  void TearDown() override { set_num_threads(0); }
};

using Ranges = std::vector<std::pair<int64_t, int64_t>>;

// Runs parallel_for and returns the ranges the body saw (sorted), checking that every
// index was visited exactly once.
Ranges run_and_check(int64_t count, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(std::max<int64_t>(count, 0)));
  std::mutex mutex;
  Ranges ranges;
  parallel_for(count, grain, [&](int64_t begin, int64_t end) {
    EXPECT_LT(begin, end);
    for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    std::lock_guard<std::mutex> lock(mutex);
    ranges.emplace_back(begin, end);
  });
  for (int64_t i = 0; i < count; ++i)
    EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " count " << count << " grain " << grain;
  std::sort(ranges.begin(), ranges.end());
  return ranges;
}

// Chunks depend only on (count, grain): [k*grain, min((k+1)*grain, count)).
Ranges expected_chunks(int64_t count, int64_t grain) {
  Ranges out;
  for (int64_t begin = 0; begin < count; begin += grain) out.emplace_back(begin, std::min(begin + grain, count));
  return out;
}

TEST_F(ParallelTest, CoversEveryIndexOnceWithStaticChunks) {
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (int64_t count : {0, 1, 7, 1000}) {
      for (int64_t grain : {1, 3, 64}) {
        EXPECT_EQ(run_and_check(count, grain), expected_chunks(count, grain))
            << "threads " << threads << " count " << count << " grain " << grain;
      }
    }
  }
}

TEST_F(ParallelTest, NonPositiveGrainMeansOneAndNonPositiveCountDoesNothing) {
  set_num_threads(2);
  EXPECT_EQ(run_and_check(5, 0), expected_chunks(5, 1));
  EXPECT_EQ(run_and_check(5, -4), expected_chunks(5, 1));
  bool called = false;
  parallel_for(0, 1, [&](int64_t, int64_t) { called = true; });
  parallel_for(-3, 1, [&](int64_t, int64_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST_F(ParallelTest, HugeGrainsAndCountsDoNotOverflow) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const auto& [count, grain, expected] :
         {std::tuple{int64_t{10}, kMax, Ranges{{0, 10}}},
          std::tuple{kMax, int64_t{1} << 62, Ranges{{0, int64_t{1} << 62}, {int64_t{1} << 62, kMax}}},
          std::tuple{kMax, kMax, Ranges{{0, kMax}}}}) {
      std::mutex mutex;
      Ranges ranges;
      parallel_for(count, grain, [&](int64_t begin, int64_t end) {
        std::lock_guard<std::mutex> lock(mutex);
        ranges.emplace_back(begin, end);
      });
      std::sort(ranges.begin(), ranges.end());
      EXPECT_EQ(ranges, expected) << "threads " << threads << " count " << count << " grain " << grain;
    }
  }
}

// A body that reduces within its own range (allowed by the determinism rule) gives
// bit-identical results whatever the thread count.
std::vector<float> chunk_sums(int64_t count, int64_t grain) {
  std::vector<float> sums(static_cast<size_t>((count + grain - 1) / grain), 0.0f);
  parallel_for(count, grain, [&](int64_t begin, int64_t end) {
    float sum = 0;
    for (int64_t i = begin; i < end; ++i) sum += std::sin(static_cast<float>(i)) * 1e-3f + 1.0f / (i + 1);
    sums[static_cast<size_t>(begin / grain)] = sum;
  });
  return sums;
}

TEST_F(ParallelTest, ResultsAreIdenticalForOneAndTwoThreads) {
  for (int64_t grain : {1, 3, 64}) {
    set_num_threads(1);
    const auto one = chunk_sums(1000, grain);
    set_num_threads(2);
    const auto two = chunk_sums(1000, grain);
    ASSERT_EQ(one.size(), two.size());
    for (size_t i = 0; i < one.size(); ++i) ASSERT_EQ(std::bit_cast<uint32_t>(one[i]), std::bit_cast<uint32_t>(two[i])) << i;
  }
}

TEST_F(ParallelTest, NumThreadsSettingAndDefault) {
  set_num_threads(0);
  const int default_threads = num_threads();
  EXPECT_EQ(default_threads, omp_get_max_threads());
  set_num_threads(3);
  EXPECT_EQ(num_threads(), 3);
  set_num_threads(-1);
  EXPECT_EQ(num_threads(), default_threads);
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
}

TEST_F(ParallelTest, UsesTheRequestedTeamSize) {
  if (omp_get_thread_limit() < 2) GTEST_SKIP() << "OpenMP thread limit is below 2";
  set_num_threads(2);
  std::atomic<int> largest_team{0};
  parallel_for(100, 1, [&](int64_t, int64_t) {
    int team = omp_get_num_threads();
    int seen = largest_team.load();
    while (team > seen && !largest_team.compare_exchange_weak(seen, team)) {
    }
  });
  EXPECT_EQ(largest_team.load(), 2);
  set_num_threads(1);
  largest_team = 0;
  parallel_for(100, 1, [&](int64_t, int64_t) { largest_team = std::max(largest_team.load(), omp_get_num_threads()); });
  EXPECT_EQ(largest_team.load(), 1);
}

}  // namespace
}  // namespace lowbit
