// Data-parallel loops over OpenMP (a well-kept runtime instead of a hand-written pool).
//
// Determinism rule for callers: a body may only write outputs indexed by its own range
// and must not reduce across ranges in thread order, so results are bit-identical for
// any thread count. Chunks are static and depend only on (count, grain), never on the
// number of threads.
#pragma once

#include <cstdint>

namespace lowbit {

// Threads used by parallel_for; 0 or negative restores the default (all cores).
void set_num_threads(int threads);
int num_threads();

template <class Body>
void parallel_for(int64_t count, int64_t grain, Body&& body) {
  if (count <= 0) return;
  if (grain < 1) grain = 1;
  // Written so that no intermediate overflows, even for grain or count near INT64_MAX.
  const int64_t chunks = count / grain + (count % grain != 0);
  const auto run_chunk = [&](int64_t chunk) {
    const int64_t begin = chunk * grain;
    body(begin, count - begin > grain ? begin + grain : count);
  };
  if (chunks == 1 || num_threads() == 1) {
    // The same chunks as the parallel loop, in order, so results cannot depend on threads.
    for (int64_t chunk = 0; chunk < chunks; ++chunk) run_chunk(chunk);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t chunk = 0; chunk < chunks; ++chunk) run_chunk(chunk);
}

}  // namespace lowbit
