#include "lowbit/core/memory_bandwidth.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lowbit/core/parallel.h"

namespace lowbit {

double measure_read_bandwidth(size_t bytes, int repeats) {
  const size_t words = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buffer(words);
  const int64_t chunk = 1 << 20;  // words per work item (8 MiB)
  const int64_t chunks = (static_cast<int64_t>(words) + chunk - 1) / chunk;
  // Touch every page first (first-touch placement, no page faults in the timed passes).
  parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const size_t lo = static_cast<size_t>(c * chunk), hi = std::min(words, lo + static_cast<size_t>(chunk));
      for (size_t i = lo; i < hi; ++i) buffer[i] = i;
    }
  });
  std::vector<uint64_t> sums(static_cast<size_t>(chunks));
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const size_t lo = static_cast<size_t>(c * chunk), hi = std::min(words, lo + static_cast<size_t>(chunk));
        uint64_t a = 0, b = 0, d = 0, e = 0;  // four chains so the loop is bound by loads, not adds
        size_t i = lo;
        for (; i + 4 <= hi; i += 4) a += buffer[i], b += buffer[i + 1], d += buffer[i + 2], e += buffer[i + 3];
        for (; i < hi; ++i) a += buffer[i];
        sums[static_cast<size_t>(c)] = a + b + d + e;
      }
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / seconds);
  }
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink + s;
  return best;
}

}  // namespace lowbit
